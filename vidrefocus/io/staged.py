"""Outputs that appear whole or not at all: written under a temporary name, then renamed."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from types import TracebackType

from vidrefocus.errors import ProcessingError
from vidrefocus.io.paths import check_output_folder, check_output_path, temp_path_for

__all__ = ["StagedOutput"]

log = logging.getLogger(__name__)


class StagedOutput:
    """A file or folder built under a hidden temporary name beside its target.

    `commit()` moves it into place in one rename (an existing target, allowed by `overwrite`,
    is swapped out first and removed after); `abort()`, or an exception inside a `with` block,
    removes it and leaves the target as it was. The temporary name sits beside the target, so
    the rename never crosses filesystems.

    Args:
        target: the file or folder to produce.
        inputs: the job's inputs; the target may not be one of them (nor hold one, nor lie
            inside an input folder, for a folder target).
        folder: produce a folder, whose files are added at `path(name)`.
        overwrite: replace an existing target.

    Raises:
        InputError: a target `check_output_path` or `check_output_folder` refuses.

    Example:
        >>> with StagedOutput(Path("maps"), [Path("in.mp4")], folder=True) as out:  # doctest: +SKIP
        ...     out.path("000000.png").write_bytes(data)
    """

    def __init__(
        self, target: Path, inputs: list[Path], *, folder: bool = False, overwrite: bool = False
    ) -> None:
        check = check_output_folder if folder else check_output_path
        check(target, inputs, overwrite=overwrite)
        self.target = target
        self.folder = folder
        self.tmp = temp_path_for(target)

    def path(self, name: str | None = None) -> Path:
        """Where to write: the temporary file, or the file `name` in the temporary folder.

        Raises:
            ValueError: a folder output without a file name, or a file output with one.
        """
        if self.folder != (name is not None):
            raise ValueError("a folder output takes a file name; a file output takes none")
        if name is None:
            return self.tmp
        # Made at the first file, so an output that is never written leaves nothing behind.
        self.tmp.mkdir(exist_ok=True)
        return self.tmp / name

    def commit(self) -> Path:
        """Move the finished output into place.

        Raises:
            ProcessingError: nothing was written, or the rename failed (the temporary output
                is removed then).
        """
        try:
            if not self.tmp.exists():
                raise FileNotFoundError(self.tmp)
            if self.folder and self.target.is_dir():
                old = temp_path_for(self.target)
                os.replace(self.target, old)
                os.replace(self.tmp, self.target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self.tmp, self.target)
        except OSError as err:
            self.abort()
            raise ProcessingError(
                f"{self.target}: could not move the finished output into place ({err})."
            ) from err
        log.info("wrote %s", self.target)
        return self.target

    def abort(self) -> None:
        """Remove the temporary output; the target is never touched."""
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> StagedOutput:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
