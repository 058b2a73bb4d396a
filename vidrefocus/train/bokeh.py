"""Train BokehNet's learned fill on synthetic layered scenes whose hidden content is known.

`python -m vidrefocus.train bokeh --config configs/train/bokehnet.yaml [--out PATH]`

Each scene is rendered twice: by the exact reference from its full layers (the target) and by
the classical layered renderer from the visible frame alone (the input). The net learns the
difference: what a blurred foreground reveals, and the errors at depth edges.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from vidrefocus.aperture import ApertureSpec
from vidrefocus.color import linear_to_srgb
from vidrefocus.eval.reference_render import reference_render
from vidrefocus.layered import RenderSettings, lens_light, render_layered
from vidrefocus.models.bokehnet import FillNet, default_weights_path
from vidrefocus.train.config import load_train_config
from vidrefocus.train.scenes import SOFT_IMAGES, LayeredScene, make_scene

__all__ = [
    "PhotoTextures",
    "TrainConfig",
    "build_dataset",
    "evaluate",
    "lens_scene",
    "train_bokeh",
    "write_card",
]

log = logging.getLogger(__name__)

# Bumped when the rendered scenes change, so cached datasets of an older kind are not reused
# (2: targets rendered from `lens_scene`, with the render's own highlight model).
TARGET_VERSION = 2


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1234
    scenes: int = 480
    val_scenes: int = 48
    height: int = 96
    width: int = 128
    width_channels: int = 24
    steps: int = 1500
    batch: int = 8
    lr: float = 2e-3
    highlight_gains: tuple[float, ...] = (1.0, 6.0)
    blur_scale_px: tuple[float, float] = (4.0, 16.0)
    photo_fraction: float = 0.5
    textures: str | None = "../shared/data/train_natural"
    loss: str = "l2"

    @classmethod
    def from_yaml(cls, path: Path) -> TrainConfig:
        return load_train_config(cls, path)


class PhotoTextures:
    """Random crops of sharp photos, 8 px in from every edge (film-scan borders)."""

    def __init__(self, folder: Path) -> None:
        # Depth maps (TartanAir's depth_mm/) are not pictures: leave out every depth folder.
        files = sorted(
            p for p in folder.rglob("*.png") if not any(d.startswith("depth") for d in p.parts)
        )
        self.images = []
        for p in files:
            if p.stem in SOFT_IMAGES:
                continue
            arr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if arr is not None:
                self.images.append(torch.from_numpy(arr[8:-8, 8:-8, ::-1].copy()))
        self.names = [p.relative_to(folder).as_posix() for p in files if p.stem not in SOFT_IMAGES]

    def __call__(self, h: int, w: int, g: torch.Generator) -> Tensor:
        img = self.images[int(torch.randint(len(self.images), (1,), generator=g))]
        scale = 1 + int(torch.randint(0, 3, (1,), generator=g))  # 1x-3x downscale: sharper
        ih, iw = img.shape[0] // scale, img.shape[1] // scale
        small = cv2.resize(img.numpy(), (iw, ih), interpolation=cv2.INTER_AREA)
        y = int(torch.randint(0, max(1, ih - h), (1,), generator=g))
        x = int(torch.randint(0, max(1, iw - w), (1,), generator=g))
        crop = torch.from_numpy(small[y : y + h, x : x + w]).float() / 255.0
        return crop.permute(2, 0, 1).contiguous()


def lens_scene(
    scene: LayeredScene, k: float, focus: float, settings: RenderSettings
) -> LayeredScene:
    """The scene as the renderer models its light: every layer recorded by the camera
    (clipped to display range) and its highlights re-expanded by the render's own gain.

    The target then differs from the classical render only where the fill has to guess
    (content a nearer layer hides, colours mixed at depth edges), not by how bright a clipped
    highlight really was: that is the user's `highlight_gain`, not the fill's to change.
    """
    rgb = []
    for layer, d in zip(scene.rgb, scene.disparity, strict=True):
        display = linear_to_srgb(layer).clamp(0.0, 1.0)
        rgb.append(lens_light(display[None], (k * (d - focus))[None], settings)[0])
    return LayeredScene(rgb, scene.alpha, scene.disparity)


def _sample(
    index: int, cfg: TrainConfig, textures: PhotoTextures | None, seed_base: int
) -> dict[str, Tensor]:
    seed = seed_base + index
    g = torch.Generator().manual_seed(seed)
    scene = make_scene("random", cfg.height, cfg.width, seed=seed, textures=textures)
    image, disp = scene.visible()
    lo, hi = float(disp.min()), float(disp.max())
    focus = lo + (hi - lo) * float(torch.rand(1, generator=g))
    k = cfg.blur_scale_px[0] + (cfg.blur_scale_px[1] - cfg.blur_scale_px[0]) * float(
        torch.rand(1, generator=g)
    )
    gain = cfg.highlight_gains[int(torch.randint(len(cfg.highlight_gains), (1,), generator=g))]
    spec = ApertureSpec() if index % 3 else ApertureSpec("polygon", blades=6)
    settings = RenderSettings(aperture=spec, highlight_gain=gain)
    target = reference_render(lens_scene(scene, k, focus, settings), [
        k * (d - focus) for d in scene.disparity], spec)  # fmt: skip
    radius = (k * (disp - focus))[None]
    render, hidden = render_layered(image[None], radius, settings, return_layers=True)
    return {
        "image": image,
        "radius": radius[0],
        "render": render[0],
        "hidden": hidden[0],
        "target": target,
    }


def build_dataset(
    count: int, cfg: TrainConfig, textures: PhotoTextures | None, seed_base: int
) -> dict[str, Tensor]:
    """Render `count` scenes (reference and classical) into stacked tensors."""
    samples = []
    for i in range(count):
        samples.append(_sample(i, cfg, textures, seed_base))
        if (i + 1) % 50 == 0:
            log.info("rendered %d / %d scenes", i + 1, count)
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def _cached_dataset(
    count: int, cfg: TrainConfig, textures: PhotoTextures | None, seed_base: int
) -> dict[str, Tensor]:
    """`build_dataset`, cached as safetensors under .cache/ (rendering the references is the
    slow part of a run; the key covers everything that changes the data)."""
    data_keys = ("height", "width", "highlight_gains", "blur_scale_px", "textures")
    ident = json.dumps(
        [TARGET_VERSION, count, seed_base, [getattr(cfg, k) for k in data_keys],
         textures.names if textures else []],
        default=list,
    )  # fmt: skip
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    path = Path(".cache") / "vidrefocus-train" / f"bokeh-{digest}.safetensors"
    if path.is_file():
        log.info("using cached scenes %s", path)
        return load_file(str(path))
    data = build_dataset(count, cfg, textures, seed_base)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in data.items()}, str(tmp))
    tmp.replace(path)
    return data


@torch.no_grad()
def evaluate(net: FillNet | None, data: dict[str, Tensor]) -> dict[str, float]:
    """MAE (in 1/255) and PSNR of the render with and without the net against the reference,
    12 px in from the border, over all scenes and only where content was disoccluded."""
    crop = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    out = (
        data["render"]
        if net is None
        else net(data["render"], data["image"], data["radius"], data["hidden"])
    )
    err = (out - data["target"])[crop]
    mse = (err**2).mean().item()
    hid = (data["hidden"][crop] > 0.05).expand_as(err)
    mse_hid = (err[hid] ** 2).mean().item() if hid.any() else 0.0
    return {
        "mae_255": err.abs().mean().item() * 255,
        "psnr_db": 10 * float(np.log10(1.0 / max(mse, 1e-12))),
        "mae_disoccluded_255": err.abs()[hid].mean().item() * 255 if hid.any() else 0.0,
        "psnr_disoccluded_db": 10 * float(np.log10(1.0 / max(mse_hid, 1e-12))),
    }


def train_bokeh(cfg: TrainConfig, out: Path | None = None) -> dict[str, object]:
    """Train the fill net and save it with its card. Returns the card's metrics."""
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    folder = Path(cfg.textures) if cfg.textures else None
    textures = PhotoTextures(folder) if folder is not None and folder.is_dir() else None
    if cfg.textures and textures is None:
        log.warning("texture folder %s not found: training on procedural textures only", folder)
    train = _cached_dataset(cfg.scenes, cfg, textures, cfg.seed)
    val = _cached_dataset(cfg.val_scenes, cfg, textures, cfg.seed + 1_000_000)
    t_data = time.perf_counter() - start
    net = FillNet(cfg.width_channels)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    g = torch.Generator().manual_seed(cfg.seed)
    n = train["image"].shape[0]
    for step in range(cfg.steps):
        idx = torch.randint(0, n, (cfg.batch,), generator=g)
        flip = bool(torch.rand(1, generator=g) < 0.5)
        batch = {k: v[idx].flip(-1) if flip else v[idx] for k, v in train.items()}
        pred = net(batch["render"], batch["image"], batch["radius"], batch["hidden"])
        # L2 aims at the conditional mean: where hidden content or a highlight's true energy is
        # uncertain, L1's median is "change nothing", and a first L1 run learned the identity.
        if cfg.loss == "l1":
            loss = F.l1_loss(pred, batch["target"])
        else:
            loss = F.mse_loss(pred, batch["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            log.info("step %d loss %.5f", step, loss.item())
    net.eval()
    metrics = {"without_net": evaluate(None, val), "with_net": evaluate(net, val)}
    out = out or default_weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out), metadata={"config": json.dumps({"width": cfg.width_channels})})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    card = {
        "metrics": metrics,
        "sha256": digest,
        "parameters": sum(p.numel() for p in net.parameters()),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(time.perf_counter() - start - t_data, 1),
        "textures": textures.names if textures is not None else [],
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "hardware": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2, default=list))
    write_card(out)
    return card


