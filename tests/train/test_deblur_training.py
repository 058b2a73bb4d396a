"""Issue #5: synthetic defocus clips and the DeblurNet training loop (tiny, real runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vidrefocus.errors import ConfigError
from vidrefocus.models.deblurnet import load_deblurnet
from vidrefocus.models.flow import warp
from vidrefocus.train.deblur import DeblurTrainConfig, train_deblur
from vidrefocus.train.deblur_data import ClipConfig, SharpSources, make_clip

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "train_natural"


@pytest.fixture(scope="module")
def sources() -> SharpSources | None:
    return SharpSources(DATA) if DATA.is_dir() else None


class TestClips:
    def test_shapes_and_types(self, sources: SharpSources | None) -> None:
        clip = make_clip(7, ClipConfig(size=64, frames=3), sources)
        assert clip["blurred"].shape == (3, 3, 64, 64)
        assert clip["blurred"].dtype == torch.uint8
        assert clip["sharp"].shape == (3, 3, 64, 64)
        assert clip["sharp"].dtype == torch.uint8
        assert clip["defocus"].shape == (3, 1, 64, 64)
        assert clip["flow"].shape == (3, 2, 64, 64)
        assert clip["confidence"].shape == (3, 1, 64, 64)
        assert float(clip["flow"][0].abs().max()) == 0.0  # no previous frame

    def test_a_clip_is_a_function_of_its_seed(self, sources: SharpSources | None) -> None:
        cfg = ClipConfig(size=48, frames=2)
        a, b = make_clip(11, cfg, sources), make_clip(11, cfg, sources)
        assert all(torch.equal(a[k], b[k]) for k in a)
        c = make_clip(12, cfg, sources)
        assert not torch.equal(a["sharp"], c["sharp"])

    def test_blur_follows_the_defocus_map(self, sources: SharpSources | None) -> None:
        # Over many clips, pixels with a large radius lose more detail than in-focus ones.
        cfg = ClipConfig(size=64, frames=1, noise_fraction=0.0, jpeg_fraction=0.0)
        sharp_err, blur_err = [], []
        for seed in range(12):
            clip = make_clip(seed, cfg, sources)
            err = (clip["blurred"].float() - clip["sharp"].float()).abs().mean(1, keepdim=True)
            r = clip["defocus"].float()
            if (r < 0.5).any():
                sharp_err.append(float(err[r < 0.5].mean()))
            if (r > 4).any():
                blur_err.append(float(err[r > 4].mean()))
        assert sharp_err
        assert blur_err
        assert sum(blur_err) / len(blur_err) > 3 * sum(sharp_err) / len(sharp_err)

    def test_flow_maps_frame_t_onto_t_minus_1(self, sources: SharpSources | None) -> None:
        cfg = ClipConfig(size=96, frames=2, noise_fraction=0.0, jpeg_fraction=0.0)
        for seed in range(20):
            clip = make_clip(seed, cfg, sources)
            if float(clip["flow"][1].float().abs().mean()) > 1.0:
                break
        prev = clip["blurred"][0:1].float()
        cur = clip["blurred"][1:2].float()
        flow = clip["flow"][1:2].float()
        conf = clip["confidence"][1:2].float()
        border = (slice(None), slice(None), slice(12, -12), slice(12, -12))
        warped_err = ((warp(prev, flow) - cur).abs() * conf)[border].sum() / conf[border].sum()
        still_err = ((prev - cur).abs() * conf)[border].sum() / conf[border].sum()
        assert float(warped_err) < 0.6 * float(still_err)


class TestConfig:
    def test_unknown_key_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("clips: 4\nbogus: 1\n")
        with pytest.raises(ConfigError, match="bogus"):
            DeblurTrainConfig.from_yaml(path)

    def test_shipped_config_loads(self) -> None:
        root = Path(__file__).resolve().parents[2]
        cfg = DeblurTrainConfig.from_yaml(root / "configs" / "train" / "deblurnet.yaml")
        assert cfg.blocks == (1, 1, 2)
        assert cfg.frames >= 2


def test_tiny_training_run_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both phases run, the weights load, and the same config gives the same weights."""
    monkeypatch.chdir(tmp_path)  # the clip cache lives under ./.cache
    cfg = DeblurTrainConfig(clips=6, val_clips=4, size=48, frames=2, crop=32, width=8,
                            blocks=(1, 1, 1), frame_steps=3, frame_batch=2, clip_steps=2,
                            clip_batch=2, workers=1, textures=str(DATA))  # fmt: skip
    a = train_deblur(cfg, tmp_path / "a.safetensors")
    b = train_deblur(cfg, tmp_path / "b.safetensors")
    assert a["sha256"] == b["sha256"]
    record = json.loads((tmp_path / "a.json").read_text())
    assert set(record["metrics"]["synthetic"]) >= {
        "input_psnr_db",
        "output_psnr_db",
        "defocus_mae_px",
        "no_harm_psnr_db",
    }
    net = load_deblurnet(tmp_path / "a.safetensors")
    assert net.config.width == 8
