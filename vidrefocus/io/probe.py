"""Probe media: container, streams, exact frame count and timing, colour tags, timecode."""

from __future__ import annotations

import errno
import itertools
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vidrefocus.errors import InputError
from vidrefocus.io.pixfmt import layout_of
from vidrefocus.io.sequence import (
    IMAGE_EXTENSIONS,
    ImageSequence,
    read_image,
    scan_sequence,
    single_image,
)

__all__ = [
    "AudioInfo",
    "MediaInfo",
    "StreamInfo",
    "VideoInfo",
    "frame_pts",
    "open_container",
    "probe",
    "synthetic_pts_step",
]

# ITU-T H.273 code points -> the names FFmpeg's command line accepts.
MATRIX_NAMES = {
    0: "rgb", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c",
}  # fmt: skip
PRIMARIES_NAMES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22",
}  # fmt: skip
TRANSFER_NAMES = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
RANGE_NAMES = {1: "tv", 2: "pc"}
FIELD_ORDER_NAMES = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


@dataclass(frozen=True)
class StreamInfo:
    """A stream vidrefocus does not decode but carries along (audio, subtitles, data)."""

    index: int
    kind: str
    codec: str | None
    language: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AudioInfo(StreamInfo):
    sample_rate: int = 0
    channels: int = 0
    layout: str | None = None
    sample_format: str | None = None


@dataclass(frozen=True)
class VideoInfo(StreamInfo):
    """Everything about a video stream that decoding and encoding must honour.

    `width`/`height` are the coded (stored) size; `display_width`/`display_height` apply the
    rotation. Colour tags come from the bitstream; `colour_guessed` is True when the stream
    leaves the matrix unspecified and the usual guess (BT.709 for HD, BT.601 for SD) is used.
    `frame_count`, `first_pts` and `last_pts` are exact: counted from every packet, not
    estimated from duration x rate. `variable_frame_rate` is True when frame durations differ.
    """

    profile: str | None = None
    width: int = 0
    height: int = 0
    display_width: int = 0
    display_height: int = 0
    sample_aspect_ratio: Fraction = Fraction(1)
    display_aspect_ratio: Fraction = Fraction(1)
    rotation: int = 0
    pix_fmt: str = ""
    bit_depth: int = 8
    chroma_subsampling: str = "4:4:4"
    colour_matrix: str = "bt709"
    colour_range: str = "tv"
    colour_primaries: str | None = None
    colour_transfer: str | None = None
    colour_guessed: bool = False
    field_order: str | None = None
    time_base: Fraction = Fraction(1, 1)
    average_rate: Fraction | None = None
    variable_frame_rate: bool = False
    frame_count: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    duration_s: Fraction = Fraction(0)
    timecode: str | None = None
    bit_rate: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    """A probed file or image sequence."""

    path: Path
    container: str
    size_bytes: int
    duration_s: Fraction
    metadata: dict[str, str]
    video: VideoInfo | None
    streams: list[StreamInfo]
    chapters: int = 0
    is_image_sequence: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: Fractions become strings like "1/12288"."""

        def clean(v: Any) -> Any:
            if isinstance(v, Fraction):
                return str(v)
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        return clean(asdict(self))


def open_container(path: Path) -> av.container.InputContainer:
    """Open a media file for reading, turning every failure into a clear `InputError`.

    Args:
        path: the file.
    Returns:
        An open PyAV input container (close it, or use it as a context manager).
    Raises:
        InputError: missing, empty, a folder, unreadable, or not media FFmpeg understands.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path (and the current folder).")
    if path.is_dir():
        raise InputError(f"{path}: is a folder with no numbered images in it.")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes). Copy or export it again.")
    try:
        return av.open(str(path), metadata_errors="replace")
    except PermissionError as err:
        raise InputError(f"{path}: not readable (permission denied).") from err
    except av.FFmpegError as err:
        if getattr(err, "errno", None) == errno.EACCES:
            raise InputError(f"{path}: not readable (permission denied).") from err
        raise InputError(
            f"{path}: not a media file FFmpeg can read ({err.strerror or err}). "
            "Check that it is a complete video file and not a renamed document."
        ) from err


