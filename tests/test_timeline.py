"""Tests for vidrefocus.timeline: time specs and SMPTE timecode against hand-worked frames."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from vidrefocus.errors import InputError
from vidrefocus.timeline import (
    check_time_spec,
    format_timecode,
    frame_to_timecode,
    nominal_rate,
    parse_time,
    timecode_to_frame,
)

NTSC = Fraction(30000, 1001)
NTSC_60 = Fraction(60000, 1001)


def _drop_frame_labels(rate_nominal: int, drop: int, count: int) -> list[str]:
    """Reference: walk the labels one frame at a time, skipping the dropped ones (SMPTE 12M)."""
    labels = []
    h = m = s = f = 0
    while len(labels) < count:
        if not (s == 0 and f < drop and m % 10 != 0):
            labels.append(f"{h:02d}:{m:02d}:{s:02d};{f:02d}")
        f += 1
        if f == rate_nominal:
            f, s = 0, s + 1
        if s == 60:
            s, m = 0, m + 1
        if m == 60:
            m, h = 0, h + 1
    return labels


class TestParseTime:
    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            (2.5, Fraction(5, 2)),
            (0.1, Fraction(1, 10)),  # the decimal typed, not the binary float
            (3, Fraction(3)),
            (Fraction(1, 3), Fraction(1, 3)),
            ("2.5s", Fraction(5, 2)),
            (" 2.5 s ", Fraction(5, 2)),
            ("2.5", Fraction(5, 2)),
            (".5s", Fraction(1, 2)),
            ("0", Fraction(0)),
        ],
    )
    def test_seconds(self, spec: object, expected: Fraction) -> None:
        assert parse_time(spec) == expected

    def test_frames(self) -> None:
        # frame 60 at 30000/1001 starts at 60 * 1001 / 30000 s
        assert parse_time("f60", NTSC) == Fraction(1001, 500)
        assert parse_time("f0", Fraction(24)) == 0
        assert parse_time("f48", Fraction(24)) == 2

    def test_timecode_integer_rate(self) -> None:
        # 00:00:02:12 at 24 fps = frame 2 * 24 + 12 = 60 = 2.5 s
        assert parse_time("00:00:02:12", Fraction(24)) == Fraction(5, 2)
        assert parse_time("01:00:00:00", Fraction(25)) == 3600

    def test_timecode_non_drop_at_fractional_rate(self) -> None:
        # non-drop counts 30 labels per second at 29.97: 00:00:10:00 = frame 300 = 10.01 s
        assert parse_time("00:00:10:00", NTSC) == Fraction(300 * 1001, 30000)

    def test_drop_frame(self) -> None:
        # 00:01:00;02 is the first label of minute 1 (;00 and ;01 are dropped): frame 1800
        assert parse_time("00:01:00;02", NTSC) == Fraction(1800) / NTSC


class TestTimecode:
    @pytest.mark.parametrize(
        ("timecode", "rate", "frame"),
        [
            ("00:00:59;29", NTSC, 1799),
            ("00:01:00;02", NTSC, 1800),  # hand-worked: 60 * 30 + 2 - 2 * 1
            ("00:09:59;29", NTSC, 17981),
            ("00:10:00;00", NTSC, 17982),  # 10 min * 1798 + 2 (minute 0 drops nothing)
            ("00:10:00;01", NTSC, 17983),  # minute 10 keeps ;00 and ;01
            ("00:11:00;02", NTSC, 17982 + 1800),
            ("01:00:00;00", NTSC, 107892),  # the classic: one hour of 29.97 DF
            ("00:01:00;04", NTSC_60, 3600),  # 59.94 drops 4 per minute
            ("00:10:00;00", NTSC_60, 35964),
            ("00:00:02:12", Fraction(24), 60),
            ("10:00:00:00", Fraction(25), 900000),
        ],
    )
    def test_to_frame(self, timecode: str, rate: Fraction, frame: int) -> None:
        assert timecode_to_frame(timecode, rate) == frame
        drop = ";" in timecode
        assert frame_to_timecode(frame, rate, drop_frame=drop) == timecode

    @pytest.mark.parametrize(("rate", "drop"), [(NTSC, 2), (NTSC_60, 4)])
    def test_drop_frame_matches_label_walk(self, rate: Fraction, drop: int) -> None:
        # the first 11 minutes (so minute 10, which keeps its labels, is in) against a walk of
        # the labels: every frame near a minute's start, and every 7th frame elsewhere
        labels = _drop_frame_labels(nominal_rate(rate), drop, int(11 * 60 * rate))
        for frame, label in enumerate(labels):
            if frame % 7 and label[6:8] not in ("59", "00"):
                continue
            assert timecode_to_frame(label, rate) == frame
            assert frame_to_timecode(frame, rate, drop_frame=True) == label

    def test_drop_frame_keeps_clock_time(self) -> None:
        # the point of drop-frame: after an hour the label is within a frame of the clock
        seconds = Fraction(timecode_to_frame("01:00:00;00", NTSC)) / NTSC
        assert abs(seconds - 3600) < 1 / NTSC

    def test_format_nearest_frame(self) -> None:
        assert format_timecode(Fraction(5, 2), Fraction(24)) == "00:00:02:12"
        assert format_timecode(2.51, Fraction(24)) == "00:00:02:12"  # 60.24 -> 60
        assert format_timecode(Fraction(1800) / NTSC, NTSC, drop_frame=True) == "00:01:00;02"
        # a time half-way between frames goes to the later frame
        assert format_timecode(Fraction(1, 48), Fraction(24)) == "00:00:00:01"

    def test_nominal_rate(self) -> None:
        assert nominal_rate(NTSC) == 30
        assert nominal_rate(Fraction(24000, 1001)) == 24
        assert nominal_rate(Fraction(25)) == 25


class TestErrors:
    @pytest.mark.parametrize("spec", ["abc", "2.5ms", "-1", "1:2", "f", "f-3", "00:00:02", ""])
    def test_malformed_names_text_and_forms(self, spec: str) -> None:
        with pytest.raises(InputError) as info:
            parse_time(spec, Fraction(24))
        message = str(info.value)
        assert repr(spec) in message
        assert "f60" in message
        assert "00:00:02:12" in message
        assert "2.5s" in message

    @pytest.mark.parametrize("spec", [-1.0, math.nan, math.inf, True, None])
    def test_bad_numbers(self, spec: object) -> None:
        with pytest.raises(InputError):
            check_time_spec(spec)

    def test_frames_need_a_rate(self) -> None:
        with pytest.raises(InputError, match="needs the frame rate"):
            parse_time("f60")
        with pytest.raises(InputError, match="needs the frame rate"):
            parse_time("00:00:01:00")

    def test_drop_frame_only_at_ntsc_rates(self) -> None:
        with pytest.raises(InputError, match=r"29\.97"):
            parse_time("00:00:02;12", Fraction(25))
        with pytest.raises(InputError, match=r"29\.97"):
            frame_to_timecode(10, Fraction(24), drop_frame=True)

    def test_dropped_label_does_not_exist(self) -> None:
        with pytest.raises(InputError, match="skips frames 00-01"):
            timecode_to_frame("00:01:00;01", NTSC)
        with pytest.raises(InputError, match="skips frames 00-03"):
            timecode_to_frame("00:02:00;03", NTSC_60)

    @pytest.mark.parametrize("timecode", ["00:00:00:24", "00:60:00:00", "00:00:60:00"])
    def test_field_out_of_range(self, timecode: str) -> None:
        with pytest.raises(InputError, match="below"):
            timecode_to_frame(timecode, Fraction(24))

    def test_bad_rate_and_time(self) -> None:
        with pytest.raises(InputError, match="positive Fraction"):
            parse_time("f1", Fraction(0))
        with pytest.raises(InputError):
            format_timecode(-1.0, Fraction(24))
        with pytest.raises(InputError):
            frame_to_timecode(-1, Fraction(24))
