"""`vidrefocus bench memory`: peak memory of a refocus job against the clip's length.

The runtime benchmark's job (depth -> focus -> BokehNet on a synthetic clip with a keyframe
every second, 1 s chunks) runs the way `vidrefocus refocus` runs by default, on one embedded
Ray worker per core, over a clip and over one 6x as long whose content repeats the first's:
the near square crosses the frame once every `seconds`. The chunks where the square pulls
focus need the most memory; a square six times slower would fill six times as many chunks,
and two workers would meet them at the same time, a difference of content, not of length.
The blur is kept at the runtime benchmark's size in pixels whatever the frame size (the
f-number grows with the width) and the bokeh runs at `fast` quality: memory depends on frame
size and chunk length, not on how long each frame takes, and at f/8 and full quality a 60 s
1080p clip takes over 3 hours on two cores. The peak is that of the whole process tree (the
driver, Ray's own processes and every worker), sampled every 0.1 s. Goal (issue #10): flat
with length. The runtime benchmark has the same row at its own size among its speed rows;
this one runs only the two jobs, so it can afford 1080p.
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
    from vidrefocus.eval.bench import SIZES
    from vidrefocus.eval.bench_runtime import _config, make_runtime_clip, peak_job
    from vidrefocus.runtime.factory import refocus_factory
    from vidrefocus.runtime.pool import machine_cores, ray_session

    del repeat
    cores = len(machine_cores())
    # f/8 at 360p (the runtime benchmark's blur), scaled so the blur in px stays the same.
    # (an unknown size is refused where the clip is made)
    f_number = 8.0 * SIZES.get(size, SIZES["360p"])[0] / SIZES["360p"][0]
    long_seconds = LENGTH_FACTOR * seconds
    report = BenchReport(
        title=f"memory: refocus job, {size}, f/{f_number:.3g}, bokeh quality fast, {seconds:g} s "
        f"vs {long_seconds:g} s clip, {cores} Ray workers (ratio: peak memory)",
        command=f"vidrefocus bench memory --size {size} --seconds {seconds:g}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-"))
    try:
        factory = refocus_factory()
        peaks = []
        with ray_session(None, cores):
            for length in (seconds, long_seconds):
                clip, depth = make_runtime_clip(work, size, length, period=seconds)
                config = _config(
                    depth, overrides={"lens.f_number": f_number, "bokeh.quality": "fast"}
                )
                res, peak = peak_job(clip, work / "out.mp4", config, factory, cores)
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
