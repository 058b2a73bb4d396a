"""Tests for vidrefocus.focus_plot: the PNG is written, sized as asked, and shows something."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidrefocus.errors import InputError
from vidrefocus.focus import FocusTrack
from vidrefocus.focus_plot import plot_focus

TIMES = [Fraction(i, 24) for i in range(96)]


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable PNG"
    return image


def test_metric_track_with_blur(tmp_path: Path) -> None:
    track = FocusTrack.from_text(
        "0s:3m/f2.8, 1s:ease-in-out:1.2m, 2.5s:linear:8m/f5.6, 3.5s:hold:2m"
    )
    states = track.resolve(TIMES)
    blur = [4.0 * (1 / 1.2 - s.focus_disparity) for s in states]
    out = plot_focus(states, TIMES, tmp_path / "focus.png", blur_px=blur, size_px=(900, 600))
    assert out == tmp_path / "focus.png"
    image = _read(out)
    assert image.shape == (600, 900, 3)
    # not blank: plenty of non-white pixels, and coloured curves (not only black text)
    non_white = (image < 250).any(axis=2).mean()
    assert 0.02 < non_white < 0.6
    blue = (image[..., 0] > 150) & (image[..., 2] < 100)  # BGR: tab:blue focus curve
    assert blue.sum() > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["focus.png"]  # no temp file left


def test_relative_track_with_infinity_and_strength(tmp_path: Path) -> None:
    states = FocusTrack.from_text("0s:d0.2/5px, 2s:linear:d0.8/20px").resolve(TIMES, metric=False)
    image = _read(plot_focus(states, TIMES, tmp_path / "rel.png"))
    assert image.shape == (800, 1200, 3)  # the default size
    assert (image < 250).any(axis=2).mean() > 0.02
    states = FocusTrack.from_text("0s:inf, 2s:1m").resolve(TIMES)  # plotted as disparity
    assert _read(plot_focus(states, TIMES, tmp_path / "inf.png")).shape == (800, 1200, 3)


def test_errors(tmp_path: Path) -> None:
    states = FocusTrack.from_text("0s:2m").resolve(TIMES[:3])
    with pytest.raises(InputError, match="one time per focus state"):
        plot_focus(states, TIMES, tmp_path / "x.png")
    with pytest.raises(InputError, match="blur_px has 2 values"):
        plot_focus(states, TIMES[:3], tmp_path / "x.png", blur_px=[1.0, 2.0])
    with pytest.raises(InputError, match="does not exist"):
        plot_focus(states, TIMES[:3], tmp_path / "missing" / "x.png")
    with pytest.raises(InputError, match="at least 200"):
        plot_focus(states, TIMES[:3], tmp_path / "x.png", size_px=(100, 400))


def test_marks(tmp_path: Path) -> None:
    states = FocusTrack.from_text("0s:3m, 2s:linear:1m").resolve(TIMES)
    plain = _read(plot_focus(states, TIMES, tmp_path / "plain.png", size_px=(600, 300)))
    marks = [Fraction(1, 2), 3.0]
    out = plot_focus(states, TIMES, tmp_path / "m.png", size_px=(600, 300), marks_s=marks)
    marked = _read(out)

    def purple(image: np.ndarray) -> int:  # BGR of tab:purple, #9467bd
        return int((np.abs(image.astype(int) - [189, 103, 148]).sum(axis=2) < 60).sum())

    assert purple(plain) == 0
    assert purple(marked) > 2 * 150  # two vertical lines through the panel
