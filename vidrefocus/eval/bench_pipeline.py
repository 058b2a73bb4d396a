"""`vidrefocus bench pipeline`: the whole refocus, stage by stage and end to end.

The clip is the bundled demo scene (`samples/scene_sharp.mp4`, a rendered scene with layered
depth) scaled to the asked size by the ffmpeg CLI, with a rack focus from relative depth 0.3
to 0.7 over its length. Depth is estimated (the built-in DepthNet, what `--depth auto` runs
without Depth Anything weights), so every row runs every part of the job:

- per stage, in one process one after another: decode, DeblurNet (temporal), DepthNet, the
  depth stabiliser (temporal filter + edge alignment), reading the cached depth, focus +
  BokehNet, encode (the preset's encoder);
- end to end, file to file (depth estimation, planning, render, encode; a fresh depth cache
  each): the full setting (default preset with DeblurNet on) against the default and draft
  presets, each with its speed-up and its PSNR against the full setting's frames.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidrefocus.config import Config, load_config
from vidrefocus.eval.bench import BenchReport, BenchRow, parse_size
from vidrefocus.eval.bench_runtime import TimedIterator
from vidrefocus.io.writer import ffmpeg_exe

__all__ = ["SETTINGS", "make_pipeline_clip", "run"]

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "scene_sharp.mp4"
# name -> (preset, overrides): the speed settings compared end to end; the first is the
# reference the others' PSNR is measured against.
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "full (default preset + DeblurNet)": ("default", {"deblur.enabled": True}),
    "default preset": ("default", {}),
    "draft preset": ("draft", {}),
}


def make_pipeline_clip(folder: Path, size: str, seconds: float) -> Path:
    """The demo scene at `size` (Lanczos), `seconds` long (looped if longer than the sample),
    H.264 CRF 16 with its audio; made by the ffmpeg CLI, independent of the code measured."""
    w, h = parse_size(size)
    clip = folder / f"scene-{w}x{h}-{seconds:g}s.mp4"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-stream_loop", "-1", "-i", str(SAMPLE), "-t", f"{seconds:g}",
            "-vf", f"scale={w}:{h}:flags=lanczos,format=yuv420p",
            "-c:v", "libx264", "-crf", "16", "-preset", "veryfast", "-c:a", "aac",
            str(clip),
        ],
        check=True,
    )  # fmt: skip
    return clip


def _config(preset: str, overrides: dict[str, Any], cache: Path) -> Config:
    return load_config(
        preset,
        overrides={
            **overrides,
            "depth.source": "builtin",
            "depth.cache_dir": str(cache),
            "bokeh.learned_fill": False,
        },
    )


def _focus(seconds: float) -> str:
    return f"0s:d0.3, {seconds:g}s:ease-in-out:d0.7"


def _frames(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def psnr_between(a: Path, b: Path) -> float:
    """PSNR (dB, 8-bit RGB) of all frames of video `a` against video `b`, pooled."""
    se, n = 0.0, 0
    for x, y in zip(_frames(a), _frames(b), strict=True):
        diff = x.astype(np.float64) - y.astype(np.float64)
        se += float((diff * diff).sum())
        n += diff.size
    mse = se / max(n, 1)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _end_to_end(clip: Path, out: Path, config: Config, focus: str) -> tuple[float, int]:
    from vidrefocus.refocus import refocus

    start = time.perf_counter()
    result, _ = refocus(clip, out, config, focus=focus, overwrite=True)
    return time.perf_counter() - start, result.frames


def _stage_times(clip: Path, out: Path, config: Config, focus: str) -> dict[str, float]:
    """Each part of the full job timed alone over the clip (seconds), in pipeline order."""
    from vidrefocus.depth import build_estimator, choose_depth, prepare_depth
    from vidrefocus.depth_temporal import DepthStabilizer
    from vidrefocus.io.reader import VideoReader
    from vidrefocus.io.writer import VideoWriter
    from vidrefocus.refocus import plan_refocus
    from vidrefocus.runtime.local import batch_frames
    from vidrefocus.stages import BokehStage, DeblurStage, DepthStage, FocusStage

    estimator = build_estimator(choose_depth(config), config)
    stabilizer = DepthStabilizer(metric=False)
    # The render reads the depth the end-to-end run cached; DepthNet and the stabiliser are
    # timed on the same frames separately.
    planned, _ = prepare_depth(clip, config)
    stages = plan_refocus(clip, planned, focus=focus).stages
    order = [DeblurStage, DepthStage, FocusStage, BokehStage]
    names = ["deblur: DeblurNet, temporal", "depth: read the cached maps", "focus", "bokeh"]
    times = dict.fromkeys(
        ["decode", names[0], "depth: DepthNet", "depth: stabiliser (temporal + edges)",
         *names[1:], "encode"], 0.0,
    )  # fmt: skip
    by_type = {type(s): s for s in stages}
    for stage in [*stages, estimator, stabilizer]:
        stage.reset()
    reader = VideoReader(clip)
    batches = TimedIterator(batch_frames(iter(reader), config.runtime.batch_size))
    with VideoWriter(out, reader.info, config.encode, overwrite=True) as writer:
        for batch in batches:
            for kind, name in zip(order, names, strict=True):
                if kind is DepthStage:
                    start = time.perf_counter()
                    raw = estimator(batch.frames)
                    times["depth: DepthNet"] += time.perf_counter() - start
                    start = time.perf_counter()
                    stabilizer(raw, batch.frames)
                    times["depth: stabiliser (temporal + edges)"] += time.perf_counter() - start
                start = time.perf_counter()
                batch = by_type[kind](batch)
                times[name] += time.perf_counter() - start
            start = time.perf_counter()
            for rgb, pts in zip(batch.frames, batch.pts, strict=True):
                writer.write(rgb, pts)
            times["encode"] += time.perf_counter() - start
        start = time.perf_counter()
    times["encode"] += time.perf_counter() - start  # the encoder's flush and the mux
    times["decode"] = batches.seconds
    return times


def run(size: str = "720p", seconds: float = 4.0, repeat: int = 1) -> BenchReport:
    """Measure the refocus job stage by stage and end to end at one frame size.

    Args:
        size: frame size (360p, 720p, 1080p or WxH).
        seconds: clip length.
        repeat: end-to-end runs per setting (the best is kept).
    """
    w, h = parse_size(size)
    report = BenchReport(
        title=f"pipeline: refocus at {w}x{h}, {seconds:g} s clip, estimated depth",
        command=f"vidrefocus bench pipeline --size {size} --seconds {seconds:g} --repeat {repeat}",
    )
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-bench-"))
    try:
        clip = make_pipeline_clip(work, size, seconds)
        focus = _focus(seconds)
        outputs: dict[str, Path] = {}
        timings: dict[str, tuple[float, int]] = {}
        for i, (name, (preset, overrides)) in enumerate(SETTINGS.items()):
            out = work / f"setting{i}.mp4"
            best = (math.inf, 0)
            for k in range(repeat):
                cache = work / f"cache{i}-{k}"  # fresh: depth estimation is part of the job
                best = min(best, _end_to_end(clip, out, _config(preset, overrides, cache), focus))
            outputs[name], timings[name] = out, best
        full_name = next(iter(SETTINGS))
        full_cache = work / "cache0-0"
        times = _stage_times(clip, work / "stages.mp4", _config(*SETTINGS[full_name], full_cache),
                             focus)  # fmt: skip
        frames = timings[full_name][1]
        slowest = max(times.values())
        for name, t in times.items():
            note = "slowest part (baseline)" if t == slowest else ""
            report.rows.append(BenchRow(f"stage: {name}", t, frames, note, ratio=t / slowest))
        report.rows.append(BenchRow(
            "stages: sum", sum(times.values()), frames, "one after another",
            ratio=sum(times.values()) / slowest,
        ))  # fmt: skip
        reference, reference_s = outputs[full_name], timings[full_name][0]
        for name, (t, n) in timings.items():
            if name == full_name:
                note = "end to end, file to file (baseline of the quality column)"
            else:
                note = (
                    f"end to end; speed-up {reference_s / t:.2f}x; "
                    f"PSNR vs full {psnr_between(outputs[name], reference):.1f} dB"
                )
            report.rows.append(BenchRow(f"end to end: {name}", t, n, note, ratio=t / reference_s))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
