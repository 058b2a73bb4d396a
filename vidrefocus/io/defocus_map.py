"""Defocus maps on disk: a 16-bit PNG (radius px x 256) or a float32 EXR (radius px)."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from torch import Tensor

from vidrefocus.errors import InputError

__all__ = ["DEFOCUS_MAP_EXTENSIONS", "DEFOCUS_PNG_SCALE", "write_defocus_map"]

DEFOCUS_MAP_EXTENSIONS = (".png", ".exr")
# PNG code values per px of blur radius: 1/256 px steps, up to 65535 / 256 = 255.996 px.
DEFOCUS_PNG_SCALE = 256
_PNG_DESCRIPTION = (
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


def _exr_bytes(radius: np.ndarray) -> bytes:
    # OpenCV wheels may lack OpenEXR; FFmpeg's EXR encoder (through PyAV) is always there.
    ctx = av.CodecContext.create("exr", "w")
    ctx.height, ctx.width = radius.shape
    ctx.pix_fmt = "grayf32le"
    ctx.time_base = Fraction(1, 1)
    ctx.options = {"compression": "zip16"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(radius), format="grayf32le")
    frame.pts = 0
    packets = [*ctx.encode(frame), *ctx.encode(None)]
    return b"".join(bytes(p) for p in packets)


def write_defocus_map(path: Path, radius_px: Tensor) -> None:
    """Write a defocus map; the extension picks the encoding.

    `.png`: one 16-bit grey channel, value = round(radius px * 256), clipped to 65535
    (255.996 px); a tEXt chunk ("Description") states the scale. `.exr`: one float32 channel
    "Y" in px, lossless (ZIP).

    Args:
        path: target file, .png or .exr.
        radius_px: (1, H, W) or (H, W) float blur radius in px, >= 0.
    Raises:
        InputError: another extension, or the file cannot be written.

    Example:
        >>> write_defocus_map(Path("map.png"), torch.full((1, 48, 64), 2.5))  # doctest: +SKIP
    """
    ext = path.suffix.lower()
    radius = radius_px.detach().to("cpu").float().reshape(radius_px.shape[-2:]).numpy()
    if ext == ".png":
        codes = np.clip(np.round(radius * DEFOCUS_PNG_SCALE), 0, 65535).astype(np.uint16)
        ok, png = cv2.imencode(".png", codes)
        if not ok:
            raise InputError(f"{path}: could not encode the defocus map as PNG.")
        data = _png_with_text(png.tobytes(), "Description", _PNG_DESCRIPTION)
    elif ext == ".exr":
        data = _exr_bytes(radius.astype(np.float32))
    else:
        raise InputError(
            f"{path}: a defocus map is written as {' or '.join(DEFOCUS_MAP_EXTENSIONS)} "
            f"(got '{ext or 'no extension'}')."
        )
    try:
        path.write_bytes(data)
    except OSError as err:
        raise InputError(f"{path}: could not write the defocus map ({err.strerror}).") from err
