"""Issue #3: transcode round trips on real files through real PyAV and ffmpeg."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch

from media import sha256
from vidrefocus.cli import main
from vidrefocus.io.probe import probe
from vidrefocus.io.reader import VideoReader


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _times(path: Path) -> list:
    return [f.time_s for f in VideoReader(path)]


def _round_trip(
    src: Path, out: Path, *extra: str, fps: Fraction = Fraction(24)
) -> tuple[list, list]:
    before = sha256(src) if src.is_file() else None
    assert main(["transcode", str(src), "-o", str(out), "--codec", "ffv1", "-q", *extra]) == 0
    if before is not None:
        assert sha256(src) == before, "the input was modified"
    a, b = list(VideoReader(src, fps=fps)), list(VideoReader(out))
    assert len(a) == len(b), "frame count changed"
    assert [f.time_s for f in a] == [f.time_s for f in b], "pts changed"
    return a, b


def _max_diff(a: list, b: list) -> float:
    return max((x.rgb - y.rgb).abs().max().item() for x, y in zip(a, b, strict=True))


def test_sample_scene(sample_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "scene.mov"
    a, b = _round_trip(sample_scene, out)
    assert _max_diff(a, b) <= 1 / 255
    assert _audio_packets(out) == _audio_packets(sample_scene)
    src, dst = probe(sample_scene), probe(out)
    assert dst.video.timecode == src.video.timecode == "01:00:00:00"
    assert dst.metadata.get("creation_time") == src.metadata.get("creation_time")
    assert (dst.video.colour_matrix, dst.video.colour_range) == ("bt709", "tv")
    assert dst.video.colour_primaries == src.video.colour_primaries
    assert dst.video.colour_transfer == src.video.colour_transfer


def test_vfr_clip(vfr_clip: Path, tmp_path: Path) -> None:
    src = probe(vfr_clip)
    assert src.video.variable_frame_rate
    a, b = _round_trip(vfr_clip, tmp_path / "vfr.mkv")
    assert _max_diff(a, b) <= 1 / 255
    assert probe(tmp_path / "vfr.mkv").video.variable_frame_rate


def test_tenbit_422_clip(tenbit_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "tenbit.mov"
    a, b = _round_trip(tenbit_clip, out)
    info = probe(out).video
    assert info.pix_fmt == "yuv422p10le"
    assert info.bit_depth == 10
    assert _max_diff(a, b) <= 1 / 1023
    assert _audio_packets(out) == _audio_packets(tenbit_clip)
    # 10 bits really carried: more than 256 distinct luma levels survive
    assert torch.unique((b[0].rgb[1] * 1023).round()).numel() > 256


def test_rotated_phone_clip(phone_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "phone.mov"
    a, b = _round_trip(phone_clip, out)
    assert _max_diff(a, b) <= 1 / 255
    src, dst = probe(phone_clip), probe(out)
    assert src.video.rotation == 90
    assert dst.video.rotation == 90
    assert (dst.video.width, dst.video.height) == (src.video.width, src.video.height)
    assert a[0].rgb.shape[-2:] == (192, 108)  # display orientation: portrait
    assert _audio_packets(out) == _audio_packets(phone_clip)
    assert dst.metadata.get("creation_time", "").startswith("2024-03-01T10:20:30")
    assert dst.metadata.get("location") == "+48.8584+002.2945/"
    assert dst.video.timecode == "10:00:00:00"


def test_image_sequence(png_sequence: Path, tmp_path: Path) -> None:
    out = tmp_path / "seq.mkv"
    a, b = _round_trip(png_sequence, out, "--sequence-fps", "25", fps=Fraction(25))
    assert [f.pts for f in a] == list(range(8))
    info = probe(out).video
    assert info.pix_fmt == "gbrp16le"  # 16-bit RGB kept, not squeezed to 8-bit YUV
    assert _max_diff(a, b) <= 1 / 65535


@pytest.mark.slow
def test_h264_crf18_quality(sample_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "scene_h264.mp4"
    assert main(["transcode", str(sample_scene), "-o", str(out), "--crf", "18", "-q"]) == 0
    a, b = list(VideoReader(sample_scene)), list(VideoReader(out))
    assert [f.time_s for f in a] == [f.time_s for f in b]
    mse = torch.stack([((x.rgb - y.rgb) ** 2).mean() for x, y in zip(a, b, strict=True)]).mean()
    psnr = 10 * math.log10(1 / mse.item())
    print(f"H.264 CRF 18 PSNR vs input: {psnr:.2f} dB")
    assert psnr >= 40.0
