"""Memory estimates and the refusal of jobs too large for the machine (the 8192x8192 issue)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from media import ffmpeg
from vidrefocus.cli import main
from vidrefocus.config import load_config
from vidrefocus.errors import InputError
from vidrefocus.memory import (
    MEMORY_LIMIT_ENV,
    SAFETY_SHARE,
    _cgroup_free,
    _mem_available,
    available_bytes,
    check_memory,
    estimate_bytes,
    factory_command,
    parse_bytes,
)

COMMANDS = ("refocus", "deblur", "depth", "enhance", "preview")
HUGE = 8192


@pytest.fixture(autouse=True)
def _no_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Each test states its own limit; estimated depth goes to a fresh cache, so "writes
    # nothing" covers the depth cache too.
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.setenv("VIDREFOCUS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clip_720p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("memory") / "in720.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24", "-frames:v", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def clip_huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One flat grey 8192x8192 frame: ~200 KB of H.264, ~0.5 s and ~0.5 GB to make (FFV1
    took 8 s and 2.2 GB)."""
    out = tmp_path_factory.mktemp("memory_huge") / "huge.mp4"
    ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s={HUGE}x{HUGE}:r=24", "-frames:v", "1",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out))  # fmt: skip
    return out


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


# -- estimates ----------------------------------------------------------------------------------


class TestEstimate:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_grows_linearly_with_area(self, command: str) -> None:
        config = load_config()
        one, two, four = (estimate_bytes(command, 640 * k, 360 * k, config) for k in (1, 2, 4))
        # Affine in the pixel count: 4x and 16x the area add 3x and 15x the first step.
        step = two - one
        assert step > 0
        assert four - one == pytest.approx(5 * step, abs=8)  # 16A - A = 5 * (4A - A)

    @pytest.mark.parametrize("command", ["refocus", "deblur", "depth"])
    def test_grows_with_batch_size(self, command: str) -> None:
        small = estimate_bytes(
            command, 1920, 1080, load_config(overrides={"runtime.batch_size": 1})
        )
        big = estimate_bytes(command, 1920, 1080, load_config(overrides={"runtime.batch_size": 8}))
        assert big > small
        assert estimate_bytes(command, 1920, 1080, load_config(), frames=1) == small

    def test_options_that_add_work_add_memory(self) -> None:
        plain = estimate_bytes("refocus", 1920, 1080, load_config())
        deblur = estimate_bytes(
            "refocus", 1920, 1080, load_config(overrides={"deblur.enabled": True})
        )
        fill = estimate_bytes(
            "refocus", 1920, 1080, load_config(overrides={"bokeh.learned_fill": True})
        )
        queue = estimate_bytes(
            "refocus", 1920, 1080, load_config(overrides={"runtime.queue_frames": 64})
        )
        assert deblur > plain
        assert fill > plain
        assert queue > plain

    def test_unknown_command(self) -> None:
        with pytest.raises(ValueError, match="transcode"):
            estimate_bytes("transcode", 64, 64, load_config())  # type: ignore[arg-type]


# -- available memory ---------------------------------------------------------------------------


