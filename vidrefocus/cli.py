"""The `vidrefocus` command: argument parsing, console output and error mapping."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from vidrefocus import __version__
from vidrefocus.config import CODECS, Config, available_presets, load_config
from vidrefocus.errors import ConfigError, InputError, VidRefocusError
from vidrefocus.eval.bench import BENCHES

__all__ = ["main"]

log = logging.getLogger("vidrefocus")
err_console = Console(stderr=True)
console = Console()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


# -- shared options ---------------------------------------------------------------------------


def _add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument(
        "--preset",
        default="default",
        metavar="NAME",
        help=f"bundled preset ({', '.join(available_presets())})",
    )
    g.add_argument("--config", type=Path, action="append", default=[], metavar="FILE",
                   help="YAML file merged over the preset (repeatable)")  # fmt: skip


def _add_encode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("encoding (default: like the input)")
    g.add_argument("--codec", help=f"one of {', '.join(CODECS)}")
    g.add_argument("--crf", type=int, help="quality for h264/h265 (lower = better; 18 default)")
    g.add_argument("--encoder-preset", help="x264/x265 speed preset (default medium)")
    g.add_argument("--pix-fmt", help="output pixel format, e.g. yuv420p, yuv422p10le")
    g.add_argument("--bit-depth", type=int, help="8, 10, 12 or 16")
    g.add_argument("--audio", help="copy (default), aac or none")
    g.add_argument("--threads", type=int, help="encoder threads (0 = automatic)")
    g.add_argument("--sequence-fps", type=float, help="frame rate of image-sequence input")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chunks and workers (Ray; default: one pass in this process)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="cut the clip into chunks and run them on N Ray workers "
                        "(0 = chunks in this process, for debugging)")  # fmt: skip
    g.add_argument("--address", metavar="ADDR",
                   help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                        "(default: start Ray on this machine)")  # fmt: skip
    g.add_argument("--resume", action="store_true",
                   help="reuse the finished chunks of an interrupted run of this job")  # fmt: skip
    g.add_argument("--work-dir", type=Path, metavar="DIR",
                   help="chunks and manifest, kept after success (default: a hidden "
                        "folder beside the output, removed after success)")  # fmt: skip


def _chunked(args: argparse.Namespace) -> bool:
    # `--workers 0` counts: chunks in this process (note 0 == False, hence `is not None`).
    given = (args.workers, args.address, args.work_dir)
    return args.resume or any(value is not None for value in given)


def _run_chunked(
    args: argparse.Namespace, config: Config, factory: Any, on_progress: Callable[[Any], None]
) -> Any:
    from vidrefocus.runtime.driver import run_job

    return run_job(
        args.input, args.output, config, factory=factory, workers=args.workers,
        address=args.address, resume=args.resume, work_dir=args.work_dir,
        overwrite=args.overwrite, progress=on_progress,
    )  # fmt: skip


def _chunk_summary(result: Any) -> dict[str, Any]:
    if not hasattr(result, "chunks_run"):
        return {}
    return {
        "chunks": result.chunks,
        "chunks_run": result.chunks_run,
        "chunks_reused": result.chunks_reused,
        "workers": result.workers,
    }


def _encode_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "encode.codec": getattr(args, "codec", None),
        "encode.crf": getattr(args, "crf", None),
        "encode.preset": getattr(args, "encoder_preset", None),
        "encode.pix_fmt": getattr(args, "pix_fmt", None),
        "encode.bit_depth": getattr(args, "bit_depth", None),
        "encode.audio": getattr(args, "audio", None),
        "encode.threads": getattr(args, "threads", None),
        "input.sequence_fps": getattr(args, "sequence_fps", None),
    }


def _config_from(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Config:
    """The preset, the --config files, then the encode options and `overrides` (dotted keys;
    None values are "not given")."""
    return load_config(args.preset, args.config, {**_encode_overrides(args), **(overrides or {})})


# -- info -------------------------------------------------------------------------------------


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
        f"[bold]{info.path}[/]  {info.container}, {info.size_bytes:,} bytes, "
        f"{float(info.duration_s):.3f} s, {info.chapters} chapter(s)"
    )
    for key, value in info.metadata.items():
        console.print(f"  {key}: {value}")
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
            table.add_row(k, val)
        console.print(table)
    for s in info.streams:
        line = f"  stream #{s.index} {s.kind}: {s.codec or '-'}"
        if s.kind == "audio":
            line += f", {s.sample_rate} Hz, {s.channels} ch ({s.layout})"  # type: ignore[attr-defined]
        if s.language:
            line += f", language {s.language}"
        console.print(line)
    return 0


# -- transcode --------------------------------------------------------------------------------


def _progress_bar(quiet: bool) -> Progress | None:
    if quiet:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} fps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


@contextlib.contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[Any], None]]:
    """A progress callback for the library: a rich bar with frames, fps and ETA on stderr."""
    bar = _progress_bar(quiet)
    task = None

    def on_progress(p: Any) -> None:
        nonlocal task
        if bar is None:
            return
        if task is None:
            task = bar.add_task(label, total=p.frames_total or None, fps=0.0)
        bar.update(task, completed=p.frames_done, fps=p.frames_done / max(p.elapsed_s, 1e-9))

    if bar is not None:
        bar.start()
    try:
        yield on_progress
    finally:
        if bar is not None:
            bar.stop()


def _report(args: argparse.Namespace, result: Any, notes: list[str]) -> None:
    """The closing summary: JSON for scripts, or one clear line of what was written."""
    summary = {
        "output": str(result.output),
        "frames": result.frames,
        "seconds": round(result.elapsed_s, 3),
        "fps": round(result.fps, 3),
        "notes": notes,
        **_chunk_summary(result),
    }
    if args.json:
        console.print_json(json.dumps(summary))
    elif not args.quiet:
        for note in notes:
            console.print(f"  {note}", highlight=False)
        console.print(
            f"wrote {result.output}: {result.frames} frames in {result.elapsed_s:.1f} s "
            f"({result.fps:.2f} fps)"
        )


def _cmd_transcode(args: argparse.Namespace) -> int:
    from vidrefocus.runtime.local import run_local

    config = _config_from(args)
    with _progress("transcode", args.quiet or args.json) as on_progress:
        if _chunked(args):
            from vidrefocus.runtime.factory import IDENTITY

            result = _run_chunked(args, config, IDENTITY, on_progress)
        else:
            result = run_local(
                args.input, args.output, [], config, overwrite=args.overwrite,
                progress=on_progress,
            )  # fmt: skip
    _report(args, result, [])
    return 0


# -- refocus ----------------------------------------------------------------------------------


def _add_refocus_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("focus")
    g.add_argument("--focus", metavar="KEYS",
                   help='keyframes, e.g. "0s:1.2m, 1s:ease-in-out:3m" (see docs)')  # fmt: skip
    g.add_argument("--focus-file", type=Path, help="keyframes as YAML, JSON or CSV")
    g = p.add_argument_group("depth")
    g.add_argument("--depth", metavar="FOLDER", help="per-frame depth maps")
    g.add_argument("--depth-units", help="mm (default), m, inverse-m or relative")
    g.add_argument("--far-is-bright", action="store_true", help="relative depth: far = bright")
    g = p.add_argument_group("lens and look")
    g.add_argument("--f-number", type=float, help="aperture, e.g. 1.8 (metric depth)")
    g.add_argument("--focal-length", type=float, help="mm (metric depth)")
    g.add_argument("--sensor", type=float, help="sensor width in mm (36 = full frame)")
    g.add_argument("--strength", type=float, help="blur in px per unit of relative depth")
    g.add_argument("--aperture", help="disk, polygon, star or heart")
    g.add_argument("--blades", type=int, help="polygon blade count")
    g.add_argument("--style", help='describe the look: "soft creamy bokeh", "hexagonal at f/2.8"')
    fill = g.add_mutually_exclusive_group()
    fill.add_argument(
        "--fill", action="store_true", help="turn BokehNet's learned fill on (see its card)"
    )
    fill.add_argument("--no-fill", action="store_true", help="turn BokehNet's learned fill off")
    g.add_argument("--deblur", action=argparse.BooleanOptionalAction, default=None,
                   help="run DeblurNet first, so the bokeh is rendered from all-in-focus "
                        "frames (default: deblur.enabled, off)")  # fmt: skip


def _refocus_config(args: argparse.Namespace) -> Config:
    overrides = {
        "depth.path": args.depth,
        "depth.units": args.depth_units,
        "depth.near_is_bright": False if args.far_is_bright else None,
        "lens.f_number": args.f_number,
        "lens.focal_length_mm": args.focal_length,
        "lens.sensor_width_mm": args.sensor,
        "bokeh.strength": args.strength,
        "bokeh.aperture": args.aperture,
        "bokeh.blades": args.blades,
        "bokeh.style": args.style,
        "bokeh.learned_fill": True if args.fill else (False if args.no_fill else None),
        "deblur.enabled": args.deblur,
    }
    config = _config_from(args, overrides)
    relative = config.depth.units == "relative"
    lens_flags = [f for f in ("f_number", "focal_length", "sensor") if getattr(args, f)]
    if relative and lens_flags:
        raise ConfigError(
            f"--{lens_flags[0].replace('_', '-')} needs metric depth, but the depth units are "
            "'relative'; set the blur with --strength, or give metric depth (--depth-units mm)."
        )
    if not relative and args.strength is not None:
        raise ConfigError(
            "--strength applies to relative depth; with metric depth the lens sets the blur "
            "(--f-number, --focal-length, --sensor)."
        )
    return config


def _cmd_refocus(args: argparse.Namespace) -> int:
    from vidrefocus.refocus import refocus

    config = _refocus_config(args)
    with _progress("refocus", args.quiet or args.json) as on_progress:
        if _chunked(args):
            from vidrefocus.io.writer import check_output_path
            from vidrefocus.runtime.factory import refocus_factory

            # Refuse a bad output path before workers start planning the focus pull.
            check_output_path(args.output, [args.input], overwrite=args.overwrite)
            factory = refocus_factory(args.focus, args.focus_file)
            result = _run_chunked(args, config, factory, on_progress)
            notes = list(result.notes)
        else:
            result, plan = refocus(
                args.input, args.output, config, focus=args.focus, focus_file=args.focus_file,
                overwrite=args.overwrite, progress=on_progress,
            )  # fmt: skip
            notes = plan.notes
    _report(args, result, notes)
    return 0


def _cmd_plot_focus(args: argparse.Namespace) -> int:
    from vidrefocus.focus_plot import plot_focus
    from vidrefocus.io.writer import check_output_path
    from vidrefocus.refocus import plan_refocus
    from vidrefocus.stages import DepthStage, FocusStage

    config = _refocus_config(args)
    check_output_path(args.output, [args.input], overwrite=True)
    plan = plan_refocus(args.input, config, focus=args.focus, focus_file=args.focus_file)
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
        console.print(f"  {note}", highlight=False)
    console.print(f"wrote {args.output}")
    return 0


# -- deblur -----------------------------------------------------------------------------------


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
    g.add_argument("--weights", type=Path, metavar="FILE",
                   help="DeblurNet .safetensors (default: the packaged weights)")  # fmt: skip


def _cmd_deblur(args: argparse.Namespace) -> int:
    from vidrefocus.deblur import deblur, output_kind

    config = _config_from(args, {
        "deblur.temporal": False if args.per_frame else None,
        # Absolute, so a worker in another folder (or on another node) finds the same file.
        "deblur.weights": str(args.weights.resolve()) if args.weights is not None else None,
    })  # fmt: skip
    with _progress("deblur", args.quiet or args.json) as on_progress:
        if _chunked(args):
            from vidrefocus.runtime.factory import DEBLUR

            if args.defocus_map is not None or output_kind(args.input, args.output) != "video":
                raise InputError(
                    f"{args.output}: chunked runs (--workers, --address, --resume, --work-dir) "
                    "write a video only; drop --defocus-map and image outputs, or run without "
                    "those options."
                )
            result = _run_chunked(args, config, DEBLUR, on_progress)
            notes = list(result.notes)
        else:
            result, notes = deblur(
                args.input, args.output, config, defocus_map=args.defocus_map,
                map_format=args.map_format, overwrite=args.overwrite, progress=on_progress,
            )  # fmt: skip
    _report(args, result, notes)
    return 0


# -- batch ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _batch_progress(quiet: bool) -> Iterator[tuple[Callable[[Any], None], Callable[[Any], None]]]:
    """Callbacks for `run_batch`: a bar over clips and one over the current clip's frames,
    and a line per finished clip."""
    bar = _progress_bar(quiet)
    tasks: dict[str, Any] = {}

    def on_progress(p: Any) -> None:
        if bar is None:
            return
        if "clips" not in tasks:
            tasks["clips"] = bar.add_task("clips", total=p.clips, fps=0.0)
        task = tasks.get(p.name)
        if task is None:
            task = tasks[p.name] = bar.add_task(p.name, total=p.frames_total or None, fps=0.0)
        bar.update(task, completed=p.frames_done, fps=p.frames_done / max(p.elapsed_s, 1e-9))

    def on_clip(result: Any) -> None:
        if bar is None:
            return
        if result.name in tasks:
            bar.remove_task(tasks.pop(result.name))
        if "clips" in tasks:
            bar.advance(tasks["clips"])
        colour = {"done": "green", "skipped": "cyan"}.get(result.status, "red")
        bar.console.print(f"[{colour}]{result.status}[/] {result.name}", highlight=False)

    if bar is not None:
        bar.start()
    try:
        yield on_progress, on_clip
    finally:
        if bar is not None:
            bar.stop()


def _batch_table(result: Any) -> Table:
    table = Table(title=f"batch: {len(result.clips)} clips in {result.elapsed_s:.1f} s")
    for column in ("job", "command", "output", "status", "frames", "s", "note"):
        right = column in ("frames", "s")
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    for c in result.clips:
        colour = {"done": "green", "skipped": "cyan"}.get(c.status, "red")
        note = f"exit {c.exit_code}, see below" if c.status == "failed" else c.message
        table.add_row(
            c.name, c.command, Path(c.output).name, f"[{colour}]{c.status}[/]", str(c.frames),
            f"{c.seconds:.1f}", note,
        )  # fmt: skip
    return table


def _cmd_batch(args: argparse.Namespace) -> int:
    from vidrefocus.runtime.batch import run_batch
    from vidrefocus.runtime.jobs import JobSettings, load_batch

    flags = JobSettings(
        command=args.command,
        preset=args.preset,
        config=[str(p.resolve()) for p in args.config] or None,
    )
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers must be >= 0, got {args.workers}.")
    jobs = load_batch(args.jobs, args.output, flags)
    with _batch_progress(args.quiet or args.json) as (on_progress, on_clip):
        result = run_batch(
            jobs, args.output, workers=args.workers, address=args.address,
            overwrite=args.overwrite, progress=on_progress, on_clip=on_clip,
        )  # fmt: skip
    if args.report is not None:
        args.report.write_text(json.dumps(result.to_dict(), indent=2))
    if args.json:
        console.print_json(json.dumps(result.to_dict()))
    elif not args.quiet or result.failed:
        console.print(_batch_table(result))
        for c in result.failed:
            err_console.print(f"[bold red]failed[/] {c.name}: {c.message}", highlight=False,
                              soft_wrap=True)  # fmt: skip
    return result.exit_code


# -- config -----------------------------------------------------------------------------------


def _cmd_config(args: argparse.Namespace) -> int:
    config = load_config(args.preset, args.config)
    console.print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
    return 0


# -- bench ------------------------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    from vidrefocus.eval.bench import run_bench

    report = run_bench(args.what, size=args.size, seconds=args.seconds, repeat=args.repeat)
    sys.stdout.write(report.markdown() + "\n")  # no wrapping: the table is pasted as is
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report.to_dict(), indent=2))
    return 0


# -- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidrefocus",
        description="Refocus video after the shot: deblur, depth, focus pulls and lens bokeh.",
    )
    parser.add_argument("--version", action="version", version=f"vidrefocus {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a video file or image sequence")
    p.add_argument("input", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--sequence-fps", type=float, help="frame rate of an image sequence")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("transcode", help="decode and re-encode (the identity pipeline)")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    _add_config_args(p)
    _add_encode_args(p)
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_transcode)

    p = sub.add_parser("refocus", help="refocus a clip: depth, focus keyframes, bokeh")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    _add_refocus_args(p)
    _add_config_args(p)
    _add_encode_args(p)
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_refocus)

    p = sub.add_parser(
        "deblur", help="remove defocus blur (DeblurNet) from a video, an image or an image folder"
    )
    p.add_argument("input", type=Path, help="video, image (PNG/JPEG/TIFF) or folder of images")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="a video file (.mp4, .mov, .mkv, ...); for an image input an "
                        "image of the same format; for a folder input a folder (same file "
                        "names)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    _add_deblur_args(p)
    _add_config_args(p)
    _add_encode_args(p)
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_deblur)

    p = sub.add_parser(
        "batch", help="run many clips, each with its own settings; reruns skip finished clips"
    )
    p.add_argument("jobs", type=Path, metavar="JOBS",
                   help="a YAML job list (keys: README, 'batch'), or a folder: every video "
                        "in it, with the same settings")  # fmt: skip
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR",
                   help="output folder; it also holds the record of finished clips "
                        "(vidrefocus-batch.json)")  # fmt: skip
    p.add_argument("--command", choices=("refocus", "transcode", "deblur"),
                   help="for jobs that name none (default refocus); a folder's refocus jobs "
                        "take depth from <clip>_depth/ beside each clip")  # fmt: skip
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs this batch did not write")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print the table only on failure")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--report", type=Path, metavar="FILE", help="also write the summary as JSON")
    g = p.add_argument_group("configuration (for jobs that set none)")
    g.add_argument("--preset", metavar="NAME",
                   help=f"bundled preset ({', '.join(available_presets())})")  # fmt: skip
    g.add_argument("--config", type=Path, action="append", default=[], metavar="FILE",
                   help="YAML file merged over the preset (repeatable)")  # fmt: skip
    g = p.add_argument_group("workers (Ray; one session serves the whole batch)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="Ray workers per clip (default: one per CPU or GPU; 0 = in this "
                        "process)")  # fmt: skip
    g.add_argument("--address", metavar="ADDR",
                   help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                        "(default: start Ray on this machine)")  # fmt: skip
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("plot-focus", help="draw the per-frame focus pull to a PNG")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    _add_refocus_args(p)
    _add_config_args(p)
    p.set_defaults(func=_cmd_plot_focus)

    p = sub.add_parser("config", help="print the resolved configuration")
    _add_config_args(p)
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("bench", help="measure speed against baselines in the same run")
    p.add_argument("what", choices=sorted(BENCHES), help="which benchmark")
    p.add_argument("--size", default="720p", help="frame size: 360p, 720p, 1080p (or all)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length")
    p.add_argument("--repeat", type=int, default=2, help="runs per row (best is kept)")
    p.add_argument("--json-out", type=Path, help="also write the results as JSON")
    p.set_defaults(func=_cmd_bench)
    return parser


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = RichHandler(console=err_console, show_time=False, show_path=verbose > 1)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    func: Callable[[argparse.Namespace], int] = args.func
    start = time.perf_counter()
    try:
        return func(args)
    except VidRefocusError as err:
        kind = type(err).__name__
        err_console.print(f"[bold red]error[/] ({kind}): {err}", highlight=False, soft_wrap=True)
        log.debug("details", exc_info=True)
        return err.exit_code
    except Terminated:
        err_console.print("terminated; partial output removed.")
        return 143
    except KeyboardInterrupt:
        err_console.print("interrupted; partial output removed.")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        log.debug("%s took %.2f s", args.command, time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
