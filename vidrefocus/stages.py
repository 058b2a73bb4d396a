"""Per-frame stages over a batch of frames; each keeps its own temporal state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.config import DeblurOptions, LensOptions
from vidrefocus.depth_temporal import DepthStabilizer, normalise_relative
from vidrefocus.errors import ConfigError
from vidrefocus.focus import FocusState
from vidrefocus.models.bokehnet import BokehNet
from vidrefocus.models.deblurnet import DeblurNet, TemporalDeblur, load_deblurnet
from vidrefocus.models.depth import DepthEstimator
from vidrefocus.optics import blur_scale_px

__all__ = [
    "BokehStage",
    "DeblurStage",
    "DepthStage",
    "EstimateDepthStage",
    "FocusStage",
    "FrameBatch",
    "Stage",
    "run_stages",
    "textured_defocus_px",
    "torch_device",
]

# Luma steps per px above which a pixel has detail, so DeblurNet's blur estimate there is
# evidence (in flat areas blur is invisible and its estimate a guess: on the sharp sample's
# sky it says 8 px). 0.01 is 2.5 8-bit codes per px.
DETAIL_GRADIENT = 0.01
# Fewer detailed pixels than this share: nothing shows blur, so the frame counts as sharp.
MIN_DETAIL_SHARE = 0.01


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive frames travelling through the stages.

    Attributes:
        frames: (B, 3, H, W) float32, display-referred, nominally in [0, 1].
        pts: B presentation timestamps, in `time_base` units, increasing.
        time_base: the source stream's time base.
        depth: (B, 1, H, W) float32 disparity-like depth (larger = nearer), once known.
        defocus: (B, 1, H, W) float32 blur radius in px of the input, once estimated.
        extras: named per-batch outputs of stages: "input" (the frames as decoded, before
            DeblurStage replaced them), "deblurred" ((B,) bool, deblur auto: which frames
            DeblurStage replaced), "radius" (signed blur, px), "all_in_focus" (the frames
            BokehStage rendered from).
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


def torch_device(name: str | torch.device) -> torch.device:
    """`runtime.device` ("auto", "cpu", "cuda", or a torch device) as a torch device.

    Raises:
        ConfigError: "cuda" on a machine where torch sees no GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "runtime.device is 'cuda' but torch sees no GPU here; set runtime.device to "
            "'auto' or 'cpu'."
        )
    return device


def textured_defocus_px(frames: Tensor, defocus_px: Tensor) -> Tensor:
    """Each frame's median blur radius over the pixels with detail, where blur can be seen.

    Flat pixels (luma gradient below `DETAIL_GRADIENT` per px) are left out: blur does not
    change them, so an estimate there says nothing. On the bundled sample it is 0.006-0.02 px
    for the sharp frames (0.1-0.4 px on sky-heavy crops of them) and 5.4 px for the shot
    focused on the ball (BENCHMARKS.md, "deblur auto").

    Args:
        frames: (B, 3, H, W) float32, display-referred, in [0, 1].
        defocus_px: (B, 1, H, W) float32 estimated blur radius of `frames`, px.
    Returns:
        (B,) float32 px; 0 for a frame with less than `MIN_DETAIL_SHARE` of its pixels
        detailed (nothing in it shows blur).

    Example:
        >>> textured_defocus_px(torch.zeros(1, 3, 8, 8), torch.full((1, 1, 8, 8), 5.0))
        tensor([0.])
    """
    luma = 0.2126 * frames[:, 0] + 0.7152 * frames[:, 1] + 0.0722 * frames[:, 2]
    gx = F.pad(luma[..., :, 1:] - luma[..., :, :-1], (0, 1))
    gy = F.pad(luma[..., 1:, :] - luma[..., :-1, :], (0, 0, 0, 1))
    detail = (gx.square() + gy.square()).sqrt() > DETAIL_GRADIENT
    out = torch.zeros(frames.shape[0], dtype=torch.float32, device=frames.device)
    for i, (mask, radius) in enumerate(zip(detail, defocus_px[:, 0], strict=True)):
        if mask.float().mean() >= MIN_DETAIL_SHARE:
            out[i] = radius[mask].median()
    return out


