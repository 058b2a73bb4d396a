"""The Ray job entrypoints in pipelines/ (run here in-process, `--workers 0`, no Ray)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from media import ROOT


def _pipeline(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"pipeline_{name}", ROOT / "pipelines" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up while the file runs, like an import would allow
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_refocus_adds_cluster_and_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    refocus = _pipeline("refocus")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert refocus.cluster_args(["in.mp4", "-o", "out.mov"]) == [
        "in.mp4", "-o", "out.mov", "--address", "10.0.0.1:6379", "--resume",
    ]  # fmt: skip
    given = ["in.mp4", "--address=auto", "--resume"]
    assert refocus.cluster_args(given) == given


def test_enhance_runs_here_without_a_cluster(
    monkeypatch: pytest.MonkeyPatch, vfr_clip: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    enhance = _pipeline("enhance")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out.mkv"
    assert enhance.main([str(vfr_clip), "-o", str(out), "--frames", "f0-f2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3
    assert Path(summary["audit"]).is_file()


@pytest.mark.slow
def test_enhance_runs_as_a_ray_task(vfr_clip: Path, tmp_path: Path) -> None:
    import ray

    enhance = _pipeline("enhance")
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        address = context.address_info["gcs_address"]
        out = tmp_path / "out.mkv"
        args = [str(vfr_clip), "-o", str(out), "--frames", "f0-f1", "--address", address, "-q"]
        assert enhance.main(args) == 0
    finally:
        ray.shutdown()
    doc = json.loads(out.with_name("out.mkv.audit.json").read_text())
    assert doc["runtime"]["determinism"]["torch_threads"] == 2
    assert len(doc["frames"]) == 2


def test_batch(vfr_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _pipeline("batch")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert batch.cluster_args(["jobs.yaml", "-o", "out"])[-2:] == ["--address", "10.0.0.1:6379"]
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "defaults: {command: transcode, options: {encode: {codec: ffv1}}}\n"
        "jobs:\n"
        f"  - {{input: {vfr_clip}, output: a.mkv}}\n"
        f"  - {{input: {tmp_path / 'missing.mp4'}, output: b.mkv}}\n"
    )
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = [str(jobs), "-o", str(out), "--workers", "0", "--report", str(report), "-q"]
    assert batch.main(args) == 1
    results = json.loads(report.read_text())
    assert [c["status"] for c in results["clips"]] == ["done", "failed"]
    assert (out / "a.mkv").is_file()
    assert not (out / "b.mkv").exists()
    # a rerun skips what is done
    assert batch.main(args) == 1
    assert json.loads(report.read_text())["clips"][0]["status"] == "skipped"
