"""Point tracking through a shot (flow, coasting through occlusions, re-acquisition)."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.models.flow import DISFlow, FlowPreset, luma_u8

__all__ = ["TrackOptions", "TrackPoint", "depth_at_point", "track_point"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackPoint:
    """Where a tracked point is in one frame.

    Attributes:
        x: column in pixels, display orientation (pixel centres at integers; may leave the
            frame while the point is predicted).
        y: row in pixels.
        confidence: in [0, 1]: when followed by flow, the share of the window's pixels that
            passed the check and moved with the point; when placed by template tiles, their
            mean correlation; 0 when predicted; 1 at the start frame.
        occluded: the point itself is not visible (hidden or lost); its position is a
            prediction, or where the surrounding template tiles place it.
    """

    x: float
    y: float
    confidence: float
    occluded: bool


class TrackOptions(BaseModel):
    """How `track_point` follows a point (defaults tuned on samples/scene.mp4).

    `roi_px` bounds the motion it can follow (DIS on a 96 px region copes with ~30 px per
    frame); `damping` 0.98 keeps a coasting point moving for a second or two (0.98^48 = 0.38)
    without shooting off for ever.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: FlowPreset = "medium"
    window_px: int = Field(default=9, ge=3, description="side of the flow-reading window")
    template_px: int = Field(default=21, ge=7, description="side of one template tile")
    search_px: int = Field(default=24, ge=1, description="farthest tile search, px")
    roi_px: int = Field(default=96, ge=32, description="side of the flow region")
    damping: float = Field(default=0.98, ge=0, le=1, description="velocity factor per frame")
    min_score: float = Field(default=0.8, gt=0, le=1, description="tile match correlation")
    verify_score: float = Field(default=0.7, gt=0, le=1, description="own-tile correlation")
    gate_px: float = Field(default=1.0, gt=0, description="motion gate, px per frame")


# Template tiles with less contrast than this (8-bit luma std) correlate with noise; they are
# not used to find or check a point.
_MIN_TEMPLATE_STD = 4.0
# Two template tiles agree on where the point is when their votes are this close (px).
_AGREE_PX = 1.5


