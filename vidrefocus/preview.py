"""`vidrefocus preview`: a few frames refocused by random access, as a contact sheet.

A preview decodes only the frames it shows (`RandomAccessReader`: a seek to the keyframe
before each, then decoding up to it), so it takes seconds on a clip of any length. Each row
of the sheet is one frame: input | all-in-focus | depth | result, under a caption with its
time and focus; the focus curve is drawn beneath, with the preview times marked.

- Default times: 4 frames, at the middle of each quarter of the clip. Keyframe times are not
  added (they show as dotted lines on the focus curve); name them in `at` to see them.
- Each frame is rendered as the first frame of a chunk (`preview_render`): depth estimated
  on the shown frames only, point keys tracked only between their keyframe and the shown
  frames. With point keys the focus curve shows the shown frames only (the rest of the
  curve would need the whole clip tracked); without, it is the whole clip's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import torch

from vidrefocus.config import Config
from vidrefocus.depth import depth_colour_map
from vidrefocus.errors import InputError
from vidrefocus.focus_plot import plot_focus
from vidrefocus.io.paths import check_output_path
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.memory import check_memory
from vidrefocus.preview_render import RenderedFrame, build_pipeline, describe_focus
from vidrefocus.preview_sheet import (
    PLOT_HEIGHT_PX,
    SheetRow,
    compose_sheet,
    plot_image,
    sheet_size,
    write_html,
    write_png,
)
from vidrefocus.refocus import focus_track
from vidrefocus.timeline import parse_time

__all__ = ["DEFAULT_FRAMES", "PreviewResult", "preview", "preview_times"]

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 4


@dataclass
class PreviewResult:
    """What a preview wrote and what it cost.

    Attributes:
        output: the sheet PNG.
        html: the before/after page, if one was asked for.
        frames: index of each previewed frame, top to bottom.
        times_s: each previewed frame's time (pts x time base).
        elapsed_s: wall time of the whole preview, models and writing included.
        frames_decoded: video frames decoded, those decoded to reach a frame after a
            keyframe and those tracked included.
        frames_total: frames of the clip.
        size: (width, height) of the sheet in pixels.
        notes: human-readable decisions (depth, tracking, deblur, look).
    """

    output: Path
    html: Path | None
    frames: list[int]
    times_s: list[Fraction]
    elapsed_s: float
    frames_decoded: int
    frames_total: int
    size: tuple[int, int]
    notes: list[str] = field(default_factory=list)


def preview_times(
    at: str | Sequence[str | float] | None, reader: RandomAccessReader, duration_s: Fraction
) -> list[tuple[str, int]]:
    """Resolve time specs to frames: (what was asked, frame index), in time order, once each.

    Times use the syntax of focus keyframes (`timeline.parse_time`) and name the frame on
    screen then (`RandomAccessReader.index_at`); two specs naming one frame give one row.

    Args:
        at: comma-separated specs ("0.5s, 2s, f60, 00:00:03:00"), a list of specs, or None
            for `DEFAULT_FRAMES` frames at the middle of equal parts of the clip.
        reader: the clip (its frame times).
        duration_s: the clip's duration; later times are refused.
    Returns:
        (spec, index) pairs; the spec is "" for the default times.
    Raises:
        InputError: no time, a malformed time, or one after the end of the clip.
    """
    n = len(reader)
    if at is None:
        count = min(DEFAULT_FRAMES, n)
        return [("", (2 * k + 1) * n // (2 * count)) for k in range(count)]
    specs = [s.strip() for s in at.split(",")] if isinstance(at, str) else list(at)
    specs = [s for s in specs if s != ""]
    if not specs:
        raise InputError("--at names no time; give e.g. --at '0.5s, 2s, f60, 00:00:03:00'.")
    rate = reader.video.average_rate
    chosen: dict[int, str] = {}
    for spec in specs:
        try:
            t = parse_time(spec, rate)
        except InputError as err:
            raise InputError(f"--at {spec!r}: {err}") from err
        if t > duration_s:
            raise InputError(
                f"--at {spec!r} = {float(t):g} s is after the end of the clip "
                f"({float(duration_s):g} s); give a time inside it."
            )
        chosen.setdefault(reader.index_at(t), str(spec))
    return sorted(((spec, i) for i, spec in chosen.items()), key=lambda item: item[1])


def _check_outputs(
    output_png: Path, html: Path | None, inputs: list[Path], overwrite: bool
) -> None:
    check_output_path(output_png, inputs, overwrite=overwrite)
    if output_png.suffix.lower() != ".png":
        raise InputError(f"{output_png}: the sheet is a PNG; give it a .png name.")
    if html is not None:
        if html.resolve() == output_png.resolve():
            raise InputError(f"{html}: the page and the sheet need different names.")
        check_output_path(html, inputs, overwrite=overwrite)


def _sheet_rows(rendered: list[RenderedFrame], labels: list[str], metric: bool) -> list[SheetRow]:
    """The sheet's rows, every depth map colour-mapped on one scale."""
    maps = torch.stack([item.depth for item in rendered])
    if metric:
        # 1/m has no fixed range: spread the shown frames' own (1st to 99th percentile).
        sample = maps.flatten()[:: max(1, maps.numel() // 100_000)]
        lo, hi = torch.quantile(sample, torch.tensor([0.01, 0.99]))
        maps = (maps - lo) / (hi - lo).clamp_min(1e-6)
    coloured = depth_colour_map(maps)
    rows = []
    for item, label, depth in zip(rendered, labels, coloured, strict=True):
        label = f"{label}   focus {describe_focus(item.state)}"
        rows.append(SheetRow(label, item.input, item.all_in_focus, depth, item.result))
    return rows


def preview(
    input_path: Path,
    output_png: Path,
    config: Config,
    *,
    focus: str | None = None,
    focus_file: Path | None = None,
    focus_points: Sequence[str] = (),
    at: str | Sequence[str | float] | None = None,
    html: Path | None = None,
    overwrite: bool = False,
) -> PreviewResult:
    """Render a few frames (input, all-in-focus, depth, result) and the focus curve.

    Args:
        input_path: a video file or image sequence.
        output_png: the contact sheet to write (.png); one row per frame.
        config: validated options (depth, lens, bokeh, deblur), as for `refocus`.
        focus: focus keyframes as text.
        focus_file: focus keyframes as YAML, JSON or CSV.
        focus_points: point keys as `X,Y@TIME`, merged into the keyframes by time.
        at: the times to show (see `preview_times`).
        html: also write a self-contained before/after page there.
        overwrite: replace existing outputs.
    Returns:
        What was written, which frames, and what it cost.
    Raises:
        InputError: a missing input, an output that is an input or exists, a time outside
            the clip, bad keyframes, depth or style. Nothing is written then.

    Example:
        >>> preview(Path("a.mp4"), Path("sheet.png"), load_config(), at="1s, 3s")  # doctest: +SKIP
    """
    clock = time.perf_counter()
    input_path, output_png = Path(input_path), Path(output_png)
    html = Path(html) if html is not None else None
    inputs = [input_path, *(Path(p) for p in (config.depth.path, focus_file) if p)]
    _check_outputs(output_png, html, inputs, overwrite)

    reader = RandomAccessReader(input_path, fps=config.input.sequence_rate)
    frame_times = [p * reader.time_base for p in reader.pts]
    duration = reader.video.duration_s or frame_times[-1]
    asked = preview_times(at, reader, duration)
    rows = [i for _, i in asked]
    video = reader.video
    check_memory(
        "preview", video.display_width, video.display_height, config, path=input_path,
        frames=len(rows),
    )  # fmt: skip
    track = focus_track(reader.info, focus, focus_file, duration, focus_points)
    pipeline, notes = build_pipeline(config, reader, track, rows)
    needed = {j: None for i in rows for j in pipeline.frames_for(i, len(reader))}
    decoded = {f.index: f for f in reader.at_indices(sorted(needed))}
    rendered = [
        pipeline.render([decoded[j] for j in pipeline.frames_for(i, len(reader))], i, r)
        for r, i in enumerate(rows)
    ]
    labels = [
        f"{spec + ' -> ' if spec else ''}{float(frame_times[i]):.3f} s (frame {i})"
        for spec, i in asked
    ]
    sheet_rows = _sheet_rows(rendered, labels, pipeline.metric)

    h, w = rendered[0].input.shape[-2:]
    size = sheet_size(w, h, len(rows))
    marks = [frame_times[i] for i in rows]
    if pipeline.points:
        curve, curve_times = [item.state for item in rendered], marks
        title = "Focus at the preview frames (tracked keys are resolved there only)"
        notes.append("focus curve: at the preview frames only (keys track points)")
    else:
        curve, curve_times = track.resolve(frame_times, None, metric=pipeline.metric), frame_times
        title = "Focus track (purple: the preview frames)"
    plot = plot_image(
        lambda path: plot_focus(
            curve, curve_times, path, size_px=(size[0], PLOT_HEIGHT_PX), marks_s=marks,
            title=title,
        ),
        (size[0], PLOT_HEIGHT_PX),
    )  # fmt: skip
    titles = (
        "input",
        {True: "all-in-focus (DeblurNet)", "auto": "all-in-focus (DeblurNet auto)"}.get(
            config.deblur.enabled, "all-in-focus = input (no deblur)"
        ),
        "depth (turbo: red = near)",
        "result",
    )
    write_png(compose_sheet(sheet_rows, titles, plot), output_png, inputs, overwrite=overwrite)
    if html is not None:
        write_html(
            sheet_rows, plot, html, [*inputs, output_png],
            title=f"vidrefocus preview: {input_path.name}", overwrite=overwrite,
        )  # fmt: skip
    notes.append(f"decoded {reader.frames_decoded} frames (the clip has {len(reader)})")
    return PreviewResult(
        output=output_png,
        html=html,
        frames=rows,
        times_s=marks,
        elapsed_s=time.perf_counter() - clock,
        frames_decoded=reader.frames_decoded,
        frames_total=len(reader),
        size=size,
        notes=notes,
    )
