"""The side-by-side review video: original | enhanced, labelled, with flagged frames marked.

Labels go in a bar above the pictures and a flagged frame gets a frame around both pictures,
so nothing is drawn over the footage itself.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["BAR_PX", "GAP_PX", "side_by_side", "side_by_side_size"]

BAR_PX = 28
GAP_PX = 8
BORDER_PX = 3
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)
_FLAG = (40, 40, 230)  # BGR red


def side_by_side_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the review frame for pictures of this size (even, for 4:2:0)."""
    w = 2 * width + 3 * GAP_PX
    h = BAR_PX + height + GAP_PX
    return w + w % 2, h + h % 2


def _fit_text(
    canvas: np.ndarray, text: str, x: int, width: int, colour: tuple[int, int, int]
) -> None:
    scale = 0.5
    while scale > 0.25 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        scale -= 0.05
    cv2.putText(canvas, text, (x, BAR_PX - 9), _FONT, scale, colour, 1, cv2.LINE_AA)


def side_by_side(
    original: Tensor, enhanced: Tensor, caption: str, *, flag: str | None = None
) -> Tensor:
    """Original and enhanced pictures next to each other under their labels.

    Args:
        original: (3, H, W) float RGB in [0, 1].
        enhanced: (3, H, W) the same region after enhancement (same size).
        caption: frame and time, shown over the original.
        flag: why this frame's output explains its input poorly; drawn in red over the
            enhanced picture, and both pictures are framed in red.
    Returns:
        (3, H', W') float RGB in [0, 1] of `side_by_side_size`.
    """
    _, h, w = original.shape
    width, height = side_by_side_size(w, h)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = _BACKGROUND
    left, right = GAP_PX, 2 * GAP_PX + w
    if flag is not None:
        top, bottom = BAR_PX - BORDER_PX, BAR_PX + h + BORDER_PX - 1
        for x in (left, right):
            cv2.rectangle(canvas, (x - BORDER_PX, top), (x + w + BORDER_PX - 1, bottom), _FLAG, -1)
    _fit_text(canvas, f"ORIGINAL  {caption}", left, w, _TEXT)
    label = "ENHANCED (DeblurNet, no generative model)"
    _fit_text(
        canvas, f"{label}  CHECK: {flag}" if flag else label, right, w, _FLAG if flag else _TEXT
    )
    out = torch.from_numpy(canvas[..., ::-1].copy()).permute(2, 0, 1).float() / 255.0
    out[:, BAR_PX : BAR_PX + h, left : left + w] = original
    out[:, BAR_PX : BAR_PX + h, right : right + w] = enhanced
    return out
