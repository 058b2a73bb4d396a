from __future__ import annotations

import numpy as np
import pytest
import torch

from vidrefocus.color import (
    YCbCrSpec,
    linear_to_srgb,
    rgb_to_ycbcr,
    srgb_to_linear,
    ycbcr_to_rgb,
)
from vidrefocus.errors import InputError


class TestYCbCr:
    # Reference codes from ITU-R BT.709-6 table 4 / BT.601-7: 75%/100% colour bars in 8-bit
    # limited range. 100% red in BT.709 is Y'=63, Cb=102, Cr=240 (rounded).
    @pytest.mark.parametrize(
        ("matrix", "codes", "rgb"),
        [
            ("bt709", (235, 128, 128), (1.0, 1.0, 1.0)),
            ("bt709", (16, 128, 128), (0.0, 0.0, 0.0)),
            ("bt709", (63, 102, 240), (1.0, 0.0, 0.0)),
            ("smpte170m", (81, 90, 240), (1.0, 0.0, 0.0)),
            ("bt2020nc", (74, 97, 240), (1.0, 0.0, 0.0)),
        ],
    )
    def test_known_codes(self, matrix: str, codes: tuple[int, int, int], rgb: tuple) -> None:
        y, cb, cr = (np.full((1, 1), c, np.float32) for c in codes)
        out = [float(v[0, 0]) for v in ycbcr_to_rgb(y, cb, cr, YCbCrSpec(matrix))]
        # codes are rounded to integers, so primaries come back within ~1.5 codes
        np.testing.assert_allclose(out, rgb, atol=1.5 / 219)

    @pytest.mark.parametrize("full_range", [False, True])
    @pytest.mark.parametrize("bits", [8, 10, 12])
    @pytest.mark.parametrize("matrix", ["bt709", "smpte170m", "bt2020nc"])
    def test_integer_codes_round_trip_exactly(
        self, matrix: str, bits: int, full_range: bool
    ) -> None:
        spec = YCbCrSpec(matrix, full_range, bits)
        rng = np.random.default_rng(0)
        top = (1 << bits) - 1
        y, cb, cr = (rng.integers(0, top + 1, (64, 64)).astype(np.float32) for _ in range(3))
        back = rgb_to_ycbcr(*ycbcr_to_rgb(y, cb, cr, spec), spec)
        for a, b in zip((y, cb, cr), back, strict=True):
            np.testing.assert_array_equal(np.rint(b), a)

    def test_numpy_and_torch_agree(self) -> None:
        spec = YCbCrSpec("bt709", False, 10)
        a = np.random.default_rng(1).uniform(64, 940, (3, 8, 8)).astype(np.float32)
        n = ycbcr_to_rgb(a[0], a[1], a[2], spec)
        t = ycbcr_to_rgb(*torch.from_numpy(a), spec)
        for x, y in zip(n, t, strict=True):
            np.testing.assert_allclose(x, y.numpy(), atol=1e-6)

    def test_bad_spec(self) -> None:
        with pytest.raises(InputError, match="unknown colour matrix"):
            YCbCrSpec("bt999")
        with pytest.raises(InputError, match="bit depth"):
            YCbCrSpec("bt709", bits=7)


class TestTransfer:
    def test_srgb_round_trip(self) -> None:
        x = torch.linspace(0, 1.5, 1001, dtype=torch.float64)
        torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12, rtol=0)

    def test_srgb_reference_points(self) -> None:
        # IEC 61966-2-1: 0.5 display -> 0.214041 linear; 0.04045 is the segment joint
        x = torch.tensor([0.5, 0.04045, 1.0], dtype=torch.float64)
        expected = torch.tensor([0.21404114, 0.04045 / 12.92, 1.0], dtype=torch.float64)
        torch.testing.assert_close(srgb_to_linear(x), expected, atol=1e-7, rtol=0)
