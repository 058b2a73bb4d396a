"""Quality of a deblurrer: real defocus, held-out synthetic clips, temporal stability, no harm.

A deblurrer is any callable `frames (B, 3, H, W) -> sharp` (or `-> (sharp, defocus px)`, as
`TemporalDeblur` returns); see `eval.real_defocus`, which also holds the real-set measurement
(re-exported here).

`python -m vidrefocus.eval.deblur_eval [--weights PATH] [--json OUT]` runs everything and
prints the JSON summary the weights card quotes.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.eval.baselines import unsharp_mask
from vidrefocus.eval.metrics import psnr, warp_error
from vidrefocus.eval.real_defocus import (
    DEFAULT_REAL_DEFOCUS,
    Deblurrer,
    ImageScore,
    RealDefocusResult,
    real_defocus,
    real_defocus_wiener_oracle,
    reset_deblurrer,
    run_deblurrer,
)
from vidrefocus.models.flow import DISFlow
from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip

__all__ = [
    "DEFAULT_REAL_DEFOCUS",
    "Deblurrer",
    "ImageScore",
    "RealDefocusResult",
    "SyntheticResult",
    "TemporalResult",
    "do_no_harm_sample",
    "main",
    "real_defocus",
    "real_defocus_wiener_oracle",
    "synthetic_heldout",
    "temporal_stability",
]

log = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLE = _REPO / "samples" / "scene_sharp.mp4"
# Far from the training seeds (2024 + i, i < 3000) and validation (2024 + 10_000_000 + i).
HELDOUT_SEED = 900_000_000
TEMPORAL_SEED = 910_000_000


# -- held-out synthetic clips ----------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticResult:
    """Held-out synthetic clips: mean per-frame PSNR (dB) over blurred clips, defocus-map
    error (px, None when the deblurrer gives no map), and output-vs-input PSNR on the sharp
    frames (do no harm). A border of `border` px is left out."""

    clips: int
    blurred_clips: int
    input_psnr_db: float
    output_psnr_db: float
    defocus_mae_px: float | None
    no_harm_psnr_db: float
    border: int
    textures: str
    seeds: tuple[int, int] = (HELDOUT_SEED, HELDOUT_SEED)

    @property
    def psnr_gain_db(self) -> float:
        return self.output_psnr_db - self.input_psnr_db

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "psnr_gain_db": self.psnr_gain_db}


@functools.cache
def _sources(folder: str) -> SharpSources:
    # Reading the ~50 photos takes a while; every measurement of a run shares them.
    return SharpSources(Path(folder))


def _clip_sources(textures: Path | None) -> tuple[SharpSources | None, str]:
    """Training textures if present (held-out crops of the same pool), else procedural."""
    folder = textures if textures is not None else _REPO.parent / "shared/data/train_natural"
    if Path(folder).is_dir():
        return _sources(str(folder)), str(folder)
    return None, "procedural (dead leaves)"


@functools.lru_cache(maxsize=1)
def _heldout_clips(
    clips: int, size: int, frames: int, seed: int, textures: Path | None
) -> tuple[list[dict[str, Tensor]], str]:
    # Cached: a run measures the per-frame and the recurrent mode on the same clips.
    sources, texture_note = _clip_sources(textures)
    cfg = ClipConfig(size=size, frames=frames)
    return [make_clip(seed + i, cfg, sources) for i in range(clips)], texture_note


def synthetic_heldout(
    deblur: Deblurrer,
    clips: int = 48,
    size: int = 144,
    frames: int = 3,
    seed: int = HELDOUT_SEED,
    textures: Path | None = None,
    border: int = 8,
    device: str | torch.device = "cpu",
) -> SyntheticResult:
    """Clips made like the training data but with far-away seeds (`seed + i`).

    Each clip runs through the deblurrer as a sequence (reset first). PSNR is the mean over
    the frames of blurred clips (largest defocus > 1 px); the defocus error is over all
    clips; "no harm" runs the clean sharp frames through and compares output with input
    (mean per-frame PSNR; frames returned unchanged, at infinite PSNR, are left out of the
    mean, and it is inf when all are).

    Args:
        deblur: a deblurrer.
        clips: number of clips.
        size: frame side px (training: 144).
        frames: frames per clip (training: 3).
        seed: first seed.
        textures: the `train_natural` folder (default: ../shared/data/train_natural if it
            exists, else procedural textures only).
        border: px left out at each edge.
        device: where frames are sent.
    Returns:
        A `SyntheticResult`.
    """
    dev = torch.device(device)
    clip_list, texture_note = _heldout_clips(clips, size, frames, seed, textures)
    crop = (slice(None), slice(None), slice(border, size - border), slice(border, size - border))
    psnr_in, psnr_out, no_harm, mae = [], [], [], []
    blurred_clips = 0
    for clip in clip_list:
        blurred = clip["blurred"].float() / 255.0
        sharp = clip["sharp"].float() / 255.0
        defocus = clip["defocus"].float()
        reset_deblurrer(deblur)
        out, dmap = run_deblurrer(deblur, blurred, dev)
        reset_deblurrer(deblur)
        same, _ = run_deblurrer(deblur, sharp, dev)
        no_harm.extend(psnr(same[crop], sharp[crop]).tolist())
        if dmap is not None:
            mae.append(float((dmap - defocus)[crop].abs().mean()))
        if float(defocus.max()) > 1.0:
            blurred_clips += 1
            psnr_in.extend(psnr(blurred[crop], sharp[crop]).tolist())
            psnr_out.extend(psnr(out[crop], sharp[crop]).tolist())
    finite = [v for v in no_harm if np.isfinite(v)]
    return SyntheticResult(
        clips=clips,
        blurred_clips=blurred_clips,
        input_psnr_db=float(np.mean(psnr_in)) if psnr_in else float("nan"),
        output_psnr_db=float(np.mean(psnr_out)) if psnr_out else float("nan"),
        defocus_mae_px=float(np.mean(mae)) if mae else None,
        no_harm_psnr_db=float(np.mean(finite)) if finite else float("inf"),
        border=border,
        textures=texture_note,
        seeds=(seed, seed + clips - 1),
    )


# -- temporal stability ----------------------------------------------------------------------


@dataclass(frozen=True)
class TemporalResult:
    """E_warp (`metrics.warp_error`, mean over clips) of each deblurrer's output, of the
    blurred input and of the ground-truth sharp sequence, all with the same flow (DIS on the
    sharp frames); ratios are to the ground truth (1 = as stable as the real scene)."""

    clips: int
    frames: int
    size: int
    seeds: list[int]
    e_warp: dict[str, float]
    e_warp_ground_truth: float
    ratio_to_ground_truth: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def temporal_stability(
    deblurrers: Mapping[str, Deblurrer],
    clips: int = 6,
    size: int = 192,
    frames: int = 8,
    seed: int = TEMPORAL_SEED,
    textures: Path | None = None,
    device: str | torch.device = "cpu",
    camera_noise: bool = True,
) -> TemporalResult:
    """Flicker of each deblurrer on blurred synthetic sequences with camera motion.

    Seeds from `seed` on are drawn until `clips` clips have both blur (> 1 px) and a moving
    camera (mean |flow| > 0.5 px); locked-off or in-focus draws are skipped. The flow comes
    from the ground-truth sharp frames, so every sequence is judged along the same motion.

    Args:
        deblurrers: name -> deblurrer, e.g. {"per_frame": ..., "recurrent": ...}; "input"
            (the blurred frames themselves) is added.
        clips: sequences to average over.
        size: frame side px.
        frames: frames per sequence.
        seed: first seed tried.
        textures: as in `synthetic_heldout`.
        device: where frames are sent.
        camera_noise: blurred frames carry sensor noise and JPEG like the training clips
            (independent per frame, so the input itself flickers); False isolates the flicker
            that deblurring adds.
    Returns:
        A `TemporalResult`.
    """
    sources, _ = _clip_sources(textures)
    cfg = ClipConfig(size=size, frames=frames, in_focus_fraction=0.0)
    if not camera_noise:
        cfg = replace(cfg, noise_fraction=0.0, jpeg_fraction=0.0)
    dis = DISFlow("medium", max_side_px=size)
    dev = torch.device(device)
    errors: dict[str, list[float]] = {"input": [], **{name: [] for name in deblurrers}}
    gt_errors: list[float] = []
    seeds: list[int] = []
    s = seed
    while len(seeds) < clips and s < seed + 50 * clips:
        clip = make_clip(s, cfg, sources)
        s += 1
        sharp = clip["sharp"].float() / 255.0
        blurred = clip["blurred"].float() / 255.0
        flow, conf = dis.flow_and_confidence(sharp[1:], sharp[:-1])
        if float(clip["defocus"].float().max()) <= 1.0 or float(flow.norm(dim=1).mean()) <= 0.5:
            continue
        seeds.append(s - 1)
        flows = torch.cat([torch.zeros_like(flow[:1]), flow])
        confs = torch.cat([torch.zeros_like(conf[:1]), conf])
        gt_errors.append(warp_error(sharp, flows, confs))
        errors["input"].append(warp_error(blurred, flows, confs))
        for name, deblur in deblurrers.items():
            reset_deblurrer(deblur)
            out, _ = run_deblurrer(deblur, blurred, dev)
            errors[name].append(warp_error(out, flows, confs))
    if not seeds:
        raise InputError("temporal_stability: no clip with blur and camera motion was drawn.")
    gt = float(np.mean(gt_errors))
    e_warp = {name: float(np.mean(v)) for name, v in errors.items()}
    return TemporalResult(
        clips=len(seeds),
        frames=frames,
        size=size,
        seeds=seeds,
        e_warp=e_warp,
        e_warp_ground_truth=gt,
        ratio_to_ground_truth={name: v / gt for name, v in e_warp.items()},
    )


# -- do no harm on the sample ----------------------------------------------------------------


def do_no_harm_sample(
    deblur: Deblurrer,
    path: Path | None = None,
    max_frames: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Output vs input PSNR on all-in-focus footage (samples/scene_sharp.mp4): a deblurrer
    should leave sharp frames alone. Frames run in order as one sequence.

    Args:
        deblur: a deblurrer.
        path: the video (default: the sample).
        max_frames: stop after this many frames (None: all).
        device: where frames are sent.
    Returns:
        {"frames", "mean_psnr_db", "min_psnr_db"} (inf where output == input).
    Raises:
        InputError: the video is missing or unreadable.
    """
    from vidrefocus.io.reader import VideoReader

    path = Path(path) if path is not None else DEFAULT_SAMPLE
    if not path.is_file():
        raise InputError(f"{path}: sample video not found; run `python samples/make_samples.py`.")
    reset_deblurrer(deblur)
    values = []
    for frame in VideoReader(path):
        if max_frames is not None and frame.index >= max_frames:
            break
        out, _ = run_deblurrer(deblur, frame.rgb[None], device)
        values.append(float(psnr(out[0], frame.rgb)))
    return {
        "frames": len(values),
        "mean_psnr_db": float(np.mean(values)),
        "min_psnr_db": float(np.min(values)),
    }