def write_card(weights: Path) -> Path:
    """Write the human-readable card (`.md`) beside the weights from their `.json` record."""
    card = json.loads(weights.with_suffix(".json").read_text())
    m = card["metrics"]
    cfg = card["config"]
    lines = [
        f"# {weights.name}",
        "",
        "BokehNet's learned fill (`vidrefocus.models.bokehnet.FillNet`): corrects the classical",
        "layered render where a blurred foreground reveals hidden background and at depth edges.",
        "",
        f"- sha256: `{card['sha256']}`",
        f"- parameters: {card['parameters']:,}; format: safetensors (no pickle)",
        "- trained with: `python -m vidrefocus.train bokeh --config configs/train/bokehnet.yaml`",
        f"- hardware: {card['hardware']}; data {card['data_seconds']} s, "
        f"training {card['train_seconds']} s",
        f"- steps: {cfg['steps']}, batch {cfg['batch']}, lr {cfg['lr']}, seed {cfg['seed']}",
        "",
        "## Data",
        "",
        f"{cfg['scenes']} synthetic layered scenes of {cfg['width']}x{cfg['height']} px "
        "(`vidrefocus.train.scenes`, kind `random`: 2-4 layers of dead-leaves textures, gratings "
        "and noise, some with point lights brighter than the sensor clips), half the layers "
        f"textured with crops of the sharp photos in `{cfg['textures']}` (Kodak24, public-domain "
        "Commons and scikit-image photos, TartanAir renders; naturally soft images left out). "
        "Targets are rendered by the exact scatter reference from the full layers (hidden content "
        "known), each layer's light as the renderer models it (`lens_scene`: recorded, clipped, "
        "highlights re-expanded by the render's own gain), so the target differs from the "
        "classical render only where the layered approximation guessed; inputs by the layered "
        "renderer from the visible frame alone. Focus, blur scale "
        f"({cfg['blur_scale_px']} px per diopter), highlight gain ({cfg['highlight_gains']}) and "
        "aperture (disk or hexagon) vary per scene.",
        "",
        "## Metrics",
        "",
        f"On {cfg['val_scenes']} held-out scenes (other seeds), 12 px in from the border, against "
        "the exact reference:",
        "",
        "| | MAE (1/255) | PSNR (dB) | MAE where disoccluded (1/255) | PSNR there (dB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, key in (("classical render", "without_net"), ("with learned fill", "with_net")):
        r = m[key]
        lines.append(
            f"| {name} | {r['mae_255']:.2f} | {r['psnr_db']:.2f} | {r['mae_disoccluded_255']:.2f} "
            f"| {r.get('psnr_disoccluded_db', float('nan')):.2f} |"
        )
    path = weights.with_suffix(".md")
    path.write_text("\n".join(lines) + "\n")
    return path
