"""`vidrefocus plot-focus`: draw the per-frame focus pull to a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from vidrefocus.cli.options import add_config_args
from vidrefocus.cli.output import console
from vidrefocus.cli.refocus import add_refocus_args, refocus_config

__all__ = ["register"]


def _cmd_plot_focus(args: argparse.Namespace) -> int:
    from vidrefocus.focus_plot import plot_focus
    from vidrefocus.io.writer import check_output_path
    from vidrefocus.refocus import plan_refocus
    from vidrefocus.stages import DepthStage, FocusStage

    config = refocus_config(args)
    check_output_path(args.output, [args.input], overwrite=True)
    plan = plan_refocus(
        args.input, config, focus=args.focus, focus_file=args.focus_file,
        focus_points=args.focus_point,
    )  # fmt: skip
    blur = None
    focus_stage = next(s for s in plan.stages if isinstance(s, FocusStage))
    depth_stage = next(s for s in plan.stages if isinstance(s, DepthStage))
    if plan.tracks:
        from vidrefocus.tracking import depth_at_point

        track = next(iter(plan.tracks.values()))
        pts_list = list(plan.states)
        width = max(depth_stage.provider[0].shape[-2:])
        blur = []
        for i, p in enumerate(pts_list):
            state = plan.states[p]
            d = depth_at_point(depth_stage.provider[i][0], *track[i])
            blur.append(focus_stage.blur_scale(state, width) * (d - state.focus_disparity))
    plot_focus(list(plan.states.values()), plan.times_s, args.output, blur)
    for note in plan.notes:
        console.print(f"  {note}", highlight=False, markup=False)
    console.print(f"wrote {args.output}", markup=False)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plot-focus", help="draw the per-frame focus pull to a PNG")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    add_refocus_args(p)
    add_config_args(p)
    p.set_defaults(func=_cmd_plot_focus)
