"""Synthetic defocus clips for DeblurNet: sharp layered scenes that move, rendered out of focus.

A clip is a few consecutive frames of a scene made of layers, far to near: a background (a
photo crop, a TartanAir render with its real depth, or a dead-leaves texture) on a constant or
slanted depth, and 0-3 foreground layers (photo or procedural texture cut by discs, boxes or
dead-leaves blobs). The camera translates, nearer layers move more (parallax), one layer may
move on its own, and the focus may drift. Each frame's visible image and depth are blurred by
the project's own layered renderer (`vidrefocus.layered`), so training blur follows the same
physics as BokehNet. What real lenses and cameras add is varied per clip: aperture shape (disk
or polygon), soft centre or bright rim (spherical aberration), a slight chromatic difference
of blur size, sensor noise (Poisson-Gaussian in linear light) and JPEG compression.

Every clip is a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.aperture import ApertureSpec
from vidrefocus.color import linear_to_srgb, srgb_to_linear
from vidrefocus.layered import RenderSettings, render_layered
from vidrefocus.models.flow import DISFlow
from vidrefocus.train.scenes import SOFT_IMAGES, dead_leaves

__all__ = ["ClipConfig", "SharpSources", "make_clip"]


@dataclass(frozen=True)
class ClipConfig:
    """What a synthetic clip looks like.

    Attributes:
        size: frame side in px (square).
        frames: frames per clip.
        max_radius_px: largest blur radius.
        in_focus_fraction: clips with no blur at all (teaches "do no harm").
        motion_px: largest camera translation per frame.
        noise_fraction, jpeg_fraction: clips with sensor noise / JPEG compression.
    """

    size: int = 144
    frames: int = 3
    max_radius_px: float = 16.0
    in_focus_fraction: float = 0.12
    motion_px: float = 4.0
    noise_fraction: float = 0.8
    jpeg_fraction: float = 0.3


class SharpSources:
    """Sharp photos and TartanAir frames with depth from `../shared/data/train_natural`.

    Kodak borders (film scan) are cropped by 8 px; images with natural blur are left out.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.photos: list[np.ndarray] = []
        self.names: list[str] = []
        for p in sorted(folder.rglob("*.png")):
            if "tartanair_hospital" in p.parts or p.stem in SOFT_IMAGES:
                continue
            arr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if arr is not None:
                self.photos.append(np.ascontiguousarray(arr[8:-8, 8:-8, ::-1]))
                self.names.append(p.relative_to(folder).as_posix())
        self.tartan: list[tuple[np.ndarray, np.ndarray]] = []
        tdir = folder / "tartanair_hospital"
        for p in sorted((tdir / "image").glob("*.png")) if tdir.is_dir() else []:
            depth = cv2.imread(str(tdir / "depth_mm" / p.name), cv2.IMREAD_UNCHANGED)
            image = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if depth is not None and image is not None:
                self.tartan.append((np.ascontiguousarray(image[..., ::-1]), depth))
                self.names.append(p.relative_to(folder).as_posix())

    def photo(self, h: int, w: int, g: torch.Generator) -> Tensor:
        """A random crop, downscaled 1-3x (sharper than the original), (3, h, w) in [0, 1]."""
        img = self.photos[_randint(g, len(self.photos))]
        ih, iw = img.shape[:2]
        max_scale = max(1.0, min(3.0, ih / h, iw / w))
        scale = 1.0 + (max_scale - 1.0) * _rand(g)
        sh, sw = max(h, round(ih / scale)), max(w, round(iw / scale))
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        y, x = _randint(g, sh - h + 1), _randint(g, sw - w + 1)
        crop = torch.from_numpy(small[y : y + h, x : x + w].copy()).float() / 255.0
        if _rand(g) < 0.5:
            crop = crop.flip(1)
        return crop.permute(2, 0, 1).contiguous()

    def tartan_crop(self, h: int, w: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """A TartanAir crop and its disparity in 1/m: ((3, h, w), (1, h, w))."""
        image, depth = self.tartan[_randint(g, len(self.tartan))]
        ih, iw = image.shape[:2]
        scale = 1.0 + (min(2.0, ih / h, iw / w) - 1.0) * _rand(g)
        sh, sw = max(h, round(ih / scale)), max(w, round(iw / scale))
        img = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        dep = cv2.resize(depth.astype(np.float32), (sw, sh), interpolation=cv2.INTER_NEAREST)
        y, x = _randint(g, sh - h + 1), _randint(g, sw - w + 1)
        rgb = torch.from_numpy(img[y : y + h, x : x + w].copy()).float().permute(2, 0, 1) / 255.0
        disp = 1000.0 / torch.from_numpy(dep[y : y + h, x : x + w].copy()).clamp_min(1.0)
        return rgb, disp[None]


def _rand(g: torch.Generator) -> float:
    return float(torch.rand(1, generator=g))


def _randint(g: torch.Generator, n: int) -> int:
    return int(torch.randint(0, max(1, n), (1,), generator=g))


def _shift(x: Tensor, dx: float, dy: float, size: int, margin: int) -> Tensor:
    """Crop `size` x `size` from a canvas, offset by (dx, dy) px with bilinear sampling."""
    _, hc, wc = x.shape
    ys = torch.arange(size, dtype=torch.float32) + margin + dy
    xs = torch.arange(size, dtype=torch.float32) + margin + dx
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx / (wc - 1) * 2 - 1, gy / (hc - 1) * 2 - 1], dim=-1)[None]
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[
        0
    ]


