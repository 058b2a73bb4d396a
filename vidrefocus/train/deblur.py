"""Train DeblurNet on synthetic defocus clips (`vidrefocus.train.deblur_data`).

`python -m vidrefocus.train deblur --config configs/train/deblurnet.yaml [--out PATH]`

Two phases. First single frames (every frame of every clip, random 128 px crops, flips,
transposes and channel shuffles) teach deblurring and the defocus map. Then whole clips, run
frame after frame with the recurrent fusion, teach the net to use the previous frame's
flow-warped features. The clips are rendered once and cached as safetensors under .cache/.
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
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from vidrefocus.models.deblurnet import (
    DeblurConfig,
    DeblurNet,
    config_metadata,
    default_weights_path,
)
from vidrefocus.train.config import load_train_config
from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip

__all__ = ["DeblurTrainConfig", "build_clips", "evaluate_synthetic", "train_deblur"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeblurTrainConfig:
    seed: int = 2024
    clips: int = 3000
    val_clips: int = 120
    size: int = 144
    frames: int = 3
    max_radius_px: float = 16.0
    width: int = 24
    blocks: tuple[int, int, int] = (1, 1, 2)
    crop: int = 128
    frame_steps: int = 5000
    frame_batch: int = 12
    clip_steps: int = 1500
    clip_batch: int = 6
    lr: float = 1e-3
    defocus_weight: float = 0.05
    workers: int = 2
    textures: str | None = "../shared/data/train_natural"

    @classmethod
    def from_yaml(cls, path: Path) -> DeblurTrainConfig:
        return load_train_config(cls, path)

    @property
    def clip_config(self) -> ClipConfig:
        return ClipConfig(size=self.size, frames=self.frames, max_radius_px=self.max_radius_px)


_SOURCES: SharpSources | None = None


def _init_worker(folder: str | None) -> None:
    global _SOURCES
    torch.set_num_threads(1)
    _SOURCES = SharpSources(Path(folder)) if folder and Path(folder).is_dir() else None


def _clip_worker(args: tuple[int, ClipConfig]) -> dict[str, Tensor]:
    seed, cfg = args
    return make_clip(seed, cfg, _SOURCES)


def build_clips(
    count: int, cfg: ClipConfig, seed_base: int, textures: str | None, workers: int = 1
) -> dict[str, Tensor]:
    """Render `count` clips (seeds `seed_base + i`) into stacked tensors, in parallel."""
    jobs = [(seed_base + i, cfg) for i in range(count)]
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(textures,)) as pool:
            clips = pool.map(_clip_worker, jobs, chunksize=16)
    else:
        _init_worker(textures)
        clips = [_clip_worker(job) for job in jobs]
    return {key: torch.stack([c[key] for c in clips]) for key in clips[0]}


def cached_clips(
    count: int, cfg: ClipConfig, seed_base: int, textures: str | None, workers: int
) -> dict[str, Tensor]:
    """`build_clips`, cached under .cache/ keyed by everything that changes the data."""
    sources = SharpSources(Path(textures)) if textures and Path(textures).is_dir() else None
    ident = json.dumps([count, seed_base, asdict(cfg), sources.names if sources else []])
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    path = Path(".cache") / "vidrefocus-train" / f"deblur-{digest}.safetensors"
    if path.is_file():
        log.info("using cached clips %s", path)
        return load_file(str(path))
    start = time.perf_counter()
    data = build_clips(count, cfg, seed_base, textures, workers)
    log.info("rendered %d clips in %.0f s", count, time.perf_counter() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in data.items()}, str(tmp))
    tmp.replace(path)
    return data


def _augment(x: dict[str, Tensor], g: torch.Generator, crop: int) -> dict[str, Tensor]:
    """Same random crop, flips, transpose and colour-channel order for every tensor of a
    batch element; flow vectors are transformed with the image."""
    size = x["blurred"].shape[-1]
    y0 = int(torch.randint(0, size - crop + 1, (1,), generator=g))
    x0 = int(torch.randint(0, size - crop + 1, (1,), generator=g))
    out = {k: v[..., y0 : y0 + crop, x0 : x0 + crop] for k, v in x.items()}
    if bool(torch.rand(1, generator=g) < 0.5):
        out = {k: v.flip(-1) for k, v in out.items()}
        out["flow"] = out["flow"] * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
    if bool(torch.rand(1, generator=g) < 0.5):
        out = {k: v.flip(-2) for k, v in out.items()}
        out["flow"] = out["flow"] * torch.tensor([1.0, -1.0]).view(2, 1, 1)
    if bool(torch.rand(1, generator=g) < 0.5):
        out = {k: v.transpose(-1, -2) for k, v in out.items()}
        out["flow"] = out["flow"].flip(-3)
    perm = torch.randperm(3, generator=g)
    out["blurred"] = out["blurred"][..., perm, :, :]
    out["sharp"] = out["sharp"][..., perm, :, :]
    return out


def _batch(
    data: dict[str, Tensor], idx: Tensor, t: Tensor | None, g: torch.Generator, crop: int
) -> dict[str, Tensor]:
    items = []
    for j, i in enumerate(idx.tolist()):
        sel = {k: (v[i, int(t[j])] if t is not None else v[i]) for k, v in data.items()}
        sel = {k: v.float() for k, v in sel.items()}
        items.append(_augment(sel, g, crop))
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    batch["blurred"] = batch["blurred"] / 255.0
    batch["sharp"] = batch["sharp"] / 255.0
    return batch


def _loss(pred_sharp: Tensor, pred_defocus: Tensor, batch: dict[str, Tensor], w: float) -> Tensor:
    charbonnier = ((pred_sharp - batch["sharp"]) ** 2 + 1e-6).sqrt().mean()
    defocus = F.l1_loss(pred_defocus, batch["defocus"]) / 8.0
    return charbonnier + w * defocus


def _psnr(a: Tensor, b: Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def evaluate_synthetic(net: DeblurNet, data: dict[str, Tensor], border: int = 8) -> dict:
    """Held-out synthetic metrics on the first frame of each clip (per-frame mode).

    PSNR of input and output against the sharp frame, over blurred clips only; defocus-map
    mean absolute error in px; and "do no harm": output vs input PSNR on sharp inputs.
    """
    net.eval()
    crop = (slice(None), slice(None), slice(border, -border), slice(border, -border))
    blurred = data["blurred"][:, 0].float() / 255
    sharp = data["sharp"][:, 0].float() / 255
    defocus = data["defocus"][:, 0].float()
    outs, maps, clean = [], [], []
    for i in range(0, blurred.shape[0], 16):
        o = net(blurred[i : i + 16])
        outs.append(o.sharp)
        maps.append(o.defocus)
        clean.append(net(sharp[i : i + 16]).sharp)
    out, dmap, same = torch.cat(outs), torch.cat(maps), torch.cat(clean)
    blurry = defocus.flatten(1).amax(1) > 1.0
    return {
        "clips": int(blurred.shape[0]),
        "blurred_clips": int(blurry.sum()),
        "input_psnr_db": _psnr(blurred[blurry][crop], sharp[blurry][crop]),
        "output_psnr_db": _psnr(out[blurry][crop], sharp[blurry][crop]),
        "defocus_mae_px": float((dmap - defocus)[crop].abs().mean()),
        "no_harm_psnr_db": _psnr(same[crop], sharp[crop]),
    }


def train_deblur(cfg: DeblurTrainConfig, out: Path | None = None) -> dict[str, object]:
    """Train DeblurNet, save it (safetensors + card). Returns the card record."""
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    clip_cfg = cfg.clip_config
    train = cached_clips(cfg.clips, clip_cfg, cfg.seed, cfg.textures, cfg.workers)
    val = cached_clips(cfg.val_clips, clip_cfg, cfg.seed + 10_000_000, cfg.textures, cfg.workers)
    t_data = time.perf_counter() - start
    net = DeblurNet(DeblurConfig(cfg.width, cfg.blocks))
    total = cfg.frame_steps + cfg.clip_steps
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, total))
    g = torch.Generator().manual_seed(cfg.seed)
    n, frames = train["blurred"].shape[:2]
    net.train()
    for step in range(total):
        per_frame = step < cfg.frame_steps
        if per_frame:
            idx = torch.randint(0, n, (cfg.frame_batch,), generator=g)
            t = torch.randint(0, frames, (cfg.frame_batch,), generator=g)
            batch = _batch(train, idx, t, g, cfg.crop)
            pred = net(batch["blurred"])
            loss = _loss(pred.sharp, pred.defocus, batch, cfg.defocus_weight)
        else:
            idx = torch.randint(0, n, (cfg.clip_batch,), generator=g)
            batch = _batch(train, idx, None, g, cfg.crop)
            state, loss = None, torch.zeros(())
            for k in range(frames):
                frame = {key: v[:, k] for key, v in batch.items()}
                pred = net(frame["blurred"], state, frame["flow"], frame["confidence"])
                state = pred.state
                loss = loss + _loss(pred.sharp, pred.defocus, frame, cfg.defocus_weight) / frames
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == total - 1:
            log.info("step %d/%d loss %.5f (%.0f s)", step, total, loss.item(),
                     time.perf_counter() - start)  # fmt: skip
    net.eval()
    metrics = {"synthetic": evaluate_synthetic(net, val)}
    out = out or default_weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state_dict, str(out), metadata=config_metadata(net.config))
    record = {
        "metrics": metrics,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "parameters": sum(p.numel() for p in net.parameters()),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(time.perf_counter() - start - t_data, 1),
        "textures": SharpSources(Path(cfg.textures)).names
        if cfg.textures and Path(cfg.textures).is_dir()
        else [],
        "config": asdict(cfg),
        "hardware": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, default=list))
    return record


def write_card(weights: Path, evaluation: dict | None = None) -> Path:
    """Write the card (`.md`) beside the weights from their `.json` record.

    Args:
        weights: the safetensors file; its `.json` record comes from `train_deblur`.
        evaluation: the summary of `python -m vidrefocus.eval.deblur_eval` for these weights;
            stored in the record and shown in the card.
    """
    record_path = weights.with_suffix(".json")
    record = json.loads(record_path.read_text())
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
        "DeblurNet (`vidrefocus.models.deblurnet`): defocused frames in, all-in-focus frames and",
        "a per-pixel defocus radius (px) out; recurrent fusion of flow-warped features at 1/8",
        "resolution, gated by forward-backward flow confidence.",
        "",
        f"- sha256: `{record['sha256']}`",
        f"- parameters: {record['parameters']:,}; width {cfg['width']}, blocks {cfg['blocks']};"
        " format: safetensors (no pickle)",
        "- trained with: `python -m vidrefocus.train deblur --config configs/train/deblurnet.yaml`",
        f"- hardware: {record['hardware']}; data {record['data_seconds']} s, "
        f"training {record['train_seconds']} s",
        f"- steps: {cfg['frame_steps']} single-frame (batch {cfg['frame_batch']}) + "
        f"{cfg['clip_steps']} on {cfg['frames']}-frame clips (batch {cfg['clip_batch']}), "
        f"{cfg['crop']} px crops, AdamW one-cycle lr {cfg['lr']}, seed {cfg['seed']}",
        "",
        "## Data",
        "",
        f"{cfg['clips']} synthetic clips of {cfg['frames']} frames, {cfg['size']} px "
        "(`vidrefocus.train.deblur_data`): layered scenes (photo crops from "
        f"`{cfg['textures']}` — Kodak24, public-domain Commons and scikit-image photos with "
        "the naturally soft ones left out, TartanAir renders with their real depth — and "
        "dead-leaves textures) under camera motion with parallax, moving objects and focus "
        "drift, blurred by the project's layered renderer with disk or 5-9 blade apertures, "
        "soft-centre / bright-rim / chromatic variants, highlight bloom, Poisson-Gaussian "
        f"noise and JPEG. Blur radius up to {cfg['max_radius_px']} px; "
        "12% of clips in focus.",
        "",
        "## Metrics",
        "",
        f"Validation ({syn['clips']} held-out clips, first frame, per-frame mode): input "
        f"{syn['input_psnr_db']:.2f} dB -> output {syn['output_psnr_db']:.2f} dB on the "
        f"{syn['blurred_clips']} blurred ones; defocus map error {syn['defocus_mae_px']:.2f} px; "
        f"sharp input passes through at {syn['no_harm_psnr_db']:.2f} dB.",
    ]
    ev = record.get("evaluation")
    if ev:
        lines += ["", "`python -m vidrefocus.eval.deblur_eval` on these weights:", ""]
        real = ev["real_defocus"]
        lines += [
            "Real defocus (LFDOF samples, Ruan et al., AIFNet, IEEE TCI 2021; never trained or "
            "tuned on), full resolution, mean over images:",
            "",
            "| method | PSNR (dB) | gain (dB) | SSIM | SSIM gain |",
            "|---|---:|---:|---:|---:|",
        ]
        first = next(iter(real.values()))["mean"]
        lines.append(
            f"| input | {first['input_psnr_db']:.2f} | 0 | {first['input_ssim']:.4f} | 0 |"
        )
        for name, res in real.items():
            m = res["mean"]
            lines.append(
                f"| {name} | {m['output_psnr_db']:.2f} | {m['psnr_gain_db']:+.2f} | "
                f"{m['output_ssim']:.4f} | {m['ssim_gain']:+.4f} |"
            )
        lines += ["", "| held-out synthetic | input dB | output dB | defocus MAE px | "
                  "no-harm dB |", "|---|---:|---:|---:|---:|"]  # fmt: skip
        for mode, s in ev["synthetic_heldout"].items():
            lines.append(
                f"| {mode} | {s['input_psnr_db']:.2f} | {s['output_psnr_db']:.2f} | "
                f"{s['defocus_mae_px']:.2f} | {s['no_harm_psnr_db']:.2f} |"
            )
        lines.append("")
        if "recurrent_settings" in ev:
            settings = ", ".join(f"{k} {v:g}" for k, v in ev["recurrent_settings"].items())
            lines += [f"Recurrent mode runs `TemporalDeblur` with {settings}.", ""]
        for key, what in (
            ("temporal_stability", "with per-frame sensor noise and JPEG like the training clips"),
            ("temporal_stability_clean", "without camera noise (the flicker deblurring adds)"),
        ):
            if key not in ev:
                continue
            t = ev[key]
            ratios = ", ".join(f"{k} {v:.2f}x" for k, v in t["ratio_to_ground_truth"].items())
            lines.append(
                f"Temporal stability {what}: E_warp on {t['clips']} synthetic sequences of "
                f"{t['frames']} frames, ratio to the ground-truth sharp sequence: {ratios}."
            )
        harm = ev["do_no_harm_sample"]
        lines.append(
            "Do no harm on samples/scene_sharp.mp4 (output vs input, mean / min over frames): "
            + ", ".join(
                f"{k} {v['mean_psnr_db']:.2f} / {v['min_psnr_db']:.2f} dB" for k, v in harm.items()
            )
            + "."
        )
    path = weights.with_suffix(".md")
    path.write_text("\n".join(lines) + "\n")
    return path
