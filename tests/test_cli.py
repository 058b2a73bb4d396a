"""Issue #3: the CLI's contract: clear errors, exit codes, nothing lost or half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from media import ffmpeg, sha256
from vidrefocus.cli import main


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "vidrefocus-tmp" in p.name)


@pytest.fixture
def bad_inputs(tmp_path: Path, sample_scene: Path, audio_only: Path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("this is a text file, not a video\n")
    moov_at_end = tmp_path / "moov_at_end.mp4"
    ffmpeg("-i", str(sample_scene), "-map", "0:v", "-c", "copy", str(moov_at_end))
    data = moov_at_end.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return {
        "missing": folder / "does_not_exist.mp4",
        "empty": folder / "empty.mp4",
        "text": folder / "notes.mp4",
        "audio_only": audio_only,
        "truncated_mp4": folder / "truncated.mp4",
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "no such file"),
        ("empty", "empty (0 bytes)"),
        ("text", "not a media file"),
        ("audio_only", "no video stream"),
        ("truncated_mp4", "not a media file"),  # moov atom is at the end: nothing to index
    ],
)
def test_bad_input_exit_2(
    case: str,
    expected: str,
    bad_inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = bad_inputs[case]
    before = sha256(src) if src.exists() else None
    out = tmp_path / "out.mp4"
    assert main(["transcode", str(src), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert str(src.name) in err
    assert "Traceback" not in err
    assert not out.exists()
    assert _leftovers(tmp_path) == []
    if before is not None:
        assert sha256(src) == before


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_truncated_stream_gives_every_decodable_frame(
    sample_scene: Path, tmp_path: Path, ext: str
) -> None:
    # Matroska, and MP4 with its index up front, still hold the first frames when cut in half.
    full = tmp_path / f"full{ext}"
    ffmpeg(
        "-i", str(sample_scene), "-map", "0:v", "-c", "copy", "-movflags", "+faststart", str(full)
    )
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "out.mkv"
    start = time.monotonic()
    code = main(["transcode", str(cut), "-o", str(out), "--codec", "ffv1", "-q"])
    assert time.monotonic() - start < 60, "must never hang"
    assert code == 0
    from vidrefocus.io.probe import probe

    frames = probe(out).video.frame_count
    assert 20 < frames < 96


def test_output_equal_to_input(sample_scene: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sha256(sample_scene)
    assert main(["transcode", str(sample_scene), "-o", str(sample_scene), "--overwrite"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert sha256(sample_scene) == before


def test_output_in_missing_folder(
    sample_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nope" / "out.mp4"
    assert main(["transcode", str(sample_scene), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "create it" in err
    assert not out.parent.exists()


def test_output_in_unwritable_folder(
    sample_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc refuses new files even to root, unlike a chmod'ed folder.
    out = Path("/proc/vidrefocus-out.mp4")
    assert main(["transcode", str(sample_scene), "-o", str(out)]) == 2
    assert "not writable" in capsys.readouterr().err
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        assert main(["transcode", str(sample_scene), "-o", str(ro / "x.mp4")]) == 2
        assert list(ro.iterdir()) == []


def test_existing_output_needs_overwrite(
    sample_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"precious")
    assert main(["transcode", str(sample_scene), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


def test_unknown_codec(
    sample_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    assert main(["transcode", str(sample_scene), "-o", str(out), "--codec", "xvid"]) == 2
    err = capsys.readouterr().err
    assert "encode.codec" in err
    assert "'h264'" in err
    assert "xvid" in err
    assert not out.exists()


def test_codec_container_clash(
    sample_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    assert main(["transcode", str(sample_scene), "-o", str(out), "--codec", "prores_hq"]) == 2
    assert ".mov" in capsys.readouterr().err
    assert not out.exists()


def test_bad_yaml_key(
    sample_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text("encode:\n  codecc: ffv1\n")
    out = tmp_path / "out.mkv"
    assert main(["transcode", str(sample_scene), "-o", str(out), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "job.yaml" in err
    assert "encode.codecc" in err
    assert "codec" in err  # the known keys are listed
    assert not out.exists()


def test_info_json(sample_scene: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(sample_scene), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["video"]["frame_count"] == 96
    assert info["video"]["time_base"] == "1/12288"
    assert info["streams"][0]["kind"] == "audio"


def test_info_human(tenbit_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tenbit_clip)]) == 0
    out = capsys.readouterr().out
    assert "yuv422p10le, 10-bit, 4:2:2" in out
    assert "audio" in out


def _default_sigint() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and
    # children inherit that (Python then installs no KeyboardInterrupt handler). The CLI is
    # tested as a user at a terminal runs it, however the test run itself was started.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidrefocus.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def test_console_script_user_error_has_no_traceback(tmp_path: Path) -> None:
    proc = _cli("transcode", str(tmp_path / "missing.mov"), "-o", str(tmp_path / "o.mp4"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "no such file" in err
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_leaves_no_output(
    sample_scene: Path, tmp_path: Path, sig: int, code: int
) -> None:
    out = tmp_path / "out.mp4"
    before = sha256(sample_scene)
    # A slow encoder setting keeps the job running long enough to interrupt it mid-way.
    proc = _cli("transcode", str(sample_scene), "-o", str(out), "--encoder-preset", "veryslow")
    deadline = time.monotonic() + 60
    while not _leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _leftovers(tmp_path), "the job never started writing"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not out.exists()
    assert _leftovers(tmp_path) == []
    assert sha256(sample_scene) == before
