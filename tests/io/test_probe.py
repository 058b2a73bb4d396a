from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest

from media import ffmpeg
from vidrefocus.errors import InputError
from vidrefocus.io.probe import frame_pts, probe


def test_sample_scene_facts(sample_scene: Path) -> None:
    info = probe(sample_scene)
    v = info.video
    assert (v.codec, v.width, v.height, v.pix_fmt) == ("h264", 640, 360, "yuv420p")
    assert (v.frame_count, v.first_pts, v.time_base) == (96, 0, Fraction(1, 12288))
    assert v.average_rate == 24
    assert not v.variable_frame_rate
    assert v.duration_s == 4
    assert (v.colour_matrix, v.colour_range, v.colour_primaries) == ("bt709", "tv", "bt709")
    assert not v.colour_guessed
    assert v.timecode == "01:00:00:00"
    audio = [s for s in info.streams if s.kind == "audio"]
    assert audio[0].sample_rate == 48000
    assert audio[0].channels == 2


def test_frame_count_is_exact_not_estimated(tmp_path: Path) -> None:
    # 37 frames at 24 fps: duration x rate would say 37.0 only by luck of rounding;
    # a packet scan counts them.
    clip = tmp_path / "odd.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x48:r=24", "-frames:v", "37", "-c:v", "ffv1", str(clip)
    )
    assert probe(clip).video.frame_count == 37
    assert len(frame_pts(clip)) == 37


def test_vfr_detected(vfr_clip: Path) -> None:
    v = probe(vfr_clip).video
    assert v.variable_frame_rate
    pts = frame_pts(vfr_clip)
    assert len({b - a for a, b in itertools.pairwise(pts)}) > 1


def test_untagged_sd_guesses_bt601(tmp_path: Path) -> None:
    clip = tmp_path / "sd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=352x288:r=25:d=0.2", "-c:v", "libx264", str(clip))
    v = probe(clip).video
    assert v.colour_matrix == "smpte170m"
    assert v.colour_guessed


def test_image_sequence_facts(png_sequence: Path) -> None:
    info = probe(png_sequence, fps=Fraction(25))
    v = info.video
    assert info.is_image_sequence
    assert (v.width, v.height, v.bit_depth, v.frame_count) == (160, 90, 16, 8)
    assert v.time_base == Fraction(1, 25)


def test_sequence_with_a_gap_keeps_time(png_sequence: Path, tmp_path: Path) -> None:
    import shutil

    seq = tmp_path / "gap"
    shutil.copytree(png_sequence, seq)
    (seq / "shot_0104.png").unlink()
    v = probe(seq).video
    assert v.frame_count == 7
    assert v.variable_frame_rate
    assert v.last_pts == 7


@pytest.mark.parametrize("name", ["empty", "folder_without_images"])
def test_probe_errors(tmp_path: Path, name: str) -> None:
    if name == "empty":
        target = tmp_path / "e.mov"
        target.write_bytes(b"")
        match = "empty"
    else:
        target = tmp_path / "nothing"
        target.mkdir()
        match = "no images found"
    with pytest.raises(InputError, match=match):
        probe(target)
