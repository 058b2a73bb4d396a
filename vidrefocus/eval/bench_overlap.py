"""`vidrefocus bench overlap`: the runtime benchmark's overlap rows alone, in rounds.

Decode, stages and encode each alone against the pipeline that overlaps them, on the same
refocus job and clip as `vidrefocus bench runtime` (whose Ray rows take many minutes): for
comparing the pipeline's settings, such as `runtime.io_nice`, over several rounds.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vidrefocus.eval.bench import BenchReport
from vidrefocus.eval.bench_runtime import _config, make_runtime_clip, overlap_rows

__all__ = ["run"]


def run(size: str = "360p", seconds: float = 10.0, repeat: int = 3) -> BenchReport:
    """Measure how well the pipeline overlaps decode, stages and encode (goal <= 1.15x the
    slowest alone), with the I/O threads at `runtime.io_nice` and at the stages' priority.

    Args:
        size: frame size (360p, 720p, 1080p).
        seconds: clip length.
        repeat: rounds; each row keeps its best, the notes give every round.
    """
    report = BenchReport(
        title=f"overlap: refocus pipeline, {size}, {seconds:g} s clip",
        command=f"vidrefocus bench overlap --size {size} --seconds {seconds:g} --repeat {repeat}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-"))
    try:
        clip, depth = make_runtime_clip(work, size, seconds)
        report.rows.extend(overlap_rows(clip, work / "out.mp4", _config(depth), repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
