"""What an enhancement covers: a region of interest and spans of frames."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vidrefocus.errors import InputError
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.timeline import parse_time

__all__ = ["Roi", "Span", "frame_spans", "parse_roi"]

_FRAME = re.compile(r"f(?P<index>\d+)")


@dataclass(frozen=True)
class Roi:
    """A rectangle of the frame in display pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def check_inside(self, width: int, height: int) -> None:
        """Raises InputError unless the rectangle lies inside a `width` x `height` frame."""
        if self.x + self.w > width or self.y + self.h > height:
            raise InputError(
                f"--roi {self.x},{self.y},{self.w},{self.h} reaches past the {width}x{height} "
                f"frame; the right edge must be <= {width} and the bottom <= {height}."
            )

    def padded(self, margin: int, width: int, height: int, *, align: int = 1) -> Roi:
        """This rectangle grown by at least `margin` px on every side, clipped to the frame.

        The top-left corner moves down to a multiple of `align` (a network's pixel grid: the
        region then sees the same grid as inside the whole frame; 2 keeps an interlaced
        frame's field parity), and so does the size unless it reaches the frame's edge.
        """
        x0 = max(0, self.x - margin) // align * align
        y0 = max(0, self.y - margin) // align * align
        x1, y1 = self.x + self.w + margin, self.y + self.h + margin
        x1 = width if x1 >= width else min(width, x0 + -(-(x1 - x0) // align) * align)
        y1 = height if y1 >= height else min(height, y0 + -(-(y1 - y0) // align) * align)
        return Roi(x0, y0, x1 - x0, y1 - y0)


def parse_roi(text: str) -> Roi:
    """`"X,Y,W,H"` (display pixels, top-left origin) as a `Roi`.

    Raises:
        InputError: not four integers, a negative corner or an empty size.

    Example:
        >>> parse_roi("320, 200, 160, 48")
        Roi(x=320, y=200, w=160, h=48)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise InputError(
            f"--roi {text!r}: give four whole numbers X,Y,W,H in pixels (left, top, width, "
            "height), e.g. --roi 320,200,160,48."
        ) from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise InputError(
            f"--roi {text!r}: the corner must be >= 0 and the size at least 1x1 pixel."
        )
    return Roi(x, y, w, h)


@dataclass(frozen=True)
class Span:
    """Frames `start` .. `stop - 1` in presentation order, and what the user asked for."""

    start: int
    stop: int
    spec: str

    def __len__(self) -> int:
        return self.stop - self.start


def _index(spec: str, reader: RandomAccessReader, what: str) -> int:
    n = len(reader)
    if match := _FRAME.fullmatch(spec):
        index = int(match["index"])  # exact: the n-th frame, even in variable-rate video
        if index >= n:
            raise InputError(
                f"--frames {what!r}: frame {index} does not exist (the clip has {n} frames, "
                f"f0 .. f{n - 1})."
            )
        return index
    try:
        t = parse_time(spec, reader.video.average_rate)
    except InputError as err:
        raise InputError(f"--frames {what!r}: {err}") from err
    last = reader.pts[-1] * reader.time_base
    if t > last:
        raise InputError(
            f"--frames {what!r}: {float(t):g} s is after the last frame ({float(last):g} s)."
        )
    return reader.index_at(t)


def frame_spans(text: str | Sequence[str] | None, reader: RandomAccessReader) -> list[Span]:
    """Resolve `--frames` to sorted, non-overlapping spans of frame indices.

    Items are separated by commas; each is one frame or an inclusive range `A-B` (`A-` runs to
    the end). Frames are `f120` (the 121st frame, exact even in variable-frame-rate video), a
    time (`2.5s`, `2.5`) or timecode (`00:01:02:12`), which name the frame on screen then.

    Args:
        text: the spec, a list of items, or None for every frame.
        reader: the clip.
    Returns:
        Spans in time order; overlapping or touching ranges are merged.
    Raises:
        InputError: an empty or malformed item, a frame past the end, or a range that runs
            backwards.

    Example:
        >>> frame_spans("f10-f19, f0", reader)  # doctest: +SKIP
        [Span(start=0, stop=1, spec='f0'), Span(start=10, stop=20, spec='f10-f19')]
    """
    n = len(reader)
    if text is None:
        return [Span(0, n, "all")]
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    items = [s for s in items if s]
    if not items:
        raise InputError("--frames names no frame; give e.g. --frames 'f100-f250, 12s-14.5s'.")
    spans: list[Span] = []
    for item in items:
        # Timecodes hold no "-", so the first "-" separates the two ends of a range.
        first, dash, second = item.partition("-")
        start = _index(first.strip(), reader, item)
        stop = (
            n
            if dash and not second.strip()
            else _index((second or first).strip(), reader, item) + 1
        )
        if stop <= start:
            raise InputError(
                f"--frames {item!r}: the range runs backwards (frame {start} to {stop - 1}); "
                "write the earlier end first."
            )
        spans.append(Span(start, stop, item))
    spans.sort(key=lambda s: s.start)
    merged = [spans[0]]
    for span in spans[1:]:
        last = merged[-1]
        if span.start <= last.stop:
            merged[-1] = Span(last.start, max(last.stop, span.stop), f"{last.spec}, {span.spec}")
        else:
            merged.append(span)
    return merged
