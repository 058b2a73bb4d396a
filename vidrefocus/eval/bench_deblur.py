"""`vidrefocus bench deblur`: ms per frame of DeblurNet against classical deblurring, and the
quality of each on the real defocus set, in the same run."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.eval.baselines import unsharp_mask, wiener_deconvolve
from vidrefocus.eval.bench import BenchReport, BenchRow, best_of, parse_size
from vidrefocus.eval.real_defocus import (
    DEFAULT_REAL_DEFOCUS,
    REAL_DEFOCUS_SOURCE,
    Deblurrer,
    RealDefocusResult,
    real_defocus,
    real_defocus_wiener_oracle,
)
from vidrefocus.models.deblurnet import TemporalDeblur, default_weights_path, load_deblurnet

__all__ = ["DeblurBenchReport", "QualityRow", "run"]

log = logging.getLogger(__name__)

# The timed Wiener row's disk radius: a typical blur of the real set, fixed a priori (the
# quality table's Wiener row searches the radius per image instead).
WIENER_RADIUS_PX = 4.0


@dataclass
class QualityRow:
    """Mean PSNR / SSIM of one method on the real defocus set."""

    name: str
    psnr_db: float
    psnr_gain_db: float
    ssim: float
    ssim_gain: float
    note: str = ""


@dataclass
class DeblurBenchReport(BenchReport):
    """The timing rows, plus a quality table on the real defocus set."""

    quality: list[QualityRow] = field(default_factory=list)
    quality_title: str = ""

    def markdown(self) -> str:
        text = super().markdown()
        if not self.quality:
            return text
        lines = [
            "",
            "",
            f"#### {self.quality_title}",
            "",
            "| method | PSNR dB | gain dB | SSIM | gain | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for q in self.quality:
            lines.append(
                f"| {q.name} | {q.psnr_db:.2f} | {q.psnr_gain_db:+.2f} | {q.ssim:.4f} "
                f"| {q.ssim_gain:+.4f} | {q.note} |"
            )
        return text + "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            **super().to_dict(),
            "quality_title": self.quality_title,
            "quality": [asdict(q) for q in self.quality],
        }


def _sequence(w: int, h: int, frames: int, device: torch.device) -> Tensor:
    """Deterministic moving content: smooth colour noise with fine grain, panning 2 px/frame."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, h // 16 + 2, (w + 2 * frames) // 16 + 2, generator=g)
    base = F.interpolate(coarse, size=(h, w + 2 * frames), mode="bicubic", align_corners=False)
    base = (base + 0.08 * torch.randn(base.shape, generator=g)).clamp(0.0, 1.0)
    return torch.cat([base[..., 2 * t : 2 * t + w] for t in range(frames)]).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _PerFrame:
    """A stateless image function run frame after frame (so memory matches a video)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.fn = fn

    def __call__(self, frames: Tensor) -> Tensor:
        return torch.cat([self.fn(f) for f in frames.split(1)])


def _methods(device: torch.device) -> list[tuple[str, Deblurrer, str]]:
    """(name, deblurrer, note); the first is the baseline."""
    methods: list[tuple[str, Deblurrer, str]] = [
        (
            f"Wiener, disk r={WIENER_RADIUS_PX:g} px",
            _PerFrame(functools.partial(wiener_deconvolve, radius_px=WIENER_RADIUS_PX)),
            "FFT, reflect pad + taper",
        ),
        ("unsharp mask (sigma 2, amount 1)", _PerFrame(unsharp_mask), "Gaussian high-pass"),
    ]
    for variant in ("default", "lite"):
        path = default_weights_path(variant)
        if not path.is_file():
            continue
        net = load_deblurnet(path, device=device)
        label = "DeblurNet" if variant == "default" else f"DeblurNet {variant}"
        params = f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f} M params"
        methods.append((f"{label}, per frame", TemporalDeblur(net, temporal=False), params))
        methods.append(
            (f"{label}, temporal", TemporalDeblur(net, temporal=True), "incl. DIS flow (CPU)")
        )
    return methods


def _time_rows(
    report: BenchReport,
    sizes: Sequence[str],
    devices: Sequence[torch.device],
    frames: int,
    repeat: int,
) -> None:
    for dev in devices:
        methods = _methods(dev)
        for size in sizes:
            w, h = parse_size(size)
            seq = _sequence(w, h, frames, dev)
            base_seconds: float | None = None
            for name, method, note in methods:

                def once(
                    method: Deblurrer = method, seq: Tensor = seq, dev: torch.device = dev
                ) -> int:
                    reset = getattr(method, "reset", None)
                    if callable(reset):
                        reset()
                    with torch.inference_mode():
                        method(seq)
                    _sync(dev)
                    return seq.shape[0]

                once()  # warm-up: kernel selection, allocator, oneDNN primitives
                seconds, n = best_of(repeat, once)
                ratio = None if base_seconds is None else seconds / base_seconds
                base_seconds = seconds if base_seconds is None else base_seconds
                report.rows.append(BenchRow(f"{size} {dev.type}: {name}", seconds, n, note, ratio))
                log.info("%s %s %s: %.1f ms/frame", size, dev.type, name, 1000 * seconds / n)


def _quality_row(name: str, result: RealDefocusResult, note: str = "") -> QualityRow:
    out_psnr, out_ssim = result.mean("output_psnr_db"), result.mean("output_ssim")
    return QualityRow(
        name,
        out_psnr,
        out_psnr - result.mean("input_psnr_db"),
        out_ssim,
        out_ssim - result.mean("input_ssim"),
        note,
    )


def _quality(report: DeblurBenchReport, folder: Path, device: torch.device) -> None:
    start = time.perf_counter()
    identity = real_defocus(lambda x: x, folder)
    report.quality.append(_quality_row("input (no deblurring)", identity))
    for name, method, _ in _methods(device):
        if name.endswith(", temporal"):
            continue  # single images: the temporal mode is the per-frame mode
        report.quality.append(_quality_row(name, real_defocus(method, folder, device)))
    oracle = real_defocus_wiener_oracle(folder)
    radii = ", ".join(f"{s.radius_px:g}" for s in oracle.images)
    report.quality.append(
        _quality_row("Wiener, best disk radius per image (oracle)", oracle, f"radii {radii} px")
    )
    n, (w, h) = len(identity.images), identity.size_wh
    report.quality_title = (
        f"quality on real defocus ({n} images, {w}x{h}, full resolution; {REAL_DEFOCUS_SOURCE}); "
        f"mean PSNR / SSIM (Gaussian 11, sigma 1.5, per RGB channel) vs the all-in-focus target, "
        f"{time.perf_counter() - start:.0f} s"
    )


def run(
    size: str = "720p",
    seconds: float = 0.0,
    repeat: int = 2,
    sizes: tuple[str, ...] | None = None,
    devices: tuple[str, ...] | None = None,
    frames: int = 4,
    quality: bool = True,
    real_defocus_folder: Path | None = None,
) -> DeblurBenchReport:
    """Time a short panning sequence through each method at each size and device, then
    score each method on the real defocus set (when its folder exists).

    Rows: Wiener deconvolution with a fixed disk (the baseline), unsharp mask, DeblurNet
    per frame and temporal (and the lite variant when its weights exist).

    Args:
        size: a size name, "WxH", or "all" for 720p and 1080p.
        seconds: unused (the io benchmark's clip length); kept for a uniform CLI.
        repeat: runs per row, the best is kept.
        sizes: explicit list of sizes (overrides `size`).
        devices: "cpu" and/or "cuda" (default: the CPU, plus CUDA when available).
        frames: frames per timed sequence.
        quality: also score every method on the real defocus set.
        real_defocus_folder: that set (default `deblur_eval.DEFAULT_REAL_DEFOCUS`); skipped
            with a log message when missing.
    Raises:
        InputError: an unknown size or device, or frames < 1.
    """
    del seconds
    sizes = sizes or (("720p", "1080p") if size == "all" else (size,))
    for s in sizes:
        parse_size(s)
    names = devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    for d in names:
        if d not in ("cpu", "cuda") or (d == "cuda" and not torch.cuda.is_available()):
            raise InputError(f"device {d!r} is not available; use cpu or (with a GPU) cuda.")
    if frames < 1:
        raise InputError(f"frames must be >= 1; got {frames}.")
    devs = [torch.device(d) for d in names]
    report = DeblurBenchReport(
        title=(
            f"deblur: ms per frame on {', '.join(names)}, {frames}-frame panning sequence, "
            f"{torch.get_num_threads()} CPU threads"
        ),
        command=f"vidrefocus bench deblur --size {size} --repeat {repeat}",
    )
    _time_rows(report, sizes, devs, frames, repeat)
    folder = Path(real_defocus_folder) if real_defocus_folder is not None else DEFAULT_REAL_DEFOCUS
    if quality and (folder / "source").is_dir():
        _quality(report, folder, devs[-1])
    elif quality:
        log.warning("%s: real defocus set not found; quality table skipped", folder)
    return report
