"""Tests for vidrefocus.easing: CSS curves against a dense float64 reference of the Bezier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidrefocus.easing import (
    EASING_NAMES,
    cubic_bezier,
    ease,
    ease_in,
    ease_in_out,
    ease_out,
    easing_from_name,
    hold,
    linear,
)
from vidrefocus.errors import InputError

# CSS Easing Functions Level 1: the keywords' control points.
CSS = {
    "ease": (0.25, 0.1, 0.25, 1.0),
    "ease-in": (0.42, 0.0, 1.0, 1.0),
    "ease-out": (0.0, 0.0, 0.58, 1.0),
    "ease-in-out": (0.42, 0.0, 0.58, 1.0),
}
FUNCTIONS = {"ease": ease, "ease-in": ease_in, "ease-out": ease_out, "ease-in-out": ease_in_out}


def reference(t: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """y(x) from 2^21 + 1 samples of the parametric curve, linearly interpolated in float64.

    Sample spacing 5e-7 in s; linear interpolation error is below 1e-10 for these curves.
    """
    s = np.linspace(0.0, 1.0, 2**21 + 1)
    u = 1.0 - s
    xs = 3 * u * u * s * x1 + 3 * u * s * s * x2 + s**3
    ys = 3 * u * u * s * y1 + 3 * u * s * s * y2 + s**3
    return np.interp(t, xs, ys)


T = np.linspace(0.0, 1.0, 1001)


class TestNamedCurves:
    @pytest.mark.parametrize("name", list(CSS))
    def test_matches_css_bezier(self, name: str) -> None:
        got = FUNCTIONS[name](torch.from_numpy(T)).numpy()
        # solver stops at |x(s) - t| < 1e-7 and |dy/dx| <= ~2.5 on these curves
        np.testing.assert_allclose(got, reference(T, *CSS[name]), atol=1e-6, rtol=0)

    @pytest.mark.parametrize("name", [*CSS, "linear", "hold"])
    def test_monotonic_and_exact_endpoints(self, name: str) -> None:
        fn = easing_from_name(name)
        values = fn(torch.linspace(0, 1, 10001, dtype=torch.float64))
        assert bool((values.diff() >= 0).all())
        assert fn(0.0) == 0.0
        assert fn(1.0) == 1.0
        assert fn(torch.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]

    def test_ease_in_out_is_symmetric(self) -> None:
        # (0.42, 0, 0.58, 1) is point-symmetric about (0.5, 0.5): y(1 - t) = 1 - y(t)
        t = torch.linspace(0, 1, 101, dtype=torch.float64)
        torch.testing.assert_close(ease_in_out(1 - t), 1 - ease_in_out(t), atol=1e-7, rtol=0)
        assert ease_in_out(0.5) == pytest.approx(0.5, abs=1e-9)

    def test_hold_and_linear(self) -> None:
        assert [hold(t) for t in (0.0, 0.5, 0.999999, 1.0)] == [0.0, 0.0, 0.0, 1.0]
        assert linear(0.25) == 0.25
        # t is clamped to [0, 1]
        assert linear(1.5) == 1.0
        assert hold(2.0) == 1.0
        assert ease_in(-0.5) == 0.0

    def test_types_shapes_dtypes(self) -> None:
        assert isinstance(ease_out(0.3), float)
        for dtype in (torch.float32, torch.float64):
            x = torch.rand(2, 3, dtype=dtype)
            y = ease_out(x)
            assert y.shape == (2, 3)
            assert y.dtype == dtype


class TestCubicBezier:
    @pytest.mark.parametrize(
        "points",
        [
            (0.3, 0.0, 0.2, 1.0),
            (0.0, 0.0, 1.0, 1.0),  # flat slope at both ends: Newton stalls, bisection runs
            (1.0, 0.0, 0.0, 1.0),  # steep middle
            (0.5, -0.5, 0.5, 1.5),  # overshoot in y
            (0.9, 0.1, 0.1, 0.9),
        ],
    )
    def test_against_dense_reference(self, points: tuple[float, float, float, float]) -> None:
        got = cubic_bezier(torch.from_numpy(T), *points).numpy()
        # y error <= |dy/dx| * 1e-7 from the solver, plus float rounding; 1e-5 covers the
        # steepest curve here (dy/dx ~ 30 near x = 0.5 for (1, 0, 0, 1))
        np.testing.assert_allclose(got, reference(T, *points), atol=1e-5, rtol=0)

    def test_float_matches_tensor(self) -> None:
        assert cubic_bezier(0.37, 0.3, 0.0, 0.2, 1.0) == pytest.approx(
            float(cubic_bezier(torch.tensor(0.37, dtype=torch.float64), 0.3, 0.0, 0.2, 1.0)),
            abs=1e-12,
        )

    @pytest.mark.parametrize("points", [(1.2, 0.0, 0.5, 1.0), (0.2, 0.0, -0.1, 1.0)])
    def test_x_outside_unit_interval(self, points: tuple[float, float, float, float]) -> None:
        with pytest.raises(InputError, match="must lie in"):
            cubic_bezier(0.5, *points)


class TestFromName:
    def test_names(self) -> None:
        assert easing_from_name("ease-in-out") is ease_in_out
        assert easing_from_name(" Ease_In ") is ease_in
        assert easing_from_name("linear") is linear
        assert easing_from_name("hold") is hold

    def test_bezier_string(self) -> None:
        fn = easing_from_name("cubic-bezier(0.3, 0, 0.2, 1)")
        assert fn(0.4) == pytest.approx(cubic_bezier(0.4, 0.3, 0.0, 0.2, 1.0), abs=1e-12)
        assert easing_from_name("cubic-bezier(.42,0,.58,1)")(0.3) == pytest.approx(
            ease_in_out(0.3), abs=1e-12
        )

    @pytest.mark.parametrize("name", ["bounce", "cubic-bezier(0.3,0,0.2)", "", "ease-in-outt"])
    def test_unknown_lists_known(self, name: str) -> None:
        with pytest.raises(InputError) as info:
            easing_from_name(name)
        for known in EASING_NAMES:
            assert known in str(info.value)

    def test_bad_bezier_points(self) -> None:
        with pytest.raises(InputError, match=r"cubic-bezier\(2,0,0.5,1\).*x1"):
            easing_from_name("cubic-bezier(2,0,0.5,1)")
