"""The preview's outputs: a contact sheet PNG and a self-contained before/after HTML page."""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from torch import Tensor

from vidrefocus.errors import ProcessingError
from vidrefocus.io.staged import StagedOutput

__all__ = [
    "COLUMNS",
    "GAP_PX",
    "HEADER_PX",
    "LABEL_PX",
    "PLOT_HEIGHT_PX",
    "TILE_WIDTH_PX",
    "SheetRow",
    "compose_sheet",
    "plot_image",
    "sheet_size",
    "write_html",
    "write_png",
]

# Every frame is scaled to this width, so a sheet is the same width for any clip
# (4 x 480 + 5 x 6 = 1950 px): a 1080p frame shrinks 4x, a 320 px one grows 1.5x.
TILE_WIDTH_PX = 480
GAP_PX = 6
HEADER_PX = 32  # column titles
LABEL_PX = 28  # the time (and focus) of each row, above its tiles
PLOT_HEIGHT_PX = 360  # the focus curve beneath the rows
COLUMNS = 4
# The page's images: big enough to judge focus on, small enough to keep the page light.
_HTML_MAX_WIDTH_PX = 1280
_HTML_JPEG_QUALITY = 90
_BACKGROUND = (32, 32, 32)
_TEXT = (235, 235, 235)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class SheetRow:
    """One preview frame, as the sheet and the page show it.

    Attributes:
        label: the row's caption (time, frame, focus); ASCII, as OpenCV draws no other text.
        input: (3, H, W) float32 RGB in [0, 1], the frame as decoded.
        all_in_focus: (3, H, W) the frame BokehNet rendered from (deblurred, or the input).
        depth: (3, H, W) the colour-mapped depth.
        result: (3, H, W) the refocused frame.
    """

    label: str
    input: Tensor
    all_in_focus: Tensor
    depth: Tensor
    result: Tensor

    @property
    def tiles(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return (self.input, self.all_in_focus, self.depth, self.result)


def _tile_height(frame_w: int, frame_h: int) -> int:
    return max(1, round(TILE_WIDTH_PX * frame_h / frame_w))


def sheet_size(frame_w: int, frame_h: int, rows: int) -> tuple[int, int]:
    """(width, height) in pixels of the sheet of `rows` frames of this size (display).

    Example:
        >>> sheet_size(640, 360, 2)
        (1950, 1000)
    """
    width = COLUMNS * TILE_WIDTH_PX + (COLUMNS + 1) * GAP_PX
    row = LABEL_PX + _tile_height(frame_w, frame_h) + GAP_PX
    return width, HEADER_PX + rows * row + PLOT_HEIGHT_PX


def _bgr_u8(rgb: Tensor, width: int | None = None) -> np.ndarray:
    """(3, H, W) float RGB in [0, 1] -> (H', W', 3) uint8 BGR, resized to `width` if given."""
    arr = (rgb.detach().float().clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
    arr = np.ascontiguousarray(arr[..., ::-1])
    if width is not None and width != arr.shape[1]:
        height = max(1, round(width * arr.shape[0] / arr.shape[1]))
        # Area averaging when shrinking (no aliasing of fine bokeh); linear when growing.
        interp = cv2.INTER_AREA if width < arr.shape[1] else cv2.INTER_LINEAR
        arr = cv2.resize(arr, (width, height), interpolation=interp)
    return arr


def _text(image: np.ndarray, text: str, x: int, y: int, scale: float = 0.55) -> None:
    cv2.putText(image, text, (x, y), _FONT, scale, _TEXT, 1, cv2.LINE_AA)


def compose_sheet(
    rows: Sequence[SheetRow], titles: Sequence[str], plot_bgr: np.ndarray
) -> np.ndarray:
    """Lay the rows out under the column titles, with the focus plot beneath.

    Args:
        rows: the preview frames, top to bottom; every frame of one size.
        titles: one title per column (input, all-in-focus, depth, result).
        plot_bgr: (h, w, 3) uint8 BGR image of the focus curve; resized to the sheet.
    Returns:
        (H, W, 3) uint8 BGR, of the size `sheet_size` gives.
    Raises:
        ProcessingError: no rows, or a title count other than `COLUMNS`.
    """
    if not rows or len(titles) != COLUMNS:
        raise ProcessingError(f"a sheet needs rows and {COLUMNS} titles.")
    h, w = rows[0].input.shape[-2:]
    width, height = sheet_size(w, h, len(rows))
    tile_h = _tile_height(w, h)
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = _BACKGROUND
    for c, title in enumerate(titles):
        _text(sheet, title, GAP_PX + c * (TILE_WIDTH_PX + GAP_PX), HEADER_PX - 10, 0.65)
    y = HEADER_PX
    for row in rows:
        _text(sheet, row.label, GAP_PX, y + LABEL_PX - 9)
        y += LABEL_PX
        for c, tile in enumerate(row.tiles):
            x = GAP_PX + c * (TILE_WIDTH_PX + GAP_PX)
            sheet[y : y + tile_h, x : x + TILE_WIDTH_PX] = _bgr_u8(tile, TILE_WIDTH_PX)[:tile_h]
        y += tile_h + GAP_PX
    sheet[y:] = cv2.resize(plot_bgr, (width, height - y), interpolation=cv2.INTER_AREA)
    return sheet


def plot_image(plot: Callable[[Path], object], size_px: tuple[int, int]) -> np.ndarray:
    """Run `plot(path)` (a function that writes a PNG there) and read the PNG back.

    Returns:
        (h, w, 3) uint8 BGR at `size_px` (width, height).
    Raises:
        ProcessingError: no readable PNG was written.
    """
    with tempfile.TemporaryDirectory(prefix="vidrefocus-plot-") as tmp:
        path = Path(tmp) / "focus.png"
        plot(path)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ProcessingError("the focus plot could not be drawn.")
    if image.shape[:2] != (size_px[1], size_px[0]):
        image = cv2.resize(image, size_px, interpolation=cv2.INTER_AREA)
    return image


def write_png(image: np.ndarray, path: Path, inputs: list[Path], *, overwrite: bool) -> Path:
    """Write a BGR uint8 image as PNG, whole or not at all (temporary name, then rename).

    Raises:
        InputError: an output path `check_output_path` refuses.
        ProcessingError: the image cannot be encoded.
    """
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ProcessingError(f"{path}: the sheet could not be encoded as PNG.")
    with StagedOutput(path, inputs, overwrite=overwrite) as out:
        out.path().write_bytes(data.tobytes())
    return path


def _data_uri(bgr: np.ndarray, kind: str) -> str:
    params = [cv2.IMWRITE_JPEG_QUALITY, _HTML_JPEG_QUALITY] if kind == "jpeg" else []
    ok, data = cv2.imencode(f".{'jpg' if kind == 'jpeg' else kind}", bgr, params)
    if not ok:
        raise ProcessingError(f"an image could not be encoded as {kind}.")
    return f"data:image/{kind};base64,{base64.b64encode(data.tobytes()).decode('ascii')}"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; background: #202020; color: #eee; margin: 16px; }}
figure {{ margin: 0 0 28px; max-width: {width}px; }}
.cmp {{ position: relative; line-height: 0; }}
.cmp img {{ display: block; width: 100%; }}
.cmp img.before {{ position: absolute; left: 0; top: 0; clip-path: inset(0 50% 0 0); }}
input[type=range] {{ width: 100%; margin: 6px 0 0; }}
.plot {{ max-width: 100%; }}
</style></head><body>
<h1>{title}</h1>
<p>Drag a slider: left of it the input (before), right of it the refocused result (after).</p>
{figures}
<h2>Focus track</h2>
<img class="plot" alt="focus track" src="{plot}">
<script>
document.querySelectorAll("figure").forEach(function (fig) {{
  var slider = fig.querySelector("input"), before = fig.querySelector("img.before");
  slider.addEventListener("input", function () {{
    before.style.clipPath = "inset(0 " + (100 - slider.value) + "% 0 0)";
  }});
}});
</script>
</body></html>
"""

_FIGURE = """<figure><figcaption>{label}</figcaption>
<div class="cmp"><img class="after" alt="result" src="{after}"><img class="before" alt="input" src="{before}"></div>
<input type="range" min="0" max="100" value="50" aria-label="before / after">
</figure>"""  # noqa: E501


def write_html(
    rows: Sequence[SheetRow],
    plot_bgr: np.ndarray,
    path: Path,
    inputs: list[Path],
    *,
    title: str,
    overwrite: bool,
) -> Path:
    """A single self-contained page: per row a before/after slider (input vs result).

    Images are inlined as JPEG (frames) and PNG (plot) data URIs, style and script are inline:
    the page loads nothing from anywhere, so it can be mailed or archived alone.

    Raises:
        InputError: an output path `check_output_path` refuses.
    """
    w = rows[0].input.shape[-1]
    width = min(w, _HTML_MAX_WIDTH_PX)
    figures = "\n".join(
        _FIGURE.format(
            label=html.escape(row.label),
            after=_data_uri(_bgr_u8(row.result, width), "jpeg"),
            before=_data_uri(_bgr_u8(row.input, width), "jpeg"),
        )
        for row in rows
    )
    page = _PAGE.format(
        title=html.escape(title),
        width=max(width, 200),
        figures=figures,
        plot=_data_uri(plot_bgr, "png"),
    )
    with StagedOutput(path, inputs, overwrite=overwrite) as out:
        out.path().write_text(page, encoding="utf-8")
    return path
