"""Pixel formats: exact conversion between decoded planes and the (3, H, W) float frame."""

from __future__ import annotations

import re
from dataclasses import dataclass

import av
import numpy as np
import torch
from torch import Tensor

from vidrefocus.color import YCbCrSpec, rgb_to_ycbcr, ycbcr_to_rgb
from vidrefocus.errors import InputError

__all__ = [
    "PixelLayout",
    "frame_to_rgb",
    "layout_of",
    "rgb_to_frame",
]

_PLANAR_RE = re.compile(
    r"^(?P<kind>yuva?|yuvj|gbra?p|gray)(?P<sub>420|422|444|440|411|410)?p?(?P<bits>9|10|12|14|16)?"
    r"(?P<end>le|be)?$"
)


@dataclass(frozen=True)
class PixelLayout:
    """A planar pixel format that vidrefocus converts itself, without swscale.

    Attributes:
        name: FFmpeg pix_fmt name of the planar format (e.g. "yuv420p10le").
        kind: "yuv", "rgb" (gbrp planes) or "gray".
        bits: bits per sample.
        shift_x: log2 of horizontal chroma subsampling (1 for 4:2:0 and 4:2:2).
        shift_y: log2 of vertical chroma subsampling (1 for 4:2:0).
        full_range_only: True for the deprecated "yuvj" formats, which are full range by name.
    """

    name: str
    kind: str
    bits: int
    shift_x: int = 0
    shift_y: int = 0
    full_range_only: bool = False

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("<u2") if self.bits > 8 else np.dtype("u1")


def _planar_name(kind: str, sub: str, bits: int) -> str:
    suffix = "" if bits == 8 else f"{bits}le"
    if kind == "gray":
        return f"gray{suffix}"
    if kind == "rgb":
        return f"gbrp{suffix}"
    return f"yuv{sub}p{suffix}"


_SUB_SHIFTS = {"444": (0, 0), "422": (1, 0), "420": (1, 1), "440": (0, 1), "411": (2, 0)}
_SHIFT_SUBS = {v: k for k, v in _SUB_SHIFTS.items()}


