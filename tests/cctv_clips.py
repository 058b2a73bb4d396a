"""CCTV-like test clips: a moving, textured yard with a burnt-in timestamp, made with ffmpeg.

Surveillance footage is what real analysts bring: SD or CIF frames with non-square pixels,
MPEG-2 or H.264 that is often interlaced, low bitrates, and an on-screen display (date, time,
camera name) burnt in by the recorder. The clips here imitate that, deterministically (same
bytes on every run of the same ffmpeg): frames are computed with numpy and OpenCV, the overlay
drawn with `cv2.putText` (the ffmpeg build may lack drawtext), and raw RGB is piped into the
ffmpeg binary that vidrefocus itself uses. Nothing here imports the code under test except
`ffmpeg_exe()`, as in `media.py`.

An interlaced kind renders each field at its own moment (top field at t, bottom field half a
frame later, like a tube or CCD camera), so moving edges comb as in real footage.
`blur_radius_px` defocuses the scene before the overlay is drawn: the scene soft, the text
sharp on top, like a real camera's on-screen display over a misfocused lens.

Tests import it as `from cctv_clips import make_cctv_clip` (tests/ is on pytest's path).

Example:
    >>> clip = make_cctv_clip(tmp_path, "h264_lowrate", blur_radius_px=3)  # doctest: +SKIP
    >>> clip.path.name, clip.kind.sar, clip.boxes
    ('h264_lowrate_disk3.mp4', Fraction(12, 11), [(15, 19, 249, 18), (537, 544, 152, 18)])
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from vidrefocus.io.writer import ffmpeg_exe

__all__ = ["CCTV_KINDS", "CctvClip", "CctvKind", "make_cctv_clip", "render_cctv_frames"]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class CctvKind:
    """One kind of recorder output.

    Attributes:
        name: the key in `CCTV_KINDS`.
        suffix: file extension (picks the container).
        width, height: stored frame size in pixels.
        sar: sample (pixel) aspect ratio written to the stream.
        field_order: what `probe` reports: "tt" for top field first, "progressive", or None
            where the format stores no field order (MPEG-4 Part 2 in AVI).
        codec: the decoder name `probe` reports.
        encode: ffmpeg output options for the video stream (codec, bitrate, GOP).
    """

    name: str
    suffix: str
    width: int
    height: int
    sar: Fraction
    field_order: str | None
    codec: str
    encode: tuple[str, ...]

    @property
    def interlaced(self) -> bool:
        return self.field_order in ("tt", "bb", "tb", "bt")


# MPEG-2 stores a display aspect ratio code (4:3, 16:9...), not a pixel aspect ratio, so 704
# wide frames can only say 12:11; 720x576 at 16:15 is PAL D1, exactly 4:3, what DVRs export.
# The 704x576 16:15 case is the interlaced H.264 kind (H.264 stores any ratio).
CCTV_KINDS: dict[str, CctvKind] = {
    "mpeg2_interlaced": CctvKind(
        name="mpeg2_interlaced",
        suffix=".mpg",
        width=720,
        height=576,
        sar=Fraction(16, 15),
        field_order="tt",
        codec="mpeg2video",
        encode=("-c:v", "mpeg2video", "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "1200k",
                "-g", "12", "-bf", "2", "-flags", "+ildct+ilme+bitexact", "-alternate_scan", "1",
                "-f", "mpeg"),
    ),
    "mpeg4_cif": CctvKind(
        name="mpeg4_cif",
        suffix=".avi",
        width=352,
        height=288,
        sar=Fraction(12, 11),
        field_order=None,
        codec="mpeg4",
        encode=("-c:v", "mpeg4", "-vtag", "XVID", "-b:v", "256k", "-g", "25", "-bf", "0",
                "-flags", "+bitexact"),
    ),
    "h264_lowrate": CctvKind(
        name="h264_lowrate",
        suffix=".mp4",
        width=704,
        height=576,
        sar=Fraction(12, 11),
        field_order="progressive",
        codec="h264",
        encode=("-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-b:v", "384k",
                "-maxrate", "384k", "-bufsize", "768k", "-g", "25", "-bf", "0",
                "-flags", "+bitexact"),
    ),
    "h264_interlaced": CctvKind(
        name="h264_interlaced",
        suffix=".mp4",
        width=704,
        height=576,
        sar=Fraction(16, 15),
        field_order="tt",
        codec="h264",
        encode=("-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-b:v", "768k",
                "-maxrate", "768k", "-bufsize", "1536k", "-g", "25", "-bf", "2",
                "-flags", "+ildct+ilme+bitexact", "-x264-params", "tff=1"),
    ),
}  # fmt: skip

FPS = Fraction(25)
# The recorder's clock at frame 0: the seconds digit ticks over during a 12-frame clip.
_CLOCK_START_S = 10 * 3600 + 20 * 60 + 29.6
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class CctvClip:
    """A written clip.

    Attributes:
        path: the file.
        kind: its recorder kind.
        frames: number of frames.
        boxes: (x, y, w, h) of each burnt-in text (timestamp first, then the camera name), in
            stored pixels; each box holds its text on every frame, outline included.
        blur_radius_px: the scene's defocus (0 = sharp).
    """

    path: Path
    kind: CctvKind
    frames: int
    boxes: list[Box]
    blur_radius_px: float


# -- scene ------------------------------------------------------------------------------------


@cache
def _background(width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: a yard seen from a wall camera (fixed seed, cached)."""
    rng = np.random.default_rng(20240301)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = int(height * 0.38)
    img = np.empty((height, width, 3), np.float32)
    # Brick wall above the horizon: staggered courses with mortar lines.
    brick_h, brick_w = max(height // 36, 4), max(width // 22, 8)
    course = (yy // brick_h).astype(np.int32)
    shifted = xx + (course % 2) * (brick_w / 2)
    mortar = (yy % brick_h < 1.5) | (shifted % brick_w < 1.5)
    tint = rng.uniform(0.85, 1.15, (course.max() + 2, int(width // brick_w) + 3))
    brick = tint[course, (shifted // brick_w).astype(np.int32)]
    img[..., 0] = np.where(mortar, 0.62, 0.55 * brick)
    img[..., 1] = np.where(mortar, 0.60, 0.30 * brick)
    img[..., 2] = np.where(mortar, 0.55, 0.22 * brick)
    # Asphalt below: smooth grey noise at two scales, and painted parking lines.
    coarse = cv2.resize(rng.uniform(-1, 1, (height // 16, width // 16)).astype(np.float32),
                        (width, height), interpolation=cv2.INTER_CUBIC)  # fmt: skip
    fine = rng.normal(0, 1, (height, width)).astype(np.float32)
    asphalt = 0.33 + 0.04 * coarse + 0.035 * cv2.GaussianBlur(fine, (0, 0), 0.8)
    ground = yy >= horizon
    for c, k in enumerate((1.0, 1.0, 1.05)):
        img[..., c] = np.where(ground, asphalt * k, img[..., c])
    for i in range(-2, 9):
        x0 = i * width / 6
        pts = np.array([[x0, height], [x0 + width * 0.12, horizon]], np.float64)
        cv2.line(img, *(tuple(np.round(p * 16).astype(int)) for p in pts), (0.85, 0.82, 0.7),
                 thickness=max(width // 200, 2), lineType=cv2.LINE_AA, shift=4)  # fmt: skip
    cv2.line(img, (0, horizon), (width, horizon), (0.2, 0.2, 0.2), max(height // 200, 1))
    return img


def _point(x: float, y: float) -> tuple[int, int]:
    # Sub-pixel coordinates for OpenCV's `shift=4` (1/16 px), so motion is smooth.
    return round(x * 16), round(y * 16)


def _scene(width: int, height: int, t: float) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: the yard at time `t` in frames (fractions for fields)."""
    img = _background(width, height).copy()
    s = width / 704
    # A car crossing left to right, 7 px per frame at 704 wide.
    cx, cy = width * 0.08 + 7 * s * t, height * 0.66
    body = (0.15, 0.25, 0.7)
    cv2.rectangle(img, _point(cx, cy), _point(cx + 150 * s, cy + 48 * s), body, -1,
                  cv2.LINE_AA, 4)  # fmt: skip
    cv2.rectangle(img, _point(cx + 28 * s, cy - 30 * s), _point(cx + 118 * s, cy + 2 * s), body,
                  -1, cv2.LINE_AA, 4)  # fmt: skip
    for wx in (34, 78):
        cv2.rectangle(img, _point(cx + wx * s, cy - 24 * s), _point(cx + (wx + 34) * s, cy),
                      (0.75, 0.85, 0.9), -1, cv2.LINE_AA, 4)  # fmt: skip
    for wx in (32, 118):
        cv2.circle(img, _point(cx + wx * s, cy + 48 * s), round(15 * s * 16), (0.05, 0.05, 0.05),
                   -1, cv2.LINE_AA, 4)  # fmt: skip
    # Number plate: light with dark glyph-like strokes (OpenCV draws text on uint8 only).
    cv2.rectangle(img, _point(cx + 55 * s, cy + 22 * s), _point(cx + 95 * s, cy + 34 * s),
                  (0.95, 0.95, 0.9), -1, cv2.LINE_AA, 4)  # fmt: skip
    for k in range(6):
        x = cx + (59 + 6.2 * k) * s
        cv2.line(img, _point(x, cy + 24 * s), _point(x + 2 * s * (k % 2), cy + 32 * s),
                 (0.05, 0.05, 0.1), max(round(s), 1), cv2.LINE_AA, 4)  # fmt: skip
    # A person walking towards the camera and right, with a striped shirt.
    px, py = width * 0.72 - 2.5 * s * t, height * 0.42 + 3 * s * t
    cv2.ellipse(img, _point(px, py + 40 * s), _point(14 * s, 38 * s), 0, 0, 360,
                (0.7, 0.15, 0.1), -1, cv2.LINE_AA, 4)  # fmt: skip
    for k in range(-3, 4):
        y = py + 40 * s + k * 9 * s
        cv2.line(img, _point(px - 13 * s, y), _point(px + 13 * s, y), (0.95, 0.9, 0.85),
                 max(round(2 * s), 1), cv2.LINE_AA, 4)  # fmt: skip
    cv2.circle(img, _point(px, py - 8 * s), round(11 * s * 16), (0.85, 0.65, 0.5), -1,
               cv2.LINE_AA, 4)  # fmt: skip
    swing = 10 * s * math.sin(t * 0.9)
    for side in (-1, 1):
        cv2.line(img, _point(px + side * 6 * s, py + 74 * s),
                 _point(px + side * (6 * s + swing), py + 108 * s), (0.1, 0.1, 0.15),
                 max(round(5 * s), 2), cv2.LINE_AA, 4)  # fmt: skip
    return img


def _disk_kernel(radius_px: float) -> np.ndarray:
    """A normalised disk of `radius_px`, its rim anti-aliased by 8x8 supersampling."""
    half = math.ceil(radius_px)
    size, ss = 2 * half + 1, 8
    grid = (np.arange(size * ss) + 0.5) / ss - size / 2
    inside = (grid[None, :] ** 2 + grid[:, None] ** 2) <= radius_px**2
    kernel = inside.reshape(size, ss, size, ss).mean(axis=(1, 3)).astype(np.float32)
    return kernel / kernel.sum()


def _defocus(img: np.ndarray, radius_px: float, blur: str) -> np.ndarray:
    if radius_px <= 0:
        return img
    if blur == "gaussian":
        return cv2.GaussianBlur(img, (0, 0), radius_px, borderType=cv2.BORDER_REFLECT)
    if blur == "disk":
        return cv2.filter2D(img, -1, _disk_kernel(radius_px), borderType=cv2.BORDER_REFLECT)
    raise ValueError(f"blur must be 'gaussian' or 'disk', got {blur!r}")


# -- overlay ----------------------------------------------------------------------------------


def _texts(index: int) -> tuple[str, str]:
    clock = _CLOCK_START_S + index / float(FPS)
    h, rem = divmod(int(clock), 3600)
    m, sec = divmod(rem, 60)
    return f"2024-03-01 {h:02d}:{m:02d}:{sec:02d}", "CAM 03 GATE"


def _layout(width: int, height: int) -> tuple[float, int, list[tuple[int, int]]]:
    """Font scale, stroke thickness and each text's origin (bottom left of its baseline)."""
    scale = height / 576 * 0.8
    thick = max(round(height / 288), 1)
    margin = round(height / 40)
    (w, h), base = cv2.getTextSize(_texts(0)[1], _FONT, scale, thick + 2)
    # Timestamp top left, camera name bottom right, like most recorders.
    return scale, thick, [(margin, margin + h), (width - margin - w, height - margin - base)]


def _draw_overlay(img: np.ndarray, index: int, scale: float, thick: int, orgs: list) -> None:
    for text, org in zip(_texts(index), orgs, strict=True):
        # Black outline, then white text: readable on any background, as recorders draw it.
        cv2.putText(img, text, org, _FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, text, org, _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _overlay_boxes(
    width: int, height: int, frames: int, scale: float, thick: int, orgs: list
) -> list[Box]:
    """(x, y, w, h) of each text over all frames, measured from what was drawn."""
    boxes: list[Box] = []
    for which, org in enumerate(orgs):
        mask = np.zeros((height, width), np.uint8)
        for i in range(frames):
            cv2.putText(mask, _texts(i)[which], org, _FONT, scale, 255, thick + 2, cv2.LINE_AA)
        boxes.append(cv2.boundingRect(mask))
    return boxes


# -- frames and files -------------------------------------------------------------------------


def render_cctv_frames(
    kind: str | CctvKind,
    frames: int = 12,
    *,
    blur_radius_px: float = 0.0,
    blur: Literal["gaussian", "disk"] = "disk",
) -> tuple[np.ndarray, list[Box]]:
    """The frames a clip of `kind` holds before compression.

    Args:
        kind: a key of `CCTV_KINDS` or a `CctvKind`.
        frames: how many frames (25 fps).
        blur_radius_px: defocus of the scene (not the overlay): the disk's radius, or the
            Gaussian's standard deviation, in stored pixels; 0 = sharp.
        blur: "disk" (a lens's defocus) or "gaussian".
    Returns:
        (N, H, W, 3) uint8 RGB in stored orientation, and the overlay boxes (x, y, w, h).
    Raises:
        KeyError: an unknown kind.
        ValueError: an unknown blur.
    """
    spec = CCTV_KINDS[kind] if isinstance(kind, str) else kind
    w, h = spec.width, spec.height
    scale, thick, orgs = _layout(w, h)
    out = np.empty((frames, h, w, 3), np.uint8)
    for i in range(frames):
        if spec.interlaced:
            # Each field is its own exposure, 1/50 s apart: top field first.
            first, second = (_defocus(_scene(w, h, i + d), blur_radius_px, blur) for d in (0, 0.5))
            scene = first.copy()
            scene[1::2] = second[1::2]
        else:
            scene = _defocus(_scene(w, h, float(i)), blur_radius_px, blur)
        # Sensor noise, seeded per frame so every run writes the same bytes.
        noise = np.random.default_rng(i).normal(0, 1.2 / 255, scene.shape).astype(np.float32)
        frame = np.clip((scene + noise) * 255 + 0.5, 0, 255).astype(np.uint8)
        _draw_overlay(frame, i, scale, thick, orgs)
        out[i] = frame
    return out, _overlay_boxes(w, h, frames, scale, thick, orgs)


def make_cctv_clip(
    folder: Path,
    kind: str,
    *,
    frames: int = 12,
    blur_radius_px: float = 0.0,
    blur: Literal["gaussian", "disk"] = "disk",
    name: str | None = None,
) -> CctvClip:
    """Write a CCTV-like clip of `kind` into `folder`.

    Args:
        folder: where the file goes.
        kind: a key of `CCTV_KINDS`: "mpeg2_interlaced", "mpeg4_cif", "h264_lowrate",
            "h264_interlaced".
        frames: how many frames (25 fps).
        blur_radius_px: defocus of the scene, see `render_cctv_frames`.
        blur: "disk" or "gaussian".
        name: file name without extension (default: the kind, with the blur if any).
    Returns:
        The clip: its path, kind and overlay boxes.
    Raises:
        RuntimeError: ffmpeg failed (its message included).
    """
    spec = CCTV_KINDS[kind]
    rgb, boxes = render_cctv_frames(spec, frames, blur_radius_px=blur_radius_px, blur=blur)
    stem = name or (kind if blur_radius_px <= 0 else f"{kind}_{blur}{blur_radius_px:g}")
    path = folder / f"{stem}{spec.suffix}"
    # interl=1: 4:2:0 chroma is subsampled within each field, as an interlaced camera does.
    fields = ",setfield=tff" if spec.interlaced else ""
    vf = f"setsar={spec.sar.numerator}/{spec.sar.denominator}{fields}," + (
        f"scale=interl={int(spec.interlaced)},format=yuv420p"
    )
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{spec.width}x{spec.height}",
        "-framerate", str(FPS), "-i", "pipe:0",
        "-vf", vf, *spec.encode, "-threads", "1",
        "-fflags", "+bitexact", "-map_metadata", "-1", str(path),
    ]  # fmt: skip
    done = subprocess.run(cmd, input=rgb.tobytes(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(cmd)} failed: {done.stderr.decode(errors='replace')}")
    return CctvClip(path=path, kind=spec, frames=frames, boxes=boxes, blur_radius_px=blur_radius_px)
