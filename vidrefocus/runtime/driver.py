"""The job driver: plan chunks, run them in-process or on Ray workers, record, resume, stitch."""

from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vidrefocus import __version__
from vidrefocus.config import Config
from vidrefocus.errors import ConfigError, InputError
from vidrefocus.io.formats import resolve_output
from vidrefocus.io.paths import check_output_path
from vidrefocus.io.probe import MediaInfo, probe
from vidrefocus.memory import check_memory, factory_command
from vidrefocus.runtime.chunk import ChunkProcessor, ChunkRecord, JobSpec
from vidrefocus.runtime.factory import IDENTITY, StageFactory
from vidrefocus.runtime.local import JobResult, Progress
from vidrefocus.runtime.manifest import MANIFEST_NAME, Manifest, job_key
from vidrefocus.runtime.plan import Chunk, ChunkPlan, plan_chunks, scan_timeline
from vidrefocus.runtime.stitch import stitch

__all__ = ["ChunkedJobResult", "default_work_dir", "run_job"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ChunkedJobResult(JobResult):
    """What a chunked job did, on top of `JobResult` (output, frames, elapsed_s).

    Attributes:
        chunks: chunks in the plan.
        chunks_run: chunks processed by this run.
        chunks_reused: chunks taken over from an earlier, interrupted run (`resume=True`).
        workers: Ray workers used (0 = in-process).
        run_id: this run's id, as recorded in the manifest.
        work_dir: the job's work folder (gone after success unless it was kept).
        notes: the stage factory's notes.
    """

    chunks: int = 0
    chunks_run: int = 0
    chunks_reused: int = 0
    workers: int = 0
    run_id: str = ""
    work_dir: Path | None = None
    notes: tuple[str, ...] = ()


def default_work_dir(output: Path) -> Path:
    """The hidden work folder beside `output`, named after it (same filesystem as the output)."""
    return output.with_name(f".{output.name}.vidrefocus-work")


@contextmanager
def _locked(work: Path) -> Iterator[None]:
    # One driver per work folder: a second would overwrite the first one's chunks. The lock
    # dies with the process, so a killed driver never leaves the folder locked.
    with (work / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise InputError(
                f"{work}: another vidrefocus job is using this work folder; wait for it to "
                "finish, or give this job its own --work-dir."
            ) from err
        yield


def _identity(
    source: MediaInfo, config: Config, factory: StageFactory, suffix: str
) -> dict[str, Any]:
    stat = source.path.stat()
    return {
        "input": str(source.path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "config": config.model_dump(mode="json"),
        "stages": factory.identity(),
        "suffix": suffix,
        "vidrefocus": __version__,
    }


def _clear_chunks(work: Path) -> None:
    for path in work.glob("chunk-*"):
        path.unlink(missing_ok=True)


def _remove_strays(work: Path, manifest: Manifest) -> None:
    # Temporary files of a worker killed mid-chunk, chunk files no record refers to (written
    # by a run that was killed before recording them), and the manifest's own temporary file
    # from a driver killed while saving it. Called under the work folder's lock, so no other
    # driver is writing any of them.
    keep = {rec["path"] for rec in manifest.chunks.values()}
    temps = [*work.glob(".*vidrefocus-tmp*"), *work.glob(f".{MANIFEST_NAME}.*.tmp")]
    for path in [*temps, *work.glob("chunk-*")]:
        if path.name not in keep:
            path.unlink(missing_ok=True)


def _open_manifest(
    work: Path, identity: dict[str, Any], plan: ChunkPlan, resume: bool
) -> tuple[Manifest, list[int]]:
    key = job_key(identity)
    old = Manifest.load(work / MANIFEST_NAME)
    if resume and old is not None and old.key == key and old.plan == plan:
        return old, old.verified()
    if resume:
        if old is None:
            log.info("%s: nothing to resume; starting the job.", work)
        else:
            log.warning(
                "%s: the work folder holds another job (input, options or stages changed); "
                "starting afresh.",
                work,
            )
    _clear_chunks(work)
    manifest = Manifest(path=work / MANIFEST_NAME, key=key, identity=identity, plan=plan)
    manifest.save()
    return manifest, []


def _in_background(func: Callable[[], T]) -> Callable[[], T]:
    """Start `func` in a thread of its own; return a call that waits for its result (or
    raises its error).

    The thread is a daemon: a job stopped before it asks for the result (Ctrl-C while Ray
    starts) does not wait for it.
    """
    result: Future[T] = Future()

    def run() -> None:
        try:
            result.set_result(func())
        except BaseException as err:  # handed to whoever waits for the result
            result.set_exception(err)

    threading.Thread(target=run, name="vidrefocus-prepare", daemon=True).start()
    return result.result


def _run_in_process(
    spec: JobSpec,
    chunks: list[Chunk],
    on_done: Callable[[ChunkRecord], None],
    on_frames: Callable[[int], None],
) -> list[str]:
    processor = ChunkProcessor(spec)
    notes = processor.ready()
    for chunk in chunks:
        on_done(processor.process(chunk, progress=on_frames))
    return notes


def run_job(
    input_path: Path,
    output_path: Path,
    config: Config,
    *,
    factory: StageFactory = IDENTITY,
    workers: int | None = None,
    address: str | None = None,
    resume: bool = False,
    work_dir: Path | None = None,
    keep_work: bool | None = None,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> ChunkedJobResult:
    """Run a job over chunks: in this process (`workers=0`) or on a pool of Ray workers.

    The video is cut at keyframes into chunks of `config.runtime.chunk_seconds`; each chunk is
    processed whole (with `config.runtime.warmup_frames` of warm-up) and written in the final
    codec to the work folder; every finished chunk is recorded in the folder's manifest; the
    chunks are then stitched, with the source's audio and metadata, into `output_path`
    (atomically). With `resume=True`, chunks recorded by an earlier run whose file still has
    the recorded sha256 are kept and only the others are processed.

    Args:
        input_path: a video file or image sequence (on a cluster: a path every node sees).
        output_path: the video to write.
        config: validated options.
        factory: the recipe for the stages; the identity pipeline by default.
        workers: 0 = in-process; N = N Ray workers; None = one per GPU (or CPU) of the cluster.
        address: None = embedded Ray on this machine; "auto", "host:port" or "ray://..." = an
            existing cluster. An already initialised Ray session is used as is.
        resume: keep the valid chunks of an interrupted run of the same job.
        work_dir: the job's work folder (default: `default_work_dir(output_path)`); on a
            cluster it must be on a volume every node mounts at the same path.
        keep_work: keep the work folder (chunks and manifest) after success; by default an
            explicit `work_dir` is kept and the default one removed.
        overwrite: replace an existing output.
        progress: called as frames finish (per batch in-process, per chunk on Ray).
    Returns:
        What was written and how.
    Raises:
        InputError: bad input, output path or work folder (before any work).
        ConfigError: a bad stage factory or device setting.
        ProcessingError: a chunk failed, a worker died too often, or stitching failed; the
            finished chunks stay in the work folder for `resume=True`.

    Example:
        >>> run_job(Path("in.mp4"), Path("out.mkv"), load_config(), workers=2)  # doctest: +SKIP
    """
    start = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    if workers is not None and workers < 0:
        raise InputError(f"--workers must be >= 0, got {workers}.")
    check_output_path(output_path, [input_path], overwrite=overwrite)
    source = probe(input_path, config.input.sequence_rate)
    if source.video is None:
        raise InputError(f"{input_path}: no video stream to process.")
    resolve_output(output_path, source.video, config.encode)  # refuse a bad codec/container now
    timeline = scan_timeline(input_path, config.input.sequence_rate)
    plan = plan_chunks(timeline, config.runtime.chunk_seconds, config.runtime.warmup_frames)
    command = factory_command(factory.target)
    if command is not None and address is None:
        # Each local worker holds its own models and batch; a cluster's nodes are not here.
        # Without --workers the pool's size is not known yet: at least one must fit.
        check_memory(
            command, source.video.display_width, source.video.display_height, config,
            path=input_path, workers=max(1, min(workers or 1, len(plan))),
        )  # fmt: skip
    suffix = output_path.suffix.lower()
    work = Path(work_dir) if work_dir is not None else default_work_dir(output_path)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{work}: cannot create the work folder ({err.strerror}).") from err
    run_id = uuid.uuid4().hex[:12]
    with _locked(work):
        identity = _identity(source, config, factory, suffix)
        manifest, reused = _open_manifest(work, identity, plan, resume)
        _remove_strays(work, manifest)
        manifest.start_run(run_id, reused)
        todo = [c for c in plan.chunks if c.index not in set(reused)]
        spec = JobSpec(source, config, factory, work.resolve(), suffix, run_id)
        finished = sum(int(manifest.chunks[i]["frames"]) for i in reused)
        total = plan.frame_count
        log.info(
            "%s: %d chunks (%d to do, %d reused), %d frames, work folder %s",
            input_path, len(plan), len(todo), len(reused), total, work,
        )  # fmt: skip

        def on_frames(n: int) -> None:
            if progress is not None:
                progress(Progress(finished + n, total, time.perf_counter() - start))

        def on_done(rec: ChunkRecord) -> None:
            nonlocal finished
            manifest.record(rec, run_id)
            finished += rec.frames
            on_frames(0)

        used = 0
        try:
            if not todo:
                notes = []
            elif workers == 0:
                notes = _run_in_process(spec, todo, on_done, on_frames)
            else:
                # Whole-clip work (the focus pull's tracking) once here, not in every worker.
                def prepare() -> StageFactory:
                    return factory.prepared(input_path, config, work)

                notes, used = _run_on_ray(spec, todo, workers, address, prepare, on_done)
        except BaseException:
            # Only recorded chunks can be resumed: drop the rest now (a chunk a Ray worker
            # finished but the driver never recorded, a temporary file of one it was writing),
            # so a failed job leaves nothing but its chunks and manifest. The cleanup must not
            # replace the error being raised.
            with suppress(OSError):
                _remove_strays(work, manifest)
            log.warning("%s: stopped; finished chunks are kept in %s for --resume.", input_path,
                        work)  # fmt: skip
            raise
        _remove_strays(work, manifest)  # what workers that died mid-chunk left behind
        chunk_files = [manifest.chunk_file(c.index) for c in plan.chunks]
        frames = sum(int(manifest.chunks[c.index]["frames"]) for c in plan.chunks)
        stitch(chunk_files, output_path, source, config.encode, expected_frames=frames,
               overwrite=overwrite)  # fmt: skip
    if not (keep_work if keep_work is not None else work_dir is not None):
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - start
    log.info("%s: %d frames in %.1f s (%d chunks run, %d reused)", output_path, frames, elapsed,
             len(todo), len(reused))  # fmt: skip
    return ChunkedJobResult(
        output=output_path,
        frames=frames,
        elapsed_s=elapsed,
        chunks=len(plan),
        chunks_run=len(todo),
        chunks_reused=len(reused),
        workers=used,
        run_id=run_id,
        work_dir=work,
        notes=tuple(notes),
    )


def _run_on_ray(
    spec: JobSpec,
    chunks: list[Chunk],
    workers: int | None,
    address: str | None,
    prepare: Callable[[], StageFactory],
    on_done: Callable[[ChunkRecord], None],
) -> tuple[list[str], int]:
    # Imported here so that in-process runs (and `import vidrefocus.runtime.driver`) do not
    # pay for importing Ray.
    import ray

    from vidrefocus.runtime.pool import (
        cpu_sets,
        gpus_per_worker,
        machine_cores,
        pool_size,
        ray_session,
        run_pool,
        worker_cpus,
    )

    runtime = spec.config.runtime
    embedded = address is None
    if runtime.pin_cpus and not embedded:
        raise ConfigError(
            "runtime.pin_cpus binds workers to this machine's cores; it cannot be used with "
            "--address (a cluster's nodes share their cores through Ray's CPU resources)."
        )
    # Known before Ray starts when the worker count is given: the embedded session is sized
    # to what the workers reserve.
    embedded_cpus = None
    if workers is not None:
        size = max(1, min(workers, len(chunks)))
        embedded_cpus = size * worker_cpus(runtime.cpus_per_worker, size, len(machine_cores()))
    # The driver prepares while Ray and the workers start (a thread: ray.init wants the main
    # one); the workers build their stages from what it returns.
    prepared = _in_background(prepare)
    with ray_session(address, embedded_cpus):
        num_gpus = gpus_per_worker(runtime.device, embedded=embedded)
        size = pool_size(workers, len(chunks), num_gpus)
        session_cpus = int(ray.cluster_resources().get("CPU", 1)) if embedded else None
        # A session may say more CPUs than there are cores (oversubscribed on purpose).
        cores = min(session_cpus, len(machine_cores())) if session_cpus is not None else None
        num_cpus = worker_cpus(runtime.cpus_per_worker, size, cores)
        if session_cpus is not None and num_cpus > session_cpus:
            raise ConfigError(
                f"runtime.cpus_per_worker is {num_cpus} but the Ray session on this machine "
                f"has {session_cpus} CPUs; lower it."
            )
        pin = cpu_sets(size, num_cpus) if runtime.pin_cpus else None
        log.info(
            "running %d chunks on %d Ray workers (%d CPU, %g GPU each%s)", len(chunks), size,
            num_cpus, num_gpus, ", bound to their own cores" if pin else "",
        )  # fmt: skip
        notes = run_pool(
            spec, chunks, size, num_gpus=num_gpus, num_cpus=num_cpus, pin=pin, prepare=prepared,
            on_done=on_done,
        )  # fmt: skip
    return notes, size
