"""Process one chunk in this process: decode -> stages (with warm-up) -> video-only encode.

Decoding and encoding run in threads of their own (`prefetch`, `WriteBehind`), so they overlap
the stages.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vidrefocus.config import Config
from vidrefocus.errors import ProcessingError, VidRefocusError
from vidrefocus.io.digest import file_sha256
from vidrefocus.io.probe import MediaInfo
from vidrefocus.io.reader import VideoReader
from vidrefocus.io.writer import VideoWriter
from vidrefocus.memory import release_free_heap
from vidrefocus.runtime.factory import StageFactory
from vidrefocus.runtime.local import WriteBehind, batch_frames, prefetch
from vidrefocus.runtime.plan import Chunk
from vidrefocus.stages import Stage, run_stages

__all__ = [
    "ChunkProcessor",
    "ChunkRecord",
    "JobSpec",
    "bind_process",
    "chunk_name",
    "process_chunk",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkRecord:
    """What a finished chunk left on disk.

    Attributes:
        index: the chunk's index in the plan.
        path: the chunk file (absolute).
        frames: frames written.
        first_pts: pts of the first frame written.
        last_pts: pts of the last frame written (inclusive).
        sha256: hex digest of the file's bytes.
        size_bytes: the file's size.
        elapsed_s: wall time spent on the chunk.
        worker: "host:pid" of the process that wrote it.
    """

    index: int
    path: str
    frames: int
    first_pts: int
    last_pts: int
    sha256: str
    size_bytes: int
    elapsed_s: float
    worker: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_name(index: int, suffix: str, run_id: str) -> str:
    """File name of chunk `index` written by run `run_id`, in the output's container.

    The run id is part of the name so that a worker orphaned by a killed driver, still
    finishing its chunk, can never replace a file that a later `--resume` run has recorded.
    """
    return f"chunk-{index:05d}-{run_id}{suffix}"


def _writer(source: MediaInfo, config: Config, target: Path) -> VideoWriter:
    rotation = source.video.rotation if config.input.apply_rotation else 0
    # Each chunk is its own encode (it starts with an IDR frame) with closed GOPs; the
    # stitcher muxes audio, subtitles and tags in once, over the whole video.
    return VideoWriter(
        target,
        source,
        config.encode,
        overwrite=True,
        stored_rotation=rotation,
        video_only=True,
        closed_gop=True,
    )


def process_chunk(
    source: MediaInfo,
    chunk: Chunk,
    stages: Sequence[Stage],
    config: Config,
    target: Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> ChunkRecord:
    """Decode, process and encode one chunk into `target` (written atomically).

    Stages are reset first; frames from `chunk.warmup_pts` on pass through them so temporal
    state is warm at `chunk.start_pts`, and the warm-up output is dropped. The chunk is encoded
    video-only in the job's codec with closed GOPs, under a temporary name that
    is renamed to `target` only when the encoder succeeded.

    Args:
        source: the probed input.
        chunk: the chunk to process.
        stages: the job's stages, applied in order; `[]` is the identity pipeline.
        config: the job's options (encode, input, runtime).
        target: the chunk file to write; its extension picks the container.
        progress: called with the number of the chunk's frames written so far.
    Returns:
        The record of the written file.
    Raises:
        InputError: unreadable input or unwritable target.
        ProcessingError: a stage or the encoder failed, or decoding did not yield the chunk's
            first frame (nothing is left at `target` then).
    """
    start = time.perf_counter()
    reader = VideoReader(
        source.path,
        fps=config.input.sequence_rate,
        apply_rotation=config.input.apply_rotation,
        start_pts=chunk.seek_pts,
        end_pts=chunk.end_pts,
        info=source,
    )
    writer = _writer(source, config, target)
    for stage in stages:
        stage.reset()
    first_pts: int | None = None
    last_pts = chunk.start_pts
    warmed = 0
    written = 0
    depth, nice = config.runtime.queue_frames, config.runtime.io_nice
    with writer, WriteBehind(writer, depth, nice=nice) as sink:
        # Frames between the seek keyframe and the warm-up start are decoded but not processed.
        frames = (f for f in iter(reader) if f.pts >= chunk.warmup_pts)
        queued = prefetch(frames, depth, nice=nice)
        for batch in batch_frames(queued, config.runtime.batch_size, split_at=chunk.start_pts):
            try:
                out = run_stages(list(stages), batch)
            except VidRefocusError:
                raise  # already says what is wrong, and how it should exit
            except (RuntimeError, ValueError) as err:
                raise ProcessingError(
                    f"{source.path}: processing failed in chunk {chunk.index} at pts "
                    f"{batch.pts[0]}: {err}"
                ) from err
            # Neither batch is kept while the next one is decoded and processed (the encoder
            # holds the frames it still needs): one batch less at a chunk's peak.
            del batch
            if out.pts[0] < chunk.start_pts:
                warmed += len(out.pts)
                del out
                continue
            if first_pts is None:
                first_pts = out.pts[0]
                if first_pts != chunk.start_pts:
                    raise ProcessingError(
                        f"{source.path}: chunk {chunk.index} should start at pts "
                        f"{chunk.start_pts} but decoding gave {first_pts} first; the file's "
                        "seek index is unreliable. Remux it (ffmpeg -i in -c copy out.mkv) "
                        "or run without --workers."
                    )
            for rgb, pts in zip(out.frames, out.pts, strict=True):
                sink.write(rgb, pts)
            written += len(out.pts)
            last_pts = out.pts[-1]
            del out
            if progress is not None:
                progress(written)
    if warmed != chunk.warmup_frames:
        log.warning(
            "%s: chunk %d ran %d warm-up frame(s), %d planned.",
            source.path, chunk.index, warmed, chunk.warmup_frames,
        )  # fmt: skip
    if written != chunk.frames:
        log.warning(
            "%s: chunk %d wrote %d frame(s), %d planned (damaged packets were skipped).",
            source.path, chunk.index, written, chunk.frames,
        )  # fmt: skip
    elapsed = time.perf_counter() - start
    return ChunkRecord(
        index=chunk.index,
        path=str(target),
        frames=written,
        first_pts=first_pts if first_pts is not None else chunk.start_pts,
        last_pts=last_pts,
        sha256=file_sha256(target),
        size_bytes=target.stat().st_size,
        elapsed_s=elapsed,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs for every chunk of a job; small and picklable.

    Attributes:
        source: the probed input (probed once by the driver).
        config: the job's validated options.
        factory: the recipe for the stages.
        work_dir: where chunk files go (a shared volume on a cluster).
        suffix: the output's extension; chunks use the same container.
        run_id: the driver run's id, part of every chunk file name.
    """

    source: MediaInfo
    config: Config
    factory: StageFactory
    work_dir: Path
    suffix: str
    run_id: str

    def chunk_path(self, index: int) -> Path:
        return self.work_dir / chunk_name(index, self.suffix, self.run_id)