def _shift_field(x: Tensor, dx: Tensor, dy: Tensor, size: int, margin: int) -> Tensor:
    """`_shift` with a per-pixel offset: dx, dy are (size, size) px."""
    _, hc, wc = x.shape
    ys = torch.arange(size, dtype=torch.float32).view(size, 1) + margin + dy
    xs = torch.arange(size, dtype=torch.float32).view(1, size) + margin + dx
    grid = torch.stack([xs / (wc - 1) * 2 - 1, ys / (hc - 1) * 2 - 1], dim=-1)[None]
    out = F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0]


def _blob_alpha(h: int, w: int, g: torch.Generator) -> Tensor:
    """A foreground silhouette: a disc, a box, or a union of discs (dead-leaves blob)."""
    ys = torch.arange(h).view(h, 1).float()
    xs = torch.arange(w).view(1, w).float()
    kind = _rand(g)
    cy, cx = h * (0.2 + 0.6 * _rand(g)), w * (0.2 + 0.6 * _rand(g))
    size = min(h, w) * (0.12 + 0.25 * _rand(g))
    if kind < 0.35:
        return (size + 0.5 - ((ys - cy) ** 2 + (xs - cx) ** 2).sqrt()).clamp(0, 1)[None]
    if kind < 0.65:
        ang = _rand(g) * math.pi
        u = (xs - cx) * math.cos(ang) + (ys - cy) * math.sin(ang)
        v = -(xs - cx) * math.sin(ang) + (ys - cy) * math.cos(ang)
        a, b = size * (0.5 + _rand(g)), size * (0.3 + 0.7 * _rand(g))
        return ((a + 0.5 - u.abs()).clamp(0, 1) * (b + 0.5 - v.abs()).clamp(0, 1))[None]
    alpha = torch.zeros(h, w)
    for _ in range(3 + _randint(g, 6)):
        r = size * (0.3 + 0.5 * _rand(g))
        oy, ox = cy + size * (_rand(g) - 0.5) * 1.6, cx + size * (_rand(g) - 0.5) * 1.6
        alpha = torch.maximum(
            alpha, (r + 0.5 - ((ys - oy) ** 2 + (xs - ox) ** 2).sqrt()).clamp(0, 1)
        )
    return alpha[None]


