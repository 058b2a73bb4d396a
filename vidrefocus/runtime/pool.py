"""Ray execution: an embedded or existing Ray session, and a pool of chunk workers."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ray
import ray.exceptions

from vidrefocus.errors import ConfigError, ProcessingError, VidRefocusError
from vidrefocus.runtime.chunk import ChunkRecord, JobSpec
from vidrefocus.runtime.factory import StageFactory
from vidrefocus.runtime.plan import Chunk
from vidrefocus.runtime.worker import MAX_RESTARTS, ChunkWorker

__all__ = [
    "cpu_sets",
    "gpus_per_worker",
    "machine_cores",
    "pool_size",
    "ray_session",
    "run_pool",
    "worker_cpus",
    "worker_env",
]

log = logging.getLogger(__name__)

# Only chunk descriptors and records travel through Ray, never frames, so a small object
# store is plenty and leaves the machine's shared memory to the stages.
_OBJECT_STORE_BYTES = 256 * 1024 * 1024
# How long one `ray.wait` blocks, so Ctrl-C is noticed promptly.
_WAIT_S = 1.0
# glibc malloc keeps up to 8 arenas per core and, once they all exist, hands each new thread one
# of them in turn. A Ray worker's own threads create all of them before its first chunk (16 on
# 2 cores), and a chunk worker starts new decode, encode and codec threads for every chunk, so
# successive chunks' frames land in other arenas, each of which keeps its own frame-sized free
# blocks: a worker's peak memory grew by about a third over its first 15 chunks, then stayed
# (BENCHMARKS.md, "Ray chunk-worker memory"). With two arenas the job's peak is flat with clip
# length. A value set in the driver's environment is passed on instead.
_MALLOC_ARENA_MAX = "2"


@contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[bool]:
    """Use the running Ray session, connect to `address`, or start Ray on this machine.

    Ray is shut down on exit only if it was started or connected here.

    Args:
        address: None for embedded Ray; "auto", "host:port" or "ray://host:10001" for an
            existing cluster.
        num_cpus: CPUs of an embedded session (None: all of this machine's).
    Yields:
        True if this call started (and will stop) the session.
    Raises:
        ProcessingError: the cluster cannot be reached or Ray cannot start.
    """
    if ray.is_initialized():
        yield False
        return
    # ray.init replaces the SIGTERM handler with one that calls sys.exit; keep the caller's
    # (the CLI turns SIGTERM into a clean stop with exit code 143).
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=_OBJECT_STORE_BYTES,
            )
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "an embedded Ray session"
        raise ProcessingError(
            f"could not start {where}: {err}. Check --address (or `ray status` on the head "
            "node), or run without --address to use this machine."
        ) from err
    if previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous_sigterm)
    try:
        yield True
    finally:
        ray.shutdown()


def gpus_per_worker(device: str, *, embedded: bool) -> float:
    """GPUs each worker asks Ray for: 1 for "cuda", 1 for "auto" when GPUs are there now.

    On a cluster, "cuda" asks for a GPU even when none is up yet: an autoscaling cluster
    (GPU worker group scaled to zero) starts GPU nodes for the waiting workers.

    Args:
        device: `config.runtime.device`.
        embedded: Ray runs on this machine only (nothing can be added).
    Raises:
        ConfigError: "cuda" on this machine without a GPU.
    """
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if device == "cuda" and embedded and not has_gpu:
        raise ConfigError(
            "runtime.device is 'cuda' but this machine has no GPU Ray can use; set "
            "runtime.device to 'auto' or 'cpu', or connect to a GPU cluster with --address."
        )
    if device == "cuda" and not has_gpu:
        log.info("no GPU in the cluster yet; the workers wait for the autoscaler to add some.")
    return 1.0 if device == "cuda" or (device == "auto" and has_gpu) else 0.0


def pool_size(requested: int | None, chunks: int, num_gpus: float) -> int:
    """Workers to start: as requested, else one per GPU (or CPU) of the cluster; <= chunks."""
    if requested is None:
        resources = ray.cluster_resources()
        if num_gpus:
            requested = int(resources.get("GPU", 0) // num_gpus)
        else:
            requested = int(resources.get("CPU", os.cpu_count() or 1))
    return max(1, min(requested, chunks))


def machine_cores() -> list[int]:
    """The cores this process may run on (its affinity; all of the machine's by default)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def worker_cpus(requested: int | None, workers: int, cores: int | None) -> int:
    """CPUs each worker reserves from Ray and uses as torch threads.

    On this machine (`cores` known: its cores, or the embedded session's CPUs) they are shared
    among the workers, so one worker on a 16-core machine uses all 16 rather than one; on a
    cluster (`cores` None) a worker takes one CPU (its node's GPU does the work) unless
    `runtime.cpus_per_worker` says otherwise.
    """
    if requested is not None:
        return requested
    return max(1, cores // max(1, workers)) if cores is not None else 1


def cpu_sets(workers: int, cpus: int) -> list[tuple[int, ...]]:
    """Disjoint cores for each of `workers` workers of `cpus` CPUs each (`runtime.pin_cpus`).

    Raises:
        ConfigError: fewer cores than workers x cpus.
    """
    cores = machine_cores()
    if workers * cpus > len(cores):
        raise ConfigError(
            f"runtime.pin_cpus needs a core of its own for every CPU of every worker: "
            f"{workers} workers x {cpus} CPUs > {len(cores)} cores; use fewer workers, "
            "lower runtime.cpus_per_worker, or turn runtime.pin_cpus off."
        )
    return [tuple(cores[i * cpus : (i + 1) * cpus]) for i in range(workers)]


def worker_env() -> dict[str, str]:
    """Environment variables of every chunk worker's process (Ray `runtime_env`)."""
    return {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", _MALLOC_ARENA_MAX)}


def _result(ref: ray.ObjectRef, chunk: Chunk | None) -> Any:
    where = f"chunk {chunk.index}" if chunk is not None else "a worker"
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, VidRefocusError):
            # The worker's own error, re-raised as is so the CLI maps it to its exit code.
            raise cause from None
        raise ProcessingError(f"{where} failed in its worker: {cause or err}") from err
    except ray.exceptions.RayActorError as err:
        raise ProcessingError(
            f"{where}: the worker processing it died {MAX_RESTARTS + 1} times ({err}). "
            "Finished chunks are kept; rerun with --resume to continue."
        ) from err
    except ray.exceptions.RayError as err:
        raise ProcessingError(f"{where}: Ray failed ({err}); rerun with --resume.") from err


def run_pool(
    spec: JobSpec,
    chunks: Sequence[Chunk],
    workers: int,
    *,
    num_gpus: float = 0.0,
    num_cpus: int = 1,
    pin: Sequence[tuple[int, ...]] | None = None,
    prepare: Callable[[], StageFactory] | None = None,
    on_done: Callable[[ChunkRecord], None],
) -> list[str]:
    """Process `chunks` on up to `workers` Ray actors, one chunk in flight per actor.

    Chunks go to whichever worker is free, and results are taken as they finish
    (`ray.wait`), so a slow chunk never holds up the others. A worker that dies is restarted
    by Ray and its chunk retried (`MAX_RESTARTS`, `MAX_TASK_RETRIES`).

    The workers start (a process each, torch and the stages' code imported) while `prepare`
    runs here; they build their stages from what it returns.

    Args:
        spec: the job (sent once to each worker).
        chunks: the chunks to process.
        workers: number of actors, >= 1.
        num_gpus: GPUs per actor.
        num_cpus: CPUs per actor, reserved from Ray and used as its torch threads.
        pin: cores for each actor to bind itself to (`cpu_sets`), or None.
        prepare: the driver's whole-clip step, returning the factory the workers build their
            stages from (`StageFactory.prepared`); None: the spec's factory as it is.
        on_done: called in the driver with each finished chunk's record, in finishing order.
    Returns:
        The stage factory's notes (from the first worker).
    Raises:
        VidRefocusError: the error a worker raised (bad input, failed stage, ...).
        ProcessingError: a worker died too often, or Ray failed.
    """
    options = {
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "runtime_env": {"env_vars": worker_env()},
    }
    actors = [
        ChunkWorker.options(**options).remote(spec, num_cpus, pin[i] if pin else None)
        for i in range(workers)
    ]
    try:
        factory = prepare() if prepare is not None else spec.factory
        # A worker gets chunks once it has built its stages; workers still waiting for a node
        # (an autoscaler adding GPUs) join when they are ready, and the job does not wait for
        # them: asking for more workers than the cluster can hold costs nothing.
        starting = {actor.ready.remote(factory): actor for actor in actors}
        notes: list[str] | None = None
        idle: deque[Any] = deque()
        queue = deque(chunks)
        pending: dict[ray.ObjectRef, tuple[Any, Chunk]] = {}
        while queue or pending:
            while queue and idle:
                actor, chunk = idle.popleft(), queue.popleft()
                pending[actor.process.remote(chunk, factory)] = (actor, chunk)
            waiting = [*pending, *starting] if queue else list(pending)
            done, _ = ray.wait(waiting, num_returns=1, timeout=_WAIT_S)
            for ref in done:
                if ref in starting:
                    actor = starting.pop(ref)
                    worker_notes = _result(ref, None)
                    notes = worker_notes if notes is None else notes
                else:
                    actor, chunk = pending.pop(ref)
                    on_done(_result(ref, chunk))
                idle.append(actor)
        return notes or []
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
