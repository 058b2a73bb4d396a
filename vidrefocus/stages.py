"""Per-frame stages over a batch of frames; each keeps its own temporal state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from vidrefocus.config import LensOptions
from vidrefocus.focus import FocusState
from vidrefocus.models.bokehnet import BokehNet
from vidrefocus.optics import blur_scale_px

__all__ = ["BokehStage", "DepthStage", "FocusStage", "FrameBatch", "Stage", "run_stages"]


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive frames travelling through the stages.

    Attributes:
        frames: (B, 3, H, W) float32, display-referred, nominally in [0, 1].
        pts: B presentation timestamps, in `time_base` units, increasing.
        time_base: the source stream's time base.
        depth: (B, 1, H, W) float32 disparity-like depth (larger = nearer), once known.
        defocus: (B, 1, H, W) float32 blur radius in px of the input, once estimated.
        extras: named per-batch outputs of stages (all-in-focus frames, focus state, ...).
    """

    frames: Tensor
    pts: list[int]
    time_base: Fraction
    depth: Tensor | None = None
    defocus: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[1] != 3:
            raise ValueError(f"frames must be (B, 3, H, W), got {tuple(self.frames.shape)}")
        if len(self.pts) != self.frames.shape[0]:
            raise ValueError(f"{len(self.pts)} pts for {self.frames.shape[0]} frames")

    def with_(self, **changes: object) -> FrameBatch:
        """A copy with some fields replaced (batches are immutable between stages)."""
        return replace(self, **changes)


@runtime_checkable
class Stage(Protocol):
    """A step of the pipeline. It never knows which runtime calls it."""

    def reset(self) -> None:
        """Forget temporal state (called at the start of every chunk)."""

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        """Process a batch of consecutive frames."""


def run_stages(stages: list[Stage], batch: FrameBatch) -> FrameBatch:
    for stage in stages:
        batch = stage(batch)
    return batch


class DepthStage:
    """Attach each frame's depth from a per-frame provider, looked up by pts.

    Args:
        provider: `provider[i]` -> (1, 1, H, W) disparity of frame i.
        frame_pts: every frame's pts in presentation order (index -> pts).
    """

    def __init__(self, provider: Sequence[Tensor], frame_pts: Sequence[int]) -> None:
        self.provider = provider
        self.index = {pts: i for i, pts in enumerate(frame_pts)}

    def reset(self) -> None:
        """Stateless."""

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        depth = torch.cat([self.provider[self.index[p]] for p in batch.pts]).to(batch.frames)
        return batch.with_(depth=depth)


class FocusStage:
    """Signed circle-of-confusion radius per pixel from depth and the frame's focus state.

    With metric depth the lens gives the px-per-diopter factor (`optics.blur_scale_px`) for
    the frame's focus distance and f-number; with relative depth it is the strength in px.

    Args:
        states: pts -> the frame's focus state.
        lens: focal length, f-number (when keys set none) and sensor width.
        metric: depth is 1/m (True) or relative in [0, 1].
        strength_px: blur strength for relative depth when keys set none.
        strength_scale: multiplier from the bokeh style.
    """

    def __init__(
        self,
        states: dict[int, FocusState],
        lens: LensOptions,
        *,
        metric: bool,
        strength_px: float,
        strength_scale: float = 1.0,
    ) -> None:
        self.states = states
        self.lens = lens
        self.metric = metric
        self.strength_px = strength_px
        self.strength_scale = strength_scale

    def reset(self) -> None:
        """Stateless: focus states are precomputed for the whole clip."""

    def blur_scale(self, state: FocusState, image_width_px: int) -> float:
        if not self.metric:
            strength = state.strength if state.strength is not None else self.strength_px
            return strength * self.strength_scale
        f_number = state.f_number if state.f_number is not None else self.lens.f_number
        distance = state.focus_distance_m if state.focus_distance_m is not None else math.inf
        k = blur_scale_px(
            distance, self.lens.focal_length_mm, f_number, self.lens.sensor_width_mm,
            image_width_px,
        )  # fmt: skip
        return float(k) * self.strength_scale

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        if batch.depth is None:
            raise ValueError("FocusStage needs depth; put a depth stage before it")
        h, w = batch.frames.shape[-2:]
        # The sensor's width lies along the frame's long side (portrait clips are rotated).
        width = max(h, w)
        radii = []
        for i, pts in enumerate(batch.pts):
            state = self.states[pts]
            k = self.blur_scale(state, width)
            radii.append(k * (batch.depth[i : i + 1] - state.focus_disparity))
        return batch.with_(extras={**batch.extras, "radius": torch.cat(radii)})


class BokehStage:
    """Render the frames with BokehNet at the radii the focus stage computed."""

    def __init__(self, net: BokehNet) -> None:
        self.net = net

    def reset(self) -> None:
        """Stateless."""

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        radius = batch.extras["radius"]
        out = self.net(batch.frames, radius.to(batch.frames))
        return batch.with_(frames=out, extras={**batch.extras, "all_in_focus": batch.frames})
