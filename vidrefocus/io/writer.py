"""Encode frames with the ffmpeg binary (imageio-ffmpeg), keeping pts, audio and metadata."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import av
import ffmpeg
import imageio_ffmpeg
from torch import Tensor

from vidrefocus.config import EncodeOptions
from vidrefocus.errors import InputError, ProcessingError
from vidrefocus.io.formats import OutputFormat, resolve_output
from vidrefocus.io.paths import check_output_path, temp_path_for
from vidrefocus.io.pixfmt import rgb_to_frame
from vidrefocus.io.probe import MediaInfo, video_encoder_tag
from vidrefocus.io.reader import to_stored

__all__ = ["BITEXACT_THREADS", "VideoWriter", "ffmpeg_exe", "subtitle_codec"]

log = logging.getLogger(__name__)

# What ffmpeg's death by a signal usually means.
_SIGNAL_CAUSES = {
    signal.SIGXFSZ: " (a file grew past the file size limit: the disk is full for this process)",
    signal.SIGKILL: " (from outside: often the kernel, when memory runs out)",
}
# Text subtitle codecs, which FFmpeg converts to MP4's and MOV's `mov_text`.
_TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"})

# FFmpeg's field orders (`probe` names) -> top field first? Same reading as FFmpeg's rawvideo
# decoder, which flags frames top-first for "tt" and "tb" and bottom-first for "bb" and "bt".
_TOP_FIRST = {"tt": True, "tb": True, "bb": False, "bt": False}

# Encoder threads of x264 and x265 for bit-exact output when `threads` is automatic (0).
BITEXACT_THREADS = 8


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (or `IMAGEIO_FFMPEG_EXE`)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def _compile(
    outputs: list[ffmpeg.nodes.FilterableStream], target: Path, kwargs: dict[str, object]
) -> list[str]:
    cmd = ffmpeg.output(*outputs, str(target), **kwargs).compile(cmd=ffmpeg_exe())
    # ffmpeg-python puts global options last, where ffmpeg ignores them.
    cmd[1:1] = ["-hide_banner", "-nostdin", "-loglevel", "error", "-copyts"]
    return cmd


def _add_params(kwargs: dict[str, object], encoder: str, param: str) -> None:
    """Append `param` to the x264-params or x265-params option in `kwargs`."""
    key = "x264-params" if encoder == "libx264" else "x265-params"
    kwargs[key] = ":".join(p for p in (kwargs.get(key), param) if p)


def subtitle_codec(source: MediaInfo, container: str, output: Path) -> str | None:
    """How the source's subtitles go into `container`: "copy", "mov_text" (the only
    subtitles MP4 and MOV hold; text converts to it), or None: left out, with a warning
    (bitmap subtitles in MP4/MOV, any in AVI), rather than failing the whole job."""
    codecs = sorted({s.codec or "?" for s in source.streams if s.kind == "subtitle"})
    if not codecs or container == "matroska":
        return "copy"
    if container in ("mp4", "mov") and set(codecs) <= _TEXT_SUBTITLES:
        return "mov_text"
    log.warning(
        "%s: %s subtitles cannot be stored in %s; they are left out (write .mkv to keep them).",
        output, ", ".join(codecs), container.upper(),
    )  # fmt: skip
    return None


class VideoWriter:
    """Streams frames into ffmpeg and produces the output file atomically.

    Frames go to ffmpeg as a NUT stream of raw planes with their exact pts (PyAV muxes it into
    ffmpeg's stdin), so variable frame rate survives and ffmpeg never converts colours: the
    Y'CbCr codes are computed here with the output's matrix and range. The source's sample
    aspect ratio and field order are carried as tags, pixels untouched; an interlaced source
    is encoded interlaced (field-aware DCT and motion search in x264, field pictures in
    ProRes). The same ffmpeg process stream-copies audio, subtitles, chapters and metadata from
    the source. With `opts.bitexact` the file holds no random ids or version strings, so the
    same job writes the same bytes. The file is written under a temporary name beside the
    target and renamed only when ffmpeg succeeded; on any failure or interruption the
    temporary file is removed and the target is untouched.

    Args:
        path: the output file.
        source: the probed input (its streams and tags are carried over).
        opts: encode options.
        overwrite: replace an existing output.
        stored_rotation: rotation tag of the source; frames arrive in display orientation and
            are written back in the source's stored orientation with the same tag.
        video_only: write the video stream alone, no audio, subtitles or tags from the source
            (chunks of a distributed job: the stitcher muxes those in once).
        closed_gop: close every GOP of inter-frame encoders (x264, x265), so no frame refers
            across a keyframe and chunks can be cut and stitched on their own.
        name: the path messages name, when `path` is a staging name for another file.

    Example:
        >>> with VideoWriter(Path("out.mp4"), info, EncodeOptions()) as w:  # doctest: +SKIP
        ...     for f in VideoReader("in.mp4"):
        ...         w.write(f.rgb, f.pts)
    """

    def __init__(
        self,
        path: Path,
        source: MediaInfo,
        opts: EncodeOptions,
        *,
        overwrite: bool = False,
        stored_rotation: int | None = None,
        video_only: bool = False,
        closed_gop: bool = False,
        name: Path | None = None,
    ) -> None:
        if source.video is None:
            raise InputError(f"{source.path}: no video stream to write.")
        check_output_path(path, [source.path], overwrite=overwrite)
        self.path = path
        self.name = name or path
        self.source = source
        self.opts = opts
        self.format: OutputFormat = resolve_output(path, source.video, opts)
        self.rotation = source.video.rotation if stored_rotation is None else stored_rotation
        self.time_base = source.video.time_base
        self.video_only = video_only
        self.closed_gop = closed_gop
        self.frames_written = 0
        self._tmp = temp_path_for(path)
        order = source.video.field_order
        self._field_order = order if order in _TOP_FIRST else None
        # FFmpeg's CLI tags every interlaced encode "tb"/"bt" (its rule for all codecs but
        # MJPEG), whatever it was told. A second pass copies the video to set the source's
        # own "tt"/"bb": not needed for chunks (the stitcher sets it), AVI (stores no field
        # order) or H.264 in mp4/mov (no `fiel` box; the bitstream says it, as x264 wrote it).
        self._retag = (
            self._field_order in ("tt", "bb")
            and not video_only
            and self.format.container != "avi"
            and not (self.format.codec.name == "h264" and self.format.container in ("mp4", "mov"))
        )
        self._encoded = temp_path_for(path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._nut: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._stderr = tempfile.TemporaryFile()
        self._size: tuple[int, int] | None = None
        self._last_pts: int | None = None

    # -- command lines ------------------------------------------------------------------------

    def _raw_video(self) -> ffmpeg.nodes.FilterableStream:
        """The raw frames ffmpeg reads from stdin, declared with the tags NUT cannot carry."""
        fmt = self.format
        # NUT carries no colour description, and ffmpeg converts "unknown" to the output's
        # tags through RGB. Declaring the raw input with the output's own tags makes the two
        # agree, so the Y'CbCr codes computed here reach the encoder unchanged.
        vin_args: dict[str, object] = {
            "f": "nut",
            "thread_queue_size": 64,
            "colorspace": fmt.colour_matrix,
            "color_range": fmt.colour_range,
        }
        if fmt.colour_primaries:
            vin_args["color_primaries"] = fmt.colour_primaries
        if fmt.colour_transfer:
            vin_args["color_trc"] = fmt.colour_transfer
        if self.rotation:
            # Tag the stored frames with the source's rotation; autorotate off, or ffmpeg would
            # turn the pixels instead of keeping the tag.
            vin_args["display_rotation"] = self.rotation
            vin_args["noautorotate"] = None
        if self._field_order:
            # NUT has no field flags either. Declared on the input, the order makes the
            # rawvideo decoder flag every frame interlaced, top or bottom first, which is what
            # the encoders read (x264's field parity, FFV1's and ProRes's picture structure).
            vin_args["field_order"] = self._field_order
        video = ffmpeg.input("pipe:0", **vin_args)["v:0"]
        sar = self.source.video.sample_aspect_ratio
        if sar != 1:
            # NUT's header holds the pixel aspect in a field PyAV cannot set. `setsar` only
            # relabels the frames (pixels untouched); the encoder and muxer carry it on (H.264
            # VUI, mp4/mov `pasp`, Matroska display size). Frames are in stored orientation,
            # so the stored SAR is the one. `max` >= both terms keeps the fraction exact (setsar
            # goes through a float). Square pixels stay untagged, as before.
            bound = max(sar.numerator, sar.denominator)
            video = video.filter("setsar", sar=f"{sar.numerator}/{sar.denominator}", max=bound)
        return video

    def _encoder_args(self) -> dict[str, object]:
        """Output options of the video encoder (first pass)."""
        fmt = self.format
        kwargs: dict[str, object] = {
            "c:v": fmt.codec.encoder,
            "pix_fmt": fmt.layout.name,
            "colorspace": fmt.colour_matrix,
            "color_range": fmt.colour_range,
            "fps_mode": "passthrough",
            "enc_time_base:v": "demux",
        }
        if fmt.colour_primaries:
            kwargs["color_primaries"] = fmt.colour_primaries
        if fmt.colour_transfer:
            kwargs["color_trc"] = fmt.colour_transfer
        if fmt.crf is not None:
            kwargs["crf"] = fmt.crf
            kwargs["preset"] = self.opts.preset
        encoder = fmt.codec.encoder
        if self.opts.threads:
            kwargs["threads:v"] = self.opts.threads
        elif self.opts.bitexact and encoder in ("libx264", "libx265"):
            # x264's and x265's bytes depend on their frame-thread count, which "automatic"
            # takes from the machine's cores: a fixed count makes any machine write the same.
            kwargs["threads:v"] = BITEXACT_THREADS
        kwargs.update(dict(fmt.codec.encoder_args))
        if self.closed_gop and encoder in ("libx264", "libx265"):
            _add_params(kwargs, encoder, "open-gop=0")
        flags: list[str] = []
        if self._field_order and encoder == "libx264":
            # Field-aware DCT and motion search (MBAFF). The parity must match the frames'
            # flags, or libx264 reconfigures itself to what the frames say.
            flags += ["+ildct", "+ilme"]
            _add_params(kwargs, encoder, "tff=1" if _TOP_FIRST[self._field_order] else "bff=1")
        elif self._field_order and encoder == "prores_ks":
            flags.append("+ildct")  # two field pictures per frame, as interlaced ProRes is
        # x265 codes interlace only as separate half-height field pictures: its frames stay
        # progressive-coded, with the field order tag of the source.
        if self.opts.bitexact:
            flags.append("+bitexact")  # the "encoder" tag without libavcodec's version
        if flags:
            kwargs["flags:v"] = "".join(flags)
        return kwargs

    def _container_args(self) -> dict[str, object]:
        """Output options of the muxer, the same in both passes."""
        fmt = self.format
        kwargs: dict[str, object] = {"f": fmt.container}
        if fmt.container in ("mp4", "mov"):
            # The track timescale is the source's time base, so every pts stays an integer.
            if self.time_base.numerator == 1:
                kwargs["video_track_timescale"] = self.time_base.denominator
            kwargs["movflags"] = "+use_metadata_tags+write_colr"
            if fmt.codec.name == "h265":
                kwargs["tag:v"] = "hvc1"
        if self.opts.bitexact:
            # No random Matroska SegmentUID, no library versions ("Lavf" alone).
            kwargs["fflags"] = "+bitexact"
        return kwargs

    def _source_streams(self, kwargs: dict[str, object]) -> list[ffmpeg.nodes.FilterableStream]:
        """The source's audio and subtitles, and its metadata options into `kwargs`; the
        source is the command's second input."""
        if self.source.is_image_sequence or self.video_only:
            kwargs["map_metadata"] = "-1"
            return []
        src = ffmpeg.input(str(self.source.path))
        outputs = []
        if self.opts.audio != "none":
            outputs.append(src["a?"])
            kwargs["c:a"] = "copy" if self.opts.audio == "copy" else "aac"
            if self.opts.audio == "aac" and self.opts.bitexact:
                kwargs["flags:a"] = "+bitexact"
        subtitles = subtitle_codec(self.source, self.format.container, self.path)
        if subtitles is not None:
            outputs.append(src["s?"])
            kwargs["c:s"] = subtitles
        if self.opts.keep_metadata:
            kwargs["map_metadata"] = "1"
            kwargs["map_chapters"] = "1"
            if self.source.video is not None:
                kwargs["map_metadata:s:v:0"] = f"1:s:{self.source.video.index}"
                if self.source.video.timecode:
                    kwargs["timecode"] = self.source.video.timecode
        else:
            kwargs["map_metadata"] = "-1"
        return outputs

    def _command(self, width: int, height: int) -> list[str]:
        """ffmpeg reading raw frames from stdin: the whole output or, when a second pass sets
        the field order, the encoded video alone. (The frame size travels in NUT's header.)"""
        kwargs = {**self._encoder_args(), **self._container_args()}
        outputs = [self._raw_video()]
        if self._retag:
            kwargs["map_metadata"] = "-1"
            return _compile(outputs, self._encoded, kwargs)
        outputs += self._source_streams(kwargs)
        return _compile(outputs, self._tmp, kwargs)

    def _retag_command(self, encoder_tag: str | None) -> list[str]:
        """ffmpeg copying the first pass's video with the source's field order, and muxing in
        the source's other streams exactly as a single pass would."""
        kwargs: dict[str, object] = {"c:v": "copy", "field_order:v": self._field_order}
        kwargs.update(self._container_args())
        outputs = [ffmpeg.input(str(self._encoded))["v:0"], *self._source_streams(kwargs)]
        if encoder_tag:
            kwargs["metadata:s:v:0"] = f"encoder={encoder_tag}"
        return _compile(outputs, self._tmp, kwargs)

    # -- lifecycle ----------------------------------------------------------------------------

    def _start(self, width: int, height: int) -> None:
        cmd = self._command(width, height)
        log.debug("ffmpeg: %s", " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._stderr)
        # FFmpeg writes the pipe itself ("pipe:FD"): no Python callback per packet, so it is
        # faster, and Ctrl-C arrives as KeyboardInterrupt instead of inside a C callback.
        self._nut = av.open(f"pipe:{self._proc.stdin.fileno()}", mode="w", format="nut")
        stream = self._nut.add_stream("rawvideo")
        stream.width, stream.height = width, height
        stream.pix_fmt = self.format.layout.name
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        if self.source.video is not None and self.source.video.average_rate:
            stream.codec_context.framerate = self.source.video.average_rate
        self._stream = stream

    def write(self, rgb: Tensor, pts: int) -> None:
        """Encode one frame.

        Args:
            rgb: (3, H, W) float in [0, 1], display-referred, display orientation.
            pts: the frame's pts in the source's time base; strictly increasing.
        Raises:
            ProcessingError: ffmpeg stopped (its message is included).
            InputError: a frame size change or non-increasing pts.
        """
        stored = to_stored(rgb, self.rotation)
        _, h, w = stored.shape
        if self._size is None:
            self._size = (w, h)
            self._start(w, h)
        elif self._size != (w, h):
            raise InputError(
                f"{self.name}: frame at pts {pts} is {w}x{h}, earlier frames were "
                f"{self._size[0]}x{self._size[1]}; a video has one frame size."
            )
        if self._last_pts is not None and pts <= self._last_pts:
            raise InputError(
                f"{self.source.path}: pts {pts} does not increase (previous {self._last_pts}); "
                "the input's timestamps are broken."
            )
        self._last_pts = pts
        frame = rgb_to_frame(stored, self.format.layout, self.format.spec)
        frame.pts = pts
        frame.time_base = self.time_base
        try:
            for packet in self._stream.encode(frame):
                self._nut.mux(packet)
        except (BrokenPipeError, OSError, av.FFmpegError) as err:
            raise self._failure("ffmpeg stopped while receiving frames") from err
        self.frames_written += 1

    def close(self) -> Path:
        """Finish encoding and move the file into place.

        Returns:
            The output path.
        Raises:
            ProcessingError: ffmpeg failed; nothing is left at the output path.
            InputError: no frame was written.
        """
        if self._proc is None:
            self.abort()
            raise InputError(f"{self.source.path}: no frame could be decoded; nothing written.")
        try:
            for packet in self._stream.encode(None):
                self._nut.mux(packet)
            self._nut.close()
            self._proc.stdin.close()
        except (BrokenPipeError, OSError, av.FFmpegError) as err:
            raise self._failure("ffmpeg stopped while finishing") from err
        code = self._proc.wait()
        if code != 0:
            raise self._failure(f"ffmpeg exited with code {code}")
        if self._retag:
            self._run_retag()
        os.replace(self._tmp, self.path)
        self._encoded.unlink(missing_ok=True)
        self._stderr.close()
        log.info("wrote %s (%d frames)", self.path, self.frames_written)
        return self.path

    def _run_retag(self) -> None:
        cmd = self._retag_command(video_encoder_tag(self._encoded))
        log.debug("ffmpeg: %s", " ".join(cmd))
        self._stderr.seek(0)
        self._stderr.truncate()
        code = subprocess.run(cmd, stderr=self._stderr, check=False).returncode
        if code != 0:
            raise self._failure(f"ffmpeg exited with code {code} while setting the field order")

    def _failure(self, what: str) -> ProcessingError:
        message = self._ffmpeg_message()
        code = self._proc.returncode if self._proc is not None else None
        self.abort()
        if "No space left" in message:
            return ProcessingError(
                f"{self.name}: the disk is full ({message}). Free space and run again."
            )
        if not message and code is not None and code < 0:
            # Killed by a signal, ffmpeg said nothing: the signal is all there is to tell.
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            message = f"ffmpeg was killed by {name}{_SIGNAL_CAUSES.get(-code, '')}"
        return ProcessingError(f"{self.name}: {what}: {message or 'no message'}.")

    def _ffmpeg_message(self) -> str:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return " ".join(text.splitlines()[-3:])

    def abort(self) -> None:
        """Stop ffmpeg and remove the temporary file; the output path is never touched."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        self._tmp.unlink(missing_ok=True)
        self._encoded.unlink(missing_ok=True)
        if not self._stderr.closed:
            self._stderr.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
