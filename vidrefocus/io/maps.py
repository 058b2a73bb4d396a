"""Per-pixel maps on disk: 16-bit PNG (fixed-point, the scale in a tEXt chunk) or float32 EXR.

Two kinds are written: defocus maps (blur radius in px, from DeblurNet) and depth maps
(`vidrefocus depth`). Both go through `write_map`, so a compositor reads them the same way.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from torch import Tensor

from vidrefocus.errors import InputError, ProcessingError

__all__ = [
    "DEFOCUS_MAP_EXTENSIONS",
    "DEFOCUS_PNG_SCALE",
    "MAP_EXTENSIONS",
    "exr_bytes",
    "read_exr",
    "write_defocus_map",
    "write_map",
]

MAP_EXTENSIONS = (".png", ".exr")
DEFOCUS_MAP_EXTENSIONS = MAP_EXTENSIONS
# PNG code values per px of blur radius: 1/256 px steps, up to 65535 / 256 = 255.996 px.
DEFOCUS_PNG_SCALE = 256
_DEFOCUS_DESCRIPTION = (
    f"vidrefocus defocus map: blur radius in px = value / {DEFOCUS_PNG_SCALE}; "
    f"65535 means {65535 / DEFOCUS_PNG_SCALE:.3f} px or more (clipped)"
)


def _png_with_text(png: bytes, keyword: str, text: str) -> bytes:
    # A tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk), so any PNG
    # reader shows the scale; OpenCV cannot write text chunks itself.
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]


_EXR_FORMATS = {1: "grayf32le", 3: "gbrpf32le", 4: "gbrapf32le"}


def exr_bytes(values: np.ndarray) -> bytes:
    """A lossless (ZIP) float32 EXR file of (H, W) grey or (H, W, 3|4) RGB(A) values.

    OpenCV wheels may lack OpenEXR (this project's does); FFmpeg's EXR codec, through PyAV,
    is always there.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    channels = 1 if values.ndim == 2 else values.shape[2]
    ctx = av.CodecContext.create("exr", "w")
    ctx.height, ctx.width = values.shape[:2]
    ctx.pix_fmt = _EXR_FORMATS[channels]
    ctx.time_base = Fraction(1, 1)
    ctx.options = {"compression": "zip16"}
    frame = av.VideoFrame.from_ndarray(values, format=ctx.pix_fmt)
    frame.pts = 0
    packets = [*ctx.encode(frame), *ctx.encode(None)]
    return b"".join(bytes(p) for p in packets)


def read_exr(path: Path) -> np.ndarray:
    """An EXR file's pixels (half or float, any compression FFmpeg decodes) as float32.

    Returns:
        (H, W) for one channel, else (H, W, C) in R, G, B(, A) order.
    Raises:
        InputError: the file is missing or not a readable EXR image.
    """
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            arr = frame.to_ndarray()
    except (av.FFmpegError, StopIteration, OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable EXR image ({err}).") from err
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr.astype(np.float32, copy=False)


def write_map(
    path: Path, values: Tensor, *, png_scale: float, description: str, what: str = "map"
) -> None:
    """Write one map; the extension picks the encoding.

    `.png`: one 16-bit grey channel, code = round(value * png_scale) clipped to [0, 65535],
    with `description` in a tEXt chunk ("Description"). `.exr`: one float32 channel "Y",
    lossless (ZIP), the values as they are.

    Args:
        path: target file, .png or .exr.
        values: (1, H, W) or (H, W) float values.
        png_scale: PNG code values per unit of `values`.
        description: what the PNG's code values mean.
        what: the kind of map, for error messages.
    Raises:
        InputError: another extension, or the file cannot be written.
    """
    ext = path.suffix.lower()
    array = values.detach().to("cpu").float().reshape(values.shape[-2:]).numpy()
    if ext == ".png":
        codes = np.clip(np.round(array * png_scale), 0, 65535).astype(np.uint16)
        ok, png = cv2.imencode(".png", codes)
        if not ok:
            raise InputError(f"{path}: could not encode the {what} as PNG.")
        data = _png_with_text(png.tobytes(), "Description", description)
    elif ext == ".exr":
        data = exr_bytes(array)
    else:
        raise InputError(
            f"{path}: a {what} is written as {' or '.join(MAP_EXTENSIONS)} "
            f"(got '{ext or 'no extension'}')."
        )
    try:
        path.write_bytes(data)
    except OSError as err:
        # The output folder was checked before the job: a write failing now is the disk.
        raise ProcessingError(f"{path}: could not write the {what} ({err.strerror}).") from err


def write_defocus_map(path: Path, radius_px: Tensor) -> None:
    """Write a defocus map: `.png` radius px x 256 (255.996 px at most), `.exr` float32 px.

    Args:
        path: target file, .png or .exr.
        radius_px: (1, H, W) or (H, W) float blur radius in px, >= 0.
    Raises:
        InputError: another extension, or the file cannot be written.

    Example:
        >>> write_defocus_map(Path("map.png"), torch.full((1, 48, 64), 2.5))  # doctest: +SKIP
    """
    write_map(
        path, radius_px, png_scale=DEFOCUS_PNG_SCALE, description=_DEFOCUS_DESCRIPTION,
        what="defocus map",
    )  # fmt: skip
