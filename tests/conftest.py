"""Shared fixtures: small real media made with the ffmpeg CLI, independent of vidrefocus."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from media import SAMPLES, ffmpeg


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of test clips, made once per session."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def phone_clip(media: Path) -> Path:
    """A rotated phone-style clip: H.264 in .mp4, 90 degree display matrix, AAC audio,
    creation time, location and a timecode track."""
    plain = media / "phone_plain.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=192x108:r=30:d=1",
        "-f", "lavfi", "-i", "sine=f=660:d=1:sample_rate=44100",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
        "-c:a", "aac", "-shortest",
        "-metadata", "creation_time=2024-03-01T10:20:30Z",
        "-metadata", "location=+48.8584+002.2945/",
        "-timecode", "10:00:00:00",
        "-movflags", "+use_metadata_tags",
        str(plain),
    )  # fmt: skip
    out = media / "phone.mp4"
    ffmpeg(
        "-display_rotation", "90", "-i", str(plain), "-map", "0:v", "-map", "0:a", "-c", "copy",
        "-map_metadata", "0", "-movflags", "+use_metadata_tags", "-timecode", "10:00:00:00",
        str(out),
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def audio_only(media: Path) -> Path:
    out = media / "audio_only.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(out))
    return out


@pytest.fixture(scope="session")
def png_sequence(media: Path) -> Path:
    """Eight 16-bit RGB PNG frames with smooth ramps (values that need 16 bits) and shapes."""
    folder = media / "seq16"
    folder.mkdir()
    rng = np.random.default_rng(7)
    h, w = 90, 160
    ramp = np.linspace(0, 65535, w, dtype=np.float64)[None, :].repeat(h, 0)
    for i in range(8):
        img = np.stack([ramp, ramp[::-1, ::-1], np.full((h, w), 30000.0)], axis=-1)
        y, x = rng.integers(10, h - 20), rng.integers(10, w - 30)
        img[y : y + 15, x : x + 25] = [60000, 2000 * i, 1000]
        cv2.imwrite(str(folder / f"shot_{i + 101:04d}.png"), img.astype(np.uint16)[:, :, ::-1])
    return folder


@pytest.fixture(scope="session")
def sample_scene() -> Path:
    path = SAMPLES / "scene.mp4"
    if not path.exists():
        pytest.fail("samples/scene.mp4 is missing: run `python samples/make_samples.py`")
    return path


@pytest.fixture(scope="session")
def vfr_clip() -> Path:
    return SAMPLES / "vfr.mkv"


@pytest.fixture(scope="session")
def tenbit_clip() -> Path:
    return SAMPLES / "tenbit_422.mov"
