"""User depth sequences: conversion to the depth convention and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from media import SAMPLES
from vidrefocus.errors import InputError
from vidrefocus.io.depth import DepthSequence


def _write(folder: Path, maps: list[np.ndarray], ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(maps):
        if ext == ".npy":
            np.save(folder / f"d_{i:04d}.npy", m)
        else:
            cv2.imwrite(str(folder / f"d_{i:04d}{ext}"), m)
    return folder


def test_sample_depth_in_millimetres() -> None:
    seq = DepthSequence(SAMPLES / "scene_depth", units="mm", frame_count=96, size=(640, 360))
    d = seq[0]
    assert d.shape == (1, 1, 360, 640)
    # the sample holds 1.2 m, 3 m and 8 m planes
    values = sorted({round(1 / v, 3) for v in torch.unique(d).tolist()})
    assert values == [1.2, 3.0, 8.0]


@pytest.mark.parametrize(("units", "raw", "expected"), [
    ("m", np.full((4, 6), 2.0, np.float32), 0.5),
    ("inverse-m", np.full((4, 6), 0.25, np.float32), 0.25),
    ("mm", np.full((4, 6), 500, np.uint16), 2.0),
])  # fmt: skip
def test_metric_units(tmp_path: Path, units: str, raw: np.ndarray, expected: float) -> None:
    ext = ".npy" if raw.dtype == np.float32 else ".png"
    seq = DepthSequence(_write(tmp_path / "d", [raw], ext), units=units)
    torch.testing.assert_close(seq[0], torch.full((1, 1, 4, 6), expected))


@pytest.mark.parametrize("near_is_bright", [True, False])
def test_relative_is_normalised_over_the_sequence(tmp_path: Path, near_is_bright: bool) -> None:
    a = np.full((4, 4), 1000, np.uint16)
    b = np.full((4, 4), 3000, np.uint16)
    b[0, 0] = 5000
    seq = DepthSequence(_write(tmp_path / "d", [a, b]), units="relative",
                        near_is_bright=near_is_bright)  # fmt: skip
    lo = seq[0][0, 0, 1, 1].item()
    hi = seq[1][0, 0, 0, 0].item()
    assert (lo, hi) == ((0.0, 1.0) if near_is_bright else (1.0, 0.0))


def test_resampled_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seq = DepthSequence(_write(tmp_path / "d", [np.full((10, 20), 900, np.uint16)]),
                        size=(40, 20))  # fmt: skip
    assert seq[0].shape == (1, 1, 20, 40)
    assert "resampling" in caplog.text


@pytest.mark.parametrize(("case", "message"), [
    ("count", "2 depth maps for 3 video frames"),
    ("nan", "NaN or infinite"),
    ("colour", "a colour image"),
    ("eight_bit", "8-bit depth"),
    ("empty", "no depth maps found"),
    ("zero", "distances must be positive"),
    ("constant_relative", "same constant value"),
    ("not_a_folder", "must be a folder"),
])  # fmt: skip
def test_bad_depth(tmp_path: Path, case: str, message: str) -> None:
    folder = tmp_path / "d"
    kwargs: dict = {"units": "mm"}
    if case == "count":
        _write(folder, [np.full((4, 4), 900, np.uint16)] * 2)
        kwargs["frame_count"] = 3
    elif case == "nan":
        m = np.full((4, 4), 1.0, np.float32)
        m[1, 1] = np.nan
        _write(folder, [m], ".npy")
        kwargs["units"] = "m"
    elif case == "colour":
        img = np.zeros((4, 4, 3), np.uint8)
        img[..., 2] = 255
        _write(folder, [img])
    elif case == "eight_bit":
        _write(folder, [np.full((4, 4), 9, np.uint8)])
        kwargs["expect_16bit"] = True
    elif case == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("x")
    elif case == "zero":
        _write(folder, [np.zeros((4, 4), np.uint16)])
    elif case == "constant_relative":
        _write(folder, [np.full((4, 4), 7, np.uint16)] * 2)
        kwargs["units"] = "relative"
    elif case == "not_a_folder":
        folder = tmp_path / "depth.png"
        folder.write_bytes(b"x")

    def load_first() -> None:
        DepthSequence(folder, **kwargs)[0]

    with pytest.raises(InputError, match=message):
        load_first()


def test_exr_sequence(tmp_path: Path) -> None:
    """EXR maps read without OpenCV's OpenEXR (this OpenCV wheel has none): through FFmpeg."""
    from vidrefocus.io.maps import write_map

    folder = tmp_path / "d"
    folder.mkdir()
    for i, metres in enumerate((2.0, 4.0)):
        values = torch.full((1, 6, 8), metres)
        values[0, 0, 0] = 1.0
        write_map(folder / f"{i:06d}.exr", values, png_scale=1, description="m")
    seq = DepthSequence(folder, units="m", frame_count=2)
    torch.testing.assert_close(seq[1][0, 0, 1, 1], torch.tensor(0.25))
    torch.testing.assert_close(seq[0][0, 0, 0, 0], torch.tensor(1.0))


def test_exr_images_round_trip(tmp_path: Path) -> None:
    from vidrefocus.io.sequence import read_image, write_image

    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(3, 6, 7, generator=g)
    write_image(tmp_path / "a.exr", rgb, 32, alpha=torch.rand(1, 6, 7, generator=g))
    back, bits = read_image(tmp_path / "a.exr")
    assert bits == 32
    torch.testing.assert_close(back, rgb, atol=1e-6, rtol=0)
    write_image(tmp_path / "g.exr", rgb, 32, grey=True)
    back, _ = read_image(tmp_path / "g.exr")
    torch.testing.assert_close(back, rgb.mean(0, keepdim=True).expand(3, -1, -1), atol=1e-6, rtol=0)


def test_grey_video(tmp_path: Path) -> None:
    """A 16-bit grey video (FFV1 gray16le) of millimetres reads exactly like the PNG maps it
    was made from, in order and out of order; colour and 8-bit-for-metric are refused."""
    from media import ffmpeg

    video = tmp_path / "depth.mkv"
    ffmpeg("-framerate", "24", "-i", str(SAMPLES / "scene_depth" / "%06d.png"), "-frames:v", "6",
           "-c:v", "ffv1", "-pix_fmt", "gray16le", str(video))  # fmt: skip
    seq = DepthSequence(video, units="mm", frame_count=6, expect_16bit=True)
    maps = DepthSequence(SAMPLES / "scene_depth", units="mm")
    for i in (0, 1, 4, 2, 5):
        torch.testing.assert_close(seq[i], maps[i], atol=0, rtol=0)
    with pytest.raises(InputError, match="6 depth video frames for 7"):
        DepthSequence(video, units="mm", frame_count=7)
    eight = tmp_path / "depth8.mkv"
    ffmpeg("-i", str(video), "-vf", "format=gray", "-c:v", "ffv1", str(eight))
    with pytest.raises(InputError, match="8-bit depth"):
        DepthSequence(eight, units="mm", expect_16bit=True)[0]
    with pytest.raises(InputError, match="in colour"):
        DepthSequence(SAMPLES / "scene.mp4", units="relative")[0]
