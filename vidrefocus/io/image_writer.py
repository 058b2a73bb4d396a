"""Write processed frames of an image input back as images stored like their source files."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.io.sequence import (
    ImageSequence,
    image_family,
    image_layout,
    write_image,
)
from vidrefocus.io.staged import StagedOutput

__all__ = ["ImageWriter"]


class ImageWriter:
    """Writes each frame like its source image: same format, bit depth, grey or colour, alpha.

    A one-image input gives one image file (an extension of the same format: .png, .tif,
    .jpg); a sequence folder gives a folder holding the same file names. The output appears
    whole when the writer closes, or not at all (`StagedOutput`). The source's alpha plane is
    copied unchanged: it is not colour, so the deblurred frame does not replace it. Each
    source file is read again for its layout, a cost that is small next to DeblurNet.

    Args:
        path: the image file or folder to write.
        input_path: the input (an image file or a sequence folder).
        sequence: the input's frames (`scan_sequence` or `single_image`).
        overwrite: replace an existing output.

    Raises:
        InputError: the output is refused (`StagedOutput`), or a one-image output names
            another format than its source.

    Example:
        >>> seq = scan_sequence(Path("frames"))  # doctest: +SKIP
        >>> with ImageWriter(Path("sharp"), Path("frames"), seq) as w:  # doctest: +SKIP
        ...     w.write(frame, pts)
    """

    def __init__(
        self,
        path: Path,
        input_path: Path,
        sequence: ImageSequence,
        *,
        overwrite: bool = False,
    ) -> None:
        self.folder = input_path.is_dir()
        self.sources = dict(zip(sequence.pts, sequence.files, strict=True))
        if self.folder and image_family(path):
            raise InputError(
                f"{path}: a folder of images gives a folder of images; name the output folder "
                f"without an image extension (such as {path.with_suffix('').name}), or use a "
                "video extension such as .mp4."
            )
        if not self.folder:
            source = sequence.files[0]
            if image_family(path) != image_family(source):
                raise InputError(
                    f"{path}: the input {source.name} is a {image_family(source)} image; name "
                    f"the output {path.with_suffix(source.suffix).name} (same format, so the "
                    "bit depth is kept), or use a video extension such as .mp4."
                )
        self.path = path
        self.staged = StagedOutput(
            path, [input_path, *sequence.files], folder=self.folder, overwrite=overwrite
        )
        self.frames_written = 0

    def write(self, rgb: Tensor, pts: int) -> None:
        """Write the frame whose source has this pts.

        Args:
            rgb: (3, H, W) float in [0, 1], display-referred.
            pts: the frame's pts (its source file's number minus the first one).
        Raises:
            InputError: the file cannot be written.
        """
        source = self.sources[pts]
        layout = image_layout(source)
        target = self.staged.path(source.name if self.folder else None)
        write_image(target, rgb, layout.bits, alpha=layout.alpha, grey=layout.channels == 1)
        self.frames_written += 1

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.staged.__exit__(exc_type, exc, tb)
