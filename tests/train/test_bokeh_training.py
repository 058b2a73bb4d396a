"""`python -m vidrefocus.train bokeh` runs end to end and writes weights with a card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from vidrefocus.models.bokehnet import load_fill_net
from vidrefocus.train.__main__ import main
from vidrefocus.train.bokeh import TrainConfig
from vidrefocus.train.scenes import SCENE_KINDS, make_scene


@pytest.mark.slow
def test_training_run_writes_weights_and_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the scene cache goes under ./.cache
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("scenes: 6\nval_scenes: 2\nsteps: 3\nbatch: 2\nheight: 48\nwidth: 64\n"
                   "textures: null\n")  # fmt: skip
    out = tmp_path / "fill.safetensors"
    assert main(["bokeh", "--config", str(cfg), "--out", str(out), "--threads", "1"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert set(card["metrics"]) == {"without_net", "with_net"}
    assert "python -m vidrefocus.train bokeh" in out.with_suffix(".md").read_text()
    load_fill_net(out)
    # a second run reuses the cached scenes
    assert list((tmp_path / ".cache" / "vidrefocus-train").glob("bokeh-*.safetensors"))


def test_unknown_config_key(tmp_path: Path) -> None:
    from vidrefocus.errors import ConfigError

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        TrainConfig.from_yaml(cfg)


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_scenes_are_deterministic(kind: str) -> None:
    a, b = make_scene(kind, 24, 32, seed=5), make_scene(kind, 24, 32, seed=5)
    for x, y in zip(a.rgb + a.alpha + a.disparity, b.rgb + b.alpha + b.disparity, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    image, disp = a.visible()
    assert image.shape == (3, 24, 32)
    assert disp.shape == (1, 24, 32)
    assert float(image.min()) >= 0
    assert float(image.max()) <= 1
