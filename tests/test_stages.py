"""Stages: DeblurStage with the real DeblurNet (packaged weights)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch

from media import SAMPLES
from vidrefocus.config import DeblurOptions
from vidrefocus.errors import ConfigError, InputError
from vidrefocus.io.reader import VideoReader
from vidrefocus.models.deblurnet import TemporalDeblur, load_deblurnet
from vidrefocus.stages import (
    DETAIL_GRADIENT,
    DeblurStage,
    FrameBatch,
    Stage,
    run_stages,
    textured_defocus_px,
    torch_device,
)


def _moving(n: int, h: int = 32, w: int = 48) -> torch.Tensor:
    """(n, 3, h, w) frames in [0, 1]: a smooth pattern sliding right 2 px per frame."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    t = torch.arange(n).view(n, 1, 1)
    r = 0.5 + 0.4 * torch.sin((xx - 2 * t) / 5.0)
    g = (0.5 + 0.4 * torch.cos(yy / 7.0)).expand(n, h, w)
    b = 0.5 + 0.3 * torch.sin((xx - 2 * t + yy) / 9.0)
    return torch.stack([r, g, b], dim=1).float()


def _batch(frames: torch.Tensor, first_pts: int = 0) -> FrameBatch:
    return FrameBatch(frames, list(range(first_pts, first_pts + len(frames))), Fraction(1, 24))


@pytest.fixture(scope="module")
def stage() -> DeblurStage:
    return DeblurStage.from_options(DeblurOptions(), "cpu")


class TestDeblurStage:
    def test_is_a_stage(self, stage: DeblurStage) -> None:
        assert isinstance(stage, Stage)
        assert stage.temporal

    def test_output_fields(self, stage: DeblurStage) -> None:
        frames = _moving(3)
        stage.reset()
        out = stage(_batch(frames))
        assert out.frames.shape == frames.shape
        assert out.defocus.shape == (3, 1, 32, 48)
        assert out.extras["input"] is frames  # the frames as they came in, for the audit
        assert out.pts == [0, 1, 2]
        assert out.frames.min() >= 0
        assert out.frames.max() <= 1
        assert out.defocus.min() >= 0

    def test_stage_equals_temporal_deblur(self, stage: DeblurStage) -> None:
        # the stage is a thin wrapper: the same numbers as the model's own sequence runner
        frames = _moving(3)
        stage.reset()
        out = stage(_batch(frames))
        sharp, defocus = TemporalDeblur(load_deblurnet(), temporal=True)(frames)
        torch.testing.assert_close(out.frames, sharp, atol=0, rtol=0)
        torch.testing.assert_close(out.defocus, defocus, atol=0, rtol=0)

    def test_batches_equal_one_pass(self, stage: DeblurStage) -> None:
        # temporal state carries across batch boundaries: splitting the clip changes nothing
        frames = _moving(4)
        stage.reset()
        whole = stage(_batch(frames)).frames
        stage.reset()
        parts = [stage(_batch(frames[:2])).frames, stage(_batch(frames[2:], 2)).frames]
        torch.testing.assert_close(torch.cat(parts), whole, atol=0, rtol=0)

    def test_reset_forgets_the_previous_frame(self, stage: DeblurStage) -> None:
        frames = _moving(3)
        stage.reset()
        stage(_batch(frames[:2]))
        stage.reset()
        after_reset = stage(_batch(frames[2:], 2)).frames
        fresh = DeblurStage.from_options(DeblurOptions(), "cpu")(_batch(frames[2:], 2)).frames
        torch.testing.assert_close(after_reset, fresh, atol=0, rtol=0)

    def test_per_frame_ignores_neighbours(self) -> None:
        stage = DeblurStage.from_options(DeblurOptions(temporal=False), "cpu")
        frames = _moving(3)
        together = stage(_batch(frames)).frames
        alone = stage(_batch(frames[2:], 2)).frames
        torch.testing.assert_close(together[2:], alone, atol=0, rtol=0)

    @pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 3), (7, 200)])
    def test_tiny_frames_in_sequence(self, stage: DeblurStage, h: int, w: int) -> None:
        # temporal mode runs optical flow between tiny frames too
        stage.reset()
        out = run_stages([stage], _batch(torch.rand(3, 3, h, w)))
        assert out.frames.shape == (3, 3, h, w)
        assert torch.isfinite(out.defocus).all()

    def test_nan_is_treated_as_zero(self, stage: DeblurStage) -> None:
        frames = _moving(1)
        holed = frames.clone()
        holed[0, :, 10, 10] = float("nan")
        zeroed = frames.clone()
        zeroed[0, :, 10, 10] = 0
        stage.reset()
        a = stage(_batch(holed)).frames
        stage.reset()
        b = stage(_batch(zeroed)).frames
        torch.testing.assert_close(a, b, atol=0, rtol=0)

    def test_missing_weights(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="weights not found"):
            DeblurStage.from_options(DeblurOptions(weights=tmp_path / "none.safetensors"))

    @pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
    def test_cuda_without_gpu(self) -> None:
        with pytest.raises(ConfigError, match=r"runtime\.device"):
            torch_device("cuda")
        assert torch_device("auto") == torch.device("cpu")

    @pytest.mark.gpu
    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_matches_cpu(self, stage: DeblurStage) -> None:
        frames = _moving(2)
        stage.reset()
        cpu = stage(_batch(frames))
        gpu = DeblurStage.from_options(DeblurOptions(), "cuda")(_batch(frames))
        assert gpu.frames.device == frames.device  # frames return where they came from
        # cuDNN and oneDNN sum convolutions in different orders
        torch.testing.assert_close(gpu.frames, cpu.frames, atol=2e-3, rtol=0)


