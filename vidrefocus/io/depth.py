"""User-supplied depth: image sequences (16-bit PNG/TIFF, EXR, NPY) or a grey video."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.io.maps import read_exr
from vidrefocus.io.sequence import cv2, scan_sequence

__all__ = ["DEPTH_SIDECAR", "DEPTH_UNITS", "DepthSequence", "read_sidecar", "sequence_units"]

log = logging.getLogger(__name__)

DepthUnits = Literal["mm", "m", "inverse-m", "relative"]
DEPTH_UNITS: tuple[str, ...] = ("mm", "m", "inverse-m", "relative")
_SEQUENCE_EXTENSIONS = (".png", ".tif", ".tiff", ".exr", ".npy")
# What `vidrefocus depth` writes beside its maps: units, orientation, PNG scale, provider.
DEPTH_SIDECAR = "depth.json"


def read_sidecar(folder: Path | str) -> dict | None:
    """The `depth.json` a vidrefocus depth export carries, or None (absent or unreadable)."""
    path = Path(folder) / DEPTH_SIDECAR
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("units") not in DEPTH_UNITS:
        log.warning("%s: not a vidrefocus depth description; ignoring it.", path)
        return None
    return data


def sequence_units(folder: Path | str, units: str | None) -> str:
    """The units of a depth folder: as given, else its `depth.json`'s, else "mm"."""
    if units is not None:
        return units
    sidecar = read_sidecar(folder)
    return str(sidecar["units"]) if sidecar is not None else "mm"


