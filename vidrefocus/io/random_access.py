"""Random access ("give me the frames at these times") for previews, point picking and export."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

# decord bundles an old zlib (1.2.3); loaded before OpenCV, it serves OpenCV's libpng too,
# which then cannot read PNGs ("libpng error: bad parameters to zlib"). OpenCV first avoids it.
import cv2  # noqa: F401
import decord
import numpy as np
import torch

from vidrefocus.errors import InputError
from vidrefocus.io.pixfmt import frame_to_rgb
from vidrefocus.io.probe import frame_pts, open_container
from vidrefocus.io.reader import DecodedFrame, VideoReader, seek_target, to_display
from vidrefocus.io.sequence import open_sequence

if TYPE_CHECKING:
    import av

__all__ = ["RandomAccessReader"]

log = logging.getLogger(__name__)


class RandomAccessReader:
    """Frames by index or time, without decoding the whole video.

    decord builds the frame index (frame count, keyframe positions) and, in `exact=False` mode,
    decodes the frames itself. decord converts to RGB with swscale's fast integer path and its
    own chroma interpolation, which differs from the streaming reader by up to 3/255 (measured
    on BT.601 and BT.709 H.264: max 2.9/255, mean 0.6/255). So the default `exact=True` mode
    uses decord's keyframe index to seek, and decodes from that keyframe with PyAV through the
    same conversion as `VideoReader`: pixels and pts are then identical to a streaming read.

    `frames_decoded` counts the frames decoded so far (all of them, also those decoded only to
    reach a target after a keyframe; decord mode counts the frames it returned, image
    sequences the images read), so a caller can show that it did not decode the whole video.

    Args:
        path: a video file or an image sequence folder (sequences need no index).
        exact: decode pixels exactly like `VideoReader` (default) or take decord's RGB.
        fps: frame rate assumed for image sequences.

    Raises:
        InputError: the input cannot be opened or has no video stream.

    Example:
        >>> ra = RandomAccessReader("samples/scene.mp4")  # doctest: +SKIP
        >>> [f.pts for f in ra.at_times([0.5, 2.0])]  # doctest: +SKIP
    """

    def __init__(self, path: Path | str, *, exact: bool = True, fps: Fraction = Fraction(24)):
        self.path = Path(path)
        self.exact = exact
        self._stream_reader = VideoReader(self.path, fps=fps)
        self.info = self._stream_reader.info
        self.video = self._stream_reader.video
        self.time_base = self.video.time_base
        self.frames_decoded = 0
        if self._stream_reader.info.is_image_sequence:
            # One pts per image, as `VideoReader` yields them: a missing file is a gap in time,
            # not a frame (its index would never be read).
            seq = open_sequence(self.path, fps)
            self._pts = seq.pts
            self._keys = list(range(len(self._pts)))
            self._decord = None
            return
        self._pts = frame_pts(self.path)
        try:
            self._decord = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=1)
        except decord.DECORDError as err:
            raise InputError(f"{self.path}: decord cannot index this file ({err}).") from err
        if len(self._decord) != len(self._pts):
            log.warning(
                "%s: decord counts %d frames, the packet scan %d; using the packet scan.",
                self.path,
                len(self._decord),
                len(self._pts),
            )
        self._keys = sorted(int(k) for k in self._decord.get_key_indices()) or [0]

    def __len__(self) -> int:
        return len(self._pts)

    @property
    def pts(self) -> list[int]:
        """Every frame's pts in presentation order."""
        return list(self._pts)

    def index_at(self, time_s: float | Fraction) -> int:
        """Index of the frame shown at `time_s` (the last frame whose pts <= the time)."""
        target = Fraction(time_s) / self.time_base
        i = bisect.bisect_right(self._pts, target) - 1
        return min(max(i, 0), len(self._pts) - 1)

    def at_times(self, times_s: Sequence[float | Fraction]) -> list[DecodedFrame]:
        """Frames shown at the given times (seconds from the stream's time origin)."""
        return self.at_indices([self.index_at(t) for t in times_s])

    def at_indices(self, indices: Sequence[int]) -> list[DecodedFrame]:
        """Frames at presentation-order indices, in the order asked.

        Raises:
            InputError: an index outside [0, len).
        """
        for i in indices:
            if not 0 <= i < len(self._pts):
                raise InputError(
                    f"{self.path}: frame {i} does not exist (the video has {len(self)} frames)."
                )
        wanted = sorted(set(indices))
        if self._decord is None:
            got = self._read_sequence(wanted)
        elif self.exact:
            got = self._read_exact(wanted)
        else:
            got = self._read_decord(wanted)
        return [got[i] for i in indices]

    def iter_range(self, start: int, stop: int) -> Iterator[DecodedFrame]:
        """Frames `start` .. `stop - 1` in presentation order, streamed (not held in memory).

        Decoding starts at the keyframe at or before `start` and ends at `stop - 1`, always
        exactly (PyAV, like `VideoReader`), whatever `exact` says.

        Raises:
            InputError: an empty or out-of-range span.
        """
        if not 0 <= start < stop <= len(self._pts):
            raise InputError(
                f"{self.path}: frames {start}..{stop - 1} are not a span of the video's "
                f"{len(self)} frames."
            )
        if self._decord is None:
            for frame in self._stream_reader:
                self.frames_decoded += 1
                if frame.index >= stop:
                    return
                if frame.index >= start:
                    yield frame
            return
        reader = self._stream_reader
        last = self._pts[stop - 1]
        index = {p: i for i, p in enumerate(self._pts[start:stop], start)}
        with open_container(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            key = self._keys[max(bisect.bisect_right(self._keys, start) - 1, 0)]
            self._seek(container, stream, key)
            previous = None
            for frame in container.decode(stream):
                self.frames_decoded += 1
                previous = self._check_order(frame.pts, previous)
                if frame.pts in index:
                    rgb = to_display(
                        frame_to_rgb(frame, reader.layout, reader.spec), self.video.rotation
                    )
                    yield DecodedFrame(
                        rgb=rgb, pts=frame.pts, time_base=self.time_base, index=index.pop(frame.pts)
                    )
                if frame.pts is not None and frame.pts >= last:
                    break
        if index:
            # The decoder never showed them (pts that jump back, a broken index): a caller
            # must not take a shorter span for the whole one.
            missing = sorted(index.values())
            raise InputError(
                f"{self.path}: frames {missing[0]}..{missing[-1]} ({len(missing)} of "
                f"{start}..{stop - 1}) could not be decoded where the packet scan puts them; the "
                "file's timestamps or index are broken."
            )

    def _read_sequence(self, wanted: list[int]) -> dict[int, DecodedFrame]:
        wanted_set, last = set(wanted), max(wanted)
        frames = {}
        for f in self._stream_reader:
            self.frames_decoded += 1
            if f.index in wanted_set:
                frames[f.index] = f
            if f.index >= last:
                break
        return frames

    def _read_decord(self, wanted: list[int]) -> dict[int, DecodedFrame]:
        batch = self._decord.get_batch(wanted).asnumpy()
        self.frames_decoded += len(wanted)
        out = {}
        for i, arr in zip(wanted, batch, strict=True):
            rgb = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
            # decord (its bundled FFmpeg) already applies the display rotation.
            out[i] = DecodedFrame(rgb=rgb, pts=self._pts[i], time_base=self.time_base, index=i)
        return out

    def _read_exact(self, wanted: list[int]) -> dict[int, DecodedFrame]:
        reader = self._stream_reader
        out: dict[int, DecodedFrame] = {}
        with open_container(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            pending = list(wanted)
            while pending:
                first = pending[0]
                key = self._keys[max(bisect.bisect_right(self._keys, first) - 1, 0)]
                self._seek(container, stream, key)
                targets = {self._pts[i]: i for i in pending}
                last = max(targets)
                previous = None
                for frame in container.decode(stream):
                    self.frames_decoded += 1
                    previous = self._check_order(frame.pts, previous)
                    if frame.pts in targets:
                        i = targets.pop(frame.pts)
                        rgb = frame_to_rgb(frame, reader.layout, reader.spec)
                        rgb = to_display(rgb, self.video.rotation)
                        out[i] = DecodedFrame(
                            rgb=rgb, pts=frame.pts, time_base=self.time_base, index=i
                        )
                        # A later target past the next keyframe is cheaper to reach by seeking.
                        nxt = [j for j in pending if j not in out]
                        if nxt and self._next_key_after(i) <= nxt[0]:
                            break
                    if frame.pts is not None and frame.pts >= last:
                        break
                missing = [i for i in pending if i not in out]
                if missing and missing[0] == first:
                    raise InputError(
                        f"{self.path}: frame {first} (pts {self._pts[first]}) could not be "
                        "decoded; the file may be damaged there."
                    )
                pending = missing
        return out

    def _check_order(self, pts: int | None, previous: int | None) -> int | None:
        """`pts` if it comes after `previous`, the frame decoded before it.

        Frames are looked up by pts in the sorted packet scan, so pts that go back (two
        recordings glued together) or repeat would pick the wrong frames, or silently none.

        Raises:
            InputError: `pts` does not increase.
        """
        if pts is None:
            return previous
        if previous is not None and pts <= previous:
            raise InputError(
                f"{self.path}: pts {pts} does not increase (previous {previous}); the input's "
                "timestamps are broken."
            )
        return pts

    def _seek(
        self, container: av.container.InputContainer, stream: av.VideoStream, key: int
    ) -> None:
        """Seek to keyframe `key` (`seek_target`: early in containers that seek by dts)."""
        target = seek_target(self.info, self._pts[key])
        container.seek(target, stream=stream, backward=True, any_frame=False)

    def _next_key_after(self, index: int) -> int:
        j = bisect.bisect_right(self._keys, index)
        return self._keys[j] if j < len(self._keys) else len(self._pts)
