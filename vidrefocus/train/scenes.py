"""Synthetic layered scenes with known hidden content, depth and highlights.

Each scene is a stack of full RGBA layers, far to near, each with its own disparity map, so
the content that a nearer layer hides is known. The visible frame and its depth are the
"over" composite; the exact reference renderer (`vidrefocus.eval.reference_render`) sees all
layers. Used to test the renderer and to train the learned parts (BokehNet fill, DeblurNet).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from vidrefocus.color import linear_to_srgb, srgb_to_linear

__all__ = ["SCENE_KINDS", "SOFT_IMAGES", "LayeredScene", "dead_leaves", "make_scene"]

SCENE_KINDS = ("step", "occluder", "slant", "three", "random")

# Training photos the data README flags as naturally blurred (stems): they would teach blur
# as texture, so every trainer leaves them out.
SOFT_IMAGES = frozenset({"kodim04", "kodim05", "kodim15", "kodim18", "kodim23", "coffee"})


@dataclass(frozen=True)
class LayeredScene:
    """Full layers, far to near.

    Attributes:
        rgb: list of (3, H, W) float, linear light (highlights may exceed 1).
        alpha: list of (1, H, W) float in [0, 1].
        disparity: list of (1, H, W) float, 1/m, larger = nearer.
    """

    rgb: list[Tensor]
    alpha: list[Tensor]
    disparity: list[Tensor]

    def visible(self) -> tuple[Tensor, Tensor]:
        """The all-in-focus frame a camera would record, and its depth.

        Returns:
            ((3, H, W) display-referred in [0, 1] (highlights clipped, as a camera does),
             (1, H, W) disparity of the front-most layer with alpha > 0.5).
        """
        img = torch.zeros_like(self.rgb[0])
        disp = torch.zeros_like(self.disparity[0])
        for rgb, a, d in zip(self.rgb, self.alpha, self.disparity, strict=True):
            img = rgb * a + img * (1.0 - a)
            disp = torch.where(a > 0.5, d, disp)
        return linear_to_srgb(img).clamp(0.0, 1.0), disp


def dead_leaves(
    h: int, w: int, generator: torch.Generator, *, n: int = 300, rmin: float = 2.0
) -> Tensor:
    """A "dead leaves" texture: random occluding discs with a power-law size distribution,
    which has the scale invariance and edge statistics of natural images.

    Returns:
        (3, H, W) float, display-referred in [0, 1].
    """
    img = torch.rand(3, 1, 1, generator=generator).expand(3, h, w).clone()
    ys = torch.arange(h).view(h, 1).float()
    xs = torch.arange(w).view(1, w).float()
    rmax = max(h, w) / 4
    for _ in range(n):
        # r ~ 1/r^3 density between rmin and rmax (inverse CDF sampling)
        u = float(torch.rand(1, generator=generator))
        r = (rmin**-2 - u * (rmin**-2 - rmax**-2)) ** -0.5
        cy = float(torch.rand(1, generator=generator)) * h
        cx = float(torch.rand(1, generator=generator)) * w
        colour = torch.rand(3, 1, 1, generator=generator)
        inside = (((ys - cy) ** 2 + (xs - cx) ** 2).sqrt() - r).neg().add(0.5).clamp(0.0, 1.0)
        img = img * (1.0 - inside) + colour * inside
    return img


def _texture(h: int, w: int, g: torch.Generator) -> Tensor:
    """Dead leaves with a grating and fine noise on top, so every layer has detail."""
    base = dead_leaves(h, w, g, n=120)
    yy = torch.arange(h).view(h, 1).float()
    xx = torch.arange(w).view(1, w).float()
    angle = float(torch.rand(1, generator=g)) * math.pi
    freq = 0.15 + 0.5 * float(torch.rand(1, generator=g))
    grating = 0.5 + 0.5 * torch.sin(freq * (xx * math.cos(angle) + yy * math.sin(angle)))
    noise = torch.rand(1, h, w, generator=g)
    return (0.75 * base + 0.15 * grating + 0.10 * noise).clamp(0.0, 1.0)


def _with_highlights(rgb_display: Tensor, g: torch.Generator, count: int, peak: float) -> Tensor:
    """Convert to linear light and add small point lights brighter than the sensor clips."""
    lin = srgb_to_linear(rgb_display)
    _, h, w = lin.shape
    ys = torch.arange(h).view(h, 1).float()
    xs = torch.arange(w).view(1, w).float()
    for _ in range(count):
        cy = float(torch.rand(1, generator=g)) * h
        cx = float(torch.rand(1, generator=g)) * w
        r = 1.0 + 1.5 * float(torch.rand(1, generator=g))
        spot = (r + 0.5 - ((ys - cy) ** 2 + (xs - cx) ** 2).sqrt()).clamp(0.0, 1.0)
        lin = lin * (1 - spot) + peak * spot
    return lin


def _disc_alpha(h: int, w: int, cy: float, cx: float, r: float) -> Tensor:
    ys = torch.arange(h).view(h, 1).float()
    xs = torch.arange(w).view(1, w).float()
    return (r + 0.5 - ((ys - cy) ** 2 + (xs - cx) ** 2).sqrt()).clamp(0.0, 1.0)[None]


def _rect_alpha(h: int, w: int, y0: float, x0: float, y1: float, x1: float) -> Tensor:
    ys = torch.arange(h).view(h, 1).float() + 0.5
    xs = torch.arange(w).view(1, w).float() + 0.5
    ay = ((ys - y0).clamp(0, 1) * (y1 - ys).clamp(0, 1)).clamp(0, 1)
    ax = ((xs - x0).clamp(0, 1) * (x1 - xs).clamp(0, 1)).clamp(0, 1)
    return (ay * ax)[None]


def make_scene(
    kind: str,
    h: int = 96,
    w: int = 128,
    seed: int = 0,
    textures: Callable[[int, int, torch.Generator], Tensor] | None = None,
) -> LayeredScene:
    """A deterministic layered scene.

    Args:
        kind: "step" (sharp-edged near slab over a far wall with lights), "occluder" (a near
            disc over a textured mid plane), "slant" (a receding plane with lights), "three"
            (wall, card, near disc), or "random" (2-4 random layers; for training).
        h, w: size in px.
        seed: RNG seed.
        textures: optional source of display-referred (3, h, w) textures (e.g. photo crops),
            used for half the layers of "random" scenes.
    Returns:
        The scene, disparities in 1/m (distances between 0.5 m and 10 m).
    """
    g = torch.Generator().manual_seed(seed)
    full = torch.ones(1, h, w)

    def const(d: float) -> Tensor:
        return torch.full((1, h, w), d)

    wall = _with_highlights(_texture(h, w, g), g, count=6, peak=12.0)
    if kind == "step":
        slab = srgb_to_linear(_texture(h, w, g))
        return LayeredScene(
            [wall, slab], [full, _rect_alpha(h, w, -1, w * 0.45, h + 1, w + 1)],
            [const(0.1), const(1.0)],
        )  # fmt: skip
    if kind == "occluder":
        mid = srgb_to_linear(_texture(h, w, g))
        disc = srgb_to_linear(_texture(h, w, g))
        return LayeredScene(
            [mid, disc], [full, _disc_alpha(h, w, h * 0.5, w * 0.45, h * 0.28)],
            [const(0.5), const(2.0)],
        )  # fmt: skip
    if kind == "slant":
        ramp = torch.linspace(0.1, 1.2, h).view(1, h, 1).expand(1, h, w).clone()
        return LayeredScene([wall], [full], [ramp])
    if kind == "three":
        card = srgb_to_linear(_texture(h, w, g))
        disc = srgb_to_linear(_texture(h, w, g))
        return LayeredScene(
            [wall, card, disc],
            [full, _rect_alpha(h, w, h * 0.15, w * 0.1, h * 0.7, w * 0.6),
             _disc_alpha(h, w, h * 0.65, w * 0.62, h * 0.22)],
            [const(0.12), const(0.4), const(1.6)],
        )  # fmt: skip
    if kind == "random":
        n = 2 + int(torch.randint(0, 3, (1,), generator=g))
        rgb, alpha, disp = [wall], [full], [const(0.1 + 0.3 * float(torch.rand(1, generator=g)))]
        for i in range(1, n):
            use_photo = textures is not None and float(torch.rand(1, generator=g)) < 0.5
            tex = srgb_to_linear(textures(h, w, g) if use_photo else _texture(h, w, g))
            if float(torch.rand(1, generator=g)) < 0.3:
                tex = _with_highlights(_texture(h, w, g), g, count=3, peak=8.0)
            cy, cx = float(torch.rand(1, generator=g)) * h, float(torch.rand(1, generator=g)) * w
            size = (0.15 + 0.3 * float(torch.rand(1, generator=g))) * min(h, w)
            if float(torch.rand(1, generator=g)) < 0.5:
                a = _disc_alpha(h, w, cy, cx, size)
            else:
                a = _rect_alpha(h, w, cy - size, cx - size, cy + size, cx + size * 1.5)
            base = disp[-1][0, 0, 0].item()
            d = base + (0.2 + float(torch.rand(1, generator=g))) * (i / n) * 1.5
            rgb.append(tex)
            alpha.append(a)
            disp.append(const(d))
        return LayeredScene(rgb, alpha, disp)
    raise ValueError(f"unknown scene kind {kind!r}; known: {', '.join(SCENE_KINDS)}")
