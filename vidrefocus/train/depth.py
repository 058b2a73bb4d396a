"""Train DepthNet on synthetic layered clips (`vidrefocus.train.deblur_data`).

`python -m vidrefocus.train depth --config configs/train/depthnet.yaml [--out PATH]`

The clips are the deblur trainer's layered scenes (camera motion, parallax, moving objects,
defocus in about half of them, noise, JPEG) with their visible disparity, and with the
backdrop moving by its own depth too. Each sample is the last frame of a clip with its DIS
flow to the previous one turned into parallax channels (`models.depthnet.parallax_channels`);
a fraction of samples has them zeroed, as on a first frame. The loss is scale-and-shift
invariant (Ranftl et al., "Towards Robust Monocular Depth Estimation", TPAMI 2022:
per-image median / mean-absolute-deviation normalisation, then L1, plus multi-scale gradient
matching). Clips are rendered once and cached as safetensors under .cache/vidrefocus-train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from vidrefocus.models.depthnet import (
    BuiltinDepth,
    DepthNet,
    DepthNetConfig,
    config_metadata,
    default_weights_path,
    parallax_channels,
)
from vidrefocus.train.config import load_train_config
from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip

__all__ = [
    "DepthTrainConfig",
    "align_scale_shift",
    "cached_clips",
    "depth_metrics",
    "evaluate_sequence",
    "evaluate_synthetic",
    "ssi_loss",
    "train_depth",
    "write_card",
]

log = logging.getLogger(__name__)

# What the depth clips keep of `make_clip` (the sharp frames and blur maps are not needed).
_KEYS = ("blurred", "flow", "confidence", "disparity")
# Held-out clips use seeds from here on (training seeds are `seed + i`, i < clips).
_VAL_OFFSET = 20_000_000
# Bump when the clip content changes without a change of config (the cache key).
_DATA_VERSION = 1


@dataclass(frozen=True)
class DepthTrainConfig:
    seed: int = 2025
    clips: int = 2400
    val_clips: int = 150
    size: int = 144
    frames: int = 2
    max_radius_px: float = 16.0
    in_focus_fraction: float = 0.5
    motion_px: float = 4.0
    backdrop_parallax: bool = True
    widths: tuple[int, ...] = (16, 32, 48, 64, 96)
    blocks: tuple[int, ...] = (1, 1, 1, 2, 2)
    crop: int = 128
    steps: int = 3000
    batch: int = 12
    lr: float = 1e-3
    parallax_dropout: float = 0.3
    gradient_weight: float = 0.5
    workers: int = 2
    textures: str | None = "../shared/data/train_natural"

    @classmethod
    def from_yaml(cls, path: Path) -> DepthTrainConfig:
        """Read a config; unknown keys are a `ConfigError` naming them."""
        return load_train_config(cls, path)

    @property
    def clip_config(self) -> ClipConfig:
        return ClipConfig(
            size=self.size,
            frames=self.frames,
            max_radius_px=self.max_radius_px,
            in_focus_fraction=self.in_focus_fraction,
            motion_px=self.motion_px,
        )


_SOURCES: SharpSources | None = None


def _init_worker(folder: str | None) -> None:
    # Module state, but only inside a rendering worker process (one per process).
    global _SOURCES
    torch.set_num_threads(1)
    _SOURCES = SharpSources(Path(folder)) if folder and Path(folder).is_dir() else None


def _clip_worker(args: tuple[int, ClipConfig, bool]) -> dict[str, Tensor]:
    seed, cfg, backdrop_parallax = args
    clip = make_clip(seed, cfg, _SOURCES, backdrop_parallax=backdrop_parallax)
    return {k: clip[k] for k in _KEYS}


def cached_clips(
    count: int,
    cfg: ClipConfig,
    seed_base: int,
    textures: str | None,
    workers: int,
    backdrop_parallax: bool = True,
) -> dict[str, Tensor]:
    """Render `count` clips (seeds `seed_base + i`), cached under .cache/ by everything that
    changes them.

    Returns:
        blurred (N, T, 3, S, S) uint8, flow (N, T, 2, S, S) float16 px (t -> t-1),
        confidence (N, T, 1, S, S) uint8, disparity (N, T, 1, S, S) float16 1/m.
    """
    sources = SharpSources(Path(textures)) if textures and Path(textures).is_dir() else None
    ident = json.dumps(
        [_DATA_VERSION, count, seed_base, asdict(cfg), backdrop_parallax,
         sources.names if sources else []]
    )  # fmt: skip
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    path = Path(".cache") / "vidrefocus-train" / f"depth-{digest}.safetensors"
    if path.is_file():
        log.info("using cached clips %s", path)
        return load_file(str(path))
    start = time.perf_counter()
    jobs = [(seed_base + i, cfg, backdrop_parallax) for i in range(count)]
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(textures,)) as pool:
            clips = pool.map(_clip_worker, jobs, chunksize=16)
    else:
        _init_worker(textures)
        clips = [_clip_worker(job) for job in jobs]
    data = {key: torch.stack([c[key] for c in clips]) for key in _KEYS}
    log.info("rendered %d clips in %.0f s", count, time.perf_counter() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in data.items()}, str(tmp))
    tmp.replace(path)
    return data


def align_scale_shift(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per-image least-squares scale and shift of `pred` onto `target` over `mask`.

    The scale is kept >= 0: a map with depth the wrong way round (nearer = smaller) must not
    be flipped into a good one; it aligns to the target's mean instead.

    Args:
        pred: (B, 1, H, W) float, any affine-invariant disparity.
        target: (B, 1, H, W) float.
        mask: (B, 1, H, W) float in {0, 1}, pixels that count.
    Returns:
        (B, 1, H, W) `s * pred + t` with (s >= 0, t) minimising the masked squared error; a
        constant prediction is moved to the target's masked mean (s = 0).
    """
    n = mask.sum((1, 2, 3), keepdim=True).clamp_min(1.0)
    mp = (pred * mask).sum((1, 2, 3), keepdim=True) / n
    mt = (target * mask).sum((1, 2, 3), keepdim=True) / n
    dp = (pred - mp) * mask
    var = (dp * dp).sum((1, 2, 3), keepdim=True)
    cov = (dp * (target - mt)).sum((1, 2, 3), keepdim=True)
    scale = (cov / var.clamp_min(1e-12) * (var > 1e-12)).clamp_min(0.0)
    return scale * (pred - mp) + mt


