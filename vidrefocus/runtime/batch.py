"""Run a batch of clips: one after another on one Ray session, failures isolated, reruns skip."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidrefocus import __version__
from vidrefocus.errors import InputError, VidRefocusError
from vidrefocus.io.digest import file_sha256
from vidrefocus.runtime.driver import run_job
from vidrefocus.runtime.jobs import BatchJob, check_inside
from vidrefocus.runtime.local import Progress
from vidrefocus.runtime.manifest import job_key, write_json_atomic

__all__ = [
    "BATCH_MANIFEST",
    "BatchManifest",
    "BatchProgress",
    "BatchResult",
    "ClipResult",
    "run_batch",
]

log = logging.getLogger(__name__)

BATCH_MANIFEST = "vidrefocus-batch.json"
_VERSION = 1


@dataclass(frozen=True)
class ClipResult:
    """What happened to one clip of a batch.

    Attributes:
        name: the job's name (`jobs[2] (a.mp4)`, or the file name of a folder batch).
        command: refocus, transcode or deblur.
        input: the clip.
        output: its output.
        status: "done", "skipped" (finished by an earlier run, output verified) or "failed".
        frames: frames in the output (0 if failed).
        seconds: wall time spent on the clip by this run.
        message: why it failed, or what was reused.
        exit_code: the code the single-clip command would have returned (0, 1 or 2).
    """

    name: str
    command: str
    input: str
    output: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    message: str = ""
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BatchProgress:
    """What a batch progress callback is told: which clip, and how far it is."""

    clip: int
    clips: int
    name: str
    frames_done: int
    frames_total: int
    elapsed_s: float


@dataclass(frozen=True)
class BatchResult:
    """Every clip's result, in job order."""

    clips: list[ClipResult] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> list[ClipResult]:
        return [c for c in self.clips if c.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0 if every clip is done (now or earlier), 1 if any failed."""
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(c.status == s for c in self.clips) for s in ("done", "skipped", "failed")}
        return {
            "clips": [c.to_dict() for c in self.clips],
            **counts,
            "seconds": round(self.elapsed_s, 3),
        }


@dataclass
class BatchManifest:
    """The record of a batch's finished outputs, in its output folder.

    Each output (by its path relative to the folder) maps to the job key it was made for and
    the sha256 and size of the file written. A clip is "running" from the moment it starts
    until its output is written and hashed, so a record always tells whether the file at
    that path is known good.
    """

    path: Path
    clips: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BatchManifest:
        """Read the manifest; a missing or unreadable one is empty (outputs are then redone
        only with `overwrite`, never silently replaced)."""
        try:
            data = json.loads(path.read_text())
            if data.get("version") != _VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            return cls(path, {str(k): dict(v) for k, v in data["clips"].items()})
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("%s: unreadable batch manifest (%s); no clip counts as done.", path, err)
            return cls(path)

    def save(self) -> None:
        write_json_atomic(self.path, {"version": _VERSION, "clips": self.clips})

    def start(self, name: str, key: str, job: BatchJob) -> None:
        self.clips[name] = {
            "state": "running",
            "key": key,
            "input": str(job.input),
            "command": job.command,
            "started": time.time(),
        }
        self.save()

    def finish(self, name: str, output: Path, frames: int, seconds: float) -> None:
        rec = self.clips[name]
        rec.update(
            state="done",
            sha256=file_sha256(output),
            size_bytes=output.stat().st_size,
            frames=frames,
            seconds=round(seconds, 3),
            finished=time.time(),
        )
        self.save()

    def is_done(self, name: str, key: str, output: Path) -> bool:
        """Whether `output` is the finished, unchanged result of the job with this key."""
        rec = self.clips.get(name)
        if rec is None or rec.get("state") != "done" or rec.get("key") != key:
            return False
        if not output.is_file() or output.stat().st_size != rec.get("size_bytes"):
            return False
        return file_sha256(output) == rec.get("sha256")


@contextmanager
def _locked(outdir: Path) -> Iterator[None]:
    # One batch per output folder: two would both redo (and replace) the same clips.
    # O_NOFOLLOW: a planted symlink must not make the lock truncate a file elsewhere.
    path = outdir / f".{BATCH_MANIFEST}.lock"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise InputError(
            f"{path}: cannot create the batch lock ({err.strerror}); if it is a symlink, remove it."
        ) from err
    with os.fdopen(fd, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise InputError(
                f"{outdir}: another vidrefocus batch is writing to this folder; wait for it "
                "to finish, or write to another folder."
            ) from err
        yield


def _job_key(job: BatchJob) -> str:
    try:
        stat = job.input.stat()
    except FileNotFoundError as err:
        raise InputError(f"{job.input}: no such input file; fix the job's 'input'.") from err
    return job_key({
        "input": str(job.input.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "command": job.command,
        "config": job.config.model_dump(mode="json"),
        "stages": job.factory.identity(),
        "output": job.output.suffix.lower(),
        "vidrefocus": __version__,
    })  # fmt: skip


def _run_clip(
    job: BatchJob,
    name: str,
    manifest: BatchManifest,
    *,
    workers: int | None,
    address: str | None,
    overwrite: bool,
    progress: Callable[[Progress], None],
) -> ClipResult:
    start = time.perf_counter()
    base = {"name": job.name, "command": job.command, "input": str(job.input),
            "output": str(job.output)}  # fmt: skip
    key = _job_key(job)
    if manifest.is_done(name, key, job.output):
        rec = manifest.clips[name]
        return ClipResult(**base, status="skipped", frames=int(rec.get("frames", 0)),
                          message="done earlier (sha256 verified)")  # fmt: skip
    replace = overwrite
    if job.output.exists():
        if name not in manifest.clips and not overwrite:
            raise InputError(
                f"{job.output}: already exists and was not written by this batch; remove it, "
                "give the job another output name, or pass --overwrite."
            )
        # This batch wrote it, for other settings, or it changed since: redo it.
        replace = True
    job.output.parent.mkdir(parents=True, exist_ok=True)
    manifest.start(name, key, job)
    config = job.config
    if job.command == "refocus":
        # Estimated depth (--depth auto) is computed once here, not once per worker.
        from vidrefocus.depth import prepare_depth

        config, _ = prepare_depth(job.input, config, progress=progress)
    result = run_job(
        job.input, job.output, config, factory=job.factory, workers=workers,
        address=address, resume=True, overwrite=replace, progress=progress,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    manifest.finish(name, job.output, result.frames, seconds)
    reused = f", {result.chunks_reused} reused" if result.chunks_reused else ""
    return ClipResult(**base, status="done", frames=result.frames, seconds=seconds,
                      message=f"{result.chunks} chunk(s){reused}")  # fmt: skip


def run_batch(
    jobs: Sequence[BatchJob],
    outdir: Path,
    *,
    workers: int | None = None,
    address: str | None = None,
    overwrite: bool = False,
    progress: Callable[[BatchProgress], None] | None = None,
    on_clip: Callable[[ClipResult], None] | None = None,
) -> BatchResult:
    """Run each job in turn; a failing clip is recorded and the batch goes on.

    Every clip runs as a resumable chunked job (`run_job(resume=True)`), so a batch stopped
    midway continues where it stopped: clips whose output is recorded in the folder's batch
    manifest (`BATCH_MANIFEST`) with the same settings and an unchanged sha256 are skipped,
    an interrupted clip reuses its finished chunks, and outputs of changed jobs are redone.
    An output file that the batch did not write is never replaced without `overwrite`.

    Args:
        jobs: the clips (`load_batch`).
        outdir: the output folder (created if missing); it holds the batch manifest.
        workers: Ray workers per clip; 0 = in this process; None = one per CPU (GPU) of the
            cluster. One Ray session (embedded, or `address`) serves the whole batch.
        address: an existing Ray cluster ("auto", "host:port", "ray://..."); None = embedded.
        overwrite: replace outputs this batch did not write.
        progress: called as frames of the current clip finish.
        on_clip: called with each clip's result as it ends.
    Returns:
        Every clip's result.
    Raises:
        InputError: a job would write outside `outdir` (`check_inside`; nothing runs then),
            the output folder cannot be created, or another batch is using it.
        ProcessingError: Ray cannot start or be reached.

    Example:
        >>> jobs = load_batch(Path("jobs.yaml"), Path("out"))  # doctest: +SKIP
        >>> run_batch(jobs, Path("out"), workers=0).exit_code  # doctest: +SKIP
        0
    """
    start = time.perf_counter()
    outdir = Path(outdir)
    for job in jobs:
        # Checked when the list was read too; again here, before anything runs, for jobs
        # built another way and links made since.
        check_inside(job.name, job.output, outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{outdir}: cannot create the output folder ({err.strerror}).") from err
    results: list[ClipResult] = []
    session: AbstractContextManager[Any] = nullcontext()
    if workers != 0:
        # Imported here so that in-process batches do not pay for importing Ray.
        from vidrefocus.runtime.pool import ray_session

        session = ray_session(address, None if workers is None else max(1, workers))
    with _locked(outdir), session:
        manifest = BatchManifest.load(outdir / BATCH_MANIFEST)
        for i, job in enumerate(jobs):

            def on_frames(p: Progress, i: int = i, job: BatchJob = job) -> None:
                if progress is not None:
                    progress(BatchProgress(i, len(jobs), job.name, p.frames_done,
                                           p.frames_total, p.elapsed_s))  # fmt: skip

            clip_start = time.perf_counter()
            name = _record_name(job.output, outdir)
            try:
                result = _run_clip(job, name, manifest, workers=workers, address=address,
                                   overwrite=overwrite, progress=on_frames)  # fmt: skip
            except VidRefocusError as err:
                result = _failed(job, err, err.exit_code, clip_start)
            except Exception as err:
                # A bug or an unforeseen failure in one clip must not stop the others; the
                # traceback goes to the log (`-vv`).
                log.debug("%s failed", job.name, exc_info=True)
                result = _failed(job, err, 1, clip_start)
            log.info("%s: %s %s", job.name, result.status, result.message)
            results.append(result)
            if on_clip is not None:
                on_clip(result)
    return BatchResult(results, time.perf_counter() - start)


def _record_name(output: Path, outdir: Path) -> str:
    # Relative to the folder, so a batch folder that is moved or mounted elsewhere still
    # knows its finished clips.
    try:
        return output.resolve().relative_to(outdir.resolve()).as_posix()
    except ValueError:
        return str(output.resolve())


def _failed(job: BatchJob, err: BaseException, code: int, start: float) -> ClipResult:
    message = str(err) if isinstance(err, VidRefocusError) else f"{type(err).__name__}: {err}"
    return ClipResult(
        name=job.name, command=job.command, input=str(job.input), output=str(job.output),
        status="failed", seconds=time.perf_counter() - start, message=message, exit_code=code,
    )  # fmt: skip
