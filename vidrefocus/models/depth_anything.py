"""Depth Anything V2 (through `transformers`) as a depth provider: relative disparity per frame.

The checkpoints are the Hugging Face ports `depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf`
(a DINOv2 ViT/14 backbone and a DPT head). Pre-processing is done here in torch, on the frames'
device, instead of the library's PIL image processor: the short side is resized to the input
size (518 by default, the size the models were trained at), the long side keeps the aspect
ratio rounded to a multiple of the patch size (14), then ImageNet normalisation. The relative
checkpoints predict affine-invariant disparity (larger = nearer), which is what `DepthEstimator`
returns; metric checkpoints predict metres, which are inverted to 1/metres.

Tiling (off by default) runs the model once on the whole frame and again on a grid of
overlapping tiles, each at the model's input size; every tile is fitted to the whole-frame pass
by a least-squares scale and shift, and the tiles are blended with raised-cosine weights that
sum to one. It only helps when the frame's short side is well above twice the input size (4K,
or 1080p for thin structures): a single 518 pass of a 2160-line frame sees it 4x downscaled and
loses edges, while each tile of a 2x2 grid sees it at about twice that detail. The global layout
still comes from the whole-frame pass (tiles see less context), at the cost of 1 + rows * cols
passes. Below that size tiles are upscaled crops and only add cost.

Weights are found, in order, in a folder under `models_dir()` named after the hub repository,
in the Hugging Face cache, or (when allowed) downloaded by `transformers`. `find_local_weights`
says cheaply whether they are here, without importing `transformers`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import Tensor, nn

from vidrefocus.errors import InputError

if TYPE_CHECKING:
    from transformers import DepthAnythingConfig

__all__ = [
    "HUB_IDS",
    "DepthAnything",
    "align_to_reference",
    "auto_tile_grid",
    "depth_anything_config",
    "find_local_weights",
    "load_depth_anything",
    "merge_tiles",
    "model_input_size",
    "models_dir",
    "preprocess",
    "random_depth_anything",
    "tile_boxes",
    "tile_weights",
]

log = logging.getLogger(__name__)

HUB_IDS = {
    "small": "depth-anything/Depth-Anything-V2-Small-hf",
    "base": "depth-anything/Depth-Anything-V2-Base-hf",
    "large": "depth-anything/Depth-Anything-V2-Large-hf",
}
# ImageNet statistics, as in the checkpoints' preprocessor_config.json.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT_SIZE = 518
# Metric checkpoints predict metres; nearer than this is treated as this (1/m stays finite).
_MIN_DEPTH_M = 1e-3
# A tile narrower than this holds nothing the whole-frame pass lacks.
_MIN_TILE_PX = 32
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class _Arch(NamedTuple):
    hidden: int
    layers: int
    heads: int
    out_indices: tuple[int, ...]
    neck: tuple[int, ...]
    fusion: int


# The released V2 checkpoints: DINOv2 ViT-S/B/L/14 (hidden size, layers, heads), the layers the
# DPT neck reads, and its widths. Source: `get_dpt_config` in transformers' conversion script
# convert_depth_anything_to_hf.py; the Small-hf config.json agrees, and the parameter counts
# (24.8M, 97.5M, 335.3M) equal the paper's table (tests/models/test_depth_anything.py).
_ARCHITECTURES = {
    "small": _Arch(384, 12, 6, (3, 6, 9, 12), (48, 96, 192, 384), 64),
    "base": _Arch(768, 12, 12, (3, 6, 9, 12), (96, 192, 384, 768), 128),
    "large": _Arch(1024, 24, 16, (5, 12, 18, 24), (256, 512, 1024, 1024), 256),
}

Box = tuple[int, int, int, int]  # top, left, height, width in frame pixels


def models_dir() -> Path:
    """The folder vidrefocus looks in for model folders: `$VIDREFOCUS_MODELS`, else
    `~/.cache/vidrefocus/models`."""
    env = os.environ.get("VIDREFOCUS_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vidrefocus" / "models"


# ----------------------------------------------------------------------------- pre-processing


def model_input_size(
    height: int, width: int, input_size: int = DEFAULT_INPUT_SIZE, multiple: int = 14
) -> tuple[int, int]:
    """The size a frame is resized to: short side `input_size`, aspect kept, long side rounded
    to a multiple of the patch size (as the original repository's `lower_bound` resize).

    Args:
        height, width: the frame's size in px, >= 1.
        input_size: the short side in px, a multiple of `multiple`.
        multiple: the backbone's patch size.
    Returns:
        (height, width) in px, both multiples of `multiple`, the short one == input_size.
    """
    scale = input_size / min(height, width)

    def fit(side: int) -> int:
        return max(input_size, multiple * round(side * scale / multiple))

    return (input_size, fit(width)) if height <= width else (fit(height), input_size)


def preprocess(
    frames: Tensor, input_size: int = DEFAULT_INPUT_SIZE, patch_size: int = 14
) -> Tensor:
    """Resize and normalise frames for the model.

    Antialiased bicubic behaves like PIL's bicubic when shrinking (the checkpoints' own
    processor) and like plain bicubic when enlarging; the result is clamped to [0, 1] because
    bicubic overshoots at edges, as PIL's 8-bit output is.

    Args:
        frames: (B, 3, H, W) float32 RGB in [0, 1], finite.
        input_size: short side of the model input in px.
        patch_size: the backbone's patch size.
    Returns:
        (B, 3, h, w) float32, ImageNet-normalised, (h, w) = `model_input_size(H, W, ...)`.
    """
    size = model_input_size(frames.shape[-2], frames.shape[-1], input_size, patch_size)
    x = frames
    if tuple(frames.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp(0.0, 1.0)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# ------------------------------------------------------------------------------------- tiling


def auto_tile_grid(
    height: int, width: int, input_size: int = DEFAULT_INPUT_SIZE
) -> tuple[int, int]:
    """The grid `tile=True` uses: n x n tiles (so tiles keep the frame's aspect), n =
    round(short side / (2 * input_size)), at least 2; 2x2 for 1080p to 4K at 518."""
    n = max(2, round(min(height, width) / (2 * input_size)))
    return n, n


def _axis_spans(size: int, n: int, overlap: float) -> list[tuple[int, int]]:
    # Equal tiles of length L overlapping by ~overlap * L, the first at 0, the last at the end.
    n = max(1, min(n, size // _MIN_TILE_PX))
    if n == 1:
        return [(0, size)]
    length = min(size, math.ceil(size / (n - (n - 1) * overlap)))
    return [(round(i * (size - length) / (n - 1)), length) for i in range(n)]


def tile_boxes(height: int, width: int, grid: tuple[int, int], overlap: float = 0.25) -> list[Box]:
    """Overlapping tiles of equal size covering a frame, row-major.

    Args:
        height, width: the frame's size in px.
        grid: (rows, cols) wanted; fewer where a tile would be under 32 px.
        overlap: fraction of a tile shared with its neighbour, in [0, 0.5).
    Returns:
        (top, left, height, width) of each tile in px; all tiles have the same size.
    """
    rows = _axis_spans(height, grid[0], overlap)
    cols = _axis_spans(width, grid[1], overlap)
    return [(t, left, h, w) for t, h in rows for left, w in cols]


def _axis_windows(spans: list[tuple[int, int]]) -> list[Tensor]:
    # Raised-cosine ramps over each overlap: tile i falls as tile i+1 rises over the same pixels,
    # and rise + fall = sin^2 + cos^2 = 1, so the windows sum to one along the axis. Sampling at
    # pixel centres keeps every weight > 0.
    windows = []
    for i, (start, length) in enumerate(spans):
        win = torch.ones(length, dtype=torch.float64)
        if i > 0:
            r = spans[i - 1][0] + spans[i - 1][1] - start
            if r > 0:
                k = torch.arange(r, dtype=torch.float64)
                win[:r] *= 0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / r)
        if i < len(spans) - 1:
            r = start + length - spans[i + 1][0]
            if r > 0:
                k = torch.arange(r, dtype=torch.float64)
                win[length - r :] *= 0.5 + 0.5 * torch.cos(math.pi * (k + 0.5) / r)
        windows.append(win)
    return windows


def tile_weights(boxes: list[Box]) -> Tensor:
    """Blending weight of each tile (separable raised cosine over the overlaps).

    Args:
        boxes: a row-major grid from `tile_boxes`.
    Returns:
        (N, 1, h, w) float32 in (0, 1]; placed at their boxes they sum to one at every pixel.
    """
    tops = sorted({b[0] for b in boxes})
    lefts = sorted({b[1] for b in boxes})
    wy = _axis_windows([(t, boxes[0][2]) for t in tops])
    wx = _axis_windows([(left, boxes[0][3]) for left in lefts])
    weights = [torch.outer(wy[tops.index(t)], wx[lefts.index(left)]) for t, left, _, _ in boxes]
    return torch.stack(weights).unsqueeze(1).float()


def align_to_reference(pred: Tensor, ref: Tensor) -> Tensor:
    """Least-squares scale and shift of each prediction onto a reference.

    Minimises sum((s * pred + b - ref)^2) per item, in float64. The scale is kept >= 0 (a tile
    anticorrelated with the whole frame is noise; it then takes the reference's mean) and is 0
    for a constant prediction.

    Args:
        pred: (N, 1, h, w) float32 disparity of each tile.
        ref: (N, 1, h, w) float32 the whole-frame disparity over the same pixels.
    Returns:
        (N, 1, h, w) float32, `s * pred + b`.
    """
    p = pred.flatten(1).double()
    g = ref.flatten(1).double()
    pm, gm = p.mean(1, keepdim=True), g.mean(1, keepdim=True)
    var = (p - pm).square().mean(1, keepdim=True)
    cov = ((p - pm) * (g - gm)).mean(1, keepdim=True)
    scale = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), 0.0).clamp_min(0.0)
    return (scale * p + (gm - scale * pm)).view_as(pred).to(pred.dtype)


def merge_tiles(tiles: Tensor, boxes: list[Box], height: int, width: int) -> Tensor:
    """Blend tile predictions into one frame with `tile_weights`.

    Args:
        tiles: (N, C, h, w) float32 per-tile maps, already aligned to each other.
        boxes: where each tile lies, from `tile_boxes`.
        height, width: the frame's size in px.
    Returns:
        (C, height, width) float32.
    """
    weights = tile_weights(boxes).to(tiles.device)
    out = tiles.new_zeros(tiles.shape[1], height, width)
    total = tiles.new_zeros(1, height, width)
    for tile, w, (t, left, h, wd) in zip(tiles, weights, boxes, strict=True):
        out[:, t : t + h, left : left + wd] += w * tile
        total[:, t : t + h, left : left + wd] += w
    # The weights already sum to one; dividing keeps float rounding from ever showing as a seam.
    return out / total.clamp_min(1e-12)


# ------------------------------------------------------------------------------------ provider


class DepthAnything:
    """Depth Anything V2 as a `DepthEstimator`: frames in, relative disparity out.

    Every frame is estimated on its own (no temporal state); `vidrefocus.depth_temporal`
    stabilises the sequence.

    Attributes:
        name: what the job summary prints, e.g. "Depth Anything V2 Small".
        metric: False for the relative checkpoints (affine-invariant disparity); True for
            metric ones, whose metres are returned as 1/metres.
        model: the `transformers` DepthAnythingForDepthEstimation, in eval mode.

    Example:
        >>> est = DepthAnything.load("small", local_only=True)  # doctest: +SKIP
        >>> est(torch.rand(2, 3, 360, 640)).shape  # doctest: +SKIP
        torch.Size([2, 1, 360, 640])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str = "Depth Anything V2",
        input_size: int = DEFAULT_INPUT_SIZE,
        batch_size: int = 4,
        tile: bool | tuple[int, int] = False,
        tile_overlap: float = 0.25,
    ) -> None:
        """Wrap a loaded model (use `load_depth_anything` to load one).

        Args:
            model: a DepthAnythingForDepthEstimation.
            name: label for logs and summaries.
            input_size: short side of the model input in px, a multiple of the patch size;
                518 is what the checkpoints were trained at.
            batch_size: frames (or tiles) per forward pass.
            tile: False for one pass per frame; True for an automatic grid
                (`auto_tile_grid`); (rows, cols) for a fixed one.
            tile_overlap: fraction of a tile shared with its neighbour, in [0, 0.5).

        Raises:
            InputError: an argument is out of range.
        """
        patch = model.config.patch_size
        self.patch_size = int(patch if isinstance(patch, int) else patch[0])
        if input_size < self.patch_size or input_size % self.patch_size:
            raise InputError(
                f"Depth Anything input_size {input_size}: must be a positive multiple of the "
                f"patch size {self.patch_size} (518 is the trained size)."
            )
        if batch_size < 1:
            raise InputError(f"Depth Anything batch_size {batch_size}: must be >= 1.")
        if not isinstance(tile, bool):
            if not isinstance(tile, tuple | list) or len(tile) != 2 or min(tile) < 1:
                raise InputError(
                    f"Depth Anything tile {tile!r}: expected True, False or a grid (rows, cols) "
                    "of counts >= 1."
                )
            tile = (int(tile[0]), int(tile[1]))
        if not 0.0 <= tile_overlap < 0.5:
            raise InputError(f"Depth Anything tile_overlap {tile_overlap}: must be in [0, 0.5).")
        self.model = model.eval()
        self.name = name
        self.metric = getattr(model.config, "depth_estimation_type", "relative") == "metric"
        self.input_size = input_size
        self.batch_size = batch_size
        self.tile = tile
        self.tile_overlap = tile_overlap
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype

    @classmethod
    def load(cls, source: str | Path = "small", **kwargs: Any) -> DepthAnything:
        """Same as `load_depth_anything(source, **kwargs)`."""
        return load_depth_anything(source, **kwargs)

    def reset(self) -> None:
        """Nothing to forget: every frame is estimated on its own."""

    @torch.inference_mode()
    def __call__(self, frames: Tensor) -> Tensor:
        """Relative disparity of each frame.

        Args:
            frames: (B, 3, H, W) float RGB in [0, 1], display-referred; NaN counts as 0.
        Returns:
            (B, 1, H, W) float32 on the frames' device, larger = nearer, finite.
        Raises:
            InputError: frames are not (B, 3, H, W) floating point.
        """
        if frames.ndim != 4 or frames.shape[1] != 3 or not frames.is_floating_point():
            raise InputError(
                f"Depth Anything expects frames (B, 3, H, W) float in [0, 1]; got "
                f"{tuple(frames.shape)} {frames.dtype}."
            )
        B, _, H, W = frames.shape
        if B == 0 or H == 0 or W == 0:
            return frames.new_zeros(B, 1, H, W, dtype=torch.float32)
        x = frames.to(self.device, torch.float32)
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0).clamp(0.0, 1.0)
        depth = self._predict(x) if self.tile is False else self._predict_tiled(x)
        return depth.to(frames.device)

    def _predict(self, frames: Tensor) -> Tensor:
        # (B, 3, H, W) finite in [0, 1] on the model's device -> (B, 1, H, W) float32.
        size = tuple(frames.shape[-2:])
        out = []
        for chunk in frames.split(self.batch_size):
            x = preprocess(chunk, self.input_size, self.patch_size).to(self.dtype)
            pred = self.model(pixel_values=x).predicted_depth.unsqueeze(1).float()
            if self.metric:
                pred = 1.0 / pred.clamp_min(_MIN_DEPTH_M)
            # antialias matters only when the frame is smaller than the model input
            pred = F.interpolate(pred, size, mode="bilinear", align_corners=False, antialias=True)
            out.append(pred)
        return torch.nan_to_num(torch.cat(out), nan=0.0, posinf=0.0, neginf=0.0)

    def _predict_tiled(self, frames: Tensor) -> Tensor:
        _, _, H, W = frames.shape
        grid = auto_tile_grid(H, W, self.input_size) if self.tile is True else self.tile
        boxes = tile_boxes(H, W, grid, self.tile_overlap)
        reference = self._predict(frames)
        if len(boxes) == 1:
            return reference
        out = []
        for frame, ref in zip(frames, reference, strict=True):  # one frame's tiles at a time
            crops = torch.stack([frame[:, t : t + h, x : x + w] for t, x, h, w in boxes])
            refs = torch.stack([ref[:, t : t + h, x : x + w] for t, x, h, w in boxes])
            aligned = align_to_reference(self._predict(crops), refs)
            out.append(merge_tiles(aligned, boxes, H, W))
        return torch.stack(out)