def _sample_frames(name: str, count: int) -> torch.Tensor:
    """The first `count` frames of a bundled sample, cropped to the sky-heavy top left (the
    hardest sharp content for the statistic: flat sky, where blur cannot be seen)."""
    frames = []
    for frame in VideoReader(SAMPLES / name):
        frames.append(frame.rgb[:, :128, :192])
        if len(frames) == count:
            break
    return torch.stack(frames)


class TestTexturedDefocus:
    def test_median_over_detailed_pixels_only(self) -> None:
        frames = torch.zeros(1, 3, 16, 16)
        frames[..., :, 8:] = torch.arange(8) % 2  # stripes: detail in the right half only
        defocus = torch.full((1, 1, 16, 16), 9.0)  # flat half: a wild guess, to be ignored
        defocus[..., :, 7:] = 0.25
        assert textured_defocus_px(frames, defocus).tolist() == [0.25]

    def test_flat_frame_shows_no_blur(self) -> None:
        # a ramp of 1/63 per px is detail everywhere; a constant frame has none
        ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
        assert 1 / 63 > DETAIL_GRADIENT
        frames = torch.cat([ramp, torch.full((1, 3, 64, 64), 0.5)])
        out = textured_defocus_px(frames, torch.full((2, 1, 64, 64), 3.0))
        assert out.tolist() == [3.0, 0.0]


@pytest.fixture(scope="module")
def auto() -> DeblurStage:
    return DeblurStage.from_options(DeblurOptions(), "cpu", auto=True)


class TestDeblurAuto:
    """deblur auto (issue #8): already sharp frames leave exactly as they came in."""

    def test_threshold_from_options(self, auto: DeblurStage) -> None:
        assert auto.sharp_px == DeblurOptions().auto_sharp_px == 1.0
        assert DeblurStage.from_options(DeblurOptions(), "cpu").sharp_px is None

    def test_sharp_frames_pass_through_exactly(self, auto: DeblurStage) -> None:
        frames = _sample_frames("scene_sharp.mp4", 2)
        auto.reset()
        out = auto(_batch(frames))
        # measured: 0.31-0.40 px on this crop, 0.006-0.02 px on the full sharp frames
        assert (textured_defocus_px(frames, out.defocus) < 0.5).all()
        assert out.extras["deblurred"].tolist() == [False, False]
        torch.testing.assert_close(out.frames, frames, atol=0, rtol=0)

    def test_blurred_frames_are_deblurred(self, auto: DeblurStage) -> None:
        frames = _sample_frames("scene.mp4", 2)
        auto.reset()
        out = auto(_batch(frames))
        # the street here is blurred by 8.2 px (samples/README.md); measured 7.7 px
        assert (textured_defocus_px(frames, out.defocus) > 4.0).all()
        assert out.extras["deblurred"].tolist() == [True, True]
        auto.reset()
        always = DeblurStage.from_options(DeblurOptions(), "cpu")(_batch(frames))
        torch.testing.assert_close(out.frames, always.frames, atol=0, rtol=0)

    def test_mixed_batch_decides_per_frame(self, auto: DeblurStage) -> None:
        sharp, shot = _sample_frames("scene_sharp.mp4", 1), _sample_frames("scene.mp4", 1)
        auto.reset()
        out = auto(_batch(torch.cat([sharp, shot])))
        assert out.extras["deblurred"].tolist() == [False, True]
        torch.testing.assert_close(out.frames[0], sharp[0], atol=0, rtol=0)
        assert not torch.equal(out.frames[1], shot[0])
