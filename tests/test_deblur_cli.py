"""`vidrefocus deblur` end to end: real files, the real DeblurNet (packaged weights), no mocks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import ffmpeg, sha256
from vidrefocus.cli import main
from vidrefocus.config import load_config
from vidrefocus.io.probe import probe
from vidrefocus.io.reader import VideoReader
from vidrefocus.refocus import plan_refocus
from vidrefocus.stages import DeblurStage, DepthStage

H, W = 48, 64


# -- media ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deblur_media")


@pytest.fixture(scope="module")
def tenbit_short(work: Path, tenbit_clip: Path) -> Path:
    """The first 5 frames of the 10-bit 4:2:2 ProRes sample with its PCM audio (intra-only, so
    a stream copy cuts exactly)."""
    out = work / "tenbit5.mov"
    ffmpeg("-i", str(tenbit_clip), "-map", "0:v", "-map", "0:a", "-frames:v", "5",
           "-t", str(5 / 24), "-c", "copy", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def phone_short(work: Path, phone_clip: Path) -> Path:
    """The first 6 frames of the rotated phone clip, with its audio, tags and timecode."""
    out = work / "phone6.mp4"
    ffmpeg("-i", str(phone_clip), "-map", "0:v", "-map", "0:a", "-frames:v", "6",
           "-t", str(6 / 30), "-c", "copy", "-map_metadata", "0",
           "-movflags", "+use_metadata_tags", "-timecode", "10:00:00:00", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def vfr_short(work: Path, vfr_clip: Path) -> Path:
    """The first 6 frames of the variable-frame-rate sample (its first GOP is 10 frames)."""
    out = work / "vfr6.mkv"
    ffmpeg("-i", str(vfr_clip), "-map", "0:v", "-frames:v", "6", "-c", "copy", str(out))
    return out


@pytest.fixture(scope="module")
def small_clip(work: Path) -> Path:
    """4 frames of 64x48 H.264 with AAC audio."""
    out = work / "small.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r=24:d={4 / 24}",
           "-f", "lavfi", "-i", f"sine=f=440:d={4 / 24}:sample_rate=48000",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
           str(out))  # fmt: skip
    return out


def _scene(h: int = H, w: int = W, shift: int = 0) -> np.ndarray:
    """(h, w, 3) float64 in [0, 1]: ramps and a bright square, moved right by `shift` px."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), np.full((h, w), 0.4)], axis=-1)
    y0, x0 = h // 4, w // 4 + shift
    img[y0 : y0 + h // 3, x0 : x0 + w // 3] = (0.95, 0.2, 0.1)
    return img


def _write(path: Path, img: np.ndarray, dtype: type) -> Path:
    """Store an RGB(A) or grey float image in [0, 1] with OpenCV (BGR order) as `dtype`."""
    if dtype is np.float32:
        arr = img.astype(np.float32)
    else:
        arr = np.round(img * np.iinfo(dtype).max).astype(dtype)
    if arr.ndim == 3:
        arr = np.concatenate([arr[:, :, 2::-1], arr[:, :, 3:]], axis=2)
    assert cv2.imwrite(str(path), arr)
    return path


def _read(path: Path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    return arr


@pytest.fixture(scope="module")
def frames16(work: Path) -> Path:
    """A folder of four 16-bit RGB PNG frames shot_0101.png ... with a moving square."""
    folder = work / "frames16"
    folder.mkdir()
    for i in range(4):
        _write(folder / f"shot_{101 + i:04d}.png", _scene(shift=2 * i), np.uint16)
    return folder


def _leftovers(*folders: Path) -> list[str]:
    return sorted(p.name for f in folders if f.is_dir() for p in f.iterdir() if "tmp" in p.name)


def _files(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(folder.iterdir())}


def _decoded(path: Path) -> list[tuple[int, tuple[int, ...]]]:
    return [(f.pts, tuple(f.rgb.shape)) for f in VideoReader(path)]


# -- video ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "ext"), [("tenbit_short", ".mov"), ("vfr_short", ".mkv"), ("phone_short", ".mp4")]
)
def test_video_keeps_frames_pts_size_format_and_audio(
    clip: str, ext: str, request: pytest.FixtureRequest, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    src: Path = request.getfixturevalue(clip)
    before = sha256(src)
    out = tmp_path / f"sharp{ext}"
    assert main(["deblur", str(src), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "DeblurNet: packaged weights, temporal" in summary["notes"][0]
    a, b = probe(src), probe(out)
    assert summary["frames"] == a.video.frame_count == b.video.frame_count
    assert (b.video.width, b.video.height) == (a.video.width, a.video.height)
    assert b.video.pix_fmt == a.video.pix_fmt
    assert b.video.time_base == a.video.time_base
    assert (b.video.rotation, b.video.timecode) == (a.video.rotation, a.video.timecode)
    assert _decoded(out) == _decoded(src)  # every pts, exactly, and every frame's size
    assert [s.codec for s in b.streams if s.kind == "audio"] == [
        s.codec for s in a.streams if s.kind == "audio"
    ]
    assert sha256(src) == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["png", "exr"])
def test_video_defocus_maps_one_per_frame(fmt: str, small_clip: Path, tmp_path: Path) -> None:
    out, maps = tmp_path / "sharp.mp4", tmp_path / "maps"
    args = ["deblur", str(small_clip), "-o", str(out), "--defocus-map", str(maps), "-q"]
    assert main([*args, "--map-format", fmt]) == 0
    frames = probe(out).video.frame_count
    names = sorted(p.name for p in maps.iterdir())
    assert names == [f"{i:06d}.{fmt}" for i in range(frames)]
    for name in names:
        radius = _read_map(maps / name)
        assert radius.shape == (H, W)
        assert np.isfinite(radius).all()
        assert radius.min() >= 0


def _read_map(path: Path, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """A defocus map in px, read without vidrefocus (OpenCV for PNG, the ffmpeg CLI for EXR)."""
    if path.suffix == ".png":
        codes = _read(path)
        assert codes.dtype == np.uint16
        assert codes.shape == shape
        return codes / 256.0
    raw = path.with_name(f"{path.stem}.raw")
    ffmpeg("-i", str(path), "-f", "rawvideo", "-pix_fmt", "grayf32le", str(raw))
    data = np.fromfile(raw, dtype="<f4")
    raw.unlink()
    assert data.size == shape[0] * shape[1]
    return data.reshape(shape)


def test_chunked_run_in_process(small_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharp.mp4"
    assert main(["deblur", str(small_clip), "-o", str(out), "--workers", "0", "-q"]) == 0
    assert _decoded(out) == _decoded(small_clip)


# -- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "dtype"),
    [(".png", np.uint8), (".png", np.uint16), (".jpg", np.uint8), (".tif", np.uint8),
     (".tif", np.uint16), (".tif", np.float32)],
)  # fmt: skip
def test_image_keeps_format_size_and_depth(
    ext: str, dtype: type, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _write(tmp_path / f"in{ext}", _scene(), dtype)
    before = sha256(src)
    out = tmp_path / f"out{ext}"
    assert main(["deblur", str(src), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 1
    a, b = _read(src), _read(out)
    assert (b.dtype, b.shape) == (a.dtype, a.shape)
    scale = 1.0 if dtype is np.float32 else np.iinfo(dtype).max
    assert np.isfinite(b.astype(np.float64)).all()
    # the same scene: DeblurNet restores, it does not invent
    assert np.abs(b.astype(np.float64) - a).mean() / scale < 0.1
    assert sha256(src) == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("bits", [8, 16])
def test_rgba_alpha_is_kept_unchanged(bits: int, tmp_path: Path) -> None:
    dtype = np.uint8 if bits == 8 else np.uint16
    rgb = _scene()
    alpha = np.linspace(0, 1, W)[None, :].repeat(H, 0)[:, :, None]
    src = _write(tmp_path / "in.png", np.concatenate([rgb, alpha], axis=2), dtype)
    out = tmp_path / "out.png"
    assert main(["deblur", str(src), "-o", str(out), "-q"]) == 0
    a, b = _read(src), _read(out)
    assert (b.dtype, b.shape) == (a.dtype, (H, W, 4))
    np.testing.assert_array_equal(b[:, :, 3], a[:, :, 3])


@pytest.mark.parametrize(
    ("name", "img"),
    [
        ("grey_constant", np.full((H, W), 0.5)),  # one channel, one value
        ("rgb_constant", np.full((H, W, 3), 0.5)),
        ("black", np.zeros((H, W, 3))),
        ("one_pixel", _scene(1, 1)),
        ("three_pixels", _scene(3, 3)),
    ],
)
def test_degenerate_images_are_processed(name: str, img: np.ndarray, tmp_path: Path) -> None:
    src = _write(tmp_path / f"{name}.png", img, np.uint8)
    out, radius = tmp_path / "out.png", tmp_path / "radius.png"
    code = main(["deblur", str(src), "-o", str(out), "--defocus-map", str(radius), "-q"])
    assert code == 0
    a, b = _read(src), _read(out)
    assert (b.dtype, b.shape) == (a.dtype, a.shape)  # a grey file stays one channel
    assert _read(radius).shape == a.shape[:2]
    if name.endswith("constant"):
        # a flat frame has nothing to sharpen: it stays close to flat
        assert np.abs(b.astype(np.float64) - 128).max() < 16


def test_folder_in_folder_out_with_maps(frames16: Path, tmp_path: Path) -> None:
    before = _files(frames16)
    out, maps = tmp_path / "sharp", tmp_path / "maps"
    assert main(["deblur", str(frames16), "-o", str(out), "--defocus-map", str(maps), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert sorted(p.name for p in maps.iterdir()) == sorted(before)  # shot_0101.png ...
    for name in before:
        img = _read(out / name)
        assert (img.dtype, img.shape) == (np.uint16, (H, W, 3))
        assert _read(maps / name).shape == (H, W)
    assert _files(frames16) == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("ext", [".png", ".exr"])
def test_image_defocus_map_file(ext: str, tmp_path: Path) -> None:
    src = _write(tmp_path / "in.png", _scene(), np.uint8)
    radius = tmp_path / f"radius{ext}"
    assert main(["deblur", str(src), "-o", str(tmp_path / "out.png"),
                 "--defocus-map", str(radius), "-q"]) == 0  # fmt: skip
    px = _read_map(radius)
    assert px.shape == (H, W)
    assert (px >= 0).all()
    if ext == ".png":
        assert b"tEXt" in radius.read_bytes()
        assert b"radius in px = value / 256" in radius.read_bytes()


def test_png_map_matches_exr_map(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.png", _scene(), np.uint8)
    maps = {}
    for ext in (".png", ".exr"):
        maps[ext] = tmp_path / f"radius{ext}"
        assert main(["deblur", str(src), "-o", str(tmp_path / f"out{ext}.png"),
                     "--defocus-map", str(maps[ext]), "-q"]) == 0  # fmt: skip
    png, exr = _read_map(maps[".png"]), _read_map(maps[".exr"])
    # PNG codes are round(px * 256): half a code of quantisation, below the 65535 clip
    np.testing.assert_allclose(png, np.minimum(exr, 65535 / 256), atol=0.5 / 256 + 1e-6, rtol=0)


@pytest.mark.parametrize("mode", [[], ["--per-frame"]])
def test_deterministic(mode: list[str], frames16: Path, tmp_path: Path) -> None:
    runs = []
    for i in range(2):
        out, maps = tmp_path / f"out{i}", tmp_path / f"maps{i}"
        args = ["deblur", str(frames16), "-o", str(out), "--defocus-map", str(maps), "-q"]
        assert main([*args, *mode]) == 0
        runs.append({p.name: _read(p) for p in [*out.iterdir(), *maps.iterdir()]})
    assert runs[0].keys() == runs[1].keys()
    for name, arr in runs[0].items():
        np.testing.assert_array_equal(arr, runs[1][name], err_msg=name)


# -- user errors: exit 2, one message, nothing written, nothing touched -----------------------


@pytest.fixture
def cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    src = _write(tmp_path / "in.png", _scene(), np.uint8)
    nan = _scene().astype(np.float32)
    nan[5, 7, 1] = np.nan
    bad = _write(tmp_path / "nan.tif", nan, np.float32)
    seq = tmp_path / "seq"
    seq.mkdir()
    _write(seq / "f_0001.tif", _scene(), np.float32)
    _write(seq / "f_0002.tif", nan, np.float32)
    one_by_one = tmp_path / "job.yaml"
    one_by_one.write_text("runtime:\n  batch_size: 1\n")
    out = tmp_path / "out.png"
    return {
        "nan_tiff": ([str(bad), "-o", str(tmp_path / "out.tif")], "nan.tif: contains NaN"),
        "nan_mid_sequence": (  # fails after the first frame and its map were written
            [
                str(seq),
                "-o",
                str(tmp_path / "out"),
                "--defocus-map",
                str(tmp_path / "maps"),
                "--config",
                str(one_by_one),
            ],
            "f_0002.tif: contains NaN",
        ),
        "missing": ([str(tmp_path / "nope.png"), "-o", str(out)], "no such file"),
        "missing_video": (
            [str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o.mp4")],
            "no such file",
        ),
        "output_is_input": ([str(src), "-o", str(src), "--overwrite"], "is the input"),
        "folder_output_is_input": ([str(seq), "-o", str(seq), "--overwrite"], "is the input"),
        "folder_output_inside_input": ([str(seq), "-o", str(seq / "sharp")], "inside the input"),
        "folder_output_named_like_image": (
            [str(seq), "-o", str(tmp_path / "sharp.tif")],
            "without an image extension",
        ),
        "unwritable_folder": ([str(src), "-o", "/proc/vidrefocus-out.png"], "not writable"),
        "unwritable_map": (
            [str(src), "-o", str(out), "--defocus-map", "/proc/vidrefocus-map.png"],
            "not writable",
        ),
        "missing_folder": ([str(src), "-o", str(tmp_path / "no" / "o.png")], "does not exist"),
        "other_format": ([str(src), "-o", str(tmp_path / "out.jpg")], "same format"),
        "map_extension": (
            [str(src), "-o", str(out), "--defocus-map", str(tmp_path / "m.tif")],
            ".png (16-bit",
        ),
        "map_is_output": ([str(src), "-o", str(out), "--defocus-map", str(out)], "same path"),
        "missing_weights": (
            [str(src), "-o", str(out), "--weights", str(tmp_path / "w.st")],
            "weights not found",
        ),
        "chunked_map": (
            [
                str(src),
                "-o",
                str(tmp_path / "o.mp4"),
                "--workers",
                "0",
                "--defocus-map",
                str(tmp_path / "maps"),
            ],
            "chunked runs",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["nan_tiff", "nan_mid_sequence", "missing", "missing_video", "output_is_input",
     "folder_output_is_input", "folder_output_inside_input",
     "folder_output_named_like_image", "unwritable_folder",
     "unwritable_map", "missing_folder", "other_format", "map_extension", "map_is_output",
     "missing_weights", "chunked_map"],
)  # fmt: skip
def test_user_error_exit_2(
    case: str,
    cases: dict[str, tuple[list[str], str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, message = cases[case]
    before = {p.relative_to(tmp_path): sha256(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["deblur", *args, "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 6  # one paragraph, wrapped
    after = {p.relative_to(tmp_path): sha256(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no output, no temporary file, inputs untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "job.yaml", "nan.tif", "seq"]


def test_existing_outputs_need_overwrite(frames16: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharp"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    assert main(["deblur", str(frames16), "-o", str(out), "-q"]) == 2
    assert (out / "precious.txt").read_text() == "keep"
    assert main(["deblur", str(frames16), "-o", str(out), "-q", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in frames16.iterdir())
    assert _leftovers(tmp_path) == []


# -- refocus --deblur -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def depth_mm(work: Path, small_clip: Path) -> Path:
    """One 16-bit depth map in mm per frame of `small_clip`: near on the left, far right."""
    folder = work / "depth"
    folder.mkdir()
    depth = np.linspace(1000, 8000, W)[None, :].repeat(H, 0).astype(np.uint16)
    for i in range(probe(small_clip).video.frame_count):
        cv2.imwrite(str(folder / f"{i:06d}.png"), depth)
    return folder


def test_refocus_with_deblur(
    small_clip: Path, depth_mm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "refocused.mp4"
    assert main(["refocus", str(small_clip), "--depth", str(depth_mm), "--focus", "0s:2m",
                 "--deblur", "-o", str(out), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert any(n.startswith("DeblurNet:") for n in summary["notes"])
    assert _decoded(out) == _decoded(small_clip)


def test_refocus_deblurs_first_only_when_enabled(small_clip: Path, depth_mm: Path) -> None:
    for enabled in (False, True):
        config = load_config(overrides={"depth.path": str(depth_mm), "deblur.enabled": enabled})
        stages = plan_refocus(small_clip, config, focus="0s:2m").stages
        assert isinstance(stages[0], DeblurStage) == enabled
        assert isinstance(stages[int(enabled)], DepthStage)
        assert sum(isinstance(s, DeblurStage) for s in stages) == int(enabled)


def test_refocus_no_deblur_overrides_config(
    small_clip: Path, depth_mm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text("deblur:\n  enabled: true\n")
    out = tmp_path / "refocused.mp4"
    assert main(["refocus", str(small_clip), "--depth", str(depth_mm), "--focus", "0s:2m",
                 "--config", str(cfg), "--no-deblur", "-o", str(out), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert not any(n.startswith("DeblurNet:") for n in summary["notes"])
