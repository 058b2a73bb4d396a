"""The editor's job: (deblur +) depth + animated focus + BokehNet, assembled into stages and run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vidrefocus.aperture import ApertureSpec
from vidrefocus.config import Config
from vidrefocus.depth import choose_depth, prepare_depth
from vidrefocus.depth_temporal import DepthStabilizer, StabilizeSettings
from vidrefocus.errors import InputError
from vidrefocus.focus import FocusKey, FocusState, FocusTrack
from vidrefocus.io.depth import DepthSequence, sequence_units
from vidrefocus.io.probe import MediaInfo, frame_pts
from vidrefocus.io.reader import VideoReader
from vidrefocus.io.writer import check_output_path
from vidrefocus.layered import RenderSettings
from vidrefocus.models.bokehnet import BokehNet, default_weights_path, load_fill_net
from vidrefocus.runtime.factory import deblur_stages
from vidrefocus.runtime.local import JobResult, Progress, run_local
from vidrefocus.stages import BokehStage, DepthStage, FocusStage, Stage
from vidrefocus.tracking import depth_at_point, track_point

__all__ = ["RefocusPlan", "plan_refocus", "refocus"]

log = logging.getLogger(__name__)


@dataclass
class RefocusPlan:
    """Everything decided before the first frame is rendered.

    Attributes:
        stages: (deblur ->) depth -> focus -> bokeh.
        states: pts -> focus state of every frame.
        times_s: every frame's time.
        notes: human-readable decisions (style understood, depth source, fill on/off).
        tracks: point key index -> per-frame (x, y) of the tracked subject.
    """

    stages: list[Stage]
    states: dict[int, FocusState]
    times_s: list[Fraction]
    notes: list[str] = field(default_factory=list)
    tracks: dict[int, list[tuple[float, float]]] = field(default_factory=dict)


def _aperture(config: Config) -> ApertureSpec:
    b = config.bokeh
    return ApertureSpec(
        shape=b.aperture, blades=b.blades, curvature=b.curvature, rotation_deg=b.rotation_deg,
        squeeze=b.squeeze, cat_eye=b.cat_eye,
    )  # fmt: skip


def _focus_track(
    info: MediaInfo, focus: str | None, focus_file: Path | None, duration: Fraction
) -> FocusTrack:
    video = info.video
    rate = video.average_rate if video is not None else None
    if focus is not None and focus_file is not None:
        raise InputError("give focus keyframes with --focus or --focus-file, not both.")
    if focus_file is not None:
        return FocusTrack.from_file(focus_file, rate, duration)
    if focus is not None:
        return FocusTrack.from_text(focus, rate, duration)
    # No keyframes: focus on the subject at the centre of the first frame and follow it.
    w, h = video.display_width, video.display_height
    return FocusTrack((FocusKey(at=0.0, point=((w - 1) / 2, (h - 1) / 2)),), rate, duration)


def plan_refocus(
    input_path: Path,
    config: Config,
    *,
    focus: str | None = None,
    focus_file: Path | None = None,
) -> RefocusPlan:
    """Resolve depth, focus (tracking point keys) and the look into stages.

    Raises:
        InputError: bad depth (or missing model weights), bad keyframes, an unknown style.
    """
    reader = VideoReader(input_path, fps=config.input.sequence_rate)
    info, video = reader.info, reader.video
    pts = frame_pts(input_path) if not info.is_image_sequence else None
    if pts is None:
        pts = list(range(video.first_pts or 0, (video.last_pts or 0) + 1))
    times = [p * video.time_base for p in pts]
    duration = video.duration_s or (times[-1] if times else Fraction(0))
    notes: list[str] = []
    if config.depth.path is None:
        # --depth auto: estimate (or reuse cached) depth for the whole clip first, so the
        # focus of a tracked point can be read before any frame is rendered.
        config, depth_notes = prepare_depth(input_path, config)
    else:
        depth_notes = [choose_depth(config).note]
    notes.extend(depth_notes)
    units = sequence_units(config.depth.path, config.depth.units)
    depth = DepthSequence(
        config.depth.path,
        units=config.depth.units,
        near_is_bright=config.depth.near_is_bright,
        frame_count=len(pts),
        size=(video.display_width, video.display_height),
        # 256 steps of metric depth (mm, m or 1/m) are a broken export, never intended.
        expect_16bit=units != "relative",
    )
    # A user's sequence is taken as aligned with its frames: snapping the edges of an
    # accurate map can only move right pixels (on a noisy synthetic sequence it raised AbsRel
    # from 0.013 to 0.018), so it gets the temporal filter only. Estimated depth arrives
    # here already stabilised and edge-aligned (`prepare_depth`).
    settings = StabilizeSettings(edges=False)
    stabilizer = (
        DepthStabilizer(metric=depth.metric, settings=settings) if config.depth.stabilize else None
    )
    # Deblur first, so depth alignment, focus and bokeh all see the all-in-focus frames.
    first: list[Stage] = []
    if config.deblur.enabled:
        deblur = deblur_stages(input_path, config)
        first, notes = deblur.stages, [*notes, *deblur.notes]
    track = _focus_track(info, focus, focus_file, duration)
    tracks: dict[int, list[tuple[float, float]]] = {}
    for i, key in enumerate(track.keys):
        if key.point is None:
            continue
        start = min(range(len(times)), key=lambda j, t=track.times_s[i]: abs(times[j] - t))
        frames = (f.rgb for f in VideoReader(input_path, fps=config.input.sequence_rate))
        points = track_point(frames, key.point, start)
        tracks[i] = [(p.x, p.y) for p in points]
        hidden = sum(p.occluded for p in points)
        notes.append(f"tracked keyframe {i} point {key.point} ({hidden} frames occluded)")

    def point_depth(key_index: int, frame: int) -> float:
        x, y = tracks[key_index][frame]
        return depth_at_point(depth[frame][0], x, y)

    states = track.resolve(times, point_depth if tracks else None, metric=depth.metric)
    strength_scale = 1.0
    lens = config.lens
    settings = RenderSettings(
        aperture=_aperture(config),
        highlight_gain=config.bokeh.highlight_gain,
        highlight_threshold=config.bokeh.highlight_threshold,
    )
    if config.bokeh.style:
        from vidrefocus.styles import style_from_text

        match = style_from_text(config.bokeh.style)
        style = match.style
        settings = RenderSettings(
            aperture=style.aperture,
            highlight_gain=style.highlight_gain,
            highlight_threshold=style.highlight_threshold,
        )
        strength_scale = style.strength_scale
        if style.f_number is not None:
            lens = lens.model_copy(update={"f_number": style.f_number})
        notes.append(f"style: {match.summary}")
    fill = None
    if config.bokeh.learned_fill:
        if default_weights_path().is_file():
            fill = load_fill_net()
        else:
            log.warning("BokehNet fill weights missing; rendering with the classical fill.")
    notes.append(f"BokehNet learned fill: {'on' if fill is not None else 'off'}")
    stages: list[Stage] = [
        *first,
        DepthStage(depth, pts, stabilizer),
        FocusStage(
            dict(zip(pts, states, strict=True)),
            lens,
            metric=depth.metric,
            strength_px=config.bokeh.strength,
            strength_scale=strength_scale,
        ),
        BokehStage(BokehNet(settings, fill)),
    ]
    return RefocusPlan(stages, dict(zip(pts, states, strict=True)), times, notes, tracks)


def refocus(
    input_path: Path,
    output_path: Path,
    config: Config,
    *,
    focus: str | None = None,
    focus_file: Path | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[JobResult, RefocusPlan]:
    """Refocus a clip: the whole editor's job, in this process.

    Returns:
        What was written, and the plan (focus states and decisions) for reporting.
    """
    # Refuse a bad output path before the tracking pre-pass, not after it.
    check_output_path(output_path, [input_path], overwrite=overwrite)
    plan = plan_refocus(input_path, config, focus=focus, focus_file=focus_file)
    result = run_local(
        input_path, output_path, plan.stages, config, overwrite=overwrite, progress=progress
    )
    return result, plan
