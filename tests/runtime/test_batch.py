"""`vidrefocus batch`: real clips through the real runtime, failures isolated, reruns skip.

Most runs are in-process (`--workers 0`); one goes through embedded Ray. Outputs are FFV1,
so decoded frames can be compared exactly with single-clip runs of the same settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from media import SAMPLES, ffmpeg
from vidrefocus.cli import main
from vidrefocus.errors import InputError
from vidrefocus.io.reader import VideoReader
from vidrefocus.runtime.batch import BATCH_MANIFEST, run_batch
from vidrefocus.runtime.jobs import load_batch

FRAMES = 12


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 12 frames of the sample scene, with its depth maps in `shot_depth/`."""
    folder = tmp_path_factory.mktemp("batch-media")
    clip = folder / "shot.mp4"
    # the sample has a keyframe every 24 frames, so a stream copy cuts exactly
    ffmpeg("-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-frames:v", str(FRAMES),
           "-c", "copy", str(clip))  # fmt: skip
    depth = folder / "shot_depth"
    depth.mkdir()
    for i in range(FRAMES):
        shutil.copy(SAMPLES / "scene_depth" / f"{i:06d}.png", depth / f"{i:06d}.png")
    return clip, depth


def _batch(*args: str | Path) -> int:
    return main(["batch", *(str(a) for a in args)])


def _summary(capsys: pytest.CaptureFixture[str]) -> dict[str, list[Any]]:
    clips = json.loads(capsys.readouterr().out)["clips"]
    return {c["name"]: [c["status"], c["exit_code"], c["message"]] for c in clips}


def _assert_same_frames(a: Path, b: Path) -> None:
    fa, fb = list(VideoReader(a)), list(VideoReader(b))
    assert [f.pts for f in fa] == [f.pts for f in fb]
    assert all(torch.equal(x.rgb, y.rgb) for x, y in zip(fa, fb, strict=True))


