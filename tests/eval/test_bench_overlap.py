"""`vidrefocus bench overlap` on a short 360p clip: the parts alone and both pipelines."""

from __future__ import annotations

import re

from vidrefocus.eval.bench import BENCHES, run_bench


def test_registered() -> None:
    assert BENCHES["overlap"] == "vidrefocus.eval.bench_overlap"


def test_short_run_has_parts_and_both_pipelines() -> None:
    report = run_bench("overlap", size="360p", seconds=0.5, repeat=2)
    names = [r.name for r in report.rows]
    assert names[:3] == ["decode alone", "stages alone", "encode alone"]
    assert "nice +10 (runtime.io_nice)" in names[3]
    assert "io_nice 0" in names[4]
    assert all(r.frames == 12 and r.seconds > 0 and r.ratio > 0 for r in report.rows)
    assert max(r.ratio for r in report.rows[:3]) == 1.0  # the slowest part is the baseline
    for row in report.rows[3:]:
        rounds = row.note.split("own parts:")[1].split(";")[0]
        assert len(re.findall(r"\d+\.\d+x", rounds)) == 2, row.note  # one ratio per round
