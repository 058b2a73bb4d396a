"""Slow, exact-by-construction references for tests: point-supersampled aperture kernels."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from vidrefocus.aperture import HEART_CENTROID_Y, ApertureSpec, cat_eye_shift
from vidrefocus.errors import InputError

__all__ = [
    "aperture_inside",
    "aperture_kernel_supersampled",
    "disk_kernel_supersampled",
    "supersampled_coverage",
]

# A weight function: pixel coordinates (x right, y down, origin at the kernel centre, float64)
# -> how open the aperture is there, in [0, 1] (0/1 for geometric shapes).
Inside = Callable[[Tensor, Tensor], Tensor]


def supersampled_coverage(inside: Inside, size: int, factor: int = 16) -> Tensor:
    """Mean of `inside` over factor x factor point samples in each pixel.

    A point-sampled grid has no antialiasing model to get wrong; its error is the sampling
    error, at most ~1/factor of a pixel per rim pixel and shrinking as factor grows.

    Args:
        inside: weight function (see `Inside`).
        size: odd kernel side in pixels.
        factor: samples per pixel per axis.
    Returns:
        (size, size) float64 coverage in [0, 1].
    """
    half = size // 2
    c = torch.arange(-half, half + 1, dtype=torch.float64)
    offs = (torch.arange(factor, dtype=torch.float64) + 0.5) / factor - 0.5
    xs = (c.view(-1, 1) + offs.view(1, -1)).reshape(1, -1)
    ys = (c.view(-1, 1) + offs.view(1, -1)).reshape(-1, 1)
    # ~16k samples at a time: bigger temporaries page-fault on every op (50x slower on CPU)
    step = max(1, (1 << 14) // xs.numel())
    sums = torch.cat(
        [inside(xs, ys[i : i + step]).to(torch.float64) for i in range(0, ys.numel(), step)]
    )
    return sums.view(size, factor, size, factor).mean(dim=(1, 3))


def _in_polygon(x: Tensor, y: Tensor, vx: list[float], vy: list[float]) -> Tensor:
    """Even-odd ray crossing test against a closed polygon (any simple polygon)."""
    inside = torch.zeros(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.bool)
    n = len(vx)
    for i in range(n):
        x0, y0, x1, y1 = vx[i], vy[i], vx[(i + 1) % n], vy[(i + 1) % n]
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside = inside ^ (crosses & (x < x_at))
    return inside


def _unit_inside(spec: ApertureSpec) -> Inside:
    """Membership in the unit shape (y up, vertex/point up, heart centroid at the origin)."""
    if spec.shape == "disk":
        return lambda x, y: x * x + y * y <= 1.0
    if spec.shape == "polygon":
        n = spec.blades
        ang = [math.pi / 2 + 2 * math.pi * i / n for i in range(n)]
        vx, vy = [math.cos(a) for a in ang], [math.sin(a) for a in ang]
        if spec.curvature == 0:
            return lambda x, y: _in_polygon(x, y, vx, vy)
        big_r = 1.0 / spec.curvature
        centres = []
        for i in range(n):
            mx, my = (vx[i] + vx[(i + 1) % n]) / 2, (vy[i] + vy[(i + 1) % n]) / 2
            half_chord = math.hypot(vx[(i + 1) % n] - vx[i], vy[(i + 1) % n] - vy[i]) / 2
            back = math.sqrt(big_r**2 - half_chord**2) / math.hypot(mx, my)
            centres.append((mx - mx * back, my - my * back))  # inwards from the chord

        def curved(x: Tensor, y: Tensor) -> Tensor:
            ok = torch.ones(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.bool)
            for cx, cy in centres:
                ok = ok & ((x - cx) ** 2 + (y - cy) ** 2 <= big_r**2)
            return ok

        return curved
    if spec.shape == "star":
        p, inner = spec.star_points, spec.star_inner
        ang = [math.pi / 2 + math.pi * i / p for i in range(2 * p)]
        rad = [1.0 if i % 2 == 0 else inner for i in range(2 * p)]
        vx = [r * math.cos(a) for r, a in zip(rad, ang, strict=True)]
        vy = [r * math.sin(a) for r, a in zip(rad, ang, strict=True)]
        return lambda x, y: _in_polygon(x, y, vx, vy)
    if spec.shape == "heart":
        s = HEART_CENTROID_Y

        def heart(x: Tensor, y: Tensor) -> Tensor:
            px, py = (x * s).abs(), y * s + s
            diamond = px + (py - 0.5).abs() <= 0.5
            return diamond | ((px - 0.25) ** 2 + (py - 0.75) ** 2 <= 0.125)

        return heart
    raise InputError(f"no unit-shape reference for {spec.shape!r}")


def aperture_inside(
    spec: ApertureSpec, radius_px: float, position: tuple[float, float] | None = None
) -> Inside:
    """Weight function of the aperture as `vidrefocus.aperture.make_kernel` defines it.

    Same conventions, independent geometry: squeeze scales the unit shape to
    (1/squeeze, 1) or (1, squeeze) of the radius, rotation is counter-clockwise on screen,
    cat's eye keeps the aperture at -shift/2 and a barrel disk at +shift/2, an image mask's
    longer side spans 2 r and is sampled nearest-neighbour.
    """
    ax, ay = (1.0 / spec.squeeze, 1.0) if spec.squeeze >= 1 else (1.0, spec.squeeze)
    dx, dy = (0.0, 0.0) if position is None else cat_eye_shift(position, spec.cat_eye)
    dx, dy = dx / 2, dy / 2
    theta = math.radians(spec.rotation_deg)
    cos_t, sin_t = math.cos(theta), math.sin(theta)

    def barrel(ux: Tensor, uy: Tensor) -> Tensor:
        return (ux - dx) ** 2 + (uy - dy) ** 2 <= 1.0

    if spec.shape == "image":
        mask = spec.mask
        h, w = mask.shape
        bx, by = ax * w / max(h, w), ay * h / max(h, w)  # in radii, before squeeze division

        def image(x: Tensor, y: Tensor) -> Tensor:
            # unit coordinates without the squeeze division, so the box is bx x by radii
            sx, sy = x / radius_px + dx * ax, -y / radius_px + dy * ay
            col = torch.floor((sx + bx) / (2 * bx) * w).long()
            row = torch.floor((by - sy) / (2 * by) * h).long()
            col, row = torch.broadcast_tensors(col, row)
            ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
            value = mask[row.clamp(0, h - 1), col.clamp(0, w - 1)] * ok
            if dx or dy:
                value = value * barrel(x / (radius_px * ax), -y / (radius_px * ay))
            return value

        return image

    shape = _unit_inside(spec)

    def geometric(x: Tensor, y: Tensor) -> Tensor:
        ux, uy = x / (radius_px * ax), -y / (radius_px * ay)
        vx, vy = ux + dx, uy + dy
        ok = shape(cos_t * vx + sin_t * vy, cos_t * vy - sin_t * vx)
        if dx or dy:
            ok = ok & barrel(ux, uy)
        return ok

    return geometric


def aperture_kernel_supersampled(
    spec: ApertureSpec,
    radius_px: float,
    position: tuple[float, float] | None = None,
    factor: int = 16,
    size: int | None = None,
) -> Tensor:
    """Normalised kernel from `supersampled_coverage` of `aperture_inside`.

    Args:
        spec: the aperture.
        radius_px: blur radius in pixels, > 0.
        position: normalised (x, y) image position for cat's eye, or None.
        factor: samples per pixel per axis (16 for tests, 64 to check the 16x one).
        size: odd side; default 2 * ceil(radius_px) + 1.
    Returns:
        (size, size) float64, >= 0, sums to 1.
    """
    if size is None:
        size = 2 * math.ceil(radius_px) + 1
    cover = supersampled_coverage(aperture_inside(spec, radius_px, position), size, factor)
    return cover / cover.sum()


def disk_kernel_supersampled(radius_px: float, factor: int = 16) -> Tensor:
    """Normalised (2 ceil(r) + 1)^2 float64 disk kernel from point supersampling."""
    return aperture_kernel_supersampled(ApertureSpec("disk"), radius_px, factor=factor)
