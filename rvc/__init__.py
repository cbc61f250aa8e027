"""RVC Studio: from a folder of recordings to a finished RVC v2 voice model."""

__version__ = "0.1.0"
