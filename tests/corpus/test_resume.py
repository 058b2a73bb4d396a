"""SIGINT during a chunked refocus leaves no output file and a work folder that `--resume`
completes, into the same frames as a run that was never interrupted.

The corpus's scene clip (48 frames at 320x180, a keyframe every 8) with its metric depth, in
chunks of 1/3 s: six chunks of 8 frames, run in this process's way (`--workers 0`) by a real
`vidrefocus` process, so that the signal arrives as it does from a terminal. Output is FFV1,
so decoded frames can be compared exactly.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from corpus.harness import leftover_processes, leftover_temps, marked, run_process
from media import sha256
from vidrefocus.cli import main
from vidrefocus.io.reader import VideoReader

CHUNKS = 6


def _refocus(corpus: dict[str, Path], out: Path, work: Path) -> list[str]:
    return [
        "refocus", str(corpus["scene"]), "-o", str(out), "--codec", "ffv1",
        "--depth", str(corpus["scene_depth"]), "--focus", "0s:2m, 1.5s:ease-in-out:8m",
        "--config", str(corpus["config_small_chunks"]), "--workers", "0",
        "--work-dir", str(work), "-q",
    ]  # fmt: skip


def _recorded(work: Path) -> dict[str, dict]:
    try:
        return json.loads((work / "manifest.json").read_text())["chunks"]
    except (OSError, ValueError, KeyError):  # not there yet, or being replaced
        return {}


@pytest.mark.slow
def test_sigint_then_resume_equals_an_uninterrupted_run(
    corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, work = tmp_path / "out.mkv", tmp_path / "work"
    args = _refocus(corpus, out, work)
    before = {k: sha256(corpus[k]) for k in ("scene", "config_small_chunks")}
    env = {"OMP_NUM_THREADS": "1", "VIDREFOCUS_CACHE_DIR": str(tmp_path / "cache")}
    with marked(env) as run_id:
        stopped = run_process(args, {}, interrupt=(signal.SIGINT, lambda: bool(_recorded(work))))
        assert leftover_processes(run_id, grace_s=10.0) == []
    assert stopped.signalled, f"the job ended before it could be interrupted: {stopped.stderr}"
    assert stopped.code == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "interrupted" in stopped.flat_stderr
    assert str(out) in stopped.flat_stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["work"]
    done = _recorded(work)
    assert 1 <= len(done) < CHUNKS, f"{len(done)} chunks were done when SIGINT arrived"
    assert leftover_temps([work]) == [], "the interrupted chunk's temporary file is left"

    capsys.readouterr()
    assert main([*args, "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chunks"] == CHUNKS
    assert summary["chunks_reused"] == len(done)
    assert summary["chunks_run"] == CHUNKS - len(done)
    after = _recorded(work)
    assert all(after[i] == rec for i, rec in done.items()), "a finished chunk was redone"

    reference = tmp_path / "reference.mkv"
    assert main(_refocus(corpus, reference, tmp_path / "work_ref")) == 0
    got, want = list(VideoReader(out)), list(VideoReader(reference))
    assert [f.pts for f in got] == [f.pts for f in want]
    assert len(got) == 48
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a.rgb, b.rgb), f"frame at pts {a.pts} differs"
    assert {k: sha256(corpus[k]) for k in before} == before
