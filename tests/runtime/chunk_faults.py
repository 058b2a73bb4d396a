"""Stage factories that misbehave on purpose (or report on their worker), imported by Ray
workers in the runtime tests.

Ray workers import them by name (`chunk_faults:crash_once_stages`), so the tests put this
folder on the workers' PYTHONPATH. They are neighbours of the code under test, not fakes of it:
the runtime still decodes, encodes and stitches for real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from vidrefocus.config import Config
from vidrefocus.errors import InputError
from vidrefocus.runtime.factory import BuiltStages
from vidrefocus.stages import FrameBatch

__all__ = [
    "CrashOnce",
    "FailAtPts",
    "count_builds_stages",
    "crash_once_stages",
    "fail_at_pts_stages",
    "prepare_count_builds",
    "prepare_fails",
    "report_worker_stages",
]


class CrashOnce:
    """Identity stage whose process dies (`os._exit`) on its `at_batch`-th batch of a chunk,
    once per job: the first worker to claim `marker` (by deleting it) dies, writing its pid to
    `marker + ".fired"` first, so the test can tell which process was lost."""

    def __init__(self, marker: Path, at_batch: int) -> None:
        self.marker = marker
        self.at_batch = at_batch
        self.batches = 0

    def reset(self) -> None:
        self.batches = 0

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        self.batches += 1
        if self.batches == self.at_batch:
            try:
                self.marker.unlink()
            except FileNotFoundError:
                return batch
            Path(f"{self.marker}.fired").write_text(str(os.getpid()))
            os._exit(1)
        return batch


def crash_once_stages(
    input_path: Path, config: Config, marker: str, at_batch: int = 3
) -> BuiltStages:
    return BuiltStages(stages=[CrashOnce(Path(marker), at_batch)], notes=["crash once"])


class FailAtPts:
    """Identity stage that raises on the batch holding frame `pts` while `marker` exists: the
    chunk holding that frame fails (after writing its earlier frames), and the job with it;
    once the marker is gone, the same job (same factory arguments) runs through."""

    def __init__(self, pts: int, marker: Path) -> None:
        self.pts = pts
        self.marker = marker

    def reset(self) -> None:
        pass

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        if self.pts in batch.pts and self.marker.exists():
            raise RuntimeError(f"failing on purpose at pts {self.pts}")
        return batch


def fail_at_pts_stages(input_path: Path, config: Config, pts: int, marker: str) -> BuiltStages:
    return BuiltStages(stages=[FailAtPts(pts, Path(marker))], notes=["fail at pts"])


def report_worker_stages(input_path: Path, config: Config, folder: str) -> BuiltStages:
    """No stages; writes where the worker runs (`folder/PID.json`: the cores it may use and
    torch's threads) when the worker builds its stages."""
    report = {"cpus": sorted(os.sched_getaffinity(0)), "threads": torch.get_num_threads()}
    (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(report))
    return BuiltStages(stages=[], notes=["report worker"])


def prepare_count_builds(
    input_path: Path, config: Config, work_dir: Path, folder: str
) -> dict[str, str]:
    """The whole-clip step of `count_builds_stages`: appends a line to `folder/prepares.txt`
    and hands the workers a `prepared` argument."""
    with (Path(folder) / "prepares.txt").open("a") as log:
        log.write(f"{os.getpid()}\n")
    return {"prepared": str(Path(work_dir) / "prepared")}


def count_builds_stages(
    input_path: Path, config: Config, folder: str, prepared: str | None = None
) -> BuiltStages:
    """No stages; appends "PID PREPARED" to `folder/builds.txt` each time stages are built."""
    with (Path(folder) / "builds.txt").open("a") as log:
        log.write(f"{os.getpid()} {prepared}\n")
    return BuiltStages(stages=[], notes=[f"prepared: {prepared}"])


def prepare_fails(input_path: Path, config: Config, work_dir: Path, folder: str) -> dict[str, str]:
    """A whole-clip step that refuses the clip, as a bad focus key does."""
    raise InputError(f"{input_path}: refused while preparing")
