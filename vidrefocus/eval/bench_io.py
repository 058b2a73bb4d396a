"""`vidrefocus bench io`: the identity pipeline against the ffmpeg CLI, same settings."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from vidrefocus.config import load_config
from vidrefocus.errors import InputError
from vidrefocus.eval.bench import SIZES, BenchReport, BenchRow, best_of
from vidrefocus.io.writer import ffmpeg_exe

__all__ = ["make_bench_clip", "run"]


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


def run(size: str = "720p", seconds: float = 10.0, repeat: int = 2) -> BenchReport:
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

            t_cli, _ = best_of(repeat, run_cli)
            t_ours, frames = best_of(repeat, run_ours)
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
