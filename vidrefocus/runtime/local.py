"""In-process execution: decode thread -> stages -> encode thread, with bounded queues."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import torch
from torch import Tensor

from vidrefocus.config import Config
from vidrefocus.errors import ProcessingError, VidRefocusError
from vidrefocus.io.reader import DecodedFrame, VideoReader
from vidrefocus.io.writer import VideoWriter
from vidrefocus.stages import FrameBatch, Stage, run_stages

__all__ = [
    "FrameSink",
    "JobResult",
    "Progress",
    "WriteBehind",
    "batch_frames",
    "lower_thread_priority",
    "prefetch",
    "run_local",
]

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(frozen=True)
class Progress:
    """What a progress callback is told after each batch."""

    frames_done: int
    frames_total: int
    elapsed_s: float


class FrameSink(AbstractContextManager, Protocol):
    """Where processed frames go: `VideoWriter`, `ImageWriter`. Leaving its `with` block
    normally finishes the output; leaving it by an exception removes what was written."""

    def write(self, rgb: Tensor, pts: int) -> None:
        """Store one (3, H, W) display-referred frame with its pts."""


@dataclass(frozen=True)
class JobResult:
    output: Path
    frames: int
    elapsed_s: float

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def lower_thread_priority(nice: int) -> None:
    """Make the calling thread `nice` steps nicer than it is (Linux; at most 19).

    Threads and processes it starts afterwards inherit the value: FFmpeg's codec threads
    opened in it, the encoder process it spawns. Elsewhere `setpriority` would act on the
    whole process, so nothing is done; a refusal is logged and ignored.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except OSError as err:
        log.debug("could not lower the priority of thread %d: %s", tid, err)


