"""`vidrefocus bench depth`: ms per frame of every depth provider and of the stabiliser.

Rows, on a deterministic panning sequence at the asked size: reading a user's 16-bit PNG
sequence (the baseline: no estimation at all), the built-in DepthNet raw and with the full
stabiliser, the stabiliser's two parts on their own, and Depth Anything V2 Small with the
real architecture but RANDOM weights (speed does not depend on weight values; the real
weights cannot be fetched offline), on the CPU and on CUDA when there is a GPU.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidrefocus.depth_temporal import DepthStabilizer, StabilizeSettings, align_edges
from vidrefocus.errors import InputError
from vidrefocus.eval.bench import BenchReport, BenchRow, best_of, parse_size
from vidrefocus.eval.bench_deblur import _sequence, _sync
from vidrefocus.io.depth import DepthSequence
from vidrefocus.models.depthnet import BuiltinDepth, load_depthnet

__all__ = ["run"]

log = logging.getLogger(__name__)


def _user_sequence(folder: Path, frames: Tensor) -> Callable[[], Tensor]:
    """Write a 16-bit PNG sequence once; the timed part reads it back."""
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:06d}.png"), (1000 + 3000 * f[1].cpu().numpy()).astype(
            np.uint16))  # fmt: skip

    def read() -> Tensor:
        seq = DepthSequence(folder, units="mm", frame_count=frames.shape[0])
        return torch.cat([seq[i] for i in range(len(seq))])

    return read


_Row = tuple[str, Callable[[], Tensor], str, tuple[object, ...]]


def _rows(device: torch.device, frames: Tensor, tmp: Path) -> list[_Row]:
    """(label, timed call, note, objects to `reset()` before each run); the first is the
    baseline."""
    from vidrefocus.models.depth_anything import random_depth_anything

    builtin = BuiltinDepth(load_depthnet(device=device))
    raw = builtin(frames)
    full = DepthStabilizer(metric=False)
    temporal = DepthStabilizer(metric=False, settings=replace(StabilizeSettings(), edges=False))
    anything = random_depth_anything("small", device=device)
    rows: list[_Row] = []
    if device.type == "cpu":
        read = _user_sequence(tmp, frames)
        rows.append(("user sequence (16-bit PNG read)", read, "baseline: no estimation", ()))
    rows += [
        ("built-in DepthNet, raw", lambda: builtin(frames), "incl. DIS flow for parallax",
         (builtin,)),
        ("built-in DepthNet + stabiliser", lambda: full(builtin(frames), frames),
         "what --depth auto runs offline", (builtin, full)),
        ("stabiliser, temporal only", lambda: temporal(raw, frames), "DIS flow + fit + blend",
         (temporal,)),
        ("edge alignment only", lambda: align_edges(raw, frames), "two-sided colour snap", ()),
        ("Depth Anything V2 Small, input 518", lambda: anything(frames),
         "RANDOM weights, real architecture", ()),
    ]  # fmt: skip
    return rows


def run(
    size: str = "720p",
    seconds: float = 0.0,
    repeat: int = 2,
    frames: int = 4,
    devices: tuple[str, ...] | None = None,
) -> BenchReport:
    """Time every depth provider on a `frames`-long panning sequence.

    Args:
        size: a size name or "WxH".
        seconds: unused (the io benchmark's clip length); kept for a uniform CLI.
        repeat: runs per row, the best is kept.
        frames: frames per timed sequence.
        devices: "cpu" and/or "cuda" (default: the CPU, plus CUDA when available).
    Raises:
        InputError: an unknown size or device, or frames < 1.
    """
    del seconds
    w, h = parse_size(size)
    names = devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    for d in names:
        if d not in ("cpu", "cuda") or (d == "cuda" and not torch.cuda.is_available()):
            raise InputError(f"device {d!r} is not available; use cpu or (with a GPU) cuda.")
    if frames < 1:
        raise InputError(f"frames must be >= 1; got {frames}.")
    report = BenchReport(
        title=(
            f"depth: ms per frame at {size} on {', '.join(names)}, {frames}-frame panning "
            f"sequence, {torch.get_num_threads()} CPU threads"
        ),
        command=f"vidrefocus bench depth --size {size} --repeat {repeat}",
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            dev = torch.device(name)
            seq = _sequence(w, h, frames, dev)
            base: float | None = None
            for label, fn, note, stateful in _rows(dev, seq, Path(tmp)):

                def once(
                    fn: Callable[[], Tensor] = fn,
                    stateful: tuple[object, ...] = stateful,
                    dev: torch.device = dev,
                ) -> int:
                    for obj in stateful:
                        obj.reset()  # type: ignore[attr-defined]
                    with torch.inference_mode():
                        fn()
                    _sync(dev)
                    return frames

                once()  # warm-up
                secs, n = best_of(repeat, once)
                ratio = None if base is None else secs / base
                base = secs if base is None else base
                report.rows.append(BenchRow(f"{size} {name}: {label}", secs, n, note, ratio))
                log.info("%s %s %s: %.1f ms/frame", size, name, label, 1000 * secs / n)
    return report
