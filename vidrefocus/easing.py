"""Easing curves for focus pulls: t in [0, 1] -> eased progress in [0, 1], CSS definitions."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from vidrefocus.errors import InputError

__all__ = [
    "EASING_NAMES",
    "Easing",
    "cubic_bezier",
    "ease",
    "ease_in",
    "ease_in_out",
    "ease_out",
    "easing_from_name",
    "hold",
    "linear",
]

T = TypeVar("T", float, Tensor)
Easing = Callable[[T], T]

# Newton stops when |x(s) - x| is below this; the bisection fallback reaches it too.
_TOLERANCE = 1e-7
_NEWTON_STEPS = 8
# 2^-40 ~ 1e-12 in s; x(s) has slope <= 3, so x is within 3e-12 of its target.
_BISECTION_STEPS = 40


def _on_tensor(fn: Callable[[Tensor], Tensor], t: T) -> T:
    """Run a tensor curve on a float or a tensor; t is clamped to [0, 1]."""
    if isinstance(t, Tensor):
        return fn(t.clamp(0.0, 1.0))
    value = torch.tensor(float(t), dtype=torch.float64).clamp(0.0, 1.0)
    return float(fn(value))


def hold(t: T) -> T:
    """Step at the end: 0 until t reaches 1 (a cut to the next key, like a focus snap).

    Args:
        t: float, or tensor of any shape, in [0, 1] (clamped).
    Returns:
        Same type and shape: 1 where t >= 1, else 0.
    """
    return _on_tensor(lambda x: (x >= 1.0).to(x.dtype), t)


def linear(t: T) -> T:
    """Identity: constant speed.

    Args:
        t: float, or tensor of any shape, in [0, 1] (clamped).
    Returns:
        Same type and shape, equal to t.
    """
    return _on_tensor(lambda x: x, t)


def _bezier(s: Tensor, p1: float, p2: float) -> Tensor:
    """One coordinate of the CSS cubic Bezier with end points 0 and 1 at parameter s.

    B(s) = 3 (1 - s)^2 s p1 + 3 (1 - s) s^2 p2 + s^3.
    """
    u = 1.0 - s
    return 3.0 * u * u * s * p1 + 3.0 * u * s * s * p2 + s * s * s


def _bezier_slope(s: Tensor, p1: float, p2: float) -> Tensor:
    """dB/ds = 3 (1 - s)^2 p1 + 6 (1 - s) s (p2 - p1) + 3 s^2 (1 - p2)."""
    u = 1.0 - s
    return 3.0 * u * u * p1 + 6.0 * u * s * (p2 - p1) + 3.0 * s * s * (1.0 - p2)


def _solve_s(x: Tensor, x1: float, x2: float) -> Tensor:
    """Parameter s with x(s) = x, for x1, x2 in [0, 1] (x(s) is then non-decreasing).

    Newton from s = x converges in a few steps where the slope is healthy; where it is not
    (flat ends, x1 = 0 or x2 = 1), bisection on [0, 1] takes over.
    """
    s = x.clone()
    for _ in range(_NEWTON_STEPS):
        slope = _bezier_slope(s, x1, x2)
        step = (_bezier(s, x1, x2) - x) / torch.where(slope.abs() > 1e-6, slope, 1.0)
        s = torch.where(slope.abs() > 1e-6, (s - step).clamp(0.0, 1.0), s)
    bad = (_bezier(s, x1, x2) - x).abs() > _TOLERANCE
    if bool(bad.any()):
        lo, hi = torch.zeros_like(x), torch.ones_like(x)
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            below = _bezier(mid, x1, x2) < x
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        s = torch.where(bad, 0.5 * (lo + hi), s)
    return s


def cubic_bezier(t: T, x1: float, y1: float, x2: float, y2: float) -> T:
    """CSS `cubic-bezier(x1, y1, x2, y2)`: the curve through (0, 0) and (1, 1) read as y(x).

    The control points are (x1, y1) and (x2, y2) (CSS Easing Functions Level 1, "cubic Bezier
    easing functions"). x = t is solved for the curve parameter by Newton's method with a
    bisection fallback to |x(s) - t| < 1e-7, in float64, then y(s) is returned. The end
    points are exact: 0 -> 0 and 1 -> 1.

    Args:
        t: float, or tensor of any shape, in [0, 1] (clamped).
        x1: first control point's x, in [0, 1].
        y1: first control point's y (any value; outside [0, 1] overshoots).
        x2: second control point's x, in [0, 1].
        y2: second control point's y.
    Returns:
        Same type and shape (and dtype) as t.
    Raises:
        InputError: x1 or x2 outside [0, 1] (the curve would not be a function of x).
    Example:
        >>> round(cubic_bezier(0.5, 0.42, 0.0, 0.58, 1.0), 6)
        0.5
    """
    for name, value in (("x1", x1), ("x2", x2)):
        if not 0.0 <= value <= 1.0:
            raise InputError(
                f"cubic-bezier {name} must lie in [0, 1] so the curve is a function of time; "
                f"got {value:g}."
            )

    def curve(x: Tensor) -> Tensor:
        x64 = x.to(torch.float64)
        y = _bezier(_solve_s(x64, x1, x2), y1, y2)
        y = torch.where(x64 <= 0.0, 0.0, torch.where(x64 >= 1.0, 1.0, y))
        return y.to(x.dtype)

    return _on_tensor(curve, t)


def ease(t: T) -> T:
    """CSS `ease` = cubic-bezier(0.25, 0.1, 0.25, 1): quick start, long gentle landing."""
    return cubic_bezier(t, 0.25, 0.1, 0.25, 1.0)


def ease_in(t: T) -> T:
    """CSS `ease-in` = cubic-bezier(0.42, 0, 1, 1): starts slowly, arrives at full speed."""
    return cubic_bezier(t, 0.42, 0.0, 1.0, 1.0)


def ease_out(t: T) -> T:
    """CSS `ease-out` = cubic-bezier(0, 0, 0.58, 1): starts at full speed, lands softly."""
    return cubic_bezier(t, 0.0, 0.0, 0.58, 1.0)


def ease_in_out(t: T) -> T:
    """CSS `ease-in-out` = cubic-bezier(0.42, 0, 0.58, 1): the focus puller's S-curve."""
    return cubic_bezier(t, 0.42, 0.0, 0.58, 1.0)


_NAMED: dict[str, Easing] = {
    "hold": hold,
    "linear": linear,
    "ease": ease,
    "ease-in": ease_in,
    "ease-out": ease_out,
    "ease-in-out": ease_in_out,
}
EASING_NAMES = (*_NAMED, "cubic-bezier(x1,y1,x2,y2)")

_NUMBER = r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*"
_BEZIER = re.compile(rf"cubic-bezier\({_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}\)")


def easing_from_name(name: str) -> Easing:
    """The easing curve a name stands for.

    Names: `hold`, `linear`, `ease`, `ease-in`, `ease-out`, `ease-in-out` and
    `cubic-bezier(x1, y1, x2, y2)` with x1, x2 in [0, 1]. Case and '_' for '-' are forgiven.

    Args:
        name: the curve's name.
    Returns:
        A function t -> eased t on floats or tensors.
    Raises:
        InputError: an unknown name (the message lists the known ones) or bad bezier points.
    Example:
        >>> easing_from_name("cubic-bezier(0, 0, 1, 1)")(0.25)
        0.25
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else ""
    if key in _NAMED:
        return _NAMED[key]
    if match := _BEZIER.fullmatch(key):
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        try:
            cubic_bezier(0.5, x1, y1, x2, y2)  # validates the control points now
        except InputError as err:
            raise InputError(f"easing {name!r}: {err}") from err
        return functools.partial(_bezier_easing, points=(x1, y1, x2, y2))
    raise InputError(f"unknown easing {name!r}. Known easings: {', '.join(EASING_NAMES)}.")


def _bezier_easing(t: T, points: tuple[float, float, float, float]) -> T:
    return cubic_bezier(t, *points)
