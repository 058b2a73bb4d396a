"""Depth quality on held-out synthetic sequences with ground truth: accuracy, flicker, edges.

`python -m vidrefocus.eval.depth_eval [--json OUT]` measures, for each provider, on moving
layered scenes (`train.deblur_data.make_clip` with seeds no trainer uses, camera frames with
sensor noise and JPEG, ground-truth disparity per frame):

- AbsRel and delta < 1.25 after a per-frame least-squares scale and shift in disparity (the
  usual protocol for relative depth), before and after stabilisation;
- flicker: the mean absolute frame-to-frame change of depth warped by optical flow, on pixels
  whose true depth does not change (flow-confident, static in the ground truth), in
  ground-truth units after one scale-shift fit per sequence; the ground truth's own value is
  the floor that flow error alone gives;
- edge distance: the mean distance in px from depth edges (Canny on the map) to the scene's
  object outlines (the ground truth's depth discontinuities, which are image edges here),
  without and with edge alignment.

Providers: the built-in DepthNet; a user's metric sequence with sensor-like noise written as
16-bit PNG and read back through `io.depth.DepthSequence`; Depth Anything V2 with tiny random
weights (a pipeline check only: its numbers mean nothing about the real model).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidrefocus.depth_temporal import DepthStabilizer, StabilizeSettings, fit_scale_shift
from vidrefocus.models.flow import DISFlow, warp

__all__ = [
    "EVAL_SEED",
    "aligned_errors",
    "edge_distance",
    "eval_sequences",
    "evaluate_depth",
    "flicker",
    "markdown",
    "save_tiny_depth_anything",
]

# Seeds of the held-out sequences: far from every trainer's range (they start at 0 / 10^6).
EVAL_SEED = 9_100_000


def eval_sequences(
    count: int = 6, frames: int = 16, size: int = 160, seed: int = EVAL_SEED
) -> list[dict[str, Tensor]]:
    """Held-out moving scenes: camera frames (T, 3, S, S) float, clean frames, disparity.

    Returns:
        dicts with "frames" (noisy, compressed camera frames in [0, 1]), "clean" (the same
        frames without noise) and "disparity" (T, 1, S, S) in 1/m.
    """
    from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip

    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train_natural"
    sources = SharpSources(folder) if folder.is_dir() else None
    cfg = ClipConfig(size=size, frames=frames, in_focus_fraction=1.0, motion_px=2.5)
    out = []
    for i in range(count):
        clip = make_clip(seed + i, cfg, sources, backdrop_parallax=True)
        out.append(
            {
                "frames": clip["blurred"].float() / 255.0,
                "clean": clip["sharp"].float() / 255.0,
                "disparity": clip["disparity"].float(),
            }
        )
    return out


def aligned_errors(pred: Tensor, gt: Tensor) -> dict[str, float]:
    """AbsRel and delta < 1.25 in depth after a per-frame scale-shift fit in disparity.

    Args:
        pred, gt: (T, 1, H, W) disparity-like (gt in 1/m, > 0).
    """
    s, b = fit_scale_shift(pred, gt, torch.ones_like(gt), iterations=1)
    aligned = (s * pred + b).clamp_min(float(gt.min()) * 0.5)
    d_pred, d_gt = 1.0 / aligned, 1.0 / gt
    ratio = torch.maximum(d_pred / d_gt, d_gt / d_pred)
    return {
        "abs_rel": float(((d_pred - d_gt).abs() / d_gt).mean()),
        "delta1": float((ratio < 1.25).float().mean()),
    }


def _sequence_fit(pred: Tensor, gt: Tensor) -> Tensor:
    """`pred` in ground-truth units: one scale and shift for the whole sequence."""
    s, b = fit_scale_shift(pred.reshape(1, 1, -1, 1), gt.reshape(1, 1, -1, 1),
                           torch.ones(1, 1, gt.numel(), 1), iterations=1)  # fmt: skip
    return s * pred + b


def _static_masks(clean: Tensor, gt: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Per frame t >= 1: flow t -> t-1 and where the true depth is static and flow trusted."""
    dis = DISFlow("medium", max_side_px=max(clean.shape[-2:]))
    flows, masks = [], []
    span = float(gt.max() - gt.min()) or 1.0
    for t in range(1, clean.shape[0]):
        flow, conf = dis.flow_and_confidence(clean[t : t + 1], clean[t - 1 : t])
        steady = (warp(gt[t - 1 : t], flow) - gt[t : t + 1]).abs() < 0.01 * span
        flows.append(flow)
        masks.append(conf.bool() & steady)
    return flows, masks


