"""Synthetic CCTV text (licence plates, signs) and its defocus, for measuring legibility.

A scene is a textured frame with axis-aligned text items on it: licence plates (light plate,
dark characters, a border) and signs or labels of either polarity, characters 8-40 px tall,
drawn with OpenCV's Hershey fonts. Every item knows its box and the box of each character, so
a metric (`eval.legibility`) can look exactly where the text is.

Scenes and their degradation are pure functions of their seeds: same seed, same bytes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import cv2
import numpy as np
import torch
from torch import Tensor

from vidrefocus.color import linear_to_srgb, srgb_to_linear
from vidrefocus.errors import InputError, ProcessingError
from vidrefocus.layered import RenderSettings, render_layered
from vidrefocus.train.scenes import dead_leaves

__all__ = [
    "ALPHABET",
    "MAX_RADIUS_PX",
    "PLATE_HEIGHTS_PX",
    "SIGN_HEIGHTS_PX",
    "CharBox",
    "TextItem",
    "TextScene",
    "TextStyle",
    "defocus",
    "glyph_templates",
    "make_text_scene",
]

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Character (cap) heights drawn for plates and for signs, px. Small sizes are weighted so that
# the recognition rate is discriminative over blur radii of 2-4 px, neither at the ceiling nor
# at chance (8 seeded 704 x 576 scenes: 0.92, 0.67, 0.46 at r = 2, 3, 4; 1.0 up to r = 1).
PLATE_HEIGHTS_PX = (8, 9, 10, 11, 12, 14, 16, 20, 24)
SIGN_HEIGHTS_PX = (8, 9, 10, 12, 14, 16, 20, 24, 32, 40)
MAX_RADIUS_PX = 32.0
MIN_SIDE_PX = 64
MAX_SIDE_PX = 8192
# Ink rows of an uppercase Hershey glyph at fontScale 1 (measured: 22 for SIMPLEX and DUPLEX).
_CAP_HEIGHT_AT_SCALE_1 = 22.0
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)
_LUMA = (0.2126, 0.7152, 0.0722)  # BT.709 weights on display values, as cameras compute Y'

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) px, x1 and y1 exclusive: img[:, y0:y1, x0:x1]
RGB = tuple[float, float, float]
T = TypeVar("T")


@dataclass(frozen=True)
class TextStyle:
    """How the characters of an item are drawn.

    Attributes:
        font: an OpenCV Hershey font id (`cv2.FONT_HERSHEY_*`).
        height_px: cap height in px.
        thickness: OpenCV stroke thickness, >= 1 (anti-aliased lines).
    """

    font: int
    height_px: int
    thickness: int

    @property
    def scale(self) -> float:
        """OpenCV `fontScale` that gives `height_px`."""
        return self.height_px / _CAP_HEIGHT_AT_SCALE_1


@dataclass(frozen=True)
class CharBox:
    """One character and its cell: the union of every glyph's ink box in this style, plus
    1 px, so any character of `ALPHABET` drawn there fits, aligned as in `glyph_templates`."""

    char: str
    box: Box


@dataclass(frozen=True)
class TextItem:
    """A plate or sign: its box, characters, style and colours (display-referred RGB)."""

    kind: Literal["plate", "sign"]
    text: str
    box: Box
    chars: tuple[CharBox, ...]
    style: TextStyle
    ink_rgb: RGB
    paper_rgb: RGB

    @property
    def dark_ink(self) -> bool:
        """Whether the characters are darker than what they are printed on."""
        return _luma(self.ink_rgb) < _luma(self.paper_rgb)


@dataclass(frozen=True, eq=False)  # compared by identity: it holds a tensor
class TextScene:
    """A sharp synthetic frame and where its text is.

    Attributes:
        image: (3, H, W) float32 in [0, 1], display-referred, all in focus.
        items: the text items, in drawing order; they do not overlap.
        seed: the seed it was made from.
    """

    image: Tensor
    items: tuple[TextItem, ...]
    seed: int


def _luma(rgb: RGB) -> float:
    return sum(w * c for w, c in zip(_LUMA, rgb, strict=True))


@functools.lru_cache(maxsize=64)
def _templates_np(style: TextStyle) -> np.ndarray:
    # Glyphs are drawn once at a shared integer origin in a large canvas and cropped to the
    # union ink box, so the scene (which pastes these very arrays) and the matcher's
    # templates are bit-identical on a sharp frame.
    h = style.height_px
    size = 4 * h + 8 * style.thickness + 16
    ox, oy = size // 4, 3 * size // 4
    glyphs = np.zeros((len(ALPHABET), size, size), np.uint8)
    for i, ch in enumerate(ALPHABET):
        cv2.putText(
            glyphs[i], ch, (ox, oy), style.font, style.scale, 255, style.thickness, cv2.LINE_AA
        )
    ink = glyphs.max(0)
    ys, xs = np.nonzero(ink)
    y0, y1 = max(0, ys.min() - 1), min(size, ys.max() + 2)
    x0, x1 = max(0, xs.min() - 1), min(size, xs.max() + 2)
    out = glyphs[:, y0:y1, x0:x1].astype(np.float32) / 255.0
    out.setflags(write=False)
    return out


def glyph_templates(style: TextStyle) -> Tensor:
    """Every glyph of `ALPHABET` in its cell, as the scene draws it.

    Args:
        style: font, height and thickness.
    Returns:
        (36, h, w) float32 ink coverage in [0, 1] (1 = ink), `ALPHABET` order; (h, w) is the
        size of every `CharBox.box` of that style.
    Example:
        >>> t = glyph_templates(TextStyle(cv2.FONT_HERSHEY_SIMPLEX, 20, 2))
        >>> t.shape[0], float(t.max())
        (36, 1.0)
    """
    return torch.from_numpy(_templates_np(style).copy())


def _thickness(height_px: int) -> int:
    # Stroke width about a ninth of the cap height, like plate and sign lettering.
    return max(1, round(height_px / 9))


class _Rng:
    """Scalar draws from a seeded `torch.Generator` (one place decides how they are drawn)."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand(1, generator=self.g))

    def integer(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi] (both included)."""
        return int(torch.randint(lo, hi + 1, (1,), generator=self.g))

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]


# (paper, ink) colours of signs, display-referred; plates are white or yellow with black.
_SIGN_COLOURS: tuple[tuple[RGB, RGB], ...] = (
    ((0.92, 0.92, 0.90), (0.06, 0.06, 0.07)),  # white, black
    ((0.10, 0.25, 0.60), (0.95, 0.95, 0.95)),  # blue, white
    ((0.05, 0.40, 0.20), (0.95, 0.95, 0.92)),  # green, white
    ((0.75, 0.08, 0.08), (0.97, 0.97, 0.97)),  # red, white
    ((0.95, 0.80, 0.15), (0.07, 0.07, 0.07)),  # yellow, black
    ((0.12, 0.12, 0.13), (0.90, 0.88, 0.80)),  # black, cream
)
_PLATE_PAPER: tuple[RGB, ...] = ((0.93, 0.93, 0.91), (0.96, 0.78, 0.12))


def _background(h: int, w: int, rng: _Rng) -> Tensor:
    """Dead leaves, desaturated, under a smooth illumination ramp (a dim CCTV scene)."""
    leaves = dead_leaves(h, w, rng.g, n=220, rmin=2.0)
    grey = leaves.mean(0, keepdim=True)
    base = 0.5 * leaves + 0.5 * grey
    ang = rng.uniform(0.0, 2 * math.pi)
    ys = torch.linspace(-1, 1, h).view(h, 1)
    xs = torch.linspace(-1, 1, w).view(1, w)
    light = 0.75 + 0.25 * (xs * math.cos(ang) + ys * math.sin(ang))
    return (base * light * rng.uniform(0.6, 0.9)).clamp(0.0, 1.0)


def _overlaps(box: Box, taken: list[Box], gap: int) -> bool:
    x0, y0, x1, y1 = box
    return any(
        x0 < b[2] + gap and b[0] < x1 + gap and y0 < b[3] + gap and b[1] < y1 + gap for b in taken
    )


def _make_item(
    kind: Literal["plate", "sign"], rng: _Rng, h: int, w: int, taken: list[Box]
) -> TextItem | None:
    """Draw one item's text, style, colours and free position; None if it does not fit."""
    plate = kind == "plate"
    height = rng.choice(PLATE_HEIGHTS_PX if plate else SIGN_HEIGHTS_PX)
    n = rng.integer(6, 8) if plate else rng.integer(3, 8)
    style = TextStyle(rng.choice(_FONTS), height, _thickness(height))
    text = "".join(ALPHABET[rng.integer(0, len(ALPHABET) - 1)] for _ in range(n))
    if plate:
        paper, ink = rng.choice(_PLATE_PAPER), (0.06, 0.06, 0.06)
    else:
        paper, ink = rng.choice(_SIGN_COLOURS)
    light = rng.uniform(0.75, 1.0)  # the item's own illumination
    paper = (paper[0] * light, paper[1] * light, paper[2] * light)
    ink = (ink[0] * light, ink[1] * light, ink[2] * light)
    ch, cw = _templates_np(style).shape[1:]
    gap = max(1, round(0.12 * height))
    pad_x, pad_y = max(4, round(0.5 * height)), max(4, round(0.35 * height))
    box_w = n * cw + (n - 1) * gap + 2 * pad_x
    box_h = ch + 2 * pad_y
    margin = 4
    if box_w > w - 2 * margin or box_h > h - 2 * margin:
        return None
    for _ in range(60):
        x0 = rng.integer(margin, w - margin - box_w)
        y0 = rng.integer(margin, h - margin - box_h)
        box = (x0, y0, x0 + box_w, y0 + box_h)
        if not _overlaps(box, taken, gap=6):
            break
    else:
        return None
    chars = tuple(
        CharBox(c, (cx, y0 + pad_y, cx + cw, y0 + pad_y + ch))
        for i, c in enumerate(text)
        for cx in [x0 + pad_x + i * (cw + gap)]
    )
    return TextItem(kind, text, box, chars, style, ink, paper)


