"""Optical flow (OpenCV DIS on downscaled luma), forward-backward confidence and warping.

Flow convention, used everywhere in vidrefocus: `flow` of frame t is a (B, 2, H, W) float32
tensor in pixels on frame t's pixel grid, channel 0 = x (right), channel 1 = y (down). It
points from frame t back to frame t-1: the content at pixel (x, y) of frame t was at
(x + flow[0, y, x], y + flow[1, y, x]) in frame t-1. So `warp(previous, flow)` moves frame
t-1 (or its features) onto frame t. Pixel centres sit at integer coordinates.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.transform import remap
from torch import Tensor

from vidrefocus.errors import InputError

__all__ = [
    "DISFlow",
    "FlowPreset",
    "consistency_mask",
    "consistency_mask_numpy",
    "estimate_flow",
    "flow_lookup",
    "luma_u8",
    "temporal_blend",
    "temporal_noise",
    "warp",
]

FlowPreset = Literal["fast", "medium"]

# `temporal_noise` takes its median over at most about this many pixels (evenly spaced).
_NOISE_SAMPLES = 1 << 18

_PRESETS = {
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

# BT.709 luma weights on display-referred R'G'B': DIS matches brightness patterns, and luma
# is what codecs and eyes keep sharpest.
_LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)

# Smallest side DIS is given: its patches are 8 px and it needs 12 px on one side.
_DIS_MIN_SIDE = 16


def _as_batch(frames: Tensor, name: str) -> Tensor:
    if not isinstance(frames, Tensor) or frames.ndim not in (3, 4) or frames.shape[-3] != 3:
        shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise InputError(f"{name} must be a (3, H, W) or (B, 3, H, W) RGB tensor; got {shape}.")
    return frames if frames.ndim == 4 else frames.unsqueeze(0)


def luma_u8(frames: Tensor) -> np.ndarray:
    """8-bit luma of RGB frames, the input DIS works on.

    Args:
        frames: (3, H, W) or (B, 3, H, W) float in [0, 1], display-referred.
    Returns:
        (B, H, W) uint8 numpy array (B = 1 for a single frame).
    Raises:
        InputError: a tensor of another shape.
    """
    # numpy, not torch: DIS runs on the CPU anyway, and this per-frame reduction is cheaper
    # single-threaded than as small intra-op-parallel torch kernels on a busy CPU.
    rgb = _as_batch(frames, "frames").detach().to("cpu", torch.float32).numpy()
    wr, wg, wb = _LUMA_WEIGHTS
    luma = rgb[:, 0] * wr + rgb[:, 1] * wg + rgb[:, 2] * wb
    return (np.clip(luma, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class DISFlow:
    """Dense inverse search optical flow (Kroeger et al., ECCV 2016) through OpenCV.

    Holds one `cv2.DISOpticalFlow` (not thread-safe: one per worker). Frames are reduced to
    luma and downscaled so the long side is at most `max_side_px` (and the image at most
    `max_scale` of its size); the flow is computed there, upsampled bilinearly and multiplied
    by the scale back to full-resolution pixels.

    OpenCV's presets stop DIS's coarse-to-fine pyramid at level 1 ("medium") or 2 ("fast"),
    i.e. at 1/2 or 1/4 of the image they are given, then upsample. The image here is already
    downscaled, so `finest_scale` defaults to 0 (refine at the size DIS sees): about 3x the
    time of the stock preset and 2-4x smaller errors on sub-pixel translations (measured on
    band-limited noise at 256x192: max error 0.09 -> 0.05 px with "medium", 0.15 -> 0.05
    with "fast").

    Args:
        preset: "medium" (more accurate, default) or "fast".
        max_side_px: long side of the image DIS sees, >= 32.
        finest_scale: the pyramid level DIS stops at (0 = full size of what it sees), or None
            for the preset's own.
        max_scale: the largest fraction of the frame's size DIS sees, in (0, 1]. Below 1,
            even small frames are averaged down first, which halves the noise per 2x: on
            noisy footage DIS at full resolution fails its own forward-backward check in up
            to 40% of the pixels (BENCHMARKS.md, "Flicker on noisy footage: the flow").

    Raises:
        InputError: an unknown preset, a too small `max_side_px`, a negative finest scale
            or a `max_scale` outside (0, 1].

    Example:
        >>> dis = DISFlow("fast")
        >>> flow = dis(torch.rand(3, 64, 96), torch.rand(3, 64, 96))
        >>> tuple(flow.shape)
        (1, 2, 64, 96)
    """

    def __init__(
        self,
        preset: FlowPreset = "medium",
        max_side_px: int = 640,
        finest_scale: int | None = 0,
        max_scale: float = 1.0,
    ) -> None:
        if preset not in _PRESETS:
            raise InputError(
                f"unknown optical flow preset {preset!r}; use one of {', '.join(_PRESETS)}."
            )
        if max_side_px < 32:
            raise InputError(f"max_side_px must be >= 32; got {max_side_px}.")
        if finest_scale is not None and finest_scale < 0:
            raise InputError(f"finest_scale must be >= 0 or None; got {finest_scale}.")
        if not 0.0 < max_scale <= 1.0:
            raise InputError(f"max_scale must be in (0, 1]; got {max_scale}.")
        self.preset = preset
        self.max_side_px = max_side_px
        self.max_scale = max_scale
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
        if finest_scale is not None:
            self._dis.setFinestScale(finest_scale)

    def luma_flow(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Flow from `current` to `previous` on 8-bit luma images (the convention above).

        Args:
            current: (H, W) uint8 luma of frame t.
            previous: (H, W) uint8 luma of frame t-1 (any frame to map into).
        Returns:
            (H, W, 2) float32 numpy array in full-resolution pixels, x then y.
        Raises:
            InputError: images of different shapes or not 2-D uint8.
        """
        if current.shape != previous.shape or current.ndim != 2 or current.dtype != np.uint8:
            raise InputError(
                "luma_flow needs two (H, W) uint8 images of the same size; "
                f"got {current.shape} {current.dtype} and {previous.shape} {previous.dtype}."
            )
        h, w = current.shape
        # `max_scale` stops at a 32 px long side (the smallest `max_side_px` allows).
        side = min(self.max_side_px, max(32, round(self.max_scale * max(h, w))))
        scale = min(1.0, side / max(h, w))
        if scale < 1.0:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            cur = cv2.resize(current, size, interpolation=cv2.INTER_AREA)
            prev = cv2.resize(previous, size, interpolation=cv2.INTER_AREA)
        else:
            cur, prev = current, previous
        # DIS refuses images under its 8 px patch on a side (or under 12 px on both): pad tiny
        # frames by repeating their edges, which adds no motion, and crop the flow back.
        small_h, small_w = cur.shape
        pad_h, pad_w = max(0, _DIS_MIN_SIDE - small_h), max(0, _DIS_MIN_SIDE - small_w)
        if pad_h or pad_w:
            cur = cv2.copyMakeBorder(cur, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
            prev = cv2.copyMakeBorder(prev, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        # DIS: I0(x) ~ I1(x + flow(x)), so I0 = current, I1 = previous gives our convention.
        flow = self._dis.calc(np.ascontiguousarray(cur), np.ascontiguousarray(prev), None)
        flow = np.ascontiguousarray(flow[:small_h, :small_w])
        if scale < 1.0:
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= w / small_w
            flow[..., 1] *= h / small_h
        return flow.astype(np.float32, copy=False)

    def luma_flow_and_confidence(
        self, current: np.ndarray, previous: np.ndarray, alpha: float = 0.01, beta: float = 0.5
    ) -> tuple[np.ndarray, np.ndarray]:
        """`luma_flow` plus its forward-backward check, all in numpy (for small crops).

        Args:
            current: (H, W) uint8 luma of frame t.
            previous: (H, W) uint8 luma of frame t-1.
            alpha: relative tolerance (see `consistency_mask`).
            beta: absolute tolerance in px^2.
        Returns:
            flow (H, W, 2) float32 in px from t to t-1, and confident (H, W) bool.
        Raises:
            InputError: images of different shapes or not 2-D uint8.
        """
        flow = self.luma_flow(current, previous)
        back = self.luma_flow(previous, current)
        return flow, consistency_mask_numpy(flow, back, alpha, beta)

    def __call__(self, current: Tensor, previous: Tensor) -> Tensor:
        """Flow from frame t (`current`) back to frame t-1 (`previous`).

        Args:
            current: (3, H, W) or (B, 3, H, W) float32 in [0, 1], display-referred.
            previous: same shape as `current`.
        Returns:
            (B, 2, H, W) float32 in pixels, x then y, on `current`'s device.
        Raises:
            InputError: shapes that are not RGB frames or do not match.
        """
        cur, prev = _as_batch(current, "current"), _as_batch(previous, "previous")
        if cur.shape != prev.shape:
            raise InputError(
                f"current and previous frames differ in shape: {tuple(cur.shape)} and "
                f"{tuple(prev.shape)}."
            )
        flows = [
            torch.from_numpy(self.luma_flow(c, p)).permute(2, 0, 1)
            for c, p in zip(luma_u8(cur), luma_u8(prev), strict=True)
        ]
        return torch.stack(flows).to(cur.device)

    def flow_and_confidence(
        self, current: Tensor, previous: Tensor, alpha: float = 0.01, beta: float = 0.5
    ) -> tuple[Tensor, Tensor]:
        """Flow from t to t-1 and where it can be trusted (forward-backward check).

        Args:
            current: (3, H, W) or (B, 3, H, W) float32 in [0, 1], frame t.
            previous: same shape, frame t-1.
            alpha: relative tolerance of the check (see `consistency_mask`).
            beta: absolute tolerance in px^2.
        Returns:
            flow (B, 2, H, W) float32 in px, and confidence (B, 1, H, W) float32 in {0, 1}.
        Raises:
            InputError: shapes that are not RGB frames or do not match.
        """
        flow = self(current, previous)
        back = self(previous, current)
        return flow, consistency_mask(flow, back, alpha, beta)


def estimate_flow(current: Tensor, previous: Tensor, preset: FlowPreset = "medium") -> Tensor:
    """One-off flow from frame t to t-1 (builds a `DISFlow`; keep one for a sequence).

    Args:
        current: (3, H, W) or (B, 3, H, W) float32 in [0, 1], frame t.
        previous: same shape, frame t-1.
        preset: "medium" or "fast".
    Returns:
        (B, 2, H, W) float32 in pixels, x then y.
    Raises:
        InputError: bad shapes or preset.
    """
    return DISFlow(preset)(current, previous)


def _check_flow(flow: Tensor, name: str = "flow") -> None:
    if not isinstance(flow, Tensor) or flow.ndim != 4 or flow.shape[1] != 2:
        shape = tuple(flow.shape) if isinstance(flow, Tensor) else type(flow).__name__
        raise InputError(f"{name} must have shape (B, 2, H, W), x then y; got {shape}.")


def warp(tensor: Tensor, flow: Tensor, padding: Literal["border", "zeros"] = "border") -> Tensor:
    """Warp frame t-1 (or its features) onto frame t: out(x) = tensor(x + flow(x)).

    Bilinear sampling with kornia's `remap` at pixel coordinates (align_corners=True, so an
    all-zero flow returns the input, up to the rounding of the coordinate normalisation).

    Args:
        tensor: (B, C, H', W') features of frame t-1, any float dtype; H', W' may differ from
            the flow's only if the flow was scaled to this grid by the caller.
        flow: (B, 2, H, W) float in pixels, from frame t to t-1 (module convention).
        padding: what samples outside frame t-1 read: the nearest edge ("border") or 0.
    Returns:
        (B, C, H, W) in the dtype of `tensor`.
    Raises:
        InputError: shapes that do not match.
    Example:
        >>> x = torch.arange(12.0).view(1, 1, 3, 4)
        >>> shift = torch.zeros(1, 2, 3, 4); shift[:, 0] = 1.0
        >>> warp(x, shift)[0, 0, 0].tolist()
        [1.0, 2.0, 3.0, 3.0]
    """
    _check_flow(flow)
    if tensor.ndim != 4 or tensor.shape[0] != flow.shape[0]:
        raise InputError(
            f"tensor must be (B, C, H, W) with the flow's batch {flow.shape[0]}; "
            f"got {tuple(tensor.shape)}."
        )
    _, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    map_x = (xs + flow[:, 0]).to(tensor.dtype)
    map_y = (ys + flow[:, 1]).to(tensor.dtype)
    return remap(tensor, map_x, map_y, mode="bilinear", padding_mode=padding, align_corners=True)


def flow_lookup(flow: Tensor, x: float, y: float) -> Tensor:
    """Bilinear flow value at a sub-pixel position.

    Args:
        flow: (B, 2, H, W) float in pixels.
        x: column in pixels (pixel centres at integers).
        y: row in pixels.
    Returns:
        (B, 2) in pixels, x then y.
    """
    _check_flow(flow)
    b = flow.shape[0]
    map_x = torch.full((b, 1, 1), x, dtype=flow.dtype, device=flow.device)
    map_y = torch.full((b, 1, 1), y, dtype=flow.dtype, device=flow.device)
    out = remap(flow, map_x, map_y, padding_mode="border", align_corners=True)
    return out[:, :, 0, 0]


def consistency_mask(
    flow: Tensor, flow_back: Tensor, alpha: float = 0.01, beta: float = 0.5
) -> Tensor:
    """Forward-backward check: where the flow from t to t-1 can be trusted.

    A pixel x of frame t is consistent when following the flow to frame t-1 and the back
    flow home returns to x (Sundaram, Brox and Keutzer, ECCV 2010, eq. 5):
    `|F(x) + B(x + F(x))|^2 < alpha * (|F(x)|^2 + |B(x + F(x))|^2) + beta`. It fails where
    x is hidden in frame t-1 (disoccluded), where the flow leaves the frame, and where the
    flow is simply wrong; the alpha term lets the tolerance grow with the motion.

    Args:
        flow: (B, 2, H, W) float in px, F: frame t -> t-1, on frame t's grid.
        flow_back: (B, 2, H, W) float in px, B: frame t-1 -> t, on frame t-1's grid.
        alpha: relative tolerance, >= 0 (0.01 in the paper).
        beta: absolute tolerance in px^2, >= 0 (0.5 in the paper).
    Returns:
        (B, 1, H, W) float32 in {0, 1}: 1 = consistent.
    Raises:
        InputError: shapes that are not flows or do not match, or negative tolerances.
    """
    _check_flow(flow)
    _check_flow(flow_back, "flow_back")
    if flow.shape != flow_back.shape:
        raise InputError(
            f"flow and flow_back differ in shape: {tuple(flow.shape)} and {tuple(flow_back.shape)}."
        )
    if alpha < 0 or beta < 0:
        raise InputError(f"alpha and beta must be >= 0; got {alpha:g} and {beta:g}.")
    back_at = warp(flow_back, flow)
    mismatch = (flow + back_at).square().sum(1, keepdim=True)
    scale = flow.square().sum(1, keepdim=True) + back_at.square().sum(1, keepdim=True)
    _, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    tx, ty = xs + flow[:, 0:1], ys + flow[:, 1:2]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return ((mismatch < alpha * scale + beta) & inside).to(torch.float32)


def _bilinear_border(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) array at pixel coordinates, clamped to the frame.

    The same arithmetic as grid_sample(align_corners=True, padding_mode="border"), written
    out because cv2.remap rounds coordinates to 1/32 px.
    """
    h, w = image.shape[:2]
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.intp), w - 2) if w > 1 else np.zeros_like(x, np.intp)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2) if h > 1 else np.zeros_like(y, np.intp)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def consistency_mask_numpy(
    flow: np.ndarray, flow_back: np.ndarray, alpha: float = 0.01, beta: float = 0.5
) -> np.ndarray:
    """`consistency_mask` for one frame in numpy, for the tracker's small crops.

    Args:
        flow: (H, W, 2) float32 in px, F: frame t -> t-1, on frame t's grid, x then y.
        flow_back: (H, W, 2) float32 in px, B: frame t-1 -> t, on frame t-1's grid.
        alpha: relative tolerance, >= 0.
        beta: absolute tolerance in px^2, >= 0.
    Returns:
        (H, W) bool: True = consistent.
    Raises:
        InputError: shapes that are not (H, W, 2) or do not match, or negative tolerances.
    """
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape != flow_back.shape:
        raise InputError(
            "flow and flow_back must both have shape (H, W, 2); "
            f"got {flow.shape} and {flow_back.shape}."
        )
    if alpha < 0 or beta < 0:
        raise InputError(f"alpha and beta must be >= 0; got {alpha:g} and {beta:g}.")
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    tx, ty = xs + flow[..., 0], ys + flow[..., 1]
    back_at = _bilinear_border(flow_back, tx, ty).astype(np.float32)
    mismatch = np.square(flow + back_at).sum(-1)
    scale = np.square(flow).sum(-1) + np.square(back_at).sum(-1)
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return (mismatch < alpha * scale + beta) & inside


def temporal_blend(
    current: Tensor,
    previous: Tensor,
    confidence: Tensor,
    history: float,
    tolerance: float | Tensor,
    window: int = 3,
) -> Tensor:
    """Recursive temporal filter that follows motion and never ghosts.

    `previous` is the last output, already warped onto the current frame. It is clamped to
    the current frame's `window` x `window` neighbourhood (so it can only pull a pixel within
    what the current frame supports) and blended in where the flow is trusted and the two
    agree to within about `tolerance` (noise, not a change).

    Args:
        current: (B, C, H, W) this frame's own result.
        previous: (B, C, H, W) the previous output warped onto this frame.
        confidence: (B, 1, H, W) in [0, 1], trust in the flow (0 = occluded or wrong).
        history: weight of the previous output where everything agrees, in [0, 1).
        tolerance: the difference treated as noise (a float or a per-pixel (B, 1, H, W)).
        window: odd neighbourhood size for the clamp; 1 or 0: no clamp (for smooth maps,
            where a small neighbourhood spans almost no range and would stop all filtering).
    Returns:
        (B, C, H, W) the filtered frame.
    """
    held = previous
    if window > 1:
        pad = window // 2
        lo = -F.max_pool2d(-current, window, stride=1, padding=pad)
        hi = F.max_pool2d(current, window, stride=1, padding=pad)
        held = torch.minimum(torch.maximum(previous, lo), hi)
    diff = (held - current).abs().amax(dim=1, keepdim=True)
    agree = torch.exp(-((diff / tolerance) ** 2))
    return current + history * confidence * agree * (held - current)


def temporal_noise(
    current: Tensor, previous: Tensor, confidence: Tensor, min_pixels: int = 64
) -> float | None:
    """Robust estimate of a frame's noise (standard deviation, display units) from time.

    Where the flow is trusted, two consecutive frames differ by their noise plus whatever
    really changed. The median absolute deviation of the channel-mean difference ignores the
    changes (a minority of pixels) and, for Gaussian noise, is 0.6745 sigma x sqrt(2) (two
    independent frames). Texture that the warp does not carry exactly raises it slightly, so
    a blend's tolerance widens a little; the clamp in `temporal_blend` bounds what that does.

    Args:
        current: (B, C, H, W) frame t.
        previous: (B, C, H, W) frame t-1 warped onto frame t (`warp`).
        confidence: (B, 1, H, W) in [0, 1]; pixels above 0.5 are used.
        min_pixels: fewer trusted pixels than this give no estimate.
    Returns:
        sigma >= 0, or None when too few pixels are trusted.
    """
    # A grid of at most ~_NOISE_SAMPLES pixels is plenty for a median, and cheap at 4K.
    step = max(1, math.ceil(math.sqrt(current.shape[-2] * current.shape[-1] / _NOISE_SAMPLES)))
    grid = (..., slice(None, None, step), slice(None, None, step))
    diff = (current[grid] - previous[grid]).mean(dim=1, keepdim=True)[confidence[grid] > 0.5]
    if diff.numel() < min_pixels:
        return None
    mad = (diff - diff.median()).abs().median()
    return float(mad) / (0.6745 * 2**0.5)
