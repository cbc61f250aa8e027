"""Typed configuration: the model's shape, the training settings, what the data stage recorded."""
