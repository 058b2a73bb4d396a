"""`vidrefocus deblur`: remove defocus blur (DeblurNet) from a video, an image or a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from vidrefocus.cli.options import (
    add_config_args,
    add_encode_args,
    add_job_args,
    add_runtime_args,
    add_weights_arg,
    chunked,
    config_from,
    run_chunked,
    weights_override,
)
from vidrefocus.cli.output import progress, report
from vidrefocus.errors import InputError

__all__ = ["register"]


def _add_deblur_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("deblur")
    g.add_argument("--defocus-map", type=Path, metavar="PATH",
                   help="also write the estimated blur radius of the input. For an image: one "
                        "file, .png (16-bit grey, value = radius px x 256, clipped at 65535, "
                        "i.e. 255.996 px; the scale is also in the PNG's Description text) or "
                        ".exr (float32, px). For a video or image folder: a folder with "
                        "one map per frame, named like the frames (video: 000000.png, "
                        "...)")  # fmt: skip
    g.add_argument("--map-format", choices=("png", "exr"), default="png",
                   help="file type of the per-frame maps in a --defocus-map folder "
                        "(default png)")  # fmt: skip
    g.add_argument("--per-frame", action="store_true",
                   help="deblur every frame on its own (default: temporal, fusing the previous "
                        "frame's flow-warped features so the result does not flicker)")  # fmt: skip
    add_weights_arg(g)


def _cmd_deblur(args: argparse.Namespace) -> int:
    from vidrefocus.deblur import deblur, output_kind

    config = config_from(args, {
        "deblur.temporal": False if args.per_frame else None,
        **weights_override(args),
    })  # fmt: skip
    with progress("deblur", args.quiet or args.json) as on_progress:
        if chunked(args):
            from vidrefocus.runtime.factory import DEBLUR

            if args.defocus_map is not None or output_kind(args.input, args.output) != "video":
                raise InputError(
                    f"{args.output}: chunked runs (--workers, --address, --resume, --work-dir) "
                    "write a video only; drop --defocus-map and image outputs, or run without "
                    "those options."
                )
            result = run_chunked(args, config, DEBLUR, on_progress)
            notes = list(result.notes)
        else:
            result, notes = deblur(
                args.input, args.output, config, defocus_map=args.defocus_map,
                map_format=args.map_format, overwrite=args.overwrite, progress=on_progress,
            )  # fmt: skip
    report(args, result, notes)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "deblur", help="remove defocus blur (DeblurNet) from a video, an image or an image folder"
    )
    add_job_args(
        p,
        input_help="video, image (PNG/JPEG/TIFF) or folder of images",
        output_help="a video file (.mp4, .mov, .mkv, ...); for an image input an image of the "
        "same format; for a folder input a folder (same file names)",
        overwrite_help="replace existing outputs",
    )
    _add_deblur_args(p)
    add_config_args(p)
    add_encode_args(p)
    add_runtime_args(p)
    p.set_defaults(func=_cmd_deblur)
