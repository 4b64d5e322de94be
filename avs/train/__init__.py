"""Training pieces: losses, augmentations, the optimisation recipe (pure parts; Ray Train lives elsewhere)."""
