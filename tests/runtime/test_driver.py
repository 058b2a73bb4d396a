"""The driver on real Ray: same frames whatever the worker count, worker loss, driver loss.

One local Ray session (2 CPUs) serves the module. Output is FFV1 in .mov, whose time base is
the source's, so decoded frames and pts can be compared exactly. `samples/scene.mp4` (96
frames, a keyframe every 24) with 1 s chunks gives 4 chunks.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from media import ROOT
from vidrefocus.cli import main
from vidrefocus.config import load_config
from vidrefocus.errors import ConfigError, InputError, ProcessingError
from vidrefocus.io.probe import frame_pts, probe
from vidrefocus.io.reader import DecodedFrame, VideoReader
from vidrefocus.runtime.chunk import ChunkProcessor, JobSpec
from vidrefocus.runtime.driver import default_work_dir, run_job
from vidrefocus.runtime.factory import StageFactory
from vidrefocus.runtime.local import Progress, run_local
from vidrefocus.runtime.manifest import MANIFEST_NAME, Manifest
from vidrefocus.runtime.plan import plan_chunks, scan_timeline

HERE = Path(__file__).resolve().parent
CONFIG = load_config(overrides={"encode.codec": "ffv1", "runtime.chunk_seconds": 1.0})


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray session for the module; yields its GCS address for other drivers."""
    import ray

    with pytest.MonkeyPatch.context() as mp:
        # Ray workers inherit the raylet's environment: let them import `chunk_faults`.
        path = [str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
        context = ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=100 * 1024 * 1024,
        )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(sample_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> list[DecodedFrame]:
    """The single-pass (`run_local`) FFV1 output's decoded frames."""
    out = tmp_path_factory.mktemp("reference") / "single.mov"
    run_local(sample_scene, out, [], CONFIG)
    return list(VideoReader(out))


def _assert_same_frames(path: Path, reference: list[DecodedFrame], source: Path) -> None:
    frames = list(VideoReader(path))
    assert [f.pts for f in frames] == frame_pts(source), "pts differ from the input's"
    assert [f.pts for f in frames] == [f.pts for f in reference]
    for got, want in zip(frames, reference, strict=True):
        assert torch.equal(got.rgb, want.rgb), f"frame at pts {got.pts} differs"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("workers", [0, 1, 2])
def test_identity_across_worker_counts(
    workers: int,
    ray_address: str,
    sample_scene: Path,
    reference: list[DecodedFrame],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.mov"
    seen: list[int] = []
    result = run_job(
        sample_scene, out, CONFIG, workers=workers, progress=lambda p: seen.append(p.frames_done)
    )
    assert (result.chunks, result.chunks_run, result.workers, result.frames) == (4, 4, workers, 96)
    assert seen[-1] == 96
    assert seen == sorted(seen)
    _assert_same_frames(out, reference, sample_scene)
    assert not result.work_dir.exists()


@pytest.mark.slow
@pytest.mark.distributed
def test_worker_loss_is_retried(
    ray_address: str, sample_scene: Path, reference: list[DecodedFrame], tmp_path: Path
) -> None:
    marker = tmp_path / "crash-once"
    marker.touch()
    work = tmp_path / "work"
    out = tmp_path / "out.mov"
    # The first worker to reach its 3rd batch of a chunk dies (os._exit) mid-chunk, once.
    factory = StageFactory("chunk_faults:crash_once_stages", {"marker": str(marker)})
    result = run_job(
        sample_scene, out, CONFIG, factory=factory, workers=2, work_dir=work, keep_work=True
    )
    fired = Path(f"{marker}.fired")
    assert fired.exists(), "no worker was killed"
    assert not marker.exists()
    dead = fired.read_text()
    manifest = Manifest.load(work / MANIFEST_NAME)
    assert manifest is not None
    assert sorted(manifest.chunks) == [0, 1, 2, 3]
    assert all(rec["worker"].split(":")[1] != dead for rec in manifest.chunks.values())
    assert result.notes == ("crash once",)
    _assert_same_frames(out, reference, sample_scene)
    # the dead worker's half-written chunk was not left behind
    assert sorted(p.name for p in work.iterdir() if "vidrefocus-tmp" in p.name) == []


@pytest.mark.slow
@pytest.mark.distributed
def test_driver_loss_then_resume(
    ray_address: str,
    sample_scene: Path,
    reference: list[DecodedFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "chunks.yaml"
    config.write_text("runtime:\n  chunk_seconds: 1.0\n")
    out, work = tmp_path / "out.mov", tmp_path / "work"
    args = ["transcode", str(sample_scene), "-o", str(out), "--codec", "ffv1",
            "--config", str(config), "--workers", "1", "--work-dir", str(work),
            "--address", ray_address]  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "vidrefocus.cli", *args, "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    manifest_path = work / MANIFEST_NAME
    deadline = time.monotonic() + 180
    try:
        while True:
            manifest = Manifest.load(manifest_path)
            if manifest is not None and manifest.chunks:
                break
            if driver.poll() is not None:
                pytest.fail(f"the driver ended early: {driver.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("no chunk was recorded in time")
            time.sleep(0.02)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        driver.stderr.close()
    before = Manifest.load(manifest_path)
    assert before is not None
    done = dict(before.chunks)
    assert 1 <= len(done) < 4, f"{len(done)} chunks were done before the kill"
    assert not out.exists()
    first_run = before.runs[-1]["run"]

    assert main([*args, "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["chunks_reused"], summary["chunks_run"]) == (len(done), 4 - len(done))
    after = Manifest.load(manifest_path)
    assert after is not None
    second_run = after.runs[-1]["run"]
    assert after.runs[-1]["reused"] == sorted(done)
    for index, rec in after.chunks.items():
        if index in done:
            assert rec == done[index], "a finished chunk was redone"
        else:
            assert rec["run"] == second_run != first_run
    assert sorted(after.chunks) == [0, 1, 2, 3]
    _assert_same_frames(out, reference, sample_scene)


@pytest.mark.distributed
def test_worker_errors_keep_their_type(ray_address: str, vfr_clip: Path, tmp_path: Path) -> None:
    # raised inside the actor, re-raised in the driver as the same library error (exit code 2)
    factory = StageFactory("vidrefocus.runtime.factory:no_such_factory")
    with pytest.raises(ConfigError, match="has no function no_such_factory"):
        run_job(vfr_clip, tmp_path / "out.mkv", CONFIG, factory=factory, workers=1)
    assert not (tmp_path / "out.mkv").exists()


def test_resume_redoes_only_missing_or_changed_chunks(vfr_clip: Path, tmp_path: Path) -> None:
    config = load_config(overrides={"encode.codec": "ffv1", "runtime.chunk_seconds": 0.3})
    out, work = tmp_path / "out.mkv", tmp_path / "work"
    first = run_job(vfr_clip, out, config, workers=0, work_dir=work, keep_work=True)
    assert (first.chunks, first.chunks_run) == (3, 3)
    frames = list(VideoReader(out))
    manifest = Manifest.load(work / MANIFEST_NAME)
    assert manifest is not None
    with manifest.chunk_file(1).open("ab") as f:
        f.write(b"damage")
    again = run_job(
        vfr_clip, out, config, workers=0, work_dir=work, keep_work=True, resume=True,
        overwrite=True,
    )  # fmt: skip
    assert (again.chunks_run, again.chunks_reused) == (1, 2)
    redone = list(VideoReader(out))
    assert [f.pts for f in redone] == [f.pts for f in frames]
    assert all(torch.equal(a.rgb, b.rgb) for a, b in zip(frames, redone, strict=True))
    # other options are another job: nothing is reused
    other = config.model_copy(update={"encode": config.encode.model_copy(update={"crf": 10})})
    fresh = run_job(vfr_clip, out, other, workers=0, work_dir=work, resume=True, overwrite=True)
    assert (fresh.chunks_run, fresh.chunks_reused) == (3, 0)
    assert work.exists(), "an explicit work folder is the caller's"


# vfr.mkv in 0.3 s chunks: 3 chunks of 10 frames; the last starts at pts 1292.
SHORT_CHUNKS = load_config(overrides={"encode.codec": "ffv1", "runtime.chunk_seconds": 0.3})
LAST_PTS = 1638


def _sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def _recorded(work: Path) -> dict[str, int]:
    """Chunk file name -> recorded size, from the work folder's manifest."""
    manifest = Manifest.load(work / MANIFEST_NAME)
    chunks = manifest.chunks.values() if manifest is not None else []
    return {rec["path"]: rec["size_bytes"] for rec in chunks}


def test_work_folder_holds_only_finished_chunks_and_the_one_in_flight(
    vfr_clip: Path, tmp_path: Path
) -> None:
    work, out = tmp_path / "work", tmp_path / "out.mkv"
    totals: list[int] = []

    def snapshot(_: Progress) -> None:
        files, done = _sizes(work), _recorded(work)
        extra = set(files) - set(done) - {MANIFEST_NAME, ".lock"}
        # in-process, one chunk is in flight, under its temporary name until it is complete
        assert len(extra) <= 1, f"stray files in the work folder: {sorted(files)}"
        assert all("vidrefocus-tmp" in name for name in extra), sorted(files)
        assert {name: files[name] for name in done} == done
        totals.append(sum(files.values()))

    result = run_job(vfr_clip, out, SHORT_CHUNKS, workers=0, work_dir=work, progress=snapshot)
    assert (result.chunks, result.frames) == (3, 30)
    # an explicit work folder keeps what --work-dir says: chunks and manifest (and the
    # empty lock file); no temporary file, no concat script
    files, done = _sizes(work), _recorded(work)
    assert sorted(files) == sorted([".lock", MANIFEST_NAME, *done])
    assert len(done) == result.chunks
    assert files[".lock"] == 0
    # at no time did the folder hold more than the finished job's chunks and manifest
    assert max(totals) <= sum(files.values())

    # the default work folder, hidden beside the output, is there during the run only
    other = tmp_path / "default" / "out.mkv"
    other.parent.mkdir()
    seen: list[bool] = []
    result = run_job(vfr_clip, other, SHORT_CHUNKS, workers=0,
                     progress=lambda _: seen.append(default_work_dir(other).is_dir()))  # fmt: skip
    assert seen
    assert all(seen)
    assert result.work_dir == default_work_dir(other)
    assert [p.name for p in other.parent.iterdir()] == ["out.mkv"]


def test_failed_run_leaves_only_resumable_chunks(
    vfr_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(HERE))  # the in-process worker imports `chunk_faults`
    work, out = tmp_path / "work", tmp_path / "out.mkv"
    work.mkdir()
    # left by a driver killed while saving its manifest
    (work / f".{MANIFEST_NAME}.4242.tmp").write_text("{")

    def orphan(_: Progress) -> None:
        # a worker orphaned by an earlier, killed driver, still writing its chunk
        for name in ("chunk-00002-0123456789ab.mkv",
                     ".chunk-00002-0123456789ab.89abcdef.vidrefocus-tmp.mkv"):  # fmt: skip
            (work / name).write_bytes(b"\0" * 1000)

    marker = tmp_path / "fail"
    marker.touch()
    factory = StageFactory(
        "chunk_faults:fail_at_pts_stages", {"pts": LAST_PTS, "marker": str(marker)}
    )
    with pytest.raises(ProcessingError, match=r"in chunk 2 at pts .*failing on purpose"):
        run_job(vfr_clip, out, SHORT_CHUNKS, factory=factory, workers=0, work_dir=work,
                progress=orphan)  # fmt: skip
    assert not out.exists()
    files, done = _sizes(work), _recorded(work)
    assert sorted(files) == sorted([".lock", MANIFEST_NAME, *done])
    assert len(done) == 2, "chunks 0 and 1 finished before chunk 2 failed"
    assert sum(files.values()) == files[MANIFEST_NAME] + sum(done.values())

    # and they are what a rerun of the same job takes over
    marker.unlink()
    resumed = run_job(vfr_clip, out, SHORT_CHUNKS, factory=factory, workers=0, work_dir=work,
                      resume=True)  # fmt: skip
    assert (resumed.chunks_reused, resumed.chunks_run, resumed.frames) == (2, 1, 30)


def test_one_driver_per_work_folder(vfr_clip: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with (work / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="another vidrefocus job"):
            run_job(vfr_clip, tmp_path / "out.mkv", CONFIG, workers=0, work_dir=work)
    assert not (tmp_path / "out.mkv").exists()


def test_cli_chunked_transcode(
    vfr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mkv"
    code = main(["transcode", str(vfr_clip), "-o", str(out), "--codec", "ffv1",
                 "--workers", "0", "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["frames"], summary["chunks"], summary["workers"]) == (30, 1, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mkv"], "work folder left behind"


def test_cli_rejects_negative_workers(
    vfr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["transcode", str(vfr_clip), "-o", str(tmp_path / "o.mkv"), "--workers", "-1"])
    assert code == 2
    assert "--workers must be >= 0" in capsys.readouterr().err


def _worker_reports(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.mark.distributed
@pytest.mark.parametrize("workers", [1, 2])
def test_workers_share_the_cores(
    workers: int, ray_address: str, sample_scene: Path, tmp_path: Path
) -> None:
    # The module's session has 2 CPUs: one worker uses both, two use one each.
    reports = tmp_path / "reports"
    reports.mkdir()
    factory = StageFactory("chunk_faults:report_worker_stages", {"folder": str(reports)})
    run_job(sample_scene, tmp_path / "out.mov", CONFIG, factory=factory, workers=workers)
    cores = min(2, len(os.sched_getaffinity(0)))
    found = _worker_reports(reports)
    assert len(found) == workers
    assert all(r["threads"] == max(1, cores // workers) for r in found), found


@pytest.mark.distributed
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_pinned_workers_run_on_cores_of_their_own(
    ray_address: str, sample_scene: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    factory = StageFactory("chunk_faults:report_worker_stages", {"folder": str(reports)})
    config = load_config(
        overrides={"encode.codec": "ffv1", "runtime.chunk_seconds": 1.0, "runtime.pin_cpus": True}
    )
    run_job(sample_scene, tmp_path / "out.mov", config, factory=factory, workers=2)
    found = _worker_reports(reports)
    cores = sorted(os.sched_getaffinity(0))[:2]
    assert sorted(c for r in found for c in r["cpus"]) == cores, found
    assert [r["threads"] for r in found] == [1, 1]


@pytest.mark.distributed
def test_impossible_cpu_settings_are_refused(
    ray_address: str, sample_scene: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mov"
    pinned = load_config(overrides={"encode.codec": "ffv1", "runtime.pin_cpus": True})
    with pytest.raises(ConfigError, match=r"pin_cpus .* --address"):
        run_job(sample_scene, out, pinned, workers=1, address=ray_address)
    greedy = load_config(overrides={"encode.codec": "ffv1", "runtime.cpus_per_worker": 64})
    with pytest.raises(ConfigError, match=r"cpus_per_worker is 64 .* has 2 CPUs"):
        run_job(sample_scene, out, greedy, workers=1)
    assert not out.exists()


def _counting_factory(folder: Path) -> StageFactory:
    return StageFactory(
        "chunk_faults:count_builds_stages",
        {"folder": str(folder)},
        prepare="chunk_faults:prepare_count_builds",
    )


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_a_worker_builds_its_stages_when_first_asked(
    monkeypatch: pytest.MonkeyPatch, sample_scene: Path, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    factory = _counting_factory(tmp_path)
    spec = JobSpec(probe(sample_scene), CONFIG, factory, tmp_path, ".mov", "run")
    processor = ChunkProcessor(spec)
    # Started without building: a Ray worker does this while the driver prepares.
    assert _lines(tmp_path / "builds.txt") == []
    prepared = factory.prepared(sample_scene, CONFIG, tmp_path)
    assert processor.ready(prepared) == [f"prepared: {tmp_path / 'prepared'}"]
    processor.ready(prepared)
    chunk = plan_chunks(scan_timeline(sample_scene), 1.0, 0).chunks[0]
    processor.process(chunk, prepared)
    assert [b[1] for b in _lines(tmp_path / "builds.txt")] == [str(tmp_path / "prepared")]
    # A restarted Ray worker gets the factory with each chunk; another factory means new stages.
    processor.process(chunk, factory)
    assert [b[1] for b in _lines(tmp_path / "builds.txt")] == [str(tmp_path / "prepared"), "None"]


@pytest.mark.distributed
def test_workers_build_from_what_the_driver_prepared_once(
    ray_address: str, sample_scene: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    result = run_job(
        sample_scene, tmp_path / "out.mov", CONFIG, factory=_counting_factory(tmp_path),
        workers=2, work_dir=work,
    )  # fmt: skip
    assert _lines(tmp_path / "prepares.txt") == [[str(os.getpid())]]
    builds = _lines(tmp_path / "builds.txt")
    assert len(builds) == 2  # once per worker, not once per chunk
    assert {pid for pid, _ in builds}.isdisjoint({str(os.getpid())})
    assert {prepared for _, prepared in builds} == {str(work.resolve() / "prepared")}
    assert result.notes == (f"prepared: {work.resolve() / 'prepared'}",)


@pytest.mark.distributed
def test_an_error_while_preparing_is_the_jobs_error(
    ray_address: str, sample_scene: Path, tmp_path: Path
) -> None:
    factory = StageFactory(
        "chunk_faults:count_builds_stages",
        {"folder": str(tmp_path)},
        prepare="chunk_faults:prepare_fails",
    )
    out = tmp_path / "out.mov"
    with pytest.raises(InputError, match="refused while preparing"):
        run_job(sample_scene, out, CONFIG, factory=factory, workers=2)
    assert not out.exists()
    assert _lines(tmp_path / "builds.txt") == []  # no worker built stages without the plan