def _ink_coverage(item: TextItem, *, border: bool = False) -> np.ndarray:
    """Ink coverage over an item's box, (h, w) float32 in [0, 1]: its characters, as the
    scene draws them, and with `border` a plate's border too (the metric wants glyphs only)."""
    x0, y0, x1, y1 = item.box
    alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
    if border and item.kind == "plate":
        t = max(1, round(item.style.height_px / 12))
        cv2.rectangle(alpha, (2, 2), (x1 - x0 - 3, y1 - y0 - 3), 1.0, t)
    cells = _templates_np(item.style)
    for cb in item.chars:
        cx0, cy0, cx1, cy1 = cb.box
        alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = cells[ALPHABET.index(cb.char)]
    return alpha


def _draw(image: Tensor, item: TextItem) -> None:
    """Paint an item (paper, plate border, characters) into `image` in place."""
    x0, y0, x1, y1 = item.box
    a = torch.from_numpy(_ink_coverage(item, border=True))[None]
    ink = torch.tensor(item.ink_rgb, dtype=torch.float32).view(3, 1, 1)
    paper = torch.tensor(item.paper_rgb, dtype=torch.float32).view(3, 1, 1)
    image[:, y0:y1, x0:x1] = paper * (1.0 - a) + ink * a


def make_text_scene(
    seed: int, height: int = 576, width: int = 704, *, plates: int = 2, signs: int = 6
) -> TextScene:
    """A CCTV-like frame with licence plates and signs on a textured background.

    Plates have 6-8 characters 8-24 px tall, dark on white or yellow, with a border; signs
    have 3-8 characters 8-40 px tall in six colour schemes of both polarities. Items are
    placed at random without overlap; one that finds no free place is left out (a small
    frame holds fewer items: check `len(scene.items)`). Axis-aligned, no perspective.

    Args:
        seed: the scene is a pure function of it (and of the other arguments).
        height, width: frame size in px, each in [64, 8192] (704 x 576 is PAL 4CIF).
        plates, signs: how many of each to try to place, >= 0.
    Returns:
        The sharp frame and its text items.
    Raises:
        InputError: a size out of range, or negative counts.
    Example:
        >>> scene = make_text_scene(0, 128, 192, plates=1, signs=2)
        >>> tuple(scene.image.shape), all(len(it.text) == len(it.chars) for it in scene.items)
        ((3, 128, 192), True)
    """
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or not MIN_SIDE_PX <= v <= MAX_SIDE_PX:
            raise InputError(
                f"make_text_scene: {name} must be an int in [{MIN_SIDE_PX}, {MAX_SIDE_PX}] px; "
                f"got {v!r}."
            )
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"make_text_scene: seed must be an int >= 0; got {seed!r}.")
    if plates < 0 or signs < 0:
        raise InputError(f"make_text_scene: plates and signs must be >= 0; got {plates}, {signs}.")
    rng = _Rng(seed)
    image = _background(height, width, rng)
    items: list[TextItem] = []
    for kind in ["plate"] * plates + ["sign"] * signs:
        item = _make_item(kind, rng, height, width, [it.box for it in items])
        if item is not None:
            _draw(image, item)
            items.append(item)
    return TextScene(image.contiguous(), tuple(items), seed)


