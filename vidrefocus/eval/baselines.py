"""Classical deblurring baselines: unsharp masking and Wiener deconvolution with a disk PSF."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from torch import Tensor

from vidrefocus.aperture import disk_kernel
from vidrefocus.errors import InputError
from vidrefocus.eval.metrics import psnr

__all__ = ["WIENER_RADII_PX", "unsharp_mask", "wiener_best_radius", "wiener_deconvolve"]

# Disk radii the oracle baseline searches (px): the blur of the real defocus set is a few px.
WIENER_RADII_PX = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)


def _as_batch(img: Tensor, name: str = "img") -> tuple[Tensor, bool]:
    if not isinstance(img, Tensor) or img.ndim not in (3, 4) or img.shape[-3] != 3:
        shape = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
        raise InputError(f"{name} must be a (3, H, W) or (B, 3, H, W) RGB tensor; got {shape}.")
    return (img[None], True) if img.ndim == 3 else (img, False)


def unsharp_mask(img: Tensor, sigma: float = 2.0, amount: float = 1.0) -> Tensor:
    """Unsharp masking: `img + amount * (img - gaussian(img, sigma))`, clipped to [0, 1].

    The Gaussian is truncated at 4 sigma and reads reflected pixels past the border.

    Args:
        img: (B, 3, H, W) or (3, H, W) float in [0, 1], display-referred.
        sigma: Gaussian standard deviation in px, > 0.
        amount: how much of the high-pass detail to add back, >= 0.
    Returns:
        The sharpened image, same shape, dtype and device, in [0, 1].
    Raises:
        InputError: a tensor that is not RGB frames, sigma <= 0 or amount < 0.
    Example:
        >>> x = torch.rand(3, 32, 32)
        >>> tuple(unsharp_mask(x).shape)
        (3, 32, 32)
    """
    x, single = _as_batch(img)
    if not sigma > 0 or not amount >= 0:
        raise InputError(f"unsharp_mask needs sigma > 0 and amount >= 0; got {sigma}, {amount}.")
    half = math.ceil(4.0 * sigma)
    # Reflect padding needs a pad smaller than the image; tiny images fall back to replicate.
    border = "reflect" if half < min(x.shape[-2:]) else "replicate"
    blurred = gaussian_blur2d(x, (2 * half + 1, 2 * half + 1), (sigma, sigma), border_type=border)
    out = (x + amount * (x - blurred)).clamp(0.0, 1.0)
    return out[0] if single else out


def _fft_size(n: int) -> int:
    """The smallest 2-3-5-smooth integer >= n (fast FFT lengths)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _otf(psf: Tensor, h: int, w: int) -> Tensor:
    """FFT of a centred (S, S) PSF placed with its centre at pixel (0, 0) of an h x w grid."""
    s = psf.shape[-1]
    full = torch.zeros(h, w, dtype=psf.dtype, device=psf.device)
    full[:s, :s] = psf
    return torch.fft.rfft2(full.roll((-(s // 2), -(s // 2)), dims=(0, 1)))


def _ramp(n: int, pad_lo: int, pad_hi: int, like: Tensor) -> Tensor:
    """1 over the image, a raised cosine down to 0 at the outer edges of the padding."""
    i = torch.arange(n, dtype=like.dtype, device=like.device)
    lo = ((i + 1) / (pad_lo + 1)).clamp(max=1.0) if pad_lo else torch.ones_like(i)
    hi = ((n - i) / (pad_hi + 1)).clamp(max=1.0) if pad_hi else torch.ones_like(i)
    return 0.5 - 0.5 * torch.cos(math.pi * torch.minimum(lo, hi))


def wiener_deconvolve(img: Tensor, radius_px: float, nsr: float = 0.01) -> Tensor:
    """Wiener deconvolution with a disk PSF of the given radius, in the Fourier domain.

    `X = conj(K) Y / (|K|^2 + nsr)`, K the FFT of `aperture.disk_kernel(radius_px)` and a
    constant noise-to-signal power ratio. An FFT assumes the image is periodic, and the jump
    from one border to the opposite one would ring across the whole result. So the image is
    first reflect-padded by a few kernel widths and the padding is tapered (Matlab's
    `edgetaper` idea): it fades, with a raised cosine, into its own circular blur by the
    same PSF, so at the wrap-around the data is exactly what the periodic model predicts
    and nothing rings; the padding is cropped off at the end.

    Args:
        img: (B, 3, H, W) or (3, H, W) float in [0, 1], display-referred (the blur is
            treated as acting on these values, as a classical baseline does).
        radius_px: disk radius in px (as in `aperture.disk_kernel`; <= 0.5 is a delta).
        nsr: noise-to-signal power ratio, > 0 (larger: smoother, less sharpening).
    Returns:
        The deconvolved image, same shape and device, float32 in [0, 1].
    Raises:
        InputError: a tensor that is not RGB frames, a bad radius or nsr <= 0.
    Example:
        >>> x = torch.rand(3, 48, 64)
        >>> tuple(wiener_deconvolve(x, 3.0).shape)
        (3, 48, 64)
    """
    x, single = _as_batch(img)
    if not nsr > 0:
        raise InputError(f"wiener_deconvolve needs nsr > 0; got {nsr}.")
    psf = disk_kernel(radius_px).to(device=x.device)
    x = x.float()
    _, _, h, w = x.shape
    pad = max(8, 3 * psf.shape[-1])
    hp, wp = _fft_size(h + 2 * pad), _fft_size(w + 2 * pad)
    top, left = pad, pad
    bottom, right = hp - h - top, wp - w - left
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    padded = F.pad(x, (left, right, top, bottom), mode=mode)
    otf = _otf(psf, hp, wp)
    circ_blur = torch.fft.irfft2(torch.fft.rfft2(padded) * otf, s=(hp, wp))
    alpha = _ramp(hp, top, bottom, x)[:, None] * _ramp(wp, left, right, x)[None, :]
    tapered = alpha * padded + (1 - alpha) * circ_blur
    gain = otf.conj() / (otf.abs().square() + nsr)
    sharp = torch.fft.irfft2(torch.fft.rfft2(tapered) * gain, s=(hp, wp))
    out = sharp[..., top : top + h, left : left + w].clamp(0.0, 1.0)
    return out[0] if single else out


def wiener_best_radius(
    img: Tensor,
    target: Tensor,
    radii: Sequence[float] = WIENER_RADII_PX,
    nsr: float = 0.01,
) -> tuple[list[float], Tensor]:
    """The oracle Wiener baseline: per image, the disk radius whose result is closest to the
    sharp target (highest PSNR).

    It looks at the answer, so it is an upper bound for a disk-PSF Wiener filter with one
    radius per image, not a method; report it as "oracle".

    Args:
        img: (B, 3, H, W) or (3, H, W) float in [0, 1], the blurred images.
        target: same shape, the sharp ground truth.
        radii: candidate disk radii in px (at least one).
        nsr: noise-to-signal power ratio (see `wiener_deconvolve`).
    Returns:
        The chosen radius of each image (B values, 1 for a single image) and the deconvolved
        images with those radii, shaped like `img`.
    Raises:
        InputError: shapes that differ or are not RGB frames, or no radii.
    """
    x, single = _as_batch(img)
    y, _ = _as_batch(target, "target")
    if x.shape != y.shape:
        raise InputError(f"img and target differ in shape: {tuple(x.shape)}, {tuple(y.shape)}.")
    if not radii:
        raise InputError("wiener_best_radius needs at least one radius.")
    best_radius: list[float] = []
    best_out = []
    for xi, yi in zip(x, y, strict=True):
        best: tuple[float, float, Tensor] | None = None
        for r in radii:
            out = wiener_deconvolve(xi, float(r), nsr)
            score = float(psnr(out, yi))
            if best is None or score > best[0]:
                best = (score, float(r), out)
        best_radius.append(best[1])
        best_out.append(best[2])
    stacked = torch.stack(best_out)
    return best_radius, stacked[0] if single else stacked