def layout_of(pix_fmt: str) -> PixelLayout:
    """The planar layout a stream of `pix_fmt` is decoded from (and encoded to).

    Packed and semi-planar formats (rgb24, nv12, p010le, yuyv422, ...) map to the planar format
    with the same subsampling and depth; swscale repacks them losslessly. Alpha is dropped.

    Args:
        pix_fmt: an FFmpeg pixel format name.
    Returns:
        The planar layout.
    Raises:
        InputError: if the format is unknown or not a video format we can represent.
    """
    m = _PLANAR_RE.match(pix_fmt)
    if m and m["end"] != "be":
        kind = {"yuva": "yuv", "yuvj": "yuv", "gbrap": "rgb", "gbrp": "rgb"}.get(
            m["kind"], m["kind"]
        )
        bits = int(m["bits"] or 8)
        sub = m["sub"] or "444"
        if kind == "yuv" and sub not in _SUB_SHIFTS:
            sub = "444"
        sx, sy = _SUB_SHIFTS[sub] if kind == "yuv" else (0, 0)
        return PixelLayout(
            name=_planar_name(kind, sub, bits),
            kind=kind,
            bits=bits,
            shift_x=sx,
            shift_y=sy,
            full_range_only=m["kind"] == "yuvj",
        )
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError) as err:
        raise InputError(f"unknown pixel format {pix_fmt!r}.") from err
    comps = [c for c in fmt.components if not c.is_alpha]
    bits = max(8, max((c.bits for c in comps), default=8))
    bits = min(16, bits if bits in (8, 9, 10, 12, 14, 16) else 16)
    if fmt.is_rgb or fmt.has_palette:
        return PixelLayout(name=_planar_name("rgb", "444", bits), kind="rgb", bits=bits)
    if len(comps) == 1:
        return PixelLayout(name=_planar_name("gray", "", bits), kind="gray", bits=bits)
    # chroma_width/height give the subsampled plane size of a 64x64 frame.
    sx = (64 // fmt.chroma_width(64)).bit_length() - 1
    sy = (64 // fmt.chroma_height(64)).bit_length() - 1
    sub = _SHIFT_SUBS.get((sx, sy), "444")
    sx, sy = _SUB_SHIFTS[sub]
    return PixelLayout(
        name=_planar_name("yuv", sub, bits), kind="yuv", bits=bits, shift_x=sx, shift_y=sy
    )


def _plane_array(plane: av.video.plane.VideoPlane, dtype: np.dtype) -> np.ndarray:
    # Rows are padded to line_size bytes; the view keeps only the visible samples.
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
    return rows[:, : plane.width]


def _upsample(c: np.ndarray, sx: int, sy: int, h: int, w: int) -> np.ndarray:
    # Nearest-neighbour chroma upsampling: its box-average inverse in `rgb_to_frame` makes
    # decode -> encode of an untouched frame give back the exact chroma codes.
    if sx:
        c = np.repeat(c, 1 << sx, axis=1)
    if sy:
        c = np.repeat(c, 1 << sy, axis=0)
    return c[:h, :w]


def _downsample(c: np.ndarray, sx: int, sy: int) -> np.ndarray:
    fx, fy = 1 << sx, 1 << sy
    if fx == 1 and fy == 1:
        return c
    h, w = c.shape
    pad_h, pad_w = (-h) % fy, (-w) % fx
    if pad_h or pad_w:
        c = np.pad(c, ((0, pad_h), (0, pad_w)), mode="edge")
    # Strided sums are several times faster than a reshape + mean over two axes.
    total = np.zeros((c.shape[0] // fy, c.shape[1] // fx), dtype=np.float32)
    for dy in range(fy):
        for dx in range(fx):
            total += c[dy::fy, dx::fx]
    return total * np.float32(1.0 / (fx * fy))


def frame_to_rgb(frame: av.VideoFrame, layout: PixelLayout, spec: YCbCrSpec) -> Tensor:
    """Decode an `av.VideoFrame` to R'G'B' with the stream's own matrix and range.

    Args:
        frame: a decoded frame in any pixel format; it is repacked to `layout.name` if needed.
        layout: the planar layout of the stream (`layout_of(stream pix_fmt)`).
        spec: matrix, range and bit depth used for Y'CbCr (ignored for RGB and gray).
    Returns:
        (3, H, W) float32, display-referred, in stored (not rotated) orientation; nominally in
        [0, 1], with out-of-gamut source codes kept slightly outside (see `ycbcr_to_rgb`).
    """
    if frame.format.name != layout.name:
        frame = frame.reformat(format=layout.name)
    planes = [_plane_array(p, layout.dtype).astype(np.float32) for p in frame.planes]
    h, w = frame.height, frame.width
    if layout.kind == "rgb":
        g, b, r = planes[:3]
        rgb = np.stack((r, g, b)) * np.float32(1.0 / ((1 << layout.bits) - 1))
    elif layout.kind == "gray":
        y0, ys, _, _ = spec.scales()
        rgb = np.broadcast_to((planes[0] - y0) * np.float32(1.0 / ys), (3, h, w)).copy()
    else:
        cb = _upsample(planes[1], layout.shift_x, layout.shift_y, h, w)
        cr = _upsample(planes[2], layout.shift_x, layout.shift_y, h, w)
        rgb = np.stack(ycbcr_to_rgb(planes[0], cb, cr, spec))
    return torch.from_numpy(rgb.astype(np.float32, copy=False))


def _quantise(x: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.rint(x), 0, top).astype("<u2" if bits > 8 else "u1")


def rgb_to_frame(rgb: Tensor, layout: PixelLayout, spec: YCbCrSpec) -> av.VideoFrame:
    """Encode an R'G'B' frame into an `av.VideoFrame` of `layout`'s planar format.

    Args:
        rgb: (3, H, W) float, display-referred, stored orientation; values outside [0, 1]
            map to the nearest valid codes.
        layout: target planar layout.
        spec: matrix, range and bit depth for Y'CbCr targets.
    Returns:
        A frame whose planes hold the rounded integer codes (pts not set).
    """
    arr = rgb.detach().to("cpu", torch.float32).numpy()
    _, h, w = arr.shape
    if layout.kind == "rgb":
        top = np.float32((1 << layout.bits) - 1)
        planes = [_quantise(arr[i] * top, layout.bits) for i in (1, 2, 0)]
    elif layout.kind == "gray":
        y, _, _ = rgb_to_ycbcr(arr[0], arr[1], arr[2], spec)
        planes = [_quantise(y, layout.bits)]
    else:
        y, cb, cr = rgb_to_ycbcr(arr[0], arr[1], arr[2], spec)
        planes = [
            _quantise(y, layout.bits),
            _quantise(_downsample(cb, layout.shift_x, layout.shift_y), layout.bits),
            _quantise(_downsample(cr, layout.shift_x, layout.shift_y), layout.bits),
        ]
    frame = av.VideoFrame(w, h, layout.name)
    for plane, data in zip(frame.planes, planes, strict=True):
        row_bytes = data.shape[1] * data.itemsize
        if plane.line_size != row_bytes:
            padded = np.zeros((data.shape[0], plane.line_size // data.itemsize), dtype=data.dtype)
            padded[:, : data.shape[1]] = data
            data = padded
        plane.update(np.ascontiguousarray(data).tobytes())
    return frame
