"""`vidrefocus bench enhance`: the analyst's job, measured.

Legibility: synthetic CCTV frames with licence plates and signs (`eval.plates`, fixed seeds),
defocused by the project's renderer with camera noise, then restored by DeblurNet (as
`enhance` runs it) and by two classical sharpeners: unsharp masking and a shock filter, which
invents steps where the input has ramps. For each: the share of characters a template matcher
reads, PSNR and SSIM over the text, the stroke edge width (`eval.legibility`), and the
data-consistency residual (the output re-blurred by the defocus map DeblurNet estimated,
against the input: what the audit log records; and, for reference, re-blurred by the true
radius).

Speed: `enhance` per 704x576 frame (DeblurNet + residual) against unsharp masking of the same
frames, a region of interest, and the whole command (decode, field handling, encode, digests,
audit) against `transcode` of the same clip to the same lossless codec.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vidrefocus.analyst.process import FrameEnhancer, reblur, region_psnr
from vidrefocus.analyst.select import Roi
from vidrefocus.eval.baselines import shock_filter, unsharp_mask
from vidrefocus.eval.bench import BenchReport, BenchRow, best_of, parse_size
from vidrefocus.eval.legibility import legibility
from vidrefocus.eval.plates import TextScene, defocus, make_text_scene
from vidrefocus.io.writer import ffmpeg_exe
from vidrefocus.models.deblurnet import load_deblurnet

__all__ = ["EnhanceBenchReport", "LegibilityRow", "legibility_rows", "run"]

log = logging.getLogger(__name__)

SEEDS = tuple(range(8))
RADII_PX = (2.0, 3.0, 4.0)
CLIP_FRAMES = 12


@dataclass(frozen=True)
class LegibilityRow:
    """One method at one blur radius, pooled over the seeded scenes."""

    radius_px: float
    method: str
    recognition: float
    text_psnr_db: float
    text_ssim: float
    edge_width_px: float
    residual_db: float
    residual_true_db: float


@dataclass
class EnhanceBenchReport(BenchReport):
    legibility: list[LegibilityRow] = field(default_factory=list)
    legibility_title: str = ""

    def markdown(self) -> str:
        text = super().markdown()
        if not self.legibility:
            return text
        lines = [
            "",
            "",
            f"#### {self.legibility_title}",
            "",
            "| blur r px | method | characters read | text PSNR dB | text SSIM | edge width px "
            "| residual dB (estimated map) | residual dB (true radius) |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for q in self.legibility:
            lines.append(
                f"| {q.radius_px:g} | {q.method} | {100 * q.recognition:.1f} % "
                f"| {q.text_psnr_db:.2f} | {q.text_ssim:.4f} | {q.edge_width_px:.2f} "
                f"| {q.residual_db:.2f} | {q.residual_true_db:.2f} |"
            )
        return text + "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            **super().to_dict(),
            "legibility_title": self.legibility_title,
            "legibility": [asdict(q) for q in self.legibility],
        }


GROUND_TRUTH = "sharp original (reference)"


def _methods(enhancer: FrameEnhancer) -> list[tuple[str, object]]:
    return [
        (GROUND_TRUTH, "sharp"),
        ("input (defocused)", None),
        ("unsharp mask (sigma 2, amount 1)", unsharp_mask),
        ("shock filter (20 steps, invents edges)", shock_filter),
        ("DeblurNet (enhance)", enhancer),
    ]


def _db(mses: list[float]) -> float:
    """PSNR in dB of the pooled (mean) MSE; inf for identical images."""
    mse = float(np.mean(mses))
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)


def legibility_rows(
    seeds: tuple[int, ...] = SEEDS,
    radii: tuple[float, ...] = RADII_PX,
    size: tuple[int, int] = (704, 576),
) -> list[LegibilityRow]:
    """Legibility and residuals of every method at every radius, pooled over `seeds`."""
    w, h = size
    net = load_deblurnet()
    scenes: list[TextScene] = [make_text_scene(s, h, w) for s in seeds]
    rows = []
    for r in radii:
        enhancer = FrameEnhancer(net, temporal=False, roi=None, frame_size=(w, h))
        pooled: dict[str, dict[str, list[float]]] = {}
        for scene in scenes:
            blurred = defocus(scene.image, r, seed=1000 + scene.seed)
            e = enhancer(blurred)  # DeblurNet's output and its defocus estimate of the input
            true_radius = torch.full_like(e.defocus, r)
            for name, method in _methods(enhancer):
                if method == "sharp":
                    out = scene.image
                elif method is None:
                    out = blurred
                elif method is enhancer:
                    out = e.enhanced
                else:
                    out = method(blurred)
                leg = legibility(out, scene)
                acc = pooled.setdefault(
                    name, {k: [] for k in ("c", "n", "mse", "ssim", "edge", "res", "rtrue")}
                )
                acc["c"].append(leg.correct)
                acc["n"].append(leg.chars)
                acc["mse"].append(10 ** (-leg.psnr_db / 10))
                acc["ssim"].append(leg.ssim)
                acc["edge"].append(leg.edge_width_px)
                acc["res"].append(10 ** (-region_psnr(reblur(out, e.defocus), blurred) / 10))
                acc["rtrue"].append(10 ** (-region_psnr(reblur(out, true_radius), blurred) / 10))
        for name, acc in pooled.items():
            edges = [x for x in acc["edge"] if not math.isnan(x)]
            rows.append(
                LegibilityRow(
                    radius_px=r,
                    method=name,
                    recognition=sum(acc["c"]) / sum(acc["n"]),
                    text_psnr_db=_db(acc["mse"]),
                    text_ssim=float(np.mean(acc["ssim"])),
                    edge_width_px=float(np.mean(edges)) if edges else math.nan,
                    residual_db=_db(acc["res"]),
                    residual_true_db=_db(acc["rtrue"]),
                )
            )
    return rows


def _clip(path: Path, w: int, h: int, frames: int) -> Path:
    """A defocused CCTV-like H.264 clip: a plate scene panning 2 px a frame, r = 3 px, made by
    the ffmpeg CLI from raw frames."""
    scene = make_text_scene(0, h, w + 2 * frames)
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0",
           "-c:v", "libx264", "-crf", "20", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           str(path)]  # fmt: skip
    raw = b""
    for t in range(frames):
        frame = defocus(scene.image[:, :, 2 * t : 2 * t + w].contiguous(), 3.0, seed=t)
        raw += (frame * 255 + 0.5).byte().permute(1, 2, 0).numpy().tobytes()
    subprocess.run(cmd, input=raw, check=True)
    return path


def _time_frames(fn: object, frames: list[Tensor], repeat: int) -> tuple[float, int]:
    def go() -> int:
        for f in frames:
            fn(f)  # type: ignore[operator]
        return len(frames)

    return best_of(repeat, go)


def run(
    size: str = "704x576",
    seconds: float = 0.5,
    repeat: int = 2,
    legibility_table: bool = True,
) -> EnhanceBenchReport:
    """Time `enhance` against its baselines and measure legibility on synthetic plates.

    Args:
        size: frame size ("704x576", PAL 4CIF, by default; or "360p", "WxH").
        seconds: length of the clip for the whole-command rows (25 fps).
        repeat: runs per timing row (best kept).
        legibility_table: also measure legibility (8 scenes x 3 radii; about a minute).
    """
    from vidrefocus.cli import main as cli

    w, h = parse_size("704x576" if size == "all" else size, 64)
    frames = max(2, round(seconds * 25))
    report = EnhanceBenchReport(
        title=f"enhance: faithful deblurring at {w}x{h}",
        command=f"vidrefocus bench enhance --size {size} --seconds {seconds:g} --repeat {repeat}",
    )
    torch.set_num_threads(2)
    net = load_deblurnet()
    scene = make_text_scene(1, h, w)
    stills = [defocus(scene.image, 3.0, seed=t) for t in range(4)]
    base, n = _time_frames(unsharp_mask, stills, repeat)
    report.rows.append(BenchRow("unsharp mask, per frame", base, n, "baseline"))
    whole = FrameEnhancer(net, temporal=False, roi=None, frame_size=(w, h))
    s, n = _time_frames(whole, stills, repeat)
    report.rows.append(BenchRow("DeblurNet + residual, whole frame", s, n, "per frame", s / base))
    reblur_s, n = _time_frames(lambda f: reblur(f, torch.full((1, h, w), 3.0)), stills, repeat)
    report.rows.append(BenchRow("  of which residual (re-blur)", reblur_s, n, "", reblur_s / base))
    roi = FrameEnhancer(net, temporal=False, roi=Roi(w // 3, h // 3, 160, 64), frame_size=(w, h))
    s, n = _time_frames(roi, stills, repeat)
    report.rows.append(
        BenchRow("DeblurNet + residual, 160x64 region", s, n, "96 px context", s / base)
    )
    with tempfile.TemporaryDirectory(prefix="vidrefocus-bench-enhance-") as tmp:
        clip = _clip(Path(tmp) / "cctv.mp4", w, h, frames)

        def transcode() -> int:
            cli(
                [
                    "transcode",
                    str(clip),
                    "-o",
                    f"{tmp}/t.mkv",
                    "--codec",
                    "ffv1",
                    "--overwrite",
                    "-q",
                ]
            )
            return frames

        def enhance(*extra: str) -> int:
            cli(["enhance", str(clip), "-o", f"{tmp}/e.mkv", "--overwrite", "-q", *extra])
            return frames

        io_s, n = best_of(repeat, transcode)
        report.rows.append(BenchRow("transcode to FFV1 (I/O baseline)", io_s, n, "same clip"))
        s, n = best_of(repeat, enhance)
        report.rows.append(
            BenchRow("enhance, whole frame, temporal", s, n, "decode+deblur+encode+audit", s / io_s)
        )
        s, n = best_of(repeat, lambda: enhance("--per-frame"))
        report.rows.append(BenchRow("enhance, whole frame, per frame", s, n, "", s / io_s))
        start = time.perf_counter()
        s, n = best_of(
            repeat,
            lambda: enhance(
                "--roi", f"{w // 3},{h // 3},160,64", "--roi-output", "crop", "--scale", "4"
            ),
        )
        report.rows.append(BenchRow("enhance, 160x64 region x4 lanczos", s, n, "", s / io_s))
        log.debug("region runs took %.1f s", time.perf_counter() - start)
    if legibility_table:
        report.legibility = legibility_rows(size=(w, h))
        report.legibility_title = (
            f"legibility on synthetic plates and signs ({len(SEEDS)} seeded {w}x{h} scenes, "
            "characters 8-40 px, disk blur + camera noise, 8-bit; pooled)"
        )
    return report
