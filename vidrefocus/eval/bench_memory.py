"""`vidrefocus bench memory`: peak memory of a refocus job against the clip's length.

The runtime benchmark's job (depth -> focus -> BokehNet at f/8 on a synthetic clip with a
keyframe every second, 1 s chunks) runs the way `vidrefocus refocus` runs by default, on one
embedded Ray worker per core, over a clip and over one 6x as long. The peak is that of the
whole process tree (the driver, Ray's own processes and every worker), sampled every 0.1 s.
Goal (issue #10): flat with length. The runtime benchmark has the same row at its own size
among its speed rows; this one runs only the two jobs, so it can afford 1080p.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vidrefocus.eval.bench import BenchReport, BenchRow

__all__ = ["run"]

# Memory does not depend on a warm cache: one run per clip.
LENGTH_FACTOR = 6


def run(size: str = "1080p", seconds: float = 10.0, repeat: int = 1) -> BenchReport:
    """Peak memory of the refocus job on a `seconds` clip and on one 6x as long.

    Args:
        size: frame size (360p, 720p, 1080p).
        seconds: the short clip's length.
        repeat: unused (one run per clip); accepted like every benchmark's.
    """
    from vidrefocus.eval.bench_runtime import _config, make_runtime_clip, peak_job
    from vidrefocus.runtime.factory import refocus_factory
    from vidrefocus.runtime.pool import machine_cores, ray_session

    del repeat
    cores = len(machine_cores())
    long_seconds = LENGTH_FACTOR * seconds
    report = BenchReport(
        title=f"memory: refocus job, {size}, {seconds:g} s vs {long_seconds:g} s clip, "
        f"{cores} Ray workers (ratio: peak memory)",
        command=f"vidrefocus bench memory --size {size} --seconds {seconds:g}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-"))
    try:
        factory = refocus_factory()
        peaks = []
        with ray_session(None, cores):
            for length in (seconds, long_seconds):
                clip, depth = make_runtime_clip(work, size, length)
                res, peak = peak_job(clip, work / "out.mp4", _config(depth), factory, cores)
                peaks.append(peak)
                note = f"peak RSS {peak / 2**30:.3f} GiB"
                if len(peaks) == 2:
                    note += f", {peak / peaks[0]:.3f}x the {seconds:g} s clip's (goal: flat)"
                # The ratio column is the peak memory's against the short clip's, not time's.
                report.rows.append(BenchRow(
                    f"{length:g} s clip, {res.chunks} chunks", res.elapsed_s, res.frames, note,
                    ratio=peak / peaks[0],
                ))  # fmt: skip
                shutil.rmtree(depth)
                clip.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
