"""Surveillance footage through the encoder: pixel aspect, field order, frame count, lossless
FFV1 and byte-repeatable jobs, on CCTV-like clips (`cctv_clips`) through real ffmpeg."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cctv_clips import CCTV_KINDS, CctvClip, make_cctv_clip, render_cctv_frames
from media import ffmpeg, sha256
from vidrefocus.cli import main
from vidrefocus.io.probe import probe
from vidrefocus.io.reader import VideoReader

KINDS = list(CCTV_KINDS)
TARGETS = [("ffv1", ".mkv"), ("h264", ".mp4")]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CctvClip]:
    folder = tmp_path_factory.mktemp("cctv")
    return {kind: make_cctv_clip(folder, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def bitexact_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cctv_config") / "bitexact.yaml"
    path.write_text("encode:\n  bitexact: true\n")
    return path


def _transcode(src: Path, out: Path, codec: str, *extra: str) -> Path:
    assert main(["transcode", str(src), "-o", str(out), "--codec", codec, "-q", *extra]) == 0
    return out


def _decoded(path: Path) -> list[tuple[int, bool, np.ndarray]]:
    """Every frame as the decoder gives it: pts, interlaced flag, and its Y'CbCr planes."""
    with av.open(str(path)) as container:
        return [(f.pts, f.interlaced_frame, f.to_ndarray()) for f in container.decode(video=0)]


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


class TestClips:
    @pytest.mark.parametrize("kind", KINDS)
    def test_probe_reports_the_recorders_tags(self, kind: str, clips: dict[str, CctvClip]) -> None:
        spec = clips[kind].kind
        v = probe(clips[kind].path).video
        assert (v.codec, v.width, v.height) == (spec.codec, spec.width, spec.height)
        assert v.sample_aspect_ratio == spec.sar
        assert v.display_aspect_ratio == spec.sar * spec.width / spec.height
        assert v.field_order == spec.field_order
        assert v.frame_count == 12
        assert v.average_rate == 25

    def test_same_bytes_every_time(self, tmp_path: Path) -> None:
        a = make_cctv_clip(tmp_path, "h264_interlaced", name="a")
        b = make_cctv_clip(tmp_path, "h264_interlaced", name="b")
        assert sha256(a.path) == sha256(b.path)

    @pytest.mark.parametrize("blur", ["disk", "gaussian"])
    def test_blur_softens_the_scene_not_the_timestamp(self, blur: str) -> None:
        sharp, boxes = render_cctv_frames("h264_lowrate", 2)
        soft, same_boxes = render_cctv_frames("h264_lowrate", 2, blur_radius_px=4, blur=blur)
        assert boxes == same_boxes
        x, y, w, h = boxes[0]
        # The overlay is drawn after the blur: its white strokes are there, pixel for pixel.
        text = (sharp[:, y : y + h, x : x + w] == 255).all(axis=-1)
        assert text.sum() > 100
        assert (soft[:, y : y + h, x : x + w][text] == 255).all()
        # Below the overlays the scene lost its fine detail (Laplacian energy).
        scene = slice(boxes[0][1] + boxes[0][3] + 8, boxes[1][1] - 8)
        detail = [cv2.Laplacian(f[1, scene], cv2.CV_32F).var() for f in (sharp, soft)]
        assert detail[1] < 0.2 * detail[0]

    def test_interlaced_fields_are_two_moments(self) -> None:
        spec = CCTV_KINDS["mpeg2_interlaced"]
        woven, _ = render_cctv_frames(spec, 3)
        frames, _ = render_cctv_frames(replace(spec, field_order="progressive"), 3)
        # The top field is the frame's own moment (same noise, same overlay); the bottom
        # field was exposed half a frame later, so it differs where things move.
        np.testing.assert_array_equal(woven[:, 0::2], frames[:, 0::2])
        moved = (woven[:, 1::2] != frames[:, 1::2]).any(axis=-1).mean()
        assert 0.001 < moved < 0.2


