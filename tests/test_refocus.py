"""The refocus job end to end on a short cut of the sample (real files, real ffmpeg)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from media import SAMPLES, ffmpeg
from vidrefocus.cli import main
from vidrefocus.io.probe import probe
from vidrefocus.io.reader import VideoReader

FRAMES = 12


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("refocus")
    clip = folder / "shot.mp4"
    # the sample has a keyframe every 24 frames, so a stream copy cuts exactly
    ffmpeg("-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-map", "0:a", "-frames:v",
           str(FRAMES), "-t", str(FRAMES / 24), "-c", "copy", "-timecode", "01:00:00:00",
           str(clip))  # fmt: skip
    depth = folder / "depth"
    depth.mkdir()
    for i in range(FRAMES):
        shutil.copy(SAMPLES / "scene_depth" / f"{i:06d}.png", depth / f"{i:06d}.png")
    return clip, depth


@pytest.mark.slow
def test_refocus_keeps_frames_pts_and_audio(
    short_clip: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, depth = short_clip
    out = tmp_path / "out.mov"
    code = main([
        "refocus", str(clip), "--depth", str(depth), "--focus", "0s:3m, 0.4s:linear:8m",
        "--aperture", "polygon", "--blades", "6", "--codec", "prores_hq", "-o", str(out),
        "--json", "--no-fill",
    ])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == FRAMES
    a, b = list(VideoReader(clip)), list(VideoReader(out))
    assert [f.time_s for f in a] == [f.time_s for f in b]
    info = probe(out)
    assert info.video.pix_fmt == "yuv422p10le"
    assert info.video.timecode == "01:00:00:00"
    assert [s.kind for s in info.streams if s.kind == "audio"] == ["audio"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--depth-source", "sequence"], "needs a folder of depth maps"),
        (["--depth", "DEPTH", "--depth-source", "builtin"], "drop one of the two"),
        (["--f-number", "2"], "depth is estimated"),
        (["--depth", "DEPTH", "--depth-units", "relative", "--f-number", "2"], "needs metric"),
        (["--depth", "DEPTH", "--strength", "10"], "applies to relative depth"),
        (["--depth", "DEPTH", "--focus", "1s:2m, 0.5s:3m"], "is not after"),
        (["--depth", "DEPTH", "--focus", "9s:2m"], "after the end of the clip"),
        (["--depth", "DEPTH", "--focus", "0s:-2m"], "keyframe 0"),
    ],
)
def test_refocus_user_errors(
    short_clip: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    clip, depth = short_clip
    out = tmp_path / "out.mp4"
    args = [str(depth) if a == "DEPTH" else a for a in extra]
    assert main(["refocus", str(clip), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()
