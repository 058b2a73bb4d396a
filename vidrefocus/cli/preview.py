"""`vidrefocus preview`: a few frames refocused as a contact sheet (and a before/after page)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidrefocus.cli.options import add_config_args, add_job_args
from vidrefocus.cli.output import console
from vidrefocus.cli.refocus import add_refocus_args, refocus_config

__all__ = ["register"]


def _cmd_preview(args: argparse.Namespace) -> int:
    from vidrefocus.preview import preview

    config = refocus_config(args)
    result = preview(
        args.input, args.output, config, focus=args.focus, focus_file=args.focus_file,
        focus_points=args.focus_point, at=args.at, html=args.html,
        overwrite=args.overwrite,
    )  # fmt: skip
    summary = {
        "output": str(result.output),
        "html": str(result.html) if result.html is not None else None,
        "frames": result.frames,
        "times_s": [float(t) for t in result.times_s],
        "seconds": round(result.elapsed_s, 3),
        "frames_decoded": result.frames_decoded,
        "frames_total": result.frames_total,
        "size": list(result.size),
        "notes": result.notes,
    }
    if args.json:
        console.print_json(json.dumps(summary))
    elif not args.quiet:
        for note in result.notes:
            console.print(f"  {note}", highlight=False, markup=False)
        if result.html is not None:
            console.print(f"wrote {result.html}", highlight=False, markup=False)
        console.print(
            f"wrote {result.output}: {len(result.frames)} frames in {result.elapsed_s:.1f} s",
            highlight=False,
            markup=False,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "preview",
        help="a few frames refocused, as a contact sheet (seconds, not minutes)",
        description="Render a few frames only (random access: the rest of the clip is not "
        "decoded) as a contact sheet: per frame input | all-in-focus | depth | result, with "
        "the focus curve beneath. --html also writes a self-contained page with a "
        "before/after slider per frame.",
    )
    add_job_args(p, output_help="the contact sheet (.png)", output_metavar="SHEET.png")
    p.add_argument("--at", metavar="TIMES",
                   help='comma-separated times, as for focus keyframes: "0.5s, 2s, f60, '
                        '00:00:03:00" (default: 4 frames, the middle of each quarter)')  # fmt: skip
    p.add_argument("--html", type=Path, metavar="PAGE.html",
                   help="also write a self-contained page with a before/after slider "
                        "per frame")  # fmt: skip
    add_refocus_args(p)
    add_config_args(p)
    p.set_defaults(func=_cmd_preview)