class DeblurStage:
    """Remove defocus blur: the all-in-focus frames replace the input frames.

    Frames pass through DeblurNet in time order (`TemporalDeblur`): each one fuses the
    flow-warped features of the one before, so `reset()` at every chunk start, and let the
    chunk's warm-up frames rebuild that state. The batch leaves with `frames` = the sharp
    frames, `defocus` = the estimated blur radius of the input (px, >= 0), and the frames as
    they came in under `extras["input"]` (the analyst's audit compares the two).

    With `sharp_px` set (`deblur.enabled: auto`), a frame whose `textured_defocus_px` is below
    it is already sharp and leaves exactly as it came in (do no harm); `extras["deblurred"]`
    ((B,) bool) says which frames were replaced. DeblurNet still runs on every frame, so its
    temporal state does not jump where frames are passed through.

    Args:
        net: a DeblurNet; it is moved to `device` and put in eval mode.
        temporal: carry state between frames (False: every frame on its own).
        device: where the net runs; frames return on the device they came from.
        sharp_px: pass through frames sharper than this (px); None deblurs every frame.

    Example:
        >>> stage = DeblurStage(DeblurNet(), temporal=False)
        >>> out = stage(FrameBatch(torch.rand(2, 3, 48, 64), [0, 1], Fraction(1, 24)))
        >>> tuple(out.defocus.shape), tuple(out.extras["input"].shape)
        ((2, 1, 48, 64), (2, 3, 48, 64))
    """

    def __init__(
        self,
        net: DeblurNet,
        *,
        temporal: bool = True,
        device: str | torch.device = "cpu",
        sharp_px: float | None = None,
    ) -> None:
        self.device = torch_device(device)
        self.deblur = TemporalDeblur(net.to(self.device), temporal=temporal)
        self.sharp_px = sharp_px

    @classmethod
    def from_options(
        cls, options: DeblurOptions, device: str | torch.device = "auto", *, auto: bool = False
    ) -> DeblurStage:
        """The stage a job's `deblur` options describe, with its weights loaded on `device`.

        Args:
            options: weights, temporal mode, and the threshold `auto` uses.
            device: where the net runs.
            auto: pass already sharp frames through (`options.auto_sharp_px`).
        Raises:
            InputError: the weights file is missing or not a DeblurNet checkpoint.
            ConfigError: "cuda" without a GPU.
        """
        target = torch_device(device)
        net = load_deblurnet(options.weights, target)
        sharp_px = options.auto_sharp_px if auto else None
        return cls(net, temporal=options.temporal, device=target, sharp_px=sharp_px)

    @property
    def temporal(self) -> bool:
        return self.deblur.temporal

    def reset(self) -> None:
        """Forget the previous frame (chunk start)."""
        self.deblur.reset()

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        source = batch.frames.device
        sharp, defocus = self.deblur(batch.frames.to(self.device))
        sharp, defocus = sharp.to(source), defocus.to(source)
        extras = {**batch.extras, "input": batch.frames}
        if self.sharp_px is not None:
            blurred = textured_defocus_px(batch.frames, defocus) >= self.sharp_px
            sharp = torch.where(blurred.view(-1, 1, 1, 1), sharp, batch.frames)
            extras["deblurred"] = blurred
        return batch.with_(frames=sharp, defocus=defocus, extras=extras)


class DepthStage:
    """Attach each frame's depth from a per-frame provider (a user's sequence), by pts.

    Args:
        provider: `provider[i]` -> (1, 1, H, W) disparity of frame i.
        frame_pts: every frame's pts in presentation order (index -> pts).
        stabilizer: temporal stabilisation and edge alignment against the batch's frames
            (None: the maps are used as they are).
    """

    def __init__(
        self,
        provider: Sequence[Tensor],
        frame_pts: Sequence[int],
        stabilizer: DepthStabilizer | None = None,
    ) -> None:
        self.provider = provider
        self.index = {pts: i for i, pts in enumerate(frame_pts)}
        self.stabilizer = stabilizer

    def reset(self) -> None:
        """Forget the stabiliser's previous frame."""
        if self.stabilizer is not None:
            self.stabilizer.reset()

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        depth = torch.cat([self.provider[self.index[p]] for p in batch.pts]).to(batch.frames)
        if self.stabilizer is not None:
            depth = self.stabilizer(depth, batch.frames).to(batch.frames)
        return batch.with_(depth=depth)


class EstimateDepthStage:
    """Estimate each frame's depth from the frames (a network), then stabilise it.

    Args:
        estimator: a `models.depth.DepthEstimator` (the built-in DepthNet, Depth Anything).
        stabilizer: temporal stabilisation and edge alignment (None: raw estimates).
    """

    def __init__(self, estimator: DepthEstimator, stabilizer: DepthStabilizer | None) -> None:
        self.estimator = estimator
        self.stabilizer = stabilizer

    def reset(self) -> None:
        """Forget the previous frame (estimator and stabiliser)."""
        self.estimator.reset()
        if self.stabilizer is not None:
            self.stabilizer.reset()

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        depth = self.estimator(batch.frames)
        if self.stabilizer is not None:
            depth = self.stabilizer(depth, batch.frames)
        elif not self.estimator.metric:
            # Relative estimates have any scale and shift; the stabiliser maps them to [0, 1],
            # without it each frame is mapped by its own range (issue #11: the draft preset's
            # maps were saturated, one flat plane).
            depth = normalise_relative(depth)
        return batch.with_(depth=depth.to(batch.frames))


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
