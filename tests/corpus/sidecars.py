"""Hostile side inputs of the corpus: depth folders, focus keyframe files, YAML configs and
batch job lists, for the corpus's ordinary clip (`inputs.clip`: 64x48, 4 frames at 24 fps).

Like `inputs`, everything is written by the tests, deterministically, and nothing imports the
code under test. `make_sidecars(folder)` writes them all and returns name -> path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from corpus.clips import CLIP_FRAMES, CLIP_SIZE, Hostile

__all__ = ["SIDECARS", "make_sidecars"]


def _depth_mm(folder: Path, frames: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE) -> Path:
    """16-bit PNG depth in millimetres: a far wall (4 m) with a near box (1 m)."""
    folder.mkdir()
    w, h = size
    for i in range(frames):
        mm = np.full((h, w), 4000, np.uint16)
        mm[h // 4 : h // 2, w // 4 + i : w // 2 + i] = 1000
        cv2.imwrite(str(folder / f"{i:06d}.png"), mm)
    return folder


def _depth(name: str, **kwargs: object) -> Callable[[Path], Path]:
    return lambda folder: _depth_mm(folder / name, **kwargs)  # type: ignore[arg-type]


def _depth_nan(folder: Path) -> Path:
    path = folder / "depth_nan"
    path.mkdir()
    w, h = CLIP_SIZE
    for i in range(CLIP_FRAMES):
        metres = np.full((h, w), 3.0, np.float32)
        metres[h // 4 : h // 2, w // 4 : w // 2] = 1.0
        if i == 2:
            metres[10:20, 10:20] = np.nan  # a hole a stereo matcher left
        np.save(path / f"{i:06d}.npy", metres)
    return path


def _depth_zero(folder: Path) -> Path:
    path = _depth_mm(folder / "depth_zero")
    mm = cv2.imread(str(path / "000001.png"), cv2.IMREAD_UNCHANGED)
    mm[:8] = 0  # "no data", as many sensors write it
    cv2.imwrite(str(path / "000001.png"), mm)
    return path


def _depth_corrupt(folder: Path) -> Path:
    path = _depth_mm(folder / "depth_corrupt")
    (path / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return path


def _depth_empty(folder: Path) -> Path:
    path = folder / "depth_empty"
    path.mkdir()
    return path


def _text(name: str, text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_text(text)
        return path

    return make


SIDECARS: tuple[Hostile, ...] = (
    Hostile("depth_good", "nothing (depth that fits the clip)", _depth("depth_good")),
    Hostile(
        "depth_wrong_count",
        "3 depth maps for 4 frames",
        _depth("depth_short", frames=CLIP_FRAMES - 1),
    ),
    Hostile(
        "depth_wrong_size",
        "40x40 depth maps for a 64x48 clip",
        _depth("depth_square", size=(40, 40)),
    ),
    Hostile("depth_nan", "NaN in one depth map (NPY)", _depth_nan),
    Hostile("depth_zero", "zero distance (no data) in one map", _depth_zero),
    Hostile("depth_corrupt", "a depth PNG that is not an image", _depth_corrupt),
    Hostile("depth_empty", "an empty depth folder", _depth_empty),
    Hostile("focus_empty", "an empty keyframe file", _text("focus_empty.yaml", "")),
    Hostile(
        "focus_unsorted",
        "keyframes out of time order",
        _text("focus_unsorted.csv", "time,distance_m\n0.1s,1.0\n0s,3.0\n"),
    ),
    Hostile(
        "focus_out_of_range",
        "a keyframe after the clip's end",
        _text("focus_late.json", '[{"at": "0s", "distance_m": 2}, {"at": "30s", "distance_m": 1}]'),
    ),
    Hostile(
        "focus_malformed",
        "keyframe YAML that does not parse",
        _text("focus_broken.yaml", "keys: [{at: 0s, distance_m: 2\n"),
    ),
    Hostile(
        "focus_bad_value",
        "f/0.1 and a negative distance",
        _text("focus_values.csv", "time,distance_m,f_number\n0s,-2,0.1\n"),
    ),
    Hostile(
        "config_small_chunks",
        "nothing (chunks of 1/3 s)",
        _text("small_chunks.yaml", "runtime:\n  chunk_seconds: 0.34\n"),
    ),
    Hostile(
        "config_wrong_type",
        "YAML config with a string for a number",
        _text("wrong_type.yaml", "encode:\n  crf: high\n"),
    ),
    Hostile(
        "config_not_mapping",
        "YAML config that is a list",
        _text("a_list.yaml", "- encode\n- crf: 18\n"),
    ),
    Hostile(
        "config_malformed",
        "YAML config that does not parse",
        _text("broken.yaml", "encode: {codec: ffv1\n  crf: [\n"),
    ),
    Hostile(
        "config_bad_range",
        "negative chunk length",
        _text("negative.yaml", "runtime:\n  chunk_seconds: -1\n"),
    ),
    Hostile(
        "batch_malformed",
        "a batch job list that does not parse",
        _text("jobs_broken.yaml", "jobs:\n  - input: clip.mp4\n   command: [\n"),
    ),
    Hostile(
        "batch_unknown_key",
        "a batch job with an unknown key",
        _text("jobs_typo.yaml", "jobs:\n  - input: clip.mp4\n    comand: transcode\n"),
    ),
)


def make_sidecars(folder: Path) -> dict[str, Path]:
    """Write every side input of `SIDECARS` into `folder`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    return {s.name: s.make(folder) for s in SIDECARS}
