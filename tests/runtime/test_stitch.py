"""Chunks stitched with the concat demuxer equal a single pass (issue: Runtime, step 3).

Chunks are made by the real chunk path (`run_job(workers=0)`: decode, encode, stitch, no Ray)
and compared with `run_local`'s single pass on the same input.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest
import torch

from media import ffmpeg
from vidrefocus.config import Config, load_config
from vidrefocus.io.probe import probe
from vidrefocus.io.reader import VideoReader
from vidrefocus.io.writer import VideoWriter
from vidrefocus.runtime.driver import run_job
from vidrefocus.runtime.local import run_local
from vidrefocus.runtime.stitch import concat_list


def _config(codec: str, chunk_seconds: float) -> Config:
    return load_config(overrides={"encode.codec": codec, "runtime.chunk_seconds": chunk_seconds})


def _packets(path: Path, kind: str) -> list[tuple[int | None, bool, bytes]]:
    with av.open(str(path)) as c:
        streams = c.streams.audio if kind == "audio" else c.streams.video
        if not streams:
            return []
        return [(p.pts, p.is_keyframe, bytes(p)) for p in c.demux(streams[0]) if p.size]


def _chunked_and_single(src: Path, tmp_path: Path, config: Config, suffix: str) -> tuple:
    single, chunked = tmp_path / f"single{suffix}", tmp_path / f"chunked{suffix}"
    run_local(src, single, [], config)
    result = run_job(src, chunked, config, workers=0)
    return single, chunked, result


@pytest.mark.slow
def test_ffv1_is_bit_identical_to_single_pass(sample_scene: Path, tmp_path: Path) -> None:
    single, chunked, result = _chunked_and_single(
        sample_scene, tmp_path, _config("ffv1", 1.0), ".mkv"
    )
    assert (result.chunks, result.chunks_run, result.frames) == (4, 4, 96)
    a, b = list(VideoReader(single)), list(VideoReader(chunked))
    assert [f.pts for f in a] == [f.pts for f in b]
    assert len(b) == 96
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.rgb, y.rgb), f"frame at pts {x.pts} differs"
    assert _packets(chunked, "audio") == _packets(single, "audio") != []
    s, c = probe(single), probe(chunked)
    # Matroska spells the tag in capitals (which probe's `timecode` does not read)
    assert c.video.metadata.get("TIMECODE") == s.video.metadata.get("TIMECODE") == "01:00:00:00"
    assert c.metadata.get("title") == s.metadata.get("title") == "vidrefocus sample scene"
    assert (c.video.colour_matrix, c.video.colour_range) == ("bt709", "tv")
    assert c.video.metadata.get("ENCODER", "").endswith("ffv1")
    assert not result.work_dir.exists(), "the default work folder is removed after success"


@pytest.mark.slow
def test_h264_vfr_keeps_pts_and_count(vfr_clip: Path, tmp_path: Path) -> None:
    single, chunked, result = _chunked_and_single(vfr_clip, tmp_path, _config("h264", 0.3), ".mp4")
    assert result.chunks == 3
    a, b = _packets(single, "video"), _packets(chunked, "video")
    assert sorted(p for p, _, _ in a) == sorted(p for p, _, _ in b)
    assert len(b) == 30
    # every chunk starts with a keyframe (an IDR: each chunk is its own closed-GOP encode)
    keys = {p for p, key, _ in b if key}
    assert {0, 379, 1292} <= keys
    assert probe(chunked).video.variable_frame_rate


@pytest.mark.slow
def test_start_offset_rotation_and_tags_survive(phone_clip: Path, tmp_path: Path) -> None:
    # a rotated phone clip whose timestamps start at 10 s
    src = tmp_path / "late.mov"
    ffmpeg("-i", str(phone_clip), "-map", "0:v", "-map", "0:a", "-c", "copy",
           "-output_ts_offset", "10", "-map_metadata", "0", "-timecode", "10:00:00:00",
           str(src))  # fmt: skip
    single, chunked, result = _chunked_and_single(src, tmp_path, _config("h264", 0.3), ".mov")
    assert result.chunks >= 3
    a, b = list(VideoReader(single)), list(VideoReader(chunked))
    assert [f.pts for f in a] == [f.pts for f in b]
    assert b[0].time_s >= 10
    s, c = probe(single), probe(chunked)
    assert c.video.rotation == s.video.rotation == 90
    assert c.video.timecode == s.video.timecode == "10:00:00:00"
    assert c.metadata == s.metadata
    assert _packets(chunked, "audio") == _packets(single, "audio") != []


def test_concat_list_keeps_timestamps(sample_scene: Path, tmp_path: Path) -> None:
    # chunk files starting at 10.5 s and 11.5 s: inpoint 0 on the first, then exact gaps
    for i, offset in enumerate(("10.5", "11.5")):
        ffmpeg("-i", str(sample_scene), "-map", "0:v", "-c", "copy", "-t", "1",
               "-output_ts_offset", offset, str(tmp_path / f"c{i}.mkv"))  # fmt: skip
    text = concat_list([tmp_path / "c0.mkv", tmp_path / "c1.mkv"])
    assert text.splitlines() == [
        "ffconcat version 1.0",
        "file 'c0.mkv'",
        "inpoint 0us",
        "duration 11500000us",
        "file 'c1.mkv'",
    ]


@pytest.mark.parametrize(
    ("codec", "suffix", "expected"),
    [
        ("h264", ".mp4", {"-x264-params": "open-gop=0"}),
        ("h265", ".mkv", {"-x265-params": "log-level=error:open-gop=0"}),
        ("ffv1", ".mkv", {"-level": "3", "-g": "1", "-slicecrc": "1"}),
    ],
)
def test_chunk_writer_closes_gops_and_writes_video_only(
    codec: str, suffix: str, expected: dict[str, str], sample_scene: Path, tmp_path: Path
) -> None:
    writer = VideoWriter(
        tmp_path / f"out{suffix}", probe(sample_scene), _config(codec, 1).encode,
        video_only=True, closed_gop=True,
    )  # fmt: skip
    cmd = writer._command(64, 48)
    writer.abort()
    pairs = dict(itertools.pairwise(cmd))
    for key, value in expected.items():
        assert pairs[key] == value
    assert str(sample_scene) not in cmd  # no second input: nothing muxed from the source
