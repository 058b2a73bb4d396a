"""The corpus report: one row per case, and the lines `pytest_terminal_summary` prints."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

__all__ = ["ROWS", "Row", "report_lines"]


@dataclass
class Row:
    """One case's line in the report.

    Attributes:
        case: the case id (input, command, label).
        command: the command line's first word.
        inputs: corpus keys of every input the run read.
        expected: the expected outcome, e.g. "exit 2 'empty (0 bytes)'".
        got: what happened, e.g. "exit 2".
        problems: every check that failed ([] = handled as expected).
        partial: an output (or part of one) was left after a failure.
        modified: an input changed.
        leftovers: processes or temporary files left behind.
        known_bug: the xfail reason of a case that fails for a known bug (or waits for
            work in progress, `pending`).
        pending: the case waits for work in progress (the memory guard), not for a bug fix.
        seconds: wall time of the run.
    """

    case: str
    command: str
    inputs: list[str]
    expected: str
    got: str
    problems: list[str] = field(default_factory=list)
    partial: bool = False
    modified: bool = False
    leftovers: list[str] = field(default_factory=list)
    known_bug: str | None = None
    pending: bool = False
    seconds: float = 0.0


ROWS = pytest.StashKey[list["Row"]]()


def _status(row: Row) -> str:
    problems = "; ".join(row.problems)
    if row.known_bug is not None:
        kind = "PENDING" if row.pending else "KNOWN BUG"
        return f"{kind}: {problems}" if row.problems else "FIXED? (its xfail passed)"
    return "ok" if not row.problems else f"FAILED: {problems}"


def report_lines(rows: list[Row]) -> list[str]:
    """The totals line, then one line per case (and its known bug, if any)."""
    handled = sum(not r.problems for r in rows)
    known = sum(r.known_bug is not None and not r.pending and bool(r.problems) for r in rows)
    pending = sum(r.pending and bool(r.problems) for r in rows)
    partial = sum(r.partial for r in rows)
    modified = sum(r.modified for r in rows)
    leftovers = sum(bool(r.leftovers) for r in rows)
    inputs = len({key for r in rows for key in r.inputs})
    lines = [
        f"corpus: {len(rows)} inputs x commands, {handled} handled as expected, {partial} "
        f"partial outputs, {modified} modified inputs, {leftovers} leftover processes or temp "
        f"files ({inputs} inputs; xfail: {known} known bugs, {pending} pending)"
    ]
    width = max(len(r.case) for r in rows)
    for r in sorted(rows, key=lambda r: r.case):
        lines.append(
            f"  {r.case:<{width}}  {r.command:<10}  expected {r.expected:<44}  got "
            f"{r.got:<8} {r.seconds:5.1f}s  {_status(r)}"
        )
        if r.known_bug is not None and r.problems:
            why = "pending" if r.pending else "known bug"
            lines.append(f"  {'':<{width}}  {why}: {r.known_bug}")
    return lines
