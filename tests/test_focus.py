"""Tests for vidrefocus.focus: keyframe parsing, validation and per-frame interpolation."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
from pydantic import ValidationError

from vidrefocus.easing import ease_in_out, easing_from_name
from vidrefocus.errors import InputError
from vidrefocus.focus import (
    FocusKey,
    FocusTrack,
    merge_focus_points,
    parse_focus_point,
    parse_keys_csv,
    parse_keys_data,
    parse_keys_text,
)

FPS = Fraction(24)


def times(*seconds: float) -> list[Fraction]:
    return [Fraction(str(s)) for s in seconds]


class TestInterpolation:
    def test_diopters_linear_midpoint(self) -> None:
        # 2 m = 0.5 D, 0.5 m = 2 D; half-way in diopters is 1.25 D = 0.8 m (not 1.25 m)
        track = FocusTrack.from_text("0s:2m, 2s:linear:0.5m")
        state = track.resolve(times(1.0))[0]
        assert state.focus_disparity == pytest.approx(1.25, abs=1e-12)
        assert state.focus_distance_m == pytest.approx(0.8, abs=1e-12)
        assert (state.key_index_from, state.key_index_to, state.blend) == (0, 1, 0.5)

    def test_easing_per_segment(self) -> None:
        track = FocusTrack.from_text("0s:1m, 1s:linear:0.5m, 2s:ease-in:0.25m, 4s:1m")
        t = times(0.25, 1.5, 3.0)
        s = track.resolve(t)
        # segment 0 -> 1 linear: 1 D + (2 D - 1 D) * 0.25
        assert s[0].focus_disparity == pytest.approx(1.25, abs=1e-12)
        # segment 1 -> 2 ease-in at u = 0.5
        ease_in = easing_from_name("ease-in")(0.5)
        assert s[1].blend == pytest.approx(ease_in, abs=1e-12)
        assert s[1].focus_disparity == pytest.approx(2 + 2 * ease_in, abs=1e-12)
        # segment 2 -> 3 default ease-in-out at u = 0.5 (= 0.5 by symmetry)
        assert s[2].blend == pytest.approx(ease_in_out(0.5), abs=1e-12)
        assert s[2].focus_disparity == pytest.approx(4 - 3 * ease_in_out(0.5), abs=1e-9)

    def test_hold_before_first_and_after_last(self) -> None:
        track = FocusTrack.from_text("1s:2m, 2s:linear:1m")
        before, first, last, after = track.resolve(times(0.0, 1.0, 2.0, 3.5))
        assert before.focus_distance_m == first.focus_distance_m == 2.0
        assert (before.key_index_from, before.key_index_to) == (0, 0)
        assert last.focus_distance_m == after.focus_distance_m == 1.0
        assert (after.key_index_from, after.key_index_to, after.blend) == (1, 1, 1.0)

    def test_hold_easing_snaps_at_the_key(self) -> None:
        track = FocusTrack.from_text("0s:2m, 1s:hold:1m")
        just_before, at = track.resolve([Fraction(23, 24), Fraction(1)])
        assert just_before.focus_distance_m == 2.0
        assert at.focus_distance_m == 1.0

    def test_f_number_in_stops_and_strength_linear(self) -> None:
        track = FocusTrack.from_text("0s:2m/f2/4px, 1s:linear:2m, 2s:linear:2m/f8/12px")
        start, mid, end = track.resolve(times(0.0, 1.0, 2.0))
        assert start.f_number == pytest.approx(2.0)
        assert end.f_number == pytest.approx(8.0)
        # half-way from f/2 to f/8 in stops is f/4 (2 stops of 4), not f/5
        assert mid.f_number == pytest.approx(4.0, abs=1e-12)
        assert mid.strength == pytest.approx(8.0, abs=1e-12)

    def test_f_number_holds_outside_its_keys_and_none_without(self) -> None:
        track = FocusTrack.from_text("0s:2m, 1s:1m/f4, 2s:2m")
        assert [s.f_number for s in track.resolve(times(0.0, 1.5, 2.0))] == [4.0, 4.0, 4.0]
        assert FocusTrack.from_text("0s:2m").resolve(times(0.0))[0].f_number is None
        assert FocusTrack.from_text("0s:2m").resolve(times(0.0))[0].strength is None

    def test_infinity(self) -> None:
        track = FocusTrack.from_text("0s:inf, 1s:linear:1m")
        start, mid = track.resolve(times(0.0, 0.5))
        assert start.focus_disparity == 0.0
        assert start.focus_distance_m == math.inf
        assert mid.focus_distance_m == pytest.approx(2.0)  # 0.5 D

    def test_point_key_follows_the_subject(self) -> None:
        # frames at 0, 0.5, 1, 1.5 s; key 1 tracks a subject receding 1 -> 0.25 D
        track = FocusTrack.from_text("0s:d2.0, 1s:linear:@320,180")
        subject = [1.0, 0.75, 0.5, 0.25]
        calls = []

        def point_depths(key: int, frame: int) -> float:
            calls.append((key, frame))
            return subject[frame]

        states = track.resolve(times(0.0, 0.5, 1.0, 1.5), point_depths)
        # before the key: blend towards the moving subject; after: follow it
        assert states[1].focus_disparity == pytest.approx(2.0 + (0.75 - 2.0) * 0.5)
        assert [s.focus_disparity for s in states[2:]] == [0.5, 0.25]
        assert all(key == 1 for key, _ in calls)

    def test_relative_depth(self) -> None:
        track = FocusTrack.from_text("0s:d0.2/10px, 1s:linear:d0.6/20px")
        state = track.resolve(times(0.5), metric=False)[0]
        assert state.focus_disparity == pytest.approx(0.4)
        assert state.focus_distance_m is None
        assert state.strength == pytest.approx(15.0)


class TestParsing:
    def test_text_grammar(self) -> None:
        keys = parse_keys_text(
            "0s:2.0m, 1.5s:ease-in-out:0.8m/f2.8, 3s:@320,180, f120:linear:d0.4/12px, "
            "00:00:06:00:cubic-bezier(0.3, 0, 0.2, 1):inf/f8/3.5px"
        )
        assert [k.at for k in keys] == ["0s", "1.5s", "3s", "f120", "00:00:06:00"]
        assert keys[0].distance_m == 2.0
        assert keys[0].ease == "ease-in-out"
        assert keys[1].f_number == 2.8
        assert keys[2].point == (320.0, 180.0)
        assert keys[3].depth == 0.4
        assert keys[3].strength == 12.0
        assert keys[3].ease == "linear"
        assert keys[4].distance_m == math.inf
        assert keys[4].ease == "cubic-bezier(0.3, 0, 0.2, 1)"
        assert (keys[4].f_number, keys[4].strength) == (8.0, 3.5)
        track = FocusTrack(keys, rate=FPS)
        assert track.times_s == (0, Fraction(3, 2), 3, 5, 6)

    def test_drop_frame_timecode_key(self) -> None:
        track = FocusTrack.from_text("00:01:00;02:0.8m", rate=Fraction(30000, 1001))
        assert track.times_s[0] == Fraction(1800 * 1001, 30000)

    def test_yaml_and_json(self, tmp_path: Path) -> None:
        (tmp_path / "keys.yaml").write_text(
            "keys:\n"
            "  - {at: 0, distance_m: 2.0, f_number: 2.8}\n"
            "  - {at: 1.5s, point: [320, 180], ease: linear}\n"
            "  - {at: f72, depth: 0.4}\n"
        )
        (tmp_path / "keys.json").write_text(
            '[{"at": 0, "distance_m": 2.0, "f_number": 2.8},'
            ' {"at": "1.5s", "point": [320, 180], "ease": "linear"}, {"at": "f72", "depth": 0.4}]'
        )
        for name in ("keys.yaml", "keys.json"):
            track = FocusTrack.from_file(tmp_path / name, rate=FPS, duration_s=Fraction(4))
            assert track.times_s == (0, Fraction(3, 2), 3)
            assert track.keys[1].point == (320.0, 180.0)
            assert track.keys[1].ease == "linear"
            assert track.keys[0].f_number == 2.8
            assert track.keys[2].depth == 0.4

    def test_csv(self, tmp_path: Path) -> None:
        path = tmp_path / "keys.csv"
        path.write_text(
            "time,distance_m,point_x,point_y,depth,f_number,strength,ease\n"
            "0s,2.0,,,,2.8,,\n"
            "1.5,,320,180,,,,linear\n"
            "00:00:03:00,,,,0.4,,12,\n"
        )
        track = FocusTrack.from_file(path, rate=FPS)
        assert track.times_s == (0, Fraction(3, 2), 3)
        assert track.keys[0].distance_m == 2.0
        assert track.keys[0].f_number == 2.8
        assert track.keys[1].point == (320.0, 180.0)
        assert track.keys[1].ease == "linear"
        assert track.keys[2].depth == 0.4
        assert track.keys[2].strength == 12.0
        assert parse_keys_csv("time,depth\n1s,0.5\n")[0].depth == 0.5  # columns optional

    def test_key_model(self) -> None:
        key = FocusKey(at=Fraction(1, 2), distance_m=1.0)
        with pytest.raises(ValidationError):
            key.distance_m = 2.0  # frozen


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    return str(info.value)


class TestErrors:
    def test_unsorted_names_both_keys(self) -> None:
        message = _error(FocusTrack.from_text, "0s:2m, 2s:1m, 1.5s:3m")
        assert "keyframe 2 (at '1.5s') = 1.5 s" in message
        assert "keyframe 1 (at '2s') = 2 s" in message
        # equal times too (mixed forms: f48 at 24 fps is 2 s)
        assert "keyframe 1" in _error(FocusTrack.from_text, "2s:2m, f48:1m", rate=FPS)

    def test_out_of_range(self) -> None:
        message = _error(FocusTrack.from_text, "0s:2m, 5s:1m", duration_s=Fraction(4))
        assert "keyframe 1 (at '5s')" in message
        assert "end of the clip (4 s)" in message

    def test_needs_a_key_and_a_rate(self) -> None:
        assert "at least one keyframe" in _error(FocusTrack, ())
        assert "keyframe 0 (at 'f60')" in _error(FocusTrack.from_text, "f60:1m")
        assert "frame rate" in _error(FocusTrack.from_text, "f60:1m")

    @pytest.mark.parametrize(
        ("text", "index", "expected"),
        [
            ("0s:2m, 1s:-1m", 1, "distance_m: Input should be greater than 0"),
            ("0s:0m", 0, "distance_m: Input should be greater than 0"),
            ("0s:2m, 1s:bounce:1m", 1, "unknown easing 'bounce'. Known easings: hold, linear"),
            ("0s:2m/f0.4", 0, "f_number: Input should be greater than 0.5"),
            ("0s:2m/f90", 0, "f_number: Input should be less than or equal to 64"),
            ("0s:2m, 1s", 0, "after the ',' in '2m, 1s' comes no TIME:"),
            ("2m", 0, "no ':' between the time and the target"),
            ("0s:2m, 1s:2", 1, "target '2' is not a distance"),
            ("0s:2m, 1s:2m/fast", 1, "setting 'fast' is not an f-number"),
            ("0s:2m, 1s:a:b:2m", 1, "too many ':'"),
            ("0s:2m, abc:2m", 1, "time 'abc' is not seconds"),
            ("0s:@-5,3", 0, "point must be two finite pixel coordinates >= 0"),
        ],
    )
    def test_malformed_text(self, text: str, index: int, expected: str) -> None:
        message = _error(parse_keys_text, text)
        parts = text.split(", ")
        part = parts[index] if ":" in parts[-1] else text  # "0s:2m, 1s" is one bad key
        assert f"focus keyframe {index} ({part!r})" in message
        assert expected in message

    def test_empty_text_shows_grammar(self) -> None:
        assert "TIME:[EASE:]TARGET" in _error(parse_keys_text, "  ")

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ([{"at": 0, "distance_m": -1}], "distance_m: Input should be greater than 0"),
            ([{"at": 0, "distance_m": 1, "depth": 0.5}], "exactly one of distance_m, point"),
            ([{"at": 0}], "exactly one of distance_m, point or depth (got none)"),
            ([{"at": 0, "distance_m": 1, "iris": 2}], "unknown field 'iris' (fields: at,"),
            ([{"distance_m": 1}], "'at' is missing"),
            ([{"at": "soon", "distance_m": 1}], "time 'soon' is not a time"),
            ([{"at": 0, "distance_m": 1, "ease": "wobble"}], "unknown easing 'wobble'"),
            ([3], "must be a mapping"),
            ({"key": []}, "must be a list of keys"),
        ],
    )
    def test_bad_data(self, data: object, expected: str) -> None:
        message = _error(parse_keys_data, data)
        assert expected in message
        if isinstance(data, list) and isinstance(data[0], dict):
            assert "focus keyframe 0 (" in message

    def test_bad_files(self, tmp_path: Path) -> None:
        bad_csv = tmp_path / "bad.csv"
        bad_csv.write_text("time,distance_m\n0s,2\n1s,-3\n")
        message = _error(FocusTrack.from_file, bad_csv)
        assert str(bad_csv) in message
        assert "focus keyframe 1 ('1s,-3')" in message
        bad_header = tmp_path / "header.csv"
        bad_header.write_text("when,distance_m\n0s,2\n")
        assert "needs a 'time' column" in _error(FocusTrack.from_file, bad_header)
        bad_yaml = tmp_path / "bad.yaml"
        bad_yaml.write_text("keys: [\n")
        assert "not valid YAML" in _error(FocusTrack.from_file, bad_yaml)
        assert "unknown keyframe file type '.txt'" in _error(
            FocusTrack.from_file, tmp_path / "keys.txt"
        )
        assert "keys.yaml" in _error(FocusTrack.from_file, tmp_path / "keys.yaml")  # missing

    def test_resolve_errors(self) -> None:
        point = FocusTrack.from_text("0s:@10,10")
        assert "pass point_depths" in _error(point.resolve, times(0.0))
        assert "frame 0 is nan" in _error(point.resolve, times(0.0), lambda k, i: math.nan)
        metric_only = FocusTrack.from_text("0s:2m")
        assert "depth is relative" in _error(metric_only.resolve, times(0.0), metric=False)
        too_far = FocusTrack.from_text("0s:d1.5")
        assert "outside [0, 1]" in _error(too_far.resolve, times(0.0), metric=False)


class TestFocusPoint:
    """`--focus-point X,Y@TIME` (issue #8): sugar for the tracked keyframe `TIME:@X,Y`."""

    @pytest.mark.parametrize(
        ("text", "at", "point"),
        [("320,180@1.5s", "1.5s", (320.0, 180.0)), (" 10.5 , 20 @ f12 ", "f12", (10.5, 20.0)),
         ("0,0@00:00:01:12", "00:00:01:12", (0.0, 0.0)), ("4,5@2", "2", (4.0, 5.0))],
    )  # fmt: skip
    def test_same_key_as_the_keyframe_text(
        self, text: str, at: str, point: tuple[float, float]
    ) -> None:
        key = parse_focus_point(text)
        assert (key.at, key.point) == (at, point)
        assert key == parse_keys_text(f"{at}:@{point[0]},{point[1]}")[0]

    def test_merged_by_time_with_the_focus_keys(self) -> None:
        base = FocusTrack.from_text("0s:2m, 2s:linear:0.5m", FPS, Fraction(4))
        track = merge_focus_points(base, ["5,6@f72", "1,2@0.5s", "3,4@1s"], FPS, Fraction(4))
        assert list(track.times_s) == times(0, 0.5, 1, 2, 3)
        targets = [(k.distance_m, k.point) for k in track.keys]
        assert targets == [(2.0, None), (None, (1.0, 2.0)), (None, (3.0, 4.0)), (0.5, None),
                           (None, (5.0, 6.0))]  # fmt: skip
        assert track.keys[3].ease == "linear"  # the --focus keys keep their settings

    def test_points_alone(self) -> None:
        track = merge_focus_points(None, ["1,2@1s", "3,4@0s"], FPS)
        assert [k.point for k in track.keys] == [(3.0, 4.0), (1.0, 2.0)]

    @pytest.mark.parametrize(
        ("points", "expected"),
        [(["320x180@1s"], "--focus-point '320x180@1s': write X,Y@TIME"),
         (["1,2"], "--focus-point '1,2': write X,Y@TIME"),
         (["1,2@"], "write X,Y@TIME"),
         (["1,2@soon"], "--focus-point '1,2@soon': time 'soon' is not seconds"),
         (["-1,2@1s"], "--focus-point '-1,2@1s'"),
         (["1,2@9s"], "--focus-point '1,2@9s' is at 9 s, after the end of the clip (4 s)"),
         (["1,2@f24"], "--focus-point '1,2@f24' is at 1 s, where keyframe 1 (at '1s') already is"),
         (["1,2@0.5s", "3,4@f12"],
          "--focus-point '3,4@f12' is at 0.5 s, where --focus-point '1,2@0.5s' already is")],
    )  # fmt: skip
    def test_errors_name_the_flag_value(self, points: list[str], expected: str) -> None:
        base = FocusTrack.from_text("0s:2m, 1s:3m", FPS, Fraction(4))
        assert expected in _error(merge_focus_points, base, points, FPS, Fraction(4))