def prefetch(
    frames: Iterator[DecodedFrame], depth: int, *, nice: int = 0
) -> Iterator[DecodedFrame]:
    """Decode in a background thread, `depth` frames ahead, so decode overlaps the rest.

    An exception in the decoder is re-raised in the consumer; stopping early (an error or
    Ctrl-C downstream) stops the thread at its next frame. `nice`: see `WriteBehind`.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        lower_thread_priority(nice)
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as err:  # handed to the consumer, which re-raises it
            q.put(err)

    thread = threading.Thread(target=work, name="vidrefocus-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


class WriteBehind:
    """Writes frames to a sink from a background thread, up to `depth` frames behind.

    Encoding (colour conversion, the codec, the muxer) then overlaps the stages of the next
    batch; PyAV and numpy release the GIL while they work. Frames reach the sink in order,
    from one thread. An error in the sink is re-raised in the caller at its next `write` or
    when the `with` block ends; leaving the block by an exception drops the queued frames.

    Args:
        sink: where the frames go (its own `with` block is the caller's).
        depth: frames that may wait in the queue, >= 1.
        nice: how much nicer than the caller the thread runs, and with it the encoder
            process that a `VideoWriter` starts at its first frame (`runtime.io_nice`). The
            stages' torch threads then keep the cores, and encoding takes what they leave
            idle: on two cores a thread of equal priority that preempts one of them stalls
            both at the next barrier (BENCHMARKS.md, runtime).

    Example:
        >>> with writer, WriteBehind(writer, 8) as sink:  # doctest: +SKIP
        ...     sink.write(rgb, pts)
    """

    def __init__(self, sink: FrameSink, depth: int, *, nice: int = 0) -> None:
        self._sink = sink
        self._nice = nice
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._abort = False
        self._thread = threading.Thread(target=self._work, name="vidrefocus-encode", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        # Runs until the end marker, even after an error, so that `write` never blocks on a
        # full queue nobody empties.
        lower_thread_priority(self._nice)
        while (item := self._queue.get()) is not _DONE:
            if self._error is None and not self._abort:
                try:
                    self._sink.write(*item)  # type: ignore[misc]
                except BaseException as err:  # handed to the caller, which re-raises it
                    self._error = err

    def write(self, rgb: Tensor, pts: int) -> None:
        """Queue one (3, H, W) display-referred frame with its pts (blocks while full)."""
        if self._error is not None:
            raise self._error
        self._queue.put((rgb, pts))

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._abort = exc_type is not None
        self._queue.put(_DONE)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error


def batch_frames(
    frames: Iterator[DecodedFrame], size: int, *, split_at: int | None = None
) -> Iterator[FrameBatch]:
    """Group consecutive frames into batches of at most `size`.

    A batch never mixes frame sizes, and never holds frames on both sides of `split_at` (a pts),
    so a chunk's warm-up frames travel in batches of their own. While the caller works on a
    batch this generator holds no other reference to its frames (the decoded frames it was
    stacked from are dropped): at 1080p that is 100 MB a batch of 4 (BENCHMARKS.md, issue #10).
    """
    buf: list[DecodedFrame] = []
    for f in frames:
        crosses = split_at is not None and buf and buf[0].pts < split_at <= f.pts
        if buf and (f.rgb.shape != buf[0].rgb.shape or crosses):
            yield _take(buf)
        buf.append(f)
        del f
        if len(buf) == size:
            yield _take(buf)
    if buf:
        yield _take(buf)


def _take(frames: list[DecodedFrame]) -> FrameBatch:
    """The frames stacked into a batch; the list is emptied."""
    batch = FrameBatch(
        frames=torch.stack([f.rgb for f in frames]),
        pts=[f.pts for f in frames],
        time_base=frames[0].time_base,
    )
    frames.clear()
    return batch


def run_local(
    input_path: Path,
    output_path: Path,
    stages: list[Stage],
    config: Config,
    *,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    writer: FrameSink | None = None,
    on_batch: Callable[[FrameBatch], None] | None = None,
) -> JobResult:
    """Run decode -> stages -> encode in this process.

    Args:
        input_path: a video file or image sequence.
        output_path: the video to write (atomically).
        stages: stages applied in order to each batch; `[]` is the identity pipeline.
        config: validated options.
        overwrite: replace an existing output.
        progress: called after each batch.
        writer: where the frames go instead of a `VideoWriter` to `output_path` (which is
            then only reported), e.g. an `ImageWriter`.
        on_batch: called with each processed batch after its frames were queued for the
            encoder (to store
            what stages computed beside the frames, such as defocus maps).
    Returns:
        What was written.
    Raises:
        InputError: bad input or output path (before anything is written).
        ProcessingError: a stage or the encoder failed; no output file is left.
    """
    reader = VideoReader(
        input_path,
        fps=config.input.sequence_rate,
        apply_rotation=config.input.apply_rotation,
    )
    if writer is None:
        rotation = reader.video.rotation if config.input.apply_rotation else 0
        writer = VideoWriter(
            output_path, reader.info, config.encode, overwrite=overwrite, stored_rotation=rotation
        )
    total = reader.video.frame_count
    start = time.perf_counter()
    done = 0
    for stage in stages:
        stage.reset()
    queued, nice = config.runtime.queue_frames, config.runtime.io_nice
    with writer, WriteBehind(writer, queued, nice=nice) as sink:
        frames = prefetch(iter(reader), queued, nice=nice)
        for batch in batch_frames(frames, config.runtime.batch_size):
            try:
                out = run_stages(stages, batch)
            except VidRefocusError:
                raise  # already says what is wrong, and how it should exit
            except (RuntimeError, ValueError) as err:
                raise ProcessingError(
                    f"{input_path}: processing failed at pts {batch.pts[0]}: {err}"
                ) from err
            for rgb, pts in zip(out.frames, out.pts, strict=True):
                sink.write(rgb, pts)
            if on_batch is not None:
                on_batch(out)
            done += len(out.pts)
            # Neither batch is kept while the next one is decoded and processed (the encoder
            # holds the frames it still needs): one batch less at the peak.
            del batch, out
            if progress is not None:
                progress(Progress(done, total, time.perf_counter() - start))
    elapsed = time.perf_counter() - start
    log.info("%s: %d frames in %.1f s (%.1f fps)", output_path, done, elapsed, done / elapsed)
    return JobResult(output=output_path, frames=done, elapsed_s=elapsed)
