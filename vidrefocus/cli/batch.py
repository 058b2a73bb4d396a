"""`vidrefocus batch`: many clips, each with its own settings; reruns skip finished clips."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from vidrefocus.cli.output import console, err_console, progress_bar
from vidrefocus.config import available_presets
from vidrefocus.errors import InputError

__all__ = ["register"]


@contextlib.contextmanager
def _batch_progress(quiet: bool) -> Iterator[tuple[Callable[[Any], None], Callable[[Any], None]]]:
    """Callbacks for `run_batch`: a bar over clips and one over the current clip's frames,
    and a line per finished clip."""
    bar = progress_bar(quiet)
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
        bar.console.print(f"[{colour}]{result.status}[/] {escape(result.name)}", highlight=False)

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
            escape(c.name), c.command, escape(Path(c.output).name), f"[{colour}]{c.status}[/]",
            str(c.frames), f"{c.seconds:.1f}", escape(note),
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
            err_console.print(
                f"[bold red]failed[/] {escape(c.name)}: {escape(c.message)}",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
    return result.exit_code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
