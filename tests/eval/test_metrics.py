"""Tests for vidrefocus.eval.metrics: PSNR and SSIM against closed forms and an independent
numpy SSIM, and the flow-warping error on sequences with known motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from vidrefocus.errors import InputError
from vidrefocus.eval.metrics import psnr, ssim, warp_error


def _image(seed: int, h: int = 40, w: int = 48, b: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (3, h, w) if b is None else (b, 3, h, w)
    return torch.rand(shape, generator=g, dtype=torch.float64)


def ssim_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 written out directly: a full 11 x 11 window (outer product of the
    normalised 1-D Gaussian, sigma 1.5) slid over every position fully inside the image,
    population statistics, K1 = 0.01, K2 = 0.03, L = 1; per channel, then averaged."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    window = np.outer(g, g)
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for ca, cb in zip(a, b, strict=True):
        pa = sliding_window_view(ca, (11, 11))
        pb = sliding_window_view(cb, (11, 11))
        mu_a = np.einsum("ijkl,kl->ij", pa, window)
        mu_b = np.einsum("ijkl,kl->ij", pb, window)
        var_a = np.einsum("ijkl,kl->ij", (pa - mu_a[..., None, None]) ** 2, window)
        var_b = np.einsum("ijkl,kl->ij", (pb - mu_b[..., None, None]) ** 2, window)
        cov = np.einsum(
            "ijkl,kl->ij", (pa - mu_a[..., None, None]) * (pb - mu_b[..., None, None]), window
        )
        num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
        den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        values.append((num / den).mean())
    return float(np.mean(values))


class TestPsnr:
    def test_closed_form(self) -> None:
        # MSE = 0.1^2 = 0.01 -> 10 log10(1 / 0.01) = 20 dB
        x = torch.full((3, 8, 8), 0.4, dtype=torch.float64)
        assert float(psnr(x, x + 0.1)) == pytest.approx(20.0, abs=1e-9)

    def test_peak(self) -> None:
        x = torch.full((3, 8, 8), 100.0)
        assert float(psnr(x, x + 25.5, peak=255.0)) == pytest.approx(20.0, abs=1e-9)

    def test_per_image_in_a_batch(self) -> None:
        a = torch.full((2, 3, 8, 8), 0.5, dtype=torch.float64)
        b = a.clone()
        b[0] += 0.1
        b[1] += 0.01
        want = torch.tensor([20.0, 40.0], dtype=torch.float64)
        torch.testing.assert_close(psnr(a, b), want, atol=1e-9, rtol=0)

    def test_identical_is_inf(self) -> None:
        x = _image(0)
        assert math.isinf(float(psnr(x, x)))

    def test_shape_mismatch(self) -> None:
        with pytest.raises(InputError, match="differ in shape"):
            psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 9))

    def test_not_rgb(self) -> None:
        with pytest.raises(InputError, match="RGB"):
            psnr(torch.rand(1, 8, 8), torch.rand(1, 8, 8))


class TestSsim:
    def test_identical_is_one(self) -> None:
        x = _image(1)
        assert float(ssim(x, x)) == 1.0

    def test_constant_images_closed_form(self) -> None:
        # No variance anywhere: SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1) exactly.
        a = torch.full((3, 16, 16), 0.3, dtype=torch.float64)
        b = torch.full((3, 16, 16), 0.6, dtype=torch.float64)
        c1 = 0.01**2
        want = (2 * 0.3 * 0.6 + c1) / (0.3**2 + 0.6**2 + c1)
        assert float(ssim(a, b)) == pytest.approx(want, abs=1e-12)
        assert float(ssim(a.float(), b.float())) == pytest.approx(want, abs=1e-6)

    def test_float32_close_to_float64(self) -> None:
        # float32 path: moments about each channel's mean keep it within ~1e-5
        a = _image(11, 64, 64, b=2)
        b = (0.7 * a + 0.3 * _image(12, 64, 64, b=2)).clamp(0, 1)
        torch.testing.assert_close(
            ssim(a.float(), b.float()).double(), ssim(a, b), atol=1e-5, rtol=0
        )

    @pytest.mark.parametrize("seed", [2, 3])
    def test_matches_numpy_reference(self, seed: int) -> None:
        a = _image(seed)
        b = (a + 0.15 * _image(seed + 10) - 0.05).clamp(0, 1)
        # both float64 and the same formula: only summation order differs
        assert float(ssim(a, b)) == pytest.approx(ssim_numpy(a.numpy(), b.numpy()), abs=1e-10)

    def test_batch_matches_single_and_is_symmetric(self) -> None:
        a, b = _image(4, b=2), _image(5, b=2)
        batch = ssim(a, b)
        assert batch.shape == (2,)
        for i in range(2):
            assert float(batch[i]) == pytest.approx(float(ssim(a[i], b[i])), abs=1e-12)
        torch.testing.assert_close(ssim(b, a), batch, atol=1e-12, rtol=0)

    def test_too_small(self) -> None:
        with pytest.raises(InputError, match="at least 11"):
            ssim(torch.rand(3, 10, 32), torch.rand(3, 10, 32))


class TestWarpError:
    def test_static_sequence_is_zero(self) -> None:
        frames = _image(6, 24, 32).float()[None].expand(4, 3, 24, 32)
        zeros, ones = torch.zeros(4, 2, 24, 32), torch.ones(4, 1, 24, 32)
        assert warp_error(frames, zeros, ones) == pytest.approx(0.0, abs=1e-6)

    def test_flicker_is_its_amplitude(self) -> None:
        # frames alternate between x and x + 0.1 (no clipping): every |difference| is 0.1
        x = 0.2 + 0.5 * _image(7, 24, 32).float()
        frames = torch.stack([x + 0.1 * (t % 2) for t in range(5)])
        zeros, ones = torch.zeros(5, 2, 24, 32), torch.ones(5, 1, 24, 32)
        assert warp_error(frames, zeros, ones) == pytest.approx(0.1, abs=1e-5)

    def test_motion_along_the_flow_is_zero(self) -> None:
        # content moves 2 px right per frame: frame t at x was at x - 2 in frame t-1, so the
        # flow (t -> t-1) is -2 px in x; the two columns it drags in from outside are not
        # trusted.
        base = _image(8, 24, 48).float()
        frames = torch.stack([base[..., 8 - 2 * t : 40 - 2 * t] for t in range(4)])
        flows = torch.zeros(4, 2, 24, 32)
        flows[:, 0] = -2.0
        conf = torch.ones(4, 1, 24, 32)
        conf[..., :2] = 0.0
        assert warp_error(frames, flows, conf) == pytest.approx(0.0, abs=1e-5)
        assert warp_error(frames, torch.zeros_like(flows), conf) > 0.05

    def test_untrusted_pixels_are_ignored(self) -> None:
        frames = torch.zeros(3, 3, 8, 8)
        frames[1:, :, :, 4:] = 1.0  # changes only where the confidence is zero
        conf = torch.ones(3, 1, 8, 8)
        conf[..., 4:] = 0.0
        # not exactly 0: a zero flow still rounds through remap's coordinate normalisation
        assert warp_error(frames, torch.zeros(3, 2, 8, 8), conf) == pytest.approx(0.0, abs=1e-6)

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="T >= 2"):
            warp_error(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8))
        with pytest.raises(InputError, match="flows must be"):
            warp_error(torch.rand(2, 3, 8, 8), torch.zeros(1, 2, 8, 8), torch.ones(2, 1, 8, 8))
        with pytest.raises(InputError, match="no trusted pixel"):
            warp_error(torch.rand(2, 3, 8, 8), torch.zeros(2, 2, 8, 8), torch.zeros(2, 1, 8, 8))
