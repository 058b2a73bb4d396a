"""Tests for vidrefocus.eval.legibility (template matcher, edge width, legibility of a scene)
and the shock-filter baseline in vidrefocus.eval.baselines, which these metrics judge."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch

from vidrefocus.aperture import disk_kernel
from vidrefocus.errors import InputError
from vidrefocus.eval.baselines import shock_filter
from vidrefocus.eval.legibility import edge_width_10_90, legibility, read_item
from vidrefocus.eval.plates import TextScene, defocus, make_text_scene

H, W = 240, 320
SEEDS = (0, 1, 2)
RADII_PX = (1.0, 2.0, 3.0, 4.0, 6.0)


@functools.cache
def scene(seed: int) -> TextScene:
    return make_text_scene(seed, H, W, plates=2, signs=5)


def pooled_recognition(radius_px: float) -> float:
    correct = chars = 0
    for seed in SEEDS:
        sc = scene(seed)
        result = legibility(defocus(sc.image, radius_px, seed=100 + seed), sc, edges=False)
        correct += result.correct
        chars += result.chars
    return correct / chars


class TestLegibility:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_sharp_reads_everything(self, seed: int) -> None:
        sc = scene(seed)
        result = legibility(sc.image, sc)
        assert result.recognition == 1.0
        assert result.read == tuple(it.text for it in sc.items)
        assert result.psnr_db == math.inf
        assert result.ssim == pytest.approx(1.0)
        # anti-aliased Hershey strokes rise over about one pixel
        assert 0.8 < result.edge_width_px < 1.8

    def test_sharp_with_camera_noise_reads_everything(self) -> None:
        sc = scene(0)
        assert legibility(defocus(sc.image, 0.0, seed=0, jpeg_quality=90), sc).recognition == 1.0

    def test_shift_of_two_px_is_still_read(self) -> None:
        sc = scene(1)
        for dy, dx in [(2, 0), (0, -2), (1, 1)]:
            shifted = sc.image.roll((dy, dx), dims=(1, 2))
            assert legibility(shifted, sc, edges=False).recognition == 1.0

    def test_polarity_matters(self) -> None:
        # an inverted frame has every glyph in the wrong polarity: nearly nothing reads
        sc = scene(2)
        assert legibility(1.0 - sc.image, sc, edges=False).recognition < 0.2

    def test_recognition_falls_with_blur(self) -> None:
        rates = [pooled_recognition(r) for r in RADII_PX]
        assert rates[0] >= 0.95  # r = 1 px is still legible
        assert all(a >= b for a, b in itertools.pairwise(rates)), rates
        # discriminative over 2-4 px: neither at the ceiling nor at chance (1/36)
        assert 0.3 < rates[2] < 0.9, rates
        assert rates[1] > rates[2] > rates[3] > rates[4], rates

    def test_blur_lowers_text_psnr_ssim_and_widens_edges(self) -> None:
        sc = scene(0)
        results = [legibility(defocus(sc.image, r, seed=0), sc) for r in (1.0, 3.0)]
        assert results[0].psnr_db > results[1].psnr_db
        assert results[0].ssim > results[1].ssim
        assert results[0].edge_width_px < results[1].edge_width_px

    def test_errors(self) -> None:
        sc = scene(0)
        with pytest.raises(InputError, match="like the scene"):
            legibility(sc.image[:, :-1], sc)
        empty = make_text_scene(0, 64, 64, plates=0, signs=0)
        with pytest.raises(InputError, match="no text items"):
            legibility(empty.image, empty)
        with pytest.raises(InputError, match="lies outside"):
            read_item(sc.image[:, :20, :20], sc.items[0])


class TestEdgeWidth:
    @pytest.mark.parametrize("ramp_px", [1.0, 3.0, 6.0])
    def test_linear_ramp(self, ramp_px: float) -> None:
        # a linear ramp of width w rises from 10 % to 90 % over 0.8 w (exact: the samples
        # fall on the ramp's ends, and linear interpolation is exact on a line)
        t = torch.arange(-12, 13, dtype=torch.float32) * 0.5
        p = ((t + ramp_px / 2) / ramp_px).clamp(0, 1) * 0.6 + 0.2
        width = edge_width_10_90(p[None], step_px=0.5)
        assert float(width[0]) == pytest.approx(0.8 * ramp_px, abs=1e-5)

    @pytest.mark.parametrize("radius_px", [3.0, 6.0])
    def test_disk_blurred_step(self, radius_px: float) -> None:
        # closed form: a disk's edge response is its chord-area fraction, which crosses
        # 10 % and 90 % at -+0.687 r, so 1.374 r; atol covers the sampled disk's soft rim
        k = disk_kernel(radius_px).sum(0, dtype=torch.float64)  # line spread function
        step = (torch.arange(81, dtype=torch.float64) >= 40).double()
        profile = torch.nn.functional.conv1d(
            torch.nn.functional.pad(step[None, None], (k.numel() // 2,) * 2, mode="replicate"),
            k.flip(0)[None, None],
        )[0]
        width = float(edge_width_10_90(profile[:, 20:61])[0])
        assert width == pytest.approx(1.374 * radius_px, abs=0.25)

    def test_flat_profile_has_no_edge(self) -> None:
        assert math.isnan(float(edge_width_10_90(torch.full((1, 9), 0.5))[0]))

    def test_stops_at_the_local_extrema(self) -> None:
        # a bump: only the rise through the centre counts, not the fall after the peak
        p = torch.tensor([[0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.0]])
        assert float(edge_width_10_90(p)[0]) == pytest.approx(1.6, abs=1e-6)

    def test_errors(self) -> None:
        with pytest.raises(InputError, match="K odd"):
            edge_width_10_90(torch.zeros(2, 8))
        with pytest.raises(InputError, match="step_px"):
            edge_width_10_90(torch.zeros(2, 9), step_px=0.0)


def blurred_step(sigma: float = 2.0, size: int = 64) -> torch.Tensor:
    """A vertical step from 0.2 to 0.8 between columns 31 and 32, Gaussian-blurred along x
    (10-90 % width 2.563 sigma), (3, size, size)."""
    x = torch.arange(size, dtype=torch.float32) - (size / 2 - 0.5)
    row = 0.2 + 0.6 * 0.5 * (1 + torch.erf(x / (sigma * math.sqrt(2))))
    return row.view(1, 1, size).expand(3, size, size).clone()


class TestShockFilter:
    def test_makes_a_blurred_step_steep(self) -> None:
        img = blurred_step()
        out = shock_filter(img)
        rows = slice(16, 48)  # away from the top and bottom borders
        before = edge_width_10_90(img[1, rows, 16:47])
        after = edge_width_10_90(out[1, rows, 16:47])
        assert float(before.mean()) == pytest.approx(2.563 * 2.0, abs=0.1)
        # a ramp of ~5 px becomes a step no wider than about one pixel
        assert float(after.max()) < 1.5
        # the step lands where the ramp crossed its middle; flat parts stay as they were
        assert float(out[1, 32, 31]) < 0.5 < float(out[1, 32, 32])
        torch.testing.assert_close(out[:, :, :8], img[:, :, :8])

    def test_keeps_the_range(self) -> None:
        # Osher-Rudin upwinding: no new extrema
        img = defocus(scene(0).image, 3.0, seed=0)
        out = shock_filter(img)
        assert float(out.min()) >= float(img.min()) - 1e-6
        assert float(out.max()) <= float(img.max()) + 1e-6

    def test_constant_image_unchanged(self) -> None:
        x = torch.full((3, 20, 24), 0.3)
        torch.testing.assert_close(shock_filter(x), x)

    def test_zero_iterations_is_identity(self) -> None:
        x = blurred_step()
        assert torch.equal(shock_filter(x, iterations=0), x)

    def test_batch_matches_single_and_is_deterministic(self) -> None:
        a, b = blurred_step(1.5), blurred_step(3.0).flip(2)
        batch = shock_filter(torch.stack([a, b]))
        assert batch.shape == (2, 3, 64, 64)
        torch.testing.assert_close(batch[1], shock_filter(b), atol=1e-6, rtol=0)
        assert torch.equal(shock_filter(a), shock_filter(a))

    def test_invents_edges_but_not_the_text(self) -> None:
        # the baseline's point: crisper than the sharp frame's own anti-aliased edges, and
        # yet it reads no better than the blurred frame it started from
        sc = scene(0)
        blurred = defocus(sc.image, 3.0, seed=0)
        shocked = legibility(shock_filter(blurred), sc)
        assert shocked.edge_width_px < legibility(sc.image, sc).edge_width_px + 0.2
        assert shocked.recognition <= legibility(blurred, sc, edges=False).recognition

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"iterations": -1}, "iterations >= 0"),
            ({"iterations": 2.5}, "iterations >= 0"),
            ({"dt": 0.0}, "0 < dt <= 0.5"),
            ({"dt": 0.6}, "0 < dt <= 0.5"),
            ({"sigma": 0.0}, "sigma > 0"),
        ],
    )
    def test_errors(self, kwargs: dict, match: str) -> None:
        with pytest.raises(InputError, match=match):
            shock_filter(blurred_step(), **kwargs)

    def test_shape_error(self) -> None:
        with pytest.raises(InputError, match="RGB tensor"):
            shock_filter(torch.rand(1, 16, 16))