def _texture(h: int, w: int, g: torch.Generator, sources: SharpSources | None) -> Tensor:
    if sources is not None and sources.photos and _rand(g) < 0.75:
        return sources.photo(h, w, g)
    base = dead_leaves(h, w, g, n=150, rmin=1.5)
    noise = torch.rand(1, h, w, generator=g)
    return (0.9 * base + 0.1 * noise).clamp(0.0, 1.0)


@dataclass(frozen=True)
class _Layer:
    rgb: Tensor  # (3, Hc, Wc) linear light
    alpha: Tensor  # (1, Hc, Wc)
    disp: Tensor  # (1, Hc, Wc), 1/m
    velocity: tuple[float, float]  # px per frame
    # If set, the layer is not rigid: each point moves by velocity * (1 + PARALLAX_GAIN *
    # (its disparity - parallax_base)), the parallax of a camera translation over its depth.
    parallax_base: float | None = None


# Motion of a point relative to the backdrop's mean, per 1/m of disparity above it, as a
# fraction of the camera's motion (the same law moves the foreground layers).
PARALLAX_GAIN = 0.5


def _scene(
    cfg: ClipConfig,
    g: torch.Generator,
    sources: SharpSources | None,
    backdrop_parallax: bool = False,
) -> list[_Layer]:
    margin = math.ceil(cfg.motion_px * cfg.frames) + 4
    hc = wc = cfg.size + 2 * margin
    cam = ((2 * _rand(g) - 1) * cfg.motion_px, (2 * _rand(g) - 1) * cfg.motion_px * 0.5)
    if _rand(g) < 0.25:
        cam = (0.0, 0.0)  # a locked-off shot
    full = torch.ones(1, hc, wc)
    use_tartan = sources is not None and sources.tartan and _rand(g) < 0.2
    if use_tartan:
        rgb, disp = sources.tartan_crop(hc, wc, g)
    else:
        rgb = _texture(hc, wc, g, sources)
        d0 = 0.1 + 0.4 * _rand(g)
        if _rand(g) < 0.5:  # a slanted plane (floor, wall) instead of a flat backdrop
            ang = _rand(g) * 2 * math.pi
            ys = torch.linspace(-1, 1, hc).view(hc, 1)
            xs = torch.linspace(-1, 1, wc).view(1, wc)
            ramp = xs * math.cos(ang) + ys * math.sin(ang)
            disp = (d0 + 0.3 * _rand(g) * (ramp + 1))[None].expand(1, hc, wc).clone()
        else:
            disp = torch.full((1, hc, wc), d0)
    base = float(disp.mean())
    layers = [_Layer(srgb_to_linear(rgb), full, disp, cam, base if backdrop_parallax else None)]
    for i in range(_randint(g, 4)):
        d = base + (0.2 + 1.5 * _rand(g)) * (i + 1) / 3
        # nearer layers move more with the camera (parallax); one may move on its own
        factor = 1.0 + PARALLAX_GAIN * (d - base)
        vel = (cam[0] * factor, cam[1] * factor)
        if _rand(g) < 0.3:
            vel = (vel[0] + (2 * _rand(g) - 1) * cfg.motion_px, vel[1] + (2 * _rand(g) - 1))
        tex = srgb_to_linear(_texture(hc, wc, g, sources))
        layers.append(_Layer(tex, _blob_alpha(hc, wc, g), torch.full((1, hc, wc), d), vel))
    return layers