@dataclass
class _State:
    x: float
    y: float
    occluded: bool = False
    unseen: int = 0  # frames since the point itself was last seen
    # While unseen: where the damped constant-velocity prediction from the last sighting is.
    coast_x: float = 0.0
    coast_y: float = 0.0
    # The last few frame-to-frame moves seen by flow, in px per frame.
    velocities: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=3))
    # (3 t, 3 t) luma around the point from its last clean frame: a 3 x 3 grid of t x t tiles,
    # the centre tile is the point's own appearance, the others find it when it is half hidden.
    patch: np.ndarray | None = None

    def velocity(self) -> tuple[float, float]:
        if not self.velocities:
            return 0.0, 0.0
        # The mean of the last 3 moves: smooth enough for flow noise (~0.05 px), short enough
        # to follow a subject that speeds up.
        vx, vy = np.mean(np.asarray(self.velocities), axis=0)
        return float(vx), float(vy)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-mean normalised cross-correlation of two equal-size patches, in [-1, 1]."""
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _parabola_peak(values: np.ndarray) -> float:
    left, mid, right = (float(v) for v in values)
    denom = left - 2.0 * mid + right
    return 0.0 if denom >= 0 else 0.5 * (left - right) / denom


def _distinct_peak(
    scores: np.ndarray, min_score: float, radius: int
) -> tuple[float, float, float] | None:
    """Sub-pixel (x, y, score) of the best match if it is good and unambiguous, else None.

    Unambiguous: nothing farther than `radius` from the peak scores within 0.05 of it, so a
    tile on an edge or a stripe (which matches all along it) places nothing.
    """
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if not math.isfinite(best) or best < min_score:
        return None
    others = scores.copy()
    others[max(0, by - radius) : by + radius + 1, max(0, bx - radius) : bx + radius + 1] = -1.0
    if others.size and float(others.max()) > best - 0.05:
        return None
    h, w = scores.shape
    # Sub-pixel peak: a parabola through the best score and its neighbours on each axis.
    sx = _parabola_peak(scores[by, bx - 1 : bx + 2]) if 0 < bx < w - 1 else 0.0
    sy = _parabola_peak(scores[by - 1 : by + 2, bx]) if 0 < by < h - 1 else 0.0
    return bx + sx, by + sy, float(best)


class _Tracker:
    """Moves one point from a frame to the next."""

    def __init__(self, options: TrackOptions) -> None:
        self.flow = DISFlow(options.preset, max_side_px=options.roi_px + 1)
        self.half_window = options.window_px // 2
        self.tile = options.template_px // 2 * 2 + 1  # odd, so a tile has a centre pixel
        self.search_px = options.search_px
        self.half_roi = options.roi_px // 2
        self.damping = options.damping
        self.min_score = options.min_score
        self.verify_score = options.verify_score
        self.gate_px = options.gate_px

    def patch_at(self, luma: np.ndarray, x: float, y: float) -> np.ndarray:
        size = 3 * self.tile
        return cv2.getRectSubPix(luma, (size, size), (x, y))

    def own(self, patch: np.ndarray) -> np.ndarray:
        t = self.tile
        return patch[t : 2 * t, t : 2 * t]

    def looks_like(self, state: _State, luma: np.ndarray, x: float, y: float) -> bool:
        """Whether the point's own appearance is at (x, y); True if it has too little texture."""
        own = self.own(state.patch)
        if own.std() < _MIN_TEMPLATE_STD:
            return True
        there = cv2.getRectSubPix(luma, (self.tile, self.tile), (x, y))
        return _ncc(own, there) >= self.verify_score

    def step(self, state: _State, src: np.ndarray, dst: np.ndarray) -> tuple[_State, float]:
        """Move `state` (a position in `src`) into `dst`; returns the new state, confidence."""
        if not state.occluded:
            moved = self._follow_flow(state, src, dst)
            if moved is not None:
                return moved
        return self._coast(state, dst)

    def _follow_flow(
        self, state: _State, src: np.ndarray, dst: np.ndarray
    ) -> tuple[_State, float] | None:
        # Flow on a region around the point only: the point needs nothing else, and DIS time
        # grows with the area.
        h, w = src.shape
        x0 = min(max(0, round(state.x) - self.half_roi), max(0, w - 2 * self.half_roi - 1))
        y0 = min(max(0, round(state.y) - self.half_roi), max(0, h - 2 * self.half_roi - 1))
        crop = (slice(y0, y0 + 2 * self.half_roi + 1), slice(x0, x0 + 2 * self.half_roi + 1))
        # Flow from src to dst on src's grid: where src's content went.
        flow, confident = self.flow.luma_flow_and_confidence(
            np.ascontiguousarray(src[crop]), np.ascontiguousarray(dst[crop])
        )
        cx, cy = round(state.x) - x0, round(state.y) - y0
        if not (0 <= cx < flow.shape[1] and 0 <= cy < flow.shape[0]):
            return None  # left the frame
        # The point itself must pass the forward-backward check ...
        if confident[max(0, cy - 1) : cy + 2, max(0, cx - 1) : cx + 2].mean() < 0.5:
            return None
        r = self.half_window
        window = (slice(max(0, cy - r), cy + r + 1), slice(max(0, cx - r), cx + r + 1))
        vectors = flow[window][confident[window]]
        if state.velocities:
            # ... and its neighbours vote only if they move like the point did: DIS smooths
            # flow across depth edges, so an occluder's motion bleeds into the point's window
            # (and passes the check) a few frames before it covers the point.
            v = np.asarray(state.velocities[-1], dtype=np.float32)
            vectors = vectors[np.linalg.norm(vectors - v, axis=1) < self.gate_px]
        share = len(vectors) / confident[window].size
        if share < 0.3:
            return None
        dx, dy = (float(v) for v in np.median(vectors, axis=0))
        x, y = state.x + dx, state.y + dy
        if not self.looks_like(state, dst, x, y):
            return None
        new = _State(x, y, velocities=state.velocities, patch=state.patch)
        new.velocities.append((dx, dy))
        # Refresh the appearance only where everything around the point moves as one rigid
        # piece (no depth edge nearby), so the templates never learn an occluder.
        t = 3 * self.tile // 2
        region = (slice(max(0, cy - t), cy + t + 1), slice(max(0, cx - t), cx + t + 1))
        spread = np.linalg.norm(flow[region] - np.array([dx, dy], np.float32), axis=-1)
        if confident[region].mean() > 0.95 and np.quantile(spread, 0.95) < 0.5:
            new.patch = self.patch_at(dst, x, y)
        return new, share

    def _coast(self, state: _State, dst: np.ndarray) -> tuple[_State, float]:
        # Damped constant velocity from the last sighting: the longer the point is unseen,
        # the less we extrapolate.
        unseen = state.unseen + 1
        cx, cy = (state.x, state.y) if state.unseen == 0 else (state.coast_x, state.coast_y)
        vx, vy = state.velocity()
        gain = self.damping**unseen
        cx, cy = cx + vx * gain, cy + vy * gain
        hidden = _State(cx, cy, True, unseen, cx, cy, state.velocities, state.patch)
        radius = min(self.search_px, 3 + unseen // 2)
        found = self._find(state.patch, dst, cx, cy, radius)
        if found is None:
            return hidden, 0.0
        x, y, score = found
        if self.looks_like(state, dst, x, y):
            return _State(x, y, False, 0, 0.0, 0.0, state.velocities, state.patch), score
        # Still hidden, but placed by its surroundings: coast on from here.
        hidden.x, hidden.y, hidden.coast_x, hidden.coast_y = x, y, x, y
        return hidden, score

    def _find(
        self, patch: np.ndarray | None, dst: np.ndarray, x: float, y: float, radius: int
    ) -> tuple[float, float, float] | None:
        """Where the tiles of `patch` agree the point is, near (x, y): (x, y, score) or None.

        Each textured tile votes for a point position with its best, unambiguous match; the
        point is placed only where at least two tiles agree within `_AGREE_PX`, since a single
        tile of soft (defocused) texture finds look-alikes too easily.
        """
        if patch is None:
            return None
        t, h, w = self.tile, *dst.shape
        half = t // 2 + radius
        votes: list[tuple[float, float, float]] = []
        for row in range(3):
            for col in range(3):
                tile = patch[row * t : (row + 1) * t, col * t : (col + 1) * t]
                if tile.std() < _MIN_TEMPLATE_STD:
                    continue
                # Where this tile's centre should be if the point is at (x, y).
                ox, oy = (col - 1) * t, (row - 1) * t
                tx, ty = round(x + ox), round(y + oy)
                x0, y0 = max(0, tx - half), max(0, ty - half)
                region = dst[y0 : min(h, ty + half + 1), x0 : min(w, tx + half + 1)]
                if region.shape[0] < t + 2 or region.shape[1] < t + 2:
                    continue
                scores = cv2.matchTemplate(region, tile, cv2.TM_CCOEFF_NORMED)
                peak = _distinct_peak(scores, self.min_score, t // 4)
                if peak is not None:
                    bx, by, score = peak
                    votes.append((x0 + bx + t // 2 - ox, y0 + by + t // 2 - oy, score))
        return _consensus(votes)


def _consensus(votes: list[tuple[float, float, float]]) -> tuple[float, float, float] | None:
    """The score-weighted mean of the largest group of votes within `_AGREE_PX` of one vote.

    Returns (x, y, mean score), or None when no two votes agree.
    """
    best: list[tuple[float, float, float]] = []
    for vx, vy, _ in votes:
        group = [v for v in votes if math.hypot(v[0] - vx, v[1] - vy) <= _AGREE_PX]
        if len(group) > len(best) or (
            len(group) == len(best) and sum(g[2] for g in group) > sum(b[2] for b in best)
        ):
            best = group
    if len(best) < 2:
        return None
    weights = np.array([g[2] for g in best])
    xs, ys = np.array([g[0] for g in best]), np.array([g[1] for g in best])
    total = float(weights.sum())
    return float(xs @ weights) / total, float(ys @ weights) / total, total / len(best)


def _frame_luma(frame: Tensor, index: int) -> np.ndarray:
    if not isinstance(frame, Tensor) or frame.ndim != 3 or frame.shape[0] != 3:
        shape = tuple(frame.shape) if isinstance(frame, Tensor) else type(frame).__name__
        raise InputError(f"frame {index}: expected a (3, H, W) RGB tensor; got {shape}.")
    return luma_u8(frame)[0]


def track_point(
    frames: Iterable[Tensor],
    start_xy: tuple[float, float],
    start_index: int = 0,
    options: TrackOptions | None = None,
) -> list[TrackPoint]:
    """Follow a point through a shot, through occlusions.

    Frame to frame, the point moves by the median DIS flow (`models.flow`, on a region of
    `roi_px` around it) over a `window_px` square, over the pixels that pass the
    forward-backward check and move within `gate_px` of the point's last move (DIS smears an
    occluder's motion across the depth edge, and that smear passes the check). The move is
    kept only if the point's own appearance, a `template_px` tile saved on its last clean
    frame, correlates >= `verify_score` there.

    Otherwise the point is occluded (or lost): it coasts at its recent velocity (mean of the
    last 3 moves), damped by `damping` per unseen frame. Each frame, the 3 x 3 tiles around
    its last clean appearance are searched near the prediction (3 px, growing by 1 px every
    2 unseen frames, at most `search_px`); where two or more distinct matches >= `min_score`
    agree, they place the point. It stays `occluded` until its own tile matches there, then
    flow tracking resumes. Frames before `start_index` are tracked backwards the same way.

    Args:
        frames: the shot, (3, H, W) float32 in [0, 1] each, display-referred, in order.
        start_xy: (x, y) in pixels of the point in frame `start_index`, display orientation.
        start_index: the frame where `start_xy` is given, >= 0.
        options: tracking options; None = `TrackOptions()`.
    Returns:
        One TrackPoint per frame of `frames`, index-aligned.
    Raises:
        InputError: frames that are not (3, H, W) or change size, a start index beyond the
            shot, or a start point outside the frame.
    Example:
        >>> frames = [f.rgb for f in VideoReader("samples/scene.mp4")]  # doctest: +SKIP
        >>> track = track_point(frames, (138.9, 239.5))  # doctest: +SKIP
    """
    if start_index < 0:
        raise InputError(f"start_index must be >= 0 (a frame of the shot); got {start_index}.")
    tracker = _Tracker(options if options is not None else TrackOptions())
    before: list[np.ndarray] = []
    points: list[TrackPoint] = []
    state: _State | None = None
    start: tuple[np.ndarray, np.ndarray] | None = None
    previous: np.ndarray | None = None
    for index, frame in enumerate(frames):
        luma = _frame_luma(frame, index)
        if previous is not None and luma.shape != previous.shape:
            raise InputError(
                f"frame {index}: size {luma.shape[1]}x{luma.shape[0]} differs from the "
                f"shot's {previous.shape[1]}x{previous.shape[0]}; track within one shot."
            )
        if index < start_index:
            before.append(luma)
        elif index == start_index:
            state = _start_state(tracker, luma, start_xy)
            start = (luma, state.patch)
            points.append(TrackPoint(state.x, state.y, 1.0, False))
        else:
            state, confidence = tracker.step(state, previous, luma)
            points.append(TrackPoint(state.x, state.y, confidence, state.occluded))
        previous = luma
    if start is None:
        raise InputError(
            f"start_index {start_index} is beyond the shot ({len(before)} frames); "
            "give the index of a frame of the shot."
        )
    newer, patch = start
    back = _State(points[0].x, points[0].y, patch=patch)
    backward: list[TrackPoint] = []
    for luma in reversed(before):
        back, confidence = tracker.step(back, newer, luma)
        backward.append(TrackPoint(back.x, back.y, confidence, back.occluded))
        newer = luma
    points = backward[::-1] + points
    log.debug(
        "tracked %d frames, %d occluded or lost", len(points), sum(p.occluded for p in points)
    )
    return points


def _start_state(tracker: _Tracker, luma: np.ndarray, start_xy: tuple[float, float]) -> _State:
    h, w = luma.shape
    x, y = (float(v) for v in start_xy)
    if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
        raise InputError(
            f"start point ({x:g}, {y:g}) is outside the {w}x{h} frame; give pixel "
            f"coordinates with 0 <= x <= {w - 1} and 0 <= y <= {h - 1} (display orientation)."
        )
    return _State(x, y, patch=tracker.patch_at(luma, x, y))


def depth_at_point(depth: Tensor, x: float, y: float, window_px: int = 7) -> float:
    """Robust depth at a point: the median of a disparity map over a small square window.

    The median ignores the few pixels of another layer at a depth edge and the NaNs of
    missing depth. A window partly outside the frame is cut to the frame; a point outside
    the frame (a tracked point that left it) reads the window at the nearest edge.

    Args:
        depth: (1, H, W) or (H, W) float disparity (1/m when metric, [0, 1] when relative).
        x: column in pixels (pixel centres at integers).
        y: row in pixels.
        window_px: side of the window, odd, >= 1.
    Returns:
        The median disparity over the window's finite values, as a float.
    Raises:
        InputError: a depth of another shape, an even or non-positive window, a non-finite
            point, or a window without finite depth.
    Example:
        >>> depth_at_point(torch.full((1, 8, 8), 0.5), 3.2, 4.7)
        0.5
    """
    if not isinstance(depth, Tensor) or not (
        depth.ndim == 2 or (depth.ndim == 3 and depth.shape[0] == 1)
    ):
        shape = tuple(depth.shape) if isinstance(depth, Tensor) else type(depth).__name__
        raise InputError(f"depth must be a (1, H, W) or (H, W) disparity map; got {shape}.")
    if window_px < 1 or window_px % 2 == 0:
        raise InputError(f"window_px must be odd and >= 1; got {window_px}.")
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InputError(f"point ({x}, {y}) is not finite.")
    plane = depth.reshape(depth.shape[-2:])
    h, w = plane.shape
    cx = min(max(round(x), 0), w - 1)
    cy = min(max(round(y), 0), h - 1)
    r = window_px // 2
    values = plane[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].flatten()
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        raise InputError(
            f"no finite depth within {window_px} px of ({x:g}, {y:g}); "
            "the depth map is missing there."
        )
    # torch.median takes the lower middle value on even counts; a window cut by the frame
    # edge can be even, and the lower middle is still a value that occurs in the map.
    return float(values.median())