def bind_process(cpus: Sequence[int]) -> None:
    """Bind every thread of this process, and so every thread and child it starts, to `cpus`.

    Linux only (`sched_setaffinity`); elsewhere a warning and nothing else.
    """
    if not hasattr(os, "sched_setaffinity"):
        log.warning("this system cannot bind a process to cores; runtime.pin_cpus is ignored.")
        return
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), set(cpus))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


class ChunkProcessor:
    """Builds a job's stages once and processes whole chunks with them.

    The same class runs in-process (`--workers 0`) and as the Ray actor `ChunkWorker`. The
    constructor only imports the stage factory's module (torch and the stages' code), so a Ray
    worker starts while the driver still runs the factory's whole-clip `prepare`; the stages
    are built by `ready` or by the first `process`, from the factory they are given (the
    prepared one) or the spec's. A factory error is kept and raised by `ready` and `process`,
    not by the constructor, so a bad job fails with its own message instead of an actor that
    keeps restarting.

    Args:
        spec: the job.
        threads: torch's CPU threads in this process (a Ray worker: the CPUs it reserved);
            None leaves them as they are.
        cpus: cores to bind this process to (a Ray worker with `runtime.pin_cpus`); None
            leaves the process where it is.
    """

    def __init__(
        self, spec: JobSpec, threads: int | None = None, cpus: Sequence[int] | None = None
    ) -> None:
        if cpus is not None:
            bind_process(cpus)
        if threads is not None:
            torch.set_num_threads(threads)
        self.spec = spec
        self.stages: list[Stage] = []
        self.notes: list[str] = []
        self.error: VidRefocusError | None = None
        self._built_from: StageFactory | None = None
        try:
            spec.factory.resolve()
        except VidRefocusError as err:
            self.error = err

    def _build(self, factory: StageFactory | None) -> None:
        factory = factory or self.spec.factory
        if self.error is not None:
            raise self.error
        if factory == self._built_from:
            return
        try:
            built = factory.build(self.spec.source.path, self.spec.config)
        except VidRefocusError as err:
            self.error = err
            raise
        self.stages, self.notes, self._built_from = built.stages, built.notes, factory

    def ready(self, factory: StageFactory | None = None) -> list[str]:
        """Build the stages from `factory` (default: the spec's) and return the factory's
        notes; raise the factory's error, if any."""
        self._build(factory)
        return self.notes

    def process(
        self,
        chunk: Chunk,
        factory: StageFactory | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ChunkRecord:
        """Process one chunk into its file in the work folder (see `process_chunk`).

        Args:
            chunk: the chunk.
            factory: the stages' recipe (default: the spec's); a worker that Ray restarted
                builds its stages from it again here.
            progress: called with the number of the chunk's frames written so far.
        """
        self._build(factory)
        target = self.spec.chunk_path(chunk.index)
        try:
            return process_chunk(
                self.spec.source, chunk, self.stages, self.spec.config, target, progress=progress
            )
        finally:
            # What this chunk freed would otherwise stay resident while the next one runs.
            release_free_heap()