def _frame(layers: list[_Layer], t: int, size: int, margin: int) -> tuple[Tensor, Tensor]:
    """Visible display-referred frame (3, S, S) and its disparity (1, S, S) at time t."""
    img = torch.zeros(3, size, size)
    disp = torch.zeros(1, size, size)
    for layer in layers:
        dx, dy = layer.velocity[0] * t, layer.velocity[1] * t
        stack = _shift(torch.cat([layer.rgb, layer.alpha, layer.disp]), dx, dy, size, margin)
        if layer.parallax_base is not None and (dx or dy):
            # Backward warp by the extra motion of each point, read where the rigid shift
            # put it (disparity is smooth over a few px, so the approximation holds).
            extra = (PARALLAX_GAIN * (stack[4:5] - layer.parallax_base)).clamp_min(-1.0)
            stack = _shift_field(
                torch.cat([layer.rgb, layer.alpha, layer.disp]),
                dx * (1.0 + extra[0]),
                dy * (1.0 + extra[0]),
                size,
                margin,
            )
        rgb, a, d = stack[:3], stack[3:4].clamp(0, 1), stack[4:5]
        img = rgb * a + img * (1 - a)
        disp = torch.where(a > 0.5, d, disp)
    return linear_to_srgb(img).clamp(0.0, 1.0), disp


def _lens(g: torch.Generator) -> tuple[RenderSettings, str]:
    if _rand(g) < 0.3:
        spec = ApertureSpec("polygon", blades=5 + _randint(g, 5), rotation_deg=_rand(g) * 72.0)
    else:
        spec = ApertureSpec()
    gain = 1.0 if _rand(g) < 0.6 else 1.0 + 3.0 * _rand(g)
    u = _rand(g)
    aberration = "soft" if u < 0.2 else "rim" if u < 0.35 else "chroma" if u < 0.5 else "none"
    return RenderSettings(aperture=spec, highlight_gain=gain), aberration


def _render(image: Tensor, radius: Tensor, settings: RenderSettings, aberration: str) -> Tensor:
    """Blur one frame; aberrations mix renders of different radii in linear light."""
    base = render_layered(image[None], radius[None], settings)[0]
    if aberration == "none" or float(radius.abs().max()) < 1.0:
        return base
    lin = srgb_to_linear(base)
    if aberration == "soft":  # spherical aberration, under-corrected: a bright centre
        inner = srgb_to_linear(render_layered(image[None], 0.55 * radius[None], settings)[0])
        lin = 0.6 * lin + 0.4 * inner
    elif aberration == "rim":  # over-corrected: a bright rim ("soap bubble")
        inner = srgb_to_linear(render_layered(image[None], 0.7 * radius[None], settings)[0])
        lin = (1.4 * lin - 0.4 * inner).clamp_min(0.0)
    else:  # axial chromatic aberration: red blur a little larger than blue
        big = srgb_to_linear(render_layered(image[None], 1.06 * radius[None], settings)[0])
        small = srgb_to_linear(render_layered(image[None], 0.94 * radius[None], settings)[0])
        lin = torch.stack([big[0], lin[1], small[2]])
    return linear_to_srgb(lin).clamp(0.0, 1.0)


def _degrade(x: Tensor, g: torch.Generator, noise: tuple[float, float], jpeg: int) -> Tensor:
    """Sensor noise (Poisson-Gaussian in linear light) and JPEG compression, then 8-bit."""
    shot, read = noise
    if shot > 0 or read > 0:
        lin = srgb_to_linear(x)
        std = (shot * lin + read * read).sqrt()
        lin = lin + std * torch.randn(lin.shape, generator=g)
        x = linear_to_srgb(lin.clamp(0.0, 1.0))
    u8 = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    if jpeg:
        _, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        u8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(u8)).permute(2, 0, 1)


