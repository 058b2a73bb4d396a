"""Depth for a clip: pick the provider, estimate, stabilise, export or cache.

`--depth auto` (the default) takes, in order: the user's depth sequence when one is given
(it always wins); Depth Anything V2 when its weights are on this machine; otherwise the
built-in DepthNet, which ships with vidrefocus. The choice and the reason are printed.

Estimated depth is computed once per clip in one sequential pass (so the stabiliser sees the
whole shot, and the refocus planner can read depth at a tracked point before rendering) and
kept in a cache folder keyed by the input file and the settings, so changing a focus pull
and rendering again does not estimate depth again. `vidrefocus depth IN -o DIR` writes the
same maps for a compositor: 16-bit PNG or float32 EXR, a `depth.json` that says what the
numbers mean, and a colour-mapped preview video.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from vidrefocus import __version__
from vidrefocus.config import Config
from vidrefocus.depth_temporal import DepthStabilizer
from vidrefocus.errors import InputError
from vidrefocus.io.depth import DEPTH_SIDECAR, sequence_units
from vidrefocus.io.maps import write_map
from vidrefocus.io.probe import probe
from vidrefocus.io.sequence import IMAGE_EXTENSIONS, scan_sequence
from vidrefocus.io.staged import StagedOutput
from vidrefocus.memory import check_input_memory
from vidrefocus.models.depth import DepthEstimator
from vidrefocus.runtime.local import JobResult, Progress, run_local
from vidrefocus.stages import EstimateDepthStage, FrameBatch, torch_device

__all__ = [
    "DEPTH_SIDECAR",
    "DepthChoice",
    "MapFormat",
    "build_estimator",
    "cached_depth",
    "choose_depth",
    "depth_colour_map",
    "depth_sidecar",
    "export_depth",
    "prepare_depth",
    "write_depth_map",
]

log = logging.getLogger(__name__)

MapFormat = Literal["png", "exr"]
# Relative depth in a 16-bit PNG: code = disparity in [0, 1] x 65535 (near = bright).
_RELATIVE_PNG_SCALE = 65535.0
# Metric depth in a 16-bit PNG: code = distance in mm, 1 mm (code 1) to 65.535 m (farther,
# infinity included, is clipped there: `DepthSequence` refuses 0 and non-finite distances).
_METRIC_PNG_MAX_MM = 65535.0
# Metric depth in EXR: metres, farthest 1000 km (an infinite distance would not read back).
_METRIC_EXR_MIN_DISPARITY = 1e-6
# Bump when estimation or stabilisation changes, so old cached depth is not reused.
_CACHE_VERSION = 2  # 2: unstabilised relative maps normalised per frame (were saturated)


@dataclass(frozen=True)
class DepthChoice:
    """Which provider gives a clip its depth, and why.

    Attributes:
        source: "sequence" (the user's maps), "model" (Depth Anything V2) or "builtin".
        description: what it is, e.g. "built-in DepthNet (packaged weights)".
        reason: why it was chosen (for `--depth auto`).
    """

    source: Literal["sequence", "model", "builtin"]
    description: str
    reason: str

    @property
    def note(self) -> str:
        return f"depth: {self.description} ({self.reason})"


def choose_depth(config: Config) -> DepthChoice:
    """Resolve `depth.source` ("auto" included) to one provider.

    Raises:
        InputError: `source: sequence` without a path, or a path with a model source.
    """
    opts = config.depth
    if opts.path is not None:
        if opts.source not in ("auto", "sequence"):
            raise InputError(
                f"--depth {opts.path} gives a depth sequence, but the depth source is "
                f"{opts.source!r}; drop one of the two (a user sequence always wins in auto)."
            )
        units = sequence_units(opts.path, opts.units)
        return DepthChoice("sequence", f"{opts.path} ({units})", "the user's sequence")
    if opts.source == "sequence":
        raise InputError(
            "depth source 'sequence' needs a folder of depth maps: pass --depth FOLDER."
        )
    if opts.source in ("auto", "model"):
        from vidrefocus.models.depth_anything import find_local_weights

        found = find_local_weights(opts.model)
        if found is not None:
            reason = "auto: its weights are on this machine" if opts.source == "auto" else "asked"
            return DepthChoice("model", f"Depth Anything V2 ({found})", reason)
        if opts.source == "model":
            # Not local: loading tries the hub, and says how to fetch the weights if offline.
            return DepthChoice("model", f"Depth Anything V2 ({opts.model})", "asked")
        return DepthChoice(
            "builtin",
            "built-in DepthNet (packaged weights)",
            f"auto: no depth sequence, no Depth Anything V2 '{opts.model}' weights here",
        )
    return DepthChoice("builtin", "built-in DepthNet (packaged weights)", "asked")


def build_estimator(choice: DepthChoice, config: Config) -> DepthEstimator:
    """The estimator a choice names, loaded on `runtime.device`.

    Raises:
        InputError: missing or broken weights (the message says how to fetch them).
        ValueError: a "sequence" choice (sequences are read, not estimated).
    """
    device = torch_device(config.runtime.device)
    if choice.source == "builtin":
        from vidrefocus.models.depthnet import BuiltinDepth, load_depthnet

        return BuiltinDepth(load_depthnet(device=device))
    if choice.source == "model":
        from vidrefocus.models.depth_anything import DepthAnything

        return DepthAnything.load(config.depth.model, device=device)
    raise ValueError("a depth sequence is read with vidrefocus.io.depth.DepthSequence")


def depth_sidecar(
    fmt: MapFormat, frames: int, source: str, stabilized: bool, *, metric: bool = False
) -> dict:
    """The `depth.json` of a folder of maps written by `write_depth_map`.

    `io.depth.DepthSequence` reads it back, so `refocus --depth FOLDER` needs no
    `--depth-units`: relative maps are disparity in [0, 1] (near = bright), metric maps are
    distances in mm (16-bit PNG) or metres (EXR).

    Args:
        fmt: "png" or "exr".
        frames: how many maps the folder holds.
        source: where the depth came from (a provider, a user's sequence).
        stabilized: whether temporal stabilisation ran.
        metric: the maps are metric distances, not relative disparity.
    Returns:
        JSON-ready mapping.
    """
    if not metric:
        units, near_is_bright, png_scale = "relative", True, _RELATIVE_PNG_SCALE
        if fmt == "png":
            values = f"disparity in [0, 1] = code / {int(_RELATIVE_PNG_SCALE)}, near = bright"
        else:
            values = "disparity in [0, 1], near = bright (float32)"
    elif fmt == "png":
        units, near_is_bright, png_scale = "mm", False, 1.0
        values = (
            f"distance in mm = code (1 mm steps; {int(_METRIC_PNG_MAX_MM)} means "
            f"{_METRIC_PNG_MAX_MM / 1000:g} m or farther)"
        )
    else:
        units, near_is_bright, png_scale = "m", False, None
        values = "distance in metres (float32)"
    return {
        "vidrefocus": __version__,
        "kind": "depth",
        "units": units,
        "near_is_bright": near_is_bright,
        "values": values,
        "png_scale": png_scale if fmt == "png" else None,
        "format": fmt,
        "frames": frames,
        "source": source,
        "stabilized": stabilized,
    }


def write_depth_map(path: Path, disparity: Tensor, *, metric: bool = False) -> None:
    """Write one depth map as `depth_sidecar` describes it; the extension picks the format.

    Args:
        path: target file, .png (16-bit) or .exr (float32).
        disparity: (1, H, W) float32, larger = nearer: 1/m when `metric`, else in [0, 1].
        metric: write distances (mm in PNG, metres in EXR) instead of relative disparity.
    Raises:
        InputError: another extension, or the file cannot be written.
    """
    if not metric:
        write_map(
            path, disparity, png_scale=_RELATIVE_PNG_SCALE,
            description="vidrefocus depth: relative disparity = value / 65535, near = bright",
            what="depth map",
        )  # fmt: skip
    elif path.suffix.lower() == ".png":
        mm = (1000.0 / disparity.clamp(min=1000.0 / _METRIC_PNG_MAX_MM)).clamp(min=1.0)
        write_map(
            path, mm, png_scale=1.0, what="depth map",
            description="vidrefocus depth: distance in mm = value (65535 = 65.535 m or farther)",
        )  # fmt: skip
    else:
        metres = 1.0 / disparity.clamp(min=_METRIC_EXR_MIN_DISPARITY)
        write_map(path, metres, png_scale=1.0, description="", what="depth map")


def depth_colour_map(depth: Tensor) -> Tensor:
    """Turbo colour map (blue = far, red = near) of relative depth.

    Args:
        depth: (B, 1, H, W) disparity in [0, 1], larger = nearer (values outside are clipped).
    Returns:
        (B, 3, H, W) float32 RGB in [0, 1], on the depth's device.
    """
    out = []
    for d in depth:
        u8 = (d[0].float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        bgr = cv2.applyColorMap(u8, cv2.COLORMAP_TURBO)
        out.append(torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1))
    return torch.stack(out).float().div(255.0).to(depth.device)


class _PreviewStage:
    """Frames become the colour-mapped depth (the preview video)."""

    def reset(self) -> None:
        """Stateless."""

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        return batch.with_(frames=depth_colour_map(batch.depth))


class _DiscardFrames:
    """A frame sink that writes nothing (no preview asked)."""

    def __enter__(self) -> _DiscardFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, rgb: Tensor, pts: int) -> None:
        """Drop the frame."""


def export_depth(
    input_path: Path,
    output_dir: Path,
    config: Config,
    *,
    fmt: MapFormat = "png",
    preview: bool = True,
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
    choice: DepthChoice | None = None,
) -> tuple[JobResult, list[str]]:
    """Estimate a clip's depth and write it as a map sequence a compositor can load.

    `output_dir` receives `000000.png` ... (16-bit, disparity x 65535, near = bright) or
    `.exr` (float32 disparity in [0, 1]), `depth.json` (what the numbers mean, which provider
    made them), and for a video input `preview.mp4` (turbo colour map, the input's timing).
    The folder is built under a temporary name and renamed when complete.

    Args:
        input_path: a video, an image or a folder of numbered images.
        output_dir: the folder to create.
        config: `depth` says which provider (a user sequence is not estimated: use refocus).
        fmt: "png" or "exr".
        preview: also write the colour-mapped preview video (video inputs).
        overwrite: replace an existing folder.
        progress: called after each batch.
        choice: the provider, if already chosen (else `choose_depth(config)`).
    Returns:
        What was written (the preview's or the folder's path), and notes.
    Raises:
        InputError: bad input, an output that exists or is the input, missing weights.
        ProcessingError: estimation or encoding failed; nothing is left at `output_dir`.
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    if fmt not in ("png", "exr"):
        raise InputError(f"depth map format {fmt!r} unknown; use png or exr.")
    choice = choice or choose_depth(config)
    if choice.source == "sequence":
        raise InputError(
            "vidrefocus depth estimates depth; a depth sequence (--depth) needs no estimating. "
            "Pass the footage alone (with --depth-source builtin or model)."
        )
    image_input = input_path.is_dir() or input_path.suffix.lower() in IMAGE_EXTENSIONS
    probe(input_path, config.input.sequence_rate)  # a missing or unreadable input fails here
    check_input_memory("depth", input_path, config)
    names: dict[int, str] = {}
    if input_path.is_dir():
        seq = scan_sequence(input_path, config.input.sequence_rate)
        names = {p: f.stem for p, f in zip(seq.pts, seq.files, strict=True)}
    notes = [choice.note]
    with StagedOutput(output_dir, [input_path], folder=True, overwrite=overwrite) as out:
        estimator = build_estimator(choice, config)
        stabilizer = DepthStabilizer(metric=False) if config.depth.stabilize else None
        stages = [EstimateDepthStage(estimator, stabilizer)]
        want_preview = preview and not image_input
        if want_preview:
            stages.append(_PreviewStage())
        written = 0

        def save(batch: FrameBatch) -> None:
            nonlocal written
            for d, pts in zip(batch.depth, batch.pts, strict=True):
                stem = names.get(pts, f"{written:06d}")
                write_depth_map(out.path(f"{stem}.{fmt}"), d)
                written += 1

        target = out.path("preview.mp4") if want_preview else output_dir
        result = run_local(
            input_path, target, stages, config, overwrite=True, progress=progress,
            writer=None if want_preview else _DiscardFrames(), on_batch=save,
        )  # fmt: skip
        sidecar = depth_sidecar(fmt, written, choice.description, config.depth.stabilize)
        out.path(DEPTH_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    notes.append(
        f"{written} {fmt.upper()} maps ({sidecar['values']})"
        + (", preview.mp4" if want_preview else "")
    )
    if not config.depth.stabilize:
        notes.append("temporal stabilisation and edge alignment: off")
    return JobResult(output=output_dir, frames=result.frames, elapsed_s=result.elapsed_s), notes


def _cache_root(config: Config) -> Path:
    if config.depth.cache_dir:
        return Path(config.depth.cache_dir).expanduser()
    base = os.environ.get("VIDREFOCUS_CACHE_DIR")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "vidrefocus"


def _cache_key(input_path: Path, choice: DepthChoice, config: Config) -> str:
    stat = input_path.stat()
    identity = {
        "input": str(input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "source": choice.source,
        "provider": choice.description,
        "stabilize": config.depth.stabilize,
        "sequence_fps": config.input.sequence_fps,
        "apply_rotation": config.input.apply_rotation,
        "version": _CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def cached_depth(
    input_path: Path,
    config: Config,
    choice: DepthChoice,
    *,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[Path, bool]:
    """The folder of estimated depth maps for this clip and provider, computed if missing.

    Returns:
        The folder (16-bit PNG, relative, near = bright) and whether it was reused.
    """
    folder = _cache_root(config) / "depth" / _cache_key(Path(input_path), choice, config)
    sidecar = folder / DEPTH_SIDECAR
    if sidecar.is_file():
        try:
            frames = json.loads(sidecar.read_text())["frames"]
            if len(list(folder.glob("*.png"))) == frames:
                return folder, True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        log.warning("%s: incomplete cached depth; estimating again.", folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    export_depth(
        input_path, folder, config, fmt="png", preview=False, overwrite=True,
        progress=progress, choice=choice,
    )  # fmt: skip
    return folder, False


def prepare_depth(
    input_path: Path, config: Config, *, progress: Callable[[Progress], None] | None = None
) -> tuple[Config, list[str]]:
    """Resolve `--depth auto` before a refocus job: estimate (or reuse) depth if needed.

    Returns:
        The config with `depth.path` naming a sequence (the user's, or the cached estimate
        with `units: relative` and its stabilisation already applied), and notes.
    Raises:
        InputError: missing model weights, a bad sequence option.
    """
    choice = choose_depth(config)
    if choice.source == "sequence":
        return config, [choice.note]
    folder, reused = cached_depth(input_path, config, choice, progress=progress)
    depth = config.depth.model_copy(
        update={"source": "sequence", "path": str(folder), "units": "relative",
                "near_is_bright": True, "stabilize": False}
    )  # fmt: skip
    how = "reused from" if reused else "estimated, cached in"
    return config.model_copy(update={"depth": depth}), [choice.note, f"depth {how} {folder}"]
