"""Image and video quality metrics: PSNR, SSIM and the flow-warping temporal error."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.models.flow import warp

__all__ = ["SSIM_WINDOW", "psnr", "ssim", "warp_error"]

# Wang et al. 2004, section III-C: an 11 x 11 circular-symmetric Gaussian, sigma 1.5.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _pair(a: Tensor, b: Tensor, dtype: torch.dtype | None) -> tuple[Tensor, Tensor, bool]:
    """Both images as (B, 3, H, W) of `dtype` (None: float64 if either input is, else
    float32), and whether the caller passed single images."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, Tensor) or x.ndim not in (3, 4) or x.shape[-3] != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"{name} must be a (3, H, W) or (B, 3, H, W) RGB tensor; got {shape}.")
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {tuple(a.shape)} and {tuple(b.shape)}.")
    single = a.ndim == 3
    if dtype is None:
        dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    xa = a.detach().to(dtype=dtype)
    xb = b.detach().to(device=a.device, dtype=dtype)
    return (xa[None], xb[None], True) if single else (xa, xb, False)


def psnr(a: Tensor, b: Tensor, peak: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio, `10 log10(peak^2 / MSE)`, one value per image.

    The MSE is taken over all pixels and channels of each image; average the returned
    values for a data set's mean PSNR.

    Args:
        a: (B, 3, H, W) or (3, H, W) float in [0, 1].
        b: same shape as `a`.
        peak: the largest possible value (1.0 for [0, 1] images).
    Returns:
        (B,) float64 in dB, or a 0-d tensor for single images; inf where `a == b`.
    Raises:
        InputError: shapes that are not RGB images or differ.
    Example:
        >>> x = torch.full((3, 8, 8), 0.5)
        >>> round(float(psnr(x, x + 0.1)), 6)
        20.0
    """
    xa, xb, single = _pair(a, b, torch.float64)  # cheap enough to be exact
    mse = (xa - xb).square().flatten(1).mean(1)
    out = 10.0 * torch.log10(peak**2 / mse)
    return out[0] if single else out


def _gaussian_1d(size: int, sigma: float, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: Tensor, g: Tensor) -> Tensor:
    """Separable Gaussian filtering of (N, H, W) maps, 'valid' part only (no padding)."""
    n, k = x.shape[0], g.numel()
    # maps as channels of one grouped convolution: much faster on a CPU than N single-channel
    # images
    x = F.conv2d(x[None], g.view(1, 1, k, 1).expand(n, 1, k, 1), groups=n)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(n, 1, 1, k), groups=n)[0]


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """Structural similarity (Wang, Bovik, Sheikh and Simoncelli, IEEE TIP 2004), per image.

    The standard definition: local means, variances and covariance under an 11 x 11
    Gaussian window (sigma 1.5, normalised), `K1 = 0.01`, `K2 = 0.03`, dynamic range
    `L = 1`; the SSIM map is computed per channel on the RGB values themselves (no
    conversion to luma, no downsampling), over window positions fully inside the image
    ('valid', as the authors' `ssim_index.m`, so a 5 px border is left out), averaged over
    the map and then over the three channels. Variances are population variances (no
    N / (N - 1) correction), as in the paper; scikit-image gives the same numbers with
    `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
    channel_axis=...`.

    Computed in float64 for float64 inputs, otherwise in float32 (within ~1e-5 of float64).

    Args:
        a: (B, 3, H, W) or (3, H, W) float in [0, 1], H and W >= 11.
        b: same shape as `a`.
    Returns:
        (B,) in [-1, 1] (1 = identical; float64 for float64 inputs, else float32), or a
        0-d tensor for single images.
    Raises:
        InputError: shapes that are not RGB images, differ, or are smaller than the window.
    Example:
        >>> x = torch.rand(3, 32, 32)
        >>> float(ssim(x, x))
        1.0
    """
    xa, xb, single = _pair(a, b, None)
    bsz, c, h, w = xa.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise InputError(
            f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW}; got {h} x {w}."
        )
    g = _gaussian_1d(SSIM_WINDOW, SSIM_SIGMA, xa)
    x = xa.reshape(bsz * c, h, w)
    y = xb.reshape(bsz * c, h, w)
    # Variances are differences of nearly equal moments. Variance and covariance do not
    # change when x and y are shifted, so take the moments about each channel's own mean:
    # float32 then stays within ~1e-5 of float64 (and exact on flat images).
    mx, my = x.mean((1, 2), keepdim=True), y.mean((1, 2), keepdim=True)
    x, y = x - mx, y - my
    stats = _blur_valid(torch.cat([x, y, x * x, y * y, x * y]), g).split(bsz * c)
    mu_x, mu_y, xx, yy, xy = stats
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    mu_x, mu_y = mu_x + mx, mu_y + my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    out = ssim_map.reshape(bsz, c, -1).mean(2).mean(1)
    return out[0] if single else out


def warp_error(frames: Tensor, flows: Tensor, confidence: Tensor) -> float:
    """Temporal instability of a sequence: the flow-warping error E_warp.

    `E_warp = mean over t >= 1 of [ sum_x c_t(x) |o_t(x) - warp(o_{t-1}, f_t)(x)| /
    sum_x c_t(x) ]`, with `|.|` the mean absolute difference over the RGB channels: how
    much each frame differs from its predecessor carried along the motion, over the pixels
    where the motion is trusted (after Lai et al., "Learning Blind Video Temporal
    Consistency", ECCV 2018, which uses the squared difference; we use L1, in the frames'
    [0, 1] units). A static sequence scores 0; flicker raises it. Frames whose confidence
    is zero everywhere are skipped.

    Args:
        frames: (T, 3, H, W) float in [0, 1], the sequence to measure, T >= 2.
        flows: (T, 2, H, W) float px, `flows[t]` from frame t to t-1 (`models.flow`
            convention); `flows[0]` is not used.
        confidence: (T, 1, H, W) float in [0, 1] (or bool), where `flows[t]` is trusted;
            `confidence[0]` is not used.
    Returns:
        E_warp, >= 0, in [0, 1] units per channel.
    Raises:
        InputError: shapes that do not match, T < 2, or no trusted pixel in any frame.
    Example:
        >>> x = torch.rand(1, 3, 16, 16).expand(4, 3, 16, 16)
        >>> warp_error(x, torch.zeros(4, 2, 16, 16), torch.ones(4, 1, 16, 16))
        0.0
    """
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[0] < 2:
        raise InputError(f"frames must be (T, 3, H, W) with T >= 2; got {tuple(frames.shape)}.")
    t, _, h, w = frames.shape
    if tuple(flows.shape) != (t, 2, h, w) or tuple(confidence.shape) != (t, 1, h, w):
        raise InputError(
            f"flows must be ({t}, 2, {h}, {w}) and confidence ({t}, 1, {h}, {w}); "
            f"got {tuple(flows.shape)} and {tuple(confidence.shape)}."
        )
    out = frames.detach().float()
    warped = warp(out[:-1], flows[1:].float().to(out.device))
    diff = (out[1:] - warped).abs().mean(1, keepdim=True)
    conf = confidence[1:].float().to(out.device)
    weight = conf.flatten(1).sum(1)
    used = weight > 0
    if not bool(used.any()):
        raise InputError("warp_error: no trusted pixel in any frame (confidence is all zero).")
    per_frame = (diff * conf).flatten(1).sum(1)[used] / weight[used]
    return float(per_frame.mean())
