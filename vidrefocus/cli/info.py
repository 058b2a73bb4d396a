"""`vidrefocus info`: describe a video file or image sequence."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from vidrefocus.cli.output import console

__all__ = ["register"]


def _fmt(value: Any) -> str:
    if isinstance(value, Fraction):
        return f"{value} ({float(value):.6g})" if value.denominator != 1 else str(value)
    return "-" if value is None or value == "" else str(value)


def _cmd_info(args: argparse.Namespace) -> int:
    from vidrefocus.io.probe import probe

    fps = Fraction(args.sequence_fps).limit_denominator(1001) if args.sequence_fps else 24
    info = probe(args.input, fps=Fraction(fps))
    if args.json:
        console.print_json(json.dumps(info.to_dict()))
        return 0
    console.print(
        f"[bold]{escape(str(info.path))}[/]  {info.container}, {info.size_bytes:,} bytes, "
        f"{float(info.duration_s):.3f} s, {info.chapters} chapter(s)"
    )
    for key, value in info.metadata.items():
        console.print(f"  {key}: {value}", markup=False)
    if info.video is not None:
        v = info.video
        table = Table(title=f"video stream #{v.index}", show_header=False, box=None)
        rows = [
            ("codec / profile", f"{v.codec} / {_fmt(v.profile)}"),
            ("size (stored)", f"{v.width}x{v.height}"),
            ("size (displayed)", f"{v.display_width}x{v.display_height}, rotation {v.rotation}"),
            ("sample / display aspect", f"{v.sample_aspect_ratio} / {v.display_aspect_ratio}"),
            ("pixel format", f"{v.pix_fmt}, {v.bit_depth}-bit, {v.chroma_subsampling}"),
            (
                "colour",
                f"matrix {v.colour_matrix}{' (guessed)' if v.colour_guessed else ''}, "
                f"range {v.colour_range}, primaries {_fmt(v.colour_primaries)}, "
                f"transfer {_fmt(v.colour_transfer)}",
            ),
            ("field order", _fmt(v.field_order)),
            (
                "frame rate",
                f"{_fmt(v.average_rate)} average, "
                f"{'VARIABLE' if v.variable_frame_rate else 'constant'}",
            ),
            ("frames (exact)", str(v.frame_count)),
            ("time base", str(v.time_base)),
            ("first / last pts", f"{_fmt(v.first_pts)} / {_fmt(v.last_pts)}"),
            ("duration", f"{float(v.duration_s):.6f} s"),
            ("timecode", _fmt(v.timecode)),
        ]
        for k, val in rows:
            table.add_row(k, escape(val))
        console.print(table)
    for s in info.streams:
        line = f"  stream #{s.index} {s.kind}: {s.codec or '-'}"
        if s.kind == "audio":
            line += f", {s.sample_rate} Hz, {s.channels} ch ({s.layout})"  # type: ignore[attr-defined]
        if s.language:
            line += f", language {s.language}"
        console.print(line, markup=False)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("info", help="describe a video file or image sequence")
    p.add_argument("input", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--sequence-fps", type=float, help="frame rate of an image sequence")
    p.set_defaults(func=_cmd_info)
