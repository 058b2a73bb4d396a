"""`vidrefocus enhance`: faithful, audited deblurring of surveillance footage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidrefocus.cli.options import (
    add_config_args,
    add_encode_args,
    add_job_args,
    add_weights_arg,
    config_from,
    weights_override,
)
from vidrefocus.cli.output import console, progress

__all__ = ["register"]


def _add_enhance_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to enhance")
    g.add_argument("--roi", metavar="X,Y,W,H",
                   help="region of interest in display pixels (left, top, width, height), "
                        "enhanced at full resolution with 96 px of context around it, exactly "
                        "as inside the whole frame")  # fmt: skip
    g.add_argument("--roi-output", choices=("pass", "crop"), default="pass",
                   help="pass: the whole frame, outside the region passed through untouched "
                        "(default); crop: the region alone")  # fmt: skip
    g.add_argument("--scale", type=int, default=1, metavar="N",
                   help="enlarge the cropped region N times for viewing (integer, 1-16; needs "
                        "--roi-output crop)")  # fmt: skip
    g.add_argument("--scale-filter", choices=("nearest", "lanczos"), default="lanczos",
                   help="interpolation of --scale: nearest (blocks) or lanczos (Lanczos-3); "
                        "never a learned upscaler")  # fmt: skip
    g.add_argument("--frames", metavar="SPEC",
                   help="frames to enhance, e.g. 'f100-f250, 12s-14.5s, 00:01:02:00-' "
                        "(f = frame number from 0; times and timecode name the frame on "
                        "screen; ranges inclusive; default: all)")  # fmt: skip
    g.add_argument("--per-frame", action="store_true",
                   help="deblur every frame on its own (default: temporal, fusing the "
                        "footage's own previous frame)")  # fmt: skip
    g.add_argument("--fields", choices=("auto", "separate", "frame"), default="auto",
                   help="interlaced video: auto (default) deblurs each field on its own "
                        "when the stream is tagged interlaced; separate: always; frame: "
                        "never")  # fmt: skip
    g = p.add_argument_group("review outputs")
    g.add_argument("--side-by-side", action="store_true",
                   help="also write NAME.side_by_side.EXT: original | enhanced, labelled, "
                        "flagged frames framed in red")  # fmt: skip
    g.add_argument("--export-frames", type=Path, metavar="DIR",
                   help="also write lossless stills of the enhanced frames to DIR "
                        "(frame_000123.png, 16-bit for sources above 8 bits)")  # fmt: skip
    g.add_argument("--export-at", metavar="SPEC",
                   help="which enhanced frames --export-frames writes (--frames syntax; "
                        "default: all)")  # fmt: skip
    g.add_argument("--export-format", choices=("png", "tiff"), default="png")
    g = p.add_argument_group("processing")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="where DeblurNet runs (repeats are bit-identical on cpu)")  # fmt: skip
    g.add_argument("--cpu-threads", type=int, metavar="N",
                   help="torch and OpenCV threads (default 2); a repeat run uses the "
                        "audited count")  # fmt: skip
    g.add_argument("--flag-below", type=float, metavar="DB",
                   help="flag frames whose data-consistency residual is below DB "
                        "(default 30)")  # fmt: skip
    add_weights_arg(g)


def _cmd_enhance(args: argparse.Namespace) -> int:
    from vidrefocus.analyst.enhance import EnhanceRequest, enhance

    config = config_from(args, {
        "runtime.device": args.device,
        "enhance.threads": args.cpu_threads,
        "enhance.residual_flag_db": args.flag_below,
        **weights_override(args),
    })  # fmt: skip
    req = EnhanceRequest(
        input=args.input, output=args.output, roi=args.roi, roi_output=args.roi_output,
        scale=args.scale, scale_filter=args.scale_filter, frames=args.frames,
        temporal=not args.per_frame, fields=args.fields, side_by_side=args.side_by_side,
        export_frames=args.export_frames, export_at=args.export_at,
        export_format=args.export_format, overwrite=args.overwrite,
    )  # fmt: skip
    with progress("enhance", args.quiet or args.json) as on_progress:
        result = enhance(req, config, argv=args.argv, progress=on_progress)
    summary = {
        "output": str(result.output), "audit": str(result.audit), "frames": result.frames,
        "flagged": result.flagged, "seconds": round(result.elapsed_s, 3),
        "side_by_side": str(result.side_by_side) if result.side_by_side else None,
        "exported": result.exported, "notes": result.notes,
    }  # fmt: skip
    if args.json:
        console.print_json(json.dumps(summary))
    elif not args.quiet:
        for note in result.notes:
            console.print(f"  {note}", highlight=False, markup=False)
        console.print(
            f"wrote {result.output} and its audit log {result.audit}: {result.frames} frames, "
            f"{result.flagged} flagged, in {result.elapsed_s:.1f} s",
            highlight=False,
            markup=False,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "enhance",
        help="faithful deblurring for analysts: DeblurNet only, audited and repeatable",
        description="Deblur footage faithfully (DeblurNet, a regression network: nothing "
        "generative) and write an audit log beside the output (OUTPUT.audit.json: sha256 of "
        "input, outputs and weights, versions, settings, per-frame data-consistency residual). "
        "The same input, settings and version give identical bytes on CPU; `vidrefocus verify "
        "OUTPUT.audit.json` checks it.",
    )
    add_job_args(
        p,
        input_help="video file (or image-sequence folder)",
        output_help="the enhanced video (.mkv: lossless FFV1 by default)",
        overwrite_help="replace existing outputs (video, audit log, side-by-side, stills)",
    )
    _add_enhance_args(p)
    add_config_args(p)
    p.set_defaults(preset="surveillance")
    add_encode_args(p)
    p.set_defaults(func=_cmd_enhance)
