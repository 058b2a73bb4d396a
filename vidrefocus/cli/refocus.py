"""`vidrefocus refocus`: depth, focus keyframes and bokeh; its options and how they combine."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vidrefocus.cli.options import (
    add_config_args,
    add_encode_args,
    add_job_args,
    add_runtime_args,
    chunked,
    config_from,
    run_chunked,
)
from vidrefocus.cli.output import console, progress, report
from vidrefocus.config import Config
from vidrefocus.errors import ConfigError, InputError

__all__ = [
    "add_depth_source_args",
    "add_export_args",
    "add_refocus_args",
    "announce_depth",
    "depth_overrides",
    "refocus_config",
    "register",
]


def add_refocus_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("focus")
    g.add_argument("--focus", metavar="KEYS",
                   help='keyframes, e.g. "0s:1.2m, 1s:ease-in-out:3m" (see docs)')  # fmt: skip
    g.add_argument("--focus-file", type=Path, help="keyframes as YAML, JSON or CSV")
    g.add_argument("--focus-point", action="append", default=[], metavar="X,Y@TIME",
                   help="focus on the subject at pixel X,Y at TIME and track it: the keyframe "
                        "TIME:@X,Y, merged with --focus keys by time (repeatable)")  # fmt: skip
    g = p.add_argument_group("depth (default: estimated; see `vidrefocus depth`)")
    g.add_argument("--depth", metavar="PATH",
                   help="your depth: a folder of per-frame maps (16-bit PNG/TIFF, EXR, NPY) "
                        "or a grey video (e.g. FFV1 gray16le); it always wins")  # fmt: skip
    g.add_argument("--depth-units",
                   help="of --depth: mm, m, inverse-m or relative (default: the folder's "
                        "depth.json, else mm)")  # fmt: skip
    g.add_argument("--far-is-bright", action="store_true", help="relative depth: far = bright")
    add_depth_source_args(g)
    g = p.add_argument_group("lens and look")
    g.add_argument("--f-number", type=float, help="aperture, e.g. 1.8 (metric depth)")
    g.add_argument("--focal-length", type=float, help="mm (metric depth)")
    g.add_argument("--sensor", type=float, help="sensor width in mm (36 = full frame)")
    g.add_argument("--strength", type=float, help="blur in px per unit of relative depth")
    g.add_argument("--bokeh-quality", choices=["full", "fast"],
                   help="fast: coarser depth layers, reduced-resolution blur, ~2.6x faster "
                   "(default: full; the draft preset: fast)")  # fmt: skip
    g.add_argument("--aperture", help="disk, polygon, star or heart")
    g.add_argument("--blades", type=int, help="polygon blade count")
    g.add_argument("--style", help='describe the look: "soft creamy bokeh", "hexagonal at f/2.8"')
    fill = g.add_mutually_exclusive_group()
    fill.add_argument(
        "--fill", action="store_true", help="turn BokehNet's learned fill on (see its card)"
    )
    fill.add_argument("--no-fill", action="store_true", help="turn BokehNet's learned fill off")
    deblur = g.add_mutually_exclusive_group()
    deblur.add_argument("--deblur", nargs="?", const="on", choices=("on", "off", "auto"),
                        metavar="on|off|auto",
                        help="run DeblurNet first, so the bokeh is rendered from all-in-focus "
                             "frames; auto: frames it finds already sharp pass through "
                             "unchanged; --deblur alone = on (default: deblur.enabled, "
                             "off)")  # fmt: skip
    deblur.add_argument("--no-deblur", dest="deblur", action="store_const", const="off",
                        help="the same as --deblur off")  # fmt: skip


def add_export_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "exports for compositors (one file per frame, named like the source frames: "
        "000000.png, ... for a video)"
    )
    g.add_argument("--export-depth", type=Path, metavar="DIR",
                   help="the depth the bokeh used, with depth.json (refocus --depth DIR reads "
                        "it back): relative = disparity x 65535, near bright; metric = mm "
                        "(PNG) or metres (EXR)")  # fmt: skip
    g.add_argument("--export-defocus", type=Path, metavar="DIR",
                   help="the blur radius BokehNet rendered with: PNG |radius| px x 256, "
                        "EXR signed px (> 0 in front of the focal plane); with "
                        "defocus.json")  # fmt: skip
    g.add_argument("--export-allinfocus", type=Path, metavar="DIR",
                   help="the frames the bokeh was rendered from (deblurred, or the input): "
                        "16-bit PNG, or linear-light float EXR")  # fmt: skip
    g.add_argument("--export-format", choices=("png", "exr"), default="png",
                   help="file type of every export (default png)")  # fmt: skip


def add_depth_source_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--depth-source", choices=("auto", "sequence", "model", "builtin"),
                   help="auto (default): --depth if given, else Depth Anything V2 if its "
                        "weights are on this machine, else the built-in DepthNet")  # fmt: skip
    g.add_argument("--depth-model", metavar="NAME",
                   help="Depth Anything V2: small (default), base, large, a hub id or a "
                        "local folder")  # fmt: skip
    g.add_argument("--depth-stabilize", action=argparse.BooleanOptionalAction, default=None,
                   help="temporal stabilisation and edge alignment of depth "
                        "(default on)")  # fmt: skip
    g.add_argument("--depth-cache", metavar="DIR",
                   help="where estimated depth is kept between runs (default "
                        "~/.cache/vidrefocus, or $VIDREFOCUS_CACHE_DIR)")  # fmt: skip


def depth_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "depth.source": args.depth_source,
        "depth.model": args.depth_model,
        "depth.stabilize": args.depth_stabilize,
        "depth.cache_dir": args.depth_cache,
    }


def refocus_config(args: argparse.Namespace) -> Config:
    overrides = {
        **depth_overrides(args),
        "depth.path": args.depth,
        "depth.units": args.depth_units,
        "depth.near_is_bright": False if args.far_is_bright else None,
        "lens.f_number": args.f_number,
        "lens.focal_length_mm": args.focal_length,
        "lens.sensor_width_mm": args.sensor,
        "bokeh.strength": args.strength,
        "bokeh.quality": args.bokeh_quality,
        "bokeh.aperture": args.aperture,
        "bokeh.blades": args.blades,
        "bokeh.style": args.style,
        "bokeh.learned_fill": True if args.fill else (False if args.no_fill else None),
        "deblur.enabled": {"on": True, "off": False, "auto": "auto", None: None}[args.deblur],
    }
    config = config_from(args, overrides)
    from vidrefocus.io.depth import sequence_units

    if config.depth.path is None:
        relative, why = True, "depth is estimated (relative)"
    else:
        units = sequence_units(config.depth.path, config.depth.units)
        relative, why = units == "relative", "the depth units are 'relative'"
    lens_flags = [f for f in ("f_number", "focal_length", "sensor") if getattr(args, f)]
    if relative and lens_flags:
        raise ConfigError(
            f"--{lens_flags[0].replace('_', '-')} needs metric depth, but {why}; set the blur "
            "with --strength, or give metric depth (--depth FOLDER --depth-units mm)."
        )
    if not relative and args.strength is not None:
        raise ConfigError(
            "--strength applies to relative depth; with metric depth the lens sets the blur "
            "(--f-number, --focal-length, --sensor)."
        )
    return config


def announce_depth(args: argparse.Namespace, config: Config) -> None:
    """Print which depth provider `--depth auto` picked, before the long estimation pass."""
    from vidrefocus.depth import choose_depth

    if not (args.quiet or args.json):
        console.print(f"  {choose_depth(config).note}", highlight=False, markup=False)


def _cmd_refocus(args: argparse.Namespace) -> int:
    from vidrefocus.exports import ExportRequest
    from vidrefocus.refocus import refocus

    config = refocus_config(args)
    exports = ExportRequest(
        depth=args.export_depth, defocus=args.export_defocus,
        all_in_focus=args.export_allinfocus, fmt=args.export_format,
    )  # fmt: skip
    if chunked(args) and exports.folders():
        raise InputError(
            f"{args.output}: chunked runs (--workers, --address, --resume, --work-dir) write "
            f"the video only; drop {', '.join(exports.flags())}, or run without those options."
        )
    announce_depth(args, config)
    with progress("refocus", args.quiet or args.json) as on_progress:
        if chunked(args):
            from vidrefocus.depth import prepare_depth
            from vidrefocus.io.writer import check_output_path
            from vidrefocus.runtime.factory import refocus_factory

            # Refuse a bad output path before the driver plans the focus pull for the workers.
            check_output_path(args.output, [args.input], overwrite=args.overwrite)
            # Estimate depth once here, not once per worker: they read the cached maps.
            config, depth_notes = prepare_depth(args.input, config, progress=on_progress)
            factory = refocus_factory(args.focus, args.focus_file, args.focus_point)
            result = run_chunked(args, config, factory, on_progress)
            notes = [*depth_notes, *result.notes]
        else:
            result, plan = refocus(
                args.input, args.output, config, focus=args.focus, focus_file=args.focus_file,
                focus_points=args.focus_point, exports=exports, overwrite=args.overwrite,
                progress=on_progress,
            )  # fmt: skip
            notes = plan.notes
    report(args, result, notes)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("refocus", help="refocus a clip: depth, focus keyframes, bokeh")
    add_job_args(p)
    add_refocus_args(p)
    add_export_args(p)
    add_config_args(p)
    add_encode_args(p)
    add_runtime_args(p)
    p.set_defaults(func=_cmd_refocus)
