"""Content features: HuBERT / ContentVec encoders and the batched extraction stage.

Kept light on purpose (no torch import): see ``embedder`` for the encoders,
``fairseq_import`` and ``safe_pickle`` for reading fairseq ``.pt`` files safely.
"""
