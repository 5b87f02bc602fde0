"""Training pairs (z_Φ, z_Θ): the recipes that make them, augmentation, and the feature cache."""
