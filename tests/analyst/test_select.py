"""Regions of interest and frame selections (`--roi`, `--frames`), on a real clip's index."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidrefocus.analyst.select import Roi, Span, frame_spans, parse_roi
from vidrefocus.errors import InputError
from vidrefocus.io.random_access import RandomAccessReader


@pytest.fixture(scope="module")
def reader(sample_scene: Path) -> RandomAccessReader:
    return RandomAccessReader(sample_scene)  # 96 frames at 24 fps


def test_parse_roi_reads_four_numbers() -> None:
    assert parse_roi(" 10, 20,30 ,40") == Roi(10, 20, 30, 40)


@pytest.mark.parametrize(
    ("text", "words"),
    [("10,20,30", "four whole numbers"), ("a,b,c,d", "four whole numbers"),
     ("1.5,2,3,4", "four whole numbers"), ("-1,0,10,10", "corner"), ("0,0,0,10", "1x1")],
)  # fmt: skip
def test_parse_roi_refuses_malformed(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        parse_roi(text)


def test_roi_inside_frame() -> None:
    Roi(600, 300, 40, 60).check_inside(640, 360)
    with pytest.raises(InputError, match="reaches past the 640x360 frame"):
        Roi(600, 300, 41, 60).check_inside(640, 360)


def test_padded_roi_is_clipped_and_grid_aligned() -> None:
    assert Roi(10, 10, 20, 20).padded(32, 640, 360) == Roi(0, 0, 62, 62)
    win = Roi(100, 101, 20, 20).padded(32, 640, 360, align=16)
    assert win.x % 16 == 0
    assert win.y % 16 == 0
    assert win.w % 16 == 0
    assert win.h % 16 == 0
    assert win.x <= 100 - 32
    assert win.y <= 101 - 32
    assert win.x + win.w >= 120 + 32
    assert win.y + win.h >= 121 + 32
    edge = Roi(600, 330, 40, 30).padded(32, 640, 360, align=8)
    assert (edge.x + edge.w, edge.y + edge.h) == (640, 360)


def test_frames_all_by_default(reader: RandomAccessReader) -> None:
    assert frame_spans(None, reader) == [Span(0, 96, "all")]


def test_frames_numbers_times_and_timecode(reader: RandomAccessReader) -> None:
    spans = frame_spans("f10-f19, 2s-2.5s, 00:00:03:00-", reader)
    assert [(s.start, s.stop) for s in spans] == [(10, 20), (48, 61), (72, 96)]


def test_frames_single_and_merged(reader: RandomAccessReader) -> None:
    spans = frame_spans("f30, f5-f12, f10-f20, f21", reader)
    assert [(s.start, s.stop) for s in spans] == [(5, 22), (30, 31)]


@pytest.mark.parametrize(
    ("spec", "words"),
    [("", "names no frame"), ("f96", "does not exist"), ("f20-f10", "runs backwards"),
     ("9s", "after the last frame"), ("soon", "is not a time")],
)  # fmt: skip
def test_frames_refuses_bad_specs(reader: RandomAccessReader, spec: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        frame_spans(spec, reader)