def defocus(
    sharp: Tensor,
    radius_px: float | Tensor,
    seed: int,
    *,
    noise: tuple[float, float] = (0.001, 0.002),
    jpeg_quality: int | None = None,
    settings: RenderSettings | None = None,
) -> Tensor:
    """Defocus a sharp frame and degrade it as a CCTV camera would.

    The blur is the project's layered renderer (`layered.render_layered`: disk aperture,
    linear light), as for DeblurNet's training data; then sensor noise, Poisson-Gaussian in
    linear light (`std = sqrt(shot * L + read^2)`, L the linear value, as
    `train.deblur_data`), 8-bit quantisation and, optionally, JPEG.

    Args:
        sharp: (3, H, W) float in [0, 1], display-referred.
        radius_px: blur radius in px: a number in [0, 32], or a (1, H, W) or (H, W) map,
            signed (> 0 in front of the focal plane), |r| <= 32.
        seed: the noise is a pure function of it.
        noise: (shot, read) in linear light, each >= 0; (0, 0) for none. The default lies
            inside DeblurNet's training range (`train.deblur_data`: shot up to 0.004, read
            up to 0.006): visible grain in the shadows.
        jpeg_quality: JPEG quality in [1, 100], or None for no compression.
        settings: renderer settings (default: `RenderSettings()`, a disk aperture).
    Returns:
        (3, H, W) float32 in [0, 1], display-referred, on multiples of 1/255.
    Raises:
        InputError: a frame that is not (3, H, W), a radius out of range or of the wrong
            shape, negative noise or a JPEG quality out of range.
    Example:
        >>> x = make_text_scene(0, 64, 96, plates=0, signs=1).image
        >>> tuple(defocus(x, 2.0, seed=0).shape)
        (3, 64, 96)
    """
    if not isinstance(sharp, Tensor) or sharp.ndim != 3 or sharp.shape[0] != 3:
        shape = tuple(sharp.shape) if isinstance(sharp, Tensor) else type(sharp).__name__
        raise InputError(f"defocus: sharp must be a (3, H, W) RGB tensor; got {shape}.")
    _, h, w = sharp.shape
    if isinstance(radius_px, Tensor):
        radius = radius_px.float()
        if radius.shape not in ((h, w), (1, h, w)):
            raise InputError(
                f"defocus: a radius map must be (1, {h}, {w}) or ({h}, {w}); "
                f"got {tuple(radius.shape)}."
            )
        radius = radius.reshape(1, h, w)
        if not bool(radius.isfinite().all()) or float(radius.abs().max()) > MAX_RADIUS_PX:
            raise InputError(f"defocus: radius map values must be finite, |r| <= {MAX_RADIUS_PX}.")
    else:
        try:
            r = float(radius_px)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"defocus: radius_px must be a number or a map; got {radius_px!r}."
            ) from err
        if not 0.0 <= r <= MAX_RADIUS_PX:
            raise InputError(f"defocus: radius_px must be in [0, {MAX_RADIUS_PX}] px; got {r}.")
        radius = torch.full((1, h, w), r)
    shot, read = noise
    if not (shot >= 0 and read >= 0):
        raise InputError(f"defocus: noise (shot, read) must be >= 0; got {noise}.")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise InputError(f"defocus: jpeg_quality must be in [1, 100] or None; got {jpeg_quality}.")
    x = sharp.detach().float().cpu().clamp(0.0, 1.0)
    radius = radius.to(x.device)
    if float(radius.abs().max()) > 0.0:
        x = render_layered(x[None], radius[None], settings or RenderSettings())[0]
    g = torch.Generator().manual_seed(seed)
    if shot > 0 or read > 0:
        lin = srgb_to_linear(x)
        lin = lin + (shot * lin + read * read).sqrt() * torch.randn(lin.shape, generator=g)
        x = linear_to_srgb(lin.clamp(0.0, 1.0))
    u8 = (x.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise ProcessingError(f"defocus: OpenCV could not JPEG-encode a {w} x {h} frame.")
        u8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    out = torch.from_numpy(np.ascontiguousarray(u8)).permute(2, 0, 1).float() / 255.0
    return out.to(sharp.device)
