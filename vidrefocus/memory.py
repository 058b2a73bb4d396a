"""How much memory a job needs for its frame size, and a clear refusal before it starts when
the machine has less (instead of the kernel's OOM killer halfway through).

DeblurNet, depth estimation, the layered BokehNet renderer and enhance's re-blur all hold
full-resolution tensors, so a job's peak memory grows with the frame's area (and with the
frames processed together): a refocus that needs 2.2 GiB at 720p needs ~134 GiB for one
8192x8192 frame. `check_memory` runs at the start of each heavy job, before a model loads or
a file is written, and raises `InputError` (exit code 2) naming the size, the need and what
is available; `transcode` and `info` are plain I/O and are never checked.

The estimate is `fixed + pixels * (per_px + per_px_frame * frames)` per command, with
constants measured on this project's synthetic clips (`vidrefocus.eval.memory_cost` re-measures
them). The available figure is /proc/meminfo's MemAvailable, lowered to a cgroup's limit
when one applies, or `VIDREFOCUS_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix) when set;
on a platform with none of these nothing is refused. A job may use `SAFETY_SHARE` of it.

The figures are host memory with torch on the CPU. With `runtime.device` on a GPU the
networks' activations move to the GPU, so the estimate overstates the host's share (the check
stays on the safe side); the GPU's own memory is not checked here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vidrefocus.config import Config
from vidrefocus.errors import InputError

__all__ = [
    "COMMAND_COSTS",
    "MEASURED_QUEUE_FRAMES",
    "MEMORY_LIMIT_ENV",
    "SAFETY_SHARE",
    "STAGE_COSTS",
    "Command",
    "Cost",
    "available_bytes",
    "check_input_memory",
    "check_memory",
    "estimate_bytes",
    "factory_command",
    "parse_bytes",
    "release_free_heap",
]

log = logging.getLogger(__name__)

Command = Literal["refocus", "deblur", "depth", "enhance", "preview"]

MEMORY_LIMIT_ENV = "VIDREFOCUS_MEMORY_LIMIT"
# A job may plan on this share of the available memory: the estimate is a fit (it misses its
# own points by < 2 %; extrapolated to 1080p it was 1-6 % above the measured peak of deblur,
# refocus and enhance), the encoder takes more frames in flight on a machine with more cores
# (x264 threads), and the rest of the machine keeps running meanwhile.
SAFETY_SHARE = 0.9


@dataclass(frozen=True)
class Cost:
    """Peak bytes of a job or stage: `fixed + pixels * (per_px + per_px_frame * frames)`.

    Attributes:
        fixed: bytes that do not depend on the frame size (Python, torch, weights).
        per_px: bytes per pixel of one frame, whatever the batch.
        per_px_frame: bytes per pixel of each frame processed together (batch, preview rows).
    """

    fixed: float
    per_px: float
    per_px_frame: float

    def bytes(self, pixels: int, frames: int) -> float:
        return self.fixed + pixels * (self.per_px + self.per_px_frame * frames)


# Measured with `OMP_NUM_THREADS=1 python -m vidrefocus.eval.memory_cost` on an AMD EPYC VM
# (2 cores, 24 GiB, Linux 6.18, torch on CPU with 1 thread): synthetic testsrc2 clips of 24
# frames at 320x180, 640x360 and 1280x720, runtime.batch_size 1 and 4 (preview: 1 and 4 rows),
# default options otherwise (x264 medium output, built-in DepthNet, no depth cache). A
# command's figure is the whole job: peak RSS of the Python process (imports and models
# included) plus that of its ffmpeg encoder. Bytes, bytes per pixel, bytes per pixel and
# frame; the comment gives the worst miss of the fit on its 6 points (3 for enhance).
COMMAND_COSTS: dict[str, Cost] = {
    "refocus": Cost(396e6, 437, 427),  # 27 MiB; depth pre-pass, then the render
    "refocus_deblur": Cost(419e6, 607, 467),  # 23 MiB; refocus with deblur.enabled
    "deblur": Cost(389e6, 707, 75),  # 3 MiB
    "depth": Cost(416e6, 531, 100),  # 12 MiB; maps and the preview video
    "enhance": Cost(472e6, 874, 0),  # 6 MiB; frame by frame, pixels of the ROI window
    "preview": Cost(411e6, 435, 73),  # 8 MiB; frames: the preview's rows
}
# The same machine and sizes, one stage alone (batch 1 and 4; fill 1 and 2): peak RSS of two
# consecutive calls (the second with the first one's temporal state) above the RSS before,
# the inputs already made. The commands above include them; refocus and preview add the
# stages they run only with some options.
STAGE_COSTS: dict[str, Cost] = {
    "deblur": Cost(33e6, 260, 61),  # 7 MiB; DeblurStage: DeblurNet, flow, history blend
    "depth": Cost(53e6, 220, 16),  # 8 MiB; built-in DepthNet + DepthStabilizer
    "bokeh": Cost(45e6, 92, 340),  # 60 MiB; BokehStage, the layered renderer at -12..12 px
    "fill": Cost(31e6, 0, 1313),  # 48 MiB; BokehStage with the learned fill (FillNet)
    "enhance_frame": Cost(36e6, 399, 0),  # 4 MiB; FrameEnhancer: DeblurNet, reblur, PSNR
}
# Not measured (no weights on the measuring machine): Depth Anything V2's parameters
# (24.8M, 97.5M, 335M float32) plus activations of a batch of 4 at its 518 px input, from the
# architecture. Its per-pixel cost (upsampling, stabiliser) is the built-in DepthNet's.
_DEPTH_ANYTHING_FIXED = {"small": 0.5 * 2**30, "base": 1.0 * 2**30, "large": 2.5 * 2**30}
# The commands' fits hold `MEASURED_QUEUE_FRAMES` decoded frames (float32 RGB, 12 bytes a pixel)
# waiting for the stages (the decode queue is full: decoding is the faster side); another
# `runtime.queue_frames` holds that many more or fewer.
MEASURED_QUEUE_FRAMES = 8
_DECODED_BYTES_PER_PX = 12
# Preview renders a frame together with its neighbour (the built-in DepthNet's parallax).
_PREVIEW_FRAMES_RENDERED = 2
_DEFAULT_PREVIEW_ROWS = 4
_BATCHED: tuple[str, ...] = ("refocus", "deblur", "depth")


def _depth_anything_model(config: Config) -> str | None:
    """The Depth Anything model a job would load, or None (a sequence, or the built-in)."""
    depth = config.depth
    if depth.path is not None or depth.source in ("sequence", "builtin"):
        return None
    if depth.source == "auto":
        # Imported here: it pulls in the model code, which a memory check should not need.
        from vidrefocus.models.depth_anything import find_local_weights

        if find_local_weights(depth.model) is None:
            return None
    return depth.model


def _frames(command: str, config: Config, frames: int | None) -> int:
    if frames is not None:
        return max(1, frames)
    if command == "preview":
        return _DEFAULT_PREVIEW_ROWS
    return 1 if command == "enhance" else config.runtime.batch_size


def estimate_bytes(
    command: Command, width: int, height: int, config: Config, *, frames: int | None = None
) -> int:
    """Peak memory of a job on `width` x `height` frames (one worker; whole process).

    Args:
        command: the job: "refocus", "deblur", "depth", "enhance" or "preview".
        width: frame width in px (enhance: its ROI window's).
        height: frame height in px.
        config: the job's options (batch size, queue, deblur, fill, depth source).
        frames: frames processed together; default `runtime.batch_size` (preview: its 4
            rows; enhance: 1, it works frame by frame).
    Returns:
        Bytes, rounded up.
    Raises:
        ValueError: an unknown command.

    Example:
        >>> from vidrefocus.config import load_config
        >>> estimate_bytes("deblur", 3840, 2160, load_config()) > 2**30
        True
    """
    if command not in ("refocus", "deblur", "depth", "enhance", "preview"):
        raise ValueError(f"unknown command {command!r} for a memory estimate")
    pixels = max(1, width) * max(1, height)
    n = _frames(command, config, frames)
    key = "refocus_deblur" if command == "refocus" and config.deblur.enabled else command
    need = COMMAND_COSTS[key].bytes(pixels, n)
    if command == "preview" and config.deblur.enabled:
        need += STAGE_COSTS["deblur"].bytes(pixels, _PREVIEW_FRAMES_RENDERED)
    if command in ("refocus", "preview") and config.bokeh.learned_fill:
        need += STAGE_COSTS["fill"].bytes(pixels, n if command == "refocus" else 1)
    if command in ("refocus", "depth", "preview"):
        model = _depth_anything_model(config)
        if model is not None:
            need += _DEPTH_ANYTHING_FIXED.get(model, _DEPTH_ANYTHING_FIXED["large"])
    if command in _BATCHED:
        extra = config.runtime.queue_frames - MEASURED_QUEUE_FRAMES
        need += pixels * _DECODED_BYTES_PER_PX * extra
    return math.ceil(need)


def _what(command: str, config: Config, n: int) -> str:
    """The work behind the figure, for the message: "DeblurNet, depth, BokehNet at batch 4"."""
    deblur = ["DeblurNet"] if config.deblur.enabled else []
    bokeh = "BokehNet with learned fill" if config.bokeh.learned_fill else "BokehNet"
    if command == "refocus":
        return f"{', '.join([*deblur, 'depth', bokeh])} at batch {n}"
    if command == "preview":
        return f"{', '.join([*deblur, 'depth', bokeh])}, {n} preview frame{'s' * (n > 1)}"
    if command == "deblur":
        return f"DeblurNet at batch {n}"
    if command == "depth":
        return f"depth estimation and stabilisation at batch {n}"
    return "DeblurNet and its re-blur residual, frame by frame"


def parse_bytes(text: str) -> int:
    """A byte count: "1073741824", "1G", "512M", "1.5GiB" (K/M/G/T are powers of 1024).

    Raises:
        InputError: anything else.

    Example:
        >>> parse_bytes("1.5G")
        1610612736
    """
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    clean = text.strip().upper().removesuffix("IB").removesuffix("B").strip()
    number, unit = (clean[:-1], clean[-1]) if clean[-1:] in units else (clean, "")
    try:
        value = float(number) * units.get(unit, 1)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(
            f"{MEMORY_LIMIT_ENV}={text!r}: give a size in bytes, or with a suffix: 512M, 8G."
        )
    return int(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_free(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes this container's cgroup lets it allocate still, or None without a limit.

    Reclaimable file cache counts as free (the kernel drops it before the OOM killer runs).
    """
    v2 = (root / "memory.max", root / "memory.current", root / "memory.stat", "inactive_file")
    v1_dir = root / "memory"
    v1 = (
        v1_dir / "memory.limit_in_bytes",
        v1_dir / "memory.usage_in_bytes",
        v1_dir / "memory.stat",
        "total_inactive_file",
    )
    for limit_file, usage_file, stat_file, cache_key in (v2, v1):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        # "max" (v2) does not parse; v1 says "no limit" with a number near 2**63.
        if limit is None or usage is None or limit >= 2**60:
            continue
        return max(0, limit - usage + _stat_value(stat_file, cache_key))
    return None


def _mem_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> tuple[int | None, str]:
    """Memory a job can use now, and where the figure comes from (for messages).

    Returns:
        (`VIDREFOCUS_MEMORY_LIMIT`, "VIDREFOCUS_MEMORY_LIMIT") when set; else the smaller of
        MemAvailable and the cgroup's free memory, "this machine"; (None, "") when neither
        can be read (not Linux): nothing is refused then.
    Raises:
        InputError: a malformed `VIDREFOCUS_MEMORY_LIMIT`.
    """
    override = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override:
        return parse_bytes(override), MEMORY_LIMIT_ENV
    figures = [f for f in (_mem_available(), _cgroup_free()) if f is not None]
    return (min(figures), "this machine") if figures else (None, "")


def _gib(n: float) -> str:
    return f"{n / 2**30:.0f} GiB" if n >= 10 * 2**30 else f"{n / 2**30:.1f} GiB"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fitting_width(
    command: Command, width: int, height: int, config: Config, budget: float, n: int
) -> int | None:
    """The largest width (multiple of 16, same aspect) whose estimate fits `budget`."""
    w = width // 16 * 16
    while w >= 16:
        if estimate_bytes(command, w, max(1, round(height * w / width)), config, frames=n) <= (
            budget
        ):
            return w
        w = int(w * 0.9) // 16 * 16
    return None


def check_memory(
    command: Command,
    width: int,
    height: int,
    config: Config,
    *,
    path: Path | str | None = None,
    frames: int | None = None,
    workers: int = 1,
    region: bool = False,
    available: int | None = None,
) -> int:
    """Refuse a job whose estimated peak memory exceeds `SAFETY_SHARE` of what is available.

    Args:
        command: the job (see `estimate_bytes`).
        width: frame width in px (enhance: its ROI window's).
        height: frame height in px.
        config: the job's options.
        path: the input, named in the message.
        frames: frames processed together (see `estimate_bytes`).
        workers: processes on this machine that each run the job's stages (local Ray workers).
        region: `width` x `height` is enhance's --roi window, not the frame.
        available: bytes available; default `available_bytes()`.
    Returns:
        The estimate in bytes (all workers).
    Raises:
        InputError: the job would need more; the message names the frame size, the need, what
            is available and what to change.
    """
    n = _frames(command, config, frames)
    need = estimate_bytes(command, width, height, config, frames=n) * max(1, workers)
    where = "this machine"
    if available is None:
        available, where = available_bytes()
    if available is None:
        log.debug("available memory unknown here; not checking %s's %s", command, _gib(need))
        return need
    if need <= SAFETY_SHARE * available:
        return need
    on = f" on {workers} workers" if workers > 1 else ""
    budget = SAFETY_SHARE * available / max(1, workers)
    have = (
        f"{MEMORY_LIMIT_ENV} allows {_gib(available)}"
        if where == MEMORY_LIMIT_ENV
        else f"{where} has {_gib(available)} available"
    )
    fits = _fitting_width(command, width, height, config, budget, n)
    scale = f" (e.g. with ffmpeg -vf scale={fits}:-2)" if fits else ""
    hints = []
    if region:
        hints.append(
            f"give a smaller --roi (a {fits}x{round(height * fits / width)} window fits)"
            if fits
            else "give a smaller --roi"
        )
    elif command == "enhance":
        hints.append(f"give a smaller --roi, or scale the clip{scale}")
    else:
        hints.append(f"crop or scale the clip{scale}")
    one = estimate_bytes(command, width, height, config, frames=1)
    if n > 1 and command in _BATCHED and one <= budget:
        hints.append(f"lower runtime.batch_size (1 needs about {_gib(one)})")
    elif n > 1 and command == "preview" and one <= budget:
        hints.append("ask for fewer frames with --at")
    elif n > 1 and command in _BATCHED:
        hints.append("lower runtime.batch_size")
    if workers > 1:
        hints.append("use fewer --workers")
    hints.append("run on a machine with more memory")
    name = f"{path}: " if path is not None else ""
    size = f"{width}x{height} {'region (the --roi window)' if region else 'frame'}"
    raise InputError(
        f"{name}a {size} needs about {_gib(need)} for {command}{on} "
        f"({_what(command, config, n)}); {have} (a job may use {SAFETY_SHARE:.0%}). "
        f"{_sentence(', '.join(hints[:-1]))}, or {hints[-1]}."
    )


def check_input_memory(
    command: Command, input_path: Path, config: Config, *, frames: int | None = None
) -> None:
    """`check_memory` at the input's display size; an input without video is left to the job
    (which explains it better).

    Raises:
        InputError: the job would need more memory than is available; an unreadable input.
    """
    from vidrefocus.io.probe import probe

    video = probe(Path(input_path), config.input.sequence_rate).video
    if video is not None:
        check_memory(
            command, video.display_width, video.display_height, config, path=input_path,
            frames=frames,
        )  # fmt: skip


def factory_command(target: str) -> Command | None:
    """The command whose memory a chunked job's stage factory needs (None: not a heavy one).

    Example:
        >>> factory_command("vidrefocus.runtime.factory:deblur_stages")
        'deblur'
    """
    known: dict[str, Command] = {
        "vidrefocus.runtime.factory:deblur_stages": "deblur",
        "vidrefocus.runtime.factory:refocus_stages": "refocus",
    }
    return known.get(target)


@functools.cache
def _glibc_malloc_trim() -> Callable[[int], int] | None:
    # glibc only: musl and other platforms' allocators have no malloc_trim.
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_heap() -> bool:
    """Hand the heap's free pages back to the system (glibc's `malloc_trim(0)`).

    A chunk's frames (24 MiB each at 1080p, float32) are below glibc's mmap threshold once it
    has adapted, so they live on the malloc heaps, and pages freed at the end of a chunk stay
    resident until something reuses them: a worker sat on ~1.5 GiB between 1080p chunks where
    it needs 0.37 (BENCHMARKS.md, "1080p, 10 s against 60 s"). Called between chunks; it takes a
    few milliseconds. Returns False where the C library has no `malloc_trim`.
    """
    trim = _glibc_malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
