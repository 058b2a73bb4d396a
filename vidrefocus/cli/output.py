"""What the commands print: the consoles, progress bars and the closing summary."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["console", "err_console", "progress", "progress_bar", "report"]

err_console = Console(stderr=True)
console = Console()


def progress_bar(quiet: bool) -> Progress | None:
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
def progress(label: str, quiet: bool) -> Iterator[Callable[[Any], None]]:
    """A progress callback for the library: a rich bar with frames, fps and ETA on stderr."""
    bar = progress_bar(quiet)
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


def _chunk_summary(result: Any) -> dict[str, Any]:
    if not hasattr(result, "chunks_run"):
        return {}
    return {
        "chunks": result.chunks,
        "chunks_run": result.chunks_run,
        "chunks_reused": result.chunks_reused,
        "workers": result.workers,
    }


def report(args: argparse.Namespace, result: Any, notes: list[str]) -> None:
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
            console.print(f"  {note}", highlight=False, markup=False)
        console.print(
            f"wrote {result.output}: {result.frames} frames in {result.elapsed_s:.1f} s "
            f"({result.fps:.2f} fps)",
            markup=False,
        )
