"""Exports for compositors (issue #8): what each file holds, its name, and all-or-nothing."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidrefocus.errors import InputError
from vidrefocus.exports import ExportRequest, ExportWriter
from vidrefocus.io.depth import DepthSequence
from vidrefocus.io.maps import read_exr
from vidrefocus.io.sequence import read_image
from vidrefocus.stages import FrameBatch

H, W = 6, 8
RATE = Fraction(24)


def _batch(pts: list[int], disparity: torch.Tensor) -> FrameBatch:
    """Frames with known depth (one value per column band), signed radius and all-in-focus."""
    n = len(pts)
    aif = torch.rand(n, 3, H, W, generator=torch.Generator().manual_seed(3))
    radius = torch.linspace(-9.5, 4.25, W).view(1, 1, 1, W).expand(n, 1, H, W).contiguous()
    depth = disparity.view(1, 1, 1, -1).repeat_interleave(W // disparity.numel(), -1)
    return FrameBatch(
        frames=torch.zeros(n, 3, H, W),
        pts=pts,
        time_base=1 / RATE,
        depth=depth.expand(n, 1, H, W).contiguous(),
        extras={"radius": radius, "all_in_focus": aif},
    )


def _export(
    tmp_path: Path,
    batches: list[FrameBatch],
    *,
    fmt: str = "png",
    metric: bool = True,
    input_path: Path | None = None,
) -> ExportRequest:
    request = ExportRequest(
        depth=tmp_path / "depth", defocus=tmp_path / "radius", all_in_focus=tmp_path / "aif",
        fmt=fmt,
    )  # fmt: skip
    clip = input_path or tmp_path / "clip.mp4"
    with ExportWriter(request, clip, inputs=[clip], rate=RATE) as out:
        out.describe_depth(metric=metric, source="test", stabilized=False)
        for batch in batches:
            out.write(batch)
    return request


# metres 1.2, 3, 8 and infinity (disparity 0)
METRIC = torch.tensor([1 / 1.2, 1 / 3.0, 1 / 8.0, 0.0])


class TestNames:
    def test_video_frames_are_numbered_in_order(self, tmp_path: Path) -> None:
        _export(tmp_path, [_batch([0, 512], METRIC), _batch([1024], METRIC)])
        for folder, extra in (("depth", ["depth.json"]), ("radius", ["defocus.json"]), ("aif", [])):
            names = sorted(p.name for p in (tmp_path / folder).iterdir())
            assert names == sorted(["000000.png", "000001.png", "000002.png", *extra])

    def test_image_sequence_keeps_its_stems(self, tmp_path: Path) -> None:
        seq = tmp_path / "shot"
        seq.mkdir()
        for n in (101, 102):
            cv2.imwrite(str(seq / f"shot_{n:04d}.png"), np.zeros((H, W, 3), np.uint8))
        _export(tmp_path, [_batch([0, 1], METRIC)], fmt="exr", input_path=seq)
        names = sorted(p.name for p in (tmp_path / "aif").iterdir())
        assert names == ["shot_0101.exr", "shot_0102.exr"]


class TestDepth:
    def test_metric_png_is_mm_and_reads_back(self, tmp_path: Path) -> None:
        _export(tmp_path, [_batch([0], METRIC)])
        codes = cv2.imread(str(tmp_path / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED)
        assert codes.dtype == np.uint16
        # infinity is clipped to the farthest code, so the map reads back (0 would not)
        assert np.unique(codes).tolist() == [1200, 3000, 8000, 65535]
        sidecar = json.loads((tmp_path / "depth" / "depth.json").read_text())
        assert (sidecar["units"], sidecar["format"], sidecar["frames"]) == ("mm", "png", 1)
        back = DepthSequence(tmp_path / "depth", units=None, expect_16bit=True)
        assert back.metric
        expected = torch.tensor([1 / 1.2, 1 / 3.0, 1 / 8.0, 1 / 65.535])
        torch.testing.assert_close(back[0][0, 0, 0, ::2], expected, atol=1e-6, rtol=0)

    def test_metric_exr_is_metres(self, tmp_path: Path) -> None:
        _export(tmp_path, [_batch([0], METRIC)], fmt="exr")
        metres = read_exr(tmp_path / "depth" / "000000.exr")
        np.testing.assert_allclose(metres[0, ::2], [1.2, 3.0, 8.0, 1e6], rtol=1e-6)
        assert json.loads((tmp_path / "depth" / "depth.json").read_text())["units"] == "m"
        back = DepthSequence(tmp_path / "depth", units=None)
        torch.testing.assert_close(back[0][0, 0, 0, :6:2], METRIC[:3], rtol=1e-6, atol=0)

    @pytest.mark.parametrize("fmt", ["png", "exr"])
    def test_relative_like_vidrefocus_depth(self, tmp_path: Path, fmt: str) -> None:
        relative = torch.tensor([1.0, 0.6, 0.25, 0.0])
        _export(tmp_path, [_batch([0], relative)], fmt=fmt, metric=False)
        sidecar = json.loads((tmp_path / "depth" / "depth.json").read_text())
        assert (sidecar["units"], sidecar["near_is_bright"]) == ("relative", True)
        back = DepthSequence(tmp_path / "depth", units=None)
        # PNG: 16-bit codes, half a step of rounding
        torch.testing.assert_close(back[0][0, 0, 0, ::2], relative, atol=0.5 / 65535, rtol=0)


class TestDefocusAndFrames:
    def test_png_radius_is_unsigned_x256(self, tmp_path: Path) -> None:
        batch = _batch([0], METRIC)
        _export(tmp_path, [batch])
        path = tmp_path / "radius" / "000000.png"
        codes = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        expected = (batch.extras["radius"][0, 0].abs() * 256).round().numpy()
        np.testing.assert_array_equal(codes, expected)
        assert b"|radius| px = value / 256" in path.read_bytes()
        sidecar = json.loads((tmp_path / "radius" / "defocus.json").read_text())
        assert (sidecar["signed"], sidecar["png_scale"]) == (False, 256)

    def test_exr_radius_keeps_the_sign(self, tmp_path: Path) -> None:
        batch = _batch([0], METRIC)
        _export(tmp_path, [batch], fmt="exr")
        radius = read_exr(tmp_path / "radius" / "000000.exr")
        np.testing.assert_array_equal(radius, batch.extras["radius"][0, 0].numpy())
        assert json.loads((tmp_path / "radius" / "defocus.json").read_text())["signed"]

    @pytest.mark.parametrize(("fmt", "atol"), [("png", 0.5 / 65535), ("exr", 1e-5)])
    def test_all_in_focus_frames(self, tmp_path: Path, fmt: str, atol: float) -> None:
        batch = _batch([0], METRIC)
        _export(tmp_path, [batch], fmt=fmt)
        rgb, bits = read_image(tmp_path / "aif" / f"000000.{fmt}")
        assert bits == (16 if fmt == "png" else 32)  # EXR: linear light, read back encoded
        torch.testing.assert_close(rgb, batch.extras["all_in_focus"][0], atol=atol, rtol=0)


class TestAllOrNothing:
    def test_failure_leaves_nothing(self, tmp_path: Path) -> None:
        request = ExportRequest(depth=tmp_path / "depth", all_in_focus=tmp_path / "aif")
        clip = tmp_path / "clip.mp4"

        def job_fails_after_a_batch() -> None:
            with ExportWriter(request, clip, inputs=[clip], rate=RATE) as out:
                out.describe_depth(metric=True, source="test", stabilized=False)
                out.write(_batch([0], METRIC))
                raise RuntimeError("encoder died")

        with pytest.raises(RuntimeError, match="encoder died"):
            job_fails_after_a_batch()
        assert list(tmp_path.iterdir()) == []  # no folder, no temporary folder

    def test_existing_folder_needs_overwrite(self, tmp_path: Path) -> None:
        (tmp_path / "depth").mkdir()
        (tmp_path / "depth" / "keep.txt").write_text("keep")
        request = ExportRequest(depth=tmp_path / "depth")
        clip = tmp_path / "clip.mp4"
        with pytest.raises(InputError, match="already exists; pass --overwrite"):
            ExportWriter(request, clip, inputs=[clip], rate=RATE)
        assert (tmp_path / "depth" / "keep.txt").read_text() == "keep"
        with ExportWriter(request, clip, inputs=[clip], rate=RATE, overwrite=True) as out:
            out.describe_depth(metric=True, source="test", stabilized=False)
            out.write(_batch([0], METRIC))
        assert sorted(p.name for p in (tmp_path / "depth").iterdir()) == [
            "000000.png",
            "depth.json",
        ]

    @pytest.mark.parametrize(
        ("request_", "inputs", "message"),
        [(ExportRequest(depth=Path("a"), defocus=Path("a")),
          [], "--export-depth and --export-defocus name the same folder"),
         (ExportRequest(defocus=Path("a"), all_in_focus=Path("a/b")),
          [], r"--export-defocus and --export-allinfocus name the same folder \(or one inside"),
         (ExportRequest(depth=Path("scene_depth")), ["scene_depth"], "is the input"),
         (ExportRequest(all_in_focus=Path("frames/aif")), ["frames"], "inside the input folder"),
         (ExportRequest(depth=Path("d"), fmt="tif"), [], "export format 'tif' unknown")],
    )  # fmt: skip
    def test_refused_before_any_work(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        request_: ExportRequest,
        inputs: list[str],
        message: str,
    ) -> None:
        monkeypatch.chdir(tmp_path)
        for name in inputs:
            Path(name).mkdir()
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(InputError, match=message):
            ExportWriter(request_, Path("clip.mp4"), inputs=[Path(i) for i in inputs], rate=RATE)
        assert sorted(tmp_path.rglob("*")) == before
