from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vidrefocus.config import Config, InputOptions, available_presets, load_config
from vidrefocus.errors import ConfigError


@pytest.mark.parametrize("preset", available_presets())
def test_every_preset_loads(preset: str) -> None:
    assert isinstance(load_config(preset), Config)


def test_layers_merge_in_order(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("encode:\n  codec: h265\n  crf: 22\n")
    b = tmp_path / "b.yaml"
    b.write_text("encode:\n  crf: 14\n")
    cfg = load_config("default", [a, b], {"encode.preset": "slow", "encode.pix_fmt": None})
    assert (cfg.encode.codec, cfg.encode.crf, cfg.encode.preset) == ("h265", 14, "slow")
    assert cfg.encode.pix_fmt is None  # None overrides are "not given"


def test_unknown_key_names_file_key_and_known_keys(tmp_path: Path) -> None:
    f = tmp_path / "job.yaml"
    f.write_text("encode:\n  qualty: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config("default", [f])
    msg = str(info.value)
    assert str(f) in msg
    assert "encode.qualty" in msg
    assert "crf" in msg


def test_bad_value_lists_allowed_values() -> None:
    pattern = r"command-line options: 'encode\.preset'.*'ultrafast'.*'warp'"
    with pytest.raises(ConfigError, match=pattern):
        load_config(overrides={"encode.preset": "warp"})


def test_wrong_type(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("runtime:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r"t\.yaml.*runtime\.batch_size"):
        load_config("default", [f])


def test_unknown_preset_lists_available() -> None:
    with pytest.raises(ConfigError, match=r"available: .*default"):
        load_config("nonesuch")


@pytest.mark.parametrize("text", ["[1, 2]", "encode: [", "- a\n- b\n"])
def test_malformed_yaml(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config("default", [f])


def test_config_is_frozen() -> None:
    cfg = load_config()
    with pytest.raises(ValueError, match="frozen"):
        cfg.encode.crf = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fps", "rate"),
    [(24, Fraction(24)), (23.976, Fraction(24000, 1001)), (29.97, Fraction(30000, 1001)),
     (25, Fraction(25)), (12.5, Fraction(25, 2))],
)  # fmt: skip
def test_sequence_rate_snaps_to_ntsc(fps: float, rate: Fraction) -> None:
    assert InputOptions(sequence_fps=fps).sequence_rate == rate


def test_deblur_section(tmp_path: Path) -> None:
    cfg = load_config()
    assert (cfg.deblur.enabled, cfg.deblur.temporal, cfg.deblur.weights) == (False, True, None)
    f = tmp_path / "job.yaml"
    f.write_text("deblur:\n  enabled: true\n  weights: /w/deblur.safetensors\n")
    cfg = load_config("default", [f], {"deblur.temporal": False})
    assert (cfg.deblur.enabled, cfg.deblur.temporal) == (True, False)
    assert cfg.deblur.weights == Path("/w/deblur.safetensors")
    assert cfg.model_dump(mode="json")["deblur"]["weights"] == "/w/deblur.safetensors"
    f.write_text("deblur:\n  enable: true\n")
    with pytest.raises(ConfigError, match=r"deblur\.enable.*enabled, temporal, weights"):
        load_config("default", [f])


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [("true", True), ("false", False), ("on", True), ("off", False), ("auto", "auto"),
     ("'on'", True), ("'auto'", "auto")],
)  # fmt: skip
def test_deblur_enabled_on_off_auto(tmp_path: Path, yaml_value: str, expected: object) -> None:
    # issue #8: `enabled` grew a third value; old files (true/false) keep working, and YAML's
    # bare on/off (booleans in YAML 1.1) mean what they say
    f = tmp_path / "job.yaml"
    f.write_text(f"deblur:\n  enabled: {yaml_value}\n")
    assert load_config("default", [f]).deblur.enabled == expected


@pytest.mark.parametrize(("flag", "expected"), [("on", True), ("off", False), ("auto", "auto")])
def test_deblur_enabled_override_text(flag: str, expected: object) -> None:
    assert load_config(overrides={"deblur.enabled": flag}).deblur.enabled == expected


def test_deblur_enabled_bad_value_names_the_key(tmp_path: Path) -> None:
    f = tmp_path / "job.yaml"
    f.write_text("deblur:\n  enabled: sometimes\n")
    with pytest.raises(ConfigError, match=r"job\.yaml.*'deblur\.enabled'.*on, off or auto"):
        load_config("default", [f])
    with pytest.raises(ConfigError, match=r"deblur\.auto_sharp_px"):
        load_config(overrides={"deblur.auto_sharp_px": 0})
