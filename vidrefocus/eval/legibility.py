"""Character-level legibility of synthetic CCTV text (`eval.plates`) in a degraded frame.

Every item of a `TextScene` knows its box and the box of each character, so the metric looks
exactly where the text is: PSNR and SSIM over the text boxes, the share of characters a
template matcher still reads correctly, and the 10-90 % width of stroke edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.eval.metrics import psnr, ssim
from vidrefocus.eval.plates import (
    _LUMA,
    ALPHABET,
    TextItem,
    TextScene,
    _ink_coverage,
    glyph_templates,
)

__all__ = [
    "SHIFT_PX",
    "Legibility",
    "edge_width_10_90",
    "legibility",
    "read_item",
    "stroke_edge_width_px",
]

# The matcher tries every offset up to this many px: boxes come from the sharp frame, and a
# deblurrer may move an edge by a pixel or two without making the glyph any less legible.
SHIFT_PX = 2


def _grey(img: Tensor) -> Tensor:
    w = torch.tensor(_LUMA, dtype=torch.float32, device=img.device).view(3, 1, 1)
    return (img.float() * w).sum(0)


def read_item(image: Tensor, item: TextItem) -> str:
    """Read an item's characters with a template matcher.

    Each character box, grown by `SHIFT_PX` on every side, is compared with the 36 glyph
    templates of the item's style by normalised cross-correlation (NCC) of grey values
    (BT.709 luma) at every offset up to `SHIFT_PX`; the glyph with the best NCC, signed so
    that ink of the item's polarity correlates positively, is the reading. A flat crop
    (no contrast left) scores 0 against every glyph and reads as "A", right only by chance.

    Args:
        image: (3, H, W) float in [0, 1], display-referred, the frame the item is in.
        item: the item (its boxes must lie inside the frame).
    Returns:
        The characters read, one per `item.chars`.
    Raises:
        InputError: an image that is not (3, H, W) or does not contain the item's box.
    """
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise InputError(f"read_item: image must be a (3, H, W) RGB tensor; got {shape}.")
    x0, y0, x1, y1 = item.box
    if x0 < 0 or y0 < 0 or x1 > image.shape[2] or y1 > image.shape[1]:
        raise InputError(
            f"read_item: the item box {item.box} lies outside the "
            f"{image.shape[2]} x {image.shape[1]} image; pass the frame of the item's scene."
        )
    grey = F.pad(_grey(image)[None, None], (SHIFT_PX,) * 4, mode="replicate")
    tmpl = glyph_templates(item.style).to(grey.device)
    _, th, tw = tmpl.shape
    tmpl = tmpl - tmpl.mean((1, 2), keepdim=True)
    tmpl = tmpl / tmpl.flatten(1).norm(dim=1).clamp_min(1e-6).view(-1, 1, 1)
    # box coordinates shift by SHIFT_PX in the padded frame, which is the grown box's corner
    boxes = [cb.box for cb in item.chars]
    crops = torch.stack(
        [grey[0, :, y0 : y1 + 2 * SHIFT_PX, x0 : x1 + 2 * SHIFT_PX] for x0, y0, x1, y1 in boxes]
    )
    # Templates have zero mean, so sum(crop * t) is already the centred cross term.
    num = F.conv2d(crops, tmpl[:, None])  # (N, 36, 2S+1, 2S+1)
    ones = torch.ones(1, 1, th, tw, device=grey.device)
    s1 = F.conv2d(crops, ones)
    s2 = F.conv2d(crops * crops, ones)
    norm = (s2 - s1 * s1 / (th * tw)).clamp_min(0.0).sqrt()
    ncc = num / (norm + 1e-6)
    sign = -1.0 if item.dark_ink else 1.0
    best = (sign * ncc).flatten(2).amax(2)  # (N, 36)
    return "".join(ALPHABET[int(i)] for i in best.argmax(1))


def edge_width_10_90(profiles: Tensor, step_px: float = 1.0, min_contrast: float = 0.05) -> Tensor:
    """10-90 % rise distance of edges sampled across their direction.

    Each profile is read outward from its centre sample for as long as it keeps rising (a
    fall of up to 1 % of the full scale is tolerated as noise); the edge spans the local
    minimum and maximum found that way (as Marziliano et al., "A no-reference perceptual
    blur metric", ICIP 2002, bound an edge by its local extrema), and its width is the
    distance between the crossings of 10 % and 90 % of that rise, linearly interpolated.
    A step drawn with one anti-aliased pixel is about 1 px wide; a disk blur of radius r
    widens a step to 1.37 r (the chord-area edge response of a disk), and a thin stroke to
    less, as its profile peaks before the blur's full width.

    Args:
        profiles: (N, K) float, K odd, values sampled `step_px` apart, rising through the
            centre sample (dark to light).
        step_px: distance between samples in px, > 0.
        min_contrast: rises smaller than this (in the profile's units) are not edges.
    Returns:
        (N,) float32 widths in px; NaN where the profile does not rise by `min_contrast`.
    Raises:
        InputError: profiles that are not (N, K) with an odd K >= 3, or step_px <= 0.
    Example:
        >>> p = torch.tensor([[0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]])
        >>> round(float(edge_width_10_90(p)[0]), 2)
        3.2
    """
    if profiles.ndim != 2 or profiles.shape[1] < 3 or profiles.shape[1] % 2 == 0:
        raise InputError(f"profiles must be (N, K) with K odd >= 3; got {tuple(profiles.shape)}.")
    if not step_px > 0:
        raise InputError(f"step_px must be > 0; got {step_px}.")
    p = profiles.detach().float()
    n, k = p.shape
    c = k // 2
    tol = 0.01
    up = (p[:, c + 1 :] >= p[:, c:-1] - tol).int().cumprod(1).sum(1)  # rising steps right
    down = (p[:, :c].flip(1) <= p[:, 1 : c + 1].flip(1) + tol).int().cumprod(1).sum(1)
    idx = torch.arange(k, device=p.device).expand(n, k)
    run = (idx >= (c - down)[:, None]) & (idx <= (c + up)[:, None])
    lo = torch.where(run, p, math.inf).amin(1, keepdim=True)
    hi = torch.where(run, p, -math.inf).amax(1, keepdim=True)
    # Outside the rising run the profile is held at its extremes, and a running maximum
    # removes the tolerated small dips, so each level is crossed exactly once.
    held = torch.where(run, p, torch.where(idx < c, lo, hi))
    mono = held.cummax(1).values
    rise = (hi - lo)[:, 0]

    def crossing(frac: float) -> Tensor:
        level = lo + frac * (hi - lo)
        j = (mono < level).sum(1).clamp(1, k - 1)  # first sample at or above the level
        a = mono.gather(1, (j - 1)[:, None])[:, 0]
        b = mono.gather(1, j[:, None])[:, 0]
        t = ((level[:, 0] - a) / (b - a).clamp_min(1e-9)).clamp(0.0, 1.0)
        return j - 1 + t

    width = (crossing(0.9) - crossing(0.1)) * step_px
    return torch.where(rise >= min_contrast, width, torch.full_like(width, math.nan))


def _edge_samples(item: TextItem, max_points: int) -> tuple[Tensor, Tensor]:
    """Points on the sharp characters' stroke edges (x, y px) and unit normals towards the
    lighter side: where the gradient of the (slightly smoothed) ink coverage is strong."""
    x0, y0 = item.box[:2]
    smooth = cv2.GaussianBlur(_ink_coverage(item), (0, 0), 0.7)
    gy, gx = np.gradient(smooth)
    mag = np.hypot(gx, gy)
    ys, xs = np.nonzero(mag >= 0.5 * mag.max())
    stride = max(1, math.ceil(len(ys) / max_points))
    ys, xs = ys[::stride], xs[::stride]
    # gradient points into the ink; towards the lighter side is away from dark ink
    sign = -1.0 if item.dark_ink else 1.0
    normals = sign * np.stack([gx[ys, xs], gy[ys, xs]], 1) / mag[ys, xs, None]
    points = np.stack([xs + x0, ys + y0], 1).astype(np.float32)
    return torch.from_numpy(points), torch.from_numpy(normals.astype(np.float32))


def stroke_edge_width_px(image: Tensor, scene: TextScene, max_points: int = 200) -> float:
    """Mean 10-90 % edge width (px) across the character strokes of a scene, in `image`.

    Edge points and their directions come from the sharp glyphs; the grey (BT.709 luma)
    profile of `image` across each point, +-6 px at 0.5 px steps, is measured by
    `edge_width_10_90`. It says how steep the text's edges are, not whether they are right:
    a filter that invents edges scores well here and badly on recognition.

    Args:
        image: (3, H, W) float in [0, 1], display-referred, of the scene's size.
        scene: where the characters are.
        max_points: at most this many edge points per item (evenly thinned).
    Returns:
        The mean width in px over the profiles that hold an edge; NaN if none does.
    """
    if not scene.items:
        return math.nan
    samples = [_edge_samples(it, max_points) for it in scene.items]
    points = torch.cat([p for p, _ in samples])
    normals = torch.cat([n for _, n in samples])
    t = torch.arange(-12, 13, dtype=torch.float32) * 0.5
    xy = points[:, None, :] + t[None, :, None] * normals[:, None, :]  # (N, K, 2)
    _, h, w = image.shape
    grid = torch.stack([xy[..., 0] / (w - 1) * 2 - 1, xy[..., 1] / (h - 1) * 2 - 1], -1)
    grey = _grey(image.cpu())[None, None]
    prof = F.grid_sample(grey, grid[None], mode="bilinear", align_corners=True)[0, 0]
    widths = edge_width_10_90(prof, step_px=0.5)
    ok = widths.isfinite()
    return float(widths[ok].mean()) if bool(ok.any()) else math.nan


@dataclass(frozen=True)
class Legibility:
    """How legible the text of a scene is in an image.

    Attributes:
        recognition: share of characters the template matcher reads correctly, in [0, 1].
        correct, chars: the counts behind it (sum them to pool several scenes).
        psnr_db: PSNR against the sharp frame over the union of the text boxes (pooled MSE).
        ssim: SSIM against the sharp frame per text box, averaged weighted by box area.
        edge_width_px: mean 10-90 % edge width across character strokes
            (`stroke_edge_width_px`); NaN if no edge is left.
        read: what the matcher read, one string per item.
    """

    recognition: float
    correct: int
    chars: int
    psnr_db: float
    ssim: float
    edge_width_px: float
    read: tuple[str, ...]


def legibility(image: Tensor, scene: TextScene, *, edges: bool = True) -> Legibility:
    """Character-level legibility of a scene's text in `image` (e.g. blurred or restored).

    Args:
        image: (3, H, W) float in [0, 1], display-referred, the scene's size.
        scene: the sharp frame and where its text is.
        edges: also measure the stroke edge width (NaN when False).
    Returns:
        Recognition rate, text PSNR and SSIM, edge width, and the readings.
    Raises:
        InputError: an image that is not (3, H, W) of the scene's size, or a scene without
            text.
    Example:
        >>> from vidrefocus.eval.plates import make_text_scene
        >>> scene = make_text_scene(0, 96, 160, plates=1, signs=1)
        >>> legibility(scene.image, scene).recognition
        1.0
    """
    ref = scene.image
    if not isinstance(image, Tensor) or tuple(image.shape) != tuple(ref.shape):
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise InputError(
            f"legibility: image must be {tuple(ref.shape)} like the scene; got {shape}."
        )
    if not scene.items:
        raise InputError("legibility: the scene has no text items; make a larger frame.")
    img = image.detach().float().cpu()
    ref = ref.float().cpu()
    read = tuple(read_item(img, it) for it in scene.items)
    correct = sum(
        a == b
        for it, r in zip(scene.items, read, strict=True)
        for a, b in zip(it.text, r, strict=True)
    )
    chars = sum(len(it.text) for it in scene.items)
    boxes = [it.box for it in scene.items]
    crops = [(img[:, y0:y1, x0:x1], ref[:, y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes]
    flat_a = torch.cat([a.reshape(3, 1, -1) for a, _ in crops], 2)
    flat_b = torch.cat([b.reshape(3, 1, -1) for _, b in crops], 2)
    areas = torch.tensor([a.shape[1] * a.shape[2] for a, _ in crops], dtype=torch.float64)
    ssims = torch.stack([ssim(a, b).double() for a, b in crops])
    return Legibility(
        recognition=correct / chars,
        correct=correct,
        chars=chars,
        psnr_db=float(psnr(flat_a, flat_b)),
        ssim=float((ssims * areas).sum() / areas.sum()),
        edge_width_px=stroke_edge_width_px(img, scene) if edges else math.nan,
        read=read,
    )
