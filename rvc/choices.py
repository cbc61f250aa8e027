"""The choices that several options share, each declared once as a ``Literal`` (light: no imports beyond typing).

An option annotated with one of these offers exactly its values in the CLI
(argparse choices) and the web UI (the widget's choices); see :mod:`rvc.settings`.
"""

from __future__ import annotations

from typing import Literal, get_args

SampleRate = Literal[32000, 40000, 48000]  # the v2 presets' training rates
SAMPLE_RATES: tuple[SampleRate, ...] = get_args(SampleRate)

F0Method = Literal["rmvpe", "crepe", "crepe-tiny", "fcpe", "harvest", "dio", "pm"]  # one module each in rvc/f0
F0_METHODS: tuple[F0Method, ...] = get_args(F0Method)

# The dtype of the content encoder (extract) and of the converter (infer) on a GPU; auto: fp16.
InferencePrecision = Literal["auto", "fp32", "fp16", "bf16"]
INFERENCE_PRECISIONS: tuple[InferencePrecision, ...] = get_args(InferencePrecision)

# The most worker processes prepare's and extract's CPU work may ask for: more than any one host's cores,
# and each process loads its own libraries (a typo of 10**9 started as many as there were files or clips).
MAX_WORKERS = 256
