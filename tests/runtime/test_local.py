"""In-process execution: the encode thread keeps order, surfaces the sink's errors, and a
stage failure leaves no output."""

from __future__ import annotations

import gc
import os
import sys
import threading
import weakref
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from torch import Tensor

from vidrefocus.config import load_config
from vidrefocus.errors import ProcessingError
from vidrefocus.io.reader import DecodedFrame, VideoReader
from vidrefocus.io.writer import VideoWriter
from vidrefocus.runtime.local import WriteBehind, batch_frames, prefetch, run_local
from vidrefocus.stages import FrameBatch


class ListSink:
    """Records what it is given and the thread that gave it; fails at `fail_at` if set, and
    holds its first frame until `gate` is set."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.pts: list[int] = []
        self.threads: set[str] = set()
        self.fail_at = fail_at
        self.gate = threading.Event()
        self.gate.set()

    def write(self, rgb: Tensor, pts: int) -> None:
        self.gate.wait()
        if pts == self.fail_at:
            raise ProcessingError(f"encoder stopped at pts {pts}")
        self.pts.append(pts)
        self.threads.add(threading.current_thread().name)
        self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _feed(
    sink: ListSink, depth: int, frames: int, fail: BaseException | None = None, nice: int = 0
) -> None:
    with WriteBehind(sink, depth, nice=nice) as behind:  # type: ignore[arg-type]
        for pts in range(frames):
            behind.write(torch.zeros(3, 2, 2), pts)
        if fail is not None:
            raise fail


def test_write_behind_keeps_order_off_the_caller_thread() -> None:
    sink = ListSink()
    _feed(sink, depth=2, frames=50)
    assert sink.pts == list(range(50))
    assert sink.threads == {"vidrefocus-encode"}


def test_write_behind_reraises_the_sink_error() -> None:
    sink = ListSink(fail_at=5)
    with pytest.raises(ProcessingError, match="pts 5"):
        _feed(sink, depth=1, frames=50)
    assert sink.pts == [0, 1, 2, 3, 4]


def test_write_behind_drops_queued_frames_when_the_caller_fails() -> None:
    sink = ListSink()
    sink.gate.clear()  # the first frame is being encoded while the caller fails
    threading.Timer(0.2, sink.gate.set).start()
    with pytest.raises(KeyboardInterrupt):
        _feed(sink, depth=64, frames=10, fail=KeyboardInterrupt())
    # at most the frame in the encoder when the caller failed
    assert sink.pts in ([], [0]), "queued frames were encoded after the caller failed"


def test_batch_frames_keeps_no_decoded_frame_of_a_batch_it_gave() -> None:
    alive: dict[int, weakref.ref[Tensor]] = {}

    def frame(pts: int) -> DecodedFrame:
        rgb = torch.full((3, 4, 4), float(pts))
        alive[pts] = weakref.ref(rgb)
        return DecodedFrame(rgb=rgb, pts=pts, time_base=Fraction(1, 24), index=pts)

    sizes = []
    for batch in batch_frames((frame(pts) for pts in range(10)), 4, split_at=6):
        gc.collect()
        # The batch is a stacked copy: the decoded frames it was made of are gone.
        assert not any(alive[pts]() is not None for pts in batch.pts), "decoded frames kept"
        sizes.append(len(batch.pts))
        assert torch.equal(batch.frames[:, 0, 0, 0], torch.tensor(batch.pts, dtype=torch.float))
    assert sizes == [4, 2, 4]


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_only
def test_io_threads_run_nicer_than_the_caller_and_the_caller_stays() -> None:
    base = _own_nice()
    sink = ListSink()
    _feed(sink, depth=2, frames=3, nice=5)
    assert sink.nice == min(19, base + 5)
    decoded: list[int] = []

    def frames():  # runs in the decode thread
        for _ in range(3):
            decoded.append(_own_nice())
            yield object()

    assert len(list(prefetch(frames(), 2, nice=7))) == 3  # type: ignore[arg-type]
    assert decoded == [min(19, base + 7)] * 3
    assert _own_nice() == base, "the caller's priority changed"


@linux_only
def test_the_encoder_process_inherits_the_write_thread_priority(
    vfr_clip: Path, tmp_path: Path
) -> None:
    base = _own_nice()
    source = VideoReader(vfr_clip)
    writer = VideoWriter(tmp_path / "out.mp4", source.info, load_config().encode)
    frames = list(source)[:4]
    with writer, WriteBehind(writer, 2, nice=4) as sink:
        for f in frames:
            sink.write(f.rgb, f.pts)
        while writer.frames_written < len(frames):
            threading.Event().wait(0.01)
        # The ffmpeg process started by the write thread at the first frame, still encoding.
        assert os.getpriority(os.PRIO_PROCESS, writer._proc.pid) == min(19, base + 4)
    assert len(list(VideoReader(tmp_path / "out.mp4"))) == len(frames)


class FailAt:
    """Identity stage that raises at a given pts."""

    def __init__(self, pts: int) -> None:
        self.pts = pts

    def reset(self) -> None:
        pass

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        if self.pts in batch.pts:
            raise RuntimeError("stage exploded")
        return batch


def test_run_local_identity_and_failure(vfr_clip: Path, tmp_path: Path) -> None:
    config = load_config(overrides={"encode.codec": "ffv1"})
    out = tmp_path / "out.mkv"
    result = run_local(vfr_clip, out, [], config)
    frames = list(VideoReader(out))
    assert result.frames == len(frames) == 30
    source = list(VideoReader(vfr_clip))
    assert all(torch.equal(a.rgb, b.rgb) for a, b in zip(source, frames, strict=True))
    failing = tmp_path / "failing.mkv"
    with pytest.raises(ProcessingError, match="stage exploded"):
        run_local(vfr_clip, failing, [FailAt(source[20].pts)], config)  # type: ignore[list-item]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"], "partial output left"
