"""Synthetic clips for the corpus, made with the ffmpeg CLI, and what a corpus input is.

Clips are tiny (64x48, a few frames at 24 fps) unless their size is the point. Encoders run on
one thread with `+bitexact`, so the same ffmpeg build writes the same bytes on every run.
Nothing here imports the code under test, except `ffmpeg_exe()` through `media`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from media import ffmpeg

__all__ = [
    "BITEXACT",
    "CLIP_FRAMES",
    "CLIP_SIZE",
    "RATE",
    "X264",
    "X265",
    "Hostile",
    "clip",
    "long_clip",
    "synthetic",
]

CLIP_SIZE = (64, 48)  # width, height of the ordinary clips
CLIP_FRAMES = 4
RATE = 24
BITEXACT = ("-threads", "1", "-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1")
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-bf", "0")
X265 = ("-c:v", "libx265", "-x265-params", "log-level=error:pools=1:frame-threads=1")


@dataclass(frozen=True)
class Hostile:
    """One input of the corpus.

    Attributes:
        name: its key (the first part of its cases' ids).
        problem: what is wrong with it, in a few words ("nothing" for the harness's own).
        make: writes it into the given folder and returns its path (a file or a folder).
    """

    name: str
    problem: str
    make: Callable[[Path], Path]


def synthetic(
    path: Path,
    *,
    size: tuple[int, int] = CLIP_SIZE,
    frames: int = CLIP_FRAMES,
    codec: tuple[str, ...] = X264,
    pix_fmt: str = "yuv420p",
    source: str = "testsrc2",
    after: tuple[str, ...] = (),
) -> Path:
    """A clip of the lavfi `source` at `size`, `frames` frames at 24 fps; `after`: more
    output options."""
    w, h = size
    options = f"s={w}x{h}:r={RATE}"
    lavfi = f"{source}:{options}" if "=" in source else f"{source}={options}"
    ffmpeg(
        "-f", "lavfi", "-i", lavfi, "-frames:v", str(frames), *codec, "-pix_fmt", pix_fmt,
        *BITEXACT, *after, str(path),
    )  # fmt: skip
    return path


def clip(folder: Path, name: str = "clip.mp4") -> Path:
    """The ordinary clip: H.264 4:2:0, 64x48, 4 frames; the control, and what the depth,
    keyframe, config and output cases run on."""
    return synthetic(folder / name)


def long_clip(folder: Path, name: str) -> Path:
    """24 frames with a keyframe every 6: room to cut inside a GOP."""
    return synthetic(folder / name, frames=24, codec=(*X264, "-g", "6"))
