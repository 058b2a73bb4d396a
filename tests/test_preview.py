"""`vidrefocus preview` on real clips: the sheet's layout, the page, seeking, and user errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import SAMPLES, ffmpeg
from vidrefocus.cli import main
from vidrefocus.config import load_config
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.preview import preview, preview_times
from vidrefocus.preview_sheet import (
    COLUMNS,
    GAP_PX,
    HEADER_PX,
    LABEL_PX,
    PLOT_HEIGHT_PX,
    TILE_WIDTH_PX,
)

FRAMES = 24  # one second of the sample: 640x360, 24 fps, a keyframe every 24 frames


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("preview")
    clip = folder / "shot.mp4"
    ffmpeg("-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-frames:v", str(FRAMES),
           "-c", "copy", str(clip))  # fmt: skip
    depth = folder / "depth"
    depth.mkdir()
    for i in range(FRAMES):
        shutil.copy(SAMPLES / "scene_depth" / f"{i:06d}.png", depth / f"{i:06d}.png")
    return clip, depth


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s at 24 fps (480 frames), a keyframe every 24 frames and nowhere else."""
    clip = tmp_path_factory.mktemp("long") / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=24:d=20", "-c:v", "libx264",
           "-preset", "ultrafast", "-g", "24", "-keyint_min", "24", "-sc_threshold", "0",
           "-pix_fmt", "yuv420p", str(clip))  # fmt: skip
    return clip


def _expected_size(rows: int, frame_w: int = 640, frame_h: int = 360) -> tuple[int, int]:
    # Written out from the layout constants, independently of `sheet_size`.
    tile_h = round(TILE_WIDTH_PX * frame_h / frame_w)
    width = COLUMNS * TILE_WIDTH_PX + (COLUMNS + 1) * GAP_PX
    return width, HEADER_PX + rows * (LABEL_PX + tile_h + GAP_PX) + PLOT_HEIGHT_PX


def _tile(sheet: np.ndarray, row: int, column: int, tile_h: int) -> np.ndarray:
    y = HEADER_PX + row * (LABEL_PX + tile_h + GAP_PX) + LABEL_PX
    x = GAP_PX + column * (TILE_WIDTH_PX + GAP_PX)
    return sheet[y : y + tile_h, x : x + TILE_WIDTH_PX].astype(np.float32)


def test_sheet_has_a_row_per_time_and_the_plot_beneath(
    short_clip: tuple[Path, Path], tmp_path: Path
) -> None:
    clip, depth = short_clip
    config = load_config(overrides={"depth.path": str(depth)})
    out = tmp_path / "sheet.png"
    result = preview(clip, out, config, focus="0s:1.2m, 0.8s:8m", at="0.1s, f12, 0.9s")
    assert result.frames == [2, 12, 21]
    sheet = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert (sheet.shape[1], sheet.shape[0]) == _expected_size(3) == result.size
    tile_h = round(TILE_WIDTH_PX * 360 / 640)
    for row in range(3):
        inp, aif, dep, res = (_tile(sheet, row, c, tile_h) for c in range(COLUMNS))
        assert np.abs(inp - aif).mean() < 1.0  # no deblur: the all-in-focus tile is the input
        assert np.abs(inp - res).mean() > 2.0  # the result is refocused
        assert dep.std(axis=(0, 1)).max() > 20  # a depth map with layers, colour-mapped
    # The plot fills the bottom band: mostly white, with a curve in it.
    plot = sheet[-PLOT_HEIGHT_PX:]
    assert (plot > 240).all(axis=2).mean() > 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]  # no temp file left
    assert result.frames_decoded <= FRAMES


def test_html_page_is_self_contained(
    short_clip: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, depth = short_clip
    out, page = tmp_path / "sheet.png", tmp_path / "page.html"
    code = main(["preview", str(clip), "-o", str(out), "--depth", str(depth), "--focus",
                 "0s:2m", "--at", "0.25s, 0.75s", "--html", str(page), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == [6, 18]
    assert summary["html"] == str(page)
    text = page.read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == 2 * 2 + 1  # before and after per frame, and the focus plot
    assert all(s.startswith("data:image/") for s in sources)
    assert not any("http" in s[:32] for s in sources)  # the scheme part: data, not http(s)
    for loader in ("<link", "@import", "url(", "fetch("):
        assert loader not in text
    assert text.count('type="range"') == 2
    assert cv2.imread(str(out)) is not None


@pytest.mark.parametrize(
    ("focus", "most"),
    [
        # Two frames near the end: each is reached from its own keyframe (<= 24 frames, plus
        # the frame before it that DepthNet reads parallax from).
        ("0s:d0.5", 2 * 25),
        # A point key at 18 s: tracked from 18 s to the frames shown, not from the start.
        ("18s:@160,90", 2 * 25 + 37),
    ],
)
def test_preview_seeks_instead_of_decoding_the_clip(
    long_clip: Path, tmp_path: Path, focus: str, most: int
) -> None:
    config = load_config(overrides={"depth.cache_dir": str(tmp_path / "cache")})
    result = preview(long_clip, tmp_path / "s.png", config, focus=focus, at="18.5s, 19.5s")
    assert result.frames_total == 480
    assert result.frames == [444, 468]
    assert 2 <= result.frames_decoded <= most
    assert not (tmp_path / "cache").exists()  # no whole-clip depth estimate was cached


def test_times_resolve_like_focus_keyframes(short_clip: tuple[Path, Path]) -> None:
    clip, _ = short_clip
    reader = RandomAccessReader(clip)
    duration = reader.video.duration_s
    # 0.5 s, frame 12 and timecode 00:00:00:12 are one frame at 24 fps: one row.
    assert preview_times("0.5s, f12, 00:00:00:12, 0.1", reader, duration) == [
        ("0.1", 2),
        ("0.5s", 12),
    ]
    assert [i for _, i in preview_times(None, reader, duration)] == [3, 9, 15, 21]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["MISSING", "-o", "OUT"], "no such file"),
        (["CLIP", "-o", "CLIP", "--overwrite"], "is the input file"),
        (["CLIP", "-o", "OUT", "--at", "0.5s, 3s"], "after the end of the clip"),
        (["CLIP", "-o", "OUT", "--at", "f30"], "after the end of the clip"),
        (["CLIP", "-o", "OUT", "--at", "soon"], "is not a time"),
        (["CLIP", "-o", "OUT", "--html", "OUT"], "need different names"),
        (["CLIP", "-o", "SHEET.jpg"], "give it a .png name"),
    ],
)
def test_user_errors_exit_2_and_write_nothing(
    short_clip: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    clip, depth = short_clip
    names = {
        "CLIP": str(clip),
        "MISSING": str(tmp_path / "missing.mp4"),
        "OUT": str(tmp_path / "sheet.png"),
        "SHEET.jpg": str(tmp_path / "sheet.jpg"),
    }
    argv = ["preview", *(names.get(a, a) for a in args), "--depth", str(depth)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    assert clip.stat().st_size > 0
