"""Colour math: Y'CbCr matrices and ranges, sRGB-style transfer curves, linear light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from vidrefocus.errors import InputError

Array = TypeVar("Array", np.ndarray, Tensor)

__all__ = [
    "MATRIX_COEFFS",
    "YCbCrSpec",
    "linear_to_srgb",
    "rgb_to_ycbcr",
    "srgb_to_linear",
    "ycbcr_to_rgb",
]

# (Kr, Kb) luma coefficients per matrix, from ITU-T H.273 table 4. "bt470bg" and "smpte170m"
# are both BT.601; "fcc" and "smpte240m" are the old NTSC variants some cameras still tag.
MATRIX_COEFFS: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "bt601": (0.299, 0.114),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
}


@dataclass(frozen=True)
class YCbCrSpec:
    """How integer Y'CbCr codes map to R'G'B' in [0, 1].

    Attributes:
        matrix: a key of `MATRIX_COEFFS` (FFmpeg's colorspace names).
        full_range: True for full ("pc", JPEG) range, False for limited ("tv") range.
        bits: bits per sample, 8 to 16.
    """

    matrix: str = "bt709"
    full_range: bool = False
    bits: int = 8

    def __post_init__(self) -> None:
        if self.matrix not in MATRIX_COEFFS:
            raise InputError(
                f"unknown colour matrix {self.matrix!r}; known: {', '.join(sorted(MATRIX_COEFFS))}."
            )
        if not 8 <= self.bits <= 16:
            raise InputError(f"bit depth {self.bits} is not supported; use 8 to 16 bits.")

    def scales(self) -> tuple[float, float, float, float]:
        """Return (luma offset, luma scale, chroma offset, chroma scale) in integer codes.

        ITU-T H.273, equations 20-25: limited range puts black at 16 * 2^(n-8) with 219 * 2^(n-8)
        codes of luma and 224 * 2^(n-8) of chroma; full range uses all 2^n - 1 codes.
        """
        n = self.bits
        if self.full_range:
            top = float((1 << n) - 1)
            return 0.0, top, float(1 << (n - 1)), top
        step = float(1 << (n - 8))
        return 16.0 * step, 219.0 * step, 128.0 * step, 224.0 * step


def ycbcr_to_rgb(y: Array, cb: Array, cr: Array, spec: YCbCrSpec) -> tuple[Array, Array, Array]:
    """Integer-coded Y'CbCr planes to R'G'B' (display-referred) planes.

    Pure arithmetic, so it takes numpy arrays or tensors alike: the I/O layer calls it with
    numpy, whose single-threaded element-wise loops do not fight the decoder, the encoder and
    the models' thread pools for the cores.

    Args:
        y: (..., H, W) float32 luma codes.
        cb: (..., H, W) float32 blue-difference codes at full resolution (upsample first).
        cr: (..., H, W) float32 red-difference codes at full resolution.
        spec: matrix, range and bit depth of the codes.
    Returns:
        (R', G', B'), each (..., H, W) float32, nominally in [0, 1]. Codes outside the R'G'B'
        cube (super-whites, saturated chroma) decode slightly outside it and are kept, not
        clipped, so that an untouched frame encodes back to exactly the same codes.

    Example:
        >>> y = np.full((1, 1), 235.0); c = np.full((1, 1), 128.0)
        >>> [float(v[0, 0]) for v in ycbcr_to_rgb(y, c, c, YCbCrSpec())]
        [1.0, 1.0, 1.0]
    """
    kr, kb = MATRIX_COEFFS[spec.matrix]
    kg = 1.0 - kr - kb
    y0, ys, c0, cs = spec.scales()
    luma = (y - y0) * (1.0 / ys)
    pb = (cb - c0) * (1.0 / cs)
    pr = (cr - c0) * (1.0 / cs)
    r = luma + (2.0 * (1.0 - kr)) * pr
    b = luma + (2.0 * (1.0 - kb)) * pb
    g = (luma - kr * r - kb * b) * (1.0 / kg)
    return r, g, b


def rgb_to_ycbcr(r: Array, g: Array, b: Array, spec: YCbCrSpec) -> tuple[Array, Array, Array]:
    """R'G'B' planes to Y'CbCr codes (float, not yet rounded or subsampled).

    The exact inverse of `ycbcr_to_rgb`, so decode -> encode of an unchanged frame gives back
    the same integer codes. Takes numpy arrays or tensors.

    Args:
        r, g, b: (..., H, W) float32, nominally in [0, 1], display-referred.
        spec: matrix, range and bit depth of the codes.
    Returns:
        (Y', Cb, Cr), each (..., H, W) float32 in integer code units.
    """
    kr, kb = MATRIX_COEFFS[spec.matrix]
    kg = 1.0 - kr - kb
    luma = kr * r + kg * g + kb * b
    pb = (b - luma) * (1.0 / (2.0 * (1.0 - kb)))
    pr = (r - luma) * (1.0 / (2.0 * (1.0 - kr)))
    y0, ys, c0, cs = spec.scales()
    return luma * ys + y0, pb * cs + c0, pr * cs + c0


def srgb_to_linear(x: Tensor) -> Tensor:
    """IEC 61966-2-1 sRGB decoding curve: display-referred [0, 1] to linear light.

    Args:
        x: any shape, float, display-referred (values above 1 follow the power segment).
    Returns:
        Same shape, float, linear light.
    """
    x = x.clamp_min(0.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """IEC 61966-2-1 sRGB encoding curve, the inverse of `srgb_to_linear`.

    Args:
        x: any shape, float, linear light (not clipped: values above 1 stay above 1).
    Returns:
        Same shape, float, display-referred.
    """
    x = x.clamp_min(0.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)