# -------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Source:
    label: str
    folder: Path  # an explicit folder, or the models_dir() folder a hub id would live in
    hub_id: str | None = None  # None for an explicit folder


def _resolve(source: str | Path) -> _Source:
    text = str(source).strip()
    if not isinstance(source, Path) and text.lower() in HUB_IDS:
        hub_id = HUB_IDS[text.lower()]
        label = f"Depth Anything V2 {text.title()}"
        return _Source(label, models_dir() / hub_id.split("/")[-1], hub_id)
    path = Path(text).expanduser()
    if path.exists():
        return _Source(f"Depth Anything ({path.name})", path)
    if not isinstance(source, Path) and _HUB_ID.match(text):
        return _Source(f"Depth Anything ({text})", models_dir() / text.split("/")[-1], text)
    raise InputError(
        f"{text}: no such folder, and not a Depth Anything size (small, base, large) or a "
        "Hugging Face hub id (owner/name)."
    )


def _in_hf_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = [try_to_load_from_cache(hub_id, n) for n in ("config.json", "model.safetensors")]
    except ValueError:  # an id the hub library rejects
        return False
    return all(isinstance(f, str) for f in found)


def find_local_weights(source: str | Path = "small") -> Path | str | None:
    """Where `load_depth_anything(source)` would load from without a download; cheap.

    Args:
        source: as for `load_depth_anything`.
    Returns:
        The folder (an explicit one, or the one under `models_dir()`), the hub id when the
        weights are in the Hugging Face cache, or None when they are not here (or `source` is
        neither a size, a folder nor a hub id). A folder is returned even if it turns out
        broken, so that loading it explains what is wrong.
    """
    try:
        src = _resolve(source)
    except InputError:
        return None
    if src.hub_id is None or src.folder.is_dir():
        return src.folder
    return src.hub_id if _in_hf_cache(src.hub_id) else None


