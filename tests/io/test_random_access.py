from __future__ import annotations

from pathlib import Path

import pytest

from media import ffmpeg
from vidrefocus.errors import InputError
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.io.reader import VideoReader


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Short GOPs (keyframe every 12 frames) with B-frames: seeking has real work to do."""
    clip = tmp_path_factory.mktemp("ra") / "gop.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=160x96:r=24:d=3", "-c:v", "libx264", "-g", "12",
        "-bf", "2", "-pix_fmt", "yuv420p", "-colorspace", "bt709", str(clip),
    )  # fmt: skip
    return clip


@pytest.mark.parametrize("fixture", ["gop_clip", "phone_clip", "tenbit_clip"])
def test_exact_mode_equals_streaming_reader(fixture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(fixture)
    full = list(VideoReader(path))
    ra = RandomAccessReader(path)
    assert ra.pts == [f.pts for f in full]
    idx = [len(full) - 1, 3, 3, 0, len(full) // 2, len(full) - 2]
    for got, i in zip(ra.at_indices(idx), idx, strict=True):
        assert got.pts == full[i].pts
        assert (got.rgb - full[i].rgb).abs().max().item() == 0.0


def test_decord_mode_is_close(gop_clip: Path) -> None:
    full = list(VideoReader(gop_clip))
    fast = RandomAccessReader(gop_clip, exact=False)
    for got, i in zip(fast.at_indices([5, 40]), [5, 40], strict=True):
        assert got.pts == full[i].pts
        # decord's integer swscale path: measured max 2.9/255 on BT.601 and BT.709 clips
        assert (got.rgb - full[i].rgb.clamp(0, 1)).abs().max().item() <= 3.5 / 255


def test_times_map_to_the_frame_on_screen(gop_clip: Path) -> None:
    ra = RandomAccessReader(gop_clip)
    assert ra.index_at(0) == 0
    assert ra.index_at(1.0) == 24
    assert ra.index_at(1.0 + 1 / 48) == 24  # between frames: the one still shown
    assert ra.index_at(100) == len(ra) - 1
    assert [f.index for f in ra.at_times([0.5, 2.0])] == [12, 48]


def test_seeks_instead_of_decoding_everything(
    gop_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import av.container

    seeks: list[int] = []
    real_seek = av.container.InputContainer.seek

    def counting_seek(self, offset, *args, **kwargs):
        seeks.append(offset)
        return real_seek(self, offset, *args, **kwargs)

    monkeypatch.setattr(av.container.InputContainer, "seek", counting_seek)
    ra = RandomAccessReader(gop_clip)
    ra.at_indices([70])
    assert seeks, "a late frame must be reached by seeking"
    assert seeks[-1] > 0


def test_out_of_range(gop_clip: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        RandomAccessReader(gop_clip).at_indices([10_000])


def test_counts_decoded_frames(gop_clip: Path) -> None:
    ra = RandomAccessReader(gop_clip)
    assert ra.frames_decoded == 0
    ra.at_indices([70])  # keyframes every 12 frames: decoding starts at frame 60
    assert 11 <= ra.frames_decoded <= 12
    before = ra.frames_decoded
    ra.at_indices([3, 50])  # two seeks: 0..3 and 48..50
    assert ra.frames_decoded - before == 4 + 3


def test_iter_range_streams_a_span_exactly(gop_clip: Path) -> None:
    full = list(VideoReader(gop_clip))
    ra = RandomAccessReader(gop_clip)
    got = list(ra.iter_range(30, 41))
    assert [f.index for f in got] == list(range(30, 41))
    for f in got:
        assert f.pts == full[f.index].pts
        assert (f.rgb - full[f.index].rgb).abs().max().item() == 0.0
    assert ra.frames_decoded == 41 - 24  # from the keyframe at 24, not from the start
    with pytest.raises(InputError, match="not a span"):
        list(ra.iter_range(5, 5))
