"""Test media made with the ffmpeg CLI (independent of vidrefocus) and file checks."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from vidrefocus.io.writer import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED_DATA = ROOT.parent / "shared" / "data"


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg CLI quietly; fail the test with its message if it fails."""
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {done.stderr}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