# -- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement on DeblurNet (and the classical baselines) and print JSON."""
    from vidrefocus.models.deblurnet import TemporalDeblur, default_weights_path, load_deblurnet

    parser = argparse.ArgumentParser(prog="python -m vidrefocus.eval.deblur_eval")
    parser.add_argument("--weights", type=Path, help="DeblurNet safetensors (default: packaged)")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write the JSON here")
    parser.add_argument("--real-defocus", type=Path, help="real defocus folder")
    parser.add_argument("--clips", type=int, default=48, help="held-out synthetic clips")
    parser.add_argument("--temporal-clips", type=int, default=6, help="sequences for E_warp")
    parser.add_argument("--no-baselines", action="store_true", help="skip unsharp / Wiener")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    weights = args.weights or default_weights_path()
    net = load_deblurnet(weights, device=args.device)
    per_frame = TemporalDeblur(net, temporal=False)
    recurrent = TemporalDeblur(net, temporal=True)
    start = time.perf_counter()
    summary: dict[str, object] = {
        "weights": str(weights),
        "sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(),
        "device": args.device,
        "recurrent_settings": {
            k: getattr(recurrent, k)
            for k in ("history", "tolerance", "denoise", "noise_sigmas", "flow_scale")
        },
    }
    log.info("real defocus set")
    net_real = real_defocus(per_frame, args.real_defocus, args.device)
    real: dict[str, object] = {"deblurnet": net_real.to_dict()}
    if not args.no_baselines:
        real["unsharp_mask_sigma2_amount1"] = real_defocus(
            unsharp_mask, args.real_defocus
        ).to_dict()
        real["wiener_oracle_radius"] = real_defocus_wiener_oracle(args.real_defocus).to_dict()
    summary["real_defocus"] = real
    log.info("held-out synthetic clips")
    summary["synthetic_heldout"] = {
        "per_frame": synthetic_heldout(per_frame, args.clips, device=args.device).to_dict(),
        "recurrent": synthetic_heldout(recurrent, args.clips, device=args.device).to_dict(),
    }
    log.info("temporal stability")
    modes = {"per_frame": per_frame, "recurrent": recurrent}
    for key, noise in (("temporal_stability", True), ("temporal_stability_clean", False)):
        summary[key] = temporal_stability(
            modes, clips=args.temporal_clips, device=args.device, camera_noise=noise
        ).to_dict()
    log.info("do no harm on samples/scene_sharp.mp4")
    summary["do_no_harm_sample"] = {
        "per_frame": do_no_harm_sample(per_frame, device=args.device),
        "recurrent": do_no_harm_sample(recurrent, device=args.device),
    }
    summary["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(summary, indent=2)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
