"""Smoke test of `vidrefocus bench preview` on a tiny, short clip."""

from __future__ import annotations

import pytest

from vidrefocus.errors import InputError
from vidrefocus.eval.bench import BENCHES, run_bench


def test_registered() -> None:
    assert BENCHES["preview"] == "vidrefocus.eval.bench_preview"


def test_tiny_run() -> None:
    report = run_bench("preview", size="96x64", seconds=2.0, repeat=1)
    names = [r.name for r in report.rows]
    assert names[0] == "refocus of the 4 frames alone"
    assert report.rows[0].ratio is None  # the baseline
    assert all(r.ratio is not None and r.ratio > 0 for r in report.rows[1:])
    assert [r.frames for r in report.rows[:3]] == [4, 4, 4]
    assert "decoded" in report.rows[1].note
    assert "| preview, depth key |" in report.markdown()


def test_bad_size() -> None:
    with pytest.raises(InputError, match="unknown size"):
        run_bench("preview", size="huge", seconds=2.0, repeat=1)
