"""Tests for vidrefocus.optics: thin-lens blur against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from vidrefocus.errors import InputError
from vidrefocus.optics import (
    blur_scale_px,
    coc_diameter_m,
    coc_radius_px,
    depth_of_field_m,
    diopters_from_distance_m,
    distance_m_from_diopters,
    hyperfocal_distance_m,
    metric_coc_radius_px,
    relative_coc_radius_px,
)

# The lens used for hand-computed values: 50 mm at f/2 focused at 2 m, full frame (36 mm wide)
# at 1920 px. A = f / N = 25 mm; f * S_f / (S_f - f) = 0.05 * 2 / 1.95 = 0.0512820513 m.
F_MM, N, S_F, SENSOR_MM, WIDTH_PX = 50.0, 2.0, 2.0, 36.0, 1920
A_F_TERM = 0.025 * 0.05 * 2.0 / 1.95  # A * f * S_f / (S_f - f) = 1.28205128e-3 m^2
PX_PER_M = 1920 / 0.036  # sensor metres -> pixels = 53333.33
K_HAND = 0.5 * A_F_TERM * PX_PER_M  # = 34.1880342 px per diopter


def _f64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


class TestCocDiameter:
    def test_hand_computed(self) -> None:
        # S = 4 m: |1/2 - 1/4| = 0.25 -> c = 1.28205128e-3 * 0.25 = 3.2051282e-4 m (0.32 mm)
        assert coc_diameter_m(4.0, S_F, F_MM, N) == pytest.approx(3.2051282051e-4, rel=1e-10)

    def test_infinity(self) -> None:
        # object at infinity: |1/2 - 0| = 0.5 -> 6.4102564e-4 m
        assert coc_diameter_m(math.inf, S_F, F_MM, N) == pytest.approx(6.4102564103e-4, rel=1e-10)
        # focus at infinity: A * f * |0 - 1/10| = 0.025 * 0.05 * 0.1 = 1.25e-4 m
        assert coc_diameter_m(10.0, math.inf, F_MM, N) == pytest.approx(1.25e-4, rel=1e-12)

    def test_zero_in_focus(self) -> None:
        assert coc_diameter_m(S_F, S_F, F_MM, N) == 0.0

    def test_symmetric_in_diopters(self) -> None:
        # c is linear in |1/S - 1/S_f|: equal diopter steps either side blur equally
        near = coc_diameter_m(1.0 / (0.5 + 0.2), S_F, F_MM, N)
        far = coc_diameter_m(1.0 / (0.5 - 0.2), S_F, F_MM, N)
        assert near == pytest.approx(far, rel=1e-12)

    def test_tensor_broadcast(self) -> None:
        distance = _f64(1.0, 2.0, 4.0).view(3, 1)
        f_number = _f64(1.4, 2.0)
        out = coc_diameter_m(distance, S_F, F_MM, f_number)
        assert out.shape == (3, 2)
        assert out.dtype == torch.float64
        assert out[2, 1].item() == pytest.approx(3.2051282051e-4, rel=1e-10)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"focal_length_mm": 0.0}, "focal_length_mm must be > 0"),
            ({"focal_length_mm": -35.0}, "focal_length_mm"),
            ({"f_number": 0.0}, "f_number must be > 0"),
            ({"f_number": math.nan}, "f_number"),
            ({"focus_distance_m": 0.05}, "focus_distance_m must be greater than the focal"),
            ({"focus_distance_m": 0.01}, "got 0.01"),
            ({"distance_m": 0.0}, "distance_m must be > 0"),
            ({"focus_distance_m": _f64(2.0, 0.03)}, "minimum 0.03"),
        ],
    )
    def test_exceptions(self, kwargs: dict, match: str) -> None:
        args = {"distance_m": 4.0, "focus_distance_m": S_F, "focal_length_mm": F_MM, "f_number": N}
        with pytest.raises(InputError, match=match):
            coc_diameter_m(**{**args, **kwargs})

    def test_gradcheck(self) -> None:
        # away from S = S_f, where |.| has a kink
        distance = _f64(0.7, 3.0, 9.0).requires_grad_()
        focus = _f64(1.5, 1.2, 4.0).requires_grad_()
        f_number = _f64(1.4, 2.8, 8.0).requires_grad_()
        focal = _f64(35.0, 50.0, 85.0).requires_grad_()
        assert torch.autograd.gradcheck(coc_diameter_m, (distance, focus, focal, f_number))


class TestBlurScale:
    def test_hand_computed(self) -> None:
        # K = 0.5 * 1.28205128e-3 m^2 * 53333.33 px/m = 34.1880342 px per diopter
        k = blur_scale_px(S_F, F_MM, N, SENSOR_MM, WIDTH_PX)
        assert k == pytest.approx(K_HAND, rel=1e-10)
        assert k == pytest.approx(34.188034188, rel=1e-10)

    def test_consistent_with_diameter(self) -> None:
        # |r| in px == c / 2 in sensor metres times pixels per metre, for any S
        k = blur_scale_px(S_F, F_MM, N, SENSOR_MM, WIDTH_PX)
        for distance in (0.5, 1.0, 3.0, 100.0):
            radius = k * abs(1.0 / distance - 1.0 / S_F)
            expected = 0.5 * coc_diameter_m(distance, S_F, F_MM, N) * PX_PER_M
            assert radius == pytest.approx(expected, rel=1e-12)

    def test_scales_with_aperture_and_resolution(self) -> None:
        # K ~ f^2 / N: one stop down (x sqrt 2 in N) halves the blur area, 4K doubles pixels
        k = blur_scale_px(S_F, F_MM, N, SENSOR_MM, WIDTH_PX)
        assert blur_scale_px(S_F, F_MM, 2 * N, SENSOR_MM, WIDTH_PX) == pytest.approx(k / 2)
        assert blur_scale_px(S_F, F_MM, N, SENSOR_MM, 2 * WIDTH_PX) == pytest.approx(2 * k)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"sensor_width_mm": 0.0}, "sensor_width_mm must be > 0"),
            ({"image_width_px": 0}, "image_width_px must be a positive integer"),
            ({"image_width_px": 1920.0}, "image_width_px"),
            ({"image_width_px": True}, "image_width_px"),
            ({"focus_distance_m": 0.04}, "focus_distance_m"),
        ],
    )
    def test_exceptions(self, kwargs: dict, match: str) -> None:
        args = {
            "focus_distance_m": S_F,
            "focal_length_mm": F_MM,
            "f_number": N,
            "sensor_width_mm": SENSOR_MM,
            "image_width_px": WIDTH_PX,
        }
        with pytest.raises(InputError, match=match):
            blur_scale_px(**{**args, **kwargs})

    def test_gradcheck(self) -> None:
        focus = _f64(0.8, 2.0, math.inf).requires_grad_()
        focal = _f64(24.0, 50.0, 135.0).requires_grad_()
        f_number = _f64(1.2, 2.0, 5.6).requires_grad_()
        sensor = _f64(23.5, 36.0, 36.0).requires_grad_()

        def fn(*args: torch.Tensor) -> torch.Tensor:
            return blur_scale_px(*args, 1920)

        assert torch.autograd.gradcheck(fn, (focus, focal, f_number, sensor))


class TestCocRadius:
    def test_style_example(self) -> None:
        out = coc_radius_px(torch.tensor([[[[0.5]]]]), torch.tensor([0.25]), 8.0)
        assert out.item() == 2.0  # 8 * (0.5 - 0.25), exact in float32

    def test_shape_sign_and_per_frame_k(self) -> None:
        disparity = torch.linspace(0, 1, 12).view(1, 1, 3, 4).repeat(2, 1, 1, 1)
        focus = torch.tensor([0.5, 0.2])
        k = torch.tensor([10.0, 4.0])
        out = coc_radius_px(disparity, focus, k)
        assert out.shape == (2, 1, 3, 4)
        assert out.dtype == torch.float32
        expected = k.view(-1, 1, 1, 1) * (disparity - focus.view(-1, 1, 1, 1))
        torch.testing.assert_close(out, expected, atol=0, rtol=0)
        # nearer than the focal plane (larger disparity) -> positive radius
        assert (out[disparity > focus.view(-1, 1, 1, 1)] > 0).all()
        assert (out[disparity < focus.view(-1, 1, 1, 1)] < 0).all()

    @pytest.mark.parametrize(
        ("disparity_shape", "focus_shape", "k", "match"),
        [
            ((2, 3, 4), (2,), 1.0, r"disparity must have shape \(B, 1, H, W\)"),
            ((2, 2, 3, 4), (2,), 1.0, "disparity"),
            ((2, 1, 3, 4), (3,), 1.0, r"focus_disparity must have shape \(B,\) = \(2,\)"),
            ((2, 1, 3, 4), (), 1.0, "focus_disparity"),
            ((2, 1, 3, 4), (2,), torch.ones(3), "k must be"),
        ],
    )
    def test_exceptions(
        self, disparity_shape: tuple, focus_shape: tuple, k: object, match: str
    ) -> None:
        with pytest.raises(InputError, match=match):
            coc_radius_px(torch.zeros(disparity_shape), torch.zeros(focus_shape), k)

    def test_not_tensors(self) -> None:
        with pytest.raises(InputError, match="must be tensors"):
            coc_radius_px(torch.zeros(1, 1, 2, 2), 0.5, 1.0)  # type: ignore[arg-type]

    def test_gradcheck(self) -> None:
        disparity = torch.rand(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
        focus = torch.rand(2, dtype=torch.float64, requires_grad=True)
        k = _f64(3.0, 7.0).requires_grad_()
        assert torch.autograd.gradcheck(coc_radius_px, (disparity, focus, k))


class TestMetricCocRadius:
    def test_hand_computed_and_sign(self) -> None:
        # 4 m behind focus: 34.188 * (0.25 - 0.5) = -8.547 px; 1 m in front: 34.188 * 0.5
        disparity = _f64(0.25, 1.0, 0.5, 0.0).view(1, 1, 1, 4)
        out = metric_coc_radius_px(disparity, _f64(S_F), F_MM, N, SENSOR_MM, WIDTH_PX)
        expected = _f64(-0.25, 0.5, 0.0, -0.5).view(1, 1, 1, 4) * K_HAND
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
        assert out[0, 0, 0, 1] > 0 > out[0, 0, 0, 0]

    def test_symmetric_in_diopters(self) -> None:
        # r is linear in disparity: +-delta diopters around the focal plane -> +-r
        disparity = _f64(0.5 + 0.3, 0.5 - 0.3).view(1, 1, 1, 2)
        out = metric_coc_radius_px(disparity, _f64(S_F), F_MM, N, SENSOR_MM, WIDTH_PX)
        assert out[0, 0, 0, 0].item() == pytest.approx(-out[0, 0, 0, 1].item(), rel=1e-12)

    def test_per_frame_focus(self) -> None:
        disparity = torch.full((2, 1, 2, 2), 0.25, dtype=torch.float64)
        out = metric_coc_radius_px(disparity, _f64(2.0, 4.0), F_MM, N, SENSOR_MM, WIDTH_PX)
        assert out[0].mean().item() == pytest.approx(-0.25 * K_HAND, rel=1e-12)
        assert (out[1] == 0).all()  # the second frame is focused at 4 m


class TestRelativeCocRadius:
    def test_max_radius_is_strength(self) -> None:
        disparity = torch.tensor([0.0, 0.25, 1.0]).view(1, 1, 1, 3)
        out = relative_coc_radius_px(disparity, torch.tensor([0.0]), 20.0)
        torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 5.0, 20.0]))
        out = relative_coc_radius_px(disparity, torch.tensor([1.0]), 20.0)
        torch.testing.assert_close(out.flatten(), torch.tensor([-20.0, -15.0, 0.0]))

    def test_tensor_strength(self) -> None:
        disparity = torch.ones(2, 1, 1, 1)
        out = relative_coc_radius_px(disparity, torch.zeros(2), torch.tensor([3.0, 6.0]))
        torch.testing.assert_close(out.flatten(), torch.tensor([3.0, 6.0]))

    @pytest.mark.parametrize(
        ("strength", "focus", "match"),
        [
            (-1.0, 0.5, "strength_px must be a finite blur radius >= 0"),
            (math.inf, 0.5, "strength_px"),
            (math.nan, 0.5, "strength_px"),
            (torch.tensor([1.0, -2.0]), 0.5, "strength_px"),
            (5.0, 1.5, r"focus_disparity must lie in \[0, 1\]"),
            (5.0, -0.1, "focus_disparity"),
        ],
    )
    def test_exceptions(self, strength: object, focus: float, match: str) -> None:
        with pytest.raises(InputError, match=match):
            relative_coc_radius_px(torch.zeros(2, 1, 2, 2), torch.full((2,), focus), strength)


class TestDepthOfField:
    def test_hyperfocal_hand_computed(self) -> None:
        # H = f^2 / (N c) + f = 0.0025 / (2 * 3e-5) + 0.05 = 41.7166667 m
        assert hyperfocal_distance_m(F_MM, N) == pytest.approx(41.716666667, rel=1e-10)
        assert hyperfocal_distance_m(F_MM, N, 0.02) == pytest.approx(62.55, rel=1e-10)

    def test_limits_hand_computed(self) -> None:
        # near = 2 * 41.6667 / (41.7167 + 2 - 0.1) = 1.91058; far = 83.3333 / 39.7167 = 2.09820
        near, far = depth_of_field_m(S_F, F_MM, N)
        assert near == pytest.approx(83.333333333 / 43.616666667, rel=1e-9)
        assert far == pytest.approx(83.333333333 / 39.716666667, rel=1e-9)

    def test_limits_are_where_coc_equals_limit(self) -> None:
        for focus in (0.3, 2.0, 10.0, 30.0):
            near, far = depth_of_field_m(focus, F_MM, N, 0.03)
            assert coc_diameter_m(near, focus, F_MM, N) == pytest.approx(3e-5, rel=1e-9)
            assert coc_diameter_m(far, focus, F_MM, N) == pytest.approx(3e-5, rel=1e-9)

    def test_at_and_beyond_hyperfocal(self) -> None:
        h = hyperfocal_distance_m(F_MM, N)
        near, far = depth_of_field_m(h, F_MM, N)
        assert near == pytest.approx(h / 2, rel=1e-12)
        assert far == math.inf
        near, far = depth_of_field_m(math.inf, F_MM, N)
        assert near == pytest.approx(h - 0.05, rel=1e-12)  # focus at infinity: sharp from H - f
        assert far == math.inf

    def test_tensor(self) -> None:
        near, far = depth_of_field_m(_f64(2.0, 50.0, math.inf), F_MM, N)
        torch.testing.assert_close(near[0], _f64(83.333333333 / 43.616666667)[0])
        assert math.isfinite(far[0].item())
        assert torch.isinf(far[1:]).all()

    @pytest.mark.parametrize(
        ("args", "match"),
        [
            ((2.0, 50.0, 2.0, 0.0), "coc_limit_mm must be > 0"),
            ((2.0, 0.0, 2.0, 0.03), "focal_length_mm"),
            ((2.0, 50.0, -1.0, 0.03), "f_number"),
            ((0.02, 50.0, 2.0, 0.03), "focus_distance_m"),
        ],
    )
    def test_exceptions(self, args: tuple, match: str) -> None:
        with pytest.raises(InputError, match=match):
            depth_of_field_m(*args)

    def test_gradcheck(self) -> None:
        focus = _f64(0.5, 3.0, 10.0).requires_grad_()
        f_number = _f64(1.4, 2.0, 4.0).requires_grad_()

        def fn(focus: torch.Tensor, f_number: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return (*depth_of_field_m(focus, 50.0, f_number), hyperfocal_distance_m(50.0, f_number))

        assert torch.autograd.gradcheck(fn, (focus, f_number))


class TestDiopters:
    def test_values_and_round_trip(self) -> None:
        assert diopters_from_distance_m(0.5) == 2.0
        assert diopters_from_distance_m(math.inf) == 0.0
        assert distance_m_from_diopters(0.0) == math.inf
        assert distance_m_from_diopters(4.0) == 0.25
        distance = _f64(0.3, 1.0, 7.5, math.inf)
        torch.testing.assert_close(
            distance_m_from_diopters(diopters_from_distance_m(distance)), distance
        )

    def test_halfway_in_diopters(self) -> None:
        # focus pulled halfway between 1 m and infinity in diopters is 2 m, not infinity
        halfway = (diopters_from_distance_m(1.0) + diopters_from_distance_m(math.inf)) / 2
        assert distance_m_from_diopters(halfway) == 2.0

    @pytest.mark.parametrize("distance", [0.0, -1.0, math.nan])
    def test_bad_distance(self, distance: float) -> None:
        with pytest.raises(InputError, match="distance_m must be > 0"):
            diopters_from_distance_m(distance)

    @pytest.mark.parametrize("diopters", [-0.5, math.nan, torch.tensor([1.0, -1.0])])
    def test_bad_diopters(self, diopters: object) -> None:
        with pytest.raises(InputError, match="diopters must be >= 0"):
            distance_m_from_diopters(diopters)

    def test_gradcheck(self) -> None:
        distance = _f64(0.4, 2.0, 30.0).requires_grad_()
        assert torch.autograd.gradcheck(diopters_from_distance_m, (distance,))
        diopters = _f64(0.1, 1.0, 3.0).requires_grad_()
        assert torch.autograd.gradcheck(distance_m_from_diopters, (diopters,))
