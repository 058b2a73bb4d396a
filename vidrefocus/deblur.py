"""The analyst's job: DeblurNet over a video, an image or an image folder, with defocus maps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

from vidrefocus.config import Config
from vidrefocus.errors import InputError
from vidrefocus.io.formats import CONTAINERS
from vidrefocus.io.image_writer import ImageWriter
from vidrefocus.io.maps import DEFOCUS_MAP_EXTENSIONS, DEFOCUS_PNG_SCALE, write_defocus_map
from vidrefocus.io.paths import check_output_path
from vidrefocus.io.probe import probe
from vidrefocus.io.sequence import IMAGE_EXTENSIONS, ImageSequence, open_sequence
from vidrefocus.io.staged import StagedOutput
from vidrefocus.memory import check_input_memory
from vidrefocus.runtime.factory import deblur_stages
from vidrefocus.runtime.local import JobResult, Progress, run_local
from vidrefocus.stages import FrameBatch

__all__ = ["MapFormat", "OutputKind", "deblur", "output_kind"]

log = logging.getLogger(__name__)

OutputKind = Literal["video", "image", "folder"]
MapFormat = Literal["png", "exr"]


def output_kind(input_path: Path, output_path: Path) -> OutputKind:
    """What a deblur job writes: a video container extension encodes a video; otherwise an
    image input gives an image and a folder input a folder (same file names)."""
    if output_path.suffix.lower() in CONTAINERS:
        return "video"
    if input_path.is_dir():
        return "folder"
    if input_path.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    return "video"


def _image_input(input_path: Path) -> bool:
    return input_path.is_dir() or input_path.suffix.lower() in IMAGE_EXTENSIONS


def _map_target(
    path: Path, input_path: Path, output_path: Path, map_format: MapFormat, overwrite: bool
) -> StagedOutput:
    if path.resolve() == output_path.resolve():
        raise InputError(f"{path}: --defocus-map and the output name the same path; pick two.")
    single = input_path.is_file() and input_path.suffix.lower() in IMAGE_EXTENSIONS
    if single and path.suffix.lower() not in DEFOCUS_MAP_EXTENSIONS:
        raise InputError(
            f"{path}: for one image the defocus map is one file: name it .png (16-bit, "
            f"radius px x {DEFOCUS_PNG_SCALE}) or .exr (float32 px)."
        )
    if not single and path.suffix.lower() in (*DEFOCUS_MAP_EXTENSIONS, *CONTAINERS):
        raise InputError(
            f"{path}: for a video or image folder the defocus maps go to a folder (one "
            f"{map_format} file per frame); give a folder name without an extension."
        )
    return StagedOutput(path, [input_path, output_path], folder=not single, overwrite=overwrite)


def deblur(
    input_path: Path,
    output_path: Path,
    config: Config,
    *,
    defocus_map: Path | None = None,
    map_format: MapFormat = "png",
    overwrite: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[JobResult, list[str]]:
    """Deblur a video, an image or an image folder, in this process.

    The output keeps the input's size and depth: a video is encoded like `transcode` does
    (pts, pixel format, colour tags, audio and metadata kept); an image is written in the same
    format and bit depth, with its alpha plane copied unchanged; a folder becomes a folder of
    the same file names. Every output (and the defocus maps) is written under a temporary
    name and renamed when complete, so a failure leaves nothing behind, and the input is
    never written to.

    Args:
        input_path: a video file, an image (.png, .tif, .jpg; 8 or 16 bit, or float TIFF), or
            a folder of numbered images.
        output_path: see `output_kind`.
        config: validated options; `config.deblur` sets weights and temporal mode.
        defocus_map: also write the estimated blur radius: for an image input one .png
            (16-bit, radius px x 256, clipped at 65535) or .exr (float32 px) file; for a
            video or folder a folder of one map per frame, named like the frames (video:
            000000.png, ... in presentation order).
        map_format: file type of the maps in a defocus-map folder.
        overwrite: replace existing outputs.
        progress: called after each batch.
    Returns:
        What was written, and notes on the decisions made.
    Raises:
        InputError: missing or unreadable input (a float image with NaN names the file), an
            output that is the input or cannot be written, or one that already exists.
        ConfigError: bad options or device.
        ProcessingError: DeblurNet or the encoder failed; nothing is left at the outputs.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    kind = output_kind(input_path, output_path)
    notes: list[str] = []
    with ExitStack() as stack:
        writer: ImageWriter | None = None
        sequence: ImageSequence | None = None
        if _image_input(input_path):
            # Probing reads the first image: a missing file, NaN or a bad type fails here.
            info = probe(input_path, config.input.sequence_rate)
            rate = config.input.sequence_rate
            sequence = open_sequence(input_path, rate)
            if info.video is not None and info.video.bit_depth == 32:
                notes.append("float input: DeblurNet works in [0, 1]; brighter values are clipped")
        if kind == "video":
            check_output_path(output_path, [input_path], overwrite=overwrite)
        else:
            writer = ImageWriter(output_path, input_path, sequence, overwrite=overwrite)
        check_input_memory("deblur", input_path, config)  # before the model loads
        maps = None
        if defocus_map is not None:
            maps = stack.enter_context(
                _map_target(defocus_map, input_path, output_path, map_format, overwrite)
            )
        built = deblur_stages(input_path, config)
        notes = [*built.notes, *notes]
        names = dict(zip(sequence.pts, sequence.files, strict=True)) if sequence else {}
        written = 0

        def save_maps(batch: FrameBatch) -> None:
            nonlocal written
            for radius, pts in zip(batch.defocus, batch.pts, strict=True):
                if not maps.folder:
                    write_defocus_map(maps.path(), radius)
                else:
                    stem = names[pts].stem if names else f"{written:06d}"
                    write_defocus_map(maps.path(f"{stem}.{map_format}"), radius)
                written += 1

        result = run_local(
            input_path, output_path, built.stages, config, overwrite=overwrite,
            progress=progress, writer=writer, on_batch=save_maps if maps else None,
        )  # fmt: skip
    if defocus_map is not None:
        notes.append(f"defocus map: {defocus_map} ({_map_description(defocus_map, map_format)})")
    return result, notes


def _map_description(path: Path, map_format: MapFormat) -> str:
    ext = path.suffix.lower().lstrip(".") or map_format
    if ext == "exr":
        return "float32 EXR, radius in px"
    return f"16-bit PNG, radius px = value / {DEFOCUS_PNG_SCALE}"
