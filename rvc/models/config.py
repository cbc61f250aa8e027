"""The RVC v2 model's shape: one frozen dataclass, presets per sample rate, RVC's exported config list.

Nothing here imports torch, so the CLI and the UI can read and validate a model
configuration without loading the model code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from rvc.errors import UserError

# RVC's exporters (the WebUI's savee/extract_small_model and Applio's extract_model) write 32 in
# the second slot of the exported config list whatever the sample rate. The value is the training
# slice length in frames and is unused at inference, so we write what RVC writes.
RVC_EXPORTED_SEGMENT_FRAMES = 32

SAMPLE_RATE_TAGS = {32000: "32k", 40000: "40k", 48000: "48k"}


@dataclass(frozen=True)
class ModelConfig:
    """Every number that fixes the v2 generator's and discriminator's shapes, plus the audio framing.

    Build one with `ModelConfig.for_sample_rate(40000)`; `ModelConfig.tiny()` gives the same
    architecture with small channels for tests.
    """

    sample_rate: int = 40000  # output audio rate of the decoder (Hz)
    filter_length: int = 2048  # STFT size of the posterior encoder's linear spectrogram (spec_channels = n/2+1)
    hop_length: int = 400  # samples per feature frame: sample_rate / 100, as the 100 frames/s f0 and features
    win_length: int = 2048  # STFT window, equal to filter_length as in RVC
    n_mel_channels: int = 125  # mel bands of the L1 mel loss
    mel_fmin: float = 0.0
    mel_fmax: float | None = None  # None: sample_rate / 2
    segment_size: int = 12800  # samples the decoder renders per training item (a random slice)

    inter_channels: int = 192  # latent z channels
    hidden_channels: int = 192  # width of the text encoder, WaveNet and flows
    filter_channels: int = 768  # width of the text encoder's feed-forward layers
    n_heads: int = 2
    n_layers: int = 6  # transformer layers in the text encoder
    kernel_size: int = 3  # feed-forward kernel in the text encoder
    p_dropout: float = 0.0
    resblock: str = "1"  # HiFi-GAN residual block type: "1" (three dilated pairs) or "2" (two convs)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 10, 2, 2)  # product must equal hop_length
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    spk_embed_dim: int = 109  # rows of the speaker embedding, kept at 109 so pretrains load
    gin_channels: int = 256  # speaker embedding width
    phone_channels: int = 768  # content feature width: 768 for v2 (HuBERT/ContentVec layer 12); v1 used 256

    # Fixed in RVC and absent from the exported config list; change them only for tiny test models.
    posterior_layers: int = 16  # WaveNet layers in the posterior encoder (kernel 5)
    flow_layers: int = 3  # WaveNet layers in each coupling layer (kernel 5)
    n_flows: int = 4  # coupling layers; each is followed by a Flip, hence flow.flows.{0,2,4,6}
    discriminator_divisor: int = 1  # narrows every discriminator layer; 1 for real models (pretrains need it)

    def __post_init__(self) -> None:
        problems = self.errors()
        if problems:
            raise UserError("invalid model configuration: " + "; ".join(problems))

    def errors(self) -> list[str]:
        """Return what is inconsistent in these values, one message per problem."""
        problems = self._range_errors()
        if problems:  # the checks below divide by these
            return problems
        if math.prod(self.upsample_rates) != self.hop_length:
            problems.append(
                f"upsample_rates {list(self.upsample_rates)} multiply to {math.prod(self.upsample_rates)}, "
                f"but hop_length is {self.hop_length}: the decoder must turn one frame into hop_length samples"
            )
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            problems.append("upsample_rates and upsample_kernel_sizes must have the same length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            problems.append("resblock_kernel_sizes and resblock_dilation_sizes must have the same length")
        if self.resblock not in ("1", "2"):
            problems.append(f"resblock must be '1' or '2' (got {self.resblock!r})")
        if self.segment_size % self.hop_length:
            problems.append(f"segment_size {self.segment_size} is not a multiple of hop_length {self.hop_length}")
        if self.hidden_channels % self.n_heads:
            problems.append(f"hidden_channels {self.hidden_channels} is not divisible by n_heads {self.n_heads}")
        if self.inter_channels % 2:
            problems.append("inter_channels must be even (the flows split it in halves)")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            problems.append("upsample_initial_channel must halve cleanly at every upsampling layer")
        return problems

    def _range_errors(self) -> list[str]:
        """Return the values outside their range: sizes and counts must be positive, rates finite."""
        problems = [
            f"{name} must be a whole number of at least 1 (got {value!r})"
            for name, value in ((name, getattr(self, name)) for name in _POSITIVE)
            if not _positive_int(value)
        ]
        for name in _POSITIVE_TUPLES:
            value = getattr(self, name)
            flat = [v for item in value for v in (item if isinstance(item, tuple) else (item,))]
            if not value or not all(_positive_int(v) for v in flat):
                problems.append(f"{name} must be whole numbers of at least 1 (got {value!r})")
        if _positive_int(self.sample_rate) and self.sample_rate % 1000:  # folders are named by it: audio_40k
            problems.append(f"sample_rate must be a whole number of kHz, such as 40000 (got {self.sample_rate!r})")
        if not (_finite(self.p_dropout) and 0 <= self.p_dropout < 1):
            problems.append(f"p_dropout must be at least 0 and below 1 (got {self.p_dropout!r})")
        if not (_finite(self.mel_fmin) and self.mel_fmin >= 0):
            problems.append(f"mel_fmin must be at least 0 Hz (got {self.mel_fmin!r})")
        elif self.mel_fmax is not None and not (_finite(self.mel_fmax) and self.mel_fmax > self.mel_fmin):
            problems.append(f"mel_fmax must be above mel_fmin ({self.mel_fmin:g} Hz) or null (got {self.mel_fmax!r})")
        if not problems and self.win_length > self.filter_length:
            problems.append(f"win_length {self.win_length} must be at most filter_length {self.filter_length}")
        return problems

    @property
    def spec_channels(self) -> int:
        """Return the linear spectrogram's bins, the posterior encoder's input width."""
        return self.filter_length // 2 + 1

    @property
    def segment_frames(self) -> int:
        """Return the training slice length in feature frames."""
        return self.segment_size // self.hop_length

    @property
    def sample_rate_tag(self) -> str:
        """Return RVC's name for the sample rate ("40k"), or the rate in Hz for others."""
        return SAMPLE_RATE_TAGS.get(self.sample_rate, str(self.sample_rate))

    @classmethod
    def for_sample_rate(cls, sample_rate: int) -> ModelConfig:
        """Return RVC's v2 preset for 32000, 40000 or 48000 Hz."""
        presets = {
            32000: cls(
                sample_rate=32000,
                filter_length=1024,
                hop_length=320,
                win_length=1024,
                n_mel_channels=80,
                segment_size=12800,
                upsample_rates=(10, 8, 2, 2),
                upsample_kernel_sizes=(20, 16, 4, 4),
            ),
            40000: cls(),
            48000: cls(
                sample_rate=48000,
                filter_length=2048,
                hop_length=480,
                win_length=2048,
                n_mel_channels=128,
                segment_size=17280,
                upsample_rates=(12, 10, 2, 2),
                upsample_kernel_sizes=(24, 20, 4, 4),
            ),
        }
        if sample_rate not in presets:
            raise UserError(f"no v2 preset for sample rate {sample_rate}: use 32000, 40000 or 48000")
        return presets[sample_rate]

    @classmethod
    def tiny(cls, sample_rate: int = 40000) -> ModelConfig:
        """Return the same architecture with small channels: for tests and debug runs, not for real voices."""
        return replace(
            cls.for_sample_rate(sample_rate),
            inter_channels=8,
            hidden_channels=16,
            filter_channels=32,
            n_heads=2,
            n_layers=1,
            resblock_kernel_sizes=(3,),
            resblock_dilation_sizes=((1, 3, 5),),
            upsample_initial_channel=32,
            spk_embed_dim=4,
            gin_channels=8,
            posterior_layers=2,
            flow_layers=1,
            discriminator_divisor=16,
        )

    def to_rvc_config_list(self) -> list[Any]:
        """Return the 18-value `config` list of RVC's exported model files.

        Order: spec_channels, segment frames, inter, hidden, filter, n_heads, n_layers, kernel,
        p_dropout, resblock, resblock kernels, resblock dilations, upsample rates, initial upsample
        channels, upsample kernels, spk_embed_dim, gin_channels, sample rate. Sequences are lists,
        as RVC writes them.
        """
        return [
            self.spec_channels,
            RVC_EXPORTED_SEGMENT_FRAMES,
            self.inter_channels,
            self.hidden_channels,
            self.filter_channels,
            self.n_heads,
            self.n_layers,
            self.kernel_size,
            self.p_dropout,
            self.resblock,
            list(self.resblock_kernel_sizes),
            [list(d) for d in self.resblock_dilation_sizes],
            list(self.upsample_rates),
            self.upsample_initial_channel,
            list(self.upsample_kernel_sizes),
            self.spk_embed_dim,
            self.gin_channels,
            self.sample_rate,
        ]

    @classmethod
    def from_rvc_config_list(cls, values: Sequence[Any], *, source: str = "the model file") -> ModelConfig:
        """Build a config from the `config` list of an exported RVC/Applio model.

        The sample rate may be an int (RVC, Applio) or a tag such as "40k". Training-only values
        that the list does not carry faithfully (segment size, mel bands) come from the preset for
        that sample rate when there is one.
        """
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 18:
            count = len(values) if isinstance(values, Sequence) else type(values).__name__
            raise UserError(f"{source}: 'config' must be RVC's 18-value list (got {count}); is this an RVC model?")
        try:
            sample_rate = _parse_sample_rate(values[17])
            filter_length = (int(values[0]) - 1) * 2
            upsample_rates = tuple(int(u) for u in values[12])
            hop_length = math.prod(upsample_rates)
            base = cls.for_sample_rate(sample_rate) if sample_rate in SAMPLE_RATE_TAGS else None
            return cls(
                sample_rate=sample_rate,
                filter_length=filter_length,
                hop_length=hop_length,
                win_length=filter_length,
                n_mel_channels=base.n_mel_channels if base else 80,
                segment_size=base.segment_size if base and base.hop_length == hop_length else 32 * hop_length,
                inter_channels=int(values[2]),
                hidden_channels=int(values[3]),
                filter_channels=int(values[4]),
                n_heads=int(values[5]),
                n_layers=int(values[6]),
                kernel_size=int(values[7]),
                p_dropout=float(values[8]),
                resblock=str(values[9]),
                resblock_kernel_sizes=tuple(int(k) for k in values[10]),
                resblock_dilation_sizes=tuple(tuple(int(d) for d in ds) for ds in values[11]),
                upsample_rates=upsample_rates,
                upsample_initial_channel=int(values[13]),
                upsample_kernel_sizes=tuple(int(k) for k in values[14]),
                spk_embed_dim=int(values[15]),
                gin_channels=int(values[16]),
            )
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: cannot read RVC's 'config' list {list(values)!r}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists) for checkpoints and config files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the configuration") -> ModelConfig:
        """Build a config from `to_dict()` output, naming any unknown field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown model field(s) {', '.join(unknown)}")
        values = {name: _as_tuples(value) for name, value in data.items()}
        try:
            return cls(**values)
        except UserError as error:
            raise UserError(f"{source}: {error}") from None


# Sizes and counts that must be whole and positive: each is a divisor, a width or a loop count somewhere.
_POSITIVE = (
    "sample_rate",
    "filter_length",
    "hop_length",
    "win_length",
    "n_mel_channels",
    "segment_size",
    "inter_channels",
    "hidden_channels",
    "filter_channels",
    "n_heads",
    "n_layers",
    "kernel_size",
    "upsample_initial_channel",
    "spk_embed_dim",
    "gin_channels",
    "phone_channels",
    "posterior_layers",
    "flow_layers",
    "n_flows",
    "discriminator_divisor",
)
_POSITIVE_TUPLES = ("resblock_kernel_sizes", "resblock_dilation_sizes", "upsample_rates", "upsample_kernel_sizes")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_tuples(value: Any) -> Any:
    """Turn JSON lists (nested too) back into tuples so the frozen config stays hashable."""
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    return value


def _parse_sample_rate(value: Any) -> int:
    """Read 40000, "40000" or RVC's tag "40k" as Hz."""
    if isinstance(value, str) and value.lower().endswith("k"):
        return int(value[:-1]) * 1000
    return int(value)
