"""Make the bundled sample media: a layered scene with known depth, a VFR clip, a 10-bit clip.

Usage: ``python samples/make_samples.py [--out samples] [--preview DIR]``.

Everything is procedural and seeded, and every encoder runs single-threaded with a fixed
creation time, so two runs on the same machine give byte-identical files (``manifest.json``
holds their sha256). The script is standalone on purpose: numpy, torch, PyAV and imageio-ffmpeg
only, no ``vidrefocus`` import, so the samples never depend on the code they test.

The scene is three fronto-parallel planes (a night street at 8 m, a test card at 3 m, a textured
ball at 1.2 m) seen by a camera that trucks sideways, so each plane shifts by f_px * T / Z.
``scene_sharp.mp4`` is the pinhole (all-in-focus) render; ``scene.mp4`` is the same shot through
a 50 mm f/2 full-frame lens focused at 1.2 m, rendered per plane in linear light: premultiplied
layer (*) antialiased disk, then back-to-front "over".
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

W, H, FPS, N_FRAMES = 640, 360, 24, 96
FOCAL_MM, F_NUMBER, SENSOR_W_MM, FOCUS_M = 50.0, 2.0, 36.0, 1.2
F_PX = FOCAL_MM * W / SENSOR_W_MM  # focal length in pixels: 888.9
SS = 2  # layers are sampled on a 2x grid and box-filtered down, so edges and shifts are smooth
MARGIN = 48  # px of canvas beyond the frame, so defocus at the border sees real content
SEED = 20240501
CREATION_TIME = "2024-05-01T12:00:00Z"
TIMECODE = "01:00:00:00"
AUDIO_RATE = 48000
BG_DEPTH_M, MID_DEPTH_M, NEAR_DEPTH_M = 8.0, 3.0, 1.2
CARD_HALF_PX, CARD_CORNER_PX = (120.0, 75.0), 16.0
NEAR_RADIUS_PX = 66.0
LAYER_NOTES = {
    "background": "night street wall: sky, buildings with windows, lamps, hedge, railing, paving",
    "middle": "rounded test card: header, glyph text, Siemens star, swatches, checker, border",
    "near": "textured ball: colour dead leaves, spoke ring, checkered rim; moves left to right",
}
VFR_GAPS_MS = [33, 33, 40, 17, 100, 33, 40, 17, 33, 33, 100, 40, 17, 33, 500]
VFR_GAPS_MS += [33, 40, 17, 33, 100, 33, 40, 17, 33, 33, 40, 100, 17, 33]  # 29 gaps, 30 frames
DIGITS_5X7 = [
    "01110100011001110101110011000101110",
    "00100011000010000100001000010001110",
    "01110100010000100010001000100011111",
    "11110000010000101110000010000111110",
    "00010001100101010010111110001000010",
    "11111100001111000001000011000101110",
    "00110010001000011110100011000101110",
    "11111000010001000100010000100001000",
    "01110100011000101110100011000101110",
    "01110100011000101111000010001001100",
]


# ----------------------------------------------------------------------------- optics, colour


def coc_diameter_px(depth_m: float) -> float:
    """Thin-lens circle of confusion on the sensor, as a diameter in pixels.

    c = A * f * S_f / (S_f - f) * |1/S_f - 1/S| with A = f / N (all in mm); c is the diameter
    of the blur spot, so the disk kernel's radius is c / 2.
    """
    f, s_f, s = FOCAL_MM, FOCUS_M * 1000.0, depth_m * 1000.0
    c_mm = (f / F_NUMBER) * f * s_f / (s_f - f) * abs(1.0 / s_f - 1.0 / s)
    return c_mm * W / SENSOR_W_MM


def srgb_to_linear(x: Tensor) -> Tensor:
    """IEC 61966-2-1 decoding; values above 1 are extended with the power segment."""
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """IEC 61966-2-1 encoding after clipping to [0, 1] (highlights clip here)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def rgb_to_ycbcr(rgb: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) R'G'B' in [0, 1] -> float Y', Cb, Cr codes, BT.709, limited range.

    H.273 eq. 20-25: black at 16 * 2^(n-8), 219 * 2^(n-8) luma and 224 * 2^(n-8) chroma codes.
    """
    kr, kb = 0.2126, 0.0722
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    step = float(1 << (bits - 8))
    return 16 * step + 219 * step * y, 128 * step + 224 * step * cb, 128 * step + 224 * step * cr


def chroma_halve_width(c: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 at even columns: chroma co-sited with the left luma sample (MPEG-2)."""
    p = np.pad(c, ((0, 0), (1, 1)), mode="edge")
    return (p[:, 0:-2:2] + 2 * p[:, 1:-1:2] + p[:, 2::2]) / 4


