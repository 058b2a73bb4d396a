"""Per-frame stages over a batch of frames; each keeps its own temporal state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["FrameBatch", "Stage", "run_stages"]


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
