"""Corpus inputs whose timestamps are hostile: holes, repeats, jumps back, pre-roll before
zero, none at all."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from corpus.clips import BITEXACT, CLIP_SIZE, RATE, X264, Hostile, long_clip, synthetic
from media import ffmpeg

__all__ = ["TIMESTAMP_INPUTS"]


def _vfr_gaps(folder: Path) -> Path:
    # 24 fps, then a 5 s hole after frame 2 and a 2 s hole after frame 4 (a camera that paused)
    setpts = "setpts=PTS+(gte(N\\,3)*5+gte(N\\,5)*2)/TB"
    return synthetic(
        folder / "vfr_gaps.mkv", frames=6, after=("-vf", setpts, "-fps_mode", "passthrough")
    )


def _mux_ffv1(path: Path, pts_ms: list[int]) -> Path:
    """FFV1 (intra only, so dts = pts) in Matroska with the given timestamps, as they come:
    ffmpeg's CLI would drop or fix them, the Matroska muxer stores equal ones."""
    w, h = CLIP_SIZE
    with av.open(str(path), "w", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("ffv1", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, pts in enumerate(pts_ms):
            img = np.full((h, w, 3), 30 * i, np.uint8)
            img[:, : 8 * (i + 1)] = 250
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                packet.pts = packet.dts = pts
                packet.time_base = Fraction(1, 1000)
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _duplicate_pts(folder: Path) -> Path:
    return _mux_ffv1(folder / "dup_pts.mkv", [0, 42, 42, 83, 125, 125])


def _non_monotonic(folder: Path) -> Path:
    # two MPEG-TS recordings glued together, the second one's clock earlier (a recorder
    # restarted): pts jump back from 10 s to 0
    late, early = folder / ".late.ts", folder / ".early.ts"
    synthetic(late, codec=(*X264, "-g", "2"), after=("-output_ts_offset", "10"))
    synthetic(early, codec=(*X264, "-g", "2"))
    path = folder / "non_monotonic.ts"
    path.write_bytes(late.read_bytes() + early.read_bytes())
    late.unlink()
    early.unlink()
    return path


def _negative_start(folder: Path) -> Path:
    # a stream copy cut mid-GOP: an edit list hides the GOP's first four frames (pre-roll at
    # negative pts) that the decoder still needs
    base = long_clip(folder, ".gop.mp4")
    path = folder / "negative_start.mp4"
    ffmpeg("-ss", "0.4", "-i", str(base), "-c", "copy", *BITEXACT, str(path))
    base.unlink()
    return path


def _unset_timestamps(folder: Path) -> Path:
    # what `-output_ts_offset -0.5` makes of Matroska: packets without timestamps
    offset = ("-output_ts_offset", "-0.5", "-avoid_negative_ts", "disabled")
    return synthetic(folder / "no_timestamps.mkv", after=offset)


def _raw_h264(folder: Path) -> Path:
    return synthetic(folder / "elementary.h264", after=("-f", "h264"))


# fmt: off
TIMESTAMP_INPUTS: tuple[Hostile, ...] = (
    Hostile("vfr_gaps", "variable frame rate with 5 s and 2 s holes", _vfr_gaps),
    Hostile("duplicate_pts", "two frames share a pts, twice", _duplicate_pts),
    Hostile("non_monotonic_pts", "pts jump back 10 s (two TS recordings glued)", _non_monotonic),
    Hostile("negative_start", "edit list with pre-roll before 0", _negative_start),
    Hostile("no_timestamps", "Matroska packets without timestamps", _unset_timestamps),
    Hostile("elementary_h264", "raw H.264, no container, no timestamps", _raw_h264),
)
# fmt: on
