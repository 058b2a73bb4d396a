"""Where a depth layer has content: the tiles of the frame the layered renderer must touch.

A layer of the renderer (`vidrefocus.layered`) changes the composite only within reach of its
own pixels: its extension under nearer layers reaches `rad` px, its kernel `R` px more. Real
depth puts most layers in thin bands along depth edges, so most of the frame is untouched by
most layers. `plan_tiles` finds the T x T tiles within reach; `gather` cuts each with a halo
of `halo` px (zeros beyond the frame), which is all a tile's result depends on, so the layer
is computed on a few small crops instead of the whole frame with the same result (up to float
summation order).

Box means inside a crop are box sums divided by the count of the box clipped to the *frame*
(`box_counts`), as `layered.box_blur` computes them for the whole frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["TileSet", "box_counts", "box_mean", "gather", "pad_for", "plan_tiles", "within"]

# Tile sides tried per layer (each twice the last); the one with the least work
# (tiles x (side + 2 halo)^2) wins.
TILE_SIDES = (48, 96, 192)
# Above this share of the frame's pixels the whole frame is cheaper than crops with halos.
MAX_TILED_SHARE = 0.6


@dataclass(frozen=True)
class TileSet:
    """The tiles of one layer: (batch, row, column) indices of side `side` with a `halo`.

    Attributes:
        side: tile side in px.
        halo: px of context around each tile.
        index: (N, 3) long, (b, ty, tx) of each tile.
    """

    side: int
    halo: int
    index: Tensor

    def origins(self) -> list[tuple[int, int, int]]:
        """(b, y0, x0) in frame pixels of each tile's top-left corner."""
        return [(b, ty * self.side, tx * self.side) for b, ty, tx in self.index.tolist()]


def plan_tiles(support: Tensor, halo: int, sides: tuple[int, ...] | None = None) -> TileSet | None:
    """The tiles within `halo` px of any pixel of `support`, or None where the whole frame
    is cheaper.

    Args:
        support: (B, 1, H, W) bool, where the layer has weight.
        halo: reach of the layer beyond its pixels, px >= 0.
        sides: tile sides to try, each twice the last (default `TILE_SIDES`).
    Returns:
        The cheapest `TileSet`, or None when its crops would cover more than
        `MAX_TILED_SHARE` of the frame.
    """
    b, _, h, w = support.shape
    # The finest grid from the pixels, each coarser one from the finer (sides double).
    sides = sides or TILE_SIDES
    active = F.max_pool2d(support.float(), sides[0], ceil_mode=True)
    best: tuple[float, TileSet] | None = None
    for side in sides:
        if side > sides[0]:
            active = F.max_pool2d(active, 2, ceil_mode=True)
        if side >= max(h, w):
            break
        grow = math.ceil(halo / side)
        near = F.max_pool2d(active, 2 * grow + 1, stride=1, padding=grow) if grow else active
        index = near[:, 0].nonzero()
        work = index.shape[0] * (side + 2 * halo) ** 2
        if best is None or work < best[0]:
            best = (work, TileSet(side, halo, index))
    if best is None or best[0] > MAX_TILED_SHARE * b * h * w:
        return None
    return best[1]


def pad_for(tensor: Tensor, margin: int, side: int) -> Tensor:
    """Zero-pad (B, C, H, W) by `margin` on every side plus up to a whole tile bottom-right,
    so that every tile's crop lies inside."""
    return F.pad(tensor, (margin, margin + side, margin, margin + side))


def gather(padded: Tensor, margin: int, tiles: TileSet) -> Tensor:
    """Crops (N, C, side + 2 halo, side + 2 halo) of a tensor padded by `pad_for(margin)`.

    Raises:
        ValueError: a halo larger than the padding.
    """
    if tiles.halo > margin:
        raise ValueError(f"halo {tiles.halo} exceeds the padding {margin}")
    n = tiles.side + 2 * tiles.halo
    off = margin - tiles.halo
    crops = [
        padded[b, :, y + off : y + off + n, x + off : x + off + n] for b, y, x in tiles.origins()
    ]
    return torch.stack(crops)


def box_mean(x: Tensor, radius: int, count_y: Tensor, count_x: Tensor) -> Tensor:
    """Mean over the (2r+1)^2 box clipped to the frame, in O(1) per pixel (prefix sums).

    Each axis's box sum is divided by that axis's count before the next axis is summed, which
    keeps the second prefix sum small (float32 prefix sums lose ~1e-4 absolute over a 1280 px
    row; measured against float64, the renderer's result stays within 2e-3).

    Args:
        x: (N, C, H, W) float, zeros outside the frame.
        radius: half-width in px, >= 0.
        count_y: (N or 1, H) pixels of each row's box inside the frame (`box_counts`).
        count_x: (N or 1, W) the same for columns.
    Returns:
        (N, C, H, W).
    """
    out = x
    for dim, count in ((-1, count_x[:, None, None, :]), (-2, count_y[:, None, :, None])):
        out = _box_sum(out, radius, dim).div_(count.to(x.dtype))
    return out


def _box_sum(x: Tensor, radius: int, dim: int) -> Tensor:
    """Sum over [i - r, i + r] clipped to the tensor along `dim`: c[min(i + r, n - 1)] -
    c[i - r - 1] of the prefix sums c (c[-1] = 0), written by slices, without padded copies."""
    n = x.shape[dim]
    r = min(radius, n - 1)
    c = torch.cumsum(x, dim=dim)
    out = torch.empty_like(c)
    out.narrow(dim, 0, n - r).copy_(c.narrow(dim, r, n - r))
    if r:
        last = c.narrow(dim, n - 1, 1)
        out.narrow(dim, n - r, r).copy_(last.expand_as(out.narrow(dim, n - r, r)))
    if n > r + 1:
        out.narrow(dim, r + 1, n - r - 1).sub_(c.narrow(dim, 0, n - r - 1))
    return out


def within(start: Tensor, length: int, size: int) -> Tensor:
    """(N, length) bool: coordinates start + 0 .. length - 1 that lie in [0, size)."""
    i = start[:, None] + torch.arange(length, device=start.device)[None, :]
    return (i >= 0) & (i < size)


def box_counts(start: Tensor, length: int, size: int, radius: int) -> Tensor:
    """Pixels of the box [i - r, i + r] inside [0, size), for i = start + 0 .. length - 1.

    Args:
        start: (N,) long, the first coordinate of each crop (may be negative).
        length: crop length.
        size: the frame's length along this axis.
        radius: box half-width.
    Returns:
        (N, length) float, >= 1 (positions outside the frame count 1; they hold zeros).
    """
    i = start[:, None] + torch.arange(length, device=start.device)[None, :]
    count = (i + radius + 1).clamp(max=size) - (i - radius).clamp(min=0)
    return count.clamp(min=1).float()
