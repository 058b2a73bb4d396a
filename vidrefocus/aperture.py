"""Aperture kernels: disk, polygon (blades, rotation, curvature), star, heart, image mask."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.errors import InputError

__all__ = [
    "HEART_CENTROID_Y",
    "KNOWN_SHAPES",
    "MAX_RADIUS_PX",
    "ApertureSpec",
    "cat_eye_kernel",
    "cat_eye_shift",
    "disk_kernel",
    "heart_kernel",
    "kernel_size",
    "kernel_stack",
    "load_mask",
    "make_kernel",
    "mask_kernel",
    "polygon_kernel",
    "star_kernel",
]

KNOWN_SHAPES = ("disk", "polygon", "star", "heart", "image")

# A 2048 px radius is a 4097 x 4097 kernel (64 MiB); anything larger is a mistake upstream.
MAX_RADIUS_PX = 2048.0

# Shapes live in "unit" coordinates: y up, inside the unit circle, centroid at the origin.
# Inigo Quilez's heart (iquilezles.org/articles/distfunctions2d) is a diamond |x| + |y - 1/2|
# <= 1/2 plus two disks of radius sqrt(2)/4 at (+-1/4, 3/4), tip at the origin. Its centroid is
# at y = (1/4 + (pi/8)(3/4 + 1/(3 pi))) / (1/2 + pi/8), and the tip is its farthest point from
# there (0.657 vs 0.620 for the lobes), so this one number both centres and scales it.
HEART_CENTROID_Y = (0.25 + math.pi / 8 * (0.75 + 1 / (3 * math.pi))) / (0.5 + math.pi / 8)

# Pixels whose centre is this far from the edge are wholly inside or outside (half a pixel
# diagonal is 0.707 and every distance function below is 1-Lipschitz, so never overestimates).
_RIM_PX = 0.75
# Rim pixels get _SUBSAMPLES^2 subsamples, each with analytic coverage from a 1/_SUBSAMPLES px
# ramp; measured error against a 256x point-sampled reference: <= 2e-3 of a pixel's area
# (4e-3 when squeezed, where the scaled distance underestimates and widens the ramp).
_SUBSAMPLES = 16
_CHUNK = 1 << 14

_Sdf = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class ApertureSpec:
    """What an aperture looks like, independent of its size; validated on construction.

    Attributes:
        shape: one of `KNOWN_SHAPES`.
        blades: polygon blade count, >= 3.
        rotation_deg: counter-clockwise rotation on screen, degrees; must be 0 for "image".
        curvature: polygon blade curvature in [0, 1]: 0 straight blades, 1 a circle.
        star_points: star point count, >= 3.
        star_inner: star inner radius / outer radius, in (0, 1].
        squeeze: anamorphic squeeze, > 0: the shape's height / width; 2 halves the width.
        cat_eye: optical vignetting strength in [0, 1] (see `cat_eye_kernel`).
        mask: (h, w) float, >= 0, the aperture image for shape "image"; None otherwise.
    """

    shape: str = "disk"
    blades: int = 6
    rotation_deg: float = 0.0
    curvature: float = 0.0
    star_points: int = 5
    star_inner: float = 0.5
    squeeze: float = 1.0
    cat_eye: float = 0.0
    mask: Tensor | None = None

    def __post_init__(self) -> None:
        if self.shape not in KNOWN_SHAPES:
            raise InputError(
                f"unknown aperture shape {self.shape!r}; known: {', '.join(KNOWN_SHAPES)}."
            )
        _check_int("blades", self.blades, 3)
        _check_int("star_points", self.star_points, 3)
        _check_range("curvature", self.curvature, 0.0, 1.0, "in [0, 1]")
        _check_range("star_inner", self.star_inner, 0.0, 1.0, "in (0, 1]", low_open=True)
        _check_range("cat_eye", self.cat_eye, 0.0, 1.0, "in [0, 1]")
        _check_range("squeeze", self.squeeze, 0.0, math.inf, "> 0 (1 = spherical)", low_open=True)
        _check_range("rotation_deg", self.rotation_deg, -math.inf, math.inf, "finite")
        if (self.shape == "image") != (self.mask is not None):
            raise InputError(
                "an aperture mask goes with shape 'image' and only with it; got shape "
                f"{self.shape!r} with mask {'set' if self.mask is not None else 'None'}."
            )
        if self.mask is not None:
            object.__setattr__(self, "mask", _check_mask(self.mask))
            if self.rotation_deg != 0:
                raise InputError(
                    f"rotation_deg is not supported for shape 'image' (got {self.rotation_deg:g}); "
                    "rotate the mask image itself."
                )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApertureSpec):
            return NotImplemented
        names = [f.name for f in fields(self) if f.name != "mask"]
        if any(getattr(self, n) != getattr(other, n) for n in names):
            return False
        if self.mask is None or other.mask is None:
            return self.mask is other.mask
        return self.mask.shape == other.mask.shape and bool(torch.equal(self.mask, other.mask))

    def __hash__(self) -> int:
        # Tensors hash by identity, so hash the mask's shape only: equal specs still collide.
        mask_key = None if self.mask is None else tuple(self.mask.shape)
        names = [f.name for f in fields(self) if f.name != "mask"]
        return hash((*(getattr(self, n) for n in names), mask_key))


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name} must be an integer >= {low}; got {value!r}.")


def _check_range(
    name: str, value: float, low: float, high: float, allowed: str, *, low_open: bool = False
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low < value if low_open else low <= value) and value <= high
    if not ok:
        raise InputError(f"{name} must be {allowed}; got {value!r}.")


def _check_mask(mask: Tensor) -> Tensor:
    if not isinstance(mask, Tensor) or mask.ndim != 2 or mask.numel() == 0:
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise InputError(f"an aperture mask must be a non-empty (h, w) tensor; got {got}.")
    mask = mask.detach().to("cpu", torch.float64).clone()  # the spec is frozen: own a copy
    if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()) or mask.sum() <= 0:
        raise InputError(
            "an aperture mask must be finite and >= 0 with some positive pixel "
            "(white = open); check the image is not all black."
        )
    return mask


def kernel_size(radius_px: float) -> int:
    """Side of the square kernel for a blur radius: 1 up to 0.5 px, else 2 * ceil(r) + 1."""
    radius_px = _check_radius(radius_px)
    return 1 if radius_px <= 0.5 else 2 * math.ceil(radius_px) + 1


def _check_radius(radius_px: float) -> float:
    try:
        value = float(radius_px)
    except (TypeError, ValueError) as err:
        raise InputError(f"radius_px must be a number of pixels; got {radius_px!r}.") from err
    if not (0.0 <= value <= MAX_RADIUS_PX):
        raise InputError(
            f"radius_px must be in [0, {MAX_RADIUS_PX:g}] px (pass |r| of a signed blur); "
            f"got {value:g}."
        )
    return value


def cat_eye_shift(position: tuple[float, float], cat_eye: float) -> tuple[float, float]:
    """Offset between aperture and lens barrel, in unit radii, y up, pointing outwards.

    The offset grows linearly with the distance from the frame centre,
    `cat_eye * hypot(x, y) / sqrt(2)`, so it is `cat_eye` radii in a corner.

    Args:
        position: (x, y) normalised image position, each in [-1, 1], y down as in the frame.
        cat_eye: vignetting strength in [0, 1].
    Returns:
        (dx, dy) in units of the kernel radius, y up.
    Raises:
        InputError: a position outside [-1, 1]^2 or a strength outside [0, 1].
    """
    _check_range("cat_eye", cat_eye, 0.0, 1.0, "in [0, 1]")
    try:
        x, y = (float(v) for v in position)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"position must be (x, y) with each in [-1, 1]; got {position!r}."
        ) from err
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise InputError(f"position must be (x, y) with each in [-1, 1]; got {position!r}.")
    return cat_eye * x / math.sqrt(2.0), -cat_eye * y / math.sqrt(2.0)


# --- signed distance functions in unit coordinates (y up, radius 1, negative inside) ---


def _disk_sdf(x: Tensor, y: Tensor) -> Tensor:
    return torch.hypot(x, y) - 1.0


def _polygon_sdf(blades: int, curvature: float) -> _Sdf:
    """Regular polygon with a vertex up; curved blades are arcs of radius 1 / curvature.

    Each blade is a disk whose circle passes through two adjacent vertices (a half-plane at
    curvature 0); the aperture is their intersection. The distance to that circle,
    |p - o| - R, is rewritten times curvature so it stays exact as R -> infinity.
    """
    apothem, half_side = math.cos(math.pi / blades), math.sin(math.pi / blades)
    m = math.sqrt(1.0 - curvature**2 * half_side**2)

    def sdf(x: Tensor, y: Tensor) -> Tensor:
        out = None
        for i in range(blades):
            phi = math.pi / 2 + math.pi / blades + 2 * math.pi * i / blades
            d = x * math.cos(phi) + y * math.sin(phi) - apothem
            t = y * math.cos(phi) - x * math.sin(phi)
            num = curvature * (d * d + t * t - half_side**2) + 2.0 * d * m
            den = torch.hypot(curvature * d + m, curvature * t) + 1.0
            sd = num / den
            out = sd if out is None else torch.maximum(out, sd)
        return out

    return sdf


def _star_sdf(points: int, inner: float) -> _Sdf:
    """Star with a point up: fold into half a sector, distance to one edge segment."""
    sector = 2.0 * math.pi / points
    bx, by = inner * math.cos(sector / 2), inner * math.sin(sector / 2)
    ex, ey = bx - 1.0, by  # edge from the tip (1, 0) to the inner vertex
    e2 = ex * ex + ey * ey

    def sdf(x: Tensor, y: Tensor) -> Tensor:
        radius = torch.hypot(x, y)
        phi = torch.remainder(torch.atan2(y, x) - math.pi / 2, sector)
        phi = torch.minimum(phi, sector - phi)
        wx, wy = radius * torch.cos(phi) - 1.0, radius * torch.sin(phi)
        h = ((wx * ex + wy * ey) / e2).clamp(0.0, 1.0)
        dist = torch.hypot(wx - ex * h, wy - ey * h)
        inside = ex * wy - ey * wx > 0  # same side of the edge as the origin
        return torch.where(inside, -dist, dist)

    return sdf


def _heart_sdf(x: Tensor, y: Tensor) -> Tensor:
    # Quilez's exact heart distance, with the unit circle mapped onto the heart's own frame.
    s = HEART_CENTROID_Y
    px, py = (x * s).abs(), y * s + s
    lobe = torch.hypot(px - 0.25, py - 0.75) - math.sqrt(2.0) / 4
    seg = 0.5 * (px + py).clamp_min(0.0)
    body = torch.sqrt(torch.minimum(px**2 + (py - 1.0) ** 2, (px - seg) ** 2 + (py - seg) ** 2))
    body = body * torch.sign(px - py)
    return torch.where(px + py > 1.0, lobe, body) / s


# Shape name -> unit distance function; "image" has none (it is resampled, see _mask_coverage).
_SDF_FACTORIES: dict[str, Callable[[ApertureSpec], _Sdf]] = {
    "disk": lambda spec: _disk_sdf,
    "polygon": lambda spec: _polygon_sdf(spec.blades, spec.curvature),
    "star": lambda spec: _star_sdf(spec.star_points, spec.star_inner),
    "heart": lambda spec: _heart_sdf,
}


def _squeeze_axes(squeeze: float) -> tuple[float, float]:
    """(horizontal, vertical) scale of the unit shape; the larger one is 1, so r bounds it."""
    return (1.0 / squeeze, 1.0) if squeeze >= 1.0 else (1.0, squeeze)


def _pixel_sdf(spec: ApertureSpec, radius_px: float, shift: tuple[float, float]) -> _Sdf:
    """Signed distance in pixels (x right, y down) of the whole aperture: shape, cat's eye,
    rotation and squeeze. Scaling by the smaller axis keeps it 1-Lipschitz (it may only
    underestimate, which the rim test tolerates)."""
    ax, ay = _squeeze_axes(spec.squeeze)
    theta = math.radians(spec.rotation_deg)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    shape = _SDF_FACTORIES[spec.shape](spec)
    dx, dy = shift[0] / 2, shift[1] / 2

    def sdf(x_px: Tensor, y_px: Tensor) -> Tensor:
        ux, uy = x_px / (radius_px * ax), -y_px / (radius_px * ay)
        vx, vy = ux + dx, uy + dy  # the aperture sits at -shift/2, the barrel at +shift/2
        sd = shape(cos_t * vx + sin_t * vy, cos_t * vy - sin_t * vx)
        if dx or dy:
            sd = torch.maximum(sd, torch.hypot(ux - dx, uy - dy) - 1.0)
        return sd * (radius_px * min(ax, ay))

    return sdf


def _barrel_sdf(squeeze: float, radius_px: float, shift: tuple[float, float]) -> _Sdf:
    """Signed distance in pixels to the barrel alone: the unit disk at +shift/2, squeezed."""
    ax, ay = _squeeze_axes(squeeze)
    dx, dy = shift[0] / 2, shift[1] / 2

    def sdf(x_px: Tensor, y_px: Tensor) -> Tensor:
        ux, uy = x_px / (radius_px * ax), -y_px / (radius_px * ay)
        return (torch.hypot(ux - dx, uy - dy) - 1.0) * (radius_px * min(ax, ay))

    return sdf


def _rasterize(sdf: _Sdf, half: int) -> Tensor:
    """Area coverage of {sdf < 0} per pixel of a (2 half + 1)^2 grid centred on the origin.

    Only rim pixels are supersampled, so a 100 px kernel costs ~1e3 rim pixels x 256
    subsamples rather than 4e4 x 256. Work goes in chunks of ~16k samples: larger temporaries
    leave the allocator's arena and page-fault on every op (measured 50x slower on CPU).
    """
    c = torch.arange(-half, half + 1, dtype=torch.float64)
    rows = max(1, _CHUNK // c.numel())
    sd = torch.cat(
        [sdf(c.view(1, -1), c[i : i + rows].view(-1, 1)) for i in range(0, c.numel(), rows)]
    )
    cover = (sd < 0).to(torch.float64)
    iy, ix = torch.nonzero(sd.abs() < _RIM_PX, as_tuple=True)
    offs = (torch.arange(_SUBSAMPLES, dtype=torch.float64) + 0.5) / _SUBSAMPLES - 0.5
    step = max(1, _CHUNK // _SUBSAMPLES**2)
    for i in range(0, iy.numel(), step):
        jy, jx = iy[i : i + step], ix[i : i + step]
        xs = c[jx].view(-1, 1, 1) + offs.view(1, 1, -1)
        ys = c[jy].view(-1, 1, 1) + offs.view(1, -1, 1)
        sub = (0.5 - sdf(xs, ys) * _SUBSAMPLES).clamp(0.0, 1.0)
        cover[jy, jx] = sub.mean(dim=(1, 2))
    return cover


def _area_weights(half: int, sub: int, lo_px: float, hi_px: float, n_src: int) -> Tensor:
    """((2 half + 1) sub, n_src) overlap lengths of output cells (pixels split in `sub`)
    with source pixels spread over [lo_px, hi_px]: exact area resampling at any scale."""
    edges = torch.linspace(lo_px, hi_px, n_src + 1, dtype=torch.float64)
    n_out = (2 * half + 1) * sub
    out_lo = torch.arange(n_out, dtype=torch.float64).view(-1, 1) / sub - half - 0.5
    hi = torch.minimum(out_lo + 1.0 / sub, edges[1:].view(1, -1))
    lo = torch.maximum(out_lo, edges[:-1].view(1, -1))
    return (hi - lo).clamp_min(0.0)


def _mask_coverage(
    spec: ApertureSpec, radius_px: float, half: int, shift: tuple[float, float]
) -> Tensor:
    """Open area (px^2) of the mask per pixel, times the barrel's where cat's eye is on.

    The mask's longer side spans 2 r (times the squeeze), centred at -shift/2. Where the
    barrel edge crosses a pixel, mask and barrel are multiplied per 1/16 px cell (the mask's
    cell areas are exact, the barrel's come from its distance ramp), not per pixel, since a
    product of two partial pixel coverages is not the coverage of their intersection.
    """
    mask = spec.mask
    h, w = mask.shape
    ax, ay = _squeeze_axes(spec.squeeze)
    bx, by = radius_px * ax * w / max(h, w), radius_px * ay * h / max(h, w)
    cx, cy = -shift[0] / 2 * radius_px * ax, shift[1] / 2 * radius_px * ay  # px, y down
    wx = _area_weights(half, 1, cx - bx, cx + bx, w)
    wy = _area_weights(half, 1, cy - by, cy + by, h)
    cover = wy @ mask @ wx.T
    if shift == (0.0, 0.0):
        return cover
    barrel = _barrel_sdf(spec.squeeze, radius_px, shift)
    c = torch.arange(-half, half + 1, dtype=torch.float64)
    sd = barrel(c.view(1, -1), c.view(-1, 1))
    cover = cover * (sd < 0)
    iy, ix = torch.nonzero(sd.abs() < _RIM_PX, as_tuple=True)
    if iy.numel() == 0:
        return cover
    s = _SUBSAMPLES
    rows_fine = _area_weights(half, s, cy - by, cy + by, h) @ mask  # (n s, w)
    cols_fine = _area_weights(half, s, cx - bx, cx + bx, w)  # (n s, w)
    offs = (torch.arange(s, dtype=torch.float64) + 0.5) / s - 0.5
    sub_idx = torch.arange(s)
    step = max(1, _CHUNK // (s * max(s, w)))
    for i in range(0, iy.numel(), step):
        jy, jx = iy[i : i + step], ix[i : i + step]
        cells = torch.einsum(
            "rsw,rtw->rst",
            rows_fine[(jy * s).view(-1, 1) + sub_idx],
            cols_fine[(jx * s).view(-1, 1) + sub_idx],
        )
        ys = c[jy].view(-1, 1, 1) + offs.view(1, -1, 1)
        xs = c[jx].view(-1, 1, 1) + offs.view(1, 1, -1)
        open_ = (0.5 - barrel(xs, ys) * s).clamp(0.0, 1.0)
        cover[jy, jx] = (cells * open_).sum(dim=(1, 2))
    return cover


def cat_eye_kernel(spec: ApertureSpec, radius_px: float, position: tuple[float, float]) -> Tensor:
    """The aperture as seen from a point of the frame, clipped by the lens barrel.

    Optical vignetting: the aperture is intersected with a disk of the same radius (the
    barrel) shifted by `cat_eye_shift(position, spec.cat_eye)`; the intersection is centred
    in the kernel so blurred content does not move. A disk becomes a lemon elongated
    tangentially (perpendicular to the direction to the frame centre), smaller towards the
    corners. For an image mask, mask parts pushed past the kernel's box are cropped.

    Args:
        spec: the aperture.
        radius_px: blur radius in pixels, in [0, MAX_RADIUS_PX]; <= 0.5 gives [[1]].
        position: (x, y) normalised image position in [-1, 1], y down; (0, 0) is the centre.
    Returns:
        (S, S) float32, >= 0, sums to 1, S = `kernel_size(radius_px)`.
    Raises:
        InputError: a radius or position out of range, or an image mask with nothing open
            inside the barrel.
    """
    radius_px = _check_radius(radius_px)
    shift = cat_eye_shift(position, spec.cat_eye)
    if radius_px <= 0.5:
        # The whole shape fits inside the centre pixel: exact area coverage is a delta.
        return torch.ones(1, 1)
    half = math.ceil(radius_px)
    if spec.shape == "image":
        cover = _mask_coverage(spec, radius_px, half, shift)
    else:
        cover = _rasterize(_pixel_sdf(spec, radius_px, shift), half)
    total = cover.sum()
    if total <= 0:
        # Only a mask can get here: geometric shapes always keep the point -shift/2 open.
        raise InputError(
            f"the aperture mask has no open area inside the lens barrel at position "
            f"{position!r} (cat_eye={spec.cat_eye:g}); centre the mask's white part or lower "
            "cat_eye."
        )
    return (cover / total).to(torch.float32)


def make_kernel(
    spec: ApertureSpec, radius_px: float, position: tuple[float, float] | None = None
) -> Tensor:
    """Normalised, antialiased aperture kernel for one blur radius.

    Each pixel holds the area of the shape over it (analytic coverage in 16 x 16 subsamples
    on the rim), so thin features stay and the sum of the kernel is exact before normalising.
    Radii up to 0.5 px return the delta [[1]]: the shape lies inside the centre pixel.

    Args:
        spec: the aperture.
        radius_px: blur radius in pixels (|r| of the signed CoC), in [0, MAX_RADIUS_PX].
        position: optional (x, y) normalised image position for cat's eye (see
            `cat_eye_kernel`); None or `spec.cat_eye == 0` gives the plain aperture.
    Returns:
        (S, S) float32 on the CPU, >= 0, sums to 1, S = `kernel_size(radius_px)` (odd),
        centred.
    Raises:
        InputError: a radius or position out of range.
    Example:
        >>> k = make_kernel(ApertureSpec("polygon", blades=6), 4.0)
        >>> tuple(k.shape), round(k.sum().item(), 5)
        ((9, 9), 1.0)
    """
    return cat_eye_kernel(spec, radius_px, (0.0, 0.0) if position is None else position)


def kernel_stack(
    spec: ApertureSpec,
    radii_px: Sequence[float],
    position: tuple[float, float] | None = None,
) -> Tensor:
    """One kernel per blur layer, zero-padded to the largest and centred.

    Args:
        spec: the aperture.
        radii_px: L radii in pixels, each in [0, MAX_RADIUS_PX].
        position: as in `make_kernel`.
    Returns:
        (L, S, S) float32, each slice >= 0 summing to 1; S = kernel_size(max radius).
    Raises:
        InputError: an empty list or a radius out of range.
    """
    if len(radii_px) == 0:
        raise InputError("kernel_stack needs at least one radius; got an empty list.")
    kernels = [make_kernel(spec, r, position) for r in radii_px]
    size = max(k.shape[-1] for k in kernels)
    padded = [F.pad(k, [(size - k.shape[-1]) // 2] * 4) for k in kernels]
    return torch.stack(padded)


def disk_kernel(radius_px: float, *, squeeze: float = 1.0) -> Tensor:
    """Disk (or, squeezed, an anamorphic oval) kernel; see `make_kernel` for the result."""
    return make_kernel(ApertureSpec("disk", squeeze=squeeze), radius_px)


def polygon_kernel(
    radius_px: float,
    blades: int,
    *,
    rotation_deg: float = 0.0,
    curvature: float = 0.0,
    squeeze: float = 1.0,
) -> Tensor:
    """Kernel of an N-blade iris with a vertex up at rotation 0; radius = circumradius."""
    spec = ApertureSpec(
        "polygon", blades=blades, rotation_deg=rotation_deg, curvature=curvature, squeeze=squeeze
    )
    return make_kernel(spec, radius_px)


def star_kernel(
    radius_px: float,
    points: int = 5,
    inner_ratio: float = 0.5,
    *,
    rotation_deg: float = 0.0,
    squeeze: float = 1.0,
) -> Tensor:
    """Star kernel with a point up at rotation 0; radius = tip radius."""
    spec = ApertureSpec(
        "star",
        star_points=points,
        star_inner=inner_ratio,
        rotation_deg=rotation_deg,
        squeeze=squeeze,
    )
    return make_kernel(spec, radius_px)


def heart_kernel(radius_px: float, *, rotation_deg: float = 0.0, squeeze: float = 1.0) -> Tensor:
    """Heart kernel (lobes up), centroid at the centre pixel, tip at distance radius_px."""
    return make_kernel(ApertureSpec("heart", rotation_deg=rotation_deg, squeeze=squeeze), radius_px)


def mask_kernel(mask: Tensor, radius_px: float, *, squeeze: float = 1.0) -> Tensor:
    """Kernel from an aperture image: (h, w) float >= 0, white = open.

    The mask's longer side spans 2 * radius_px, aspect kept, resampled by exact area
    integration (box filter at any scale; cv2's INTER_AREA only reaches integer sizes).
    """
    return make_kernel(ApertureSpec("image", mask=mask, squeeze=squeeze), radius_px)


def load_mask(path: str | Path) -> Tensor:
    """Read an aperture image (PNG or anything OpenCV reads) as a grayscale mask.

    Args:
        path: image file; 8- or 16-bit, colour is converted to gray.
    Returns:
        (h, w) float32 in [0, 1], white = open.
    Raises:
        InputError: the file is missing or not an image.
    """
    import cv2  # imported here so kernels do not pull OpenCV in for the common shapes

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such aperture image; pass a PNG with white = open.")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise InputError(f"{path}: OpenCV cannot read this as an image; save it as PNG.")
    scale = 65535.0 if image.dtype.itemsize == 2 else 255.0
    return torch.from_numpy(image.astype("float32") / scale)
