"""Smoke test of `vidrefocus bench deblur` on tiny frames and a tiny stand-in real set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidrefocus.errors import InputError
from vidrefocus.eval.bench import BENCHES, run_bench
from vidrefocus.eval.bench_deblur import run
from vidrefocus.models.deblurnet import default_weights_path


@pytest.fixture
def tiny_real(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    for sub in ("source", "target"):
        (tmp_path / sub).mkdir()
    sharp = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "target" / "x.png"), sharp)
    cv2.imwrite(str(tmp_path / "source" / "x.png"), cv2.blur(sharp, (3, 3)))
    return tmp_path


def test_registered() -> None:
    assert BENCHES["deblur"] == "vidrefocus.eval.bench_deblur"


def test_tiny_run_with_quality(tiny_real: Path) -> None:
    report = run(
        sizes=("64x48",), devices=("cpu",), frames=2, repeat=1, real_defocus_folder=tiny_real
    )
    names = [r.name for r in report.rows]
    assert names[0] == "64x48 cpu: Wiener, disk r=4 px"
    assert report.rows[0].ratio is None  # the baseline
    assert all(r.ratio is not None and r.ratio > 0 for r in report.rows[1:])
    assert all(r.frames == 2 and r.seconds > 0 for r in report.rows)
    if default_weights_path().is_file():
        assert "64x48 cpu: DeblurNet, temporal" in names
    quality = {q.name: q for q in report.quality}
    assert quality["input (no deblurring)"].psnr_gain_db == 0.0
    assert "Wiener, best disk radius per image (oracle)" in quality
    assert "temporal" not in " ".join(quality)
    text = report.markdown()
    assert "| method | PSNR dB |" in text
    assert "AIFNet" in text
    assert report.to_dict()["quality"][0]["name"] == "input (no deblurring)"


def test_quality_skipped_without_the_set(tmp_path: Path) -> None:
    report = run_bench(
        "deblur",
        size="32x32",
        seconds=0.0,
        repeat=1,
        frames=1,
        devices=("cpu",),
        real_defocus_folder=tmp_path / "none",
    )
    assert report.quality == []
    assert "PSNR dB" not in report.markdown()


def test_errors() -> None:
    with pytest.raises(InputError, match="unknown size"):
        run(size="huge", quality=False)
    with pytest.raises(InputError, match="frames"):
        run(sizes=("32x32",), devices=("cpu",), frames=0, quality=False)
