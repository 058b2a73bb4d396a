"""Streaming decode (PyAV) of a video file or image sequence into display-referred RGB frames."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch
from torch import Tensor

from vidrefocus.color import YCbCrSpec
from vidrefocus.errors import InputError
from vidrefocus.io.pixfmt import PixelLayout, frame_to_rgb, layout_of
from vidrefocus.io.probe import MediaInfo, VideoInfo, open_container, probe, synthetic_pts_step
from vidrefocus.io.sequence import open_sequence, read_image

__all__ = ["DecodedFrame", "VideoReader", "colour_spec", "to_display", "to_stored"]

log = logging.getLogger(__name__)

# Consecutive undecodable packets after which a stream is declared broken rather than damaged.
_MAX_CONSECUTIVE_ERRORS = 50
# Containers without an index of presentation times seek by decode time, so a seek to a
# keyframe's pts lands on the keyframe after it when B-frames delay presentation (MPEG-PS/TS,
# elementary streams); seeks in them aim this much earlier (see `seek_target`).
SEEK_MARGIN_S = 1.0
_DTS_SEEK_FORMATS = {"mpeg", "mpegts", "mpegvideo", "h264", "hevc", "m4v", "vob"}


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame.

    Attributes:
        rgb: (3, H, W) float32 in [0, 1], display-referred, display orientation.
        pts: presentation timestamp in `time_base` units, exactly as stored in the stream.
        time_base: the stream's time base.
        index: position in presentation order, counting from the first frame read.
    """

    rgb: Tensor
    pts: int
    time_base: Fraction
    index: int

    @property
    def time_s(self) -> Fraction:
        return self.pts * self.time_base


def colour_spec(video: VideoInfo) -> YCbCrSpec:
    """The Y'CbCr decoding rule of a stream (its matrix, range and bit depth)."""
    matrix = video.colour_matrix if video.colour_matrix not in ("rgb", "ycgco") else "bt709"
    return YCbCrSpec(matrix=matrix, full_range=video.colour_range == "pc", bits=video.bit_depth)


