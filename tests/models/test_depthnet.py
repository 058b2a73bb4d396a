"""The built-in depth estimator: DepthNet, its parallax input, BuiltinDepth, weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vidrefocus.errors import InputError
from vidrefocus.models.depth import DepthEstimator
from vidrefocus.models.depthnet import (
    PARALLAX_CHANNELS,
    BuiltinDepth,
    DepthNet,
    DepthNetConfig,
    config_metadata,
    default_weights_path,
    load_depthnet,
    parallax_channels,
)
from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip
from vidrefocus.train.depth import depth_metrics

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "train_natural"


def _small_net(seed: int = 0) -> DepthNet:
    torch.manual_seed(seed)
    net = DepthNet(DepthNetConfig(widths=(8, 8, 8), blocks=(1, 1, 1)))
    for p in net.parameters():  # give every branch something to do
        torch.nn.init.normal_(p, std=0.1)
    return net.eval()


def _moving_pair(h: int = 48, w: int = 64, shift: int = 3) -> torch.Tensor:
    """Two frames of a textured scene panning `shift` px to the left."""
    g = torch.Generator().manual_seed(1)
    base = torch.rand(1, 3, h // 4, (w + shift) // 4 + 1, generator=g)
    scene = torch.nn.functional.interpolate(base, scale_factor=4, mode="bilinear")
    return torch.cat([scene[..., :h, :w], scene[..., :h, shift : shift + w]])


class TestDepthNet:
    @pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (7, 2), (33, 47), (64, 96)])
    def test_any_size_keeps_shape(self, h: int, w: int) -> None:
        with torch.no_grad():
            out = _small_net()(torch.rand(2, 3, h, w))
        assert out.shape == (2, 1, h, w)
        assert torch.isfinite(out).all()

    def test_parallax_is_used(self) -> None:
        x = torch.rand(1, 3, 32, 32)
        par = torch.randn(1, PARALLAX_CHANNELS, 32, 32)
        with torch.no_grad():
            net = _small_net()
            assert not torch.equal(net(x), net(x, par))
            zero = torch.zeros(1, PARALLAX_CHANNELS, 32, 32)
            torch.testing.assert_close(net(x), net(x, zero), atol=0, rtol=0)

    def test_rejects_bad_shapes(self) -> None:
        net = _small_net()
        with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
            net(torch.rand(1, 4, 8, 8))
        with pytest.raises(InputError, match="parallax"):
            net(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 8, 8))


class TestParallaxChannels:
    def test_affine_motion_leaves_no_residual(self) -> None:
        ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(60.0), indexing="ij")
        # a pan of (2, -1) px plus a slight zoom and roll about the centre
        flow = torch.stack([2.0 + 0.01 * (xs - 29.5) - 0.005 * (ys - 19.5),
                            -1.0 + 0.005 * (xs - 29.5) + 0.01 * (ys - 19.5)])[None]  # fmt: skip
        out = parallax_channels(flow, torch.ones(1, 1, 40, 60))
        assert out.shape == (1, 7, 40, 60)
        # float32 normal equations: residuals of ~1e-5 median flows
        torch.testing.assert_close(out[:, 0:2], torch.zeros(1, 2, 40, 60), atol=1e-4, rtol=0)
        translation = out[0, 4:6, 0, 0] / out[0, 4:6, 0, 0].norm()
        expected = torch.tensor([2.0, -1.0]) / 5**0.5  # the flow at the centre
        torch.testing.assert_close(translation, expected, atol=1e-4, rtol=0)
        assert float(out[:, 6].min()) == 1.0

    def test_a_near_object_stands_out_and_scale_does_not_matter(self) -> None:
        flow = torch.zeros(1, 2, 40, 60)
        flow[:, 0] = 2.0
        flow[:, 0, 10:20, 20:30] = 3.0  # nearer: moves more with the camera
        conf = torch.ones(1, 1, 40, 60)
        out = parallax_channels(flow, conf)
        assert float(out[0, 0, 15, 25]) > 0.4
        assert abs(float(out[0, 0, 35, 5])) < 1e-4
        big = parallax_channels(flow * 10, conf)
        # only the +0.2%-of-the-side floor on the scale breaks exact invariance
        torch.testing.assert_close(big, out, atol=0.07, rtol=0.07)

    def test_untrusted_flow_gives_zeros(self) -> None:
        out = parallax_channels(torch.randn(2, 2, 16, 16), torch.zeros(2, 1, 16, 16))
        assert float(out.abs().max()) == 0.0

    def test_rejects_bad_shapes(self) -> None:
        with pytest.raises(InputError, match="confidence"):
            parallax_channels(torch.zeros(1, 2, 8, 8), torch.zeros(1, 1, 8, 9))


class TestBuiltinDepth:
    def test_is_a_depth_estimator(self) -> None:
        depth = BuiltinDepth(_small_net())
        assert isinstance(depth, DepthEstimator)
        assert depth.metric is False
        assert depth.name

    @pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 3), (31, 47), (50, 90)])
    def test_any_size_keeps_shape(self, h: int, w: int) -> None:
        depth = BuiltinDepth(_small_net(), side_px=32)
        out = depth(torch.rand(3, 3, h, w))
        assert out.shape == (3, 1, h, w)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()

    def test_nan_is_read_as_black(self) -> None:
        x = torch.rand(2, 3, 24, 40)
        clean = x.clone()
        x[:, :, 3, 4] = float("nan")
        clean[:, :, 3, 4] = 0.0
        out = BuiltinDepth(_small_net())(x)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, BuiltinDepth(_small_net())(clean), atol=0, rtol=0)

    def test_first_frame_borrows_the_next_frames_parallax(self) -> None:
        frames = _moving_pair()
        net = _small_net()
        out = BuiltinDepth(net)(frames)
        with torch.no_grad():
            assert float((out[1:2] - net(frames[1:2])).abs().max()) > 1e-4  # used motion
            assert float((out[0:1] - net(frames[0:1])).abs().max()) > 1e-4  # from frame 1
            # alone (nothing before or after it in the call) a frame has no parallax
            torch.testing.assert_close(
                BuiltinDepth(net)(frames[0:1]), net(frames[0:1]), atol=0, rtol=0
            )

    def test_reset_and_batching(self) -> None:
        frames = torch.cat([_moving_pair(), _moving_pair().flip(0)])
        depth = BuiltinDepth(_small_net())
        whole = depth(frames)
        depth.reset()
        # after the shot's first call, the split of frames into calls changes nothing
        parts = torch.cat([depth(frames[:2]), depth(frames[2:3]), depth(frames[3:])])
        torch.testing.assert_close(parts, whole, atol=0, rtol=0)
        depth.reset()
        torch.testing.assert_close(depth(frames[1:2]), BuiltinDepth(_small_net())(frames[1:2]))

    def test_size_change_starts_over(self) -> None:
        depth = BuiltinDepth(_small_net())
        depth(torch.rand(1, 3, 32, 32))
        frame = torch.rand(1, 3, 20, 28)
        torch.testing.assert_close(depth(frame), BuiltinDepth(_small_net())(frame))

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
            BuiltinDepth(_small_net())(torch.rand(3, 8, 8))
        with pytest.raises(InputError, match="side_px"):
            BuiltinDepth(_small_net(), side_px=8)


class TestWeights:
    def test_round_trip_keeps_architecture(self, tmp_path: Path) -> None:
        net = _small_net(3)
        path = tmp_path / "d.safetensors"
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
                  metadata=config_metadata(net.config))  # fmt: skip
        loaded = load_depthnet(path)
        assert loaded.config == net.config
        assert not loaded.training
        x = torch.rand(1, 3, 24, 24)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), atol=0, rtol=0)

    def test_missing_weights_name_the_path_and_the_fix(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.safetensors"
        with pytest.raises(InputError, match=r"nope\.safetensors.*vidrefocus\.train depth"):
            load_depthnet(path)

    def test_mismatched_architecture_is_refused(self, tmp_path: Path) -> None:
        net = _small_net()
        path = tmp_path / "d.safetensors"
        meta = config_metadata(DepthNetConfig(widths=(8, 16, 8), blocks=(1, 1, 1)))
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), meta)
        with pytest.raises(InputError, match="not a DepthNet checkpoint"):
            load_depthnet(path)

    def test_other_files_are_refused(self, tmp_path: Path) -> None:
        net = _small_net()
        path = tmp_path / "d.safetensors"
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(path), {"config": json.dumps({"widths": [8, 8, 8]})})
        with pytest.raises(InputError, match="format"):  # no format tag: not ours
            load_depthnet(path)
        save_file({"x": torch.zeros(2)}, str(path))
        with pytest.raises(InputError, match="not a DepthNet checkpoint"):
            load_depthnet(path)

    def test_packaged_weights_have_a_card(self) -> None:
        weights = default_weights_path()
        assert weights.stat().st_size < 5_000_000
        record = json.loads(weights.with_suffix(".json").read_text())
        assert record["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
        card = weights.with_suffix(".md").read_text()
        assert record["sha256"] in card
        assert "python -m vidrefocus.train depth" in card


@pytest.fixture(scope="module")
def heldout() -> list[dict[str, torch.Tensor]]:
    """Synthetic clips with seeds far from training (2025 + i) and validation (20002025 + i)."""
    sources = SharpSources(DATA) if DATA.is_dir() else None
    cfg = ClipConfig(size=96, frames=2, in_focus_fraction=0.5)
    return [make_clip(90_000_000 + i, cfg, sources, backdrop_parallax=True) for i in range(40)]


def test_packaged_weights_beat_trivial_baselines(heldout: list[dict[str, torch.Tensor]]) -> None:
    """AbsRel and delta < 1.25 after per-image scale-shift alignment, second frame of each
    clip (with its parallax), against a flat map and luma as disparity.

    Measured with the shipped weights on these 40 clips (35 with non-flat depth): AbsRel
    0.257 vs flat 0.322 and luma 0.293; delta 0.620 vs 0.520 and
    0.563. The bounds keep about half of each margin, for platform differences in DIS
    and convolution kernels.
    """
    depth = BuiltinDepth(load_depthnet())
    weights = torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)
    preds, lumas, targets = [], [], []
    for clip in heldout:
        frames = clip["blurred"].float() / 255.0
        depth.reset()
        preds.append(depth(frames)[1:2])
        lumas.append((frames[1:2] * weights).sum(1, keepdim=True))
        targets.append(clip["disparity"][1:2].float())
    pred, luma, target = torch.cat(preds), torch.cat(lumas), torch.cat(targets)
    ours = depth_metrics(pred, target)
    flat = depth_metrics(torch.zeros_like(target), target)
    by_luma = depth_metrics(luma, target)
    assert ours["images"] == 35
    assert ours["abs_rel"] < 0.9 * flat["abs_rel"]
    assert ours["abs_rel"] < 0.94 * by_luma["abs_rel"]
    assert ours["delta_1_25"] > max(flat["delta_1_25"], by_luma["delta_1_25"]) + 0.025
