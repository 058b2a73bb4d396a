"""Frames far apart in a clip refocused one at a time, each as the first frame of a chunk.

The preview's renderer: the stages of `refocus.plan_refocus` (deblur, depth, focus, bokeh),
reset before every frame, because temporal state carried across frames seconds apart would
be wrong, not better. What it must not do is read the whole clip, so:
- estimated depth (no sequence) is computed for the rendered frames only, with the frame
  before as the built-in DepthNet's parallax partner, where a render estimates and filters
  the whole clip first (`depth.prepare_depth`);
- a point key is tracked over the frames between its keyframe and the rendered frames that
  read it, never through the rest of the clip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

from vidrefocus.config import Config
from vidrefocus.depth import build_estimator, choose_depth
from vidrefocus.depth_temporal import DepthStabilizer, StabilizeSettings
from vidrefocus.focus import FocusState, FocusTrack
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.io.reader import DecodedFrame
from vidrefocus.models.bokehnet import BokehNet
from vidrefocus.models.depth import DepthEstimator
from vidrefocus.refocus import BokehLook, bokeh_look, open_depth_sequence, sequence_stabilizer
from vidrefocus.runtime.factory import deblur_stages
from vidrefocus.stages import (
    BokehStage,
    DepthStage,
    FocusStage,
    FrameBatch,
    Stage,
)
from vidrefocus.tracking import depth_at_point, track_point

__all__ = ["FramePipeline", "RenderedFrame", "build_pipeline", "describe_focus"]

log = logging.getLogger(__name__)

# (point key index, row) -> (x, y) of the tracked subject in that row's frame.
Points = dict[tuple[int, int], tuple[float, float]]


@dataclass(frozen=True)
class RenderedFrame:
    """One frame after the stages.

    Attributes:
        index: the frame's position in the clip.
        state: its focus.
        input: (3, H, W) float32 RGB in [0, 1], as decoded.
        all_in_focus: (3, H, W) what BokehNet rendered from (deblurred, or the input).
        depth: (1, H, W) float32 disparity: 1/m when metric, else relative in [0, 1].
        result: (3, H, W) the refocused frame.
    """

    index: int
    state: FocusState
    input: Tensor
    all_in_focus: Tensor
    depth: Tensor
    result: Tensor


def describe_focus(state: FocusState) -> str:
    """A short text of a focus state: "1.20 m f/2.0", "d0.350 12.0 px"."""
    if state.focus_distance_m is not None:
        text = f"{state.focus_distance_m:.2f} m"
    else:
        text = f"d{state.focus_disparity:.3f}"
    if state.f_number is not None:
        text += f" f/{state.f_number:.1f}"
    if state.strength is not None:
        text += f" {state.strength:.1f} px"
    return text


def _row(batch: FrameBatch, k: int) -> FrameBatch:
    """Row `k` of a batch, every per-frame field cut alike."""
    one = slice(k, k + 1)
    return batch.with_(
        frames=batch.frames[one],
        pts=batch.pts[one],
        depth=None if batch.depth is None else batch.depth[one],
        defocus=None if batch.defocus is None else batch.defocus[one],
        extras={name: value[one] for name, value in batch.extras.items()},
    )


class _FrameDepth:
    """The depth of one frame of a short run of consecutive frames.

    A sequence is read at that frame. An estimate is computed over the run (the built-in
    DepthNet reads parallax between its frames), then normalised and edge-aligned for that
    frame only: the others are not shown, and edge alignment costs 0.8 s a 1080p frame
    (one CPU thread).
    """

    def __init__(
        self,
        sequence: DepthStage | None = None,
        estimator: DepthEstimator | None = None,
        stabilizer: DepthStabilizer | None = None,
    ) -> None:
        self.sequence = sequence
        self.estimator = estimator
        self.stabilizer = stabilizer

    def reset(self) -> None:
        for part in (self.sequence, self.estimator, self.stabilizer):
            if part is not None:
                part.reset()

    def __call__(self, batch: FrameBatch, keep: int) -> FrameBatch:
        """Row `keep` of `batch`, with its depth."""
        if self.estimator is None:
            return self.sequence(_row(batch, keep))
        estimate = self.estimator(batch.frames)[keep : keep + 1]
        batch = _row(batch, keep)
        if self.stabilizer is not None:
            estimate = self.stabilizer(estimate, batch.frames)
        return batch.with_(depth=estimate.to(batch.frames))


@dataclass
class FramePipeline:
    """(deblur ->) depth -> focus -> bokeh for single frames; `build_pipeline` makes one.

    Attributes:
        deblur: DeblurNet's stage, or none.
        depth: the depth of the kept frame.
        bokeh: the bokeh stage.
        look: lens, aperture and style.
        track: the focus keyframes.
        points: where each point key's subject is in each row's frame.
        metric: depth is 1/m (True) or relative.
        strength_px: blur strength for relative depth when keys set none.
        partner: the depth estimator reads parallax from a neighbouring frame.
    """

    deblur: list[Stage]
    depth: _FrameDepth
    bokeh: BokehStage
    look: BokehLook
    track: FocusTrack
    points: Points
    metric: bool
    strength_px: float
    partner: bool

    def frames_for(self, index: int, count: int) -> list[int]:
        """The frames to decode to render frame `index` of a `count`-frame clip."""
        if not self.partner or count == 1:
            return [index]
        # The frame before, as in a render (on the sample's frames 4 and 10 DepthNet's map
        # then correlated 0.64 and 0.57 with the true depth; with the next frame's mirrored
        # parallax 0.46 and 0.40); the first frame takes the next one, as a render does.
        return [index - 1, index] if index > 0 else [0, 1]

    @torch.inference_mode()
    def render(self, frames: list[DecodedFrame], index: int, row: int) -> RenderedFrame:
        """Render frame `index` (one of `frames`, consecutive) as a chunk's first frame.

        Args:
            frames: what `frames_for(index)` named, decoded.
            index: the frame to keep.
            row: its position among the rendered frames (keys of `points`).
        """
        keep = [f.index for f in frames].index(index)
        batch = FrameBatch(
            torch.stack([f.rgb for f in frames]), [f.pts for f in frames], frames[0].time_base
        )
        for stage in [*self.deblur, self.depth, self.bokeh]:
            stage.reset()
        for stage in self.deblur:
            batch = stage(batch)
        batch = self.depth(batch, keep)
        depth = batch.depth[0]
        state = self.track.resolve(
            [frames[keep].time_s],
            lambda key, _: depth_at_point(depth, *self.points[(key, row)]),
            metric=self.metric,
        )[0]
        focus = FocusStage(
            {batch.pts[0]: state}, self.look.lens, metric=self.metric,
            strength_px=self.strength_px, strength_scale=self.look.strength_scale,
        )  # fmt: skip
        batch = self.bokeh(focus(batch))
        return RenderedFrame(
            index=index,
            state=state,
            input=frames[keep].rgb,
            all_in_focus=batch.extras["all_in_focus"][0],
            depth=depth,
            result=batch.frames[0],
        )


def _frame_depth(
    config: Config, reader: RandomAccessReader, notes: list[str]
) -> tuple[_FrameDepth, bool, bool]:
    """(the depth of single frames, metric, reads a neighbouring frame)."""
    choice = choose_depth(config)
    notes.append(choice.note)
    if choice.source == "sequence":
        depth = open_depth_sequence(config, len(reader), reader.video)
        stage = DepthStage(depth, reader.pts, sequence_stabilizer(config, depth))
        return _FrameDepth(sequence=stage), depth.metric, False
    # Normalised and (with `stabilize`) edge-aligned per frame, as at a chunk's start; the
    # temporal filter needs a run of frames. Estimated depth is relative, as in a render.
    settings = StabilizeSettings(edges=config.depth.stabilize)
    stabilizer = DepthStabilizer(metric=False, settings=settings)
    notes.append(
        "depth estimated on the preview frames only, without the temporal filter (a render "
        "estimates and filters the whole clip, so its maps differ a little)"
    )
    depth = _FrameDepth(estimator=build_estimator(choice, config), stabilizer=stabilizer)
    return depth, False, choice.source == "builtin"


def _track_points(
    track: FocusTrack, reader: RandomAccessReader, rows: list[int], metric: bool
) -> tuple[Points, list[str]]:
    """Track each point key over the frames between its keyframe and the rows that read it.

    One pass per key, from the earliest to the latest of those frames (`track_point` runs
    backwards from the keyframe for earlier ones). A key that no row reads (another segment
    of the track is in play there) is not tracked at all.
    """
    needed: dict[int, set[int]] = {}

    def record(key: int, row: int) -> float:
        needed.setdefault(key, set()).add(row)
        return 0.0

    # A dry run of the focus resolution tells which point keys each row reads.
    times = [reader.pts[i] * reader.time_base for i in rows]
    track.resolve(times, record, metric=metric)
    frame_times = [p * reader.time_base for p in reader.pts]
    points: Points = {}
    notes = []
    for key, used in sorted(needed.items()):
        t: Fraction = track.times_s[key]
        start = min(range(len(frame_times)), key=lambda j: abs(frame_times[j] - t))
        span = [start, *(rows[r] for r in used)]
        lo, hi = min(span), max(span)
        frames = (f.rgb for f in reader.iter_range(lo, hi + 1))
        track_xy = track_point(frames, track.keys[key].point, start - lo)
        for r in used:
            p = track_xy[rows[r] - lo]
            points[(key, r)] = (p.x, p.y)
        notes.append(
            f"tracked keyframe {key} point {track.keys[key].point} over frames {lo}-{hi} "
            f"only ({hi - lo + 1} of {len(reader)})"
        )
    return points, notes


def build_pipeline(
    config: Config, reader: RandomAccessReader, track: FocusTrack, rows: list[int]
) -> tuple[FramePipeline, list[str]]:
    """Load the models and track the point keys for rendering the frames `rows`.

    Returns:
        The pipeline, and notes on the decisions (depth provider, deblur, look, tracking).
    Raises:
        InputError: bad depth, missing weights, an unknown style, a point outside the frame.
    """
    notes: list[str] = []
    depth, metric, partner = _frame_depth(config, reader, notes)
    deblur: list[Stage] = []
    if config.deblur.enabled:
        built = deblur_stages(reader.path, config, auto=config.deblur.enabled == "auto")
        deblur = built.stages
        notes += [*built.notes, "DeblurNet starts afresh at each preview frame"]
    look = bokeh_look(config)
    notes += look.notes
    points, track_notes = _track_points(track, reader, rows, metric)
    notes += track_notes
    pipeline = FramePipeline(
        deblur, depth, BokehStage(BokehNet(look.settings, look.fill)), look, track, points,
        metric, config.bokeh.strength, partner,
    )  # fmt: skip
    return pipeline, notes
