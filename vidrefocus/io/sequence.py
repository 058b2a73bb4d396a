"""Image sequences (PNG, TIFF, EXR, JPEG folders) as video: listing, reading and writing frames."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidrefocus.color import linear_to_srgb, srgb_to_linear
from vidrefocus.errors import InputError, ProcessingError
from vidrefocus.io.maps import exr_bytes, read_exr

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageLayout",
    "ImageSequence",
    "image_family",
    "image_layout",
    "open_sequence",
    "read_image",
    "scan_sequence",
    "single_image",
    "write_image",
]

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".exr", ".jpg", ".jpeg")
_NUMBER_RE = re.compile(r"(\d+)(?=\.[^.]+$)")


@dataclass(frozen=True)
class ImageSequence:
    """A numbered image sequence in one folder.

    Attributes:
        folder: the folder holding the frames.
        files: frame paths in frame-number order.
        numbers: each file's frame number (the trailing digits of its stem).
        time_base: 1 / frame rate; a frame's pts is its number minus the first number, so a
            missing file shows as a gap in time, never as a shifted frame.
    """

    folder: Path
    files: tuple[Path, ...]
    numbers: tuple[int, ...]
    time_base: Fraction

    @property
    def pts(self) -> list[int]:
        return [n - self.numbers[0] for n in self.numbers]

    @property
    def missing(self) -> list[int]:
        """Frame numbers absent from the run between the first and last file."""
        present = set(self.numbers)
        return [n for n in range(self.numbers[0], self.numbers[-1] + 1) if n not in present]


def scan_sequence(folder: Path, fps: Fraction = Fraction(24)) -> ImageSequence:
    """List a folder of numbered images as a sequence.

    Args:
        folder: a folder with files like `shot_0001.png`, `shot_0002.png`, ...
        fps: frame rate to assign (an image sequence has none of its own).
    Returns:
        The sequence.
    Raises:
        InputError: no images, several extensions mixed, or files without a frame number.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder.")
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    if not images:
        raise InputError(
            f"{folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}). "
            "Point at a folder of numbered frames such as shot_0001.png."
        )
    kinds = {p.suffix.lower().replace(".tiff", ".tif").replace(".jpeg", ".jpg") for p in images}
    if len(kinds) > 1:
        raise InputError(
            f"{folder}: mixes image types ({', '.join(sorted(kinds))}); keep one type per folder."
        )
    numbered = []
    for p in images:
        m = _NUMBER_RE.search(p.name)
        if m is None:
            raise InputError(
                f"{p}: no frame number in the name; name frames like shot_0001{p.suffix}."
            )
        numbered.append((int(m.group(1)), p))
    numbered.sort()
    numbers = tuple(n for n, _ in numbered)
    if len(set(numbers)) != len(numbers):
        raise InputError(f"{folder}: two files share a frame number; keep one file per number.")
    return ImageSequence(
        folder=folder,
        files=tuple(p for _, p in numbered),
        numbers=numbers,
        time_base=1 / Fraction(fps),
    )


def single_image(path: Path, fps: Fraction = Fraction(24)) -> ImageSequence:
    """One image file as a sequence of one frame at pts 0."""
    return ImageSequence(
        folder=path.parent, files=(path,), numbers=(0,), time_base=1 / Fraction(fps)
    )


def open_sequence(path: Path, fps: Fraction = Fraction(24)) -> ImageSequence:
    """A folder of numbered images (`scan_sequence`) or one image (`single_image`)."""
    path = Path(path)
    return scan_sequence(path, fps) if path.is_dir() else single_image(path, fps)


def read_image(path: Path) -> tuple[Tensor, int]:
    """Read one image as a display-referred RGB frame.

    8- and 16-bit files are scaled by their full code range; float files (EXR, float TIFF) are
    taken as scene-linear and encoded with the sRGB curve, so every frame follows the same
    display-referred convention. Alpha is dropped; grey is expanded to three channels.

    Args:
        path: image file.
    Returns:
        ((3, H, W) float32 in [0, 1] (float inputs may exceed 1), bits per sample: 8, 16 or 32).
    Raises:
        InputError: unreadable file, or NaN/inf values.
    """
    if path.suffix.lower() == ".exr":
        arr = read_exr(path)  # already R, G, B order
    else:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise InputError(f"{path}: not an image OpenCV can read (is it truncated?).")
        if arr.ndim == 3 and arr.shape[2] >= 3:
            arr = np.concatenate([arr[:, :, 2::-1], arr[:, :, 3:]], axis=2)  # OpenCV: BGR(A)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        bits, rgb = 8, torch.from_numpy(arr.astype(np.float32) / 255.0)
    elif arr.dtype == np.uint16:
        bits, rgb = 16, torch.from_numpy(arr.astype(np.float32) / 65535.0)
    elif arr.dtype in (np.float32, np.float16, np.float64):
        values = arr.astype(np.float32)
        if not np.isfinite(values).all():
            raise InputError(
                f"{path}: contains NaN or infinite values; fix or remove those pixels first."
            )
        bits, rgb = 32, linear_to_srgb(torch.from_numpy(values))
    else:
        raise InputError(f"{path}: unsupported sample type {arr.dtype}; use 8/16-bit or float.")
    rgb = rgb.permute(2, 0, 1).contiguous()
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1).contiguous()
    return rgb, bits


