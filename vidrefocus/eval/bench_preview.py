"""`vidrefocus bench preview`: a preview of 4 frames against refocusing those 4 frames alone.

The goal (issue #8): a preview of a long clip costs less than 10x refocusing just the frames
it shows, because it decodes only what it needs (a seek to the keyframe before each frame)
instead of the whole clip.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from vidrefocus.config import load_config
from vidrefocus.errors import InputError
from vidrefocus.eval.bench import BenchReport, BenchRow, best_of, parse_size
from vidrefocus.io.writer import ffmpeg_exe

__all__ = ["make_clip", "run"]

log = logging.getLogger(__name__)

# A keyframe every second: what cameras and phones write (0.5 to 2 s). A preview decodes up
# to one GOP per frame, so its cost grows with the GOP; refocusing the frames alone does not.
GOP = 24
FRAMES = 4
# Relative depth (estimated), so a disparity and a strength set the focus.
FOCUS = "0s:d0.5/12px"


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(path: Path, size: str, seconds: float, gop: int = GOP) -> Path:
    """A deterministic H.264 clip (moving test pattern with grain), a keyframe every `gop`.

    Made by the ffmpeg CLI itself, so the input does not depend on the code measured.
    """
    w, h = parse_size(size, 32)
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r=24:d={seconds},noise=alls=12:allf=t",
        "-c:v", "libx264", "-crf", "16", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", str(path),
    )  # fmt: skip
    return path


def _cut(src: Path, indices: list[int], path: Path) -> Path:
    """The frames `indices` of `src` alone, as a clip of their own (same encoder settings)."""
    select = "+".join(f"eq(n\\,{i})" for i in indices)
    _ffmpeg(
        "-i", str(src), "-vf", f"select={select},setpts=N/24/TB", "-fps_mode", "passthrough",
        "-c:v", "libx264", "-crf", "16", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        str(path),
    )  # fmt: skip
    return path


def run(size: str = "1080p", seconds: float = 10.0, repeat: int = 2) -> BenchReport:
    """Time `FRAMES` frames refocused three ways on one clip of `seconds` at `size`.

    Rows: refocusing a clip of just those frames (the baseline: the same depth estimation,
    focus and bokeh, nothing else decoded); `vidrefocus preview` of them on the whole clip,
    focus by a depth key; the same with the default focus (the centre of the first frame,
    tracked: the preview must track from 0 s to each frame); and decoding the whole clip, for
    scale. Depth is estimated (built-in DepthNet), in a fresh cache for every refocus run.

    Args:
        size: frame size, a name of `bench.SIZES` or "WxH".
        seconds: clip length.
        repeat: runs per row, the best is kept.
    Raises:
        InputError: an unknown size, or a clip shorter than `FRAMES` frames.
    """
    from vidrefocus.io.random_access import RandomAccessReader
    from vidrefocus.io.reader import VideoReader
    from vidrefocus.preview import preview, preview_times
    from vidrefocus.refocus import refocus

    parse_size(size, 32)
    if seconds * 24 < FRAMES:
        raise InputError(f"a {seconds:g} s clip has fewer than {FRAMES} frames; give more.")
    report = BenchReport(
        title=f"preview: {FRAMES} frames of a {seconds:g} s {size} clip (H.264, keyframe every "
        f"{GOP} frames) vs refocusing those frames alone",
        command=f"vidrefocus bench preview --size {size} --seconds {seconds:g} --repeat {repeat}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-preview-"))
    try:
        src = make_clip(work / "src.mp4", size, seconds)
        reader = RandomAccessReader(src)
        indices = [i for _, i in preview_times(None, reader, reader.video.duration_s)]
        alone = _cut(src, indices, work / "alone.mp4")
        runs = itertools.count()

        def refocus_alone() -> int:
            # A fresh depth cache each run: the estimate is part of the job being timed.
            cache = work / f"cache{next(runs)}"
            config = load_config(overrides={"depth.cache_dir": str(cache)})
            result, _ = refocus(alone, work / "alone_out.mp4", config, focus=FOCUS, overwrite=True)
            return result.frames

        def preview_of(focus: str | None) -> int:
            result = preview(src, work / "sheet.png", load_config(), focus=focus, overwrite=True)
            decoded[focus] = result.frames_decoded
            return len(result.frames)

        decoded: dict[str | None, int] = {}
        base, frames = best_of(repeat, refocus_alone)
        report.rows.append(
            BenchRow(f"refocus of the {FRAMES} frames alone", base, frames, f"frames {indices}")
        )
        for focus, what in ((FOCUS, "depth key"), (None, "default focus: tracked point")):
            seconds_taken, n = best_of(repeat, lambda focus=focus: preview_of(focus))
            note = f"decoded {decoded[focus]} frames (the clip has {len(reader)})"
            report.rows.append(
                BenchRow(f"preview, {what}", seconds_taken, n, note, seconds_taken / base)
            )
        full, n = best_of(1, lambda: sum(1 for _ in VideoReader(src)))
        report.rows.append(
            BenchRow("decode the whole clip (scale)", full, n, "VideoReader", full / base)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
