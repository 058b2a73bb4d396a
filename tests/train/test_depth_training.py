"""DepthNet training: clip disparity, the scale-and-shift-invariant loss, a tiny real run."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from vidrefocus.errors import ConfigError
from vidrefocus.models.depthnet import load_depthnet
from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip
from vidrefocus.train.depth import (
    DepthTrainConfig,
    align_scale_shift,
    depth_metrics,
    ssi_loss,
    train_depth,
    write_card,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "train_natural"


@pytest.fixture(scope="module")
def sources() -> SharpSources | None:
    return SharpSources(DATA) if DATA.is_dir() else None


class TestClipDisparity:
    def test_shape_type_and_range(self, sources: SharpSources | None) -> None:
        clip = make_clip(3, ClipConfig(size=48, frames=2), sources)
        assert clip["disparity"].shape == (2, 1, 48, 48)
        assert clip["disparity"].dtype == torch.float16
        assert float(clip["disparity"].min()) > 0.0

    def test_backdrop_parallax_keeps_the_scene(self, sources: SharpSources | None) -> None:
        # Same seed: same first frame (no motion yet), same random stream for the rest.
        cfg = ClipConfig(size=48, frames=2, noise_fraction=0.0)
        for seed in range(6):
            a = make_clip(seed, cfg, sources)
            b = make_clip(seed, cfg, sources, backdrop_parallax=True)
            assert torch.equal(a["sharp"][0], b["sharp"][0])
            assert torch.equal(a["disparity"][0], b["disparity"][0])

    def test_a_slanted_backdrop_shows_parallax(self) -> None:
        # Without photos every backdrop is procedural: find a slanted one under a moving
        # camera; its flow then varies with its disparity (nearer moves more).
        cfg = ClipConfig(size=64, frames=2, noise_fraction=0.0, jpeg_fraction=0.0,
                         in_focus_fraction=1.0)  # fmt: skip
        for seed in range(60):
            clip = make_clip(seed, cfg, None, backdrop_parallax=True)
            d = clip["disparity"][1, 0].float()
            f = clip["flow"][1].float()
            if float(d.max() - d.min()) > 0.2 and float(d.std()) > 0.05 and f.abs().mean() > 1:
                break
        else:
            pytest.fail("no clip with a slanted backdrop and camera motion")
        mag = f.norm(dim=0)[8:-8, 8:-8].flatten()
        disp = d[8:-8, 8:-8].flatten()
        corr = torch.corrcoef(torch.stack([mag, disp]))[0, 1]
        assert float(corr) > 0.5


class TestLoss:
    def test_alignment_recovers_an_affine_map(self) -> None:
        target = torch.rand(2, 1, 16, 16) + 0.5
        pred = 3.0 * target - 7.0
        aligned = align_scale_shift(pred, target, torch.ones_like(pred))
        torch.testing.assert_close(aligned, target, atol=1e-4, rtol=0)

    def test_constant_prediction_goes_to_the_mean(self) -> None:
        target = torch.rand(1, 1, 8, 8)
        aligned = align_scale_shift(torch.ones_like(target), target, torch.ones_like(target))
        torch.testing.assert_close(aligned, target.mean().expand_as(target))

    def test_loss_is_scale_and_shift_invariant(self) -> None:
        g = torch.Generator().manual_seed(0)
        target = torch.rand(3, 1, 32, 32, generator=g) + 0.2
        pred = torch.randn(3, 1, 32, 32, generator=g)
        a, b = ssi_loss(pred, target), ssi_loss(5.0 * pred + 2.0, target)
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        assert float(ssi_loss(2.0 * target - 1.0, target)) < 1e-4
        assert float(a) > 0.5

    def test_flat_targets_are_left_out(self) -> None:
        target = torch.full((2, 1, 16, 16), 0.3)
        loss = ssi_loss(torch.randn(2, 1, 16, 16, requires_grad=True), target)
        assert float(loss.detach()) == 0.0
        loss.backward()  # still differentiable

    def test_metrics(self) -> None:
        target = torch.rand(2, 1, 24, 24) + 0.5
        inverted = depth_metrics(-2.0 * target, target)
        flat = depth_metrics(torch.zeros_like(target), target)
        # larger = nearer: an inverted map is not flipped back; it scores like a flat one
        assert inverted["abs_rel"] == pytest.approx(flat["abs_rel"])
        assert inverted["abs_rel"] > 0.1
        good = depth_metrics(0.5 * target + 4.0, target)
        assert good["abs_rel"] < 1e-6
        assert good["delta_1_25"] == 1.0
        assert good["images"] == 2


class TestConfig:
    def test_unknown_key_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("clips: 4\nbogus: 1\n")
        with pytest.raises(ConfigError, match="bogus"):
            DepthTrainConfig.from_yaml(path)

    def test_shipped_config_loads(self) -> None:
        root = Path(__file__).resolve().parents[2]
        cfg = DepthTrainConfig.from_yaml(root / "configs" / "train" / "depthnet.yaml")
        assert cfg.frames >= 2
        assert cfg.clip_config.in_focus_fraction == cfg.in_focus_fraction
        assert isinstance(cfg.widths, tuple)


def test_tiny_training_run_writes_weights_and_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the clip cache lives under ./.cache
    # procedural textures only (textures=None): the photo path is exercised by make_clip tests
    cfg = DepthTrainConfig(clips=4, val_clips=3, size=48, crop=32, widths=(8, 8, 8),
                           blocks=(1, 1, 1), steps=4, batch=2, workers=1,
                           textures=None)  # fmt: skip
    out = tmp_path / "d.safetensors"
    record = train_depth(cfg, out)
    assert math.isfinite(record["loss_first_tenth"])
    assert math.isfinite(record["loss_last_tenth"])
    assert record["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    syn = json.loads(out.with_suffix(".json").read_text())["metrics"]["synthetic"]
    assert {"depthnet_mono", "depthnet_parallax", "baseline_flat", "baseline_luma"} <= set(syn)
    assert load_depthnet(out).config.widths == (8, 8, 8)
    card = write_card(out, {"sha256": record["sha256"], "ms_per_720p_frame": 1.0}).read_text()
    assert record["sha256"] in card
    assert "ms_per_720p_frame" in card
    with pytest.raises(ValueError, match="other weights"):
        write_card(out, {"sha256": "0" * 64})
    out.write_bytes(out.read_bytes() + b" ")  # the record no longer describes the file
    with pytest.raises(ValueError, match="sha256"):
        write_card(out)
