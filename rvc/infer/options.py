"""The settings of a conversion, declared once for the CLI (``infer``) and the Try Model tab.

Each knob's label, help, range and step live here; the tab builds its sliders from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rvc.choices import F0Method
from rvc.infer.windows import WindowConfig
from rvc.settings import check_declared, setting


@dataclass(frozen=True)
class ConvertOptions:
    """The settings of one conversion (RVC's and Applio's names in brackets)."""

    f0_method: F0Method = setting(
        "rmvpe",
        "pitch method: rmvpe (RVC's), crepe (accurate, slow), fcpe (fast), harvest, dio, pm (CPU)",
        label="F0 method",
        flag="--f0",
    )
    pitch: float = setting(
        0.0,
        "pitch shift in semitones: +12 one octave up, -12 one down; two octaves either way (f0_up_key)",
        label="Pitch shift (semitones; +12 = an octave up)",
        minimum=-24,
        maximum=24,
        step=1,
    )
    index_rate: float = setting(
        0.75,
        "share of retrieved training features, 0..1 (with an index); 0 leaves the input's (index_rate)",
        label="Index rate (share of retrieved features)",
        minimum=0,
        maximum=1,
        step=0.05,
    )
    protect: float = setting(
        0.33,
        "keep voiceless consonants and breaths: 0..0.5, lower keeps more; 0.5 turns it off (protect)",
        label="Protect voiceless consonants (0.5 = off)",
        minimum=0,
        maximum=0.5,
        step=0.01,
    )
    rms_mix: float = setting(
        1.0,
        "share of the output's own loudness envelope, 0..1; 0: the input's (rms_mix_rate)",
        label="RMS mix (1 = the output's own loudness)",
        minimum=0,
        maximum=1,
        step=0.05,
    )
    f0_file: Path | None = setting(
        None, "file of 'seconds,Hz' lines that replace the estimated pitch where they cover", label="F0 file"
    )
    output_rate: int | None = setting(
        None,
        "resample the result to this rate (Hz); unset: the model's rate (resample_sr)",
        label="Output sample rate (Hz)",
        minimum=8000,
        maximum=192000,
    )
    highpass: bool = setting(
        True, "RVC's 48 Hz high-pass on the input (removes DC and rumble)", label="48 Hz high-pass"
    )
    seed: int | None = setting(
        None,
        "seed the generator's noise for a repeatable result (the same input gives the same output)",
        label="Seed",
        minimum=0,
        maximum=2**32 - 1,  # the training seed's range; torch.manual_seed overflows past 2**64
    )
    windows: WindowConfig | None = setting(
        None, "how long inputs are cut; unset: RVC's for the precision", label="Windows", cli=False
    )

    def check(self) -> None:
        """Raise a UserError naming the first setting out of range."""
        check_declared(self)
