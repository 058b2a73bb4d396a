"""Encode frames with the ffmpeg binary (imageio-ffmpeg), keeping pts, audio and metadata."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

import av
import ffmpeg
import imageio_ffmpeg
from torch import Tensor

from vidrefocus.config import EncodeOptions
from vidrefocus.errors import InputError, ProcessingError
from vidrefocus.io.formats import OutputFormat, resolve_output
from vidrefocus.io.pixfmt import rgb_to_frame
from vidrefocus.io.probe import MediaInfo
from vidrefocus.io.reader import to_stored

__all__ = [
    "VideoWriter",
    "check_output_folder",
    "check_output_path",
    "ffmpeg_exe",
    "temp_path_for",
]

log = logging.getLogger(__name__)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (or `IMAGEIO_FFMPEG_EXE`)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def temp_path_for(target: Path) -> Path:
    """A hidden, unique name beside `target`, so the final rename stays on one filesystem."""
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.vidrefocus-tmp{target.suffix}")


def _refuse_inputs(output: Path, inputs: list[Path]) -> None:
    resolved = output.resolve()
    for inp in inputs:
        same = inp.exists() and output.exists() and os.path.samefile(inp, output)
        if same or inp.resolve() == resolved:
            raise InputError(
                f"{output}: the output path is the input file; write to a new name so the "
                "original stays untouched."
            )


def _check_parent_writable(output: Path) -> None:
    folder = output.resolve().parent
    if not folder.is_dir():
        raise InputError(f"{output}: the folder {folder} does not exist; create it first.")
    try:
        # Creating a file is the only reliable test: permission bits say nothing for root,
        # read-only mounts or pseudo filesystems.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vidrefocus-probe-"):
            pass
    except OSError as err:
        raise InputError(
            f"{output}: the folder {folder} is not writable ({err.strerror}); pick another folder."
        ) from err


def check_output_path(output: Path, inputs: list[Path], *, overwrite: bool = False) -> None:
    """Refuse an output path that would lose data or cannot be written, before any work.

    Args:
        output: the path the user asked for.
        inputs: every input of the job (video, depth, keyframes...).
        overwrite: allow replacing an existing file.
    Raises:
        InputError: the output is an input, exists (without `overwrite`), or its folder is
            missing or not writable.
    """
    _refuse_inputs(output, inputs)
    _check_parent_writable(output)
    if output.is_dir():
        raise InputError(f"{output}: is a folder; give a file name such as {output / 'out.mp4'}.")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: already exists; pass --overwrite to replace it.")


def check_output_folder(output: Path, inputs: list[Path], *, overwrite: bool = False) -> None:
    """Refuse an output folder that would lose or change data or cannot be written.

    Args:
        output: the folder the user asked for (it is created whole at the end of the job).
        inputs: every input of the job.
        overwrite: allow replacing an existing folder.
    Raises:
        InputError: the folder is an input, holds an input, lies inside an input folder,
            exists (without `overwrite`) or is a file, or its parent is missing or not
            writable.
    """
    resolved = output.resolve()
    for inp in inputs:
        inside = inp.resolve()
        same = inp.exists() and output.exists() and os.path.samefile(inp, output)
        if same or inside == resolved:
            raise InputError(
                f"{output}: the output folder is the input; write to a new folder so the "
                "original stays untouched."
            )
        if inside.is_relative_to(resolved):
            raise InputError(
                f"{output}: the output folder holds the input {inp}; write to a new folder so "
                "the original stays untouched."
            )
        if inp.is_dir() and resolved.is_relative_to(inside):
            raise InputError(
                f"{output}: the output folder lies inside the input folder {inp}; write to a "
                "folder outside it so the input stays untouched."
            )
    _check_parent_writable(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: is a file; give a folder name for this output.")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: already exists; pass --overwrite to replace it.")


class VideoWriter:
    """Streams frames into ffmpeg and produces the output file atomically.

    Frames go to ffmpeg as a NUT stream of raw planes with their exact pts (PyAV muxes it into
    ffmpeg's stdin), so variable frame rate survives and ffmpeg never converts colours: the
    Y'CbCr codes are computed here with the output's matrix and range. The same ffmpeg process
    stream-copies audio, subtitles, chapters and metadata from the source. The file is written
    under a temporary name beside the target and renamed only when ffmpeg succeeded; on any
    failure or interruption the temporary file is removed and the target is untouched.

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
    ) -> None:
        if source.video is None:
            raise InputError(f"{source.path}: no video stream to write.")
        check_output_path(path, [source.path], overwrite=overwrite)
        self.path = path
        self.source = source
        self.opts = opts
        self.format: OutputFormat = resolve_output(path, source.video, opts)
        self.rotation = source.video.rotation if stored_rotation is None else stored_rotation
        self.time_base = source.video.time_base
        self.video_only = video_only
        self.closed_gop = closed_gop
        self.frames_written = 0
        self._tmp = temp_path_for(path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._nut: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._stderr = tempfile.TemporaryFile()
        self._size: tuple[int, int] | None = None
        self._last_pts: int | None = None

    # -- command line -------------------------------------------------------------------------

    def _command(self, width: int, height: int) -> list[str]:
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
        vin = ffmpeg.input("pipe:0", **vin_args)
        outputs = [vin["v:0"]]
        kwargs: dict[str, object] = {
            "c:v": fmt.codec.encoder,
            "pix_fmt": fmt.layout.name,
            "colorspace": fmt.colour_matrix,
            "color_range": fmt.colour_range,
            "fps_mode": "passthrough",
            "enc_time_base:v": "demux",
            "f": fmt.container,
        }
        if fmt.colour_primaries:
            kwargs["color_primaries"] = fmt.colour_primaries
        if fmt.colour_transfer:
            kwargs["color_trc"] = fmt.colour_transfer
        if fmt.crf is not None:
            kwargs["crf"] = fmt.crf
            kwargs["preset"] = self.opts.preset
        if self.opts.threads:
            kwargs["threads:v"] = self.opts.threads
        kwargs.update(dict(fmt.codec.encoder_args))
        if self.closed_gop and fmt.codec.encoder in ("libx264", "libx265"):
            key = "x264-params" if fmt.codec.encoder == "libx264" else "x265-params"
            kwargs[key] = ":".join(p for p in (kwargs.get(key), "open-gop=0") if p)
        if fmt.container in ("mp4", "mov"):
            # The track timescale is the source's time base, so every pts stays an integer.
            if self.time_base.numerator == 1:
                kwargs["video_track_timescale"] = self.time_base.denominator
            kwargs["movflags"] = "+use_metadata_tags+write_colr"
            if fmt.codec.name == "h265":
                kwargs["tag:v"] = "hvc1"
        if not self.source.is_image_sequence and not self.video_only:
            src = ffmpeg.input(str(self.source.path))
            if self.opts.audio != "none":
                outputs.append(src["a?"])
                kwargs["c:a"] = "copy" if self.opts.audio == "copy" else "aac"
            outputs.append(src["s?"])
            kwargs["c:s"] = "copy"
            if self.opts.keep_metadata:
                kwargs["map_metadata"] = "1"
                kwargs["map_chapters"] = "1"
                if self.source.video is not None:
                    kwargs["map_metadata:s:v:0"] = f"1:s:{self.source.video.index}"
                    if self.source.video.timecode:
                        kwargs["timecode"] = self.source.video.timecode
        else:
            kwargs["map_metadata"] = "-1"
        out = ffmpeg.output(*outputs, str(self._tmp), **kwargs)
        cmd = out.compile(cmd=ffmpeg_exe())
        # ffmpeg-python puts global options last, where ffmpeg ignores them.
        cmd[1:1] = ["-hide_banner", "-nostdin", "-loglevel", "error", "-copyts"]
        return cmd

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
                f"{self.path}: frame at pts {pts} is {w}x{h}, earlier frames were "
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
        os.replace(self._tmp, self.path)
        self._stderr.close()
        log.info("wrote %s (%d frames)", self.path, self.frames_written)
        return self.path

    def _failure(self, what: str) -> ProcessingError:
        message = self._ffmpeg_message()
        self.abort()
        if "No space left" in message:
            return ProcessingError(
                f"{self.path}: the disk is full ({message}). Free space and run again."
            )
        return ProcessingError(f"{self.path}: {what}: {message or 'no message'}.")

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
