"""`vidrefocus transcode`: decode and re-encode (the identity pipeline)."""

from __future__ import annotations

import argparse

from vidrefocus.cli.options import (
    add_config_args,
    add_encode_args,
    add_job_args,
    add_runtime_args,
    chunked,
    config_from,
    run_chunked,
)
from vidrefocus.cli.output import progress, report

__all__ = ["register"]


def _cmd_transcode(args: argparse.Namespace) -> int:
    from vidrefocus.runtime.local import run_local

    config = config_from(args)
    with progress("transcode", args.quiet or args.json) as on_progress:
        if chunked(args):
            from vidrefocus.runtime.factory import IDENTITY

            result = run_chunked(args, config, IDENTITY, on_progress)
        else:
            result = run_local(
                args.input, args.output, [], config, overwrite=args.overwrite,
                progress=on_progress,
            )  # fmt: skip
    report(args, result, [])
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("transcode", help="decode and re-encode (the identity pipeline)")
    add_job_args(p)
    add_config_args(p)
    add_encode_args(p)
    add_runtime_args(p)
    p.set_defaults(func=_cmd_transcode)