def test_batch_runs_each_clip_and_reruns_skip(
    shot: tuple[Path, Path], vfr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, depth = shot
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "defaults: {options: {encode: {codec: ffv1}}}\n"
        "jobs:\n"
        f"  - {{input: {clip}, output: shot.mov, depth: {depth}, focus: '0s:3m, 0.4s:8m'}}\n"
        f"  - {{input: {tmp_path / 'missing.mp4'}, command: transcode}}\n"
        f"  - {{input: {vfr_clip}, command: transcode}}\n"
    )
    out = tmp_path / "out"
    assert _batch(jobs, "-o", out, "--workers", "0", "--json") == 1
    first = _summary(capsys)
    assert first["jobs[0] (shot.mp4)"][:2] == ["done", 0]
    assert first["jobs[1] (missing.mp4)"][:2] == ["failed", 2]
    assert "no such input file" in first["jobs[1] (missing.mp4)"][2]
    assert first["jobs[2] (vfr.mkv)"][:2] == ["done", 0]
    assert not (out / "missing.mkv").exists()

    # the batch's refocus is the single-clip command with the same settings, frame for frame
    single = tmp_path / "single.mov"
    assert main(["refocus", str(clip), "-o", str(single), "--depth", str(depth),
                 "--focus", "0s:3m, 0.4s:8m", "--codec", "ffv1", "-q"]) == 0  # fmt: skip
    _assert_same_frames(out / "shot.mov", single)
    _assert_same_frames(out / "vfr.mkv", vfr_clip)
    manifest = json.loads((out / BATCH_MANIFEST).read_text())["clips"]
    assert sorted(manifest) == ["shot.mov", "vfr.mkv"]
    assert {rec["state"] for rec in manifest.values()} == {"done"}
    assert sorted(p.name for p in out.iterdir()) == [
        f".{BATCH_MANIFEST}.lock",
        "shot.mov",
        "vfr.mkv",
        BATCH_MANIFEST,
    ], "work folders left behind"

    # a rerun skips the finished clips without touching them, and retries the failed one
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.m*")}
    assert _batch(jobs, "-o", out, "--workers", "0", "--json") == 1
    again = _summary(capsys)
    assert [s[0] for s in again.values()] == ["skipped", "failed", "skipped"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.m*")}

    # a damaged output is redone; the job file without the missing clip passes
    with (out / "vfr.mkv").open("ab") as f:
        f.write(b"damage")
    lines = jobs.read_text().splitlines()
    jobs.write_text("\n".join(line for line in lines if "missing" not in line) + "\n")
    assert _batch(jobs, "-o", out, "--workers", "0", "--json") == 0
    assert [s[0] for s in _summary(capsys).values()] == ["skipped", "done"]
    _assert_same_frames(out / "vfr.mkv", vfr_clip)

    # other settings for a clip are another job: its output is redone
    jobs.write_text(jobs.read_text().replace("0.4s:8m", "0.4s:5m"))
    assert _batch(jobs, "-o", out, "--workers", "0", "--json") == 0
    assert [s[0] for s in _summary(capsys).values()] == ["done", "skipped"]


def test_batch_never_replaces_foreign_outputs(
    vfr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    foreign = out / "vfr.mkv"
    foreign.write_bytes(b"someone else's file")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        f"- {{input: {vfr_clip}, command: transcode, options: {{encode.codec: ffv1}}}}\n"
    )
    assert _batch(jobs, "-o", out, "--workers", "0", "--json") == 1
    (status,) = _summary(capsys).values()
    assert status[0] == "failed"
    assert "was not written by this batch" in status[2]
    assert foreign.read_bytes() == b"someone else's file"
    assert _batch(jobs, "-o", out, "--workers", "0", "--json", "--overwrite") == 0
    _assert_same_frames(foreign, vfr_clip)


def test_batch_over_a_folder(
    shot: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, depth = shot
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(clip, folder / "a.mp4")
    shutil.copytree(depth, folder / "a_depth")
    shutil.copy(clip, folder / "b.mp4")
    (folder / "b_depth").mkdir()  # one map for a longer clip: refocusing b fails, a does not
    shutil.copy(next(iter(sorted(depth.iterdir()))), folder / "b_depth" / "000000.png")
    (folder / "notes.txt").write_text("not a video")
    lossless = tmp_path / "lossless.yaml"
    lossless.write_text("encode: {codec: ffv1}\n")
    out = tmp_path / "out"
    code = _batch(folder, "-o", out, "--workers", "0", "--config", lossless, "--json")
    assert code == 1
    summary = _summary(capsys)
    assert summary["a.mp4"][:2] == ["done", 0]
    assert summary["b.mp4"][:2] == ["failed", 2]
    assert "give exactly one map per frame" in summary["b.mp4"][2]
    assert len(list(VideoReader(out / "a.mkv"))) == FRAMES  # FFV1 fits .mkv, not .mp4
    # the same folder as transcodes: other jobs, other outputs are replaced (batch wrote them)
    assert _batch(folder, "-o", out, "--workers", "0", "--config", lossless,
                  "--command", "transcode", "--json") == 0  # fmt: skip
    assert [s[0] for s in _summary(capsys).values()] == ["done", "done"]


def test_bad_job_file_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("- {input: a.mp4}\n- {input: b.mp4, focus_fle: keys.yaml}\n")
    assert _batch(jobs, "-o", tmp_path / "out", "--workers", "0") == 2
    err = capsys.readouterr().err
    assert "jobs[1] (b.mp4): unknown key 'focus_fle'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_batch_refuses_outputs_outside_its_folder_before_running(
    vfr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(outside)
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        f"- {{input: {vfr_clip}, command: transcode}}\n"
        f"- {{input: {vfr_clip}, command: transcode, output: link/vfr.mkv}}\n"
    )
    assert _batch(jobs, "-o", out, "--workers", "0") == 2
    err = capsys.readouterr().err
    assert "jobs[1] (vfr.mkv): output link/vfr.mkv leaves the output folder" in err
    assert "Traceback" not in err
    # nothing ran, not even the valid first job, and nothing was written outside
    assert sorted(p.name for p in out.iterdir()) == ["link"]
    assert list(outside.iterdir()) == []


def test_run_batch_checks_outputs_and_its_lock(vfr_clip: Path, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(f"- {{input: {vfr_clip}, command: transcode}}\n")
    # jobs named for one folder, run into another: refused before the folder is made
    with pytest.raises(InputError, match=r"jobs\[0\] \(vfr.mkv\): output .* leaves"):
        run_batch(load_batch(jobs, tmp_path / "a"), tmp_path / "b", workers=0)
    assert not (tmp_path / "b").exists()
    # a lock file planted as a symlink is not followed (opening it would truncate the target)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / f".{BATCH_MANIFEST}.lock").symlink_to(victim)
    with pytest.raises(InputError, match="cannot create the batch lock"):
        run_batch(load_batch(jobs, out), out, workers=0)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == [f".{BATCH_MANIFEST}.lock"]


@pytest.mark.slow
@pytest.mark.distributed
def test_batch_on_embedded_ray(
    vfr_clip: Path, tenbit_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "defaults:\n"
        "  command: transcode\n"
        "  options: {encode.codec: ffv1, runtime.chunk_seconds: 0.3}\n"
        f"jobs: [{{input: {vfr_clip}}}, {{input: {tenbit_clip}}}]\n"
    )
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    assert _batch(jobs, "-o", ray_out, "--workers", "2", "--json") == 0
    assert [s[:2] for s in _summary(capsys).values()] == [["done", 0], ["done", 0]]
    assert _batch(jobs, "-o", local_out, "--workers", "0", "-q") == 0
    for name in ("vfr.mkv", "tenbit_422.mov"):
        _assert_same_frames(ray_out / name, local_out / name)
