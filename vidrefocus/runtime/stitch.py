"""Stitch chunk files into the output: concat demuxer, stream copy, source streams muxed in."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av

from vidrefocus.config import EncodeOptions
from vidrefocus.errors import InputError, ProcessingError
from vidrefocus.io.formats import OutputFormat, resolve_output
from vidrefocus.io.paths import check_output_path, temp_path_for
from vidrefocus.io.probe import MediaInfo, open_container, video_encoder_tag
from vidrefocus.io.writer import ffmpeg_exe, subtitle_codec

__all__ = ["concat_list", "stitch", "stitch_command"]

log = logging.getLogger(__name__)


def _start_us(path: Path) -> int:
    """The file's start time in microseconds, as FFmpeg's concat demuxer computes it."""
    with open_container(path) as container:
        start = container.start_time
    if start is None:
        raise ProcessingError(f"{path}: the chunk file has no start time; redo the chunk.")
    return int(start)


def _quote(name: str) -> str:
    # ffconcat quoting: single quotes, a literal quote written as '\''.
    return "'" + name.replace("'", "'\\''") + "'"


def concat_list(chunks: Sequence[Path]) -> str:
    """An ffconcat script that joins `chunks` keeping every packet's own timestamps.

    The concat demuxer shifts the packets of file `i` by `start(i) - inpoint(i)`: `start(0)`
    is 0, `start(i)` the sum of the earlier files' `duration`s (microseconds), and `inpoint(i)`
    defaults to the file's own start time `S(i)`. Chunks already carry the source's
    timestamps, so every shift must be zero: the first file gets `inpoint 0`, so `start(i)`
    must be `S(i)`, which the durations `S(1)` then `S(i + 1) - S(i)` give. `S(i)` is read
    back exactly as the demuxer reads it, and durations are differences of those same rounded
    values, so no rounding error accumulates over many chunks.

    Args:
        chunks: chunk files in order; names are written relative to their folder.
    Returns:
        The script's text.
    """
    starts = [_start_us(p) for p in chunks]
    # A negative first start would be cut by the seek to inpoint 0; such a clip is shifted
    # to start at 0 instead (the same shift for every file).
    inpoint = min(starts[0], 0)
    lines = ["ffconcat version 1.0"]
    for i, path in enumerate(chunks):
        lines.append(f"file {_quote(path.name)}")
        if i == 0:
            lines.append(f"inpoint {inpoint}us")
        if i + 1 < len(chunks):
            previous = inpoint if i == 0 else starts[i]
            lines.append(f"duration {starts[i + 1] - previous}us")
    return "\n".join(lines) + "\n"


def stitch_command(
    concat_script: Path,
    source: MediaInfo,
    fmt: OutputFormat,
    opts: EncodeOptions,
    tmp: Path,
    *,
    encoder_tag: str | None = None,
) -> list[str]:
    """The ffmpeg command that stitches chunks and muxes in the source's other streams.

    It mirrors `VideoWriter`'s single-pass command: the same muxer and mp4/mov flags, the
    source's audio (copied or AAC), subtitles, chapters, global and video-stream metadata and
    timecode. Video is stream-copied from the chunks, so its colour tags and rotation (display
    matrix) come from them, the field order from the source; `encoder_tag` replaces the
    source's stale "encoder" stream tag.
    """
    video = source.video
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-copyts"]
    cmd += ["-f", "concat", "-safe", "0", "-i", str(concat_script)]
    with_source = not source.is_image_sequence
    if with_source:
        cmd += ["-i", str(source.path)]
    cmd += ["-map", "0:v:0", "-c:v", "copy"]
    if with_source:
        if opts.audio != "none":
            cmd += ["-map", "1:a?", "-c:a", "copy" if opts.audio == "copy" else "aac"]
        subtitles = subtitle_codec(source, fmt.container, tmp)
        if subtitles is not None:
            cmd += ["-map", "1:s?", "-c:s", subtitles]
        if opts.keep_metadata:
            cmd += ["-map_metadata", "1", "-map_chapters", "1"]
            if video is not None:
                cmd += ["-map_metadata:s:v:0", f"1:s:{video.index}"]
                if video.timecode:
                    cmd += ["-timecode", video.timecode]
    if encoder_tag:
        cmd += ["-metadata:s:v:0", f"encoder={encoder_tag}"]
    else:
        cmd += ["-map_metadata", "-1"]
    if video is not None and video.field_order in ("tt", "bb", "tb", "bt"):
        # Chunks carry the tag FFmpeg's CLI gives interlaced encodes ("tb"/"bt"); a stream
        # copy can set the source's own.
        cmd += ["-field_order:v", video.field_order]
    if opts.bitexact:
        # No random Matroska SegmentUID, no library versions: reruns give the same bytes.
        cmd += ["-fflags", "+bitexact"]
    if fmt.container in ("mp4", "mov"):
        if video is not None and video.time_base.numerator == 1:
            cmd += ["-video_track_timescale", str(video.time_base.denominator)]
        cmd += ["-movflags", "+use_metadata_tags+write_colr"]
        if fmt.codec.name == "h265":
            cmd += ["-tag:v", "hvc1"]
    cmd += ["-f", fmt.container, str(tmp)]
    return cmd


def _count_video_packets(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size)


def stitch(
    chunks: Sequence[Path],
    output: Path,
    source: MediaInfo,
    opts: EncodeOptions,
    *,
    expected_frames: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Join chunk files into `output` without re-encoding, with the source's other streams.

    The result is written under a temporary name beside `output` and renamed at the end, so
    `output` is never partial. The concat script is written beside the chunks and removed
    when ffmpeg is done, so the chunks' folder keeps only what it held before.

    Args:
        chunks: the chunk files, in order (all in one folder, same codec and settings).
        output: the file to produce.
        source: the probed input whose audio, subtitles, chapters, metadata and timecode are
            muxed in.
        opts: the job's encode options (audio mode, metadata, codec).
        expected_frames: when given, the stitched file must hold exactly this many frames.
        overwrite: replace an existing output.
    Returns:
        `output`.
    Raises:
        InputError: no chunks, or a bad output path.
        ProcessingError: ffmpeg failed or the frame count differs; nothing is left at
            `output` then.
    """
    if not chunks:
        raise InputError(f"{output}: no chunk files to stitch.")
    if source.video is None:
        raise InputError(f"{source.path}: no video stream.")
    check_output_path(output, [source.path], overwrite=overwrite)
    folder = chunks[0].parent
    script = folder / "concat.ffconcat"
    text = concat_list(chunks)
    fmt = resolve_output(output, source.video, opts)
    tmp = temp_path_for(output)
    cmd = stitch_command(script, source, fmt, opts, tmp, encoder_tag=video_encoder_tag(chunks[0]))
    log.debug("ffmpeg: %s", " ".join(cmd))
    try:
        script.write_text(text)
        with tempfile.TemporaryFile() as stderr:
            code = subprocess.run(cmd, stderr=stderr, check=False).returncode
            stderr.seek(0)
            message = " ".join(stderr.read().decode(errors="replace").strip().splitlines()[-3:])
        if code != 0:
            if "No space left" in message:
                raise ProcessingError(
                    f"{output}: the disk is full ({message}). Free space and run again "
                    "with --resume; the finished chunks are kept."
                )
            raise ProcessingError(
                f"{output}: stitching {len(chunks)} chunks failed (ffmpeg exited with code "
                f"{code}): {message or 'no message'}. Rerun with --resume."
            )
        if expected_frames is not None:
            got = _count_video_packets(tmp)
            if got != expected_frames:
                raise ProcessingError(
                    f"{output}: the stitched video holds {got} frames, the chunks {expected_frames}"
                    "; a chunk file is damaged. Delete the job's work folder and run again."
                )
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
        script.unlink(missing_ok=True)
    log.info("stitched %d chunks into %s", len(chunks), output)
    return output
