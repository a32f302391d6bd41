"""Live shared documents: one Room per open notebook, fed by the durable update log."""
