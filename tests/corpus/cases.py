"""A corpus case: one command over one input and its expected outcome, and its command line.

Arguments may name corpus files as "{key}" (a key of `inputs.INPUTS` or
`sidecars.SIDECARS`); `argv` fills them in and adds each command's usual options. The table
of cases is `table.CASES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["ALL_COMMANDS", "Case", "argv", "output_path"]

How = Literal["main", "process", "sigint", "sigterm", "full_disk", "guarded"]
Prepare = Literal["readonly", "exists"]

ALL_COMMANDS = (
    "info",
    "transcode",
    "refocus",
    "deblur",
    "enhance",
    "depth",
    "preview",
    "plot-focus",
)
_OUTPUT = {
    "transcode": "out.mp4",
    "refocus": "out.mp4",
    "deblur": "out.mp4",
    "enhance": "out.mkv",
    "depth": "depth",
    "preview": "sheet.png",
    "plot-focus": "plot.png",
    "batch": "batch",
}
# Estimated depth (the built-in DepthNet: no download) and a relative focus target.
_ESTIMATED = ("--strength", "4", "--depth-source", "builtin")
_FOCUS = ("--focus", "0s:d0.5")


@dataclass(frozen=True)
class Case:
    """One command over one input, and what it must do.

    Attributes:
        input: key of the input in the corpus.
        command: the vidrefocus command.
        code: expected exit code.
        says: text the message must hold (any case; whitespace collapsed), besides the name;
            "a|b" is either.
        names: key of the file a failure's message must name: "input", "output", or a
            corpus key (a depth folder, a keyframe file, a config).
        extra: more arguments, "{key}" for corpus files.
        how: "main" runs `vidrefocus.cli.main` here; the others a `python -m vidrefocus.cli`
            process: "process" plain, "sigint"/"sigterm" signalled mid-job, "full_disk" with
            a file size limit, "guarded" with an address-space limit and a short timeout.
        output: the output path instead of the command's usual one in the run's folder:
            "{input}", an absolute path, or a path relative to the run's folder.
        label: tells apart cases with the same input and command.
        quiet: pass -q (the closing summary, which names the output, is not printed).
        prepare: "readonly" makes the output's folder read-only (not for root, whom it does
            not stop); "exists" puts a file of ours at the output path first.
        leaves: what a failing run may leave in its folder (complete outputs of the parts
            that worked, such as a batch's good clips).
        bug: why it fails today, for a bug outside cli/ and io/ (xfail, strict).
    """

    input: str
    command: str
    code: int
    says: tuple[str, ...] = ()
    names: str = "input"
    extra: tuple[str, ...] = ()
    how: How = "main"
    output: str | None = None
    label: str = ""
    quiet: bool = True
    prepare: Prepare | None = None
    leaves: tuple[str, ...] = ()
    bug: str | None = None

    @property
    def id(self) -> str:
        return f"{self.input}-{self.command}" + (f"-{self.label}" if self.label else "")

    @property
    def uses(self) -> list[str]:
        """Corpus keys of every file the run reads (all must be unchanged after it)."""
        keys = [self.input]
        for arg in self.extra:
            if arg.startswith("{") and arg.endswith("}"):
                keys.append(arg[1:-1])
        return keys

    @property
    def chunked(self) -> bool:
        return "--workers" in self.extra


def output_path(case: Case, paths: dict[str, Path], run_dir: Path) -> Path | None:
    """Where the case's command writes (None for `info`)."""
    if case.command == "info":
        return None
    if case.output == "{input}":
        return paths[case.input]
    if case.output is not None:
        return Path(case.output) if Path(case.output).is_absolute() else run_dir / case.output
    return run_dir / _OUTPUT[case.command]


def _refocus_options(extra: tuple[str, ...]) -> tuple[str, ...]:
    depth = () if "--depth" in extra else _ESTIMATED
    focus = () if {"--focus", "--focus-file"} & set(extra) else _FOCUS
    return (*depth, *focus)


def argv(case: Case, paths: dict[str, Path], run_dir: Path) -> list[str]:
    """The command line after `vidrefocus`."""
    src = str(paths[case.input])
    extra = [
        str(paths[a[1:-1]]) if a.startswith("{") and a.endswith("}") else a for a in case.extra
    ]
    if case.command == "info":
        return ["info", src, *extra]
    out = str(output_path(case, paths, run_dir))
    quiet = ["-q"] if case.quiet and case.command != "plot-focus" else []
    opts: tuple[str, ...] = ()
    if case.command in ("refocus", "preview", "plot-focus"):
        opts = _refocus_options(case.extra)
    elif case.command == "batch":
        opts = ("--workers", "0")
    return [case.command, src, "-o", out, *quiet, *opts, *extra]