@dataclass(frozen=True)
class ImageLayout:
    """How an image file stores its samples, so a processed copy can be stored the same way.

    Attributes:
        channels: 1 (grey), 3 (RGB) or 4 (RGB + alpha; OpenCV reads grey + alpha as this too).
        bits: 8 or 16 (integer samples) or 32 (float samples).
        alpha: (1, H, W) float32 alpha plane (in [0, 1] for integer files), or None.
    """

    channels: int
    bits: int
    alpha: Tensor | None = None


def image_layout(path: Path) -> ImageLayout:
    """The channels, bit depth and alpha plane of an image file.

    Raises:
        InputError: unreadable file or unsupported sample type.
    """
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"{path}: not an image OpenCV can read (is it truncated?).")
    if arr.dtype == np.uint8:
        bits, scale = 8, 255.0
    elif arr.dtype == np.uint16:
        bits, scale = 16, 65535.0
    elif arr.dtype in (np.float16, np.float32, np.float64):
        bits, scale = 32, 1.0  # float alpha is kept as stored
    else:
        raise InputError(f"{path}: unsupported sample type {arr.dtype}; use 8/16-bit or float.")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    alpha = None
    if channels == 4:
        alpha = torch.from_numpy(arr[:, :, 3].astype(np.float32) / np.float32(scale))[None]
    return ImageLayout(channels=channels, bits=bits, alpha=alpha)


def image_family(path: Path) -> str:
    """The format an image extension names: ".png", ".tif", ".exr" or ".jpg" ("" if none)."""
    ext = path.suffix.lower().replace(".tiff", ".tif").replace(".jpeg", ".jpg")
    return ext if ext in IMAGE_EXTENSIONS else ""


def write_image(
    path: Path, rgb: Tensor, bits: int, *, alpha: Tensor | None = None, grey: bool = False
) -> None:
    """Write a display-referred RGB frame as an image.

    Args:
        path: target file; the extension picks the format (.png, .tif, .exr, .jpg).
        rgb: (3, H, W) float in [0, 1], display-referred.
        bits: 8 or 16 for integer formats; 32 writes float32 linear light (.tif; EXR is
            always float32 linear light).
        alpha: (1, H, W) float alpha plane to store as a fourth channel (not for JPEG), in
            [0, 1] for integer formats, stored unconverted in float ones.
        grey: store one channel, the mean of R, G and B (a grey source stays grey).
    Raises:
        InputError: unsupported extension or bit depth for it, or the file cannot be written.
    """
    ext = path.suffix.lower()
    hwc = rgb.detach().to("cpu", torch.float32).permute(1, 2, 0)
    if grey:
        hwc = hwc.mean(dim=2, keepdim=True)
    linear = ext == ".exr" or (bits == 32 and ext in (".tif", ".tiff"))
    if linear:
        arr = srgb_to_linear(hwc).numpy().astype(np.float32)
    elif bits == 16 and ext in (".png", ".tif", ".tiff"):
        arr = (hwc.clamp(0, 1) * 65535.0).round().numpy().astype(np.uint16)
    elif bits == 8 and ext in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        arr = (hwc.clamp(0, 1) * 255.0).round().numpy().astype(np.uint8)
    else:
        raise InputError(f"{path}: cannot write {bits}-bit {ext or 'files without extension'}.")
    if alpha is not None:
        if ext in (".jpg", ".jpeg"):
            raise InputError(f"{path}: JPEG has no alpha channel; write .png or .tif.")
        plane = alpha.detach().to("cpu", torch.float32)[0].numpy()
        if not linear:
            plane = (np.clip(plane, 0, 1) * np.iinfo(arr.dtype).max).round()
        if grey:
            arr = np.repeat(arr, 3, axis=2)  # OpenCV writes grey + alpha as BGRA
        arr = np.concatenate([arr, plane.astype(arr.dtype)[:, :, None]], axis=2)
    if ext == ".exr":
        try:
            path.write_bytes(exr_bytes(arr[:, :, 0] if arr.shape[2] == 1 else arr))
        except OSError as err:
            # The output folder was checked before the job: a write failing now is the disk.
            raise ProcessingError(f"{path}: could not write the image ({err.strerror}).") from err
        return
    if arr.shape[2] >= 3:
        arr = np.concatenate([arr[:, :, 2::-1], arr[:, :, 3:]], axis=2)  # OpenCV: BGR(A)
    if not cv2.imwrite(str(path), np.ascontiguousarray(arr)):
        raise ProcessingError(f"{path}: could not write the image (is the disk full?).")
