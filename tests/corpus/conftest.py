"""Fixtures of the reliability corpus, and its report at the end of the test run.

The report is printed by `pytest_terminal_summary`, so it shows in a plain `pytest -q` run:
one line of totals, then one line per case (input, command, expected, got).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.inputs import make_inputs
from corpus.report import ROWS, Row, report_lines
from corpus.sidecars import make_sidecars


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile input and side input, written once per session: key -> path."""
    folder = tmp_path_factory.mktemp("corpus")
    return {**make_inputs(folder / "inputs"), **make_sidecars(folder / "sidecars")}


@pytest.fixture
def report_row(request: pytest.FixtureRequest) -> list[Row]:
    """The list a corpus test appends its row to (printed at the end of the run)."""
    return request.config.stash.setdefault(ROWS, [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = terminalreporter.config.stash.get(ROWS, [])
    if rows:
        terminalreporter.section("reliability corpus")
        for line in report_lines(rows):
            terminalreporter.write_line(line)
