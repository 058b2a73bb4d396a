"""Blurring one depth layer with the aperture kernel (the convolution the layered renderer
runs per layer): direct for small kernels, FFT at 2-3-5 sizes for large ones, at a reduced
resolution where the blur is wide enough to lose nothing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.aperture import ApertureSpec, make_kernel

if TYPE_CHECKING:  # RenderSettings lives with the renderer, which imports this module
    from vidrefocus.layered import RenderSettings

__all__ = ["DIRECT_MAX_PX", "blur_layer", "blur_reduced", "blur_scale", "fast_length", "kernel"]


@lru_cache(maxsize=256)
def kernel(spec: ApertureSpec, radius_px: float, position: tuple[float, float] | None) -> Tensor:
    """The aperture kernel of `radius_px` (at `position` for cat's eye), cached: a clip reuses
    the same few radii on every frame."""
    return make_kernel(spec, radius_px, position)


# Kernels up to this width convolve directly; wider ones through the FFT (measured on a 2-core
# CPU at 720p: direct 15-30 ms up to 11 px, 55 ms at 17 px, 111 ms at 25 px; FFT ~40 ms).
DIRECT_MAX_PX = 13


@lru_cache(maxsize=1024)
def fast_length(n: int) -> int:
    """The smallest m >= n whose only prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


def _convolve(x: Tensor, kernel: Tensor) -> Tensor:
    """Per-channel 2-D convolution with zero padding; FFT above `DIRECT_MAX_PX` wide kernels."""
    _, c, h, w = x.shape
    k = kernel.to(x.device, x.dtype)
    s = k.shape[-1]
    if s == 1:
        return x * k[0, 0]
    pad = s // 2
    if s <= DIRECT_MAX_PX:
        weight = k.flip(0, 1).expand(c, 1, s, s)
        return F.conv2d(F.pad(x, (pad, pad, pad, pad)), weight, groups=c)
    fh, fw = fast_length(h + s - 1), fast_length(w + s - 1)
    spec = torch.fft.rfft2(x, s=(fh, fw)) * torch.fft.rfft2(k, s=(fh, fw))
    full = torch.fft.irfft2(spec, s=(fh, fw))
    return full[..., pad : pad + h, pad : pad + w]


def blur_layer(x: Tensor, radius_px: float, settings: RenderSettings) -> Tensor:
    """Convolve premultiplied layer data with the aperture kernel of `radius_px`.

    Radii above `min_kernel_px` run at 1/s resolution (area-downsampled, bilinear back up),
    where the kernel still has `min_kernel_px` or more pixels of radius: the layer is blurred
    by at least that much, so the reduced resolution loses nothing visible.

    Args:
        x: (B, C, H, W) float, premultiplied colour and alpha of one layer.
        radius_px: blur radius in px, >= 0.
        settings: aperture and resolution policy.
    Returns:
        (B, C, H, W) float, the blurred layer.
    """
    if radius_px <= 0.5:
        return x
    scale = blur_scale(radius_px, settings)
    small = F.avg_pool2d(x, scale, ceil_mode=True) if scale > 1 else x
    return blur_reduced(small, radius_px, scale, settings, x.shape[-2:])


def blur_scale(radius_px: float, settings: RenderSettings) -> int:
    """The resolution divisor a layer of `radius_px` is blurred at (1 = full resolution)."""
    return max(1, int(radius_px // settings.min_kernel_px)) if radius_px > 0.5 else 1


def blur_reduced(
    small: Tensor, radius_px: float, scale: int, settings: RenderSettings, size: torch.Size
) -> Tensor:
    """Blur layer data already reduced by `scale`, and bring it back to `size`."""
    spec = settings.aperture
    grid = settings.cat_eye_grid if spec.cat_eye > 0 else 1
    if grid == 1:
        out = _convolve(small, kernel(spec, radius_px / scale, None))
    else:
        out = _blend_positions(small, spec, radius_px / scale, grid)
    if scale > 1:
        out = F.interpolate(out, size=tuple(size), mode="bilinear", align_corners=False)
    return out


def _blend_positions(x: Tensor, spec: ApertureSpec, radius_px: float, grid: int) -> Tensor:
    # Cat's eye changes the kernel across the frame: blur with the kernel of each grid node
    # and blend with tent weights, which interpolate the shape smoothly between nodes.
    h, w = x.shape[-2:]
    nodes = torch.linspace(-1.0, 1.0, grid).tolist()
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(h, 1)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, w)
    step = 2.0 / (grid - 1)
    out = torch.zeros_like(x)
    for ny in nodes:
        wy = (1.0 - (ys - ny).abs() / step).clamp(min=0.0)
        for nx in nodes:
            wx = (1.0 - (xs - nx).abs() / step).clamp(min=0.0)
            k = kernel(spec, radius_px, (nx, ny))
            out = out + _convolve(x, k) * (wy * wx)
    return out
