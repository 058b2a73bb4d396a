"""Focus track: keyframes (time -> distance, point or depth; f-number) to per-frame focus."""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from vidrefocus.easing import easing_from_name
from vidrefocus.errors import InputError
from vidrefocus.optics import distance_m_from_diopters
from vidrefocus.timeline import ACCEPTED_FORMS, check_time_spec, parse_time

__all__ = [
    "CSV_COLUMNS",
    "FocusKey",
    "FocusState",
    "FocusTrack",
    "PointDepths",
    "merge_focus_points",
    "parse_focus_point",
    "parse_keys_csv",
    "parse_keys_data",
    "parse_keys_text",
]

# A time spec as typed: seconds (number or "2.5s"), "f60", "HH:MM:SS:FF" or "HH:MM:SS;FF".
TimeSpec = Annotated[Fraction | float | str, BeforeValidator(check_time_spec)]

# point_depths(key_index, frame_index) -> disparity at that key's tracked point in that frame.
PointDepths = Callable[[int, int], float]

CSV_COLUMNS = ("time", "distance_m", "point_x", "point_y", "depth", "f_number", "strength", "ease")

_GRAMMAR = (
    "Write keys as TIME:[EASE:]TARGET[/fN][/Spx], separated by commas, e.g. "
    '"0s:2.0m, 1.5s:ease-in-out:0.8m/f2.8, 3s:@320,180, f120:linear:d0.4". '
    "TARGET is a distance (2.0m, inf), a point to track (@x,y) or a disparity (d0.4)"
)


def _check_ease(name: str) -> str:
    easing_from_name(name)  # raises InputError listing the known names
    return name.strip()


