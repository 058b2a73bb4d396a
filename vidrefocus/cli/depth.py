"""`vidrefocus depth`: estimate a clip's depth and export it."""

from __future__ import annotations

import argparse

from vidrefocus.cli.options import add_config_args, add_encode_args, add_job_args, config_from
from vidrefocus.cli.output import progress, report
from vidrefocus.cli.refocus import add_depth_source_args, announce_depth, depth_overrides

__all__ = ["register"]


def _cmd_depth(args: argparse.Namespace) -> int:
    from vidrefocus.depth import export_depth

    config = config_from(args, depth_overrides(args))
    announce_depth(args, config)
    with progress("depth", args.quiet or args.json) as on_progress:
        result, notes = export_depth(
            args.input, args.output, config, fmt=args.format, preview=args.preview,
            overwrite=args.overwrite, progress=on_progress,
        )  # fmt: skip
    report(args, result, notes)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "depth", help="estimate a clip's depth and export it (16-bit PNG or EXR, preview video)"
    )
    add_job_args(
        p,
        input_help="video, image or folder of images",
        output_help="folder to create: one map per frame (000000.png, ...), depth.json (what "
        "the values mean) and preview.mp4",
        output_metavar="DIR",
        overwrite_help="replace an existing folder",
    )
    p.add_argument("--format", choices=("png", "exr"), default="png",
                   help="png: 16-bit, relative disparity x 65535, near = bright (default); "
                        "exr: float32 disparity in [0, 1]")  # fmt: skip
    p.add_argument("--preview", action=argparse.BooleanOptionalAction, default=True,
                   help="write preview.mp4, the depth colour-mapped (video inputs)")  # fmt: skip
    add_depth_source_args(p.add_argument_group("depth"))
    add_config_args(p)
    add_encode_args(p)
    p.set_defaults(func=_cmd_depth)
