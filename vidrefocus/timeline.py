"""Time specs (seconds, frames, SMPTE timecode) to exact times in seconds, and back."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from numbers import Real

from vidrefocus.errors import InputError

__all__ = [
    "ACCEPTED_FORMS",
    "check_time_spec",
    "format_timecode",
    "frame_to_timecode",
    "nominal_rate",
    "parse_time",
    "timecode_to_frame",
]

ACCEPTED_FORMS = (
    'seconds (2.5 or "2.5s"), a frame number ("f60"), timecode HH:MM:SS:FF ("00:00:02:12") '
    'or drop-frame timecode HH:MM:SS;FF ("00:00:02;12", 29.97 and 59.94 fps only)'
)

_SECONDS = re.compile(r"(?P<value>\d+(?:\.\d*)?|\.\d+)\s*s?")
_FRAMES = re.compile(r"f(?P<frame>\d+)")
_TIMECODE = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?P<sep>[:;])(?P<f>\d{2,3})")

# SMPTE 12M drop-frame: these rates drop this many frame numbers at the start of each minute
# except every tenth minute, so the label keeps pace with the clock (29.97: 2, 59.94: 4).
_DROP_FRAMES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}


def _check_rate(rate: Fraction | None, text: str, what: str) -> Fraction:
    if rate is None:
        raise InputError(
            f"time {text!r}: {what} needs the frame rate, and none is known here. "
            'Give the time in seconds ("2.5s") instead.'
        )
    if not isinstance(rate, Fraction | int) or rate <= 0:
        raise InputError(f"frame rate must be a positive Fraction (e.g. 30000/1001); got {rate!r}.")
    return Fraction(rate)


def nominal_rate(rate: Fraction) -> int:
    """The integer frame count per timecode second: 30 for 29.97 (30000/1001), 24 for 23.976.

    Args:
        rate: frame rate in frames per second, > 0.
    Returns:
        The nearest integer rate, >= 1.
    Example:
        >>> nominal_rate(Fraction(30000, 1001))
        30
    """
    return max(1, round(rate))


def _drop_count(rate: Fraction, text: str) -> int:
    drop = _DROP_FRAMES.get(Fraction(rate))
    if drop is None:
        raise InputError(
            f"timecode {text!r}: drop-frame timecode (';' before the frames) exists only at "
            f"29.97 (30000/1001) and 59.94 (60000/1001) fps, not at {rate} fps. "
            "Use ':' before the frames for non-drop timecode."
        )
    return drop


def timecode_to_frame(timecode: str, rate: Fraction) -> int:
    """Frame number that a SMPTE timecode labels, counting from 00:00:00:00.

    `HH:MM:SS:FF` is non-drop: frames are counted at the nominal rate (30 for 29.97), so the
    label runs slow against the clock at fractional rates. `HH:MM:SS;FF` is drop-frame (SMPTE
    12M): frame numbers 0 and 1 (0-3 at 59.94) are skipped at the start of every minute except
    minutes 0, 10, 20, ..., which keeps the label within a frame of the clock.

    Args:
        timecode: the label; ';' before the frames selects drop-frame.
        rate: the video's frame rate, e.g. Fraction(30000, 1001).
    Returns:
        The frame number, >= 0.
    Raises:
        InputError: malformed text, a field out of range, a dropped frame number, or
            drop-frame at a rate other than 29.97 or 59.94.
    Example:
        >>> timecode_to_frame("00:01:00;02", Fraction(30000, 1001))
        1800
    """
    text = timecode.strip()
    match = _TIMECODE.fullmatch(text)
    if match is None:
        raise InputError(f"timecode {text!r}: not HH:MM:SS:FF or HH:MM:SS;FF.")
    rate = _check_rate(rate, text, "timecode")
    per_second = nominal_rate(rate)
    h, m, s, f = (int(match[k]) for k in ("h", "m", "s", "f"))
    if m >= 60 or s >= 60 or f >= per_second:
        raise InputError(
            f"timecode {text!r}: minutes and seconds must be below 60 and frames below "
            f"{per_second} at {float(rate):g} fps."
        )
    frame = ((h * 60 + m) * 60 + s) * per_second + f
    if match["sep"] == ";":
        drop = _drop_count(rate, text)
        minutes = h * 60 + m
        if s == 0 and f < drop and m % 10 != 0:
            raise InputError(
                f"timecode {text!r}: drop-frame timecode skips frames 00-{drop - 1:02d} at the "
                f"start of minute {m} (every minute not divisible by 10); no frame has this label."
            )
        frame -= drop * (minutes - minutes // 10)
    return frame


def frame_to_timecode(frame: int, rate: Fraction, drop_frame: bool = False) -> str:
    """The SMPTE timecode label of a frame number (inverse of `timecode_to_frame`).

    Args:
        frame: frame number counted from 00:00:00:00, >= 0.
        rate: the video's frame rate.
        drop_frame: label with drop-frame timecode (29.97 and 59.94 only).
    Returns:
        "HH:MM:SS:FF", or "HH:MM:SS;FF" for drop-frame.
    Raises:
        InputError: a negative frame, or drop-frame at another rate.
    Example:
        >>> frame_to_timecode(17982, Fraction(30000, 1001), drop_frame=True)
        '00:10:00;00'
    """
    if frame < 0:
        raise InputError(f"frame number must be >= 0; got {frame}.")
    rate = _check_rate(rate, f"frame {frame}", "timecode")
    per_second = nominal_rate(rate)
    sep = ":"
    if drop_frame:
        drop = _drop_count(rate, f"frame {frame}")
        per_minute = per_second * 60 - drop
        per_ten_minutes = per_second * 600 - drop * 9
        tens, rest = divmod(frame, per_ten_minutes)
        # Add back the labels skipped so far: 9 minutes per full ten, plus the minutes started
        # in this ten after its undropped first minute.
        frame += drop * 9 * tens + drop * max(0, (rest - drop) // per_minute)
        sep = ";"
    seconds, f = divmod(frame, per_second)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{f:02d}"


def format_timecode(seconds: Fraction | float, rate: Fraction, drop_frame: bool = False) -> str:
    """Timecode of the frame nearest to a time (ties go to the later frame).

    Args:
        seconds: time from the first frame, >= 0.
        rate: the video's frame rate.
        drop_frame: label with drop-frame timecode (29.97 and 59.94 only).
    Returns:
        "HH:MM:SS:FF" or "HH:MM:SS;FF".
    Raises:
        InputError: a negative or non-finite time, or drop-frame at another rate.
    Example:
        >>> format_timecode(Fraction(5, 2), Fraction(24))
        '00:00:02:12'
    """
    if not _finite(seconds) or seconds < 0:
        raise InputError(f"time must be a finite number of seconds >= 0; got {seconds!r}.")
    rate = _check_rate(rate, f"{seconds}", "timecode")
    frame = math.floor(_exact(seconds) * rate + Fraction(1, 2))
    return frame_to_timecode(frame, rate, drop_frame)


def _finite(value: Fraction | float) -> bool:
    return isinstance(value, Fraction | int) or math.isfinite(value)


def _exact(value: Fraction | float | int) -> Fraction:
    # A float is taken as the decimal it prints as (0.1 -> 1/10), which is what a user typed.
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def _bad_spec(spec: object) -> InputError:
    return InputError(f"time {spec!r} is not a time. Use {ACCEPTED_FORMS}.")


def check_time_spec(spec: str | float | Fraction) -> str | float | Fraction:
    """Check the syntax of a time spec without resolving it (no frame rate needed).

    Args:
        spec: a number of seconds or a string in one of `ACCEPTED_FORMS`.
    Returns:
        The spec, strings stripped of surrounding spaces.
    Raises:
        InputError: anything else (the message lists the accepted forms).
    """
    if isinstance(spec, bool):
        raise _bad_spec(spec)
    if isinstance(spec, Real):
        if not _finite(spec) or spec < 0:
            raise InputError(f"time {spec!r}: must be a finite number of seconds >= 0.")
        return spec
    if not isinstance(spec, str):
        raise _bad_spec(spec)
    text = spec.strip()
    if not any(p.fullmatch(text) for p in (_SECONDS, _FRAMES, _TIMECODE)):
        raise _bad_spec(spec)
    return text


def parse_time(spec: str | float | Fraction, rate: Fraction | None = None) -> Fraction:
    """Resolve a time spec to an exact time in seconds from the first frame.

    Accepted forms: a number of seconds (`2.5`, `Fraction(5, 2)`), `"2.5s"` or `"2.5"`, a frame
    number `"f60"` (frame 60 starts at 60 / rate), timecode `"00:00:02:12"` and drop-frame
    timecode `"00:00:02;12"` (see `timecode_to_frame`). Frame and timecode specs name a frame
    of a constant-rate clock; for variable-frame-rate video they are approximate, seconds are
    exact.

    Args:
        spec: the time spec.
        rate: frame rate in frames per second; needed for frames and timecode.
    Returns:
        Seconds as a Fraction, >= 0.
    Raises:
        InputError: malformed text (the message names it and lists the accepted forms), a
            frame or timecode spec without a rate, or a bad timecode field.
    Example:
        >>> parse_time("00:00:02:12", Fraction(24))
        Fraction(5, 2)
        >>> parse_time("f60", Fraction(30000, 1001))
        Fraction(1001, 500)
    """
    spec = check_time_spec(spec)
    if not isinstance(spec, str):
        return _exact(spec)
    if match := _SECONDS.fullmatch(spec):
        return Fraction(match["value"])
    if match := _FRAMES.fullmatch(spec):
        rate = _check_rate(rate, spec, "a frame number")
        return Fraction(int(match["frame"])) / rate
    rate = _check_rate(rate, spec, "timecode")
    return Fraction(timecode_to_frame(spec, rate)) / rate