def _fetch_hint(src: _Source) -> str:
    return (
        f"Fetch them once (needs internet) with `hf download {src.hub_id} --local-dir "
        f"{shlex.quote(str(src.folder))}`; vidrefocus looks there first "
        "($VIDREFOCUS_MODELS sets the parent folder)."
    )


def _from_pretrained(
    name: str, dtype: torch.dtype, *, local: bool, where: str, hint: str = ""
) -> nn.Module:
    # Imported here: importing transformers takes seconds, and find_local_weights must be cheap.
    import transformers
    from transformers import DepthAnythingForDepthEstimation

    # transformers 5 renamed `torch_dtype` to `dtype`; the project allows >= 4.40.
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    # A local load is instant: its progress bar would only clutter the job's own output.
    if local:
        transformers.utils.logging.disable_progress_bar()
    try:
        model, info = DepthAnythingForDepthEstimation.from_pretrained(
            name,
            local_files_only=local,
            use_safetensors=True,  # never unpickle a checkpoint (DESIGN.md, Weights)
            output_loading_info=True,
            **{dtype_kw: dtype},
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, SafetensorError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        what = "not a loadable Depth Anything checkpoint" if local else "download failed"
        raise InputError(f"{where}: {what} ({reason}). {hint}".rstrip()) from err
    missing = sorted(info.get("missing_keys") or ()) + sorted(info.get("mismatched_keys") or ())
    if missing:
        raise InputError(
            f"{where}: the weights do not match its config.json ({len(missing)} tensors missing "
            f"or of the wrong shape, e.g. {missing[0]}); the checkpoint is incomplete or for "
            "another architecture. Fetch it again."
        )
    return model


def _load_folder(folder: Path, dtype: torch.dtype) -> nn.Module:
    if not folder.is_dir():
        raise InputError(
            f"{folder}: is a file; Depth Anything loads a folder holding config.json and "
            "model.safetensors (as `save_pretrained` or `hf download --local-dir` write it)."
        )
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputError(
            f"{folder}: not a Depth Anything checkpoint: no config.json. Pass the folder that "
            "`save_pretrained` or `hf download --local-dir` wrote."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{config_path}: not readable JSON ({err}).") from err
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "depth_anything":
        raise InputError(
            f"{folder}: config.json has model_type {model_type!r}, not 'depth_anything'; this "
            "folder holds another model."
        )
    if not any(
        (folder / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json")
    ):
        raise InputError(
            f"{folder}: no model.safetensors; vidrefocus loads safetensors weights only (never "
            "pickled .bin files). Fetch the checkpoint again."
        )
    return _from_pretrained(str(folder), dtype, local=True, where=str(folder))


def _offline() -> bool:
    """`HF_HUB_OFFLINE` as set now (huggingface_hub reads it once, at its import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is None:
        return bool(constants.HF_HUB_OFFLINE)
    return value.strip().lower() in ("1", "on", "yes", "true")


def load_depth_anything(
    source: str | Path = "small",
    *,
    device: str | torch.device = "cpu",
    local_only: bool | None = None,
    tile: bool | tuple[int, int] = False,
    batch_size: int = 4,
    input_size: int = DEFAULT_INPUT_SIZE,
    fp16: bool = False,
) -> DepthAnything:
    """Load Depth Anything V2 as a depth provider.

    Args:
        source: "small", "base" or "large" (the V2 `-hf` hub checkpoints), another hub id
            ("owner/name"), or a local folder as `save_pretrained` writes it. A size or hub id
            is looked up in `models_dir() / <repo name>`, then in the Hugging Face cache, then
            downloaded (unless local only).
        device: where the model runs.
        local_only: True never touches the network; False downloads a missing checkpoint
            into the Hugging Face cache, as `from_pretrained` does; None (the default) is
            False unless `HF_HUB_OFFLINE` is set. (`--depth auto` only loads what
            `find_local_weights` found, so it never downloads.)
        tile: False, True (automatic grid) or (rows, cols); see the module docstring.
        batch_size: frames (or tiles) per forward pass.
        input_size: short side of the model input in px, a multiple of 14.
        fp16: half precision weights (CUDA only); float32 otherwise.
    Returns:
        The provider, its model in eval mode on `device`.
    Raises:
        InputError: the weights are not here (the message names the command that fetches them
            and where they go), a folder is not a Depth Anything checkpoint, or an argument is
            out of range.
    """
    from huggingface_hub import constants

    src = _resolve(source)
    device = torch.device(device)
    if fp16 and device.type != "cuda":
        raise InputError(f"Depth Anything fp16 needs a CUDA device; got {device}.")
    dtype = torch.float16 if fp16 else torch.float32
    if src.hub_id is None or src.folder.is_dir():
        model = _load_folder(src.folder, dtype)
    elif _in_hf_cache(src.hub_id):
        model = _from_pretrained(src.hub_id, dtype, local=True, where=f"{src.hub_id} (HF cache)")
    elif local_only or (local_only is None and _offline()):
        raise InputError(
            f"{src.label} weights not found: not in {src.folder} nor in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}). {_fetch_hint(src)} Or allow the download "
            "(local_only=False)."
        )
    else:
        log.info("downloading %s from the Hugging Face hub", src.hub_id)
        model = _from_pretrained(
            src.hub_id, dtype, local=False, where=src.hub_id, hint=_fetch_hint(src)
        )
    log.info("loaded %s (%s) on %s", src.label, src.hub_id or src.folder, device)
    return DepthAnything(
        model.to(device), name=src.label, input_size=input_size, batch_size=batch_size, tile=tile
    )


# ------------------------------------------------------------------------- random (benchmarks)


def depth_anything_config(size: str = "small") -> DepthAnythingConfig:
    """The `DepthAnythingConfig` of a released V2 relative checkpoint ("small", "base",
    "large"), without its weights.

    Raises:
        InputError: unknown size.
    """
    from transformers import DepthAnythingConfig, Dinov2Config

    arch = _ARCHITECTURES.get(size.lower())
    if arch is None:
        raise InputError(f"Depth Anything size {size!r}: expected one of small, base, large.")
    backbone = Dinov2Config(
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        image_size=DEFAULT_INPUT_SIZE,
        patch_size=14,
        out_indices=list(arch.out_indices),
        apply_layernorm=True,
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=arch.hidden,
        patch_size=14,
        neck_hidden_sizes=list(arch.neck),
        fusion_hidden_size=arch.fusion,
        depth_estimation_type="relative",
    )


def random_depth_anything(
    size: str = "small",
    seed: int = 0,
    *,
    device: str | torch.device = "cpu",
    input_size: int = DEFAULT_INPUT_SIZE,
    batch_size: int = 4,
    tile: bool | tuple[int, int] = False,
) -> DepthAnything:
    """The real V2 architecture with RANDOM weights: for speed benchmarks offline only.

    Its output is noise; speed does not depend on weight values. The global RNG is untouched.

    Args:
        size: "small", "base" or "large".
        seed: seed of the random initialisation.
        device, input_size, batch_size, tile: as for `load_depth_anything`.
    Returns:
        A provider named "... (RANDOM weights, benchmark only)".
    Raises:
        InputError: unknown size.
    """
    from transformers import DepthAnythingForDepthEstimation

    config = depth_anything_config(size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DepthAnythingForDepthEstimation(config)
    log.warning("Depth Anything V2 %s with RANDOM weights: benchmark only", size.title())
    return DepthAnything(
        model.to(device),
        name=f"Depth Anything V2 {size.title()} (RANDOM weights, benchmark only)",
        input_size=input_size,
        batch_size=batch_size,
        tile=tile,
    )
