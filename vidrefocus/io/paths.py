"""Output paths that never touch an input: checks before a job starts, temporary names."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from vidrefocus.errors import InputError

__all__ = ["check_output_folder", "check_output_path", "temp_path_for"]


def temp_path_for(target: Path) -> Path:
    """A hidden, unique name beside `target`, so the final rename stays on one filesystem."""
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.vidrefocus-tmp{target.suffix}")


def _refuse_inputs(output: Path, inputs: list[Path]) -> None:
    resolved = output.resolve()
    for inp in inputs:
        same = inp.exists() and output.exists() and os.path.samefile(inp, output)
        if same or inp.resolve() == resolved:
            raise InputError(
                f"{output}: the output path is the input file; write to a new name so the "
                "original stays untouched."
            )


def _check_parent_writable(output: Path) -> None:
    folder = output.resolve().parent
    if not folder.is_dir():
        raise InputError(f"{output}: the folder {folder} does not exist; create it first.")
    try:
        # Creating a file is the only reliable test: permission bits say nothing for root,
        # read-only mounts or pseudo filesystems.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vidrefocus-probe-"):
            pass
    except OSError as err:
        raise InputError(
            f"{output}: the folder {folder} is not writable ({err.strerror}); pick another folder."
        ) from err


def check_output_path(output: Path, inputs: list[Path], *, overwrite: bool = False) -> None:
    """Refuse an output path that would lose data or cannot be written, before any work.

    Args:
        output: the path the user asked for.
        inputs: every input of the job (video, depth, keyframes...).
        overwrite: allow replacing an existing file.
    Raises:
        InputError: the output is an input, exists (without `overwrite`), or its folder is
            missing or not writable.
    """
    _refuse_inputs(output, inputs)
    _check_parent_writable(output)
    if output.is_dir():
        raise InputError(f"{output}: is a folder; give a file name such as {output / 'out.mp4'}.")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: already exists; pass --overwrite to replace it.")


def check_output_folder(output: Path, inputs: list[Path], *, overwrite: bool = False) -> None:
    """Refuse an output folder that would lose or change data or cannot be written.

    Args:
        output: the folder the user asked for (it is created whole at the end of the job).
        inputs: every input of the job.
        overwrite: allow replacing an existing folder.
    Raises:
        InputError: the folder is an input, holds an input, lies inside an input folder,
            exists (without `overwrite`) or is a file, or its parent is missing or not
            writable.
    """
    resolved = output.resolve()
    for inp in inputs:
        inside = inp.resolve()
        same = inp.exists() and output.exists() and os.path.samefile(inp, output)
        if same or inside == resolved:
            raise InputError(
                f"{output}: the output folder is the input; write to a new folder so the "
                "original stays untouched."
            )
        if inside.is_relative_to(resolved):
            raise InputError(
                f"{output}: the output folder holds the input {inp}; write to a new folder so "
                "the original stays untouched."
            )
        if inp.is_dir() and resolved.is_relative_to(inside):
            raise InputError(
                f"{output}: the output folder lies inside the input folder {inp}; write to a "
                "folder outside it so the input stays untouched."
            )
    _check_parent_writable(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: is a file; give a folder name for this output.")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: already exists; pass --overwrite to replace it.")
