"""Chunk planning: cut a video at keyframes into chunks of a few seconds, with warm-up."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidrefocus.errors import InputError
from vidrefocus.io.probe import open_container
from vidrefocus.io.sequence import IMAGE_EXTENSIONS, open_sequence

__all__ = ["Chunk", "ChunkPlan", "Timeline", "chunk_pts", "plan_chunks", "scan_timeline"]

DEFAULT_CHUNK_SECONDS = 4.0
DEFAULT_WARMUP_FRAMES = 8


@dataclass(frozen=True)
class Timeline:
    """Every frame's pts and the keyframes among them, from a packet scan.

    Attributes:
        pts: every frame's pts in presentation order, strictly increasing.
        keyframes: pts of the frames a decoder can start from (a subset of `pts`).
        time_base: the video stream's time base.
    """

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    time_base: Fraction


@dataclass(frozen=True)
class Chunk:
    """One chunk of a job: what a worker decodes, processes and writes.

    Frames with `start_pts <= pts < end_pts` belong to the chunk. The worker decodes from
    `seek_pts` (a keyframe, so decoding is exact whatever the container's seek index says),
    runs the frames from `warmup_pts` on through the stages so their temporal state is warm,
    and drops the output of frames before `start_pts`.

    Attributes:
        index: position in the plan, from 0.
        start_pts: first frame (inclusive); a keyframe.
        end_pts: end (exclusive): the next chunk's `start_pts`, or last pts + 1.
        frames: number of frames in `[start_pts, end_pts)`.
        warmup_pts: first frame run through the stages (`== start_pts` without warm-up).
        seek_pts: the keyframe at or before `warmup_pts` where decoding starts.
        warmup_frames: frames in `[warmup_pts, start_pts)`.
    """

    index: int
    start_pts: int
    end_pts: int
    frames: int
    warmup_pts: int
    seek_pts: int
    warmup_frames: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ChunkPlan:
    """The chunks of one video, in order, covering every frame exactly once.

    Attributes:
        chunks: the chunks, by index.
        time_base: the video stream's time base (every pts is in it).
        frame_count: total frames.
        chunk_seconds: the target chunk length the plan was made for.
        warmup_frames: the warm-up the plan was made for.
    """

    chunks: tuple[Chunk, ...]
    time_base: Fraction
    frame_count: int
    chunk_seconds: float
    warmup_frames: int

    def __len__(self) -> int:
        return len(self.chunks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the time base as a string like "1/12288")."""
        return {
            "time_base": str(self.time_base),
            "frame_count": self.frame_count,
            "chunk_seconds": self.chunk_seconds,
            "warmup_frames": self.warmup_frames,
            "chunks": [c.to_dict() for c in self.chunks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkPlan:
        """Inverse of `to_dict`."""
        return cls(
            chunks=tuple(Chunk(**c) for c in data["chunks"]),
            time_base=Fraction(data["time_base"]),
            frame_count=int(data["frame_count"]),
            chunk_seconds=float(data["chunk_seconds"]),
            warmup_frames=int(data["warmup_frames"]),
        )


def scan_timeline(path: Path, sequence_rate: Fraction = Fraction(24)) -> Timeline:
    """Scan a video's packets (no decoding) for every frame's pts and the keyframes.

    Args:
        path: a video file, an image, or a folder of numbered images (every image is a
            keyframe).
        sequence_rate: frame rate assumed for image sequences.
    Returns:
        The timeline of the first video stream.
    Raises:
        InputError: unreadable file, no video stream, or no timestamps to plan with.
    """
    path = Path(path)
    if path.is_dir() or (path.is_file() and _is_image(path)):
        seq = open_sequence(path, sequence_rate)
        pts = tuple(seq.pts)
        return Timeline(pts=pts, keyframes=pts, time_base=seq.time_base)
    with open_container(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream to plan chunks for.")
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        pts: list[int] = []
        keys: list[int] = []
        for packet in container.demux(stream):
            # Discarded packets are an MP4 edit list's hidden pre-roll: not frames (as probe).
            if packet.size == 0 or packet.pts is None or packet.is_discard:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    if not pts:
        raise InputError(
            f"{path}: the video packets carry no timestamps, so the clip cannot be cut into "
            "chunks; run it in one piece (without --workers)."
        )
    return Timeline(pts=tuple(sorted(pts)), keyframes=tuple(sorted(keys)), time_base=time_base)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def plan_chunks(
    timeline: Timeline,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    warmup_frames: int = DEFAULT_WARMUP_FRAMES,
) -> ChunkPlan:
    """Cut a timeline at keyframes into chunks of about `chunk_seconds`.

    A chunk ends at the keyframe closest to `chunk_seconds` after its start (never before its
    start, always at a keyframe), so with sparse keyframes chunks are longer. Time is measured
    in pts, so variable frame rate is planned by duration, not frame count.

    Args:
        timeline: every frame's pts and the keyframes.
        chunk_seconds: target chunk length, > 0.
        warmup_frames: frames before a chunk's start run through the stages and dropped, >= 0.
    Returns:
        The plan; its chunks cover every pts of `timeline` exactly once.
    Raises:
        InputError: a non-positive chunk length, negative warm-up, no frames, or pts that do
            not increase.

    Example:
        >>> tl = Timeline(tuple(range(96)), (0, 24, 48, 72), Fraction(1, 24))
        >>> [c.frames for c in plan_chunks(tl, chunk_seconds=1.0).chunks]
        [24, 24, 24, 24]
    """
    if not chunk_seconds > 0:
        raise InputError(f"chunk length must be > 0 seconds, got {chunk_seconds}.")
    if warmup_frames < 0:
        raise InputError(f"warm-up must be >= 0 frames, got {warmup_frames}.")
    pts = list(timeline.pts)
    if not pts:
        raise InputError("the video has no frames to plan chunks for.")
    if any(b <= a for a, b in itertools.pairwise(pts)):
        raise InputError(
            "the video's frame timestamps do not strictly increase, so chunk boundaries would "
            "be ambiguous; remux the file (ffmpeg -i in -c copy out.mkv) or run it in one piece."
        )
    frame_set = set(pts)
    # The first frame always starts a chunk; a keyframe outside the frame list is ignored.
    keys = sorted({pts[0], *(k for k in timeline.keyframes if k in frame_set)})
    target = Fraction(chunk_seconds).limit_denominator(1_000_000)
    tb = timeline.time_base
    starts = [keys[0]]
    for i, key in enumerate(keys[1:], start=1):
        elapsed = (key - starts[-1]) * tb
        if elapsed >= target:
            starts.append(key)
            continue
        # The next possible cut: the next keyframe, or the end of the video.
        following = keys[i + 1] if i + 1 < len(keys) else pts[-1] + 1
        # Cut here if this keyframe is closer to the target than the next cut would be.
        overshoot = (following - starts[-1]) * tb - target
        if overshoot > target - elapsed:
            starts.append(key)
    ends = [*starts[1:], pts[-1] + 1]
    chunks: list[Chunk] = []
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        first = bisect.bisect_left(pts, start)
        last = bisect.bisect_left(pts, end)
        warm = max(0, first - warmup_frames)
        warmup_pts = pts[warm]
        seek_pts = keys[bisect.bisect_right(keys, warmup_pts) - 1]
        chunks.append(
            Chunk(
                index=index,
                start_pts=start,
                end_pts=end,
                frames=last - first,
                warmup_pts=warmup_pts,
                seek_pts=seek_pts,
                warmup_frames=first - warm,
            )
        )
    return ChunkPlan(
        chunks=tuple(chunks),
        time_base=tb,
        frame_count=len(pts),
        chunk_seconds=float(chunk_seconds),
        warmup_frames=warmup_frames,
    )


def chunk_pts(timeline: Timeline, chunk: Chunk) -> Sequence[int]:
    """The pts of a chunk's own frames (not its warm-up)."""
    pts = timeline.pts
    return pts[bisect.bisect_left(pts, chunk.start_pts) : bisect.bisect_left(pts, chunk.end_pts)]
