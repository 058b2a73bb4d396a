"""The editor's job: (deblur +) depth + animated focus + BokehNet, assembled into stages and run."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from torch import Tensor

from vidrefocus.aperture import ApertureSpec
from vidrefocus.config import Config, LensOptions
from vidrefocus.depth import choose_depth, prepare_depth
from vidrefocus.depth_temporal import DepthStabilizer, StabilizeSettings
from vidrefocus.errors import InputError
from vidrefocus.exports import ExportRequest, ExportWriter
from vidrefocus.focus import FocusKey, FocusState, FocusTrack, merge_focus_points
from vidrefocus.io.depth import DepthSequence, sequence_units
from vidrefocus.io.paths import check_output_path
from vidrefocus.io.probe import MediaInfo, VideoInfo, frame_pts
from vidrefocus.io.reader import VideoReader
from vidrefocus.io.sequence import open_sequence
from vidrefocus.layered import QUALITY, RenderSettings
from vidrefocus.memory import check_input_memory
from vidrefocus.models.bokehnet import BokehNet, FillNet, default_weights_path, load_fill_net
from vidrefocus.runtime.factory import deblur_stages
from vidrefocus.runtime.local import JobResult, Progress, run_local
from vidrefocus.stages import BokehStage, DepthStage, FocusStage, FrameBatch, Stage
from vidrefocus.tracking import depth_at_point, track_point

__all__ = [
    "BokehLook",
    "RefocusPlan",
    "bokeh_look",
    "focus_track",
    "open_depth_sequence",
    "plan_refocus",
    "refocus",
    "sequence_stabilizer",
]

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
        metric: the depth the bokeh uses is metric (1/m), not relative.
        depth_source: where that depth comes from (a provider, the user's sequence).
        depth_stabilized: whether it is temporally stabilised.
    """

    stages: list[Stage]
    states: dict[int, FocusState]
    times_s: list[Fraction]
    notes: list[str] = field(default_factory=list)
    tracks: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    metric: bool = False
    depth_source: str = ""
    depth_stabilized: bool = False


def _aperture(config: Config) -> ApertureSpec:
    b = config.bokeh
    return ApertureSpec(
        shape=b.aperture, blades=b.blades, curvature=b.curvature, rotation_deg=b.rotation_deg,
        squeeze=b.squeeze, cat_eye=b.cat_eye,
    )  # fmt: skip


def focus_track(
    info: MediaInfo,
    focus: str | None,
    focus_file: Path | None,
    duration: Fraction,
    focus_points: Sequence[str] = (),
) -> FocusTrack:
    """The clip's focus keyframes: `--focus` text or `--focus-file`, with the `--focus-point`
    keys (`X,Y@TIME`) merged in by time; by default the subject at the centre of the first
    frame, tracked.

    Raises:
        InputError: both `focus` and `focus_file`, bad keyframes (named by index and time), a
            bad focus point or two keys at one time (named by value).
    """
    video = info.video
    rate = video.average_rate if video is not None else None
    if focus is not None and focus_file is not None:
        raise InputError("give focus keyframes with --focus or --focus-file, not both.")
    track = None
    if focus_file is not None:
        track = FocusTrack.from_file(focus_file, rate, duration)
    elif focus is not None:
        track = FocusTrack.from_text(focus, rate, duration)
    if focus_points:
        return merge_focus_points(track, focus_points, rate, duration)
    if track is not None:
        return track
    # No keyframes: focus on the subject at the centre of the first frame and follow it.
    w, h = video.display_width, video.display_height
    return FocusTrack((FocusKey(at=0.0, point=((w - 1) / 2, (h - 1) / 2)),), rate, duration)


@dataclass(frozen=True)
class BokehLook:
    """How the bokeh is rendered, resolved from the `bokeh` and `lens` options.

    Attributes:
        settings: aperture and highlights for BokehNet (the style's, when one is described).
        lens: the lens options, with the style's f-number when it sets one.
        strength_scale: multiplier of the blur from the style (1.0 without one).
        fill: the learned fill net, or None for the classical fill.
        notes: human-readable decisions (style understood, fill on/off).
    """

    settings: RenderSettings
    lens: LensOptions
    strength_scale: float
    fill: FillNet | None
    notes: list[str]


