"""Depth over time and at edges: what every depth provider goes through before bokeh.

Two things ruin refocused video: depth that flickers from frame to frame, and depth edges
that miss the image's edges (the halo around a subject). This module fixes both, whichever
provider made the depth (a network, the user's own sequence):

- `DepthStabilizer`: each relative map is normalised, then aligned to the previous output
  (scale and shift fitted by robust least squares on flow-warped pixels that the
  forward-backward check and the image itself trust), then blended with that warped previous
  output by `models.flow.temporal_blend`, which follows the motion and ignores pixels where
  the flow or the image disagree. The fit is pulled a little toward the frame's own
  normalisation each frame (`anchor`), so a long shot cannot drift.
- `align_edges`: where depth jumps, each pixel takes the depth of the side (near or far)
  whose colour it resembles, so a depth step sits where the subject's outline is. (A guided
  filter on the luma was tried first: on a step 3 px off the outline it left a ramp and a
  second edge, 1.5 -> 1.6 px mean edge distance, no better; `tests/test_depth_temporal.py`
  holds the case.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.filters import box_blur
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.models.flow import DISFlow, temporal_blend, warp

__all__ = [
    "DepthStabilizer",
    "StabilizeSettings",
    "align_edges",
    "fit_scale_shift",
    "normalise_relative",
]

log = logging.getLogger(__name__)

_LUMA = (0.2126, 0.7152, 0.0722)


def _luma(frames: Tensor) -> Tensor:
    weights = frames.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (frames * weights).sum(dim=1, keepdim=True)


def _quantiles(depth: Tensor, low: float, high: float) -> tuple[Tensor, Tensor]:
    """Per-image quantiles of (B, 1, H, W), on at most ~64k samples (exact enough, fast)."""
    flat = depth.flatten(1)
    step = max(1, flat.shape[1] // 65536)
    q = torch.quantile(flat[:, ::step], flat.new_tensor([low, high]), dim=1)
    return q[0].view(-1, 1, 1, 1), q[1].view(-1, 1, 1, 1)


def normalise_relative(depth: Tensor, low: float = 0.01, high: float = 0.99) -> Tensor:
    """Map relative depth to [0, 1] by its robust range (1st and 99th percentile), per image.

    Args:
        depth: (B, 1, H, W) affine-invariant disparity, larger = nearer.
    Returns:
        (B, 1, H, W) in [0, 1]; a constant map becomes 0.5.
    """
    lo, hi = _quantiles(depth, low, high)
    span = hi - lo
    # Flat to within 1e-4 of its magnitude (a 16-bit map's step is 1.5e-5): stretching that
    # to [0, 1] would turn rounding noise into depth.
    flat = span <= 1e-4 * torch.maximum(lo.abs(), hi.abs()) + 1e-12
    out = (depth - lo) / torch.where(flat, torch.ones_like(span), span)
    return torch.where(flat, torch.full_like(out, 0.5), out).clamp(0.0, 1.0)


def fit_scale_shift(
    source: Tensor, target: Tensor, weight: Tensor, *, iterations: int = 3, scale: float = 0.05
) -> tuple[Tensor, Tensor]:
    """Robust weighted least squares `s * source + b ~ target`, per image.

    Cauchy reweighting (`scale` = the residual treated as an inlier) keeps a moving object or
    a flow error from tilting the fit.

    Args:
        source, target: (B, 1, H, W).
        weight: (B, 1, H, W) >= 0, the pixels to fit on.
    Returns:
        s, b: (B, 1, 1, 1) each; s = 1, b = 0 where the weights are all zero.
    """
    x, y, w0 = source.flatten(1), target.flatten(1), weight.flatten(1).clamp_min(0.0)
    w = w0
    s = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    b = torch.zeros_like(s)
    for _ in range(max(1, iterations)):
        sw = w.sum(1, keepdim=True)
        ok = sw > 1e-6
        sw = torch.where(ok, sw, torch.ones_like(sw))
        mx, my = (w * x).sum(1, keepdim=True) / sw, (w * y).sum(1, keepdim=True) / sw
        vx = (w * (x - mx) ** 2).sum(1, keepdim=True) / sw
        cxy = (w * (x - mx) * (y - my)).sum(1, keepdim=True) / sw
        s_new = torch.where(vx > 1e-12, cxy / vx.clamp_min(1e-12), torch.ones_like(vx))
        b_new = my - s_new * mx
        s, b = torch.where(ok, s_new, s), torch.where(ok, b_new, b)
        residual = s * x + b - y
        w = w0 / (1.0 + (residual / scale) ** 2)
    return s.view(-1, 1, 1, 1), b.view(-1, 1, 1, 1)


def _box(x: Tensor, radius: int) -> Tensor:
    return box_blur(x, 2 * radius + 1, border_type="replicate")


def _max(x: Tensor, radius: int) -> Tensor:
    """Max over a (2r+1)^2 window, separably (O(r) per pixel, not O(r^2))."""
    k = 2 * radius + 1
    x = F.max_pool2d(x, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(x, (k, 1), stride=1, padding=(radius, 0))


def _min(x: Tensor, radius: int) -> Tensor:
    return -_max(-x, radius)


def _side_stats(out: Tensor, image: Tensor, radius: int, jump: Tensor) -> dict[str, Tensor]:
    """Window statistics of the two sides of every depth edge (see `align_edges`)."""
    d_max, d_min = _max(out, radius), _min(out, radius)
    edge = (d_max - d_min) > jump
    # A neighbour's side is judged against the middle of a window twice as wide, which holds
    # the edge its centre pixel sees (its own window may be flat).
    w_max, w_min = _max(out, 2 * radius), _min(out, 2 * radius)
    mid = (w_max + w_min) / 2
    known = ((w_max - w_min) > jump).to(out.dtype)
    near = (out > mid).to(out.dtype) * known
    far = (1.0 - near) * known
    # Side colours come from each side's core only: the strip next to a depth edge is what
    # may be misplaced, so it must not vote for its side's colour.
    core = max(1, radius // 2)
    near_core, far_core = _min(near, core), _min(far, core)
    n_near, n_far = _box(near_core, radius), _box(far_core, radius)
    return {
        "edge": edge,
        "both": (n_near > 1e-3) & (n_far > 1e-3),
        "mid": mid,
        "c_near": _box(image * near_core, radius) / n_near.clamp_min(1e-6),
        "c_far": _box(image * far_core, radius) / n_far.clamp_min(1e-6),
        "z_near": _box(out * near_core, radius) / n_near.clamp_min(1e-6),
        "z_far": _box(out * far_core, radius) / n_far.clamp_min(1e-6),
    }


def align_edges(
    depth: Tensor,
    frames: Tensor,
    *,
    radius: int | None = None,
    threshold: float = 0.05,
    softness: float = 0.02,
    iterations: int = 1,
) -> Tensor:
    """Snap depth edges to image edges: a local two-layer classification by colour.

    Where the depth jumps within a window (a depth edge), each pixel is given the depth of
    the side whose mean colour it resembles: the near side's (pixels above the window's
    middle depth) or the far side's. A depth step that a low-resolution estimate put a few
    px off the subject's outline moves onto the outline, and stays a step (a smoothing
    filter would leave a ramp or a double edge). Away from depth edges nothing changes.

    Args:
        depth: (B, 1, H, W) disparity-like depth.
        frames: (B, 3, H, W) the all-in-focus frames in [0, 1] the depth belongs to.
        radius: window radius in px, at least twice the misalignment to fix; None = 1/60
            of the short side (12 px at 720p), at least 4.
        threshold: the smallest depth jump treated as an edge, as a fraction of the map's
            range.
        softness: colour distance (squared, 0-3 RGB units) over which the choice of side
            blends, so outlines stay anti-aliased.
        iterations: passes (each refines the side colours with the last result).
    Returns:
        (B, 1, H, W) depth whose edges follow the frame's.
    Raises:
        InputError: depth and frames differ in batch or size.
    """
    if depth.shape[0] != frames.shape[0] or depth.shape[-2:] != frames.shape[-2:]:
        raise InputError(
            f"depth {tuple(depth.shape)} and frames {tuple(frames.shape)} differ in batch or size."
        )
    h, w = depth.shape[-2:]
    if radius is None:
        radius = max(4, round(min(h, w) / 60))
    radius = min(radius, (min(h, w) - 1) // 2)
    if radius < 1:
        return depth
    image = frames.to(depth.dtype).nan_to_num(0.0)
    lo, hi = _quantiles(depth, 0.0, 1.0)
    jump = threshold * (hi - lo).clamp_min(1e-12)
    # Above ~0.5 MP the window statistics (smooth by nature) are taken at half size and
    # upsampled; each pixel still chooses its side at full size (720p, one core: 1.9 s ->
    # 0.5 s).
    half = h * w > 500_000 and radius >= 4
    out = depth
    for _ in range(max(1, iterations)):
        if half:
            small = (h // 2, w // 2)
            stats = _side_stats(
                F.interpolate(out, size=small, mode="area"),
                F.interpolate(image, size=small, mode="area"),
                radius // 2,
                jump,
            )
            stats = {
                k: F.interpolate(v.to(out.dtype), size=(h, w), mode="bilinear")
                for k, v in stats.items()
            }
            stats["edge"], stats["both"] = stats["edge"] > 0, stats["both"] > 0.5
        else:
            stats = _side_stats(out, image, radius, jump)
        dist_near = ((image - stats["c_near"]) ** 2).sum(1, keepdim=True)
        dist_far = ((image - stats["c_far"]) ** 2).sum(1, keepdim=True)
        p_near = torch.sigmoid((dist_far - dist_near) / softness)
        # Keep each pixel's own depth on its side (a ramp stays a ramp), switch sides only.
        own_near = out > stats["mid"]
        target_near = torch.where(own_near, out, stats["z_near"])
        target_far = torch.where(own_near, stats["z_far"], out)
        snapped = p_near * target_near + (1.0 - p_near) * target_far
        # Only where the two sides differ in colour is there an image edge to snap to; a
        # depth step inside one colour (or noise in the depth) is left as it is.
        distinct = ((stats["c_near"] - stats["c_far"]) ** 2).sum(1, keepdim=True) > softness
        out = torch.where(stats["edge"] & stats["both"] & distinct, snapped, out)
    return out


@dataclass(frozen=True)
class StabilizeSettings:
    """How strongly depth is held steady over time.

    Attributes:
        history: weight of the previous (warped) output where flow, image and depth agree.
        tolerance: depth difference treated as noise, as a fraction of the map's range:
            the previous frame's weight falls as exp(-(difference / tolerance)^2), so a
            larger change (something really moved in depth) mostly comes through at once
            and the rest follows: a step of half the range is 75% through in its first
            frame, 90% after eight (`tests/test_depth_temporal.py`), the price of the
            flicker reduction.
        photometric: luma difference (0-1) beyond which the warped previous frame is not
            trusted (a flow error shows as an image mismatch).
        anchor: pull toward the frame's own normalisation per frame (relative depth), so
            the alignment chain cannot drift over a long shot.
        flow_side_px: long side of the frames the optical flow sees.
        edges: snap depth edges to image edges (`align_edges`) after filtering.
        clamp_window: clamp the warped previous output to the current map's neighbourhood
            of this size (`temporal_blend`); 0 = no clamp.

    The defaults were chosen on a development set of synthetic sequences (seeds 9,200,000+,
    not the reported ones; `eval.depth_eval`) by one rule: the most flicker reduction for the
    built-in DepthNet that costs at most 2% AbsRel. A 3x3 clamp (as DeblurNet's blend uses)
    allowed only 1.6x: on a smooth map a small neighbourhood spans almost no range. Without
    it: history 0.85 / tolerance 0.3 gave 3.7x (+0.9% AbsRel), 0.9 / 0.5 with photometric
    0.3 gives 5.7x (+1.7%), 0.95 lags real changes (+2.5%). On a noisy user sequence the
    same settings give 4.3x less flicker and 39% lower AbsRel.
    """

    history: float = 0.9
    tolerance: float = 0.5
    photometric: float = 0.3
    anchor: float = 0.05
    flow_side_px: int = 320
    edges: bool = True
    clamp_window: int = 0


class DepthStabilizer:
    """Temporal stabilisation and edge alignment of a depth sequence, one shot at a time.

    Args:
        metric: the depth is 1/metres (no scale-shift alignment: the numbers are absolute)
            or relative (normalised to [0, 1] and aligned frame to frame).
        settings: see `StabilizeSettings`.

    Raises:
        InputError: settings out of range.

    Example:
        >>> stab = DepthStabilizer(metric=False)
        >>> out = stab(torch.rand(2, 1, 32, 48), torch.rand(2, 3, 32, 48))
        >>> tuple(out.shape)
        (2, 1, 32, 48)
    """

    def __init__(self, *, metric: bool, settings: StabilizeSettings | None = None) -> None:
        settings = settings or StabilizeSettings()
        if not 0.0 <= settings.history < 1.0:
            raise InputError(f"history must be in [0, 1); got {settings.history}.")
        if not 0.0 <= settings.anchor <= 1.0:
            raise InputError(f"anchor must be in [0, 1]; got {settings.anchor}.")
        if settings.tolerance <= 0 or settings.photometric <= 0:
            raise InputError("tolerance and photometric must be > 0.")
        self.metric = metric
        self.settings = settings
        self.flow = DISFlow("fast", max_side_px=settings.flow_side_px)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new shot or chunk)."""
        self._frame: Tensor | None = None
        self._output: Tensor | None = None
        self._span: Tensor | None = None

    def _align(self, depth: Tensor, previous: Tensor | None, trust: Tensor | None) -> Tensor:
        if self.metric:
            return depth
        unit = normalise_relative(depth)
        if previous is None or trust is None:
            return unit
        # Fit at 1/4 size: the six numbers of a scale and shift need no more pixels.
        small = (max(1, unit.shape[-2] // 4), max(1, unit.shape[-1] // 4))
        s, b = fit_scale_shift(
            F.interpolate(unit, size=small, mode="area"),
            F.interpolate(previous, size=small, mode="area"),
            F.interpolate(trust, size=small, mode="area"),
        )
        a = self.settings.anchor
        s, b = (1.0 - a) * s + a, (1.0 - a) * b
        return s * unit + b

    @torch.inference_mode()
    def __call__(self, depth: Tensor, frames: Tensor) -> Tensor:
        """Stabilise consecutive depth maps.

        Args:
            depth: (B, 1, H, W) the provider's depth, frames in presentation order.
            frames: (B, 3, H, W) the matching frames in [0, 1] (flow and edges come from them).
        Returns:
            (B, 1, H, W): relative depth in [0, 1], or metric depth in the input's units.
        Raises:
            InputError: depth and frames differ in batch or size.
        """
        if depth.shape[0] != frames.shape[0] or depth.shape[-2:] != frames.shape[-2:]:
            raise InputError(
                f"depth {tuple(depth.shape)} and frames {tuple(frames.shape)} differ in batch "
                "or size."
            )
        st = self.settings
        outputs = []
        for d, frame in zip(depth.split(1), frames.split(1), strict=True):
            d = d.float().nan_to_num(0.0, 0.0, 0.0)
            frame = frame.float().nan_to_num(0.0).clamp(0.0, 1.0)
            previous = trust = None
            if self._frame is not None and self._frame.shape == frame.shape:
                flow, conf = self.flow.flow_and_confidence(frame, self._frame)
                previous = warp(self._output, flow)
                photo = (_luma(frame) - _luma(warp(self._frame, flow))).abs()
                trust = conf * torch.exp(-((photo / st.photometric) ** 2))
                # Soften the trust mask: the forward-backward check is 0/1 per pixel, and a
                # hard switch between filtered and unfiltered depth prints a seam (an edge
                # that is not in the scene).
                trust = _box(trust, 2)
            aligned = self._align(d, previous, trust)
            if self.metric:
                lo, hi = _quantiles(aligned, 0.01, 0.99)
                span = (hi - lo).clamp_min(1e-6)
            else:
                span = torch.ones(1, 1, 1, 1)
            out = aligned
            if previous is not None and st.history > 0:
                out = temporal_blend(
                    aligned, previous, trust, st.history, st.tolerance * span, st.clamp_window
                )
            if not self.metric:
                out = out.clamp(0.0, 1.0)
            # The state is the filtered map before edge alignment: filtering an already
            # filtered map frame after frame would smooth a static shot a little more each time.
            self._frame, self._output = frame, out
            outputs.append(align_edges(out, frame) if st.edges else out)
        return torch.cat(outputs)
