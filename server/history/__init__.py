"""Version history: checkpoints, named versions, compare, and non-destructive restore."""
