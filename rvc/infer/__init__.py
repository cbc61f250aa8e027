"""Voice conversion with an exported RVC v2 model: what the Try Model tab and ``python -m rvc infer`` run.

- :mod:`rvc.infer.model`: load an exported ``.pth`` (ours, the RVC WebUI's, Applio's) safely and
  pick its content encoder;
- :mod:`rvc.infer.pipeline`: RVC's conversion (16 kHz input, content features, optional FAISS
  retrieval, f0 with a pitch shift, protect, the generator, RMS mix) in :class:`VoiceConverter`;
- :mod:`rvc.infer.windows`: long inputs cut at quiet points into windows with context, stitched
  back without seams;
- :mod:`rvc.infer.retrieval`, :mod:`rvc.infer.pitch`, :mod:`rvc.infer.envelope`: the stages;
- :mod:`rvc.infer.batch`: a folder in, a folder out.

Importing this package is cheap: the modules import torch, faiss and the encoders when used.
"""
