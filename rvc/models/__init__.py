"""The RVC v2 model: generator (synthesizer), discriminator, building blocks, presets, weight loading.

Import the submodules you need; only `config` is light (no torch):
- `config`: ModelConfig, the v2 presets for 32/40/48 kHz and RVC's exported config list
- `synthesizer`: SynthesizerTrnMs768NSFsid, the generator
- `discriminator`: MultiPeriodDiscriminatorV2
- `weights`: read pretrains safely, both weight-norm spellings, mismatch errors that name a cause
"""
