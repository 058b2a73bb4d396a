"""Classical deblurring baselines: unsharp masking, Wiener deconvolution with a disk PSF, and a
shock filter (which invents edges)."""

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
from vidrefocus.layer_blur import fast_length

__all__ = [
    "WIENER_RADII_PX",
    "shock_filter",
    "unsharp_mask",
    "wiener_best_radius",
    "wiener_deconvolve",
]

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
    hp, wp = fast_length(h + 2 * pad), fast_length(w + 2 * pad)
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


def _minmod(a: Tensor, b: Tensor) -> Tensor:
    """The smaller in magnitude of two one-sided differences where both agree in sign, else 0
    (Osher and Rudin's upwind difference), written with min/max, which is cheap."""
    return torch.minimum(a, b).clamp_min(0.0) + torch.maximum(a, b).clamp_max(0.0)


def _gaussian_sep(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, 1, H, W), truncated at 3 sigma, replicated borders, as
    sums of shifted slices: a few taps, and several times faster on a CPU than a 1-channel
    convolution."""
    half = math.ceil(3.0 * sigma)
    taps = [math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-half, half + 1)]
    total = sum(taps)
    h, w = x.shape[-2:]
    p = F.pad(x, (half, half, 0, 0), mode="replicate")
    x = sum(p[..., :, i : i + w] * (t / total) for i, t in enumerate(taps))
    p = F.pad(x, (0, 0, half, half), mode="replicate")
    return sum(p[..., i : i + h, :] * (t / total) for i, t in enumerate(taps))


def shock_filter(img: Tensor, iterations: int = 20, dt: float = 0.25, sigma: float = 1.0) -> Tensor:
    """A shock filter: turns every smooth ramp into a step. It invents edges; it does not
    restore them.

    Iterates `I <- I - dt * sign(G_sigma * I)_nn * |grad I|` (Alvarez and Mazorra, "Signal
    and image restoration using shock filters and anisotropic diffusion", SIAM J. Numer.
    Anal. 1994, after Osher and Rudin, "Feature-oriented image enhancement using shock
    filters", 1990): each pixel moves towards the nearer extreme of its edge, darker on the
    dark side of an inflection, lighter on the light side, until the edge is a one-pixel
    step. `(.)_nn` is the second derivative along the gradient of the Gaussian-smoothed luma
    (smoothing keeps noise from creating shocks; the luma gives the three channels the same
    sign, so they shock at the same place without colour fringes); `|grad I|` is taken per
    channel with the minmod upwind differences of Osher and Rudin, so no new extrema appear
    and values stay in the input's range. Level lines move by at most `dt` px a step, so
    ramps up to about `iterations * dt` px wide (5 px by default) become steps. A 704 x 576
    frame takes about 0.5 s on one CPU thread; 10 steps of 0.5 give the same results on the
    plate benchmark (within 0.5 % of characters) in half the time.

    What it does not do: it knows nothing of the blur. The step lands where the ramp's
    inflection was, the fine detail the blur merged (a gap between two strokes, a serif)
    stays merged, and the result looks crisp whether or not it is right. It is the baseline
    that shows why a faithful enhancement must not be judged by sharpness alone: it scores
    well on edge width and badly on what the text says.

    Args:
        img: (B, 3, H, W) or (3, H, W) float in [0, 1], display-referred.
        iterations: number of steps, >= 0 (0 returns the input).
        dt: step size, in (0, 0.5] (the upwind scheme stays monotone up to 1 / sqrt(2);
            0.5 keeps a margin).
        sigma: Gaussian standard deviation in px of the smoothing that decides the sign, > 0.
    Returns:
        The filtered image, same shape and device, float32 in [0, 1].
    Raises:
        InputError: a tensor that is not RGB frames, or a parameter out of range.
    Example:
        >>> x = torch.linspace(0, 1, 16).view(1, 1, 16).expand(3, 16, 16)
        >>> y = shock_filter(x)
        >>> tuple(y.shape), float(y.min()) >= 0.0
        ((3, 16, 16), True)
    """
    x, single = _as_batch(img)
    if not isinstance(iterations, int) or iterations < 0:
        raise InputError(f"shock_filter needs an int iterations >= 0; got {iterations!r}.")
    if not 0.0 < dt <= 0.5 or not sigma > 0:
        raise InputError(f"shock_filter needs 0 < dt <= 0.5 and sigma > 0; got {dt}, {sigma}.")
    x = x.float()
    luma_w = torch.tensor([0.2126, 0.7152, 0.0722], device=x.device).view(1, 3, 1, 1)
    for _ in range(iterations):
        smooth = _gaussian_sep((x * luma_w).sum(1, keepdim=True), sigma)
        q = F.pad(smooth, (1, 1, 1, 1), mode="replicate")
        c = q[..., 1:-1, 1:-1]
        # central differences of the smoothed luma
        sx = 0.5 * (q[..., 1:-1, 2:] - q[..., 1:-1, :-2])
        sy = 0.5 * (q[..., 2:, 1:-1] - q[..., :-2, 1:-1])
        sxx = q[..., 1:-1, 2:] + q[..., 1:-1, :-2] - 2 * c
        syy = q[..., 2:, 1:-1] + q[..., :-2, 1:-1] - 2 * c
        sxy = 0.25 * (q[..., 2:, 2:] - q[..., 2:, :-2] - q[..., :-2, 2:] + q[..., :-2, :-2])
        # I_nn * |grad I|^2: only its sign is used, so the division is left out
        i_nn = sx * sx * sxx + 2 * sx * sy * sxy + sy * sy * syy
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        # one difference per pair of neighbours: pixel i's forward is pixel i+1's backward
        dx = p[..., 1:-1, 1:] - p[..., 1:-1, :-1]  # (B, 3, H, W + 1)
        dy = p[..., 1:, 1:-1] - p[..., :-1, 1:-1]  # (B, 3, H + 1, W)
        grad = torch.hypot(
            _minmod(dx[..., 1:], dx[..., :-1]), _minmod(dy[..., 1:, :], dy[..., :-1, :])
        )
        x = torch.addcmul(x, torch.sign(i_nn), grad, value=-dt)
    out = x.clamp(0.0, 1.0)
    return out[0] if single else out