class TestAvailable:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("1073741824", 2**30), ("1G", 2**30), ("512M", 2**29), ("1.5GiB", 3 * 2**29),
         (" 2t ", 2 * 2**40), ("64k", 2**16)],
    )  # fmt: skip
    def test_parse_bytes(self, text: str, expected: int) -> None:
        assert parse_bytes(text) == expected

    @pytest.mark.parametrize("text", ["", "G", "lots", "-1G", "0", "1X", "nan"])
    def test_parse_bytes_refuses(self, text: str) -> None:
        with pytest.raises(InputError, match=MEMORY_LIMIT_ENV):
            parse_bytes(text)

    def test_override_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(MEMORY_LIMIT_ENV, "3G")
        assert available_bytes() == (3 * 2**30, MEMORY_LIMIT_ENV)

    def test_meminfo(self, tmp_path: Path) -> None:
        meminfo = tmp_path / "meminfo"
        meminfo.write_text("MemTotal:  32000000 kB\nMemAvailable:  2048 kB\n")
        assert _mem_available(meminfo) == 2048 * 1024
        assert _mem_available(tmp_path / "missing") is None

    def test_cgroup_v2_limit_counts_file_cache_as_free(self, tmp_path: Path) -> None:
        (tmp_path / "memory.max").write_text(f"{8 * 2**30}\n")
        (tmp_path / "memory.current").write_text(f"{6 * 2**30}\n")
        (tmp_path / "memory.stat").write_text(f"anon 1\ninactive_file {2**30}\n")
        assert _cgroup_free(tmp_path) == 3 * 2**30

    def test_cgroup_v2_without_limit(self, tmp_path: Path) -> None:
        (tmp_path / "memory.max").write_text("max\n")
        (tmp_path / "memory.current").write_text("100\n")
        assert _cgroup_free(tmp_path) is None

    def test_cgroup_v1(self, tmp_path: Path) -> None:
        v1 = tmp_path / "memory"
        v1.mkdir()
        (v1 / "memory.limit_in_bytes").write_text(f"{4 * 2**30}\n")
        (v1 / "memory.usage_in_bytes").write_text(f"{2**30}\n")
        (v1 / "memory.stat").write_text("total_inactive_file 0\n")
        assert _cgroup_free(tmp_path) == 3 * 2**30
        (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # no limit
        assert _cgroup_free(tmp_path) is None


# -- the check ----------------------------------------------------------------------------------


class TestCheck:
    def test_refusal_names_size_need_and_availability(self) -> None:
        config = load_config()
        need = estimate_bytes("refocus", HUGE, HUGE, config)
        with pytest.raises(InputError) as info:
            check_memory("refocus", HUGE, HUGE, config, path="IN.mp4", available=need)
        text = str(info.value)
        assert text.startswith("IN.mp4: a 8192x8192 frame needs about ")
        assert f"{need / 2**30:.0f} GiB for refocus (depth, BokehNet at batch 4)" in text
        assert f"this machine has {need / 2**30:.0f} GiB available" in text
        assert "ffmpeg -vf scale=" in text
        assert "runtime.batch_size" in text

    def test_suggested_width_fits(self) -> None:
        config = load_config()
        available = 4 * 2**30
        with pytest.raises(InputError) as info:
            check_memory("deblur", HUGE, HUGE, config, available=available)
        width = int(str(info.value).split("scale=")[1].split(":")[0])
        assert width % 16 == 0
        assert estimate_bytes("deblur", width, width, config) <= SAFETY_SHARE * available

    def test_passes_below_the_margin(self) -> None:
        config = load_config()
        need = estimate_bytes("deblur", 1280, 720, config)
        assert check_memory("deblur", 1280, 720, config, available=int(need / SAFETY_SHARE) + 1)
        with pytest.raises(InputError):
            check_memory("deblur", 1280, 720, config, available=int(need / SAFETY_SHARE) - 1)

    def test_workers_multiply_the_need(self) -> None:
        config = load_config()
        one = estimate_bytes("deblur", 1920, 1080, config)
        with pytest.raises(InputError, match=r"for deblur on 3 workers .* fewer --workers"):
            check_memory("deblur", 1920, 1080, config, workers=3, available=2 * one)

    def test_unknown_availability_refuses_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("vidrefocus.memory.available_bytes", lambda: (None, ""))
        check_memory("refocus", HUGE, HUGE, load_config())

    def test_factory_command(self) -> None:
        assert factory_command("vidrefocus.runtime.factory:refocus_stages") == "refocus"
        assert factory_command("vidrefocus.runtime.factory:identity_stages") is None


# -- the commands -------------------------------------------------------------------------------


def _refocus(clip: Path, out: Path) -> list[str]:
    return ["refocus", str(clip), "-o", str(out / "out.mp4")]


def _deblur(clip: Path, out: Path) -> list[str]:
    return ["deblur", str(clip), "-o", str(out / "out.mp4")]


def _enhance(clip: Path, out: Path) -> list[str]:
    return ["enhance", str(clip), "-o", str(out / "out.mkv")]


def _depth(clip: Path, out: Path) -> list[str]:
    return ["depth", str(clip), "-o", str(out / "maps")]


def _preview(clip: Path, out: Path) -> list[str]:
    return ["preview", str(clip), "-o", str(out / "sheet.png")]


JOBS = {"refocus": _refocus, "deblur": _deblur, "enhance": _enhance, "depth": _depth,
        "preview": _preview}  # fmt: skip


class TestCommands:
    @pytest.mark.parametrize("command", ["refocus", "deblur", "enhance", "depth", "preview"])
    def test_limit_refuses_before_writing(
        self,
        command: str,
        clip_720p: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # The Python process and its models alone take ~0.4 GiB: every job but the preview
        # of one frame needs more than 90 % of 1 GiB at 720p.
        limit = "512M" if command == "preview" else "1G"
        frames = 1 if command == "preview" else None
        need = estimate_bytes(command, 1280, 720, load_config(), frames=frames)
        assert need > SAFETY_SHARE * parse_bytes(limit)
        monkeypatch.setenv(MEMORY_LIMIT_ENV, limit)
        out = tmp_path / "out"
        out.mkdir()
        before = _files(tmp_path) | _files(clip_720p.parent)
        args = JOBS[command](clip_720p, out)
        if command == "preview":
            args += ["--at", "0"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "a 1280x720 frame needs about" in err
        assert f"for {command}" in err
        assert f"{MEMORY_LIMIT_ENV} allows {parse_bytes(limit) / 2**30:.1f} GiB" in err
        assert _files(tmp_path) | _files(clip_720p.parent) == before

    def test_enhance_checks_the_roi_window(
        self, clip_720p: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = load_config()
        # A 64x64 region is processed in a window of 256x264 (96 px margin, 8 px grid): that
        # fits a limit the whole frame does not.
        limit = estimate_bytes("enhance", 256, 264, config) / SAFETY_SHARE + 2**20
        assert estimate_bytes("enhance", 1280, 720, config) > SAFETY_SHARE * limit
        monkeypatch.setenv(MEMORY_LIMIT_ENV, str(int(limit)))
        out = tmp_path / "roi.mkv"
        args = ["enhance", str(clip_720p), "-o", str(out), "--roi", "600,300,64,64", "--quiet"]
        assert main(args) == 0
        assert out.is_file()

    def test_small_job_not_refused(
        self, clip_720p: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        available, _ = available_bytes()
        for command in ("refocus", "deblur", "enhance"):
            # The real figure of this machine (if it can be read): 720p fits.
            check_memory(command, 1280, 720, load_config(), available=available)
        out = tmp_path / "out.mp4"
        assert main(["deblur", str(clip_720p), "-o", str(out), "--quiet"]) == 0
        assert out.is_file()

    @pytest.mark.parametrize("command", ["refocus", "deblur", "enhance"])
    def test_huge_frame_refused_if_too_big_here(
        self,
        command: str,
        clip_huge: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        available, _ = available_bytes()
        need = estimate_bytes(command, HUGE, HUGE, load_config())
        if available is None or need <= SAFETY_SHARE * available:
            # Never process a 64 MP frame in a test: on a machine that big, only the estimate
            # is checked.
            pytest.skip(f"{command} at {HUGE}x{HUGE} needs {need} B, this machine has enough")
        before = _files(tmp_path) | _files(clip_huge.parent)
        assert main(JOBS[command](clip_huge, tmp_path)) == 2
        err = capsys.readouterr().err
        assert f"a {HUGE}x{HUGE} frame needs about {need / 2**30:.0f} GiB for {command}" in err
        assert "this machine has" in err
        assert _files(tmp_path) | _files(clip_huge.parent) == before

    def test_info_on_huge_frame_works(
        self, clip_huge: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["info", str(clip_huge)]) == 0
        assert f"{HUGE}x{HUGE}" in capsys.readouterr().out


def test_chunked_job_refused_in_the_driver(
    clip_720p: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidrefocus.runtime.driver import default_work_dir, run_job
    from vidrefocus.runtime.factory import DEBLUR, IDENTITY

    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1G")
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match=r"a 1280x720 frame needs about .* for deblur"):
        run_job(clip_720p, out, load_config(), factory=DEBLUR, workers=0)
    assert not out.exists()
    assert not default_work_dir(out).exists()
    # Transcoding is plain I/O: never checked.
    run_job(clip_720p, out, load_config(), factory=IDENTITY, workers=0)
    assert out.is_file()


_HEAP_AFTER_FRAMES = """
import json
import numpy as np
from vidrefocus.memory import release_free_heap

def rss():
    status = open('/proc/self/status').read().split('VmRSS:')[1]
    return int(status.split()[0]) * 1024

# Freed at once: glibc's mmap threshold rises to its size, so the frames below go on the heap,
# as a worker's 1080p frames do after the first few.
np.ones(16 << 20, np.uint8)
frames = [np.ones(8 << 20, np.uint8) for _ in range(24)]
pin = np.ones(1 << 16, np.uint8)  # above the frames, so the heap cannot shrink from its top
del frames
before = rss()
trimmed = release_free_heap()
print(json.dumps({"trimmed": trimmed, "before": before, "after": rss()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_heap_returns_freed_frames_to_the_system() -> None:
    # A fresh process, so the heap holds only what the script put there.
    run = subprocess.run(
        [sys.executable, "-c", _HEAP_AFTER_FRAMES], capture_output=True, text=True, check=True
    )
    result = json.loads(run.stdout)
    assert result["trimmed"]
    # 24 freed frames of 8 MiB: resident until trimmed, then (nearly all) handed back.
    assert result["before"] - result["after"] > 150 * 2**20, result