def _tag(metadata: dict[str, str], key: str) -> str | None:
    """A metadata value by case-insensitive key (Matroska writes tags in upper case)."""
    for k, v in metadata.items():
        if k.lower() == key:
            return v
    return None


def _tagged(table: dict[int, str], value: Any) -> str | None:
    return table.get(int(value)) if value is not None else None


def _guess_matrix(height: int) -> str:
    # What players do with untagged video: BT.709 for HD, BT.601 for SD.
    return "bt709" if height >= 720 else "smpte170m"


def _subsampling(pix_fmt: str) -> tuple[str, int]:
    layout = layout_of(pix_fmt)
    if layout.kind != "yuv":
        return ("4:4:4" if layout.kind == "rgb" else "4:0:0"), layout.bits
    names = {(0, 0): "4:4:4", (1, 0): "4:2:2", (1, 1): "4:2:0", (0, 1): "4:4:0", (2, 0): "4:1:1"}
    return names.get((layout.shift_x, layout.shift_y), "4:4:4"), layout.bits


def _scan_packets(
    container: av.container.InputContainer, stream: av.VideoStream, strict: Path | None = None
) -> tuple[list[int], int]:
    """Presentation timestamps of every packet, sorted, and the packet count (demux only).

    With `strict` (the file's path, for the message), keyframes whose pts go back in decode
    order are refused: a timeline that jumps back (two recordings joined) cannot be sorted
    into one clip. B-frames reorder pts only between keyframes.

    Raises:
        InputError: with `strict`, a keyframe earlier than the one before it.
    """
    pts: list[int] = []
    count = 0
    last_key: int | None = None
    time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    for packet in container.demux(stream):
        # Discarded packets are pre-roll an MP4 edit list hides (a stream copy cut mid-GOP):
        # decoders need them, but they are never shown, so they are not frames of the clip.
        if packet.size == 0 or packet.is_discard:
            continue
        count += 1
        if packet.pts is None:
            continue
        pts.append(packet.pts)
        if strict is not None and packet.is_keyframe:
            if last_key is not None and packet.pts <= last_key:
                raise InputError(
                    f"{strict}: pts {packet.pts} does not increase (a keyframe at "
                    f"{float(packet.pts * time_base):g} s follows one at "
                    f"{float(last_key * time_base):g} s); the input's timestamps are broken "
                    "(two recordings joined?). Split it, or remux it with fresh timestamps "
                    "(ffmpeg -fflags +genpts -i IN -c copy OUT)."
                )
            last_key = packet.pts
    return sorted(pts), count


def synthetic_pts_step(average_rate: Fraction | None, time_base: Fraction) -> int:
    """The pts step given to frames of a stream without timestamps (a raw elementary stream):
    one nominal frame duration (25 fps when the stream states no rate)."""
    rate = average_rate or Fraction(25)
    return max(1, round(1 / (rate * time_base)))


