"""Peak memory of the heavy stages and commands against frame size: re-measures the constants
that `vidrefocus.memory` records.

    OMP_NUM_THREADS=1 python -m vidrefocus.eval.memory_cost            # everything, ~25 min
    python -m vidrefocus.eval.memory_cost --what stages --sizes 320x180,640x360

Every point runs in a fresh Python process, so one measurement's caches and allocator state
cannot leak into the next. Two kinds of point:

- A stage (DeblurNet, depth estimation + stabiliser, the layered renderer, the learned fill,
  enhance's per-frame work with `reblur`) is built and its two input batches made; then the
  kernel's peak-RSS mark is reset (`/proc/self/clear_refs`, Linux >= 4.0) and the stage is
  called on both (the second call carries the first one's temporal state, as in a job): its
  cost is that peak minus the RSS before the calls.
- A command (`refocus`, `deblur`, `depth`, `enhance`, `preview`) runs on a synthetic clip
  (ffmpeg testsrc2, `CLIP_FRAMES` frames, so the decode queue fills) through its library entry
  point; its cost is the process's peak RSS (`ru_maxrss`, imports and models included) plus
  the peak of its ffmpeg children (the encoder runs beside it the whole time).

Each series is fitted by least squares to `bytes = a + b * pixels + c * pixels * frames`,
where `frames` is what the job holds at once (`runtime.batch_size`; the preview's rows).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidrefocus.eval.bench import parse_size
from vidrefocus.machine import describe_machine

__all__ = [
    "COMMANDS",
    "STAGES",
    "Fit",
    "Point",
    "fit",
    "measure_command",
    "measure_stage",
    "run",
]

log = logging.getLogger(__name__)

STAGES = ("deblur", "depth", "bokeh", "fill", "enhance_frame")
# refocus_deblur: refocus with `deblur.enabled: true`.
COMMANDS = ("deblur", "refocus", "refocus_deblur", "depth", "enhance", "preview")
DEFAULT_SIZES = ("320x180", "640x360", "1280x720")
# Enough frames for the decode queue (`MEASURED_QUEUE_FRAMES`) and a batch of 4 to fill.
CLIP_FRAMES = 24
# Frames held together per point of each series (batch sizes; the preview's rows).
_FRAMES = {"deblur": (1, 4), "depth": (1, 4), "bokeh": (1, 4), "fill": (1, 2)}
_COMMAND_FRAMES = {"enhance": (1,), "preview": (1, 4)}


@dataclass(frozen=True)
class Point:
    """One measurement: `bytes` at `width` x `height` with `frames` held together."""

    name: str
    width: int
    height: int
    frames: int
    bytes: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Fit:
    """`bytes = fixed + per_px * pixels + per_px_frame * pixels * frames`, and its worst miss."""

    name: str
    fixed: float
    per_px: float
    per_px_frame: float
    max_error: float

    def predict(self, pixels: int, frames: int) -> float:
        return self.fixed + pixels * (self.per_px + self.per_px_frame * frames)


def fit(points: Sequence[Point]) -> Fit:
    """Least-squares fit of one series, every coefficient >= 0.

    Without a frame term when every point has one frame count (it cannot be told apart from
    the per-pixel term then), and without a term whose free fit comes out negative (noise:
    no stage frees memory as frames grow).
    """
    px = np.array([p.pixels for p in points], dtype=np.float64)
    frames = np.array([p.frames for p in points], dtype=np.float64)
    y = np.array([p.bytes for p in points], dtype=np.float64)
    terms = {"fixed": np.ones_like(px), "per_px": px, "per_px_frame": px * frames}
    if len(set(frames.tolist())) == 1:
        del terms["per_px_frame"]
    while True:
        coef, *_ = np.linalg.lstsq(np.stack(list(terms.values()), 1), y, rcond=None)
        values = dict(zip(terms, coef.tolist(), strict=True))
        negative = [k for k, v in values.items() if v < 0 and k != "fixed"]
        if not negative:
            break
        del terms[negative[0]]
    a, b, c = (values.get(k, 0.0) for k in ("fixed", "per_px", "per_px_frame"))
    pred = a + px * (b + c * frames)
    return Fit(points[0].name, a, b, c, float(np.abs(pred - y).max()))


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _frames(batch: int, width: int, height: int, shift: int = 0) -> object:
    """(B, 3, H, W) consecutive frames of a textured scene panning right by 2 px a frame."""
    import torch

    gen = torch.Generator().manual_seed(0)
    texture = torch.rand(3, height, width + 2 * (batch + shift) + 2, generator=gen)
    texture = torch.nn.functional.avg_pool2d(texture[None], 3, 1, 1)[0]
    starts = [2 * (i + shift) for i in range(batch)]
    return torch.stack([texture[..., s : s + width] for s in starts]).contiguous()


def _stage_call(name: str, width: int, height: int, batch: int) -> object:
    """Build stage `name` and return a callable running it on the k-th batch."""
    import torch

    from vidrefocus.config import load_config
    from vidrefocus.stages import FrameBatch

    config = load_config()

    # Both batches are made before the measurement starts: the job's decoder made them.
    batches = [
        FrameBatch(
            _frames(batch, width, height, shift=k * batch),
            list(range(k * batch, (k + 1) * batch)),
            Fraction(1, 24),
        )
        for k in (0, 1)
    ]

    def batch_at(k: int) -> FrameBatch:
        return batches[k]

    if name == "deblur":
        from vidrefocus.stages import DeblurStage

        stage = DeblurStage.from_options(config.deblur, "cpu")
        return lambda k: stage(batch_at(k))
    if name == "depth":
        from vidrefocus.depth_temporal import DepthStabilizer
        from vidrefocus.models.depthnet import BuiltinDepth, load_depthnet
        from vidrefocus.stages import EstimateDepthStage

        stage = EstimateDepthStage(BuiltinDepth(load_depthnet()), DepthStabilizer(metric=False))
        return lambda k: stage(batch_at(k))
    if name in ("bokeh", "fill"):
        from vidrefocus.models.bokehnet import BokehNet, load_fill_net
        from vidrefocus.refocus import bokeh_look
        from vidrefocus.stages import BokehStage

        look = bokeh_look(config)
        stage = BokehStage(BokehNet(look.settings, load_fill_net() if name == "fill" else None))
        # Signed blur from -12 to +12 px across the frame (the default strength's range).
        ramp = torch.linspace(-12.0, 12.0, width).expand(batch, 1, height, width).contiguous()
        return lambda k: stage(batch_at(k).with_(extras={"radius": ramp}))
    if name == "enhance_frame":
        from vidrefocus.analyst.process import FrameEnhancer
        from vidrefocus.models.deblurnet import load_deblurnet

        enhancer = FrameEnhancer(
            load_deblurnet(), temporal=True, roi=None, frame_size=(width, height)
        )
        return lambda k: enhancer(batch_at(k).frames[0])
    raise ValueError(f"unknown stage {name!r}; choose from {', '.join(STAGES)}")


def _child_stage(name: str, width: int, height: int, batch: int) -> dict[str, int]:
    call = _stage_call(name, width, height, batch)
    gc.collect()
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM)
    # Two calls: the second carries the first one's temporal state, as in a job.
    out = [call(0), call(1)]
    peak = _status_kib("VmHWM")
    del out
    return {"bytes": (peak - before) * 1024}


class _ChildWatch:
    """Polls the peak RSS (VmHWM) of this process's children (the ffmpeg encoder) in a thread.

    `RUSAGE_CHILDREN` cannot be used: a child's mark includes the RSS it had between fork and
    exec, i.e. this whole process's.
    """

    def __init__(self, interval_s: float = 0.05) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._interval_s = interval_s
        self._thread = threading.Thread(target=self._work, daemon=True)

    def _children_hwm(self) -> int:
        me, total = str(os.getpid()), 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[1] == me:
                    status = (stat.parent / "status").read_text()
                    total += int(status.split("VmHWM:")[1].split()[0])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile, or a kernel thread
        return total * 1024

    def _work(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.peak = max(self.peak, self._children_hwm())

    def __enter__(self) -> _ChildWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _child_command(name: str, clip: Path, work: Path, frames: int) -> dict[str, int]:
    with _ChildWatch() as watch:
        _run_command(name, clip, work, frames)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"bytes": own + watch.peak, "own": own, "children": watch.peak}


def _run_command(name: str, clip: Path, work: Path, frames: int) -> None:
    from vidrefocus.config import load_config
    from vidrefocus.memory import MEASURED_QUEUE_FRAMES

    # The fits are of this queue; `estimate_bytes` adds or removes the difference.
    overrides = {
        "runtime.device": "cpu",
        "depth.cache_dir": str(work / "cache"),
        "runtime.queue_frames": MEASURED_QUEUE_FRAMES,
    }
    if name not in ("enhance", "preview"):
        overrides["runtime.batch_size"] = frames
    if name == "refocus_deblur":
        overrides["deblur.enabled"] = True
    config = load_config(overrides=overrides)
    if name == "deblur":
        from vidrefocus.deblur import deblur

        deblur(clip, work / "out.mp4", config)
    elif name in ("refocus", "refocus_deblur"):
        from vidrefocus.refocus import refocus

        refocus(clip, work / "out.mp4", config)
    elif name == "depth":
        from vidrefocus.depth import export_depth

        export_depth(clip, work / "depth", config)
    elif name == "enhance":
        from vidrefocus.analyst.enhance import EnhanceRequest, enhance

        enhance(EnhanceRequest(clip, work / "out.mkv"), config)
    elif name == "preview":
        from vidrefocus.preview import preview

        at = ",".join(f"f{2 + 5 * i}" for i in range(frames))
        preview(clip, work / "sheet.png", config, at=at)
    else:
        raise ValueError(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")


def _child(argv: list[str]) -> dict[str, int]:
    import torch

    torch.set_num_threads(1)
    kind, name, w, h, frames, *rest = argv
    if kind == "stage":
        return _child_stage(name, int(w), int(h), int(frames))
    clip, work = (Path(p) for p in rest)
    return _child_command(name, clip, work, int(frames))


def _run_child(args: list[str]) -> dict[str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "vidrefocus.eval.memory_cost", "--child", *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement {args} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_stage(name: str, width: int, height: int, frames: int) -> Point:
    """Peak RSS above its inputs of two calls of stage `name` (see the module docstring)."""
    got = _run_child(["stage", name, str(width), str(height), str(frames)])
    return Point(name, width, height, frames, got["bytes"])


def _make_clip(path: Path, width: int, height: int) -> None:
    from vidrefocus.io.writer import ffmpeg_exe

    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=s={width}x{height}:r=24:d={CLIP_FRAMES / 24}", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip


def measure_command(name: str, width: int, height: int, frames: int) -> Point:
    """Whole-process peak RSS (plus its ffmpeg children's) of command `name` on a synthetic
    `width` x `height` clip of `CLIP_FRAMES` frames, default options, `frames` per batch."""
    with tempfile.TemporaryDirectory(prefix="vidrefocus-memory-") as tmp:
        clip = Path(tmp) / "in.mp4"
        _make_clip(clip, width, height)
        got = _run_child(["command", name, str(width), str(height), str(frames), str(clip), tmp])
    return Point(name, width, height, frames, got["bytes"])


def run(what: str = "all", sizes: Sequence[str] = DEFAULT_SIZES) -> tuple[list[Point], list[Fit]]:
    """Measure every stage and/or command at `sizes` and fit each series.

    Args:
        what: "stages", "commands" or "all".
        sizes: frame sizes ("WxH" or a `bench` size name); at least two.
    Returns:
        Every point, and one fit per series.
    """
    dims = [parse_size(s) for s in sizes]
    points: list[Point] = []
    fits: list[Fit] = []
    series: list[tuple[str, str, tuple[int, ...]]] = []
    if what in ("stages", "all"):
        series += [("stage", s, _FRAMES.get(s, (1,))) for s in STAGES]
    if what in ("commands", "all"):
        series += [("command", c, _COMMAND_FRAMES.get(c, (1, 4))) for c in COMMANDS]
    for kind, name, counts in series:
        mine = []
        for w, h in dims:
            for n in counts:
                measure = measure_stage if kind == "stage" else measure_command
                point = measure(name, w, h, n)
                log.info("%s %s %dx%d x%d: %.0f MiB", kind, name, w, h, n, point.bytes / 2**20)
                mine.append(point)
        points += mine
        fits.append(fit(mine))
    return points, fits


def _table(points: list[Point], fits: list[Fit]) -> str:
    lines = [
        f"machine: {describe_machine()}; 1 torch thread",
        "",
        "| series | fixed MiB | MiB / MP | MiB / MP / frame | worst miss MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in fits:
        lines.append(
            f"| {f.name} | {f.fixed / 2**20:.0f} | {f.per_px * 1e6 / 2**20:.1f} | "
            f"{f.per_px_frame * 1e6 / 2**20:.1f} | {f.max_error / 2**20:.1f} |"
        )
    lines += ["", "points: " + json.dumps([p.__dict__ for p in points])]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        sys.stdout.write(json.dumps(_child(args[1:])) + "\n")
        return 0
    p = argparse.ArgumentParser(prog="python -m vidrefocus.eval.memory_cost")
    p.add_argument("--what", choices=("stages", "commands", "all"), default="all")
    p.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help="comma-separated WxH")
    opts = p.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    points, fits = run(opts.what, opts.sizes.split(","))
    sys.stdout.write(_table(points, fits) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