class TestTranscode:
    @pytest.mark.parametrize(("codec", "suffix"), TARGETS)
    @pytest.mark.parametrize("kind", KINDS)
    def test_keeps_pixel_aspect_field_order_and_frames(
        self, kind: str, codec: str, suffix: str, clips: dict[str, CctvClip], tmp_path: Path
    ) -> None:
        clip = clips[kind]
        before = sha256(clip.path)
        out = _transcode(clip.path, tmp_path / f"{kind}{suffix}", codec)
        assert sha256(clip.path) == before, "the input was modified"
        src, dst = probe(clip.path).video, probe(out).video
        assert (dst.width, dst.height) == (src.width, src.height)
        assert dst.sample_aspect_ratio == src.sample_aspect_ratio == clip.kind.sar
        # MPEG-4 Part 2 in AVI stores no field order: progressive frames come out tagged so.
        assert dst.field_order == (src.field_order or "progressive")
        assert dst.frame_count == src.frame_count == 12
        assert [f.time_s for f in VideoReader(out)] == [f.time_s for f in VideoReader(clip.path)]
        a, b = _decoded(clip.path), _decoded(out)
        # Interlaced in, interlaced-coded out (x264 MBAFF, FFV1 picture structure).
        assert [f[1] for f in b] == [clip.kind.interlaced] * 12
        if codec == "ffv1":
            for (_, _, x), (_, _, y) in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)  # lossless: every code value

    def test_interlaced_with_audio_and_tags(
        self, clips: dict[str, CctvClip], tmp_path: Path
    ) -> None:
        """The second pass that sets the field order keeps what a single pass keeps."""
        src = tmp_path / "recorder.mov"
        ffmpeg("-i", str(clips["h264_interlaced"].path),
               "-f", "lavfi", "-i", "sine=f=1000:d=0.48:sample_rate=8000",
               "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
               "-metadata", "creation_time=2024-03-01T10:20:29Z", "-timecode", "10:20:29:15",
               str(src))  # fmt: skip
        out = _transcode(src, tmp_path / "recorder.mkv", "ffv1")
        v = probe(out).video
        assert (v.field_order, v.sample_aspect_ratio, v.timecode) == (
            "tt",
            Fraction(16, 15),
            "10:20:29:15",
        )
        assert probe(out).metadata.get("creation_time", "").startswith("2024-03-01T10:20:29")
        assert _audio_packets(out) == _audio_packets(src)
        assert not list(tmp_path.glob(".*vidrefocus-tmp*")), "a temporary file was left"

    def test_chunked_job_keeps_field_order(
        self, clips: dict[str, CctvClip], tmp_path: Path
    ) -> None:
        clip = clips["h264_interlaced"]
        out = _transcode(clip.path, tmp_path / "chunked.mkv", "ffv1", "--workers", "0")
        v = probe(out).video
        assert (v.field_order, v.sample_aspect_ratio, v.frame_count) == ("tt", clip.kind.sar, 12)
        for (_, _, x), (_, _, y) in zip(_decoded(clip.path), _decoded(out), strict=True):
            np.testing.assert_array_equal(x, y)

    def test_chunked_job_from_mpeg_ps(self, clips: dict[str, CctvClip], tmp_path: Path) -> None:
        out = _transcode(clips["mpeg2_interlaced"].path, tmp_path / "ps.mkv", "ffv1",
                         "--workers", "0")  # fmt: skip
        assert probe(out).video.frame_count == 12


class TestBitexact:
    @pytest.mark.parametrize(("codec", "suffix"), [*TARGETS, ("prores_hq", ".mov")])
    def test_same_job_same_bytes(
        self,
        codec: str,
        suffix: str,
        clips: dict[str, CctvClip],
        bitexact_config: Path,
        tmp_path: Path,
    ) -> None:
        # The interlaced MPEG-2 clip takes the two-pass path for .mkv and .mov.
        src = clips["mpeg2_interlaced"].path
        runs = [
            _transcode(src, tmp_path / f"run{i}{suffix}", codec, "--config", str(bitexact_config))
            for i in range(2)
        ]
        assert sha256(runs[0]) == sha256(runs[1])

    def test_chunked_job_same_bytes(
        self, clips: dict[str, CctvClip], bitexact_config: Path, tmp_path: Path
    ) -> None:
        src = clips["h264_interlaced"].path
        args = ["--workers", "0", "--config", str(bitexact_config)]
        runs = [_transcode(src, tmp_path / f"run{i}.mp4", "h264", *args) for i in range(2)]
        assert sha256(runs[0]) == sha256(runs[1])

    def test_without_it_matroska_differs(self, clips: dict[str, CctvClip], tmp_path: Path) -> None:
        """The control: Matroska's random SegmentUID, so the tests above are not vacuous."""
        src = clips["mpeg4_cif"].path
        runs = [_transcode(src, tmp_path / f"run{i}.mkv", "ffv1") for i in range(2)]
        assert sha256(runs[0]) != sha256(runs[1])
