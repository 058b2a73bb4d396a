"""`vidrefocus bench runtime`: overlap of decode/stages/encode, scaling over Ray workers, memory.

The pipeline is the editor's refocus (depth -> focus -> BokehNet at f/8, no learned fill) on a
synthetic clip with a keyframe every second and a synthetic depth sequence, so every row runs
real stages through the real runtime.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from vidrefocus.config import Config, load_config
from vidrefocus.errors import InputError
from vidrefocus.eval.bench import SIZES, BenchReport, BenchRow
from vidrefocus.io.writer import ffmpeg_exe

if TYPE_CHECKING:
    from vidrefocus.runtime.factory import StageFactory
    from vidrefocus.runtime.local import JobResult

__all__ = [
    "PeakRss",
    "TimedIterator",
    "make_runtime_clip",
    "overlap_rows",
    "peak_job",
    "run",
    "tree_rss_bytes",
]

log = logging.getLogger(__name__)

FPS = 24
# Chunks of one keyframe interval: a 10 s clip makes 10 chunks, enough to keep every worker
# of a small machine busy to the end (the speed-up compares the same plan at each N).
CHUNK_SECONDS = 1.0
T = TypeVar("T")


def make_runtime_clip(
    folder: Path, size: str, seconds: float, period: float | None = None
) -> tuple[Path, Path]:
    """A clip with a keyframe every second and audio, and a matching depth folder.

    The video is made by the ffmpeg CLI (independent of the code measured); the depth maps
    (16-bit PNG, millimetres) are a left-to-right ramp from 1 m to 8 m with a near square
    (0.8 m) that moves across the frame, so focus and blur change over the clip.

    Args:
        folder: where the clip and the depth folder go.
        size: frame size (360p, 720p, 1080p).
        seconds: the clip's length.
        period: the square crosses the frame once every `period` seconds (default: once over
            the clip). A longer clip with the same period repeats the shorter one's content,
            so the two differ in length only: a slower square spends more chunks where it
            pulls focus and blur is widest, and those chunks need the most memory.

    Returns:
        (clip, depth folder).
    Raises:
        InputError: an unknown size.
    """
    if size not in SIZES:
        raise InputError(f"unknown size {size!r}; use one of {', '.join(SIZES)}.")
    w, h = SIZES[size]
    clip = folder / f"clip-{size}-{seconds:g}s.mp4"
    video = f"testsrc2=s={w}x{h}:r={FPS}:d={seconds},noise=alls=12:allf=t,format=yuv420p"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", video,
            "-f", "lavfi", "-i", f"sine=f=440:d={seconds}:sample_rate=48000",
            "-c:v", "libx264", "-crf", "16", "-preset", "veryfast",
            "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0",
            "-c:a", "aac", "-shortest", str(clip),
        ],
        check=True,
    )  # fmt: skip
    depth = folder / f"depth-{size}-{seconds:g}s"
    depth.mkdir()
    ramp = np.linspace(1000, 8000, w, dtype=np.float32)[None, :].repeat(h, 0)
    side = h // 4
    frames = round(seconds * FPS)
    cycle = round(period * FPS) if period is not None else frames
    for i in range(frames):
        mm = ramp.copy()
        x = int((w - side) * (i % cycle) / max(cycle - 1, 1))
        mm[h // 2 - side // 2 : h // 2 + side // 2, x : x + side] = 800
        cv2.imwrite(str(depth / f"{i:06d}.png"), mm.astype(np.uint16))
    return clip, depth


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(proc.name))
    return tree


def tree_rss_bytes(root: int) -> int:
    """Resident memory of process `root` and all its descendants, from /proc (Linux).

    With embedded Ray the driver's descendants are Ray's own processes and every worker, so
    this is the whole job's footprint (shared pages are counted once per process). A child
    that has not yet run `exec` (its command line is still its parent's) is skipped: it shares
    its parent's memory (vfork, or copy-on-write), and a sample that fell in that window would
    count the parent twice. A chunk worker starting its encoder is such a child for a few
    milliseconds, longer while the cores are busy.
    """
    tree = _children()
    todo: list[tuple[int, bytes | None]] = [(root, None)]
    total = 0
    while todo:
        pid, parent_cmdline = todo.pop()
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        todo.extend((child, cmdline) for child in tree.get(pid, []))
        if cmdline == parent_cmdline:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class PeakRss:
    """Samples `tree_rss_bytes(os.getpid())` in a thread while its `with` block runs."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(os.getpid()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class TimedIterator(Iterator[T]):
    """Wraps an iterator and adds up the time spent producing its items."""

    def __init__(self, items: Iterator[T]) -> None:
        self.items = items
        self.seconds = 0.0

    def __next__(self) -> T:
        start = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.seconds += time.perf_counter() - start


def _config(
    depth: Path, *, pinned: bool = False, overrides: dict[str, object] | None = None
) -> Config:
    """The job's options; `pinned`: every Ray worker on one core of its own; `overrides`:
    further dotted config keys (e.g. {"bokeh.quality": "fast"})."""
    # f/8: blur of a few pixels, so the stages cost about what decode and encode cost; a
    # balanced pipeline is the hard case for overlap (at f/2 the bokeh alone dominates).
    pin = {"runtime.cpus_per_worker": 1, "runtime.pin_cpus": True} if pinned else {}
    return load_config(overrides={
        "depth.path": str(depth),
        "lens.f_number": 8.0,
        "bokeh.learned_fill": False,
        "runtime.chunk_seconds": CHUNK_SECONDS,
        **pin,
        **(overrides or {}),
    })  # fmt: skip


def _parts(clip: Path, out: Path, config: Config) -> tuple[float, float, float, int]:
    """Decode, stages and encode one after another, each timed alone: (s, s, s, frames)."""
    from vidrefocus.io.reader import VideoReader
    from vidrefocus.io.writer import VideoWriter
    from vidrefocus.runtime.factory import refocus_stages
    from vidrefocus.runtime.local import batch_frames
    from vidrefocus.stages import run_stages

    stages = refocus_stages(clip, config).stages
    reader = VideoReader(clip)
    writer = VideoWriter(out, reader.info, config.encode, overwrite=True)
    decode = TimedIterator(iter(reader))
    t_stages = t_encode = 0.0
    frames = 0
    for stage in stages:
        stage.reset()
    with writer:
        for batch in batch_frames(decode, config.runtime.batch_size):
            start = time.perf_counter()
            done = run_stages(stages, batch)
            t_stages += time.perf_counter() - start
            start = time.perf_counter()
            for rgb, pts in zip(done.frames, done.pts, strict=True):
                writer.write(rgb, pts)
            t_encode += time.perf_counter() - start
            frames += len(done.pts)
        start = time.perf_counter()
    t_encode += time.perf_counter() - start  # the encoder's flush and the mux, on close
    return decode.seconds, t_stages, t_encode, frames


def peak_job(
    clip: Path, out: Path, config: Config, factory: StageFactory, workers: int
) -> tuple[JobResult, int]:
    """Run a chunked job on `workers` Ray workers: (its result, peak bytes of the tree)."""
    from vidrefocus.runtime.driver import run_job

    with PeakRss() as rss:
        res = run_job(clip, out, config, factory=factory, workers=workers, overwrite=True)
    return res, rss.peak


def overlap_rows(clip: Path, out: Path, config: Config, repeat: int) -> list[BenchRow]:
    """Decode, stages and encode each alone, then the pipeline (`run_local`: decode thread ->
    stages -> encode thread) with its I/O at `runtime.io_nice` and at the stages' priority
    (io_nice 0); `repeat` rounds, the two pipelines' order alternating so that drift in the
    machine's speed falls on both. Each row keeps its best round; the notes give every
    round's ratio to that round's slowest part (goal <= 1.15x)."""
    from vidrefocus.runtime.factory import refocus_factory
    from vidrefocus.runtime.local import run_local

    stages = refocus_factory().build(clip, config).stages
    nice = config.runtime.io_nice
    variants = {
        nice: config,
        0: config.model_copy(update={"runtime": config.runtime.model_copy(update={"io_nice": 0})}),
    }
    parts: list[tuple[float, float, float, int]] = []
    piped: dict[int, list[float]] = {n: [] for n in variants}
    for i in range(repeat):
        parts.append(_parts(clip, out, config))
        for n in list(variants)[:: 1 if i % 2 == 0 else -1]:
            res = run_local(clip, out, stages, variants[n], overwrite=True)
            piped[n].append(res.elapsed_s)
    t_decode, t_stages, t_encode, frames = min(parts, key=lambda p: sum(p[:3]))
    slowest = max(t_decode, t_stages, t_encode)
    rows = []
    for name, t in (("decode alone", t_decode), ("stages alone", t_stages),
                    ("encode alone", t_encode)):  # fmt: skip
        note = "slowest stage (baseline)" if t == slowest else "one after another"
        rows.append(BenchRow(name, t, frames, note, ratio=t / slowest))
    labels = {nice: f"I/O threads nice +{nice} (runtime.io_nice)"}
    labels[0] = "I/O at the stages' priority (io_nice 0)"
    for n in variants:
        rounds = " ".join(f"{t / max(p[:3]):.2f}x" for t, p in zip(piped[n], parts, strict=True))
        best = min(piped[n])
        rows.append(BenchRow(
            f"pipeline (decode thread -> stages -> encode), {labels[n]}", best, frames,
            f"goal <= 1.15x slowest; each round against its own parts: {rounds}; sum of parts "
            f"{t_decode + t_stages + t_encode:.2f} s", ratio=best / slowest,
        ))  # fmt: skip
    return rows


# Local worker counts of the scaling rows (issue #11): on a machine with fewer cores the
# larger counts are oversubscribed, which the rows show rather than skip.
WORKERS = (1, 2, 4)


def run(size: str = "720p", seconds: float = 10.0, repeat: int = 2) -> BenchReport:
    """Measure the runtime on a refocus job.

    Rows: decode, stages and encode each alone (one after another, in this process); the
    pipeline (`run_local`: decode thread -> stages -> encode) against the slowest of them
    (goal <= 1.15x); chunked runs on N = 1, 2, 4 embedded Ray workers sharing the cores (as
    users run them), then on N <= cores workers bound to one core each, on the clip and on one
    3x as long (goal: speed-up >= 0.9 N); peak resident memory of the driver and all Ray
    processes for the clip and for a clip 6x as long (goal: flat).

    Args:
        size: frame size (360p, 720p, 1080p).
        seconds: clip length; the memory row also runs a clip 6x as long.
        repeat: runs of the single-process rows (the best is kept); Ray rows run once.
    """
    from vidrefocus.runtime.factory import refocus_factory
    from vidrefocus.runtime.pool import machine_cores, ray_session

    cores = len(machine_cores())
    report = BenchReport(
        title=f"runtime: refocus pipeline, {size}, {seconds:g} s clip, {cores} cores",
        command=f"vidrefocus bench runtime --size {size} --seconds {seconds:g} --repeat {repeat}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-"))
    try:
        clip, depth = make_runtime_clip(work, size, seconds)
        config = _config(depth)
        out = work / "out.mp4"
        report.rows.extend(overlap_rows(clip, out, config, repeat))

        long_clip, long_depth = make_runtime_clip(work, size, 6 * seconds, period=seconds)
        mid = make_runtime_clip(work, size, 3 * seconds)
        factory = refocus_factory()
        with ray_session(None, max(WORKERS)):
            one = 0.0
            peak_short = 0
            # As users run it: the cores shared among the workers (one worker uses them all).
            for n in WORKERS:
                res, peak = peak_job(clip, out, config, factory, n)
                one = one or res.elapsed_s
                if n == cores:
                    peak_short = peak
                threads = max(1, cores // n)
                report.rows.append(BenchRow(
                    f"{n} Ray worker(s) x {threads} CPU, {res.chunks} chunks", res.elapsed_s,
                    res.frames,
                    f"speed-up {one / res.elapsed_s:.2f}x; peak RSS {peak / 2**30:.2f} GiB",
                    ratio=res.elapsed_s / one,
                ))  # fmt: skip
            # The scaling goal's measure: each worker bound to one core of its own, so one
            # worker cannot borrow the cores the others would use; on the clip and on one 3x
            # as long, where a worker's start-up and the stitch are a smaller part of the job.
            for length, (src, src_depth) in ((seconds, (clip, depth)), (3 * seconds, mid)):
                one_pinned = 0.0
                for n in (n for n in WORKERS if n <= cores):
                    res, _ = peak_job(src, out, _config(src_depth, pinned=True), factory, n)
                    one_pinned = one_pinned or res.elapsed_s
                    report.rows.append(BenchRow(
                        f"{n} Ray worker(s) bound to a core each, {length:g} s clip, "
                        f"{res.chunks} chunks", res.elapsed_s, res.frames,
                        f"speed-up {one_pinned / res.elapsed_s:.2f}x (goal >= {0.9 * n:.1f}x)",
                        ratio=res.elapsed_s / one,
                    ))  # fmt: skip
            res, peak = peak_job(long_clip, work / "long.mp4", _config(long_depth), factory, cores)
            report.rows.append(BenchRow(
                f"{cores} Ray worker(s), {6 * seconds:g} s clip, {res.chunks} chunks",
                res.elapsed_s, res.frames,
                f"peak RSS {peak / 2**30:.2f} GiB, {peak / max(peak_short, 1):.2f}x the "
                f"{seconds:g} s clip's (goal: flat)",
                ratio=res.elapsed_s / one,
            ))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
