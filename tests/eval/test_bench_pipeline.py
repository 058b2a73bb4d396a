"""`bench pipeline` on a tiny clip: every part is timed and every speed setting is compared."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from vidrefocus.eval.bench import BenchReport
from vidrefocus.eval.bench_pipeline import SETTINGS, make_pipeline_clip, psnr_between, run


@pytest.fixture(scope="module")
def report() -> BenchReport:
    return run(size="160x96", seconds=0.5)


def test_every_stage_and_setting_has_a_row(report: BenchReport) -> None:
    names = [r.name for r in report.rows]
    for part in ("decode", "DeblurNet", "DepthNet", "stabiliser", "bokeh", "encode"):
        assert any(part in n for n in names if n.startswith("stage:")), part
    assert [n for n in names if n.startswith("end to end")] == [
        f"end to end: {s}" for s in SETTINGS
    ]
    assert all(r.frames == 12 and r.seconds > 0 for r in report.rows)


def test_speed_settings_state_their_quality_cost(report: BenchReport) -> None:
    others = [r for r in report.rows if r.name.startswith("end to end")][1:]
    for row in others:
        psnr = float(re.search(r"PSNR vs full ([\d.]+) dB", row.note).group(1))
        assert 15.0 < psnr < 80.0, row.note  # a real difference, not a copy or garbage


def test_psnr_of_a_file_with_itself_is_infinite(tmp_path: Path) -> None:
    clip = make_pipeline_clip(tmp_path, "64x48", 0.25)
    assert math.isinf(psnr_between(clip, clip))
