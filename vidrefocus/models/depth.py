"""Depth providers: one interface for every way depth reaches a frame.

DESIGN.md: depth is a disparity-like map `(B, 1, H, W)`, larger = nearer; metric maps are
1/metres, relative maps any affine-invariant disparity. An estimator turns frames into such
maps; `vidrefocus.depth_temporal` then stabilises them over time and snaps their edges to the
image's, whichever estimator made them.

Estimators:
- `vidrefocus.models.depthnet.BuiltinDepth`: the project's own small network (weights ship in
  the package): monocular cues plus motion parallax from the optical flow to the previous
  frame.
- `vidrefocus.models.depth_anything.DepthAnything`: Depth Anything V2 through `transformers`,
  from a local folder or its hub id.
A user's depth sequence (`vidrefocus.io.depth.DepthSequence`) is not an estimator: it is read,
not computed, and always wins.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["DepthEstimator"]


@runtime_checkable
class DepthEstimator(Protocol):
    """Frames in, relative disparity out, one shot at a time.

    Attributes:
        name: what the job summary prints ("built-in DepthNet", "Depth Anything V2 Small").
        metric: True if the output is 1/metres; False for affine-invariant disparity (any
            scale and shift, larger = nearer), which the stabiliser normalises.
    """

    name: str
    metric: bool

    def reset(self) -> None:
        """Forget the previous frame (a new shot or chunk starts)."""
        ...

    def __call__(self, frames: Tensor) -> Tensor:
        """Depth of consecutive frames.

        Args:
            frames: (B, 3, H, W) float32 RGB in [0, 1], display-referred, in presentation
                order; the next call continues where this one ended unless `reset()`.

        Returns:
            (B, 1, H, W) float32 disparity-like depth, larger = nearer, finite.
        """
        ...
