"""`bench enhance`'s legibility table on a small seeded scene: the claims it supports hold."""

from __future__ import annotations

import pytest

from vidrefocus.eval.bench_enhance import GROUND_TRUTH, EnhanceBenchReport, legibility_rows


@pytest.fixture(scope="module")
def rows() -> dict[str, object]:
    table = legibility_rows(seeds=(3,), radii=(3.0,), size=(320, 240))
    return {r.method: r for r in table}


def test_every_method_is_measured(rows: dict) -> None:
    assert len(rows) == 5
    assert rows[GROUND_TRUTH].recognition == 1.0


def test_deblurnet_output_explains_the_input_better_than_invented_edges(rows: dict) -> None:
    deblurnet = rows["DeblurNet (enhance)"]
    shock = rows["shock filter (20 steps, invents edges)"]
    assert deblurnet.residual_db > shock.residual_db + 2.0
    assert shock.edge_width_px < deblurnet.edge_width_px  # crisp, but not consistent
    assert rows[GROUND_TRUTH].residual_true_db > deblurnet.residual_db


def test_deblurnet_restores_text(rows: dict) -> None:
    deblurnet, blurred = rows["DeblurNet (enhance)"], rows["input (defocused)"]
    assert deblurnet.text_psnr_db > blurred.text_psnr_db
    assert deblurnet.text_ssim > blurred.text_ssim


def test_report_prints_the_table(rows: dict) -> None:
    report = EnhanceBenchReport(title="t", command="c", legibility=list(rows.values()))
    report.legibility_title = "legibility"
    text = report.markdown()
    assert "#### legibility" in text
    assert "DeblurNet (enhance)" in text
    assert report.to_dict()["legibility"][0]["method"] == GROUND_TRUTH