def make_clip(
    seed: int,
    cfg: ClipConfig,
    sources: SharpSources | None,
    flow: DISFlow | None = None,
    *,
    backdrop_parallax: bool = False,
) -> dict[str, Tensor]:
    """One synthetic defocused clip.

    Args:
        seed: the clip is a pure function of it (and of the other arguments).
        cfg: what the clip looks like.
        sources: photos and TartanAir frames, or None (procedural textures only).
        flow: the DIS instance to compute flow with (default: "fast" at the clip size).
        backdrop_parallax: the backdrop moves by its own depth too (a slanted or TartanAir
            backdrop shows parallax), not rigidly. Draws no random numbers, so the same seed
            gives the same scene either way. A keyword, not a `ClipConfig` field, so the
            deblur trainer's cache keys (made from `ClipConfig`) stay as they were.

    Returns:
        blurred: (T, 3, S, S) uint8, the camera's frames (noise, compression).
        sharp: (T, 3, S, S) uint8, all in focus, clean.
        defocus: (T, 1, S, S) float16, |blur radius| in px of the visible surface.
        flow: (T, 2, S, S) float16, px from frame t to t-1 on the blurred frames (DIS; zero
            for t = 0).
        confidence: (T, 1, S, S) uint8 in {0, 1}, forward-backward check of `flow`.
        disparity: (T, 1, S, S) float16, 1/m, of the visible surface (larger = nearer).
    """
    g = torch.Generator().manual_seed(seed)
    layers = _scene(cfg, g, sources, backdrop_parallax)
    margin = math.ceil(cfg.motion_px * cfg.frames) + 4
    frames = [_frame(layers, t, cfg.size, margin) for t in range(cfg.frames)]
    disp_all = torch.cat([d for _, d in frames])
    lo, hi = float(disp_all.min()), float(disp_all.max())
    in_focus = _rand(g) < cfg.in_focus_fraction
    r_max = 0.0 if in_focus else 0.5 + (cfg.max_radius_px - 0.5) * _rand(g) ** 1.3
    # Focus on one layer (a subject, as in real shots) or anywhere in the depth range.
    if _rand(g) < 0.6:
        focus = float(layers[_randint(g, len(layers))].disp.median())
    else:
        focus = lo + (hi - lo) * _rand(g)
    focus = min(max(focus, lo), hi)
    drift = (2 * _rand(g) - 1) * 0.05 * (hi - lo) if _rand(g) < 0.3 else 0.0
    spread = max(hi - focus, focus - lo, 1e-3)
    k = r_max / spread
    settings, aberration = _lens(g)
    noisy = _rand(g) < cfg.noise_fraction
    noise = (0.004 * _rand(g) ** 2, 0.006 * _rand(g)) if noisy else (0.0, 0.0)
    jpeg = 50 + _randint(g, 46) if _rand(g) < cfg.jpeg_fraction else 0
    out: dict[str, list[Tensor]] = {"blurred": [], "sharp": [], "defocus": []}
    for t, (image, disp) in enumerate(frames):
        radius = k * (disp - (focus + drift * t))
        blurred = _render(image, radius, settings, aberration) if r_max > 0 else image
        out["blurred"].append(_degrade(blurred, g, noise, jpeg))
        out["sharp"].append((image * 255 + 0.5).to(torch.uint8))
        out["defocus"].append(radius.abs().half())
    clip = {key: torch.stack(v) for key, v in out.items()}
    flows = [torch.zeros(2, cfg.size, cfg.size)]
    confs = [torch.zeros(1, cfg.size, cfg.size)]
    dis = flow or DISFlow("fast", max_side_px=cfg.size)
    lumas = [_luma_u8(b) for b in clip["blurred"]]
    for t in range(1, cfg.frames):
        f, c = dis.luma_flow_and_confidence(lumas[t], lumas[t - 1])
        flows.append(torch.from_numpy(f).permute(2, 0, 1))
        confs.append(torch.from_numpy(c)[None].float())
    clip["flow"] = torch.stack(flows).half()
    clip["confidence"] = torch.stack(confs).to(torch.uint8)
    clip["disparity"] = disp_all[:, None].half()
    return clip


def _luma_u8(rgb_u8: Tensor) -> np.ndarray:
    x = rgb_u8.float().numpy()
    return np.clip(0.2126 * x[0] + 0.7152 * x[1] + 0.0722 * x[2] + 0.5, 0, 255).astype(np.uint8)