def to_yuv420p(rgb: np.ndarray) -> bytes:
    """(H, W, 3) R'G'B' in [0, 1] -> raw yuv420p bytes, BT.709 limited range, 8 bit."""
    y, cb, cr = rgb_to_ycbcr(rgb, 8)
    planes = [y] + [(lambda h: (h[0::2] + h[1::2]) / 2)(chroma_halve_width(c)) for c in (cb, cr)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


# ----------------------------------------------------------------------------- textures


def fractal_noise(rng: np.random.Generator, h: int, w: int, sizes: list[float]) -> np.ndarray:
    """(h, w) sum of bicubic value noise at the given feature sizes (texels), 1/f weighted."""
    out = np.zeros((h, w), np.float32)
    for s in sizes:
        gh, gw = math.ceil(h / s) + 4, math.ceil(w / s) + 4
        grid = torch.from_numpy(rng.standard_normal((gh, gw)).astype(np.float32))[None, None]
        up = F.interpolate(grid, size=(int(gh * s), int(gw * s)), mode="bicubic")[0, 0].numpy()
        o = int(s)
        out += s**0.5 * up[o : o + h, o : o + w]
    return out / out.std()


def dead_leaves(
    rng: np.random.Generator,
    img: np.ndarray,
    n: int,
    r_range: tuple[float, float],
    palette: np.ndarray,
) -> None:
    """Paint n antialiased discs into img (h, w, 3) in place; radii follow p(r) ~ r^-3.

    The r^-3 law makes the dead-leaves image scale-invariant like natural images (Lee, Mumford
    and Huang 2001).
    """
    h, w = img.shape[:2]
    lo, hi = r_range[0] ** -2, r_range[1] ** -2
    for _ in range(n):
        r = (lo + rng.random() * (hi - lo)) ** -0.5
        cx, cy = rng.random() * w, rng.random() * h
        col = np.clip(
            palette[rng.integers(len(palette))] * (1 + 0.12 * rng.standard_normal(3)), 0, 1
        )
        x0, x1 = max(0, int(cx - r - 1)), min(w, int(cx + r + 2))
        y0, y1 = max(0, int(cy - r - 1)), min(h, int(cy + r + 2))
        if x0 >= x1 or y0 >= y1:
            continue
        xs, ys = np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5
        d = np.sqrt((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2)
        cov = np.clip(r - d + 0.5, 0, 1)[..., None]
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - cov) + col * cov


def glyph_bank(rng: np.random.Generator, n: int = 48) -> list[np.ndarray]:
    """n random 7x5 glyphs with a stem or bar each, so rows of them read like text."""
    bank = []
    for _ in range(n):
        g = rng.random((7, 5)) < 0.38
        if rng.random() < 0.6:
            g[:, rng.integers(5)] = True
        else:
            g[rng.integers(7), :] = True
        bank.append(g)
    return bank


def text_lines(
    rng: np.random.Generator, bank: list[np.ndarray], lines: int, chars: int
) -> np.ndarray:
    """(lines * 11, chars * 6) bool: words of 1-8 glyphs, one blank cell between letters."""
    out = np.zeros((lines * 11, chars * 6), bool)
    for li in range(lines):
        col = 0
        end = chars - int(rng.integers(chars // 4, chars // 2)) if li % 3 == 2 else chars
        while col < end:
            for _ in range(int(rng.integers(1, 9))):
                if col >= end:
                    break
                out[li * 11 + 2 : li * 11 + 9, col * 6 : col * 6 + 5] = bank[
                    rng.integers(len(bank))
                ]
                col += 1
            col += 1
    return out


def paste(img: np.ndarray, cov: np.ndarray, color: tuple[float, ...], x0: int, y0: int) -> None:
    """Blend a solid colour into img (h, w, 3) with coverage cov (h', w') at (x0, y0), in place.

    The part of cov that falls outside img is dropped.
    """
    ih, iw = img.shape[:2]
    ch, cw = cov.shape
    ya, yb, xa, xb = max(0, y0), min(ih, y0 + ch), max(0, x0), min(iw, x0 + cw)
    if ya >= yb or xa >= xb:
        return
    c = cov[ya - y0 : yb - y0, xa - x0 : xb - x0, None].astype(np.float32)
    img[ya:yb, xa:xb] = img[ya:yb, xa:xb] * (1 - c) + np.array(color, np.float32) * c


def supersampled(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], h: int, w: int) -> np.ndarray:
    """(h, w) coverage of a boolean shape fn(x, y) (texel coordinates), 4x4 supersampled."""
    s = 4
    ys, xs = np.meshgrid((np.arange(h * s) + 0.5) / s, (np.arange(w * s) + 0.5) / s, indexing="ij")
    return fn(xs, ys).astype(np.float32).reshape(h, s, w, s).mean(axis=(1, 3))


def band_limit(img: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 in x and y: removes texel-level aliasing of hard-edged patterns."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    p = (p[:-2] + 2 * p[1:-1] + p[2:]) / 4
    return (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4


def background_texture(rng: np.random.Generator) -> tuple[Tensor, list[dict]]:
    """Night street at 8 m: sky, buildings with windows, lamps, hedge, railing, paving.

    Returns the (1, 3, Ht, Wt) linear texture (texel = 1/SS px, centre = image centre at the
    camera origin) with highlights of linear value 10-40, and the highlights' positions.
    """
    wp, hp = 784, 480  # px: canvas (736 x 456) plus the background's parallax and drift
    h, w = hp * SS, wp * SS
    yy = (np.arange(h)[:, None] + 0.5) / SS - hp / 2  # local px, y down, 0 at image centre
    xx = (np.arange(w)[None, :] + 0.5) / SS - wp / 2
    clouds = fractal_noise(rng, h, w, [120, 60, 30])[..., None]
    t = np.clip((yy + 240) / 240, 0, 1)[..., None]
    img = (np.array([0.08, 0.10, 0.20]) * (1 - t) + np.array([0.30, 0.22, 0.30]) * t).repeat(w, 1)
    img = (img * (1 + 0.12 * clouds)).astype(np.float32)
    ground, concrete = 70.0, fractal_noise(rng, h, w, [40, 12, 4, 1.5])
    walls = np.array(
        [[0.22, 0.22, 0.25], [0.32, 0.26, 0.22], [0.18, 0.20, 0.24], [0.36, 0.34, 0.31]]
    )
    lit_windows = []
    x = -wp / 2 - 20 * rng.random()
    while x < wp / 2:
        bw, top = 90 + 140 * rng.random(), -210 + 170 * rng.random()
        inside = (xx >= x) & (xx < x + bw) & (yy >= top) & (yy < ground)
        wall = walls[rng.integers(len(walls))] * (1 + 0.10 * concrete[..., None])
        img = np.where(inside[..., None], wall, img)
        sx, sy = 13 + 7 * rng.random(), 16 + 6 * rng.random()
        for wy in np.arange(top + 8, ground - 14, sy):
            for wx in np.arange(x + 6, x + bw - 10, sx):
                lit = rng.random() < 0.3
                tone = 0.6 + 0.4 * rng.random()
                color = (0.95 * tone, 0.78 * tone, 0.45 * tone) if lit else (0.05, 0.06, 0.09)
                x0, y0 = round((wx + wp / 2) * SS), round((wy + hp / 2) * SS)
                cov = np.ones((round(0.6 * sy * SS), round(0.55 * sx * SS)), np.float32)
                paste(img, cov, color, x0, y0)
                if lit:
                    lit_windows.append((wx + 0.27 * sx, wy + 0.3 * sy))
        x += bw + (25 * rng.random() if rng.random() < 0.4 else 0)
    hedge = img[int((ground + hp / 2) * SS) : int((ground + 75 + hp / 2) * SS)]
    hedge[:] = np.array([0.06, 0.10, 0.05])
    greens = np.array(
        [[0.10, 0.22, 0.08], [0.16, 0.30, 0.10], [0.05, 0.12, 0.06], [0.25, 0.33, 0.12]]
    )
    dead_leaves(rng, hedge, 2600, (2.0, 28.0), greens)
    pave = (yy >= ground + 75)[..., None]
    checker = ((np.floor(xx / 14) + np.floor((yy - ground) / 9)) % 2)[..., None]
    paving = np.array([0.20, 0.19, 0.18]) + 0.06 * checker + 0.03 * concrete[..., None]
    img = np.where(pave, paving, img).astype(np.float32)
    rail = (yy > ground + 22) & (yy < ground + 75) & ((xx % 9) < 2)
    rail |= (yy > ground + 20) & (yy < ground + 24)
    img = np.where(rail[..., None], np.array([0.04, 0.04, 0.05], np.float32), img)
    lights = []
    for lx in np.arange(-wp / 2 + 30, wp / 2, 105) + 30 * rng.random():
        ly = ground - 12 - 6 * rng.random()
        post = (np.abs(xx - lx) < 0.8) & (yy > ly) & (yy < ground + 75)
        img = np.where(post[..., None], np.array([0.03, 0.03, 0.03], np.float32), img)
        lights.append((lx, ly, 2.2, 10 + 30 * rng.random()))
    for i in rng.choice(len(lit_windows), size=14, replace=False):
        lights.append((*lit_windows[i], 1.2 + 0.6 * rng.random(), 10 + 30 * rng.random()))
    lin = srgb_to_linear(torch.from_numpy(band_limit(img).astype(np.float32)))
    for lx, ly, lr, value in lights:
        d = np.sqrt((xx - lx) ** 2 + (yy - ly) ** 2)
        cov = torch.from_numpy(np.clip((lr - d) * SS + 0.5, 0, 1).astype(np.float32))[..., None]
        lin = lin * (1 - cov) + value * cov
    info = [
        {"x_px": lx, "y_px": ly, "radius_px": lr, "linear_value": v} for lx, ly, lr, v in lights
    ]
    return lin.permute(2, 0, 1)[None].contiguous(), info


def card_texture(rng: np.random.Generator) -> Tensor:
    """Test card at 3 m: paper, header, body text, Siemens star, swatches, checker, border."""
    hw, hh = CARD_HALF_PX
    wp, hp = int(2 * hw) + 8, int(2 * hh) + 8
    h, w = hp * SS, wp * SS
    px = lambda v, half: round((v + half) * SS)  # noqa: E731  local px -> texel index
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.array([0.93, 0.91, 0.86])
    img *= (1 + 0.02 * fractal_noise(rng, h, w, [30, 6, 2]))[..., None]
    bank = glyph_bank(rng)
    img[px(-hh, hp / 2) : px(-hh + 30, hp / 2)] = np.array([0.12, 0.20, 0.45])
    title = np.kron(text_lines(rng, bank, 1, 17)[:, :-1], np.ones((3, 3)))
    paste(img, title, (0.97, 0.95, 0.90), px(-hw + 14, wp / 2), px(-hh + 2, hp / 2))
    body = np.kron(text_lines(rng, bank, 6, 22)[:, :-1], np.ones((2, 2)))
    paste(img, body, (0.08, 0.08, 0.10), px(-hw + 12, wp / 2), px(-hh + 38, hp / 2))
    r_star = 28 * SS
    star = supersampled(
        lambda x, y: (
            (np.sin(12 * np.arctan2(y - r_star, x - r_star)) > 0)
            & (np.hypot(x - r_star, y - r_star) < r_star)
        ),
        2 * r_star,
        2 * r_star,
    )
    paste(img, star, (0.05, 0.05, 0.06), px(hw - 70, wp / 2), px(-hh + 36, hp / 2))
    swatches = [(0.45, 0.32, 0.26), (0.76, 0.58, 0.50), (0.36, 0.48, 0.61), (0.35, 0.42, 0.25)]
    swatches += [(0.51, 0.50, 0.69), (0.40, 0.74, 0.67), (0.84, 0.47, 0.17), (0.80, 0.22, 0.30)]
    for i, col in enumerate(swatches):
        cov = np.ones((18 * SS, 18 * SS), np.float32)
        paste(img, cov, col, px(-hw + 12 + 21 * i, wp / 2), px(hh - 30, hp / 2))
    chk = np.kron((np.indices((4, 8)).sum(0) % 2).astype(np.float32), np.ones((4 * SS, 4 * SS)))
    paste(img, chk, (0.05, 0.05, 0.05), px(hw - 48, wp / 2), px(hh - 28, hp / 2))
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    sdf = rounded_rect_sdf(torch.from_numpy(xs / SS - wp / 2), torch.from_numpy(ys / SS - hp / 2))
    border = np.clip((sdf.numpy() + 3.5) * SS, 0, 1).astype(np.float32)
    paste(img, border, (0.14, 0.14, 0.17), 0, 0)
    lin = srgb_to_linear(torch.from_numpy(band_limit(img).astype(np.float32)))
    return lin.permute(2, 0, 1)[None].contiguous()


def ball_texture(rng: np.random.Generator) -> Tensor:
    """Near ball at 1.2 m: colourful dead leaves, a spoke ring, a checkered rim, soft shading."""
    rp = NEAR_RADIUS_PX
    wp = int(2 * rp) + 8
    n = wp * SS
    c = n / 2
    img = np.empty((n, n, 3), np.float32)
    img[:] = np.array([0.55, 0.12, 0.10])
    palette = np.array(
        [
            *([0.85, 0.15, 0.10], [0.95, 0.55, 0.10], [0.95, 0.85, 0.20], [0.75, 0.20, 0.55]),
            *([0.10, 0.60, 0.55], [0.95, 0.95, 0.90], [0.05, 0.05, 0.05], [0.20, 0.30, 0.80]),
        ]
    )
    dead_leaves(rng, img, 1800, (3.0, 30.0), palette)
    rad = lambda x, y: np.hypot(x - c, y - c) / (rp * SS)  # noqa: E731
    ring = supersampled(lambda x, y: (rad(x, y) > 0.70) & (rad(x, y) < 0.86), n, n)
    spokes = supersampled(
        lambda x, y: (
            (np.sin(20 * np.arctan2(y - c, x - c)) > 0) & (rad(x, y) > 0.72) & (rad(x, y) < 0.86)
        ),
        n,
        n,
    )
    paste(img, ring, (0.97, 0.97, 0.95), 0, 0)
    paste(img, spokes, (0.04, 0.04, 0.04), 0, 0)
    rim = supersampled(
        lambda x, y: (
            (rad(x, y) > 0.89) & ((np.floor(x / (2 * SS)) + np.floor(y / (2 * SS))) % 2 == 0)
        ),
        n,
        n,
    )
    paste(img, rim, (0.98, 0.90, 0.30), 0, 0)
    ys, xs = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5, indexing="ij")
    r = np.clip(rad(xs, ys), 0, 1)
    shade = 0.72 + 0.28 * np.sqrt(1 - r**2) + 0.08 * ((c - xs - ys + c) / n)
    img = img * shade[..., None].astype(np.float32)
    lin = srgb_to_linear(torch.from_numpy(band_limit(img).astype(np.float32)))
    return lin.permute(2, 0, 1)[None].contiguous()


# ----------------------------------------------------------------------------- scene


def rounded_rect_sdf(x: Tensor, y: Tensor) -> Tensor:
    """Signed distance in px to the card's rounded rectangle (negative inside)."""
    (hw, hh), r = CARD_HALF_PX, CARD_CORNER_PX
    qx, qy = x.abs() - (hw - r), y.abs() - (hh - r)
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0) - r


def disc_sdf(x: Tensor, y: Tensor) -> Tensor:
    """Signed distance in px to the ball's outline (negative inside)."""
    return torch.sqrt(x**2 + y**2) - NEAR_RADIUS_PX


def smoothstep(u: float, a: float, b: float) -> float:
    """0 for u <= a, 1 for u >= b, cubic in between."""
    s = min(max((u - a) / (b - a), 0.0), 1.0)
    return s * s * (3 - 2 * s)


def camera_m(u: float) -> tuple[float, float]:
    """Camera translation (x right, y down) in metres at shot fraction u in [0, 1]."""
    return -0.06 + 0.12 * u, 0.004 * u + 0.005 * math.sin(2 * math.pi * 0.8 * u)


@dataclass(frozen=True)
class Layer:
    """One fronto-parallel plane: linear texture, outline and its image centre over time."""

    name: str
    depth_m: float
    texture: Tensor  # (1, 3, Ht, Wt) float32, linear, may exceed 1; texel = 1 / SS px
    sdf: Callable[[Tensor, Tensor], Tensor] | None  # local px -> signed distance px; None: all
    base_xy: Callable[[float], tuple[float, float]]  # image centre (px) if the camera sat at 0

    def center_px(self, u: float) -> tuple[float, float]:
        """Continuous image centre (pixel (0, 0) spans [0, 1)^2) at shot fraction u."""
        (bx, by), (tx, ty) = self.base_xy(u), camera_m(u)
        return bx - F_PX * tx / self.depth_m, by - F_PX * ty / self.depth_m


def sample_layer(layer: Layer, u: float) -> Tensor:
    """(4, Hc, Wc) float64 premultiplied (linear rgb * alpha, alpha) on the margin canvas.

    The texture is sampled bilinearly on an SS x SS grid per pixel, alpha comes from the
    outline's signed distance on the same grid, and the premultiplied result is box-filtered,
    so sub-pixel motion and edges are antialiased alike.
    """
    cx, cy = layer.center_px(u)
    hc, wc = (H + 2 * MARGIN) * SS, (W + 2 * MARGIN) * SS
    xs = ((torch.arange(wc, dtype=torch.float64) + 0.5) / SS - MARGIN - cx).float()
    ys = ((torch.arange(hc, dtype=torch.float64) + 0.5) / SS - MARGIN - cy).float()
    ht, wt = layer.texture.shape[-2:]
    reach_x, reach_y = float(xs.abs().max()) * SS, float(ys.abs().max()) * SS
    if layer.sdf is None and (reach_x > wt / 2 - 1 or reach_y > ht / 2 - 1):
        raise RuntimeError(f"{layer.name}: texture does not cover the canvas at u={u}")
    ly, lx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([(2 * SS / wt) * lx, (2 * SS / ht) * ly], dim=-1)[None]
    rgb = F.grid_sample(layer.texture, grid, mode="bilinear", align_corners=False)[0]
    if layer.sdf is None:
        prem = torch.cat([rgb, torch.ones_like(rgb[:1])])
    else:
        alpha = (0.5 - layer.sdf(lx, ly) * SS).clamp(0, 1)[None]
        prem = torch.cat([rgb * alpha, alpha])
    return F.avg_pool2d(prem[None], SS)[0].double()


def disk_kernel(radius_px: float, ss: int = 16) -> Tensor:
    """(k, k) float64 area coverage of a disk of radius_px, ss x ss supersampled, sums to 1."""
    if radius_px < 0.5:
        return torch.ones(1, 1, dtype=torch.float64)
    n = math.ceil(radius_px + 0.5)
    o = (torch.arange((2 * n + 1) * ss, dtype=torch.float64) + 0.5) / ss - (n + 0.5)
    yy, xx = torch.meshgrid(o, o, indexing="ij")
    inside = ((xx**2 + yy**2) <= radius_px**2).double()
    k = inside.reshape(2 * n + 1, ss, 2 * n + 1, ss).mean(dim=(1, 3))
    return k / k.sum()


def kernel_spectrum(kernel: Tensor, hc: int, wc: int) -> Tensor | None:
    """rfft2 of a centred (k, k) kernel zero-padded to (hc, wc); None for the identity."""
    k = kernel.shape[-1]
    if k == 1:
        return None
    pad = torch.zeros(hc, wc, dtype=torch.float64)
    pad[:k, :k] = kernel
    return torch.fft.rfft2(torch.roll(pad, shifts=(-(k // 2), -(k // 2)), dims=(0, 1)))


def blur_fft(prem: Tensor, spectrum: Tensor | None) -> Tensor:
    """Convolve each channel of (C, Hc, Wc) float64 with a kernel given by its spectrum.

    The convolution is circular, but the wrap only reaches ceil(radius) px into the margin,
    which is cropped away.
    """
    if spectrum is None:
        return prem
    return torch.fft.irfft2(torch.fft.rfft2(prem) * spectrum, s=prem.shape[-2:])


def build_layers(rng: np.random.Generator) -> tuple[list[Layer], list[dict]]:
    """The three planes, far to near, and the background's highlights."""
    bg_tex, highlights = background_texture(rng)
    layers = [
        Layer("background", BG_DEPTH_M, bg_tex, None, lambda u: (W / 2, H / 2)),
        Layer("middle", MID_DEPTH_M, card_texture(rng), rounded_rect_sdf, lambda u: (440.0, 158.0)),
        Layer(
            "near",
            NEAR_DEPTH_M,
            ball_texture(rng),
            disc_sdf,
            lambda u: (95.0 + 300.0 * smoothstep(u, 0.08, 0.92), 240.0),
        ),
    ]
    return layers, highlights


def render_scene(
    layers: list[Layer],
) -> tuple[list[bytes], list[bytes], list[np.ndarray], list[dict]]:
    """Render every frame: sharp and defocused yuv420p, depth in mm, per-frame facts."""
    radii = {ly.name: coc_diameter_px(ly.depth_m) / 2 for ly in layers}
    hc, wc = H + 2 * MARGIN, W + 2 * MARGIN
    spectra = {name: kernel_spectrum(disk_kernel(r), hc, wc) for name, r in radii.items()}
    sharp, shot, depths, facts = [], [], [], []
    crop = (slice(None), slice(MARGIN, MARGIN + H), slice(MARGIN, MARGIN + W))
    for i in range(N_FRAMES):
        u = i / (N_FRAMES - 1)
        out_sharp = torch.zeros(3, hc, wc, dtype=torch.float64)
        out_shot = torch.zeros_like(out_sharp)
        depth = np.full((H, W), round(layers[0].depth_m * 1000), np.uint16)
        for layer in layers:
            prem = sample_layer(layer, u)
            out_sharp = prem[:3] + (1 - prem[3:]) * out_sharp
            blurred = blur_fft(prem, spectra[layer.name])
            out_shot = blurred[:3] + (1 - blurred[3:]) * out_shot
            depth[(prem[3][crop[1:]] > 0.5).numpy()] = round(layer.depth_m * 1000)
        for store, img in ((sharp, out_sharp), (shot, out_shot)):
            rgb = linear_to_srgb(img[crop]).permute(1, 2, 0).numpy()
            store.append(to_yuv420p(rgb))
        depths.append(depth)
        tx, ty = camera_m(u)
        fact = {"index": i, "camera_x_m": tx, "camera_y_m": ty}
        for layer in layers:
            cx, cy = layer.center_px(u)
            fact[f"{layer.name}_center_px"] = [round(cx - 0.5, 4), round(cy - 0.5, 4)]
        fact["blur_radius_px"] = {k: round(v, 4) for k, v in radii.items()}
        facts.append(fact)
    return sharp, shot, depths, facts


# ----------------------------------------------------------------------------- files


def write_png(path: Path, arr: np.ndarray) -> None:
    """Write (H, W) uint16 grey or (H, W, 3) uint8 RGB as PNG (zlib level 9, no filter)."""
    h, w = arr.shape[:2]
    bits, ctype = (16, 0) if arr.dtype == np.uint16 else (8, 2)
    rows = arr.astype(">u2" if bits == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def ffmpeg(args: list[str], stdin: bytes | None = None) -> None:
    """Run the imageio-ffmpeg binary quietly; raise with its stderr on failure."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    res = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({res.returncode}): {res.stderr.decode()[-2000:]}")


BT709_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]


def scene_audio(seconds: float) -> np.ndarray:
    """(n, 2) float32: a 1 kHz sync beep at 0 s, a rising chirp left, 660 Hz pips right."""
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    ramp = lambda t0, t1: np.clip(np.minimum(t - t0, t1 - t) / 0.005, 0, 1)  # noqa: E731
    sync = 0.3 * np.sin(2 * np.pi * 1000 * t) * ramp(0.0, 2 / FPS)
    chirp = 0.15 * np.sin(2 * np.pi * (220 * t + (880 - 220) * t**2 / (2 * seconds)))
    pips = sum(ramp(s, s + 0.15) for s in range(1, int(seconds)))
    pips = 0.25 * np.sin(2 * np.pi * 660 * t) * pips
    fade = ramp(0.0, seconds)
    return (np.stack([sync + chirp, sync + pips], axis=1) * fade[:, None]).astype(np.float32)


def encode_scene(path: Path, frames: list[bytes], crf: int, audio: Path | None, title: str) -> None:
    """H.264 (libx264, medium, CRF) yuv420p BT.709 limited mp4, optional AAC track + timecode."""
    args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-framerate", str(FPS)]
    args += ["-color_range", "tv", *BT709_TAGS, "-i", "pipe:0"]
    if audio is not None:
        args += ["-f", "f32le", "-ar", str(AUDIO_RATE), "-ac", "2", "-i", str(audio)]
        args += ["-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "128k", "-timecode", TIMECODE]
    args += ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-threads", "1"]
    # a closed GOP every second at fixed places, so chunking tests have keyframes to cut at
    args += ["-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0"]
    args += ["-pix_fmt", "yuv420p", "-color_range", "tv", *BT709_TAGS]
    args += ["-metadata", f"title={title}", "-metadata", f"creation_time={CREATION_TIME}"]
    ffmpeg([*args, "-movflags", "+faststart", str(path)], stdin=b"".join(frames))


def draw_number(img: np.ndarray, value: int, x0: int, y0: int, scale: int) -> None:
    """Draw a decimal number with the 5x7 digit font into img (h, w, 3) uint8, white on black."""
    for k, ch in enumerate(str(value)):
        g = np.array([c == "1" for c in DIGITS_5X7[int(ch)]]).reshape(7, 5)
        g = np.kron(g, np.ones((scale, scale), bool))
        x = x0 + k * 6 * scale
        img[y0 - scale : y0 + 8 * scale, x - scale : x + 6 * scale] = 0
        img[y0 : y0 + 7 * scale, x : x + 5 * scale][g] = 255


def make_vfr(path: Path) -> list[int]:
    """30 frames of 160x120 H.264 in Matroska, time base 1/1000, irregular pts; returns pts."""
    pts = [0, *np.cumsum(VFR_GAPS_MS).tolist()]
    with av.open(str(path), "w", format="matroska") as out:
        out.flags |= av.container.Flags.bitexact.value  # no random segment / track UIDs
        out.metadata["creation_time"] = CREATION_TIME
        st = out.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 160, 120, "yuv420p"
        st.time_base = st.codec_context.time_base = Fraction(1, 1000)
        st.codec_context.thread_count = 1
        st.codec_context.color_range = av.video.reformatter.ColorRange.MPEG
        st.codec_context.colorspace = av.video.reformatter.Colorspace.ITU709
        st.codec_context.color_primaries = 1  # bt709 (H.273 table 2)
        st.codec_context.color_trc = 1  # bt709 (H.273 table 3)
        st.codec_context.gop_size = 10
        st.options = {"crf": "18", "preset": "medium", "keyint_min": "10", "sc_threshold": "0"}
        # each packet lasts until the next frame (the last one 33 ms), so Matroska stores the
        # real durations instead of one default duration derived from the rate hint
        durations = dict(zip(pts, [*VFR_GAPS_MS, 33], strict=True))

        def mux(packets: list[av.Packet]) -> None:
            for pkt in packets:
                pkt.duration = durations[int(pkt.pts)]
                out.mux(pkt)

        yy, xx = np.mgrid[0:120, 0:160]
        for i, p in enumerate(pts):
            # pattern moves with time (pts), not with index, so gaps show as jumps
            stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy - 0.06 * p) / 24)
            rgb = np.stack([stripes * 0.8, 0.3 + 0.4 * (yy / 120), 1 - stripes * 0.7], axis=-1)
            img = (rgb * 255).round().astype(np.uint8)
            bx = int(8 + (p * 0.08) % 130)
            img[88:108, bx : bx + 20] = (250, 220, 40)
            draw_number(img, i, 12, 12, 4)
            yuv = np.frombuffer(to_yuv420p(img / 255.0), np.uint8).reshape(180, 160)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = p, Fraction(1, 1000)
            mux(st.encode(frame))
        mux(st.encode(None))
    return pts


def make_tenbit(path: Path, tmp: Path) -> None:
    """192x108 ProRes 422 HQ, yuv422p10le, BT.709, 12 frames at 24 fps, PCM stereo audio."""
    w, h, n = 192, 108, 12
    x = np.arange(w)[None, :]
    frames = []
    for i in range(n):
        y = np.empty((h, w))
        cb, cr = np.full((h, w // 2), 512.0), np.full((h, w // 2), 512.0)
        rows = np.arange(36)[:, None]
        y[:36] = 64 + 876 * (x + (rows % 4) / 4) / w  # full ramp, 4 sub-steps: > 256 levels
        y[36:54] = 400 + x  # one 10-bit code per column: bands every 4 px in 8 bit
        hue = (x / w + i / 48) % 1
        sat = np.linspace(1.0, 0.25, h - 54)[:, None]
        # HSV-style hue sweep: R, G, B are shifted triangle waves of the hue
        rgb = np.stack(
            [np.clip(np.abs(6 * hue - 3) - 1, 0, 1)]
            + [np.clip(2 - np.abs(6 * hue - k), 0, 1) for k in (2, 4)],
            axis=-1,
        )
        rgb = 0.85 * (1 - sat[..., None] * (1 - rgb))
        cy, ccb, ccr = rgb_to_ycbcr(rgb, 10)
        y[54:], cb[54:], cr[54:] = cy, chroma_halve_width(ccb), chroma_halve_width(ccr)
        planes = [np.clip(np.rint(p), 4, 1019).astype("<u2") for p in (y, cb, cr)]
        frames.append(b"".join(p.tobytes() for p in planes))
    t = np.arange(AUDIO_RATE * n // FPS) / AUDIO_RATE
    audio = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 500 * t)], axis=1) * 0.25
    wav = tmp / "tenbit.s16le"
    wav.write_bytes((audio * 32767).round().astype("<i2").tobytes())
    args = ["-f", "rawvideo", "-pix_fmt", "yuv422p10le", "-s", f"{w}x{h}", "-framerate", str(FPS)]
    args += ["-color_range", "tv", *BT709_TAGS, "-i", "pipe:0"]
    args += ["-f", "s16le", "-ar", str(AUDIO_RATE), "-ac", "2", "-i", str(wav)]
    args += ["-map", "0:v", "-map", "1:a", "-c:v", "prores_ks", "-profile:v", "3", "-threads", "1"]
    args += ["-pix_fmt", "yuv422p10le", "-color_range", "tv", *BT709_TAGS]
    args += ["-c:a", "pcm_s16le", "-metadata", f"creation_time={CREATION_TIME}"]
    ffmpeg(
        [*args, "-metadata", "title=vidrefocus 10-bit 4:2:2 sample", str(path)], b"".join(frames)
    )


# ----------------------------------------------------------------------------- checks


def check(ok: bool, what: str) -> None:
    """Stop the script with a message when a read-back check fails."""
    if not ok:
        raise SystemExit(f"check failed: {what}")


def read_video(path: Path) -> tuple[av.video.stream.VideoStream, list[av.VideoFrame], dict]:
    """Decode every video frame of path; return the stream, frames and container facts."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames = list(c.decode(vs))
        facts = {
            "container_metadata": dict(c.metadata),
            "stream_metadata": dict(vs.metadata),
            "time_base": vs.time_base,
            "audio": [
                (
                    a.codec_context.name,
                    a.sample_rate,
                    a.layout.nb_channels,
                    float(a.duration * a.time_base),
                )
                for a in c.streams.audio
            ],
            "data": [dict(d.metadata) for d in c.streams.data],
            "codec": vs.codec_context.name,
            "profile": vs.codec_context.profile,
            "tags": (
                str(vs.codec_context.color_range),
                str(vs.codec_context.colorspace),
                str(vs.codec_context.color_primaries),
                str(vs.codec_context.color_trc),
            ),
        }
    return vs, frames, facts


def verify_scene(path: Path, source: list[bytes], with_audio: bool) -> dict:
    """Read an encoded scene back: frames, pts, format, tags, fidelity, audio and timecode."""
    _, frames, facts = read_video(path)
    check(len(frames) == N_FRAMES, f"{path}: {len(frames)} frames, want {N_FRAMES}")
    check(all(f.format.name == "yuv420p" for f in frames), f"{path}: not yuv420p")
    check((frames[0].width, frames[0].height) == (W, H), f"{path}: wrong size")
    pts = [int(f.pts) for f in frames]
    check(pts == sorted(pts) and len(set(pts)) == N_FRAMES, f"{path}: pts not increasing")
    keys = [i for i, f in enumerate(frames) if f.key_frame]
    check(keys == list(range(0, N_FRAMES, FPS)), f"{path}: keyframes at {keys}")
    tb = facts["time_base"]
    check(all(b - a == tb.denominator // FPS for a, b in itertools.pairwise(pts)), "cfr")
    check(
        facts["container_metadata"].get("creation_time", "").startswith("2024-05-01T12:00:00"),
        "ctime",
    )
    errs = []
    for i in (0, N_FRAMES // 2, N_FRAMES - 1):
        dec = frames[i].to_ndarray(format="yuv420p")[:H].astype(np.float64)
        src = np.frombuffer(source[i][: W * H], np.uint8).reshape(H, W)
        errs.append(float(np.abs(dec - src).mean()))
    check(max(errs) < 2.0, f"{path}: decoded luma differs from source by {errs}")
    if with_audio:
        check(len(facts["audio"]) == 1, f"{path}: no audio")
        name, rate, ch, dur = facts["audio"][0]
        check(
            (name, rate, ch) == ("aac", AUDIO_RATE, 2) and abs(dur - N_FRAMES / FPS) < 0.05, "aac"
        )
        check(facts["stream_metadata"].get("timecode") == TIMECODE, f"{path}: no timecode")
    else:
        check(not facts["audio"], f"{path}: unexpected audio")
    return {**facts, "pts": pts, "time_base": f"{tb.numerator}/{tb.denominator}", "luma_mae": errs}


def verify_vfr(path: Path, pts: list[int]) -> dict:
    """The VFR clip must decode to exactly the pts we wrote, in a 1/1000 time base."""
    vs, frames, facts = read_video(path)
    got = [int(f.pts) for f in frames]
    check(got == pts, f"{path}: pts {got} != {pts}")
    keys = [i for i, f in enumerate(frames) if f.key_frame]
    check(keys == [0, 10, 20], f"{path}: keyframes at {keys}")
    check(vs.time_base == Fraction(1, 1000), f"{path}: time base {vs.time_base}")
    check(all(f.format.name == "yuv420p" for f in frames), f"{path}: not yuv420p")
    return {**facts, "pts": got}


def verify_tenbit(path: Path) -> dict:
    """The 10-bit clip must decode as yuv422p10le, 12 frames, and keep > 256 luma levels."""
    _, frames, facts = read_video(path)
    check(len(frames) == 12, f"{path}: {len(frames)} frames")
    check(all(f.format.name == "yuv422p10le" for f in frames), f"{path}: not yuv422p10le")
    y = frames[0].to_ndarray()
    y = y[0] if y.ndim == 3 and y.shape[0] == 3 else y[:108]
    levels = len(np.unique(y[:36]))
    check(levels > 256, f"{path}: only {levels} luma levels in the ramp")
    check(len(facts["audio"]) == 1, f"{path}: no audio")
    return {**facts, "ramp_levels": levels, "pts": [int(f.pts) for f in frames]}


# ----------------------------------------------------------------------------- main


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_previews(out: Path, preview: Path) -> None:
    """PNGs of a few decoded frames of both scene videos and of the depth, for eyeballing."""
    preview.mkdir(parents=True, exist_ok=True)
    for name in ("scene_sharp", "scene"):
        _, frames, _ = read_video(out / f"{name}.mp4")
        for i in (0, N_FRAMES // 2, N_FRAMES - 1):
            write_png(preview / f"{name}_{i:03d}.png", frames[i].to_ndarray(format="rgb24"))


def main() -> None:
    """Render, encode, verify and describe every sample."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--preview", type=Path, default=None, help="also write preview PNGs here")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # thread-count-independent float results
    t0 = time.perf_counter()

    rng = np.random.default_rng(SEED)
    layers, highlights = build_layers(rng)
    sharp, shot, depths, facts = render_scene(layers)
    t_render = time.perf_counter() - t0

    depth_dir = out / "scene_depth"
    if depth_dir.exists():
        shutil.rmtree(depth_dir)
    depth_dir.mkdir()
    for i, d in enumerate(depths):
        write_png(depth_dir / f"{i:06d}.png", d)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "scene.f32le"
        audio.write_bytes(scene_audio(N_FRAMES / FPS).tobytes())
        encode_scene(out / "scene_sharp.mp4", sharp, 12, None, "vidrefocus sample scene, sharp")
        encode_scene(out / "scene.mp4", shot, 16, audio, "vidrefocus sample scene")
        vfr_pts = make_vfr(out / "vfr.mkv")
        make_tenbit(out / "tenbit_422.mov", Path(tmp))

    res_sharp = verify_scene(out / "scene_sharp.mp4", sharp, with_audio=False)
    res_shot = verify_scene(out / "scene.mp4", shot, with_audio=True)
    check(res_sharp["pts"] == res_shot["pts"], "sharp and shot pts differ")
    res_vfr = verify_vfr(out / "vfr.mkv", vfr_pts)
    res_ten = verify_tenbit(out / "tenbit_422.mov")

    tb = Fraction(res_shot["time_base"])
    for fact, p in zip(facts, res_shot["pts"], strict=True):
        fact["pts"], fact["time_s"] = p, float(p * tb)
    radii = facts[0]["blur_radius_px"]
    scene = {
        "description": "three fronto-parallel planes, camera trucking sideways; see README.md",
        "width": W,
        "height": H,
        "fps": FPS,
        "frame_count": N_FRAMES,
        "time_base": res_shot["time_base"],
        "files": {
            "sharp": "scene_sharp.mp4",
            "shot": "scene.mp4",
            "depth": "scene_depth/{index:06d}.png",
        },
        "depth_png": "uint16 millimetres, depth of the front-most layer with alpha > 0.5",
        "lens": {
            "focal_length_mm": FOCAL_MM,
            "f_number": F_NUMBER,
            "sensor_width_mm": SENSOR_W_MM,
            "focus_distance_m": FOCUS_M,
            "focal_length_px": F_PX,
        },
        "blur_model": (
            "coc_diameter_px = A*f*S_f/(S_f-f)*|1/S_f-1/S| * width_px/sensor_width_mm, A = f/N; "
            "disk kernel radius = coc_diameter_px / 2; all layers are behind the focal plane, so "
            "the signed radius (DESIGN.md, > 0 in front) is -blur_radius_px"
        ),
        "coordinates": "x right, y down, pixel index units: the top-left pixel's centre is (0, 0)",
        "layers": [
            {
                "name": ly.name,
                "what": LAYER_NOTES[ly.name],
                "depth_m": ly.depth_m,
                "disparity_per_m": 1.0 / ly.depth_m,
                "coc_diameter_px": round(coc_diameter_px(ly.depth_m), 4),
                "blur_radius_px": radii[ly.name],
            }
            for ly in layers
        ],
        "middle_shape": {
            "kind": "rounded_rect",
            "half_size_px": list(CARD_HALF_PX),
            "corner_radius_px": CARD_CORNER_PX,
        },
        "near_shape": {"kind": "disc", "radius_px": NEAR_RADIUS_PX},
        "highlights": {
            "note": "on the background; image position = background_center_px + (x_px, y_px)",
            "items": [{k: round(v, 3) for k, v in h.items()} for h in highlights],
        },
        "audio": {"codec": "aac", "sample_rate": AUDIO_RATE, "channels": 2},
        "timecode": TIMECODE,
        "frames": facts,
    }
    (out / "scene.json").write_text(json.dumps(scene, indent=1) + "\n")

    names = ["scene.mp4", "scene_sharp.mp4", "scene.json", "vfr.mkv", "tenbit_422.mov"]
    names += [f"scene_depth/{i:06d}.png" for i in range(N_FRAMES)]
    manifest = {n: {"bytes": (out / n).stat().st_size, "sha256": sha256(out / n)} for n in names}
    (out / "manifest.json").write_text(
        json.dumps({"seed": SEED, "files": manifest}, indent=1) + "\n"
    )
    if args.preview is not None:
        write_previews(out, args.preview)

    depth_bytes = sum(v["bytes"] for k, v in manifest.items() if k.startswith("scene_depth/"))
    print(f"rendered in {t_render:.1f} s, total {time.perf_counter() - t0:.1f} s")
    for n in names[:5]:
        print(f"  {n:18s} {manifest[n]['bytes']:>9,d} B  {manifest[n]['sha256'][:16]}")
    print(f"  scene_depth/       {depth_bytes:>9,d} B  ({N_FRAMES} PNG)")
    print(f"  blur radius px: {radii}")
    print(f"  scene.mp4: tb {res_shot['time_base']}, luma MAE {res_shot['luma_mae']}")
    tc = res_shot["stream_metadata"]["timecode"]
    print(f"  scene.mp4: audio {res_shot['audio']}, timecode {tc}")
    print(f"  vfr.mkv pts: {res_vfr['pts']}")
    print(f"  tenbit_422.mov: profile {res_ten['profile']}, ramp levels {res_ten['ramp_levels']}")


if __name__ == "__main__":
    main()