def frame_pts(path: Path) -> list[int]:
    """Every video frame's pts in presentation order, exact, from a packet scan.

    A stream without any timestamps gets the pts `VideoReader` gives its frames: one nominal
    frame duration apart (`synthetic_pts_step`).

    Args:
        path: a video file.
    Returns:
        Sorted pts in the first video stream's time base.
    Raises:
        InputError: unreadable file or no video stream.
    """
    with open_container(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream.")
        stream = container.streams.video[0]
        pts, count = _scan_packets(container, stream, path)
        if count and not pts:
            rate = Fraction(stream.average_rate) if stream.average_rate else None
            tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
            step = synthetic_pts_step(rate, tb)
            return [i * step for i in range(count)]
        return pts


def _first_frame(
    container: av.container.InputContainer, stream: av.VideoStream
) -> av.VideoFrame | None:
    """The stream's first decodable frame, read after `_scan_packets` went to the end."""
    try:
        container.seek(0)
    except av.FFmpegError:
        # Raw elementary streams (.h264) and packets without timestamps cannot seek: read the
        # start of the file again instead.
        with av.open(container.name, metadata_errors="replace") as again:
            return next(again.decode(again.streams[stream.index]), None)
    return next(container.decode(stream), None)


def _probe_video(container: av.container.InputContainer, stream: av.VideoStream) -> VideoInfo:
    path = container.name
    cc = stream.codec_context
    pts_sorted, count = _scan_packets(container, stream)
    rotation = 0
    try:
        first_frame = _first_frame(container, stream)
    except av.FFmpegError as err:
        raise InputError(
            f"{path}: the video stream cannot be decoded ({err}). The file may be damaged."
        ) from err
    if first_frame is None:
        raise InputError(f"{path}: the video stream holds no decodable frame.")
    rotation = round(first_frame.rotation or 0) % 360
    pix_fmt = cc.pix_fmt or first_frame.format.name
    subsampling, bits = _subsampling(pix_fmt)
    matrix = _tagged(MATRIX_NAMES, first_frame.colorspace) or _tagged(MATRIX_NAMES, cc.colorspace)
    guessed = matrix is None
    colour_range = _tagged(RANGE_NAMES, first_frame.color_range) or _tagged(
        RANGE_NAMES, cc.color_range
    )
    if pix_fmt.startswith("yuvj"):
        colour_range = "pc"
    deltas = {b - a for a, b in itertools.pairwise(pts_sorted)}
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    first = pts_sorted[0] if pts_sorted else None
    last = pts_sorted[-1] if pts_sorted else None
    if len(pts_sorted) > 1:
        step = (last - first) / (len(pts_sorted) - 1)
        duration = (last - first + Fraction(step).limit_denominator(1 << 30)) * tb
    else:
        duration = Fraction(stream.duration or 0) * tb
    w, h = cc.width, cc.height
    swap = rotation in (90, 270)
    sar = Fraction(stream.sample_aspect_ratio or 1)
    timecode = _tag(stream.metadata, "timecode") or _tag(container.metadata, "timecode")
    if timecode is None:
        for other in container.streams:
            if other.type == "data" and _tag(other.metadata, "timecode"):
                timecode = _tag(other.metadata, "timecode")
    return VideoInfo(
        index=stream.index,
        kind="video",
        codec=cc.name,
        language=stream.language,
        metadata=dict(stream.metadata),
        profile=cc.profile,
        width=w,
        height=h,
        display_width=h if swap else w,
        display_height=w if swap else h,
        sample_aspect_ratio=sar,
        # From the SAR: PyAV's own guess is None for codecs whose decoder has not yet read a
        # SAR (FFV1), and the fallback w / h then ignored the container's.
        display_aspect_ratio=sar * Fraction(w, h) if h else Fraction(1),
        rotation=rotation,
        pix_fmt=pix_fmt,
        bit_depth=bits,
        chroma_subsampling=subsampling,
        colour_matrix="rgb"
        if subsampling == "4:4:4" and layout_of(pix_fmt).kind == "rgb"
        else (matrix or _guess_matrix(h)),
        colour_range=colour_range or ("pc" if layout_of(pix_fmt).kind == "rgb" else "tv"),
        colour_primaries=_tagged(PRIMARIES_NAMES, first_frame.color_primaries)
        or _tagged(PRIMARIES_NAMES, cc.color_primaries),
        colour_transfer=_tagged(TRANSFER_NAMES, first_frame.color_trc)
        or _tagged(TRANSFER_NAMES, cc.color_trc),
        colour_guessed=guessed and layout_of(pix_fmt).kind == "yuv",
        field_order=FIELD_ORDER_NAMES.get(int(cc.field_order or 0)),
        time_base=tb,
        average_rate=Fraction(stream.average_rate) if stream.average_rate else None,
        variable_frame_rate=len(deltas) > 1,
        frame_count=count,
        first_pts=first,
        last_pts=last,
        duration_s=duration,
        timecode=timecode,
        bit_rate=cc.bit_rate or None,
    )


def _probe_sequence(seq: ImageSequence, path: Path) -> MediaInfo:
    first, bits = read_image(seq.files[0])
    _, h, w = first.shape
    ext = seq.files[0].suffix.lower()
    pts = seq.pts
    video = VideoInfo(
        index=0,
        kind="video",
        codec=ext.lstrip("."),
        width=w,
        height=h,
        display_width=w,
        display_height=h,
        display_aspect_ratio=Fraction(w, h),
        pix_fmt={8: "rgb24", 16: "rgb48le", 32: "gbrpf32le"}[bits],
        bit_depth=bits,
        colour_matrix="rgb",
        colour_range="pc",
        colour_primaries="bt709",
        colour_transfer="linear" if bits == 32 else "iec61966-2-1",
        time_base=seq.time_base,
        average_rate=1 / seq.time_base,
        variable_frame_rate=bool(seq.missing),
        frame_count=len(seq.files),
        first_pts=pts[0],
        last_pts=pts[-1],
        duration_s=(pts[-1] + 1) * seq.time_base,
    )
    return MediaInfo(
        path=path,
        container="image sequence" if path.is_dir() else "image",
        size_bytes=sum(p.stat().st_size for p in seq.files),
        duration_s=video.duration_s,
        metadata={},
        video=video,
        streams=[],
        is_image_sequence=True,
    )


def probe(path: Path | str, fps: Fraction = Fraction(24)) -> MediaInfo:
    """Probe a media file or an image-sequence folder.

    Args:
        path: a file, or a folder of numbered images.
        fps: frame rate assumed for image sequences.
    Returns:
        The file's facts; `video` is None for a file without a video stream.
    Raises:
        InputError: missing, empty, unreadable or undecodable input.

    Example:
        >>> info = probe("samples/scene.mp4")  # doctest: +SKIP
        >>> info.video.frame_count
        96
    """
    path = Path(path)
    if path.is_dir():
        return _probe_sequence(scan_sequence(path, fps), path)
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
        return _probe_sequence(single_image(path, fps), path)
    with open_container(path) as container:
        vstreams = list(container.streams.video)
        video = _probe_video(container, vstreams[0]) if vstreams else None
        others: list[StreamInfo] = []
        for s in container.streams:
            if video is not None and s.index == video.index:
                continue
            if s.type == "audio":
                cc = s.codec_context
                others.append(
                    AudioInfo(
                        index=s.index,
                        kind="audio",
                        codec=cc.name,
                        language=s.language,
                        metadata=dict(s.metadata),
                        sample_rate=cc.sample_rate,
                        channels=cc.channels,
                        layout=cc.layout.name if cc.layout else None,
                        sample_format=cc.format.name if cc.format else None,
                    )
                )
            else:
                codec = s.codec_context.name if s.codec_context else None
                others.append(
                    StreamInfo(
                        index=s.index,
                        kind=s.type,
                        codec=codec,
                        language=s.language,
                        metadata=dict(s.metadata),
                    )
                )
        duration = Fraction(container.duration, av.time_base) if container.duration else Fraction(0)
        if video is not None and video.duration_s:
            duration = max(duration, video.duration_s) if not duration else duration
        return MediaInfo(
            path=path,
            container=container.format.name,
            size_bytes=path.stat().st_size,
            duration_s=duration,
            metadata=dict(container.metadata),
            video=video,
            streams=others,
            chapters=len(container.chapters()) if hasattr(container, "chapters") else 0,
        )


def video_encoder_tag(path: Path) -> str | None:
    """The "encoder" tag of a file's first video stream (e.g. "Lavc62.28.102 libx264")."""
    with open_container(path) as container:
        tags = {k.lower(): v for k, v in container.streams.video[0].metadata.items()}
    return tags.get("encoder")
