"""`vidrefocus bench`: each capability timed against a baseline in the same run."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from vidrefocus import __version__
from vidrefocus.errors import InputError
from vidrefocus.machine import describe_machine

__all__ = ["BENCHES", "BenchReport", "BenchRow", "best_of", "parse_size", "run_bench"]

log = logging.getLogger(__name__)

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass
class BenchRow:
    """One measured configuration."""

    name: str
    seconds: float
    frames: int
    note: str = ""
    ratio: float | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0


@dataclass
class BenchReport:
    """A benchmark's rows plus where and how it ran."""

    title: str
    command: str
    rows: list[BenchRow] = field(default_factory=list)
    machine: str = field(default_factory=describe_machine)
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d"))

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            f"- machine: {self.machine}",
            f"- command: `{self.command}`",
            f"- date: {self.date}, vidrefocus {__version__}",
            "",
            "| run | wall s | frames | ms / frame | fps | ratio to baseline | note |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            ratio = f"{r.ratio:.3g}x" if r.ratio is not None else "baseline"
            lines.append(
                f"| {r.name} | {r.seconds:.2f} | {r.frames} | {r.ms_per_frame:.1f} "
                f"| {r.fps:.2f} | {ratio} | {r.note} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            "command": self.command,
            "machine": self.machine,
            "date": self.date,
            "rows": [{**asdict(r), "fps": r.fps} for r in self.rows],
        }


def parse_size(size: str, min_side: int = 16) -> tuple[int, int]:
    """(width, height) of a name from `SIZES` or of "WxH" (each side >= `min_side`).

    Raises:
        InputError: anything else.

    Example:
        >>> parse_size("704x576")
        (704, 576)
    """
    if size in SIZES:
        return SIZES[size]
    w, sep, h = size.partition("x")
    if sep and w.isdigit() and h.isdigit() and int(w) >= min_side and int(h) >= min_side:
        return int(w), int(h)
    raise InputError(f"unknown size {size!r}; use one of {', '.join(SIZES)}, all, or WxH.")


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    frames = 0
    for _ in range(repeat):
        start = time.perf_counter()
        frames = fn()
        best = min(best, time.perf_counter() - start)
    return best, frames


# name -> module defining `run(**kwargs) -> BenchReport`; imported only when asked for.
BENCHES = {
    "io": "vidrefocus.eval.bench_io",
    "bokeh": "vidrefocus.eval.bench_bokeh",
    "deblur": "vidrefocus.eval.bench_deblur",
    "runtime": "vidrefocus.eval.bench_runtime",
    "overlap": "vidrefocus.eval.bench_overlap",
    "memory": "vidrefocus.eval.bench_memory",
    "depth": "vidrefocus.eval.bench_depth",
    "preview": "vidrefocus.eval.bench_preview",
    "enhance": "vidrefocus.eval.bench_enhance",
    "pipeline": "vidrefocus.eval.bench_pipeline",
}


def run_bench(what: str, **kwargs: object) -> BenchReport:
    """Run one benchmark by name.

    Raises:
        InputError: an unknown benchmark name.
    """
    if what not in BENCHES:
        raise InputError(f"unknown benchmark {what!r}; choose from {', '.join(BENCHES)}.")
    module = importlib.import_module(BENCHES[what])
    return module.run(**kwargs)
