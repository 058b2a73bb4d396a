"""Frame processing of `enhance`: regions, fields, enlargement, the residual, the review frame.

Everything runs the real packaged DeblurNet on real decoded frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidrefocus.analyst.process import (
    FrameEnhancer,
    _bob,
    paste,
    reblur,
    region_psnr,
    upscale,
)
from vidrefocus.analyst.select import Roi
from vidrefocus.analyst.view import BAR_PX, side_by_side, side_by_side_size
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.models.deblurnet import DeblurNet, load_deblurnet


@pytest.fixture(scope="module")
def net() -> DeblurNet:
    return load_deblurnet()


@pytest.fixture(scope="module")
def frame(sample_scene: Path) -> torch.Tensor:
    """A 320x192 part of the sample's first frame (focused on the near ball: the street is
    defocused by about 5 px)."""
    return RandomAccessReader(sample_scene).at_indices([0])[0].rgb[:, 100:292, 160:480]


def test_region_is_enhanced_exactly_as_inside_the_whole_frame(
    net: DeblurNet, frame: torch.Tensor
) -> None:
    full = FrameEnhancer(net, temporal=False, roi=None, frame_size=(320, 192))(frame)
    roi = Roi(117, 61, 70, 50)
    part = FrameEnhancer(net, temporal=False, roi=roi, frame_size=(320, 192))(frame)
    assert part.enhanced.shape == (3, 50, 70)
    assert torch.equal(part.enhanced, full.enhanced[:, 61:111, 117:187])
    assert torch.equal(part.original, frame[:, 61:111, 117:187])
    assert part.defocus_px > 1.0  # the street is blurred


def test_paste_leaves_everything_outside_the_region() -> None:
    base = torch.rand(3, 40, 50)
    out = paste(base, torch.zeros(3, 10, 20), Roi(5, 7, 20, 10))
    assert torch.equal(out[:, 7:17, 5:25], torch.zeros(3, 10, 20))
    outside = torch.ones(40, 50, dtype=torch.bool)
    outside[7:17, 5:25] = False
    assert torch.equal(out[:, outside], base[:, outside])


def test_bob_keeps_a_fields_lines_in_place() -> None:
    frame = torch.rand(3, 8, 5)
    top = _bob(frame[:, 0::2], True, 8)
    bottom = _bob(frame[:, 1::2], False, 8)
    assert torch.equal(top[:, 0::2], frame[:, 0::2])
    assert torch.equal(bottom[:, 1::2], frame[:, 1::2])
    assert torch.allclose(top[:, 1], 0.5 * (frame[:, 0] + frame[:, 2]))
    assert torch.allclose(bottom[:, 2], 0.5 * (frame[:, 1] + frame[:, 3]))


def test_fields_are_processed_on_their_own(net: DeblurNet, frame: torch.Tensor) -> None:
    """Changing the bottom field's lines does not change the top field's output."""
    enhance = FrameEnhancer(net, temporal=False, roi=None, frame_size=(320, 192), field_order="tt")
    a = enhance(frame)
    other = frame.clone()
    other[:, 1::2] = torch.rand_like(other[:, 1::2])
    b = enhance(other)
    assert torch.equal(a.enhanced[:, 0::2], b.enhanced[:, 0::2])
    assert not torch.equal(a.enhanced[:, 1::2], b.enhanced[:, 1::2])


def test_residual_of_the_true_image_beats_the_input_itself(frame: torch.Tensor) -> None:
    """The forward model: a sharp image blurred by a known map is explained exactly by that
    image and map, and much worse by the blurred image itself."""
    sharp = frame
    radius = torch.full((1, *frame.shape[1:]), 3.0)
    blurred = reblur(sharp, radius)
    assert region_psnr(reblur(sharp, radius), blurred) == float("inf")
    assert region_psnr(reblur(blurred, radius), blurred) < 35.0


def test_upscale_nearest_makes_blocks() -> None:
    img = torch.rand(3, 4, 5)
    out = upscale(img, 3, "nearest")
    assert out.shape == (3, 12, 15)
    assert torch.equal(out[:, 3:6, 6:9], img[:, 1:2, 2:3].expand(3, 3, 3))


def test_upscale_lanczos_keeps_flat_areas_and_range() -> None:
    flat = torch.full((3, 6, 7), 0.4)
    assert torch.allclose(upscale(flat, 4, "lanczos"), torch.full((3, 24, 28), 0.4), atol=1e-6)
    edge = torch.zeros(3, 8, 8)
    edge[:, :, 4:] = 1.0
    out = upscale(edge, 4, "lanczos")
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert torch.equal(upscale(edge, 1, "lanczos"), edge)


def test_upscale_interlaced_keeps_fields_apart() -> None:
    img = torch.zeros(3, 6, 4)
    img[:, 0::2] = 1.0  # top field white, bottom field black
    out = upscale(img, 2, "nearest", interlaced=True)
    assert out.shape == (3, 12, 8)
    assert torch.equal(out[:, 0::2], torch.ones(3, 6, 8))
    assert torch.equal(out[:, 1::2], torch.zeros(3, 6, 8))


def test_side_by_side_lays_out_both_pictures() -> None:
    a, b = torch.rand(3, 31, 41), torch.rand(3, 31, 41)
    out = side_by_side(a, b, "f3  0.125 s", flag=None)
    w, h = side_by_side_size(41, 31)
    assert out.shape == (3, h, w)
    assert w % 2 == 0
    assert h % 2 == 0
    assert torch.equal(out[:, BAR_PX : BAR_PX + 31, 8:49], a)
    flagged = side_by_side(a, b, "f3", flag="residual 20.0 dB")
    assert torch.equal(flagged[:, BAR_PX : BAR_PX + 31, 8:49], a)
    assert not torch.equal(flagged, out)  # the red frame and the warning