def to_display(rgb: Tensor, rotation: int) -> Tensor:
    """Rotate a stored-orientation frame to display orientation.

    `rotation` is FFmpeg's display-matrix angle, counter-clockwise in degrees (a phone held
    upright records 90 or 270).

    Args:
        rgb: (..., H, W) tensor in stored orientation.
        rotation: 0, 90, 180 or 270.
    Returns:
        (..., H', W') tensor as a player shows it.
    """
    k = (rotation // 90) % 4
    return torch.rot90(rgb, k, dims=(-2, -1)) if k else rgb


def to_stored(rgb: Tensor, rotation: int) -> Tensor:
    """Inverse of `to_display`."""
    k = (rotation // 90) % 4
    return torch.rot90(rgb, -k, dims=(-2, -1)) if k else rgb


def seek_target(info: MediaInfo, pts: int) -> int:
    """The timestamp to seek to for the keyframe at or before `pts` (video stream time base):
    `pts` itself, or `SEEK_MARGIN_S` earlier in containers that seek by decode time."""
    if info.video is None or info.container.split(",")[0] not in _DTS_SEEK_FORMATS:
        return pts
    return max(pts - round(SEEK_MARGIN_S / info.video.time_base), 0)


class VideoReader:
    """Frame-accurate streaming reader with exact pts.

    Decodes a video file with PyAV (frame-threaded), or reads an image sequence, into the
    frame convention of DESIGN.md. The stream's own colour matrix, range and bit depth are
    honoured (`vidrefocus.io.pixfmt`), and frames come out in display orientation.

    Args:
        path: a video file, an image file, or a folder of numbered images.
        fps: frame rate assumed for image sequences (files carry none).
        apply_rotation: rotate frames to display orientation (default) or keep them as stored.
        start_pts: first pts to return (inclusive); None = from the start.
        end_pts: pts to stop before (exclusive); None = to the end.

    Raises:
        InputError: the input is missing, unreadable, or has no video stream.

    Example:
        >>> reader = VideoReader("samples/scene.mp4")  # doctest: +SKIP
        >>> for frame in reader:  # doctest: +SKIP
        ...     print(frame.pts, frame.rgb.shape)
    """

    def __init__(
        self,
        path: Path | str,
        *,
        fps: Fraction = Fraction(24),
        apply_rotation: bool = True,
        start_pts: int | None = None,
        end_pts: int | None = None,
        info: MediaInfo | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = info if info is not None else probe(self.path, fps)
        if self.info.video is None:
            kinds = ", ".join(s.kind for s in self.info.streams) or "no streams"
            raise InputError(
                f"{self.path}: no video stream (found {kinds}). Pass a file with a video track."
            )
        self.video: VideoInfo = self.info.video
        self.fps = fps
        self.apply_rotation = apply_rotation
        self.start_pts = start_pts
        self.end_pts = end_pts
        self.layout: PixelLayout = layout_of(self.video.pix_fmt)
        # Images are read as RGB (`read_image`); only a video stream has a Y'CbCr rule, and a
        # float image sequence (32-bit) has none that YCbCrSpec could describe.
        self.spec: YCbCrSpec | None = (
            None if self.info.is_image_sequence else colour_spec(self.video)
        )
        self.decode_errors = 0

    @property
    def time_base(self) -> Fraction:
        return self.video.time_base

    def _in_range(self, pts: int) -> bool:
        if self.start_pts is not None and pts < self.start_pts:
            return False
        return self.end_pts is None or pts < self.end_pts

    def __iter__(self) -> Iterator[DecodedFrame]:
        if self.info.is_image_sequence:
            yield from self._iter_sequence()
        else:
            yield from self._iter_video()

    def _iter_sequence(self) -> Iterator[DecodedFrame]:
        seq = open_sequence(self.path, self.fps)
        if seq.missing:
            log.warning(
                "%s: %d frame number(s) missing (first: %d); their time is left as a gap.",
                self.path,
                len(seq.missing),
                seq.missing[0],
            )
        index = 0
        for file, pts in zip(seq.files, seq.pts, strict=True):
            if not self._in_range(pts):
                continue
            rgb, _ = read_image(file)
            if rgb.shape[-2:] != (self.video.height, self.video.width):
                raise InputError(
                    f"{file}: size {rgb.shape[-1]}x{rgb.shape[-2]} differs from the first "
                    f"frame's {self.video.width}x{self.video.height}; a sequence needs one size."
                )
            yield DecodedFrame(rgb=rgb, pts=pts, time_base=seq.time_base, index=index)
            index += 1

    def _iter_video(self) -> Iterator[DecodedFrame]:
        with open_container(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.start_pts is not None:
                # Seek lands on a keyframe at or before start_pts; earlier frames are dropped.
                container.seek(
                    seek_target(self.info, self.start_pts), stream=stream, backward=True,
                    any_frame=False,
                )  # fmt: skip
            index = 0
            last_pts: int | None = None
            for frame in self._decode(container, stream):
                pts = frame.pts
                if pts is None:
                    pts = self._synthesise_pts(last_pts)
                if not self._in_range(pts):
                    if self.end_pts is not None and pts >= self.end_pts:
                        break
                    continue
                last_pts = pts
                rgb = frame_to_rgb(frame, self.layout, self.spec)
                if self.apply_rotation:
                    rgb = to_display(rgb, self.video.rotation)
                yield DecodedFrame(rgb=rgb, pts=pts, time_base=self.time_base, index=index)
                index += 1
        if self.decode_errors:
            log.warning(
                "%s: %d damaged packet(s) could not be decoded and were skipped.",
                self.path,
                self.decode_errors,
            )

    def _synthesise_pts(self, last_pts: int | None) -> int:
        # Elementary streams without timestamps: step by the nominal frame duration.
        step = synthetic_pts_step(self.video.average_rate, self.time_base)
        return 0 if last_pts is None else last_pts + step

    def _decode(
        self, container: av.container.InputContainer, stream: av.VideoStream
    ) -> Iterator[av.VideoFrame]:
        consecutive = 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as err:
                self.decode_errors += 1
                consecutive += 1
                log.debug("%s: packet at pts %s undecodable: %s", self.path, packet.pts, err)
                if consecutive > _MAX_CONSECUTIVE_ERRORS:
                    raise InputError(
                        f"{self.path}: the video stream is damaged beyond use "
                        f"({consecutive} packets in a row cannot be decoded)."
                    ) from err
                continue
            consecutive = 0
            yield from frames
