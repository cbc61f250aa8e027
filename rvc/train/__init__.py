"""Training: the trainer process (``python -m rvc.train``) and what watches it."""