def bokeh_look(config: Config) -> BokehLook:
    """Resolve the text style, the aperture and the learned fill into one look.

    Raises:
        InputError: a style description that names nothing known.
    """
    notes: list[str] = []
    strength_scale = 1.0
    lens = config.lens
    quality = QUALITY[config.bokeh.quality]
    settings = RenderSettings(
        aperture=_aperture(config),
        highlight_gain=config.bokeh.highlight_gain,
        highlight_threshold=config.bokeh.highlight_threshold,
        **quality,
    )
    if config.bokeh.style:
        from vidrefocus.styles import style_from_text

        match = style_from_text(config.bokeh.style)
        style = match.style
        settings = RenderSettings(
            aperture=style.aperture,
            highlight_gain=style.highlight_gain,
            highlight_threshold=style.highlight_threshold,
            **quality,
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
    if config.bokeh.quality != "full":
        notes.append(f"bokeh quality: {config.bokeh.quality} (coarser layers, for drafts)")
    return BokehLook(settings, lens, strength_scale, fill, notes)


def _check_distinct(path: Path, pts: list[int], time_base: Fraction) -> None:
    """Refuse frames that share a pts: focus is keyed by time, so they cannot be told apart."""
    for a, b in itertools.pairwise(pts):
        if a == b:
            raise InputError(
                f"{path}: pts {b} does not increase (two frames have it, at "
                f"{float(b * time_base):g} s); the input's timestamps are broken. Remux it "
                "with fresh ones, e.g. ffmpeg -fflags +genpts -i IN -c copy OUT."
            )


def open_depth_sequence(config: Config, frame_count: int, video: VideoInfo) -> DepthSequence:
    """The depth sequence `depth.path` names, checked against the footage.

    Raises:
        InputError: a missing or malformed sequence, or one of another frame count.
    """
    units = sequence_units(config.depth.path, config.depth.units)
    return DepthSequence(
        config.depth.path,
        units=config.depth.units,
        near_is_bright=config.depth.near_is_bright,
        frame_count=frame_count,
        size=(video.display_width, video.display_height),
        # 256 steps of metric depth (mm, m or 1/m) are a broken export, never intended.
        expect_16bit=units != "relative",
    )


def sequence_stabilizer(config: Config, depth: DepthSequence) -> DepthStabilizer | None:
    """The temporal filter for a depth sequence (None when `depth.stabilize` is off)."""
    # A user's sequence is taken as aligned with its frames: snapping the edges of an
    # accurate map can only move right pixels (on a noisy synthetic sequence it raised AbsRel
    # from 0.013 to 0.018), so it gets the temporal filter only. Estimated depth arrives
    # here already stabilised and edge-aligned (`prepare_depth`).
    if not config.depth.stabilize:
        return None
    return DepthStabilizer(metric=depth.metric, settings=StabilizeSettings(edges=False))


FocusResult = tuple[list[FocusState], dict[int, list[tuple[float, float]]], list[str]]
_FOCUS_PLAN_VERSION = 1


def _resolve_focus(
    input_path: Path, config: Config, track: FocusTrack, times: list[Fraction],
    depth: DepthSequence,
) -> FocusResult:  # fmt: skip
    """Every frame's focus: track each point key's subject over the clip, then read the depth
    under it. The whole-clip part of planning: (states, tracks, notes)."""
    notes: list[str] = []
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

    # The keys either side of a frame both read its map: read each map once (a full-size
    # PNG or EXR decode, the most expensive part of planning after decoding the video).
    @functools.lru_cache(maxsize=2)
    def depth_map(frame: int) -> Tensor:
        return depth[frame][0]

    def point_depth(key_index: int, frame: int) -> float:
        x, y = tracks[key_index][frame]
        return depth_at_point(depth_map(frame), x, y)

    states = track.resolve(times, point_depth if tracks else None, metric=depth.metric)
    return states, tracks, notes


def write_focus_plan(
    path: Path,
    input_path: Path,
    config: Config,
    *,
    focus: str | None = None,
    focus_file: Path | None = None,
    focus_points: Sequence[str] = (),
) -> Path:
    """Resolve the focus of every frame once and save it for `plan_refocus(focus_plan=...)`.

    A chunked job's driver calls this, so its workers read the focus of each frame instead of
    each tracking the focus point over the whole clip and reading the depth under it (work
    that grows with the clip and was repeated by every worker).

    Args:
        path: the JSON file to write (atomically), in the job's work folder.
        input_path, config, focus, focus_file, focus_points: as for `plan_refocus`; the
            depth must already be prepared (`prepare_depth`) when it is estimated.
    Returns:
        `path`.
    Raises:
        InputError: as `plan_refocus`.
    """
    from vidrefocus.runtime.manifest import write_json_atomic

    scene = _scene(input_path, config, focus, focus_file, focus_points)
    states, tracks, notes = _resolve_focus(
        input_path, scene.config, scene.track, scene.times, scene.depth
    )
    write_json_atomic(path, {
        "version": _FOCUS_PLAN_VERSION,
        "frames": len(states),
        "states": [asdict(s) for s in states],
        "tracks": {str(i): [list(p) for p in points] for i, points in tracks.items()},
        "notes": notes,
    })  # fmt: skip
    return path


def load_focus_plan(path: Path, frames: int) -> FocusResult | None:
    """A plan saved by `write_focus_plan` for a clip of `frames` frames, or None when there
    is none (or it is unreadable or for another clip: the caller then resolves the focus)."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("version") != _FOCUS_PLAN_VERSION or data.get("frames") != frames:
            log.warning("%s: a focus plan for another clip; resolving the focus again.", path)
            return None
        states = [FocusState(**s) for s in data["states"]]
        tracks = {int(i): [(float(x), float(y)) for x, y in p] for i, p in data["tracks"].items()}
        notes = [str(n) for n in data["notes"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as err:
        log.warning("%s: unreadable focus plan (%s); resolving the focus again.", path, err)
        return None
    return states, tracks, notes


@dataclass(frozen=True)
class _Scene:
    """What planning reads from a clip before any stage is built."""

    pts: list[int]
    times: list[Fraction]
    track: FocusTrack
    config: Config  # with the estimated depth's cache, when depth is estimated
    depth_notes: list[str]
    depth: DepthSequence


def _scene(
    input_path: Path, config: Config, focus: str | None, focus_file: Path | None,
    focus_points: Sequence[str],
) -> _Scene:  # fmt: skip
    reader = VideoReader(input_path, fps=config.input.sequence_rate)
    info, video = reader.info, reader.video
    if info.is_image_sequence:  # a missing image is a gap in time, not a frame
        pts = list(open_sequence(input_path, config.input.sequence_rate).pts)
    else:
        pts = frame_pts(input_path)
        _check_distinct(input_path, pts, video.time_base)
    times = [p * video.time_base for p in pts]
    duration = video.duration_s or (times[-1] if times else Fraction(0))
    track = focus_track(info, focus, focus_file, duration, focus_points)
    if config.depth.path is None:
        # Estimated depth is relative: refuse distance keys now, not after the depth pass.
        track.check_depth_kind(metric=False)
        # --depth auto: estimate (or reuse cached) depth for the whole clip first, so the
        # focus of a tracked point can be read before any frame is rendered.
        config, depth_notes = prepare_depth(input_path, config)
    else:
        depth_notes = [choose_depth(config).note]
    depth = open_depth_sequence(config, len(pts), video)
    return _Scene(pts, times, track, config, depth_notes, depth)


def plan_refocus(
    input_path: Path,
    config: Config,
    *,
    focus: str | None = None,
    focus_file: Path | None = None,
    focus_points: Sequence[str] = (),
    focus_plan: Path | None = None,
) -> RefocusPlan:
    """Resolve depth, focus (tracking point keys) and the look into stages.

    Args:
        input_path: the footage.
        config: validated options; `deblur.enabled` "auto" passes sharp frames through.
        focus: keyframes as `--focus` text.
        focus_file: keyframes as a YAML, JSON or CSV file.
        focus_points: `--focus-point` values (`X,Y@TIME`), merged with the keys by time.
        focus_plan: every frame's focus, resolved once by `write_focus_plan` (a chunked
            job's workers); when missing or for another clip the focus is resolved here.
    Raises:
        InputError: bad depth (or missing model weights), bad keyframes, an unknown style.
    """
    depth_stabilized = config.depth.stabilize  # estimated depth: already, in its cache
    scene = _scene(input_path, config, focus, focus_file, focus_points)
    pts, times, config, depth = scene.pts, scene.times, scene.config, scene.depth
    depth_notes = scene.depth_notes
    notes: list[str] = [*depth_notes]
    stabilizer = sequence_stabilizer(config, depth)
    # Deblur first, so depth alignment, focus and bokeh all see the all-in-focus frames.
    first: list[Stage] = []
    if config.deblur.enabled:
        deblur = deblur_stages(input_path, config, auto=config.deblur.enabled == "auto")
        first, notes = deblur.stages, [*notes, *deblur.notes]
    loaded = load_focus_plan(focus_plan, len(times)) if focus_plan is not None else None
    if loaded is not None:
        states, tracks, track_notes = loaded
    else:
        states, tracks, track_notes = _resolve_focus(input_path, config, scene.track, times, depth)
    notes.extend(track_notes)
    look = bokeh_look(config)
    notes.extend(look.notes)
    stages: list[Stage] = [
        *first,
        DepthStage(depth, pts, stabilizer),
        FocusStage(
            dict(zip(pts, states, strict=True)),
            look.lens,
            metric=depth.metric,
            strength_px=config.bokeh.strength,
            strength_scale=look.strength_scale,
        ),
        BokehStage(BokehNet(look.settings, look.fill)),
    ]
    return RefocusPlan(
        stages, dict(zip(pts, states, strict=True)), times, notes, tracks,
        metric=depth.metric, depth_source=depth_notes[0].removeprefix("depth: "),
        depth_stabilized=depth_stabilized,
    )  # fmt: skip


def refocus(
    input_path: Path,
    output_path: Path,
    config: Config,
    *,
    focus: str | None = None,
    focus_file: Path | None = None,
    focus_points: Sequence[str] = (),
    exports: ExportRequest | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[JobResult, RefocusPlan]:
    """Refocus a clip: the whole editor's job, in this process.

    Args:
        input_path: the footage.
        output_path: the video to write.
        config: validated options.
        focus: keyframes as `--focus` text.
        focus_file: keyframes as a YAML, JSON or CSV file.
        focus_points: `--focus-point` values (`X,Y@TIME`).
        exports: per-frame depth, blur radius and all-in-focus folders to write too
            (`vidrefocus.exports`); each appears whole at the end, or not at all.
        overwrite: replace an existing output (and export folders).
        progress: called after each batch.
    Returns:
        What was written (its time: the whole job, the depth pass included), and the plan
        (focus states and decisions) for reporting; its notes end with how many frames
        DeblurNet replaced (auto) and what each export holds.
    Raises:
        InputError: a refused output or export folder (before any work), bad depth or keys.
        ProcessingError: a stage or the encoder failed; nothing is left at the outputs.
    """
    start = time.perf_counter()
    inputs = [Path(input_path)]
    if config.depth.path is not None:
        inputs.append(Path(config.depth.path))
    if focus_file is not None:
        inputs.append(Path(focus_file))
    # Refuse a bad output path or export folder before the tracking pre-pass, not after it.
    check_output_path(output_path, inputs, overwrite=overwrite)
    check_input_memory("refocus", input_path, config)  # before depth, models or exports
    with ExitStack() as stack:
        writer = None
        if exports is not None and exports.folders():
            writer = stack.enter_context(ExportWriter(
                exports, input_path, inputs=[*inputs, Path(output_path)],
                rate=config.input.sequence_rate, overwrite=overwrite,
            ))  # fmt: skip
        plan = plan_refocus(
            input_path, config, focus=focus, focus_file=focus_file, focus_points=focus_points
        )
        if writer is not None:
            writer.describe_depth(
                metric=plan.metric, source=plan.depth_source, stabilized=plan.depth_stabilized
            )
        deblurred = 0

        def on_batch(batch: FrameBatch) -> None:
            nonlocal deblurred
            if "deblurred" in batch.extras:
                deblurred += int(batch.extras["deblurred"].sum())
            if writer is not None:
                writer.write(batch)

        result = run_local(
            input_path, output_path, plan.stages, config, overwrite=overwrite,
            progress=progress, on_batch=on_batch,
        )  # fmt: skip
    if config.deblur.enabled == "auto":
        plan.notes.append(
            f"DeblurNet auto: deblurred {deblurred} of {result.frames} frames "
            f"({result.frames - deblurred} already sharp, passed through unchanged)"
        )
    if writer is not None:
        plan.notes.extend(writer.notes())
    # Frames per second of the whole job, as a user times it: depth estimation, tracking and
    # planning count, not the render pass alone.
    return replace(result, elapsed_s=time.perf_counter() - start), plan
