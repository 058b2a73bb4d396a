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


def test_enhance_explains(capsys: pytest.CaptureFixture[str]) -> None:
    assert _pipeline("enhance").main([]) == 2
    assert "DeblurNet" in capsys.readouterr().err


def test_batch(vfr_clip: Path, tmp_path: Path) -> None:
    batch = _pipeline("batch")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "command: transcode\n"
        "options: [--codec, ffv1]\n"
        "jobs:\n"
        f"  - {{input: {vfr_clip}, output: {tmp_path / 'a.mkv'}}}\n"
        f"  - {{input: {tmp_path / 'missing.mp4'}, output: {tmp_path / 'b.mkv'}}}\n"
    )
    report = tmp_path / "report.json"
    assert batch.main([str(jobs), "--workers", "0", "--report", str(report)]) == 1
    results = json.loads(report.read_text())
    assert [r["status"] for r in results] == ["done", "failed (exit 2)"]
    assert (tmp_path / "a.mkv").is_file()
    assert not (tmp_path / "b.mkv").exists()
    # a rerun skips what is done
    assert batch.main([str(jobs), "--workers", "0", "--report", str(report)]) == 1
    assert json.loads(report.read_text())[0]["status"] == "skipped (output exists)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "'jobs' list"),
        ("jobs: [{input: a.mp4}]", "needs 'input' and 'output'"),
        ("jobs: [{input: a, output: b, command: dance}]", "must be one of"),
    ],
)
def test_batch_rejects_bad_lists(tmp_path: Path, text: str, message: str) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(text)
    with pytest.raises(SystemExit, match=message):
        _pipeline("batch").load_jobs(jobs)
