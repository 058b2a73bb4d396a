"""`vidrefocus enhance` and `vidrefocus verify` end to end: real clips, the real DeblurNet,
real ffmpeg; the audit log checked against its published schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from jsonschema import Draft202012Validator

from media import ffmpeg, sha256
from vidrefocus.analyst.audit import SCHEMA_PATH
from vidrefocus.cli import main
from vidrefocus.io.probe import probe
from vidrefocus.io.reader import VideoReader
from vidrefocus.models.deblurnet import default_weights_path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("enhance")


@pytest.fixture(scope="module")
def clip(work: Path, sample_scene: Path) -> Path:
    """8 frames of a defocused street (a 192x112 part of the sample), H.264 with AAC audio."""
    out = work / "street.mp4"
    ffmpeg("-i", str(sample_scene), "-f", "lavfi", "-i", "sine=f=440:d=1",
           "-vf", "crop=192:112:300:120", "-frames:v", "8", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-g", "4", "-c:a", "aac", "-shortest", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def enhanced(work: Path, clip: Path) -> Path:
    """One full run with every review output; shared by the checks below."""
    out = work / "run1" / "street.mkv"
    out.parent.mkdir()
    assert _enhance_all(clip, out) == 0
    return out


def _enhance_all(clip: Path, out: Path) -> int:
    stills = str(out.parent / "stills")
    return main(["enhance", str(clip), "-o", str(out), "--side-by-side",
                 "--export-frames", stills, "--export-at", "f2, f5", "-q"])  # fmt: skip


def _audit(out: Path) -> dict:
    return json.loads(out.with_name(out.name + ".audit.json").read_text())


def test_audit_log_validates_against_its_schema(enhanced: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    doc = _audit(enhanced)
    errors = list(Draft202012Validator(schema).iter_errors(doc))
    assert errors == []
    # A broken log does not validate.
    broken = {**doc, "frames": [{**doc["frames"][0], "output_sha256": "abc"}]}
    assert list(Draft202012Validator(schema).iter_errors(broken))


def test_audit_log_records_what_a_reviewer_needs(enhanced: Path, clip: Path) -> None:
    doc = _audit(enhanced)
    assert doc["input"]["sha256"] == sha256(clip)
    assert doc["outputs"]["video"]["sha256"] == sha256(enhanced)
    assert doc["method"]["weights"][0]["sha256"] == sha256(default_weights_path())
    sbs = enhanced.with_name("street.side_by_side.mkv")
    assert doc["outputs"]["side_by_side"]["sha256"] == sha256(sbs)
    stills = doc["outputs"]["exported_frames"]
    assert [s["index"] for s in stills] == [2, 5]
    assert all(sha256(Path(s["path"])) == s["sha256"] for s in stills)
    assert doc["command"]["argv"][:2] == ["vidrefocus", "enhance"]
    assert doc["runtime"]["determinism"]["deterministic_algorithms"] is True
    assert doc["environment"]["libraries"]["torch"]
    assert doc["config"]["encode"]["codec"] == "ffv1"  # the surveillance preset: lossless
    assert "no generative" in doc["method"]["kind"]
    frames = doc["frames"]
    assert [f["index"] for f in frames] == list(range(8))
    assert all(f["residual_psnr_db"] > 15 for f in frames)
    assert doc["summary"]["frames"] == 8
    assert doc["summary"]["flagged"] == sum(f["flagged"] for f in frames)


def test_output_keeps_size_timing_and_audio(enhanced: Path, clip: Path) -> None:
    out = probe(enhanced)
    assert (out.video.width, out.video.height) == (192, 112)
    assert out.video.codec == "ffv1"
    assert out.video.frame_count == 8
    assert [s.kind for s in out.streams].count("audio") == 1
    src_pts = [f.pts * f.time_base for f in VideoReader(clip)]
    out_pts = [f.pts * f.time_base for f in VideoReader(enhanced)]
    assert [round(float(t), 3) for t in out_pts] == [round(float(t), 3) for t in src_pts]


def test_side_by_side_is_twice_as_wide(enhanced: Path) -> None:
    sbs = probe(enhanced.with_name("street.side_by_side.mkv")).video
    assert sbs.width > 2 * 192
    assert sbs.height > 112
    assert sbs.frame_count == 8


def test_repeat_run_is_bit_identical_and_verifies(work: Path, clip: Path, enhanced: Path) -> None:
    again = work / "run2" / "street.mkv"
    again.parent.mkdir()
    assert _enhance_all(clip, again) == 0
    assert sha256(again) == sha256(enhanced)
    assert [f["output_sha256"] for f in _audit(again)["frames"]] == [
        f["output_sha256"] for f in _audit(enhanced)["frames"]
    ]
    assert main(["verify", str(enhanced.with_name("street.mkv.audit.json")), "-q"]) == 0


def _flip_a_byte_of_frame(path: Path, frame: int) -> None:
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
        packet = packets[frame]
        pos = packet.pos + packet.size // 2
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x10
    path.write_bytes(bytes(data))


def test_verify_names_the_frame_a_changed_byte_is_in(
    work: Path, enhanced: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = work / "tampered"
    shutil.copytree(enhanced.parent, copy)
    audit = copy / "street.mkv.audit.json"
    _flip_a_byte_of_frame(copy / "street.mkv", 5)
    capsys.readouterr()
    code = main(["verify", str(audit), "--output", str(copy / "street.mkv"), "--no-rerun"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "sha256 differs" in printed
    assert "first difference: frame f5" in printed
    assert "NOT verified" in printed


def test_verify_notices_a_changed_input(work: Path, clip: Path, enhanced: Path) -> None:
    moved = work / "street_moved.mp4"
    data = bytearray(clip.read_bytes())
    data[-1] ^= 0xFF
    moved.write_bytes(bytes(data))
    audit = enhanced.with_name("street.mkv.audit.json")
    assert main(["verify", str(audit), "--input", str(moved), "-q"]) == 1


def test_region_pass_through_leaves_the_rest_untouched(work: Path, clip: Path) -> None:
    out = work / "roi_pass.mkv"
    assert main(["enhance", str(clip), "-o", str(out), "--roi", "64,32,48,32",
                 "--frames", "f0-f2", "-q"]) == 0  # fmt: skip
    src = [f.to_ndarray(format="gray") for f in av.open(str(clip)).decode(video=0)][:3]
    got = [f.to_ndarray(format="gray") for f in av.open(str(out)).decode(video=0)]
    assert len(got) == 3
    outside = np.ones((112, 192), bool)
    outside[30:66, 62:114] = False  # the region, and the 4:2:0 chroma pairs at its edge
    for a, b in zip(src, got, strict=True):
        assert np.array_equal(a[outside], b[outside])
        assert not np.array_equal(a[~outside], b[~outside])
    doc = _audit(out)
    assert doc["settings"]["roi"] == "64,32,48,32"
    assert "audio is not copied" in " ".join(doc["notes"])
    assert [s.kind for s in probe(out).streams].count("audio") == 0


def test_crop_and_enlarge_a_region(work: Path, clip: Path) -> None:
    out = work / "plate.mkv"
    assert main(["enhance", str(clip), "-o", str(out), "--roi", "64,32,48,30",
                 "--roi-output", "crop", "--scale", "3", "--scale-filter", "nearest",
                 "--frames", "f1", "-q"]) == 0  # fmt: skip
    v = probe(out).video
    assert (v.width, v.height, v.frame_count) == (144, 90, 1)
    assert "nearest neighbour" in " ".join(_audit(out)["notes"])


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--scale", "2"], "--scale enlarges the region"),
        (["--roi", "150,100,60,60"], "reaches past the 192x112 frame"),
        (["--roi-output", "crop"], "needs a --roi"),
        (["--frames", "f8"], "does not exist"),
        (["--export-at", "f1"], "give the folder too"),
    ],
)
def test_user_mistakes_exit_2_and_write_nothing(
    work: Path, clip: Path, extra: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = work / f"bad_{abs(hash(tuple(extra)))}"
    folder.mkdir()
    before = sha256(clip)
    code = main(["enhance", str(clip), "-o", str(folder / "out.mkv"), *extra])
    assert code == 2
    assert words in capsys.readouterr().err.replace("\n", " ")
    assert list(folder.iterdir()) == []
    assert sha256(clip) == before


def test_existing_output_is_kept_without_overwrite(work: Path, clip: Path) -> None:
    out = work / "exists.mkv"
    out.write_bytes(b"keep me")
    assert main(["enhance", str(clip), "-o", str(out), "-q"]) == 2
    assert out.read_bytes() == b"keep me"
    assert not out.with_name("exists.mkv.audit.json").exists()


def test_output_must_be_a_video(work: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enhance", str(clip), "-o", str(work / "out.png")]) == 2
    assert "enhance writes a video" in capsys.readouterr().err