def flicker(depth: Tensor, flows: list[Tensor], masks: list[Tensor]) -> float:
    """Mean |D_t - warp(D_{t-1})| over the static, flow-trusted pixels of every t >= 1."""
    total, count = 0.0, 0
    for t, (flow, mask) in enumerate(zip(flows, masks, strict=True), start=1):
        diff = (depth[t : t + 1] - warp(depth[t - 1 : t], flow)).abs()
        total += float(diff[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1)


def _edges(depth: Tensor) -> np.ndarray:
    d = depth[0].numpy().astype(np.float64)
    lo, hi = np.percentile(d, 1), np.percentile(d, 99)
    u8 = np.clip((d - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
    return cv2.Canny(u8, 40, 100) > 0


def edge_distance(pred: Tensor, gt: Tensor) -> float:
    """Mean distance (px) from the depth edges of `pred` to the nearest edge of `gt`."""
    total, count = 0.0, 0
    for p, g in zip(pred, gt, strict=True):
        gt_edges = _edges(g)
        pred_edges = _edges(p)
        if not gt_edges.any() or not pred_edges.any():
            continue
        dist = cv2.distanceTransform((~gt_edges).astype(np.uint8), cv2.DIST_L2, 3)
        total += float(dist[pred_edges].sum())
        count += int(pred_edges.sum())
    return total / max(count, 1)


def _run(
    raw: Callable[[dict[str, Tensor]], Tensor],
    metric: bool,
    seqs: list[dict[str, Tensor]],
    product: str = "full",
) -> dict[str, float | str]:
    """Raw, stabilised (no edges), edge-aligned only, and the full treatment, averaged.

    `product` names the variant vidrefocus runs for this provider (estimated depth: "full";
    a user's sequence: "stabilized", its edges are taken as aligned); the flicker ratio is
    raw over that one.
    """
    keys = ("raw", "stabilized", "edges_only", "full")
    acc: dict[str, dict[str, list[float]]] = {k: {} for k in keys}
    floor = []
    for seq in seqs:
        frames, gt = seq["frames"], seq["disparity"]
        d_raw = raw(seq)
        settings = StabilizeSettings()
        variants = {
            "raw": d_raw,
            "stabilized": DepthStabilizer(metric=metric, settings=replace(settings, edges=False))(
                d_raw, frames
            ),
            "edges_only": DepthStabilizer(
                metric=metric, settings=replace(settings, history=0.0, anchor=1.0)
            )(d_raw, frames),
            "full": DepthStabilizer(metric=metric, settings=settings)(d_raw, frames),
        }
        flows, masks = _static_masks(seq["clean"], gt)
        floor.append(flicker(gt, flows, masks))
        for key, d in variants.items():
            row = aligned_errors(d, gt)
            row["flicker"] = flicker(_sequence_fit(d, gt), flows, masks)
            row["edge_px"] = edge_distance(d, gt)
            for name, value in row.items():
                acc[key].setdefault(name, []).append(value)
    out: dict[str, float | str] = {"flicker_gt": float(np.mean(floor))}
    for key in keys:
        for name, values in acc[key].items():
            out[f"{key}_{name}"] = float(np.mean(values))
    out["product"] = product
    out["flicker_ratio"] = out["raw_flicker"] / max(out[f"{product}_flicker"], 1e-12)
    return out


def _builtin(seq: dict[str, Tensor]) -> Tensor:
    from vidrefocus.models.depthnet import BuiltinDepth, load_depthnet

    return BuiltinDepth(load_depthnet())(seq["frames"])


def _noisy_user_sequence(noise: float = 0.03, jitter: float = 0.02, seed: int = 7):
    """A user's metric depth from a noisy sensor: per-pixel noise and per-frame scale jitter,
    saved as 16-bit PNG in mm and read back through `DepthSequence`."""
    from vidrefocus.io.depth import DepthSequence

    def raw(seq: dict[str, Tensor]) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        metres = 1.0 / seq["disparity"]
        scale = 1.0 + jitter * torch.randn(metres.shape[0], 1, 1, 1, generator=g)
        noisy = metres * scale * (1.0 + noise * torch.randn(metres.shape, generator=g))
        with tempfile.TemporaryDirectory() as tmp:
            for t, m in enumerate(noisy):
                mm = np.clip(m[0].numpy() * 1000.0, 1, 65535).astype(np.uint16)
                cv2.imwrite(str(Path(tmp) / f"{t:06d}.png"), mm)
            depth = DepthSequence(tmp, units="mm", frame_count=len(noisy))
            return torch.cat([depth[t] for t in range(len(depth))])

    return raw


def save_tiny_depth_anything(folder: Path, seed: int = 0) -> Path:
    """A tiny randomly initialised Depth Anything (same architecture family, ~0.1 M
    parameters) saved as `save_pretrained` does: what offline tests load in place of the
    real checkpoint, through the real loading code."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        image_size=56, patch_size=14, out_indices=[1, 2], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
        neck_hidden_sizes=[8, 16], reassemble_factors=[2, 1], fusion_hidden_size=16,
        head_hidden_size=8, depth_estimation_type="relative",
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DepthAnythingForDepthEstimation(config)
    model.save_pretrained(folder)
    return folder


def _random_model(seq: dict[str, Tensor]) -> Tensor:
    from vidrefocus.models.depth_anything import load_depth_anything

    with tempfile.TemporaryDirectory() as tmp:
        model = load_depth_anything(save_tiny_depth_anything(Path(tmp) / "tiny"), input_size=56)
        return model(seq["frames"])


def evaluate_depth(count: int = 6, frames: int = 16, size: int = 160) -> dict[str, dict]:
    """Every provider on the same held-out sequences (see the module docstring)."""
    torch.manual_seed(0)
    seqs = eval_sequences(count, frames, size)
    return {
        "builtin": _run(_builtin, False, seqs),
        "user_sequence_noisy": _run(_noisy_user_sequence(), True, seqs, "stabilized"),
        "random_model_pipeline_check": _run(_random_model, False, seqs),
        "setup": {"sequences": count, "frames": frames, "size": size, "seed": EVAL_SEED},
    }


def markdown(results: dict[str, dict]) -> str:
    """The tables BENCHMARKS.md records."""
    lines = [
        "| provider | variant | AbsRel | delta<1.25 | flicker | edge px |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        if name == "setup":
            continue
        for key in ("raw", "stabilized", "edges_only", "full"):
            lines.append(
                f"| {name} | {key} | {row[f'{key}_abs_rel']:.3f} | {row[f'{key}_delta1']:.3f} "
                f"| {row[f'{key}_flicker']:.4f} | {row[f'{key}_edge_px']:.2f} |"
            )
        ratio = f"{row['flicker_ratio']:.2f}x" if row["raw_flicker"] > 1e-5 else "n/a (flat)"
        lines.append(
            f"| {name} | flicker raw / {row['product']} | {ratio} | | "
            f"GT floor {row['flicker_gt']:.4f} | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidrefocus.eval.depth_eval")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args(argv)
    results = evaluate_depth(args.count, args.frames, args.size)
    sys.stdout.write(markdown(results) + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
