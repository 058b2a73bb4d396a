"""Fingerprints of files and of decoded frames, for audits, resume manifests and verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vidrefocus.errors import InputError
from vidrefocus.io.probe import open_container

__all__ = ["FrameDigest", "file_sha256", "frame_digests", "plane_sha256"]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plane_row_bytes(frame: av.VideoFrame, index: int) -> int:
    plane = frame.planes[index]
    comps = [c for c in frame.format.components if c.plane == index]
    return plane.width * sum((c.bits + 7) // 8 for c in comps)


def plane_sha256(frame: av.VideoFrame) -> str:
    """Hex sha256 of a decoded frame's pixel codes: every plane's visible samples, row by row
    (line padding left out), so equal pictures give equal digests whatever the decoder's
    memory layout."""
    digest = hashlib.sha256(f"{frame.format.name} {frame.width}x{frame.height}".encode())
    for i, plane in enumerate(frame.planes):
        rows = np.frombuffer(memoryview(plane), np.uint8)[: plane.line_size * plane.height]
        rows = rows.reshape(plane.height, plane.line_size)[:, : _plane_row_bytes(frame, i)]
        digest.update(np.ascontiguousarray(rows).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class FrameDigest:
    """A decoded frame's pts and pixel digest; `damaged` when it could not be decoded."""

    pts: int | None
    sha256: str | None
    damaged: bool = False


def frame_digests(path: Path) -> Iterator[FrameDigest]:
    """Each frame of the first video stream of `path`, decoded, in presentation order.

    A packet that fails to decode yields one `damaged` entry instead of stopping.

    Raises:
        InputError: the file cannot be opened or has no video stream.
    """
    with open_container(Path(path)) as container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream to fingerprint.")
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                yield FrameDigest(packet.pts, None, damaged=True)
                continue
            for frame in frames:
                yield FrameDigest(frame.pts, plane_sha256(frame))
