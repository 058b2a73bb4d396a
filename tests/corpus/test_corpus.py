"""Reliability: every command over a corpus of hostile inputs and faults (the table in
`table.py`), each run checked for its exit code, a clear message without a traceback, no
partial output, unchanged inputs, and no temporary file or process left behind.

Most cases run `vidrefocus.cli.main` in this process; signals, resource limits and Ray jobs
run a real `python -m vidrefocus.cli` process. `conftest.py` prints the report at the end.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from corpus.cases import Case, argv, output_path
from corpus.harness import (
    Outcome,
    digest,
    leftover_processes,
    leftover_temps,
    marked,
    run_in_process,
    run_process,
)
from corpus.report import Row
from corpus.table import CASES

pytestmark = pytest.mark.slow

# Whatever the machine has, the runs see none of its caches, models or Ray clusters.
_ISOLATION = {"HF_HUB_OFFLINE": "1", "RAY_ADDRESS": "local", "OMP_NUM_THREADS": "1"}
_FILE_LIMIT_BYTES = 2048  # "the disk is full" after 2 KiB
_ADDRESS_SPACE_BYTES = 8 * 2**30  # a guarded run fails inside this, not in the machine's memory
_GUARDED_TIMEOUT_S = 30.0


def _memory_guard() -> str | None:
    """Why the 8192x8192 refocus/deblur cases cannot pass yet, or None when the memory guard
    (vidrefocus/memory.py) refuses them on this machine."""
    try:
        from vidrefocus.config import load_config
        from vidrefocus.memory import SAFETY_SHARE, available_bytes, estimate_bytes
    except ImportError:
        return "vidrefocus/memory.py (the memory guard) is not there yet"
    available, _ = available_bytes()
    need = estimate_bytes("deblur", 8192, 8192, load_config())
    if available is None or need <= SAFETY_SHARE * available:
        have = "unknown" if available is None else f"{available / 2**30:.0f} GiB"
        return (
            f"the memory guard lets 8192x8192 run here: it estimates {need / 2**30:.1f} GiB "
            f"for deblur, and the memory available is {have}"
        )
    return None


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    if case.bug is not None:
        return [pytest.mark.xfail(strict=True, reason=case.bug)]
    if case.how == "guarded" and (why := _memory_guard()) is not None:
        # Not strict: the report line says what happens without the guard.
        return [pytest.mark.xfail(strict=False, reason=why)]
    return []


def _expected(case: Case) -> str:
    says = " ".join(repr(s) for s in case.says)
    return f"exit {case.code}" + (f" {says}" if says else "")


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.is_dir() else set()


def _is_work(entry: str) -> bool:
    # A chunked job's work folder, kept on failure so that --resume can continue it.
    return entry.split(os.sep)[0].endswith(".vidrefocus-work")


def _chunk_recorded(run_dir: Path) -> Callable[[], bool]:
    def ready() -> bool:
        for manifest in run_dir.glob(".*.vidrefocus-work/manifest.json"):
            try:
                if json.loads(manifest.read_text()).get("chunks"):
                    return True
            except (OSError, ValueError):  # being replaced right now
                continue
        return False

    return ready


def _writing(run_dir: Path) -> Callable[[], bool]:
    return lambda: any(run_dir.glob("*.vidrefocus-tmp*"))


def _run(case: Case, args: list[str], run_dir: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    if case.how == "main":
        capsys.readouterr()
        return run_in_process(args, lambda: capsys.readouterr().err)
    if case.how in ("sigint", "sigterm"):
        sig = signal.SIGINT if case.how == "sigint" else signal.SIGTERM
        ready = _chunk_recorded(run_dir) if case.chunked else _writing(run_dir)
        return run_process(args, {}, interrupt=(sig, ready))
    if case.how == "full_disk":
        return run_process(args, {}, fsize_bytes=_FILE_LIMIT_BYTES)
    if case.how == "guarded":
        return run_process(
            args, {}, address_space_bytes=_ADDRESS_SPACE_BYTES, timeout_s=_GUARDED_TIMEOUT_S
        )
    return run_process(args, {})


def _prepare(case: Case, out: Path | None) -> bytes | None:
    """Set the stage for an output case; returns the bytes put at the output path, if any."""
    if case.prepare == "readonly":
        assert out is not None
        out.parent.mkdir()
        out.parent.chmod(0o555)
    elif case.prepare == "exists":
        assert out is not None
        out.write_bytes(b"precious")
        return b"precious"
    return None


def _check(
    case: Case,
    outcome: Outcome,
    out: Path | None,
    kept: bytes | None,
    named: Path | None,
    before: set[str],
    run_dir: Path,
) -> tuple[list[str], bool]:
    """Problems with the outcome (exit, message, outputs), and whether one is a partial
    output."""
    problems = [*outcome.notes]
    if outcome.code != case.code:
        problems.append(f"exit {outcome.code}, expected {case.code}")
    if "Traceback" in outcome.stderr:
        lines = outcome.stderr.strip().splitlines()
        problems.append(f"traceback ({lines[-1][:120] if lines else ''})")
    text = outcome.flat_stderr.lower()
    for fragment in case.says:
        if not any(" ".join(f.split()).lower() in text for f in fragment.split("|")):
            problems.append(f"message lacks {fragment!r}")
    if case.code != 0 and named is not None and named.name.lower() not in text:
        problems.append(f"message does not name {named.name!r}")
    partial = False
    if outcome.code != 0:  # it failed (as it should or not): nothing of it may be left
        if out is not None and case.output != "{input}" and out.name not in case.leaves:
            if kept is not None:
                partial = out.read_bytes() != kept
            else:
                partial = out.exists()
        new = {e for e in _tree(run_dir) - before if not _is_work(e) and e not in case.leaves}
        if new:
            partial = True
            problems.append(f"left {sorted(new)[:4]}")
        elif partial:
            problems.append(f"left {out}")
    elif case.code == 0:
        if out is not None and not out.exists():
            problems.append(f"no output at {out.name}")
        work = [e for e in _tree(run_dir) if _is_work(e) and os.sep not in e]
        if work:
            problems.append(f"work folder left: {work}")
    return problems, partial


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_corpus(
    case: Case,
    corpus: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    report_row: list[Row],
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    out = output_path(case, corpus, run_dir)
    kept = _prepare(case, out)
    inputs = [corpus[k] for k in case.uses]
    folders = {run_dir, *(p.parent for p in inputs)}
    sums = digest(inputs)
    before = _tree(run_dir)
    env = {
        **_ISOLATION,
        "VIDREFOCUS_CACHE_DIR": str(tmp_path.parent / "cache"),
        "VIDREFOCUS_MODELS": str(tmp_path.parent / "no-models"),
    }
    try:
        with marked(env) as run_id:
            outcome = _run(case, argv(case, corpus, run_dir), run_dir, capsys)
            procs = leftover_processes(run_id, grace_s=30.0)
    finally:
        if case.prepare == "readonly" and out is not None:
            out.parent.chmod(0o755)
    named = {"input": corpus[case.input], "output": out}.get(case.names, corpus.get(case.names))
    problems, partial = _check(case, outcome, out, kept, named, before, run_dir)
    modified = digest(inputs) != sums
    if modified:
        problems.append("an input changed")
    leftovers = [*procs, *leftover_temps(sorted(folders))]
    if leftovers:
        problems.append(f"left behind: {leftovers[:3]}")
    signalled = " (signalled)" if outcome.signalled else ""
    pending = _memory_guard() if case.how == "guarded" else None
    report_row.append(
        Row(
            case=case.id,
            command=case.command,
            inputs=case.uses,
            expected=_expected(case),
            got=f"exit {outcome.code}{signalled}",
            problems=problems,
            partial=partial,
            modified=modified,
            leftovers=leftovers,
            known_bug=case.bug or pending,
            pending=pending is not None,
            seconds=outcome.seconds,
        )
    )
    assert not problems, f"{case.id}: {'; '.join(problems)}\n--- stderr ---\n{outcome.stderr}"
