"""The kernel gateway: workers that dial in, one kernel per notebook, outputs into the doc,
and the kernels' widgets (shared state in `widgets`, comm routing in `comms`)."""
