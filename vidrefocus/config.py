"""Typed options of every command, loaded from YAML presets in configs/ and CLI overrides."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from vidrefocus.errors import ConfigError

__all__ = [
    "CODECS",
    "BokehOptions",
    "Config",
    "DeblurOptions",
    "DepthOptions",
    "EncodeOptions",
    "InputOptions",
    "LensOptions",
    "RuntimeOptions",
    "available_presets",
    "load_config",
    "presets_dir",
]

CODECS = ("h264", "h265", "prores_hq", "prores_4444", "ffv1")
Codec = Literal["h264", "h265", "prores_hq", "prores_4444", "ffv1"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EncodeOptions(_Options):
    """How the output video is encoded. `None` means "like the input"."""

    codec: Codec = "h264"
    crf: int | None = Field(default=None, ge=0, le=51, description="H.264/H.265 quality")
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
        "veryslow",
    ] = "medium"  # fmt: skip
    pix_fmt: str | None = Field(default=None, description="e.g. yuv420p, yuv422p10le")
    bit_depth: Literal[8, 10, 12, 16] | None = None
    colour_matrix: Literal["bt709", "smpte170m", "bt470bg", "bt2020nc"] | None = None
    colour_range: Literal["tv", "pc"] | None = None
    audio: Literal["copy", "aac", "none"] = "copy"
    keep_metadata: bool = True
    threads: int = Field(default=0, ge=0, description="encoder threads; 0 = automatic")
    bitexact: bool = Field(
        default=False,
        description="byte-identical output for the same input and settings: no random "
        "container ids or encoder version strings (x264/x265 then run a fixed 8 threads "
        "unless `threads` is set, as their output depends on the count)",
    )


class InputOptions(_Options):
    """How the input is read."""

    sequence_fps: float = Field(default=24.0, gt=0, le=1000, description="image sequences")
    apply_rotation: bool = True

    @property
    def sequence_rate(self) -> Fraction:
        """`sequence_fps` as an exact rate; 23.976, 29.97 and 59.94 snap to n*1000/1001."""
        for n in (24, 30, 48, 60, 120):
            if abs(self.sequence_fps - n * 1000 / 1001) < 5e-3:
                return Fraction(n * 1000, 1001)
        return Fraction(self.sequence_fps).limit_denominator(1000)


class LensOptions(_Options):
    """The virtual lens: turns metric depth into blur (thin lens, DESIGN.md Blur)."""

    focal_length_mm: float = Field(default=50.0, gt=1, le=2000)
    f_number: float = Field(default=2.0, gt=0.5, le=64)
    sensor_width_mm: float = Field(default=36.0, gt=1, le=100, description="36 = full frame")


class DepthOptions(_Options):
    """Where depth comes from, what its values mean, and how it is cleaned up."""

    source: Literal["auto", "sequence", "model", "builtin"] = Field(
        default="auto",
        description="auto: the user's sequence if given, else Depth Anything V2 if its weights "
        "are on this machine, else the built-in DepthNet",
    )
    path: str | None = Field(default=None, description="folder of per-frame depth maps")
    units: Literal["mm", "m", "inverse-m", "relative"] | None = Field(
        default=None,
        description="of the user's sequence; None = its depth.json (a vidrefocus depth "
        "export), else mm",
    )
    near_is_bright: bool = True
    model: str = Field(
        default="small",
        description="Depth Anything V2: small, base, large, a hub id or a local folder",
    )
    stabilize: bool = Field(
        default=True, description="temporal stabilisation and edge alignment (every source)"
    )
    cache_dir: str | None = Field(
        default=None,
        description="where estimated depth is kept between runs; None = $VIDREFOCUS_CACHE_DIR "
        "or ~/.cache/vidrefocus",
    )


class BokehOptions(_Options):
    """How the bokeh looks."""

    aperture: Literal["disk", "polygon", "star", "heart"] = "disk"
    blades: int = Field(default=8, ge=3, le=32)
    curvature: float = Field(default=0.0, ge=0, le=1)
    rotation_deg: float = 0.0
    squeeze: float = Field(default=1.0, gt=0, le=4)
    cat_eye: float = Field(default=0.0, ge=0, le=1)
    highlight_gain: float = Field(default=4.0, ge=1, le=64)
    highlight_threshold: float = Field(default=0.92, gt=0, lt=1)
    strength: float = Field(default=12.0, ge=0, le=200, description="px, relative depth only")
    style: str | None = Field(default=None, description="text description of the look")
    learned_fill: bool = False
    quality: Literal["full", "fast"] = Field(
        default="full",
        description="fast: coarser depth layers and reduced-resolution blur (the draft preset)",
    )


_DEBLUR_SWITCH = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def _deblur_switch(value: object) -> object:
    # YAML 1.1 reads on/off/yes/no as booleans already; the CLI and dotted overrides pass text.
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text in _DEBLUR_SWITCH:
            return _DEBLUR_SWITCH[text]
        raise ValueError("use on, off or auto (true and false work too)")
    return value


DeblurSwitch = Annotated[bool | Literal["auto"], BeforeValidator(_deblur_switch)]


class DeblurOptions(_Options):
    """DeblurNet: remove defocus blur (`vidrefocus deblur`, or first in `vidrefocus refocus`)."""

    enabled: DeblurSwitch = Field(
        default=False,
        description="refocus: deblur before depth and bokeh: true (on), false (off: the input "
        "is already sharp) or auto (DeblurNet runs, frames it finds already sharp pass "
        "through unchanged)",
    )
    auto_sharp_px: float = Field(
        default=1.0,
        gt=0,
        le=64,
        description="auto: a frame is already sharp when DeblurNet's median blur radius over "
        "its detailed pixels is below this (px)",
    )
    temporal: bool = Field(
        default=True, description="carry flow-warped features from frame to frame (no flicker)"
    )
    weights: Path | None = Field(
        default=None, description="DeblurNet safetensors file; None = the packaged weights"
    )


class RuntimeOptions(_Options):
    """Where and how the job runs."""

    batch_size: int = Field(default=4, ge=1, le=256)
    queue_frames: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="decoded frames waiting for the stages, and processed frames for the "
        "encoder (each queue); a batch's worth keeps both sides busy, more only holds memory",
    )
    io_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="how much lower the decode and encode threads and the encoder process run "
        "than the stages (nice, Linux): they take the cores the stages leave idle instead of "
        "stalling the stages' parallel work; 0: the same priority",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    chunk_seconds: float = Field(
        default=4.0, gt=0, le=3600, description="chunk length for --workers (cut at keyframes)"
    )
    warmup_frames: int = Field(
        default=8, ge=0, le=1000, description="frames run before each chunk to warm temporal state"
    )
    cpus_per_worker: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="CPUs each Ray worker reserves and uses (its torch threads); default: this "
        "machine's cores shared among the workers (embedded Ray), 1 on a cluster",
    )
    pin_cpus: bool = Field(
        default=False,
        description="embedded Ray only: bind each worker to cores of its own, so that none "
        "uses more than it reserved (needs workers x cpus_per_worker <= cores)",
    )


class EnhanceOptions(_Options):
    """The analyst's faithful enhancement (`vidrefocus enhance`)."""

    residual_flag_db: float = Field(
        default=30.0,
        ge=0,
        le=100,
        description="flag frames whose re-blurred output matches the input below this PSNR (dB)",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=256,
        description="CPU threads for DeblurNet and flow; a repeat run must use the same count",
    )


