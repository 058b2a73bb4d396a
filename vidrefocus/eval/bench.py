"""`vidrefocus bench`: each capability timed against a baseline in the same run."""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vidrefocus import __version__
from vidrefocus.config import load_config
from vidrefocus.errors import InputError
from vidrefocus.io.writer import ffmpeg_exe

__all__ = ["BenchReport", "BenchRow", "run_bench"]

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


@dataclass
class BenchReport:
    """A benchmark's rows plus where and how it ran."""

    title: str
    command: str
    rows: list[BenchRow] = field(default_factory=list)
    machine: str = field(default_factory=lambda: _machine())
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d"))

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            f"- machine: {self.machine}",
            f"- command: `{self.command}`",
            f"- date: {self.date}, vidrefocus {__version__}",
            "",
            "| run | wall s | frames | fps | ratio to baseline | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "baseline"
            lines.append(
                f"| {r.name} | {r.seconds:.2f} | {r.frames} | {r.fps:.1f} | {ratio} | {r.note} |"
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


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def _best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    frames = 0
    for _ in range(repeat):
        start = time.perf_counter()
        frames = fn()
        best = min(best, time.perf_counter() - start)
    return best, frames


def make_bench_clip(path: Path, size: str, seconds: float) -> Path:
    """A deterministic test clip: moving natural-looking noise and shapes, with stereo audio.

    Made by the ffmpeg CLI itself (not by vidrefocus) so the benchmark's input is independent
    of the code it measures.
    """
    if size not in SIZES:
        raise InputError(f"unknown size {size!r}; use one of {', '.join(SIZES)}.")
    w, h = SIZES[size]
    video = (
        f"testsrc2=s={w}x{h}:r=24:d={seconds},"
        "noise=alls=12:allf=t,format=yuv420p"  # grain, so the encoder works like on footage
    )
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", video,
            "-f", "lavfi", "-i", f"sine=f=440:d={seconds}:sample_rate=48000",
            "-c:v", "libx264", "-crf", "16", "-preset", "veryfast",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            "-c:a", "aac", "-ac", "2", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def bench_io(size: str = "720p", seconds: float = 10.0, repeat: int = 2) -> BenchReport:
    """The identity pipeline (decode -> RGB frames -> encode) against the ffmpeg CLI.

    Both do the same job with the same settings: H.264 CRF 18 preset medium, yuv420p, audio
    copied; then FFV1 (where encoding is cheap and the I/O overhead shows).
    """
    from vidrefocus.runtime.local import run_local

    report = BenchReport(
        title=f"io: identity pipeline vs ffmpeg CLI, {size}, {seconds:g} s clip",
        command=f"vidrefocus bench io --size {size} --seconds {seconds:g} --repeat {repeat}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-"))
    try:
        src = make_bench_clip(work / "src.mp4", size, seconds)
        for codec, ext, cli_args in (
            ("h264", ".mp4", ["-c:v", "libx264", "-crf", "18", "-preset", "medium"]),
            ("ffv1", ".mkv", ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1"]),
        ):
            cli_out = work / f"cli{ext}"

            def run_cli(cli_out: Path = cli_out, cli_args: list[str] = cli_args) -> int:
                subprocess.run(
                    [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
                     "-map", "0:v", "-map", "0:a", *cli_args, "-pix_fmt", "yuv420p",
                     "-c:a", "copy", str(cli_out)],
                    check=True,
                )  # fmt: skip
                return 0

            ours_out = work / f"ours{ext}"
            config = load_config(overrides={"encode.codec": codec, "encode.crf": 18})

            def run_ours(ours_out: Path = ours_out, config: object = config) -> int:
                return run_local(src, ours_out, [], config, overwrite=True).frames

            t_cli, _ = _best_of(repeat, run_cli)
            t_ours, frames = _best_of(repeat, run_ours)
            report.rows.append(BenchRow(f"ffmpeg CLI, {codec}", t_cli, frames, "baseline"))
            report.rows.append(
                BenchRow(
                    f"vidrefocus transcode, {codec}",
                    t_ours,
                    frames,
                    "decode -> float RGB -> encode",
                    ratio=t_ours / t_cli,
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


_BENCHES: dict[str, Callable[..., BenchReport]] = {"io": bench_io}


def run_bench(what: str, **kwargs: object) -> BenchReport:
    """Run one benchmark by name.

    Raises:
        InputError: an unknown benchmark name.
    """
    if what not in _BENCHES:
        raise InputError(f"unknown benchmark {what!r}; choose from {', '.join(_BENCHES)}.")
    return _BENCHES[what](**kwargs)
