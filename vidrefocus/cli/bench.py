"""`vidrefocus bench`: measure speed against baselines in the same run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidrefocus.eval.bench import BENCHES

__all__ = ["register"]


def _cmd_bench(args: argparse.Namespace) -> int:
    from vidrefocus.eval.bench import run_bench

    given = {"size": args.size, "seconds": args.seconds, "repeat": args.repeat}
    # Options left out take each benchmark's own defaults (`vidrefocus bench WHAT --help`).
    report = run_bench(args.what, **{k: v for k, v in given.items() if v is not None})
    sys.stdout.write(report.markdown() + "\n")  # no wrapping: the table is pasted as is
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report.to_dict(), indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="measure speed against baselines in the same run")
    p.add_argument("what", choices=sorted(BENCHES), help="which benchmark")
    p.add_argument("--size", help="frame size: 360p, 720p, 1080p, WxH or all (default: 720p; "
                   "preview and memory 1080p, enhance 704x576)")  # fmt: skip
    p.add_argument("--seconds", type=float,
                   help="clip length (default 10; enhance 0.5, pipeline 4)")  # fmt: skip
    p.add_argument("--repeat", type=int, help="runs per row, best kept (default 2; pipeline 1)")
    p.add_argument("--json-out", type=Path, help="also write the results as JSON")
    p.set_defaults(func=_cmd_bench)
