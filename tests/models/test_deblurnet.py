"""Issue #5: DeblurNet architecture, temporal fusion, weights loading, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.models.deblurnet import (
    DeblurConfig,
    DeblurNet,
    TemporalDeblur,
    TemporalFusion,
    config_metadata,
    default_weights_path,
    load_deblurnet,
)


def _small_net(seed: int = 0) -> DeblurNet:
    torch.manual_seed(seed)
    net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1)))
    for p in net.parameters():  # untrained heads start at zero; give them something to do
        torch.nn.init.normal_(p, std=0.05)
    return net.eval()


class TestDeblurNet:
    @pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 3), (5, 7), (33, 47), (64, 96)])
    def test_any_size_keeps_shape(self, h: int, w: int) -> None:
        with torch.no_grad():
            out = _small_net()(torch.rand(2, 3, h, w))
        assert out.sharp.shape == (2, 3, h, w)
        assert out.defocus.shape == (2, 1, h, w)
        assert float(out.sharp.min()) >= 0.0
        assert float(out.sharp.max()) <= 1.0
        assert float(out.defocus.min()) >= 0.0

    def test_untrained_net_is_the_identity(self) -> None:
        net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1))).eval()
        x = torch.rand(1, 3, 40, 56)
        with torch.no_grad():
            torch.testing.assert_close(net(x).sharp, x, atol=1e-6, rtol=0)

    def test_rejects_non_rgb(self) -> None:
        with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
            _small_net()(torch.rand(1, 4, 8, 8))

    def test_state_on_the_eighth_grid(self) -> None:
        net = _small_net()
        with torch.no_grad():
            out = net(torch.rand(1, 3, 60, 90))
        assert out.state.shape == (1, net.state_channels, 8, 12)


class TestTemporalFusion:
    def test_no_confidence_means_no_change(self) -> None:
        fusion = TemporalFusion(8)
        for p in fusion.parameters():
            torch.nn.init.normal_(p, std=0.5)
        feat = torch.randn(1, 8, 6, 6)
        out = fusion(feat, torch.randn(1, 8, 6, 6), torch.zeros(1, 1, 6, 6))
        torch.testing.assert_close(out, feat, atol=0, rtol=0)

    def test_zero_confidence_equals_per_frame(self) -> None:
        net = _small_net()
        x = torch.rand(1, 3, 32, 32)
        with torch.no_grad():
            alone = net(x)
            fused = net(x, torch.randn_like(alone.state), torch.randn(1, 2, 32, 32) * 3,
                        torch.zeros(1, 1, 32, 32))  # fmt: skip
        torch.testing.assert_close(fused.sharp, alone.sharp, atol=0, rtol=0)

    def test_state_needs_flow(self) -> None:
        net = _small_net()
        with pytest.raises(ValueError, match="flow"):
            net(torch.rand(1, 3, 16, 16), torch.zeros(1, net.state_channels, 2, 2))


class TestTemporalDeblur:
    def test_reset_restarts_the_sequence(self) -> None:
        frames = torch.rand(3, 3, 48, 64)
        runner = TemporalDeblur(_small_net())
        first, _ = runner(frames)
        runner.reset()
        again, _ = runner(frames)
        torch.testing.assert_close(first, again, atol=0, rtol=0)

    def test_recurrence_uses_the_previous_frame(self) -> None:
        frames = torch.rand(1, 3, 48, 64).expand(2, 3, 48, 64).contiguous()
        temporal, _ = TemporalDeblur(_small_net())(frames)
        per_frame, _ = TemporalDeblur(_small_net(), temporal=False)(frames)
        torch.testing.assert_close(temporal[0], per_frame[0], atol=0, rtol=0)
        assert not torch.equal(temporal[1], per_frame[1])

    def test_batches_equal_one_long_call(self) -> None:
        frames = torch.rand(4, 3, 32, 40)
        whole, _ = TemporalDeblur(_small_net())(frames)
        runner = TemporalDeblur(_small_net())
        parts = torch.cat([runner(frames[:1])[0], runner(frames[1:])[0]])
        torch.testing.assert_close(parts, whole, atol=0, rtol=0)

    def test_size_change_drops_state(self) -> None:
        runner = TemporalDeblur(_small_net())
        runner(torch.rand(1, 3, 32, 32))
        small, _ = runner(torch.rand(1, 3, 16, 24))
        assert small.shape == (1, 3, 16, 24)

    def test_nan_is_read_as_black(self) -> None:
        x = torch.rand(1, 3, 16, 16)
        x[0, :, 3, 4] = float("nan")
        sharp, defocus = TemporalDeblur(_small_net())(x)
        assert torch.isfinite(sharp).all()
        assert torch.isfinite(defocus).all()

    def test_deterministic_on_cpu(self) -> None:
        frames = torch.rand(3, 3, 72, 96)
        a = TemporalDeblur(load_deblurnet())(frames)[0]
        b = TemporalDeblur(load_deblurnet())(frames)[0]
        assert torch.equal(a, b)


class TestWeights:
    def test_packaged_weights_load(self) -> None:
        net = load_deblurnet()
        assert isinstance(net, DeblurNet)
        assert not net.training

    def test_packaged_weights_have_a_card(self) -> None:
        weights = default_weights_path()
        record = json.loads(weights.with_suffix(".json").read_text())
        import hashlib

        assert record["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
        card = weights.with_suffix(".md").read_text()
        assert record["sha256"] in card
        assert "python -m vidrefocus.train deblur" in card

    def test_round_trip_keeps_architecture(self, tmp_path: Path) -> None:
        net = _small_net(3)
        path = tmp_path / "d.safetensors"
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
                  metadata=config_metadata(net.config))  # fmt: skip
        loaded = load_deblurnet(path)
        assert loaded.config == net.config
        x = torch.rand(1, 3, 24, 24)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x).sharp, net(x).sharp, atol=0, rtol=0)

    def test_missing_weights_name_the_fix(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match=r"python -m vidrefocus\.train deblur"):
            load_deblurnet(tmp_path / "nope.safetensors")

    def test_wrong_file_is_an_input_error(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.safetensors"
        save_file({"x": torch.zeros(2)}, str(path))
        with pytest.raises(InputError, match="not a DeblurNet checkpoint"):
            load_deblurnet(path)


def _static_noisy_shot(seed: int, sigma: float, frames: int) -> tuple[Tensor, Tensor]:
    """A smooth still scene (1, 3, 64, 64) and `frames` noisy views of it."""
    g = torch.Generator().manual_seed(seed)
    scene = torch.rand(1, 3, 8, 8, generator=g)
    base = torch.nn.functional.interpolate(scene, size=(64, 64), mode="bilinear")
    return base, (base + sigma * torch.randn(frames, 3, 64, 64, generator=g)).clamp(0, 1)


def _flicker(frames: Tensor) -> float:
    return float((frames[1:] - frames[:-1]).abs().mean())


class TestAccumulation:
    def test_noise_on_a_static_shot_is_averaged(self) -> None:
        _, frames = _static_noisy_shot(0, 0.01, 6)
        net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1)))  # identity until trained
        plain, _ = TemporalDeblur(net, history=0.0, denoise=0.0)(frames)
        smooth, _ = TemporalDeblur(net, denoise=0.0)(frames)  # the output blend alone
        assert _flicker(smooth) < 0.7 * _flicker(plain)

    def test_history_stays_within_the_current_neighbourhood(self) -> None:
        frames = torch.rand(2, 3, 32, 32)
        net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1)))
        out, _ = TemporalDeblur(net, tolerance=10.0, denoise=0.0)(frames)
        cur = frames[1:2]
        lo = -torch.nn.functional.max_pool2d(-cur, 3, 1, 1)
        hi = torch.nn.functional.max_pool2d(cur, 3, 1, 1)
        assert bool((out[1:2] >= lo - 1e-6).all())
        assert bool((out[1:2] <= hi + 1e-6).all())

    def test_a_real_change_is_not_blended(self) -> None:
        frames = torch.zeros(2, 3, 32, 32)
        frames[1] = 0.8  # a cut to a bright frame: far beyond the noise tolerance
        net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1)))
        out, _ = TemporalDeblur(net)(frames)
        torch.testing.assert_close(out[1], frames[1], atol=1e-6, rtol=0)

    def test_history_out_of_range(self) -> None:
        with pytest.raises(InputError, match="history"):
            TemporalDeblur(_small_net(), history=1.0)
        with pytest.raises(InputError, match="denoise"):
            TemporalDeblur(_small_net(), denoise=-0.1)

    def test_the_input_blend_averages_noise_the_output_blend_leaves(self) -> None:
        base, frames = _static_noisy_shot(1, 0.03, 8)
        net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1)))  # identity until trained
        output_only, _ = TemporalDeblur(net, denoise=0.0)(frames)
        both, _ = TemporalDeblur(net)(frames)
        error = lambda x: float((x[4:] - base).abs().mean())  # noqa: E731
        assert _flicker(both) < 0.8 * _flicker(output_only)
        assert error(both) < error(output_only)  # closer to the noise-free scene, not just smoother

    def test_the_input_blend_leaves_a_clean_moving_edge_alone(self) -> None:
        frames = torch.zeros(4, 3, 48, 48)
        for t in range(4):
            frames[t, :, :, 10 + 3 * t :] = 0.9  # an edge moving 3 px a frame, no noise
        net = DeblurNet(DeblurConfig(width=8, blocks=(1, 1, 1)))
        out, _ = TemporalDeblur(net, history=0.0)(frames)
        assert float((out - frames).abs().max()) < 0.02