class DepthSequence:
    """A per-frame depth sequence the user brings, converted to the depth convention.

    DESIGN.md: depth is disparity-like, larger = nearer; metric maps are 1/metres
    (`metric=True`), relative maps lie in [0, 1].

    Args:
        path: a folder of numbered depth images (PNG/TIFF 8 or 16 bit, EXR, NPY), or a grey
            video (e.g. FFV1 gray16le; values are its code values, 0-65535 at 16 bits).
        units: what the values are: "mm" or "m" (distance), "inverse-m" (disparity in 1/m),
            or "relative" (any monotonic depth, normalised per sequence to [0, 1]); None =
            what the folder's `depth.json` says (a `vidrefocus depth` export), else "mm".
        near_is_bright: for "relative" only: True if larger values are nearer (a
            `depth.json` overrides it when `units` is None).
        frame_count: the footage's frame count, to validate against.
        size: the footage's (width, height); maps of another size are resampled, warned.
        expect_16bit: refuse 8-bit files (metric depth in 8 bits is a mistake).

    Raises:
        InputError: missing folder, no files, wrong count, NaN/inf values, a colour image or
            video, all-constant maps, 8-bit files when 16-bit was promised, non-positive
            distances.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        units: DepthUnits | None = "mm",
        near_is_bright: bool = True,
        frame_count: int | None = None,
        size: tuple[int, int] | None = None,
        expect_16bit: bool = False,
    ) -> None:
        self.path = Path(path)
        sidecar = read_sidecar(self.path) if units is None else None
        if units is None:
            units = sidecar["units"] if sidecar is not None else "mm"
            if sidecar is not None:
                near_is_bright = bool(sidecar.get("near_is_bright", near_is_bright))
        if units not in DEPTH_UNITS:
            raise InputError(f"depth units {units!r} unknown; use one of {', '.join(DEPTH_UNITS)}.")
        self.units = units
        self.near_is_bright = near_is_bright
        self.size = size
        self.expect_16bit = expect_16bit
        self._video: _GreyVideo | None = None
        if self.path.is_file() and self.path.suffix.lower() in _SEQUENCE_EXTENSIONS:
            raise InputError(
                f"{self.path}: one depth map; depth must be a folder of numbered maps "
                "(000000.png, ...), one per frame, or a grey video."
            )
        if self.path.is_file():
            self._video = _GreyVideo(self.path)
            self.files = tuple(self.path for _ in range(len(self._video)))
        elif not self.path.is_dir():
            raise InputError(
                f"{self.path}: depth must be a folder of numbered maps (000000.png, ...) or a "
                "grey video; nothing is there."
            )
        else:
            self.files = self._scan_folder()
        if frame_count is not None and len(self.files) != frame_count:
            what = "depth video frames" if self._video is not None else "depth maps"
            raise InputError(
                f"{self.path}: {len(self.files)} {what} for {frame_count} video frames; "
                "give exactly one map per frame."
            )
        self.metric = units != "relative"
        self._range: tuple[float, float] | None = None
        self._said_constant = False
        # Written by vidrefocus (`vidrefocus depth`, the depth cache): states its units.
        self._from_vidrefocus = self.path.is_dir() and read_sidecar(self.path) is not None
        if sidecar is not None and units == "relative":
            # A vidrefocus export states its range: no pass over every map to find it.
            scale = sidecar.get("png_scale") if self.files[0].suffix.lower() == ".png" else 1.0
            if isinstance(scale, int | float) and scale > 0:
                self._range = (0.0, float(scale))

    def _scan_folder(self) -> tuple[Path, ...]:
        files = [p for p in self.path.iterdir() if p.suffix.lower() in _SEQUENCE_EXTENSIONS]
        if not files:
            raise InputError(
                f"{self.path}: no depth maps found (looked for "
                f"{', '.join(_SEQUENCE_EXTENSIONS)}); the folder is empty or holds other files."
            )
        if any(p.suffix.lower() == ".npy" for p in files):
            return tuple(sorted(files, key=lambda p: p.name))
        return scan_sequence(self.path, Fraction(24)).files

    def __len__(self) -> int:
        return len(self.files)

    def _read_raw(self, index: int) -> np.ndarray:
        path = self.files[index]
        if self._video is not None:
            arr = self._video.read(index)
        elif path.suffix.lower() == ".npy":
            # allow_pickle=False: a depth file must never run code.
            arr = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".exr":
            arr = read_exr(path)
        else:
            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise InputError(f"{path}: not a readable image.")
        if arr.ndim == 3 and arr.shape[2] > 1:
            chans = arr[..., :3].astype(np.float64)
            if not (
                np.allclose(chans[..., 0], chans[..., 1])
                and np.allclose(chans[..., 1], chans[..., 2])
            ):
                raise InputError(
                    f"{path}: a colour image, not a depth map; export depth as a single "
                    "grey channel (16-bit PNG or EXR)."
                )
            arr = arr[..., 0]
        elif arr.ndim == 3:
            arr = arr[..., 0]
        if arr.ndim != 2:
            raise InputError(f"{path}: expected a 2-D map, got shape {arr.shape}.")
        if self.expect_16bit and arr.dtype == np.uint8:
            raise InputError(
                f"{path}: 8-bit depth, but 16-bit was promised; 8 bits give only 256 depth "
                "steps. Export 16-bit PNG or EXR."
            )
        values = arr.astype(np.float32)
        if not np.isfinite(values).all():
            raise InputError(
                f"{path}: contains NaN or infinite values; fill the holes before using it."
            )
        return values

    def _disparity(self, values: np.ndarray, path: Path) -> np.ndarray:
        if self.units == "inverse-m":
            return values
        if self.units in ("mm", "m"):
            metres = values / 1000.0 if self.units == "mm" else values
            if (metres <= 0).any():
                raise InputError(
                    f"{path}: distances must be positive ({self.units}); found "
                    f"{float(metres.min()):g}. Zero usually marks 'no data': fill it first."
                )
            return 1.0 / metres
        lo, hi = self._relative_range()
        rel = (values - lo) / (hi - lo)
        return rel if self.near_is_bright else 1.0 - rel

    def _relative_range(self) -> tuple[float, float]:
        # One range for the whole sequence, so relative depth does not pump frame to frame.
        if self._range is None:
            lo, hi = np.inf, -np.inf
            for i in range(len(self.files)):
                v = self._read_raw(i)
                lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
            if hi <= lo and not self._from_vidrefocus:
                raise InputError(
                    f"{self.path}: every depth map is the same constant value; there is no "
                    "depth to focus on."
                )
            if hi <= lo:
                # Estimated depth of featureless frames (a black clip, a 1x1 video): one
                # plane, so everything is at the focus the keyframes give it.
                log.warning("%s: the estimated depth is flat: one depth plane.", self.path)
                hi = lo + 1.0
            self._range = (lo, hi)
        return self._range

    def __getitem__(self, index: int) -> Tensor:
        """Depth of frame `index`.

        Returns:
            (1, 1, H, W) float32 disparity: 1/m when metric, [0, 1] when relative.
        """
        if not 0 <= index < len(self.files):
            raise InputError(f"{self.path}: no depth map for frame {index}.")
        path = self.files[index]
        values = self._read_raw(index)
        constant = float(values.max()) == float(values.min())
        if self.units != "relative" and constant and not self._said_constant:
            self._said_constant = True
            log.warning(
                "%s: the depth map is constant: every pixel is at one distance (said once "
                "per sequence).",
                path,
            )
        disp = torch.from_numpy(np.ascontiguousarray(self._disparity(values, path)))[None, None]
        if self.size is not None and (disp.shape[-1], disp.shape[-2]) != self.size:
            if index == 0:
                log.warning(
                    "%s: depth is %dx%d, the video %dx%d; resampling the depth.",
                    self.path,
                    disp.shape[-1],
                    disp.shape[-2],
                    *self.size,
                )
            disp = F.interpolate(disp, size=(self.size[1], self.size[0]), mode="bilinear")
        return disp.float()


class _GreyVideo:
    """A depth map per frame from a grey video (e.g. FFV1 gray16le), read in order.

    Values are the stream's code values (0-65535 for 16 bits, 0-255 for 8), so a 16-bit video
    of millimetres reads like a 16-bit PNG sequence of millimetres. Frames are decoded in one
    pass when asked for in order (as the render does); another index seeks (random access).
    """

    def __init__(self, path: Path) -> None:
        from vidrefocus.io.random_access import RandomAccessReader

        self.path = path
        self._random = RandomAccessReader(path)
        self.bits = self._random.video.bit_depth
        self._stream = None
        self._next = 0

    def __len__(self) -> int:
        return len(self._random)

    def read(self, index: int) -> np.ndarray:
        from vidrefocus.io.reader import VideoReader

        if self._stream is None or index != self._next:
            if index == 0:
                self._stream = iter(VideoReader(self.path))
            else:
                self._stream = None
                frame = self._random.at_indices([index])[0]
                self._next = index + 1
                return self._codes(frame.rgb, index)
        frame = next(self._stream)
        self._next = index + 1
        return self._codes(frame.rgb, index)

    def _codes(self, rgb: Tensor, index: int) -> np.ndarray:
        values = rgb.numpy().astype(np.float64) * (2**self.bits - 1)
        if not (
            np.abs(values[0] - values[1]).max() < 1.5 and np.abs(values[1] - values[2]).max() < 1.5
        ):
            raise InputError(
                f"{self.path}: frame {index} is in colour, not a depth map; encode depth as a "
                "grey video (e.g. FFV1 gray16le) or a 16-bit PNG sequence."
            )
        codes = np.round(values[0])
        return codes.astype(np.uint16 if self.bits > 8 else np.uint8)
