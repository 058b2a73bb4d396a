"""The `vidrefocus` command line: one module per command, put together in `app`."""

from __future__ import annotations

from vidrefocus.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
