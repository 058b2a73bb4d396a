"""Peak memory of a refocus does not grow with the clip's length (issue #10, resource bounds).

Each run is a fresh `vidrefocus refocus` process whose peak resident set (VmHWM) is read at its
end. The frame size is tiny (the property is about length; the benchmark `bench runtime`
measures real sizes): a 30 s clip (720 frames) against a 10 s one, in one pass and in 0.5 s
chunks (60 against 20 chunks, every chunk with its own decoder and encoder), in the process and
on two Ray workers. With Ray the peak is that of the whole process tree (the CLI, Ray's own
processes and the workers), sampled while the job runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import ffmpeg
from vidrefocus.eval.bench_runtime import tree_rss_bytes

W, H, FPS = 160, 96, 24
_RUN = (
    "import sys\n"
    "from vidrefocus.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "print('HWM_KB', hwm)\n"
    "sys.exit(code)\n"
)


def _clip(folder: Path, seconds: int) -> tuple[Path, Path]:
    clip = folder / f"clip{seconds}.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={FPS}:d={seconds}", "-c:v", "libx264",
           "-g", str(FPS // 2), "-pix_fmt", "yuv420p", str(clip))  # fmt: skip
    depth = folder / f"depth{seconds}"
    depth.mkdir()
    ramp = np.linspace(1000, 8000, W, dtype=np.float32)[None, :].repeat(H, 0).astype(np.uint16)
    for i in range(seconds * FPS):
        cv2.imwrite(str(depth / f"{i:06d}.png"), ramp)
    return clip, depth


def _peak_kb(clip: Path, depth: Path, out: Path, *extra: str) -> int:
    """Peak resident memory (KiB): the process's own peak, or its tree's (Ray) if higher."""
    args = ["refocus", str(clip), "-o", str(out), "--depth", str(depth), "--focus",
            "0s:2m, 9s:6m", "--codec", "ffv1", "-q", *extra]  # fmt: skip
    # Output goes to files, not pipes: a pipe nobody reads while polling could fill and block.
    logs = out.with_suffix(".stdout"), out.with_suffix(".stderr")
    with logs[0].open("w") as stdout, logs[1].open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", _RUN, *args], stdout=stdout, stderr=stderr)
        tree = 0
        while proc.poll() is None:
            tree = max(tree, tree_rss_bytes(proc.pid))
            time.sleep(0.1)
    assert proc.returncode == 0, logs[1].read_text()
    own = int(logs[0].read_text().split("HWM_KB")[1].split()[0])
    return max(own, tree // 1024)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, "0", "2"], ids=["one_pass", "chunks", "ray_workers"])
def test_peak_memory_does_not_grow_with_length(tmp_path: Path, workers: str | None) -> None:
    extra: tuple[str, ...] = ()
    if workers is not None:
        config = tmp_path / "chunks.yaml"
        config.write_text("runtime:\n  chunk_seconds: 0.5\n")
        extra = ("--workers", workers, "--config", str(config))
    short = _peak_kb(*_clip(tmp_path, 10), tmp_path / "short.mkv", *extra)
    long = _peak_kb(*_clip(tmp_path, 30), tmp_path / "long.mkv", *extra)
    # Measured: 363 -> 367 MiB in one pass, 364 -> 364 MiB in 1 s chunks (10 s vs 60 s); on two
    # Ray workers 1770 -> 1800 MiB (whole tree). At this tiny size the workers' arena growth
    # that `pool.worker_env` prevents hardly shows (without the cap, 2091 -> 1743 MiB: Ray's
    # start-up noise dominates); the 360p benchmark shows it, 1.40x -> 1.03x (BENCHMARKS.md).
    # This test guards the bound.
    assert long < 1.15 * short, (short, long)
