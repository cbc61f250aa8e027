"""Do the 1-D convolutions pay for cuDNN's NCHW<->NHWC transposes, and would channels-last remove them?

Run on a GPU: ``python benchmarks/conv1d_layout.py [--batch-size 8]``.

The compiled bf16 step spends about 5.7 ms a step in cuDNN's layout transposes around the
1-D convolutions (benchmarks/README.md, step profile). This times the two networks that hold
them, the v2 40k decoder (``dec``) and the scale discriminator (``DiscriminatorS``), forward
and backward at the training shape, two ways:

- ``ncl``: as the model runs today, activations stored (N, C, L);
- ``nlc``: every 1-D convolution run as a 2-D one over (N, C, 1, L) with the activations
  stored (N, L, C), i.e. channels-last, which cuDNN's tensor-core kernels read directly.

Reports, per precision (fp32 with TF32, bf16), the kernel time of one forward+backward,
the share of it spent in layout transposes, and checks that both ways compute the same.
Writes ``benchmarks/results/conv1d_layout-<machine>.json``. Decides whether the models'
1-D convolutions should run channels-last; changes nothing in the trainer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import header  # noqa: E402

TRANSPOSE_KERNELS = ("nchwToNhwc", "nhwcToNchw", "nchw_to_nhwc", "nhwc_to_nchw")


@contextlib.contextmanager
def one_d_as_two_d() -> Iterator[None]:
    """Route F.conv1d / F.conv_transpose1d through their 2-D forms over (N, C, 1, L) meanwhile."""
    import torch.nn.functional as F

    conv1d, conv_transpose1d = F.conv1d, F.conv_transpose1d

    def first(value: Any) -> int:
        return int(value[0]) if isinstance(value, tuple | list) else int(value)

    def conv1d_2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1):
        y = F.conv2d(
            x.unsqueeze(2), w.unsqueeze(2), b, (1, first(stride)), (0, first(padding)), (1, first(dilation)), groups
        )
        return y.squeeze(2)

    def conv_transpose1d_2d(
        x: Any,
        w: Any,
        b: Any = None,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        dilation: Any = 1,
    ):
        y = F.conv_transpose2d(
            x.unsqueeze(2),
            w.unsqueeze(2),
            b,
            (1, first(stride)),
            (0, first(padding)),
            (0, first(output_padding)),
            groups,
            (1, first(dilation)),
        )
        return y.squeeze(2)

    F.conv1d, F.conv_transpose1d = conv1d_2d, conv_transpose1d_2d
    try:
        yield
    finally:
        F.conv1d, F.conv_transpose1d = conv1d, conv_transpose1d


def nlc(x: Any) -> Any:
    """The same (N, C, L) tensor, stored (N, L, C): what a channels-last (N, C, 1, L) view needs."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def measure(name: str, layout: str, dtype: Any, run: Any, inputs: list[Any], repeats: int) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    def once() -> Any:
        with torch.autocast("cuda", dtype, enabled=dtype != torch.float32):
            out = run(*inputs)
        out.float().square().mean().backward()
        return out

    context = one_d_as_two_d() if layout == "nlc" else contextlib.nullcontext()
    with context:
        for _ in range(3):  # cuDNN autotuning
            out = once()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(repeats):
                once()
            torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    total_us = sum(e.device_time for e in kernels) / repeats
    transposes = [e for e in kernels if any(k in e.name for k in TRANSPOSE_KERNELS)]
    transpose_us = sum(e.device_time for e in transposes) / repeats
    return {
        "network": name,
        "layout": layout,
        "precision": "fp32" if dtype == torch.float32 else "bf16",
        "kernel_ms": round(total_us / 1000, 3),
        "transpose_ms": round(transpose_us / 1000, 3),
        "transposes": len(transposes) // repeats,
        "kernels": len(kernels) // repeats,
        "output": out.detach().float(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    import torch

    from rvc.models.config import ModelConfig
    from rvc.models.discriminator import DiscriminatorS
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    config = ModelConfig.for_sample_rate(40000)
    torch.manual_seed(0)
    decoder = SynthesizerTrnMs768NSFsid(config).dec.to(device)
    scale = DiscriminatorS().to(device)
    b, frames = args.batch_size, config.segment_frames
    z = torch.randn(b, config.inter_channels, frames, device=device)
    f0 = torch.full((b, frames), 200.0, device=device)
    g = torch.randn(b, config.gin_channels, 1, device=device)
    wav = torch.randn(b, 1, config.segment_size, device=device) * 0.1

    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for name, run, inputs, inputs_nlc in (
            ("dec", decoder, [z, f0, g], [nlc(z), f0, g]),
            ("DiscriminatorS", lambda x: scale(x)[0], [wav], [nlc(wav)]),
        ):
            plain = measure(name, "ncl", dtype, run, inputs, args.repeats)
            channels_last = measure(name, "nlc", dtype, run, inputs_nlc, args.repeats)
            scale_of = plain["output"].abs().max().clamp_min(1e-6)
            difference = float((plain.pop("output") - channels_last.pop("output")).abs().max() / scale_of)
            channels_last["max_rel_difference"] = round(difference, 5)
            rows += [plain, channels_last]
            print(json.dumps(plain), json.dumps(channels_last), sep="\n", flush=True)

    result = {
        **header("conv1d_layout"),
        "batch_size": args.batch_size,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"conv1d_layout-{result['machine']}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
