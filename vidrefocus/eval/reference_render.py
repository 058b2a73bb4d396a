"""Exact, slow defocus reference: per-pixel scatter from full scene layers, with occlusion.

Every pixel of every layer spreads its premultiplied colour and alpha over the aperture
kernel of its own blur radius (pixels are grouped by radius in 0.05 px steps; scattering a
group with one kernel is a convolution, so the grouping is the only approximation), at full
resolution, with the hidden content of each layer available. Layers are then composited far to
near with "over". This is what the fast renderer approximates from the visible frame alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.aperture import ApertureSpec, make_kernel
from vidrefocus.color import linear_to_srgb
from vidrefocus.train.scenes import LayeredScene

__all__ = ["reference_render", "scatter_layer"]

_RADIUS_STEP = 0.05


def scatter_layer(
    rgb: Tensor, alpha: Tensor, radius: Tensor, aperture: ApertureSpec
) -> tuple[Tensor, Tensor]:
    """Scatter one full layer.

    Args:
        rgb: (3, H, W) float, linear light.
        alpha: (1, H, W) float in [0, 1].
        radius: (1, H, W) float, unsigned blur radius in px.
        aperture: kernel shape.
    Returns:
        ((3, H, W) premultiplied blurred colour, (1, H, W) blurred alpha), zero outside the
        frame (light that leaves the frame is lost, as on a sensor).
    """
    data = torch.cat([rgb * alpha, alpha], dim=0).double()
    q = torch.round(radius / _RADIUS_STEP).long()
    out = torch.zeros_like(data)
    for level in torch.unique(q).tolist():
        mask = (q == level).double()
        if float((alpha * mask).sum()) == 0:
            continue
        kernel = make_kernel(aperture, level * _RADIUS_STEP).double()
        out += _scatter(data * mask, kernel)
    return out[:3].float(), out[3:].float()


def _scatter(data: Tensor, kernel: Tensor) -> Tensor:
    # Scatter with one kernel is a full convolution; float64 FFT for large kernels is exact
    # to ~1e-12, direct convolution for small ones.
    s = kernel.shape[-1]
    c, h, w = data.shape
    if s <= 9:
        weight = kernel.flip(0, 1).expand(c, 1, s, s)
        return F.conv2d(F.pad(data[None], (s // 2,) * 4), weight, groups=c)[0]
    fh, fw = h + s - 1, w + s - 1
    full = torch.fft.irfft2(
        torch.fft.rfft2(data, s=(fh, fw)) * torch.fft.rfft2(kernel, s=(fh, fw)), s=(fh, fw)
    )
    return full[:, s // 2 : s // 2 + h, s // 2 : s // 2 + w]


def reference_render(
    scene: LayeredScene, signed_radius: list[Tensor], aperture: ApertureSpec
) -> Tensor:
    """Render a scene exactly from its full layers.

    Args:
        scene: full layers far to near (linear light, may exceed 1).
        signed_radius: per layer, (1, H, W) signed blur radius in px.
        aperture: kernel shape.
    Returns:
        (3, H, W) float, display-referred in [0, 1].
    """
    acc = torch.zeros_like(scene.rgb[0])
    acc_a = torch.zeros_like(scene.alpha[0])
    for rgb, a, r in zip(scene.rgb, scene.alpha, signed_radius, strict=True):
        c, ab = scatter_layer(rgb, a, r.abs(), aperture)
        ab = ab.clamp(0.0, 1.0)
        acc = c + (1.0 - ab) * acc
        acc_a = ab + (1.0 - ab) * acc_a
    return linear_to_srgb(acc / acc_a.clamp_min(1e-4)).clamp(0.0, 1.0)
