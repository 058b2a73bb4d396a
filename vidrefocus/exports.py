"""Per-frame sequences for compositors: the depth, blur radius and frames a refocus rendered.

`refocus --export-depth/--export-defocus/--export-allinfocus DIR` writes, beside the video,
what a Nuke or Resolve user needs to redo the last step (the bokeh) in their own tool: one
file per frame, named like the source frames (a video's frames are `000000.png`, ... in
presentation order; an image sequence keeps its file stems), each folder built under a
temporary name and renamed when the job is done, so it appears whole or not at all.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal

from vidrefocus import __version__
from vidrefocus.depth import DEPTH_SIDECAR, depth_sidecar, write_depth_map
from vidrefocus.errors import InputError
from vidrefocus.io.maps import DEFOCUS_PNG_SCALE, write_map
from vidrefocus.io.sequence import IMAGE_EXTENSIONS, scan_sequence, write_image
from vidrefocus.io.staged import StagedOutput
from vidrefocus.stages import FrameBatch

__all__ = ["DEFOCUS_SIDECAR", "ExportFormat", "ExportRequest", "ExportWriter"]

ExportFormat = Literal["png", "exr"]
DEFOCUS_SIDECAR = "defocus.json"
_FLAGS = {
    "depth": "--export-depth",
    "defocus": "--export-defocus",
    "all_in_focus": "--export-allinfocus",
}
_RADIUS_PNG_TEXT = (
    f"vidrefocus blur radius BokehNet rendered with: |radius| px = value / {DEFOCUS_PNG_SCALE} "
    "(unsigned; the EXR export keeps the sign, > 0 in front of the focal plane)"
)


@dataclass(frozen=True)
class ExportRequest:
    """Which per-frame sequences a refocus job writes beside its video.

    Attributes:
        depth: folder for the depth the bokeh used, with a `depth.json` that
            `refocus --depth FOLDER` reads back (relative: disparity x 65535 in 16-bit PNG, or
            float EXR; metric: mm in 16-bit PNG, or metres in EXR).
        defocus: folder for the signed circle-of-confusion radius BokehNet rendered with (px,
            > 0 in front of the focal plane): 16-bit PNG of |radius| x 256, or signed float EXR;
            with a `defocus.json`. (DeblurNet's estimate of the *input's* blur is another map:
            `vidrefocus deblur --defocus-map`.)
        all_in_focus: folder for the frames BokehNet rendered from (DeblurNet's output, or the
            input): 16-bit PNG (display-referred) or float EXR (linear light).
        fmt: "png" or "exr", for every folder.
    """

    depth: Path | None = None
    defocus: Path | None = None
    all_in_focus: Path | None = None
    fmt: ExportFormat = "png"

    def folders(self) -> dict[str, Path]:
        """The requested folders by kind ("depth", "defocus", "all_in_focus")."""
        given = {"depth": self.depth, "defocus": self.defocus, "all_in_focus": self.all_in_focus}
        return {kind: Path(path) for kind, path in given.items() if path is not None}

    def flags(self) -> list[str]:
        """The CLI flags of the requested folders, for messages."""
        return [_FLAGS[kind] for kind in self.folders()]


def _check_distinct(folders: dict[str, Path]) -> None:
    items = [(kind, path.resolve()) for kind, path in folders.items()]
    for i, (kind, path) in enumerate(items):
        for other, other_path in items[i + 1 :]:
            if path.is_relative_to(other_path) or other_path.is_relative_to(path):
                raise InputError(
                    f"{folders[kind]}: {_FLAGS[kind]} and {_FLAGS[other]} name the same folder "
                    "(or one inside the other); give each export its own folder."
                )


def _frame_names(input_path: Path, rate: Fraction) -> dict[int, str]:
    """pts -> file stem for image input; empty for a video (frames are numbered instead)."""
    if input_path.is_dir():
        seq = scan_sequence(input_path, rate)
        return {pts: f.stem for pts, f in zip(seq.pts, seq.files, strict=True)}
    if input_path.suffix.lower() in IMAGE_EXTENSIONS:
        return {0: input_path.stem}
    return {}


class ExportWriter:
    """Writes the requested sequences batch by batch, each into its own staged folder.

    Creating it checks every folder (exists without `overwrite`, is or holds an input, two
    exports in one folder) before any work. Leaving its `with` block normally writes the
    sidecars and moves every folder into place; leaving it by an exception removes them all.

    Args:
        request: which folders, in which format.
        input_path: the footage (names the files: image stems, or frame numbers).
        inputs: every input and output of the job (footage, video output, depth, keyframes).
        rate: frame rate given to image-sequence input (`input.sequence_rate`).
        overwrite: replace existing folders.
    Raises:
        InputError: a refused folder, or an unknown format.

    Example:
        >>> request = ExportRequest(depth=Path("depth"), fmt="exr")
        >>> writer = ExportWriter(request, clip, inputs=[clip], rate=Fraction(24))  # doctest: +SKIP
        >>> with writer as out:  # doctest: +SKIP
        ...     out.describe_depth(metric=True, source="user mm", stabilized=True)
        ...     out.write(batch)
    """

    def __init__(
        self,
        request: ExportRequest,
        input_path: Path,
        *,
        inputs: list[Path],
        rate: Fraction,
        overwrite: bool = False,
    ) -> None:
        if request.fmt not in ("png", "exr"):
            raise InputError(f"export format {request.fmt!r} unknown; use png or exr.")
        folders = request.folders()
        _check_distinct(folders)
        self.request = request
        self._stack = ExitStack()
        self._out = {
            kind: StagedOutput(path, inputs, folder=True, overwrite=overwrite)
            for kind, path in folders.items()
        }
        self._names = _frame_names(Path(input_path), rate)
        self._written = 0
        self._metric: bool | None = None
        self._depth_source = ""
        self._stabilized = False

    def describe_depth(self, *, metric: bool, source: str, stabilized: bool) -> None:
        """Say what the batches' depth is (call before the first `write`).

        Args:
            metric: `batch.depth` is 1/m (written as distances) rather than relative.
            source: where the depth came from, for `depth.json`.
            stabilized: whether it was temporally stabilised, for `depth.json`.
        """
        self._metric, self._depth_source, self._stabilized = metric, source, stabilized

    def write(self, batch: FrameBatch) -> None:
        """Write every frame of a processed batch (after the bokeh stage).

        Raises:
            InputError: a file cannot be written.
            ValueError: the batch lacks what an export needs, or depth was not described.
        """
        fmt = self.request.fmt
        for i, pts in enumerate(batch.pts):
            name = f"{self._names.get(pts, f'{self._written:06d}')}.{fmt}"
            if "depth" in self._out:
                if batch.depth is None or self._metric is None:
                    raise ValueError("depth export: no depth in the batch, or not described")
                write_depth_map(self._out["depth"].path(name), batch.depth[i], metric=self._metric)
            if "defocus" in self._out:
                radius = batch.extras["radius"][i]
                target = self._out["defocus"].path(name)
                if fmt == "png":
                    write_map(target, radius.abs(), png_scale=DEFOCUS_PNG_SCALE,
                              description=_RADIUS_PNG_TEXT, what="blur radius map")  # fmt: skip
                else:
                    write_map(target, radius, png_scale=1.0, description="", what="blur radius")
            if "all_in_focus" in self._out:
                rgb = batch.extras["all_in_focus"][i]
                write_image(self._out["all_in_focus"].path(name), rgb, 16 if fmt == "png" else 32)
            self._written += 1

    def notes(self) -> list[str]:
        """One line per export: where it went and what its numbers mean."""
        fmt, notes = self.request.fmt, []
        for kind, path in self.request.folders().items():
            if kind == "depth":
                sidecar = depth_sidecar(fmt, self._written, "", False, metric=bool(self._metric))
                what = sidecar["values"]
            elif kind == "defocus":
                what = _defocus_values(fmt)
            elif fmt == "png":
                what = "16-bit RGB, display-referred"
            else:
                what = "float32 RGB, linear light (sRGB curve removed)"
            notes.append(f"{_FLAGS[kind]}: {self._written} frames in {path} ({what})")
        return notes

    def _finish(self) -> None:
        fmt = self.request.fmt
        if "depth" in self._out:
            sidecar = depth_sidecar(
                fmt, self._written, self._depth_source, self._stabilized,
                metric=bool(self._metric),
            )  # fmt: skip
            self._out["depth"].path(DEPTH_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
        if "defocus" in self._out:
            sidecar = {
                "vidrefocus": __version__,
                "kind": "defocus",
                "what": "signed circle-of-confusion radius BokehNet rendered with, > 0 in front "
                "of the focal plane",
                "values": _defocus_values(fmt),
                "signed": fmt == "exr",
                "png_scale": DEFOCUS_PNG_SCALE if fmt == "png" else None,
                "format": fmt,
                "frames": self._written,
            }
            text = json.dumps(sidecar, indent=2) + "\n"
            self._out["defocus"].path(DEFOCUS_SIDECAR).write_text(text)

    def __enter__(self) -> ExportWriter:
        for out in self._out.values():
            self._stack.enter_context(out)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self._finish()
            except BaseException as err:
                # Sidecars failed: remove every folder rather than commit them half described.
                self._stack.__exit__(type(err), err, err.__traceback__)
                raise
        self._stack.__exit__(exc_type, exc, tb)


def _defocus_values(fmt: ExportFormat) -> str:
    if fmt == "png":
        return f"|blur radius| in px = code / {DEFOCUS_PNG_SCALE} (unsigned)"
    return "signed blur radius in px, > 0 in front of the focal plane (float32)"
