"""`vidrefocus verify`: check an enhancement against its audit log and repeat it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.markup import escape

from vidrefocus.cli.output import console, progress

__all__ = ["register"]


def _cmd_verify(args: argparse.Namespace) -> int:
    from vidrefocus.analyst.verify import verify

    with progress("re-run", args.quiet or args.json) as on_progress:
        report = verify(
            args.audit, input_path=args.input, output_path=args.output,
            rerun=not args.no_rerun, progress=on_progress,
        )  # fmt: skip
    if args.json:
        checks = [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks]
        console.print_json(json.dumps({"ok": report.ok, "checks": checks}))
    elif not args.quiet:
        for c in report.checks:
            mark = "[green]ok[/]  " if c.ok else "[bold red]FAIL[/]"
            console.print(f"{mark} {c.name}: {escape(c.detail)}", soft_wrap=True)
        verdict = "[bold green]verified[/]" if report.ok else "[bold red]NOT verified[/]"
        console.print(f"{verdict}: {escape(str(args.audit))}")
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="check an enhancement against its audit log, and repeat it bit for bit",
        description="Check that the input, weights and outputs are the audited files "
        "(sha256), naming the first frame that differs in a changed output, then re-run the "
        "enhancement with the audited settings and compare frame by frame. Exit 0: verified; "
        "1: something differs; 2: the audit log or a path is unusable.",
    )
    p.add_argument("audit", type=Path, help="the OUTPUT.audit.json that enhance wrote")
    p.add_argument("--input", type=Path, metavar="PATH",
                   help="where the input is now, if it moved")  # fmt: skip
    p.add_argument("--output", type=Path, metavar="PATH",
                   help="where the output is now, if it moved")  # fmt: skip
    p.add_argument("--no-rerun", action="store_true",
                   help="check the files only; do not repeat the enhancement")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=_cmd_verify)
