"""Stage factories: the picklable recipes workers build their stages from."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from media import SAMPLES, ffmpeg
from vidrefocus.config import load_config
from vidrefocus.errors import ConfigError
from vidrefocus.io.reader import VideoReader
from vidrefocus.refocus import refocus
from vidrefocus.runtime.driver import run_job
from vidrefocus.runtime.factory import IDENTITY, BuiltStages, StageFactory, refocus_factory

FRAMES = 4


class TestStageFactory:
    def test_identity(self, vfr_clip: Path) -> None:
        built = IDENTITY.build(vfr_clip, load_config())
        assert built == BuiltStages(stages=[])
        assert pickle.loads(pickle.dumps(IDENTITY)) == IDENTITY

    @pytest.mark.parametrize(
        ("target", "kwargs", "message"),
        [
            ("no_colon", {}, "package.module:function"),
            ("vidrefocus.runtime.factory:", {}, "package.module:function"),
            ("vidrefocus.runtime.factory:identity_stages", {"x": object()}, "JSON values"),
        ],
    )
    def test_malformed(self, target: str, kwargs: dict, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            StageFactory(target, kwargs)

    @pytest.mark.parametrize(
        ("target", "message"),
        [
            ("vidrefocus.no_such_module:f", "cannot import"),
            ("vidrefocus.runtime.factory:no_such_function", "has no function"),
        ],
    )
    def test_unresolvable(self, target: str, message: str, vfr_clip: Path) -> None:
        with pytest.raises(ConfigError, match=message):
            StageFactory(target).build(vfr_clip, load_config())

    def test_prepare(self, vfr_clip: Path, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"package\.module:function"):
            StageFactory("vidrefocus.runtime.factory:identity_stages", prepare="no_colon")
        assert IDENTITY.prepared(vfr_clip, load_config(), tmp_path) is IDENTITY
        broken = StageFactory(IDENTITY.target, prepare="vidrefocus.runtime.factory:nothing")
        with pytest.raises(ConfigError, match="has no function"):
            broken.prepared(vfr_clip, load_config(), tmp_path)

    def test_refocus_factory_paths_are_absolute(self) -> None:
        factory = refocus_factory("0s:3m", Path("keys.yaml"))
        assert Path(factory.kwargs["focus_file"]).is_absolute()
        assert factory.identity()["kwargs"]["focus"] == "0s:3m"

    def test_refocus_factory_focus_points_only_when_given(self) -> None:
        # issue #8: without --focus-point a job keeps its identity, so --resume still finds
        # the chunks of a run made before the flag existed
        assert set(refocus_factory("0s:3m").kwargs) == {"focus", "focus_file"}
        factory = refocus_factory("0s:3m", None, ["10,20@1s"])
        assert factory.identity()["kwargs"]["focus_points"] == ["10,20@1s"]


@pytest.mark.slow
def test_chunked_refocus_equals_single_pass(tmp_path: Path) -> None:
    clip = tmp_path / "shot.mp4"
    ffmpeg("-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-frames:v", str(FRAMES),
           "-c", "copy", str(clip))  # fmt: skip
    depth = tmp_path / "depth"
    depth.mkdir()
    for i in range(FRAMES):
        shutil.copy(SAMPLES / "scene_depth" / f"{i:06d}.png", depth / f"{i:06d}.png")
    config = load_config(
        overrides={"encode.codec": "ffv1", "depth.path": str(depth), "bokeh.learned_fill": False}
    )
    single, chunked = tmp_path / "single.mkv", tmp_path / "chunked.mkv"
    points = ["139,240@f2"]  # the ball, tracked (issue #8: --focus-point reaches the workers)
    _, plan = refocus(clip, single, config, focus="0s:3m", focus_points=points)
    factory = refocus_factory("0s:3m", focus_points=points)
    result = run_job(clip, chunked, config, factory=factory, workers=0)
    assert any(n.startswith("tracked keyframe 1 point (139.0, 240.0)") for n in result.notes)
    assert list(result.notes) == plan.notes
    a, b = list(VideoReader(single)), list(VideoReader(chunked))
    assert [f.pts for f in a] == [f.pts for f in b]
    assert len(b) == FRAMES
    # stateless stages on the same batches: the same bits
    assert all(torch.equal(x.rgb, y.rgb) for x, y in zip(a, b, strict=True))
