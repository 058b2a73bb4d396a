"""The `vidrefocus` command: the parser of all subcommands, logging and error mapping."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from rich.logging import RichHandler
from rich.markup import escape

from vidrefocus import __version__
from vidrefocus.cli import (
    batch,
    bench,
    config,
    deblur,
    depth,
    enhance,
    info,
    plot_focus,
    preview,
    refocus,
    transcode,
    verify,
)
from vidrefocus.cli.output import err_console
from vidrefocus.errors import VidRefocusError

__all__ = ["build_parser", "main"]

log = logging.getLogger("vidrefocus")

# In `vidrefocus --help` order.
_COMMANDS = (
    info, transcode, refocus, depth, deblur, enhance, verify, batch, plot_focus, preview, config,
    bench,
)  # fmt: skip


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _stopped(how: str, args: argparse.Namespace) -> str:
    """What a stopped job left: nothing at its output (named, so the user knows which)."""
    output = getattr(args, "output", None)
    if output is None:
        return f"{how}."
    return f"{how}: {output} was not written; partial output removed."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidrefocus",
        description="Refocus video after the shot: deblur, depth, focus pulls and lens bokeh.",
    )
    parser.add_argument("--version", action="version", version=f"vidrefocus {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(sub)
    return parser


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = RichHandler(console=err_console, show_time=False, show_path=verbose > 1)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as typed, for records such as the enhancement audit log.
    args.argv = ["vidrefocus", *(sys.argv[1:] if argv is None else argv)]
    _setup_logging(args.verbose)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    func: Callable[[argparse.Namespace], int] = args.func
    start = time.perf_counter()
    try:
        return func(args)
    except VidRefocusError as err:
        kind = type(err).__name__
        # The message holds file names and user text: "[...]" in them is not markup.
        err_console.print(
            f"[bold red]error[/] ({kind}): {escape(str(err))}", highlight=False, soft_wrap=True
        )
        log.debug("details", exc_info=True)
        return err.exit_code
    except Terminated:
        err_console.print(_stopped("terminated", args), highlight=False, markup=False)
        return 143
    except KeyboardInterrupt:
        err_console.print(_stopped("interrupted", args), highlight=False, markup=False)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        log.debug("%s took %.2f s", args.command, time.perf_counter() - start)