class Config(_Options):
    """All options of one job."""

    input: InputOptions = InputOptions()
    encode: EncodeOptions = EncodeOptions()
    lens: LensOptions = LensOptions()
    depth: DepthOptions = DepthOptions()
    bokeh: BokehOptions = BokehOptions()
    deblur: DeblurOptions = DeblurOptions()
    runtime: RuntimeOptions = RuntimeOptions()
    enhance: EnhanceOptions = EnhanceOptions()


def presets_dir() -> Path:
    """The folder of bundled YAML presets (inside the package, so installs carry it)."""
    return Path(__file__).parent / "configs"


def available_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such config file.") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, not {type(data).__name__}."
        )
    return data


def _dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in overrides.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _explain(err: ValidationError, source: str) -> ConfigError:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            section = _section_for(e["loc"][:-1])
            known = ", ".join(sorted(section.model_fields)) if section else ""
            lines.append(f"unknown key '{loc}' (known keys here: {known})")
        else:
            lines.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    return ConfigError(f"{source}: " + "; ".join(lines) + ". Fix the value or remove the key.")


def _section_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return None
        if not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


def load_config(
    preset: str | None = "default",
    files: list[Path] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    overrides_source: str = "command-line options",
) -> Config:
    """Build a `Config`: the preset, then each YAML file, then dotted CLI overrides.

    Args:
        preset: name of a bundled preset (`available_presets()`), or None for built-in defaults.
        files: YAML files merged in order over the preset.
        overrides: {"encode.crf": 18, ...}; keys use dots, `None` values are skipped.
        overrides_source: where the overrides came from, for error messages.
    Returns:
        The validated, frozen config.
    Raises:
        ConfigError: an unknown preset, unreadable YAML, an unknown key or a bad value; the
            message names the file and the dotted key, and lists allowed values.

    Example:
        >>> load_config(overrides={"encode.codec": "ffv1"}).encode.codec
        'ffv1'
    """
    data: dict[str, Any] = {}
    sources: list[tuple[str, dict[str, Any]]] = []
    if preset is not None:
        path = presets_dir() / f"{preset}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"unknown preset {preset!r}; available: {', '.join(available_presets())}."
            )
        sources.append((str(path), _read_yaml(path)))
    for file in files or []:
        sources.append((str(file), _read_yaml(Path(file))))
    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    if clean:
        sources.append((overrides_source, _dotted(clean)))
    for source, layer in sources:
        # Validate each layer on its own first so an error names the file it came from.
        try:
            Config.model_validate(_merge(data, layer))
        except ValidationError as err:
            raise _explain(err, source) from err
        data = _merge(data, layer)
    return Config.model_validate(data)
