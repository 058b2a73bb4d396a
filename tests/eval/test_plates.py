"""Tests for vidrefocus.eval.plates: synthetic CCTV text scenes and their defocus."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from vidrefocus.errors import InputError
from vidrefocus.eval.plates import ALPHABET, TextScene, defocus, glyph_templates, make_text_scene

H, W = 240, 320
SEEDS = (0, 1, 2)


@functools.cache
def scene(seed: int) -> TextScene:
    return make_text_scene(seed, H, W, plates=2, signs=5)


def grey(x: torch.Tensor) -> torch.Tensor:
    return 0.2126 * x[0] + 0.7152 * x[1] + 0.0722 * x[2]


class TestMakeTextScene:
    def test_same_seed_same_bytes(self) -> None:
        a = make_text_scene(5, H, W, plates=2, signs=5)
        b = make_text_scene(5, H, W, plates=2, signs=5)
        assert a.image.numpy().tobytes() == b.image.numpy().tobytes()
        assert a.items == b.items

    def test_different_seed_differs(self) -> None:
        a, b = scene(0), scene(1)
        assert not torch.equal(a.image, b.image)
        assert [it.text for it in a.items] != [it.text for it in b.items]

    def test_frame(self) -> None:
        img = scene(0).image
        assert img.shape == (3, H, W)
        assert img.dtype == torch.float32
        assert float(img.min()) >= 0.0
        assert float(img.max()) <= 1.0

    @pytest.mark.parametrize("seed", SEEDS)
    def test_items(self, seed: int) -> None:
        items = scene(seed).items
        assert {it.kind for it in items} == {"plate", "sign"}
        for it in items:
            assert set(it.text) <= set(ALPHABET)
            assert len(it.chars) == len(it.text)
            assert "".join(cb.char for cb in it.chars) == it.text
            if it.kind == "plate":
                assert 6 <= len(it.text) <= 8
                assert it.dark_ink
            assert 8 <= it.style.height_px <= 40

    @pytest.mark.parametrize("seed", SEEDS)
    def test_boxes_inside_and_disjoint(self, seed: int) -> None:
        items = scene(seed).items
        for it in items:
            x0, y0, x1, y1 = it.box
            assert 0 <= x0 < x1 <= W
            assert 0 <= y0 < y1 <= H
            for cb in it.chars:
                cx0, cy0, cx1, cy1 = cb.box
                assert x0 <= cx0 < cx1 <= x1
                assert y0 <= cy0 < cy1 <= y1
                assert (cy1 - cy0, cx1 - cx0) == tuple(glyph_templates(it.style).shape[1:])
            for a, b in zip(it.chars, it.chars[1:], strict=False):
                assert a.box[2] <= b.box[0]  # cells left to right, not overlapping
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                apart = a.box[2] <= b.box[0] or b.box[2] <= a.box[0]
                assert apart or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]

    @pytest.mark.parametrize("seed", SEEDS)
    def test_char_boxes_hold_ink(self, seed: int) -> None:
        sc = scene(seed)
        for it in sc.items:
            ink = torch.tensor(it.ink_rgb).view(3, 1, 1)
            paper = torch.tensor(it.paper_rgb).view(3, 1, 1)
            for cb in it.chars:
                x0, y0, x1, y1 = cb.box
                crop = sc.image[:, y0:y1, x0:x1]
                # ink coverage recovered from the colours: the stroke cores are (nearly) solid
                # ink (thin anti-aliased strokes of the smallest sizes peak at ~0.78), and the
                # cell's 1 px margin is paper
                d = ink - paper
                coverage = ((crop - paper) * d).sum(0) / d.square().sum()
                assert float(coverage.max()) > 0.75
                assert float(coverage[0].abs().max()) < 1e-5

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"height": 32}, "height must be an int in"),
            ({"width": 10_000}, "width must be an int in"),
            ({"height": 100.5}, "height must be an int in"),
            ({"seed": -1}, "seed must be an int >= 0"),
            ({"plates": -1}, "plates and signs must be >= 0"),
        ],
    )
    def test_errors(self, kwargs: dict, match: str) -> None:
        args = {"seed": 0, "height": 96, "width": 128} | kwargs
        with pytest.raises(InputError, match=match):
            make_text_scene(args.pop("seed"), args.pop("height"), args.pop("width"), **args)


class TestDefocus:
    def test_same_seed_same_bytes(self) -> None:
        img = scene(0).image
        a = defocus(img, 2.5, seed=3, jpeg_quality=70)
        b = defocus(img, 2.5, seed=3, jpeg_quality=70)
        assert a.numpy().tobytes() == b.numpy().tobytes()
        assert not torch.equal(a, defocus(img, 2.5, seed=4, jpeg_quality=70))

    def test_output_is_8_bit(self) -> None:
        out = defocus(scene(0).image, 3.0, seed=0)
        assert out.shape == (3, H, W)
        assert out.dtype == torch.float32
        assert float(out.min()) >= 0.0
        assert float(out.max()) <= 1.0
        torch.testing.assert_close(out * 255, (out * 255).round(), atol=1e-4, rtol=0)

    def test_no_blur_no_noise_is_quantisation_only(self) -> None:
        img = scene(0).image
        out = defocus(img, 0.0, seed=0, noise=(0.0, 0.0))
        torch.testing.assert_close(out, (img * 255 + 0.5).floor() / 255, atol=1e-6, rtol=0)

    def test_blur_spreads_ink(self) -> None:
        # the renderer's disk of radius 3 smears each character: less contrast in its cells
        sc = scene(0)
        out = defocus(sc.image, 3.0, seed=0, noise=(0.0, 0.0))
        x0, y0, x1, y1 = sc.items[0].chars[0].box
        assert float(grey(out[:, y0:y1, x0:x1]).std()) < float(
            grey(sc.image[:, y0:y1, x0:x1]).std()
        )

    def test_constant_map_equals_number(self) -> None:
        img = scene(1).image
        a = defocus(img, 2.0, seed=1)
        b = defocus(img, torch.full((1, H, W), 2.0), seed=1)
        assert torch.equal(a, b)

    def test_jpeg_changes_the_frame(self) -> None:
        img = scene(1).image
        assert not torch.equal(
            defocus(img, 1.0, seed=1), defocus(img, 1.0, seed=1, jpeg_quality=30)
        )

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"radius_px": -1.0}, r"radius_px must be in \[0, 32"),
            ({"radius_px": 40.0}, r"radius_px must be in \[0, 32"),
            ({"radius_px": math.nan}, r"radius_px must be in \[0, 32"),
            ({"radius_px": torch.ones(2, H, W)}, "radius map must be"),
            ({"radius_px": torch.full((H, W), math.inf)}, "must be finite"),
            ({"jpeg_quality": 0}, r"jpeg_quality must be in \[1, 100\]"),
            ({"noise": (-0.1, 0.0)}, "noise"),
        ],
    )
    def test_errors(self, kwargs: dict, match: str) -> None:
        args = {"radius_px": 2.0} | kwargs
        with pytest.raises(InputError, match=match):
            defocus(scene(0).image, args.pop("radius_px"), 0, **args)

    def test_frame_shape_error(self) -> None:
        with pytest.raises(InputError, match=r"sharp must be a \(3, H, W\)"):
            defocus(torch.rand(1, 3, 32, 32), 1.0, 0)
