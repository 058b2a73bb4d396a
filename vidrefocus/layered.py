"""Layered, occlusion-aware defocus rendering in linear light (the core BokehNet drives).

The frame is split by signed blur radius into depth layers, far to near. Each layer, as
premultiplied colour and alpha, is convolved with the aperture kernel of its radius and
composited "over" what lies behind it, so a blurred foreground spills over a sharp subject
and a sharp foreground cuts a blurred background cleanly. Content hidden behind a nearer
layer is unknown; each layer is extended under its occluders by a normalised local average
(the classical fill the learned part of BokehNet refines), so disocclusions show plausible
background instead of black. Large kernels run at a reduced resolution, where a blurred
layer loses nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.aperture import ApertureSpec
from vidrefocus.color import linear_to_srgb, srgb_to_linear
from vidrefocus.errors import InputError
from vidrefocus.layer_blur import blur_layer, blur_reduced, blur_scale, kernel
from vidrefocus.layer_tiles import (
    TileSet,
    box_counts,
    box_mean,
    gather,
    pad_for,
    plan_tiles,
    within,
)

__all__ = [
    "QUALITY",
    "RenderSettings",
    "blur_layer",
    "blur_scale",
    "box_blur",
    "layer_radii",
    "layer_weights",
    "lens_light",
    "recover_highlights",
    "render_layered",
]


@dataclass(frozen=True)
class RenderSettings:
    """How the layered renderer works.

    Attributes:
        aperture: the aperture shape (kernel per radius from `vidrefocus.aperture`).
        highlight_gain: clipped highlights are re-expanded up to this factor in linear light
            (1 = off), so bokeh balls bloom like a real lens instead of turning grey.
        highlight_threshold: display value (max of R, G, B) where re-expansion starts.
        fine_step_px: layer spacing for radii up to 4 px.
        coarse_ratio: ratio between consecutive layer radii above 4 px.
        min_kernel_px: large kernels run at a resolution where they keep at least this radius.
        cat_eye_grid: kernels per image axis when the aperture has cat's eye (they are
            blended smoothly across the frame); 1 disables the variation.
    """

    aperture: ApertureSpec = field(default_factory=ApertureSpec)
    highlight_gain: float = 1.0
    highlight_threshold: float = 0.92
    fine_step_px: float = 1.0
    coarse_ratio: float = 1.2
    min_kernel_px: float = 8.0
    cat_eye_grid: int = 3

    def __post_init__(self) -> None:
        if not 1.0 <= self.highlight_gain <= 64.0:
            raise InputError(f"highlight_gain must be in [1, 64]; got {self.highlight_gain}.")
        if not 0.0 < self.highlight_threshold < 1.0:
            raise InputError(
                f"highlight_threshold must be in (0, 1); got {self.highlight_threshold}."
            )
        if not 1.01 <= self.coarse_ratio <= 2.0:
            raise InputError(f"coarse_ratio must be in [1.01, 2]; got {self.coarse_ratio}.")


# `bokeh.quality`: how finely the renderer slices depth and at what resolution it blurs.
# "fast" (the draft preset) measured on the demo scene at 720p, 2 CPU cores: 2.6x faster,
# 38.9 dB PSNR against "full" (BENCHMARKS.md, pipeline).
QUALITY: dict[str, dict[str, float]] = {
    "full": {},
    "fast": {"fine_step_px": 2.0, "coarse_ratio": 1.5, "min_kernel_px": 2.0},
}


def layer_radii(max_abs_radius_px: float, settings: RenderSettings) -> list[float]:
    """Unsigned layer radii from 0 up to the largest blur: fine steps, then geometric.

    Layers are 1 px apart up to 4 px (where a 1 px radius error is visible) and
    `coarse_ratio` apart above (where it is not: the eye judges blur size relatively).
    """
    radii = [0.0]
    r = 0.0
    while r < max_abs_radius_px:
        r = r + settings.fine_step_px if r < 4.0 else r * settings.coarse_ratio
        radii.append(r)
    return radii


def effective_radius(signed_radius: Tensor, step: float) -> Tensor:
    """Signed radius with the in-focus band snapped to zero.

    |r| <= 0.5 px maps to 0 (those pixels come through the renderer untouched); (0.5, step)
    maps linearly onto (0, step), so the first blurred layer's weight starts at zero exactly
    where focus ends and blur grows continuously with depth.
    """
    mag = signed_radius.abs()
    ramp = torch.sign(signed_radius) * (mag - 0.5).clamp_min(0.0) * (step / (step - 0.5))
    inner = torch.where(mag < step, ramp, signed_radius)
    return torch.where(mag <= 0.5, torch.zeros_like(signed_radius), inner)


def layer_weight(r_eff: Tensor, centres: list[float], k: int) -> Tensor:
    """Weight of layer k: a hat function over the neighbouring layer radii.

    Each pixel belongs to the two layers whose radii bracket its own, linearly, so weights
    sum to 1 (pixels beyond the outermost layers belong to them wholly).

    Args:
        r_eff: (B, 1, H, W) effective signed radius (`effective_radius`).
        centres: increasing signed layer radii containing 0.
        k: layer index.
    Returns:
        (B, 1, H, W) float in [0, 1].
    """
    c = centres[k]
    w = torch.ones_like(r_eff)
    if k > 0:
        w = torch.minimum(w, ((r_eff - centres[k - 1]) / (c - centres[k - 1])).clamp(0.0, 1.0))
    if k < len(centres) - 1:
        w = torch.minimum(w, ((centres[k + 1] - r_eff) / (centres[k + 1] - c)).clamp(0.0, 1.0))
    return w


def layer_weights(signed_radius: Tensor, centres: Tensor) -> Tensor:
    """All layer weights at once, (B, L, H, W), summing to 1 over L (for tests and tools;
    the renderer computes one layer at a time)."""
    values = centres.tolist()
    positive = [c for c in values if c > 0]
    r_eff = effective_radius(signed_radius, positive[0] if positive else 1.0)
    return torch.cat([layer_weight(r_eff, values, k) for k in range(len(values))], dim=1)


def box_blur(x: Tensor, radius: int) -> Tensor:
    """Separable (2r+1)^2 box mean with edge-aware normalisation, in O(1) per pixel.

    Args:
        x: (B, C, H, W) float.
        radius: half-width in px, >= 0.
    Returns:
        (B, C, H, W): the mean over the box clipped to the frame.
    """
    if radius <= 0:
        return x
    return box_mean(x, radius, *_frame_counts(x, radius))


def _layer_data(
    colour: Tensor,
    a: Tensor,
    behind_or_at: Tensor,
    rad: int,
    counts: tuple[Tensor, Tensor],
    inside: Tensor | None = None,
) -> Tensor:
    """Premultiplied colour, alpha and extension (N, 5, H, W) of one layer before its blur.

    Where `rad` > 0 the layer is extended under what lies in front of it (1 - behind_or_at)
    by its own local mean colour, in proportion to its share of the local coverage; the box
    means divide by `counts` (rows, columns), the box's pixel counts in the frame. `inside`
    (N, 1, H, W) marks the frame's pixels in a crop that reaches past it (None: all are).
    """
    if rad == 0:
        return torch.cat([colour, a, torch.zeros_like(a)], dim=1)
    occ = (1.0 - behind_or_at).clamp_min(0.0)
    if inside is not None:
        occ = occ * inside
    means = box_mean(torch.cat([a, behind_or_at, colour], dim=1), rad, *counts)
    local_a, local_behind, local_colour = means[:, :1], means[:, 1:2], means[:, 2:]
    ext_a = occ * (local_a / (local_behind + 1e-6)).clamp(0.0, 1.0)
    colour = colour + local_colour / (local_a + 1e-6) * ext_a
    return torch.cat([colour, a + ext_a, ext_a], dim=1)


def _frame_counts(a: Tensor, rad: int) -> tuple[Tensor, Tensor]:
    h, w = a.shape[-2:]
    zero = torch.zeros(1, dtype=torch.long, device=a.device)
    return box_counts(zero, h, h, rad), box_counts(zero, w, w, rad)


def _whole_frame_layer(
    linear: Tensor,
    a: Tensor,
    behind_or_at: Tensor,
    rad: int,
    radius: float,
    settings: RenderSettings,
) -> Tensor:
    """One layer over the whole frame, blurred. A layer blurred at 1/s resolution is also
    extended there (its box means are smooth by nature, and then blurred by at least
    `min_kernel_px`): its inputs are area-reduced first, which divides their cost by s^2."""
    scale = blur_scale(radius, settings)
    inputs = torch.cat([linear * a, a, behind_or_at], dim=1)
    if scale == 1:
        data = _layer_data(inputs[:, :3], a, behind_or_at, rad, _frame_counts(a, rad))
        return data if radius <= 0.5 else blur_reduced(data, radius, 1, settings, a.shape[-2:])
    small = F.avg_pool2d(inputs, scale, ceil_mode=True)
    rad_small = math.ceil(rad / scale)
    counts = _frame_counts(small, rad_small)
    data = _layer_data(small[:, :3], small[:, 3:4], small[:, 4:5], rad_small, counts)
    return blur_reduced(data, radius, scale, settings, a.shape[-2:])


def _composite(state: Tensor, layer: Tensor) -> None:
    """`state` <- layer over state, in place: colour and coverage "over", and the
    disoccluded share carried the same way."""
    a_b = layer[:, 3:4].clamp(0.0, 1.0)
    front = torch.cat([layer[:, :3], a_b, layer[:, 4:5].clamp(0.0, 1.0)], dim=1)
    state.mul_(1.0 - a_b).add_(front)


def _tiles_for(
    support: Tensor, radius: float, rad: int, settings: RenderSettings
) -> TileSet | None:
    # Tiles need a kernel that does not depend on position and runs at full resolution.
    if radius <= 0.5:
        return plan_tiles(support, rad)
    if settings.aperture.cat_eye > 0 or radius >= 2 * settings.min_kernel_px:
        return None
    return plan_tiles(support, rad + kernel(settings.aperture, radius, None).shape[-1] // 2)


def _composite_tiles(
    state: Tensor,
    linear: Tensor,
    a: Tensor,
    behind_or_at: Tensor,
    rad: int,
    radius: float,
    tiles: TileSet,
    settings: RenderSettings,
) -> None:
    """One layer over `state` on its tiles only (`vidrefocus.layer_tiles`)."""
    h, w = a.shape[-2:]
    side, halo = tiles.side, tiles.halo
    crops = gather(pad_for(torch.cat([linear, a, behind_or_at], dim=1), halo, side), halo, tiles)
    origins = tiles.origins()
    ys = torch.tensor([y - halo for _, y, _ in origins], device=a.device)
    xs = torch.tensor([x - halo for _, _, x in origins], device=a.device)
    n = side + 2 * halo
    counts = (box_counts(ys, n, h, rad), box_counts(xs, n, w, rad))
    inside = (within(ys, n, h)[:, None, :, None] & within(xs, n, w)[:, None, None, :]).to(a.dtype)
    a_crops = crops[:, 3:4]
    data = _layer_data(crops[:, :3] * a_crops, a_crops, crops[:, 4:5], rad, counts, inside)
    layer = blur_layer(data, radius, settings)[..., halo : halo + side, halo : halo + side]
    for i, (b, y, x) in enumerate(origins):
        view = state[b : b + 1, :, y : min(y + side, h), x : min(x + side, w)]
        _composite(view, layer[i : i + 1, :, : view.shape[-2], : view.shape[-1]])


def recover_highlights(linear: Tensor, display: Tensor, gain: float, threshold: float) -> Tensor:
    """Re-expand clipped highlights: the camera cut them at 1.0, a lens would not.

    A pixel's linear value is multiplied by up to `gain`, ramping (smoothstep) from the
    display-referred `threshold` to 1.0 of its brightest channel.

    Args:
        linear: (B, 3, H, W) float, linear light.
        display: (B, 3, H, W) float, the same pixels display-referred.
        gain: maximum factor, >= 1.
        threshold: display value where the ramp starts, in (0, 1).
    Returns:
        (B, 3, H, W) float, linear light, may exceed 1.
    """
    if gain <= 1.0:
        return linear
    peak = display.amax(dim=1, keepdim=True)
    t = ((peak - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)
    return linear * (1.0 + (gain - 1.0) * ramp)


def lens_light(image: Tensor, signed_radius: Tensor, settings: RenderSettings) -> Tensor:
    """The light the renderer scatters: the frame in linear light, clipped highlights
    re-expanded by `settings.highlight_gain`, the boost growing with blur (0 at 0.5 px, full
    from 2 px) so pixels left in focus keep their exact value.

    Args:
        image: (B, 3, H, W) display-referred; values outside [0, 1] are clipped first.
        signed_radius: (B, 1, H, W) px.
        settings: the highlight settings.
    Returns:
        (B, 3, H, W) float, linear light, may exceed 1.
    """
    display = image.clamp(0.0, 1.0)
    linear = srgb_to_linear(display)
    boosted = recover_highlights(
        linear, display, settings.highlight_gain, settings.highlight_threshold
    )
    grow = (signed_radius.abs() - 0.5).clamp(0.0, 1.5) / 1.5
    return linear + (boosted - linear) * grow


def render_layered(
    image: Tensor,
    signed_radius: Tensor,
    settings: RenderSettings,
    *,
    return_layers: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Render defocus blur for per-pixel signed blur radii.

    Args:
        image: (B, 3, H, W) float, display-referred (sRGB-like transfer), nominally [0, 1],
            all in focus.
        signed_radius: (B, 1, H, W) float, px; r > 0 in front of the focal plane, r < 0
            behind it (DESIGN.md, Blur).
        settings: aperture, highlights, layering.
        return_layers: also return the disocclusion map (how much of each output pixel
            shows content that was hidden behind a nearer layer), for the learned fill.
    Returns:
        (B, 3, H, W) float display-referred in [0, 1]; with `return_layers`, also
        (B, 1, H, W) float in [0, 1], the disocclusion map.
    Raises:
        InputError: shapes that do not match.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"image must be (B, 3, H, W); got {tuple(image.shape)}.")
    if signed_radius.shape != (image.shape[0], 1, *image.shape[2:]):
        raise InputError(
            f"signed_radius must be (B, 1, H, W) = {(image.shape[0], 1, *image.shape[2:])}; "
            f"got {tuple(signed_radius.shape)}."
        )
    if image.shape[0] > 1 and image.device.type == "cpu":
        # On a CPU a batch is no faster than its frames one by one, and each frame alone has
        # fewer layers (its own radius range) on fewer tiles: measured 2.2x faster at 720p.
        frames = [
            render_layered(image[i : i + 1], signed_radius[i : i + 1], settings, return_layers=True)
            for i in range(image.shape[0])
        ]
        out = torch.cat([f[0] for f in frames])
        return (out, torch.cat([f[1] for f in frames])) if return_layers else out
    linear = lens_light(image, signed_radius, settings)

    max_r = float(signed_radius.abs().max())
    radii = layer_radii(max_r, settings)
    neg = [-r for r in reversed(radii[1:])]
    centres = neg + radii
    r_eff = effective_radius(signed_radius, radii[1] if len(radii) > 1 else 1.0)
    # Layer k can hold pixels only if the radius range overlaps (c[k-1], c[k+1]).
    lo, hi = float(r_eff.min()), float(r_eff.max())
    bounds = [-math.inf, *centres, math.inf]
    present = [lo < bounds[k + 2] and hi > bounds[k] for k in range(len(centres))]

    # The composite: colour (3), coverage (1), disoccluded share (1), built far to near.
    state = torch.zeros(
        linear.shape[0], 5, *linear.shape[2:], dtype=linear.dtype, device=linear.device
    )
    behind_or_at = torch.zeros_like(signed_radius)
    for k in range(len(centres)):
        if not present[k]:
            continue
        a = layer_weight(r_eff, centres, k)
        support = a > 0
        if not bool(support.any()):
            continue
        behind_or_at = behind_or_at + a
        radius = abs(centres[k])
        # Extend the layer under nearer layers that may reveal it, as far as they blur.
        reach = max(
            (abs(centres[j]) for j in range(k + 1, len(centres)) if present[j]), default=0.0
        )
        # Weights sum to 1, so what lies in front of this layer is 1 - (this and behind).
        extend = reach > 0.5 and float((1.0 - behind_or_at).max()) > 1e-6
        rad = math.ceil(reach) + 1 if extend else 0
        tiles = _tiles_for(support, radius, rad, settings)
        if tiles is None:
            _composite(state, _whole_frame_layer(linear, a, behind_or_at, rad, radius, settings))
        else:
            _composite_tiles(state, linear, a, behind_or_at, rad, radius, tiles, settings)
    acc, acc_a, hidden = state[:, :3], state[:, 3:4], state[:, 4:5]
    # Normalising by coverage removes the darkening at frame borders and in thin gaps.
    out_linear = acc / acc_a.clamp_min(1e-4)
    out = linear_to_srgb(out_linear).clamp(0.0, 1.0)
    if return_layers:
        return out, (hidden / acc_a.clamp_min(1e-4)).clamp(0.0, 1.0)
    return out
