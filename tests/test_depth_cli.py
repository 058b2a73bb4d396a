"""`vidrefocus depth` and `--depth auto` end to end: real files, real models, no mocks.

The built-in DepthNet runs with its packaged weights. Depth Anything V2 cannot be fetched
offline, so its path runs on a tiny randomly initialised model of the same architecture,
saved the way `save_pretrained` (and the hub) lay it out: loading, pre/post-processing and the
`--depth auto` choice are what is tested, not its accuracy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from media import SAMPLES, ffmpeg, sha256
from vidrefocus.cli import main
from vidrefocus.config import load_config
from vidrefocus.depth import choose_depth
from vidrefocus.eval.depth_eval import save_tiny_depth_anything
from vidrefocus.io.depth import DepthSequence
from vidrefocus.io.reader import VideoReader

FRAMES = 6


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or fills the user's caches, nor looks for real hub weights."""
    monkeypatch.setenv("VIDREFOCUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VIDREFOCUS_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("depth_cli")
    out = folder / "shot.mp4"
    # the sample has a keyframe every 24 frames, so a stream copy cuts exactly
    ffmpeg("-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-frames:v", str(FRAMES),
           "-c", "copy", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_depth_anything(tmp_path_factory.mktemp("tiny") / "Depth-Anything-V2-Small-hf")


def test_export_png_with_preview(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = sha256(clip)
    out = tmp_path / "depth"
    assert main(["depth", str(clip), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert any("built-in DepthNet" in n for n in summary["notes"])
    maps = sorted(out.glob("*.png"))
    assert [p.name for p in maps] == [f"{i:06d}.png" for i in range(FRAMES)]
    first = cv2.imread(str(maps[0]), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint16
    assert first.shape == (360, 640)
    assert int(first.max()) - int(first.min()) > 10_000  # the scene's depth spans the range
    sidecar = json.loads((out / "depth.json").read_text())
    assert sidecar["units"] == "relative"
    assert sidecar["near_is_bright"] is True
    assert sidecar["frames"] == FRAMES
    assert sidecar["stabilized"] is True
    preview = [f.time_s for f in VideoReader(out / "preview.mp4")]
    assert preview == [f.time_s for f in VideoReader(clip)]
    assert sha256(clip) == before
    # the export is a depth sequence refocus reads back (units from depth.json)
    seq = DepthSequence(out, units=None, frame_count=FRAMES)
    assert not seq.metric
    assert 0.0 <= float(seq[0].min()) <= float(seq[0].max()) <= 1.0


def test_unstabilised_maps_span_the_range(clip: Path, tmp_path: Path) -> None:
    """Issue #11 regression: without the stabiliser (the draft preset) the relative estimates
    were written unnormalised, every pixel saturated: one flat plane, no bokeh."""
    out = tmp_path / "depth"
    assert main(["depth", str(clip), "-o", str(out), "-q", "--no-depth-stabilize"]) == 0
    for path in sorted(out.glob("*.png")):
        d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert int(d.max()) - int(d.min()) > 30_000, path.name
    assert json.loads((out / "depth.json").read_text())["stabilized"] is False


def test_distance_keys_fail_before_the_depth_pass(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Estimated depth is relative: a distance key is refused at once, not after estimating."""
    out = tmp_path / "out.mp4"
    assert main(["refocus", str(clip), "-o", str(out), "--focus", "0s:1.5m"]) == 2
    assert "sets a distance (1.5 m) but the depth is relative" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # no depth was estimated
    assert not out.exists()


def test_export_exr_from_a_model_folder(clip: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "depth"
    code = main(["depth", str(clip), "-o", str(out), "--depth-source", "model", "--depth-model",
                 str(tiny_model), "--format", "exr", "--no-preview", "-q"])  # fmt: skip
    assert code == 0
    maps = sorted(out.glob("*.exr"))
    assert len(maps) == FRAMES
    assert not (out / "preview.mp4").exists()
    with av.open(str(maps[0])) as container:
        frame = next(container.decode(video=0))
        values = frame.to_ndarray()
    assert values.dtype == np.float32
    assert values.shape == (360, 640)
    assert np.isfinite(values).all()
    assert json.loads((out / "depth.json").read_text())["format"] == "exr"


def test_missing_model_weights_say_how_to_fetch(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "depth"
    assert main(["depth", str(clip), "-o", str(out), "--depth-source", "model", "-q"]) == 2
    err = capsys.readouterr().err
    assert "download depth-anything/Depth-Anything-V2-Small-hf" in err
    assert str(tmp_path / "models") in err.replace("\n", "")
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".depth*"))


@pytest.mark.parametrize("case", ["exists", "is_input", "missing_input", "bad_format"])
def test_bad_arguments_write_nothing(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    out = tmp_path / "depth"
    args = ["depth", str(clip), "-o", str(out), "-q"]
    if case == "exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "is_input":
        args = ["depth", str(clip), "-o", str(clip), "-q"]
    elif case == "missing_input":
        args = ["depth", str(tmp_path / "nope.mp4"), "-o", str(out), "-q"]
    else:
        with pytest.raises(SystemExit):
            main([*args, "--format", "tiff"])
        assert not out.exists()
        return
    before = sha256(clip)
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert sha256(clip) == before
    if case == "exists":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()


def test_auto_choice(tiny_model: Path, tmp_path: Path) -> None:
    config = load_config()
    assert choose_depth(config).source == "builtin"
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tiny_model, models / tiny_model.name)
    assert choose_depth(config).source == "model"  # its weights are on this machine now
    with_seq = load_config(overrides={"depth.path": str(SAMPLES / "scene_depth")})
    choice = choose_depth(with_seq)
    assert choice.source == "sequence"  # a user sequence always wins
    assert "(mm)" in choice.description


def test_refocus_estimates_once_then_reuses(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for run, expected in enumerate(("estimated, cached in", "reused from")):
        out = tmp_path / f"out{run}.mp4"
        assert main(["refocus", str(clip), "-o", str(out), "--strength", "6", "--json"]) == 0
        notes = json.loads(capsys.readouterr().out)["notes"]
        assert any("built-in DepthNet" in n for n in notes), notes
        assert any(expected in n for n in notes), notes
        assert len(list(VideoReader(out))) == FRAMES
    cached = list((tmp_path / "cache" / "depth").iterdir())
    assert len(cached) == 1


def test_refocus_reads_an_export(clip: Path, tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    assert main(["depth", str(clip), "-o", str(depth), "--no-preview", "-q"]) == 0
    out = tmp_path / "out.mp4"
    # relative units come from depth.json, so --strength is accepted without --depth-units
    code = main(["refocus", str(clip), "--depth", str(depth), "--strength", "8", "-o", str(out),
                 "-q", "--no-depth-stabilize"])  # fmt: skip
    assert code == 0
    assert len(list(VideoReader(out))) == FRAMES


def _maps(folder: Path, count: int, make: object) -> Path:
    folder.mkdir()
    for i in range(count):
        array = make(i)  # type: ignore[operator]
        if array.dtype == np.float32:
            np.save(folder / f"{i:06d}.npy", array)
        else:
            cv2.imwrite(str(folder / f"{i:06d}.png"), array)
    return folder


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("count", "give exactly one map per frame"),
        ("nan", "NaN or infinite"),
        ("eight_bit", "8-bit depth"),
        ("colour", "a colour image"),
        ("empty", "no depth maps found"),
        ("constant_relative", "same constant value"),
    ],
)
def test_bad_user_depth_is_refused(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str, message: str
) -> None:
    folder = tmp_path / "d"
    shape = (360, 640)
    units = ["--depth-units", "mm"]
    if case == "count":
        _maps(folder, FRAMES - 1, lambda i: np.full(shape, 3000, np.uint16))
    elif case == "nan":
        _maps(folder, FRAMES, lambda i: np.where(np.eye(360, 640) > 0, np.nan, 3.0).astype(
            np.float32))  # fmt: skip
        units = ["--depth-units", "m"]
    elif case == "eight_bit":
        _maps(folder, FRAMES, lambda i: np.full(shape, 200, np.uint8))
    elif case == "colour":
        rng = np.random.default_rng(0)
        _maps(folder, FRAMES, lambda i: rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
    elif case == "empty":
        folder.mkdir()
    else:
        _maps(folder, FRAMES, lambda i: np.full(shape, 7, np.uint16))
        units = ["--depth-units", "relative"]
    out = tmp_path / "out.mp4"
    code = main(["refocus", str(clip), "--depth", str(folder), *units, "-o", str(out), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err.replace("\n", " ")
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))


def test_wrong_size_depth_is_resampled_with_a_warning(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = _maps(tmp_path / "d", FRAMES, lambda i: np.full((90, 160), 3000, np.uint16))
    out = tmp_path / "out.mp4"
    code = main(["refocus", str(clip), "--depth", str(folder), "--depth-units", "mm",
                 "--focus", "0s:3m", "-o", str(out), "-q"])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err.replace("\n", " ")
    assert "resampling the depth" in err
    assert err.count("the depth map is constant") == 1  # said once, not once per frame
    assert len(list(VideoReader(out))) == FRAMES
