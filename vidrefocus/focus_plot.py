"""Plot of a resolved focus track (focus, f-number / strength, blur at the subject) to a PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vidrefocus.errors import InputError
from vidrefocus.focus import FocusState
from vidrefocus.io.paths import temp_path_for

__all__ = ["plot_focus"]

_DPI = 100
# Full stops as lens barrels mark them: equal steps on the log2 axis.
_STOPS = (1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.0, 16.0, 22.0, 32.0, 45.0, 64.0)


def _key_changes(states: Sequence[FocusState], times: list[float]) -> list[float]:
    """Times where the focus segment changes: the keyframes that are passed."""
    return [
        times[i]
        for i in range(1, len(states))
        if (states[i].key_index_from, states[i].key_index_to)
        != (states[i - 1].key_index_from, states[i - 1].key_index_to)
    ]


def _mark_keys(ax: Axes, changes: list[float]) -> None:
    for t in changes:
        ax.axvline(t, color="0.6", linestyle=":", linewidth=1)


def plot_focus(
    states: Sequence[FocusState],
    times_s: Sequence[Fraction | float],
    out_png: Path | str,
    blur_px: Sequence[float] | None = None,
    size_px: tuple[int, int] = (1200, 800),
    marks_s: Sequence[Fraction | float] = (),
    title: str = "Focus track",
) -> Path:
    """Draw a focus track per frame: what a focus puller's wheel did, for review.

    Panels: the focus distance in metres (metric tracks whose distances are all finite), or
    else the focus disparity; the f-number and/or the blur strength (when keys set them);
    and, when given, the blur radius at the focus point. Dotted lines mark where the track
    passes a keyframe, solid purple lines the times in `marks_s` (the frames a preview
    shows). The file is written under a temporary name and renamed, so the output path
    never holds a partial PNG.

    Args:
        states: per-frame focus states (`FocusTrack.resolve`).
        times_s: each frame's time in seconds, same length.
        out_png: the PNG to write (its folder must exist).
        blur_px: blur radius in px at the focus point per frame (signed or absolute), or None.
        size_px: (width, height) of the image in pixels, each >= 200.
        marks_s: times in seconds to mark with a vertical line.
        title: the title above the first panel.
    Returns:
        The path written.
    Raises:
        InputError: empty or mismatched inputs, a too small size, or a missing folder.
    Example:
        >>> plot_focus(track.resolve(times), times, "focus.png")  # doctest: +SKIP
    """
    if not states or len(states) != len(times_s):
        raise InputError(
            f"plot_focus needs one time per focus state; got {len(states)} states and "
            f"{len(times_s)} times."
        )
    if blur_px is not None and len(blur_px) != len(states):
        raise InputError(f"blur_px has {len(blur_px)} values for {len(states)} frames.")
    if min(size_px) < 200:
        raise InputError(f"size_px must be at least 200 x 200; got {size_px}.")
    out = Path(out_png)
    if not out.parent.is_dir():
        raise InputError(f"{out}: the folder {out.parent} does not exist; create it first.")

    times = [float(t) for t in times_s]
    changes = _key_changes(states, times)
    f_numbers = [s.f_number for s in states]
    strengths = [s.strength for s in states]
    has_aperture = any(v is not None for v in f_numbers + strengths)
    rows = 1 + has_aperture + (blur_px is not None)

    fig = Figure(figsize=(size_px[0] / _DPI, size_px[1] / _DPI), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]

    ax = axes[0]
    distances = [s.focus_distance_m for s in states]
    if all(d is not None and math.isfinite(d) for d in distances):
        ax.plot(times, distances, color="tab:blue", linewidth=2)
        ax.set_ylabel("focus distance (m)")
    else:
        ax.plot(times, [s.focus_disparity for s in states], color="tab:blue", linewidth=2)
        metric = states[0].focus_distance_m is not None
        ax.set_ylabel("focus disparity (1/m)" if metric else "focus disparity (relative)")
    ax.set_title(title)
    ax.grid(alpha=0.3)

    if has_aperture:
        ax = axes[1]
        if any(v is not None for v in f_numbers):
            values = [v for v in f_numbers if v is not None]
            ax.plot(times, [math.nan if v is None else v for v in f_numbers], color="tab:orange")
            ax.set_yscale("log", base=2)  # stops are equal steps
            ticks = [n for n in _STOPS if min(values) / 1.5 <= n <= max(values) * 1.5]
            ax.set_yticks(ticks, [f"f/{n:g}" for n in ticks])
            ax.minorticks_off()
            ax.set_ylabel("f-number", color="tab:orange")
        if any(v is not None for v in strengths):
            other = ax.twinx() if any(v is not None for v in f_numbers) else ax
            other.plot(times, [math.nan if v is None else v for v in strengths], color="tab:green")
            other.set_ylabel("strength (px)", color="tab:green")
        ax.grid(alpha=0.3)

    if blur_px is not None:
        ax = axes[-1]
        ax.plot(times, [float(b) for b in blur_px], color="tab:red")
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        ax.set_ylabel("blur at focus point (px)")
        ax.grid(alpha=0.3)

    for ax in axes:
        _mark_keys(ax, changes)
        for t in marks_s:
            ax.axvline(float(t), color="tab:purple", linewidth=1.5, alpha=0.8)
    axes[-1].set_xlabel("time (s)")

    # Write beside the target and rename, so a crash never leaves a partial PNG there.
    # (temp_path_for, not mkstemp: mkstemp makes the file 0600, and the plot is the user's.)
    tmp = temp_path_for(out)
    try:
        fig.savefig(tmp, dpi=_DPI, format="png")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