def _normalise(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: shift by the median, divide by the mean absolute deviation (Ranftl et al.,
    TPAMI 2022), and a (B,) mask of images that are not flat."""
    median = x.flatten(1).median(dim=1).values.view(-1, 1, 1, 1)
    mad = (x - median).abs().mean((1, 2, 3), keepdim=True)
    valid = (mad.flatten() > 1e-4).float()
    return (x - median) / mad.clamp_min(1e-4), valid


def ssi_loss(pred: Tensor, target: Tensor, gradient_weight: float = 0.5, scales: int = 4) -> Tensor:
    """Scale-and-shift-invariant L1 plus multi-scale gradient matching (Ranftl et al.).

    Prediction and target are each normalised by their median and mean absolute deviation
    (their "ssimae" loss), not aligned by least squares: the normalising scale is always
    positive, so the loss keeps "larger = nearer" (a least-squares scale may turn negative
    and would accept an inverted map), and the prediction always gets a gradient.

    Args:
        pred: (B, 1, H, W) float, the net's output.
        target: (B, 1, H, W) float disparity (1/m); flat targets are left out.
        gradient_weight: weight of the gradient matching term.
        scales: the gradient term is taken at 1, 1/2, ... 1/2^(scales-1).
    Returns:
        () the loss (0 if every target is flat).
    """
    norm_target, valid = _normalise(target)
    norm_pred, _ = _normalise(pred)
    mask = valid.view(-1, 1, 1, 1).expand_as(pred)
    count = (valid.sum() * pred.shape[-1] * pred.shape[-2]).clamp_min(1.0)
    diff = (norm_pred - norm_target) * mask
    loss = diff.abs().sum() / count
    grad = pred.new_zeros(())
    for k in range(scales):
        d = diff[..., :: 2**k, :: 2**k]
        gx = (d[..., :, 1:] - d[..., :, :-1]).abs().sum()
        gy = (d[..., 1:, :] - d[..., :-1, :]).abs().sum()
        grad = grad + (gx + gy) / count * 4**k
    return loss + gradient_weight * grad / scales


def depth_metrics(pred: Tensor, target: Tensor, border: int = 8) -> dict[str, float]:
    """AbsRel and delta < 1.25 of disparity after per-image scale-shift alignment.

    Computed in disparity (1/m) space, the quantity the estimator returns and blur follows;
    the scale is kept >= 0 (`align_scale_shift`), an aligned value <= 0 counts as a miss for
    delta. Flat targets are skipped.

    Args:
        pred: (B, 1, H, W) float predictions.
        target: (B, 1, H, W) float disparity, > 0.
        border: pixels left out at each edge.
    Returns:
        abs_rel (mean over images), delta_1_25 (mean fraction), images (how many counted).
    """
    crop = (..., slice(border, -border or None), slice(border, -border or None))
    pred, target = pred[crop].double(), target[crop].double()
    _, valid = _normalise(target)
    keep = valid.bool()
    pred, target = pred[keep], target[keep]
    if not len(pred):
        return {"abs_rel": float("nan"), "delta_1_25": float("nan"), "images": 0}
    aligned = align_scale_shift(pred, target, torch.ones_like(pred))
    abs_rel = ((aligned - target).abs() / target).mean((1, 2, 3))
    ratio = torch.maximum(aligned / target, target / aligned.clamp_min(1e-9))
    delta = ((ratio < 1.25) & (aligned > 0)).double().mean((1, 2, 3))
    return {
        "abs_rel": float(abs_rel.mean()),
        "delta_1_25": float(delta.mean()),
        "images": len(pred),
    }


def _luma(rgb: Tensor) -> Tensor:
    return (0.2126 * rgb[:, 0:1] + 0.7152 * rgb[:, 1:2] + 0.0722 * rgb[:, 2:3]).contiguous()


@torch.no_grad()
def evaluate_synthetic(net: DepthNet, data: dict[str, Tensor], border: int = 8) -> dict:
    """Held-out metrics on the last frame of each clip (`depth_metrics`).

    Compares DepthNet without parallax (the channels zeroed, as on a first frame) and with
    the parallax from the clip's flow, and trivial baselines: a flat map, luma as disparity
    (brighter = nearer) and the flow magnitude relative to the global translation (pure
    parallax, no learning).
    """
    net.eval()
    frames = data["blurred"][:, -1].float() / 255.0
    flow = data["flow"][:, -1].float()
    conf = data["confidence"][:, -1].float()
    target = data["disparity"][:, -1].float()
    mono, moving, parallax_all = [], [], []
    for i in range(0, frames.shape[0], 16):
        par = parallax_channels(flow[i : i + 16], conf[i : i + 16])
        parallax_all.append(par)
        mono.append(net(frames[i : i + 16]))
        moving.append(net(frames[i : i + 16], par))
    parallax = torch.cat(parallax_all)
    # The camera moved in clips whose global translation is not ~0 (in median flows, or the
    # median flow itself was tiny): the parallax cue exists there.
    baselines = {
        "flat": torch.zeros_like(target),
        "luma": _luma(frames),
        "flow_magnitude": parallax[:, 2:4].norm(dim=1, keepdim=True),
    }
    result = {
        "clips": int(frames.shape[0]),
        "metric_space": "disparity (1/m), per-image least-squares scale and shift",
        "border_px": border,
        "depthnet_mono": depth_metrics(torch.cat(mono), target, border),
        "depthnet_parallax": depth_metrics(torch.cat(moving), target, border),
    }
    for name, pred in baselines.items():
        result[f"baseline_{name}"] = depth_metrics(pred, target, border)
    return result


@torch.no_grad()
def evaluate_sequence(
    estimator: BuiltinDepth, frames: Tensor, target: Tensor, border: int = 8, batch: int = 8
) -> dict:
    """`depth_metrics` of an estimator on a whole shot, with and without the previous frame.

    Args:
        estimator: a `BuiltinDepth` (any `DepthEstimator` works).
        frames: (T, 3, H, W) float32 in [0, 1], consecutive frames of one shot.
        target: (T, 1, H, W) float32 disparity (1/m).
        border: pixels left out at each edge.
        batch: frames per call.
    Returns:
        "sequence" (frames in order, parallax from the second frame on) and "per_frame"
        (`reset()` before every frame: monocular), each a `depth_metrics` result.
    """
    estimator.reset()
    moving = torch.cat([estimator(frames[i : i + batch]) for i in range(0, len(frames), batch)])
    alone = []
    for frame in frames.split(1):
        estimator.reset()
        alone.append(estimator(frame))
    estimator.reset()
    return {
        "frames": len(frames),
        "sequence": depth_metrics(moving, target, border),
        "per_frame": depth_metrics(torch.cat(alone), target, border),
    }


def _batch(data: dict[str, Tensor], cfg: DepthTrainConfig, g: torch.Generator) -> tuple:
    """Frames, parallax channels and targets of a random batch (crops and flips)."""
    n, frames = data["blurred"].shape[:2]
    size = data["blurred"].shape[-1]
    idx = torch.randint(0, n, (cfg.batch,), generator=g)
    drop = torch.rand(cfg.batch, generator=g) < cfg.parallax_dropout
    t = torch.randint(1, frames, (cfg.batch,), generator=g) if frames > 1 else None
    rgb, flow, conf, disp = [], [], [], []
    for j, i in enumerate(idx.tolist()):
        k = int(t[j]) if t is not None else 0
        y0 = int(torch.randint(0, size - cfg.crop + 1, (1,), generator=g))
        x0 = int(torch.randint(0, size - cfg.crop + 1, (1,), generator=g))
        win = (..., slice(y0, y0 + cfg.crop), slice(x0, x0 + cfg.crop))
        item = [data[key][i, k][win].float() for key in _KEYS]
        if bool(torch.rand(1, generator=g) < 0.5):
            item = [v.flip(-1) for v in item]
            item[1] = item[1] * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
        rgb.append(item[0] / 255.0)
        flow.append(item[1])
        conf.append(item[2])
        disp.append(item[3])
    parallax = parallax_channels(torch.stack(flow), torch.stack(conf))
    parallax = parallax * (~drop).float().view(-1, 1, 1, 1)
    return torch.stack(rgb), parallax, torch.stack(disp)


def train_depth(cfg: DepthTrainConfig, out: Path | None = None) -> dict[str, object]:
    """Train DepthNet, save it (half-precision safetensors + a `.json` record).

    Args:
        cfg: the run.
        out: weights path (default: the packaged one).
    Returns:
        The record written beside the weights (metrics, sha256, config, timings).
    """
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    clip_cfg = cfg.clip_config
    train = cached_clips(
        cfg.clips, clip_cfg, cfg.seed, cfg.textures, cfg.workers, cfg.backdrop_parallax
    )
    val = cached_clips(
        cfg.val_clips, clip_cfg, cfg.seed + _VAL_OFFSET, cfg.textures, cfg.workers,
        cfg.backdrop_parallax,
    )  # fmt: skip
    t_data = time.perf_counter() - start
    net = DepthNet(DepthNetConfig(cfg.widths, cfg.blocks))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    warmup = max(1, cfg.steps // 50)

    def lr_at(step: int) -> float:  # linear warm-up, then cosine decay to 2% of the peak
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, cfg.steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    g = torch.Generator().manual_seed(cfg.seed)
    net.train()
    losses: list[float] = []
    for step in range(cfg.steps):
        rgb, parallax, target = _batch(train, cfg, g)
        loss = ssi_loss(net(rgb, parallax), target, cfg.gradient_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == cfg.steps - 1:
            recent = sum(losses[-100:]) / len(losses[-100:])
            log.info("step %d/%d loss %.4f (%.0f s)", step, cfg.steps, recent,
                     time.perf_counter() - start)  # fmt: skip
    net.eval()
    # Ship half precision (half the size); evaluate exactly what ships.
    state_dict = {k: v.half().contiguous() for k, v in net.state_dict().items()}
    net.load_state_dict({k: v.float() for k, v in state_dict.items()})
    metrics = {"synthetic": evaluate_synthetic(net, val)}
    out = out or default_weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state_dict, str(out), metadata=config_metadata(net.config))
    first = losses[: max(1, len(losses) // 10)]
    last = losses[-max(1, len(losses) // 10) :]
    record = {
        "metrics": metrics,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "parameters": sum(p.numel() for p in net.parameters()),
        "loss_first_tenth": sum(first) / len(first),
        "loss_last_tenth": sum(last) / len(last),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(time.perf_counter() - start - t_data, 1),
        "textures": SharpSources(Path(cfg.textures)).names
        if cfg.textures and Path(cfg.textures).is_dir()
        else [],
        "config": asdict(cfg),
        "hardware": f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}",
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, default=list))
    return record


def _row(name: str, m: dict) -> str:
    return f"| {name} | {m['abs_rel']:.4f} | {m['delta_1_25']:.4f} |"


def write_card(weights: Path, evaluation: dict | None = None) -> Path:
    """Write the card (`.md`) beside the weights from their `.json` record.

    Args:
        weights: the safetensors file; its `.json` record comes from `train_depth`.
        evaluation: extra measurements on these weights (e.g. the time per frame); must carry
            their `sha256`. Stored in the record and shown in the card.
    Returns:
        The card's path.
    Raises:
        ValueError: the weights are not the ones the record (or the evaluation) describes.
    """
    record_path = weights.with_suffix(".json")
    record = json.loads(record_path.read_text())
    actual = hashlib.sha256(weights.read_bytes()).hexdigest()
    if actual != record["sha256"]:
        raise ValueError(
            f"{weights}: sha256 {actual} differs from its record's {record['sha256']}; "
            "the record describes other weights."
        )
    if evaluation is not None:
        if evaluation.get("sha256") != record["sha256"]:
            raise ValueError("the evaluation was run on other weights (sha256 differs)")
        record["evaluation"] = evaluation
        record_path.write_text(json.dumps(record, indent=2, default=list))
    cfg = record["config"]
    syn = record["metrics"]["synthetic"]
    lines = [
        f"# {weights.name}",
        "",
        "DepthNet (`vidrefocus.models.depthnet`), the built-in depth estimator that needs",
        "nothing downloaded: a frame (and its DIS optical flow to the previous frame, reduced",
        "to motion parallax) in, relative disparity (larger = nearer, any scale and shift) out.",
        "",
        f"- sha256: `{record['sha256']}`",
        f"- parameters: {record['parameters']:,}; widths {cfg['widths']}, blocks "
        f"{cfg['blocks']}; format: safetensors, float16 (no pickle)",
        "- trained with: `python -m vidrefocus.train depth --config "
        "configs/train/depthnet.yaml --threads 2`",
        f"- hardware: {record['hardware']}; data {record['data_seconds']} s, "
        f"training {record['train_seconds']} s",
        f"- steps: {cfg['steps']} (batch {cfg['batch']}, {cfg['crop']} px crops, horizontal "
        f"flips), AdamW lr {cfg['lr']} with warm-up and cosine decay, seed {cfg['seed']}; "
        f"parallax channels zeroed in {cfg['parallax_dropout']:.0%} of samples",
        f"- loss: scale-and-shift-invariant L1 + {cfg['gradient_weight']} x multi-scale "
        "gradient matching (Ranftl et al., TPAMI 2022); mean "
        f"{record['loss_first_tenth']:.3f} over the first tenth of the steps, "
        f"{record['loss_last_tenth']:.3f} over the last",
        "",
        "## Data",
        "",
        f"{cfg['clips']} synthetic clips of {cfg['frames']} frames, {cfg['size']} px "
        "(`vidrefocus.train.deblur_data.make_clip`, backdrop parallax "
        f"{'on' if cfg['backdrop_parallax'] else 'off'}): layered scenes under camera motion "
        f"(up to {cfg['motion_px']} px per frame) with parallax and independently moving "
        f"layers; {cfg['in_focus_fraction']:.0%} of clips in focus, the others defocused by "
        f"the project's layered renderer (radius up to {cfg['max_radius_px']} px), with "
        "sensor noise and JPEG. Textures from `../shared/data/train_natural` (its README "
        "gives sources and terms): the Kodak Lossless True Color Image Suite (Eastman Kodak "
        "Company; used for training, so no result here or anywhere for these weights may be "
        "reported on Kodak), public-domain Wikimedia Commons photos (US federal agencies, "
        "Carol M. Highsmith Archive) and scikit-image sample photos (the naturally soft ones "
        "left out), procedural dead-leaves textures, and as backdrops with real depth 12 "
        "TartanAir v1 `hospital` frames (W. Wang, D. Zhu, X. Wang, Y. Hu, Y. Qiu, C. Wang, "
        'Y. Hu, A. Kapoor, S. Scherer, "TartanAir: A Dataset to Push the Limits of Visual '
        'SLAM", IROS 2020; AirLab, Carnegie Mellon University; CC BY 4.0, depth converted '
        "from metres to 16-bit millimetres).",
        "",
        "## Metrics",
        "",
        f"Held-out synthetic clips ({syn['clips']}, seeds disjoint from training; "
        f"{syn['depthnet_mono']['images']} with non-flat depth count), last frame, "
        f"{syn['border_px']} px border left out. AbsRel and delta < 1.25 of disparity (1/m) "
        "after a per-image least-squares scale and shift (lower / higher is better):",
        "",
        "| method | AbsRel | delta < 1.25 |",
        "|---|---:|---:|",
        _row("DepthNet, with parallax", syn["depthnet_parallax"]),
        _row("DepthNet, mono (parallax zeroed)", syn["depthnet_mono"]),
        _row("baseline: flat", syn["baseline_flat"]),
        _row("baseline: luma as disparity", syn["baseline_luma"]),
        _row(
            "baseline: flow magnitude after the global translation", syn["baseline_flow_magnitude"]
        ),
    ]
    ev = record.get("evaluation")
    if ev:
        lines += ["", "## Measured on these weights", ""]
        for name, res in ev.get("sequences", {}).items():
            lines += [
                f"{name} ({res['frames']} frames; {res['what']}):",
                "",
                "| method | AbsRel | delta < 1.25 |",
                "|---|---:|---:|",
                _row("BuiltinDepth, frames in order (parallax)", res["sequence"]),
                _row("BuiltinDepth, every frame alone (mono)", res["per_frame"]),
            ]
            lines += [_row(f"baseline: {k}", v) for k, v in res.get("baselines", {}).items()]
            lines.append("")
        lines += [
            f"- {key}: {value}" for key, value in ev.items() if key not in ("sha256", "sequences")
        ]
    path = weights.with_suffix(".md")
    path.write_text("\n".join(lines) + "\n")
    return path
