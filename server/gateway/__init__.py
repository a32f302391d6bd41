"""The kernel gateway: workers that dial in, one kernel per notebook, outputs into the doc."""