class FocusKey(BaseModel):
    """One focus keyframe: at this time, focus here (and optionally this f-number/strength).

    Exactly one target: `distance_m` (metres, `inf` allowed), `point` (a pixel (x, y) in
    display orientation whose subject is tracked) or `depth` (a disparity: 1/m for metric
    depth, [0, 1] for relative depth). `ease` shapes the segment that arrives at this key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: TimeSpec
    distance_m: float | None = Field(default=None, gt=0)
    point: tuple[float, float] | None = None
    depth: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    f_number: float | None = Field(default=None, gt=0.5, le=64)
    strength: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    ease: Annotated[str, BeforeValidator(_check_ease)] = "ease-in-out"

    @model_validator(mode="after")
    def _one_target(self) -> FocusKey:
        given = [n for n in ("distance_m", "point", "depth") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of distance_m, point or depth "
                f"(got {', '.join(given) if given else 'none'})"
            )
        if self.point is not None and not all(math.isfinite(v) and v >= 0 for v in self.point):
            raise ValueError(f"point must be two finite pixel coordinates >= 0; got {self.point}")
        return self


@dataclass(frozen=True)
class FocusState:
    """The focus of one frame.

    Attributes:
        focus_disparity: the focal plane as disparity: 1/m (diopters) for metric depth,
            in [0, 1] for relative depth; larger = nearer.
        focus_distance_m: 1 / focus_disparity in metres (inf for 0), None for relative depth.
        f_number: interpolated f-number, None when no key sets one.
        strength: interpolated blur strength in px, None when no key sets one.
        key_index_from: key the focus segment leaves (equal to key_index_to when holding).
        key_index_to: key the focus segment arrives at.
        blend: eased progress from `key_index_from` to `key_index_to`, in [0, 1].
    """

    focus_disparity: float
    focus_distance_m: float | None
    f_number: float | None
    strength: float | None
    key_index_from: int
    key_index_to: int
    blend: float


def _describe(index: int, key: FocusKey) -> str:
    return f"keyframe {index} (at {key.at!r})"


@dataclass(frozen=True)
class FocusTrack:
    """Validated focus keyframes of one clip, and their evaluation per frame.

    Args:
        keys: the keyframes, in time order.
        rate: the clip's frame rate; needed for "f60" and timecode times.
        duration_s: the clip's duration; None skips the range check.

    Raises:
        InputError: no keys, a time that does not resolve, keys out of order (both named by
            index and time) or a key after the end of the clip.

    Example:
        >>> track = FocusTrack.from_text("0s:2m, 1s:linear:0.5m")
        >>> round(track.resolve([Fraction(1, 2)])[0].focus_distance_m, 4)
        0.8
    """

    keys: tuple[FocusKey, ...]
    rate: Fraction | None = None
    duration_s: Fraction | None = None
    times_s: tuple[Fraction, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        if not self.keys:
            raise InputError(f"a focus track needs at least one keyframe. {_GRAMMAR}.")
        times = []
        for i, key in enumerate(self.keys):
            try:
                times.append(parse_time(key.at, self.rate))
            except InputError as err:
                raise InputError(f"{_describe(i, key)}: {err}") from err
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                raise InputError(
                    f"{_describe(i, self.keys[i])} = {float(times[i]):g} s is not after "
                    f"{_describe(i - 1, self.keys[i - 1])} = {float(times[i - 1]):g} s. List "
                    "keyframes in increasing time; for a focus snap use ease 'hold'."
                )
        if self.duration_s is not None:
            for i, t in enumerate(times):
                if t > self.duration_s:
                    raise InputError(
                        f"{_describe(i, self.keys[i])} = {float(t):g} s is after the end of the "
                        f"clip ({float(self.duration_s):g} s). Move it inside the clip."
                    )
        object.__setattr__(self, "times_s", tuple(times))

    @classmethod
    def from_text(
        cls, text: str, rate: Fraction | None = None, duration_s: Fraction | None = None
    ) -> FocusTrack:
        """A track from the CLI string (grammar in `parse_keys_text`)."""
        return cls(tuple(parse_keys_text(text)), rate, duration_s)

    @classmethod
    def from_file(
        cls, path: Path | str, rate: Fraction | None = None, duration_s: Fraction | None = None
    ) -> FocusTrack:
        """A track from a .yaml/.yml/.json file (a list of keys or {keys: [...]}) or a .csv.

        Raises:
            InputError: an unreadable file, another suffix, or a bad key (named with the file).
        """
        path = Path(path)
        suffix = path.suffix.lower()
        try:
            if suffix not in (".csv", ".yaml", ".yml", ".json"):
                raise InputError(f"unknown keyframe file type {suffix!r}; use .yaml, .json or .csv")
            text = path.read_text()
            if suffix == ".csv":
                return cls(tuple(parse_keys_csv(text)), rate, duration_s)
            try:
                data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError) as err:
                raise InputError(f"not valid {suffix[1:].upper()} ({err})") from err
            return cls(tuple(parse_keys_data(data)), rate, duration_s)
        except (InputError, OSError) as err:
            raise InputError(f"{path}: {err}") from err

    def resolve(
        self,
        times_s: Sequence[Fraction],
        point_depths: PointDepths | None = None,
        *,
        metric: bool = True,
    ) -> list[FocusState]:
        """The focus state of each frame.

        Focus is interpolated in disparity (diopters for metric depth: how focus feels),
        through the easing of the key each segment arrives at; f-number in stops (log2 N) and
        strength linearly, each between the keys that set it. Before the first key and after
        the last, values hold. A point key's disparity is the depth at its tracked subject in
        each frame, `point_depths(key_index, frame_index)`, so focus follows the subject while
        that key is in play.

        Args:
            times_s: each frame's time in seconds (pts * time_base), frame index = position.
            point_depths: depth at a point key's tracked point in a frame; needed if any key
                is a point key.
            metric: the depth is metric (1/m) or relative ([0, 1]).
        Returns:
            One FocusState per time.
        Raises:
            InputError: a point key without `point_depths`, a distance key with relative
                depth, a relative depth outside [0, 1], or a point depth that is not a
                finite value >= 0.
        """
        self._check_targets(point_depths, metric)
        every = list(range(len(self.keys)))
        f_keys = [i for i in every if self.keys[i].f_number is not None]
        s_keys = [i for i in every if self.keys[i].strength is not None]
        states = []
        for frame, t in enumerate(times_s):
            t = Fraction(t)
            a, b, blend = self._segment(every, t)
            da = self._disparity(a, frame, point_depths)
            disparity = da + (self._disparity(b, frame, point_depths) - da) * blend
            stops = self._sub_track(f_keys, t, lambda k: math.log2(k.f_number))
            states.append(
                FocusState(
                    focus_disparity=disparity,
                    focus_distance_m=float(distance_m_from_diopters(disparity)) if metric else None,
                    f_number=None if stops is None else 2.0**stops,
                    strength=self._sub_track(s_keys, t, lambda k: k.strength),
                    key_index_from=a,
                    key_index_to=b,
                    blend=blend,
                )
            )
        return states

    def _check_targets(self, point_depths: PointDepths | None, metric: bool) -> None:
        for i, key in enumerate(self.keys):
            if key.point is not None and point_depths is None:
                raise InputError(
                    f"{_describe(i, key)} focuses on point {key.point}: pass point_depths "
                    "(track the point with tracking.track_point, read tracking.depth_at_point)."
                )
        self.check_depth_kind(metric)

    def check_depth_kind(self, metric: bool) -> None:
        """Refuse keys the depth cannot serve: a distance on relative depth, a relative depth
        outside [0, 1]. Cheap, so a job checks before a long depth pass.

        Raises:
            InputError: naming the key.
        """
        for i, key in enumerate(self.keys):
            if key.distance_m is not None and not metric:
                raise InputError(
                    f"{_describe(i, key)} sets a distance ({key.distance_m:g} m) but the depth "
                    "is relative; use a depth (d0.4) or point key, or supply metric depth."
                )
            if key.depth is not None and not metric and key.depth > 1:
                raise InputError(
                    f"{_describe(i, key)}: depth {key.depth:g} is outside [0, 1], the range of "
                    "relative depth; use a value in [0, 1] or supply metric depth."
                )

    def _segment(self, keys: list[int], t: Fraction) -> tuple[int, int, float]:
        """(from key, to key, eased blend) at time t, among the key indices `keys`."""
        pos = bisect.bisect_right([self.times_s[k] for k in keys], t)
        if pos in (0, len(keys)):  # hold before the first and after the last key
            key = keys[0] if pos == 0 else keys[-1]
            return key, key, 1.0
        a, b = keys[pos - 1], keys[pos]
        u = float((t - self.times_s[a]) / (self.times_s[b] - self.times_s[a]))
        return a, b, float(easing_from_name(self.keys[b].ease)(u))

    def _sub_track(
        self, keys: list[int], t: Fraction, value: Callable[[FocusKey], float]
    ) -> float | None:
        if not keys:
            return None
        a, b, blend = self._segment(keys, t)
        va = value(self.keys[a])
        return va + (value(self.keys[b]) - va) * blend

    def _disparity(self, index: int, frame: int, point_depths: PointDepths | None) -> float:
        key = self.keys[index]
        if key.distance_m is not None:
            return 1.0 / key.distance_m  # inf -> 0 diopters
        if key.depth is not None:
            return key.depth
        value = float(point_depths(index, frame))
        if not (math.isfinite(value) and value >= 0):
            raise InputError(
                f"{_describe(index, key)}: the depth at its tracked point in frame {frame} is "
                f"{value}; depth must be finite and >= 0 there (check the depth map)."
            )
        return value


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "key"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            known = ", ".join(FocusKey.model_fields)
            parts.append(f"unknown field {loc!r} (fields: {known})")
        elif e["type"] == "missing":
            parts.append(f"{loc!r} is missing (the key's time, e.g. at: 1.5s)")
        else:
            parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _make_key(index: int, text: str, fields: dict[str, Any]) -> FocusKey:
    try:
        return FocusKey(**fields)
    except ValidationError as err:
        raise InputError(f"focus keyframe {index} ({text!r}): {_explain(err)}.") from err


def parse_keys_data(data: Any) -> list[FocusKey]:
    """Keys from parsed YAML/JSON: a list of mappings, or a mapping with a `keys` list.

    Each mapping holds FocusKey fields: `at`, one of `distance_m` / `point: [x, y]` /
    `depth`, and optional `f_number`, `strength`, `ease`.

    Raises:
        InputError: another structure, or a bad key (named by index and content).
    """
    if isinstance(data, dict) and set(data) == {"keys"}:
        data = data["keys"]
    if not isinstance(data, list):
        raise InputError(
            "focus keyframes must be a list of keys or a mapping {keys: [...]}; got "
            f"{type(data).__name__}. Example: [{{at: 0s, distance_m: 2.0}}, "
            "{at: 1.5s, distance_m: 0.8, ease: linear}]"
        )
    keys = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(f"focus keyframe {i} ({item!r}): must be a mapping of fields.")
        keys.append(_make_key(i, json.dumps(item, default=str), item))
    return keys


def parse_keys_csv(text: str) -> list[FocusKey]:
    """Keys from CSV with a header row naming some of `CSV_COLUMNS` (`time` is required).

    Empty cells are unset; `point_x` and `point_y` together make a point key.

    Raises:
        InputError: a missing `time` column, an unknown column or a bad row (named by its
            key index and text).
    """
    lines = text.splitlines()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if "time" not in header or unknown:
        raise InputError(
            f"focus keyframe CSV header {header}: needs a 'time' column and only these "
            f"columns: {', '.join(CSV_COLUMNS)}."
        )
    keys = []
    for i, row in enumerate(reader):
        raw = lines[reader.line_num - 1] if reader.line_num - 1 < len(lines) else str(row)
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        fields: dict[str, Any] = {"at": cells.pop("time")}
        px, py = cells.pop("point_x", ""), cells.pop("point_y", "")
        if px or py:
            fields["point"] = (px, py)
        fields.update({k: v for k, v in cells.items() if v})
        keys.append(_make_key(i, raw, fields))
    return keys


# Signs are accepted so that "-1m" is refused by FocusKey's range check with a clear message.
_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"
_SPLIT = re.compile(r",(?=[^,:()@/]*:)")
_TIMECODE_PREFIX = re.compile(r"\s*(\d+:\d{2}:\d{2}[:;]\d{2,3})\s*:")
_DISTANCE = re.compile(rf"{_NUM}\s*m|inf")
_POINT = re.compile(rf"@\s*{_NUM}\s*,\s*{_NUM}")
_DEPTH = re.compile(rf"d\s*{_NUM}")
_F_NUMBER = re.compile(rf"f\s*{_NUM}")
_STRENGTH = re.compile(rf"{_NUM}\s*px")


def parse_keys_text(text: str) -> list[FocusKey]:
    """Keys from the CLI string.

    Grammar (spaces around tokens are ignored)::

        track   := key ("," key)*
        key     := TIME ":" [EASE ":"] TARGET ("/" SETTING)*
        TIME    := 2.5 | 2.5s | f60 | HH:MM:SS:FF | HH:MM:SS;FF
        EASE    := hold | linear | ease | ease-in | ease-out | ease-in-out
                 | cubic-bezier(x1,y1,x2,y2)
        TARGET  := 2.0m | inf          focus distance in metres (inf = infinity)
                 | @x,y                a pixel (display orientation) whose subject is tracked
                 | d0.4                a disparity (1/m metric, [0, 1] relative)
        SETTING := f2.8                f-number
                 | 12px                blur strength in pixels (relative depth)

    A comma starts a new key only where the text up to the next ':' can be a time (holds no
    ',', '(', ')', '@' or '/'), so the commas of `@x,y` and `cubic-bezier(...)` stay inside
    their key. Example: `"0s:2.0m, 1.5s:ease-in-out:0.8m/f2.8, 3s:@320,180, f120:linear:d0.4"`.

    Raises:
        InputError: a malformed key, naming its index and text and the grammar.
    """
    if not text.strip():
        raise InputError(f"no focus keyframes given. {_GRAMMAR}.")
    keys = []
    for i, part in enumerate(_SPLIT.split(text)):
        keys.append(_make_key(i, part.strip(), _parse_key(i, part)))
    return keys


def _parse_key(index: int, text: str) -> dict[str, Any]:
    def fail(what: str) -> InputError:
        return InputError(f"focus keyframe {index} ({text.strip()!r}): {what}. {_GRAMMAR}.")

    match = _TIMECODE_PREFIX.match(text)
    if match:
        time, rest = match[1], text[match.end() :]
    elif ":" in text:
        time, rest = text.split(":", 1)
    else:
        raise fail("no ':' between the time and the target")
    try:
        fields: dict[str, Any] = {"at": check_time_spec(time.strip())}
    except InputError as err:
        raise fail(f"time {time.strip()!r} is not {ACCEPTED_FORMS}") from err
    main, *settings = (s.strip() for s in rest.split("/"))
    ease_and_target = [s.strip() for s in main.split(":")]
    if len(ease_and_target) > 2:
        raise fail(f"too many ':' in {rest.strip()!r}")
    if len(ease_and_target) == 2:
        fields["ease"] = ease_and_target[0]
    target = ease_and_target[-1]
    if "," in target and not target.startswith("@"):
        raise fail(f"after the ',' in {target!r} comes no TIME: (every key starts with one)")
    if m := _DISTANCE.fullmatch(target):
        fields["distance_m"] = math.inf if target == "inf" else float(m[1])
    elif m := _POINT.fullmatch(target):
        fields["point"] = (float(m[1]), float(m[2]))
    elif m := _DEPTH.fullmatch(target):
        fields["depth"] = float(m[1])
    else:
        raise fail(
            f"target {target!r} is not a distance (2.0m, inf), a point (@320,180) "
            "or a disparity (d0.4)"
        )
    for setting in settings:
        if m := _F_NUMBER.fullmatch(setting):
            fields["f_number"] = float(m[1])
        elif m := _STRENGTH.fullmatch(setting):
            fields["strength"] = float(m[1])
        else:
            raise fail(f"setting {setting!r} is not an f-number (f2.8) or a strength (12px)")
    return fields


_FOCUS_POINT = re.compile(rf"\s*{_NUM}\s*,\s*{_NUM}\s*@\s*(\S.*?)\s*")


def parse_focus_point(text: str) -> FocusKey:
    """A `--focus-point X,Y@TIME` value: at TIME, focus on the subject at pixel (X, Y).

    The same as the keyframe `TIME:@X,Y`: the subject is tracked through the clip, and the
    key is reached with the default ease (ease-in-out).

    Args:
        text: e.g. "320,180@1.5s"; TIME is any time spec (2.5, 2.5s, f60, timecode).
    Returns:
        The point key.
    Raises:
        InputError: not X,Y@TIME, a bad time or a negative coordinate (names the value).

    Example:
        >>> parse_focus_point("320,180@f12").point
        (320.0, 180.0)
    """
    m = _FOCUS_POINT.fullmatch(text)
    if m is None:
        raise InputError(
            f"--focus-point {text!r}: write X,Y@TIME, a pixel (display orientation) and the "
            "time its subject is focused, e.g. 320,180@1.5s."
        )
    try:
        at = check_time_spec(m[3])
    except InputError as err:
        raise InputError(f"--focus-point {text!r}: time {m[3]!r} is not {ACCEPTED_FORMS}.") from err
    try:
        return FocusKey(at=at, point=(float(m[1]), float(m[2])))
    except ValidationError as err:
        raise InputError(f"--focus-point {text!r}: {_explain(err)}.") from err


def merge_focus_points(
    track: FocusTrack | None,
    points: Sequence[str],
    rate: Fraction | None = None,
    duration_s: Fraction | None = None,
) -> FocusTrack:
    """Add `--focus-point` keys to a track's keys (if any), in time order.

    The track's own keys keep their order rules (`FocusTrack` refuses keys out of order); the
    points may come in any order and go where their times fall.

    Args:
        track: keys from `--focus` or `--focus-file`, or None.
        points: `X,Y@TIME` values (`parse_focus_point`).
        rate: the clip's frame rate, for "f60" and timecode times.
        duration_s: the clip's duration; None skips the range check.
    Returns:
        A track of all keys.
    Raises:
        InputError: a bad value, a time outside the clip, or two keys at one time (both named).

    Example:
        >>> merged = merge_focus_points(FocusTrack.from_text("0s:2m"), ["10,20@1s"])
        >>> [key.point for key in merged.keys]
        [None, (10.0, 20.0)]
    """
    timed: list[tuple[Fraction, str, FocusKey]] = []
    if track is not None:
        timed = [
            (t, _describe(i, key), key)
            for i, (t, key) in enumerate(zip(track.times_s, track.keys, strict=True))
        ]
    for text in points:
        key = parse_focus_point(text)
        name = f"--focus-point {text!r}"
        try:
            t = parse_time(key.at, rate)
        except InputError as err:
            raise InputError(f"{name}: {err}") from err
        if duration_s is not None and t > duration_s:
            raise InputError(
                f"{name} is at {float(t):g} s, after the end of the clip "
                f"({float(duration_s):g} s). Move it inside the clip."
            )
        clash = next((other for when, other, _ in timed if when == t), None)
        if clash is not None:
            raise InputError(
                f"{name} is at {float(t):g} s, where {clash} already is; give one key per "
                "time (drop one of them, or move it)."
            )
        timed.append((t, name, key))
    timed.sort(key=lambda item: item[0])
    return FocusTrack(tuple(key for _, _, key in timed), rate, duration_s)
