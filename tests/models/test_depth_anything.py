"""Depth Anything V2 provider: loading and its errors, pre-processing, batching, tiling.

No checkpoint is downloaded: a tiny randomly initialised model of the same architecture
(DINOv2 backbone + DPT neck and head, hidden size 32) is saved with `save_pretrained` and loaded
back through every lookup path.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from vidrefocus.errors import InputError
from vidrefocus.models.depth import DepthEstimator
from vidrefocus.models.depth_anything import (
    HUB_IDS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DepthAnything,
    align_to_reference,
    auto_tile_grid,
    depth_anything_config,
    find_local_weights,
    load_depth_anything,
    merge_tiles,
    model_input_size,
    preprocess,
    random_depth_anything,
    tile_boxes,
    tile_weights,
)

SMALL_REPO = HUB_IDS["small"].split("/")[-1]
# Small model inputs keep the tests fast; the architecture runs at any multiple of 14.
FAST = 56


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Depth Anything checkpoint as `save_pretrained` writes it."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,  # the neck reads four distinct layers
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=518,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        patch_size=14,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=4,
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():
        # The library's init (std 0.02) makes an almost constant map; unit-gain weights and a
        # positive last bias give a map that varies, so batching and tiling have something to
        # get wrong.
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, p[0].numel() ** -0.5)
        model.head.conv3.bias.fill_(1.0)
    folder = tmp_path_factory.mktemp("da") / "tiny-depth-anything"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def est(tiny_folder: Path) -> DepthAnything:
    return load_depth_anything(tiny_folder, input_size=FAST, batch_size=2)


@pytest.fixture
def no_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache and an empty vidrefocus model dir."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("VIDREFOCUS_MODELS", str(tmp_path / "models"))
    return tmp_path


def _fake_hf_cache(root: Path, hub_id: str, files: Path) -> None:
    # The layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/}.
    repo = root / ("models--" + hub_id.replace("/", "--"))
    commit = "0" * 40
    shutil.copytree(files, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


class TestLoading:
    def test_from_folder(self, tiny_folder: Path) -> None:
        est = load_depth_anything(tiny_folder)
        assert isinstance(est, DepthEstimator)
        assert est.name == "Depth Anything (tiny-depth-anything)"
        assert est.metric is False
        assert not est.model.training
        assert est.dtype == torch.float32

    def test_size_name_from_models_dir(
        self, tiny_folder: Path, no_hf_cache: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        shutil.copytree(tiny_folder, no_hf_cache / "models" / SMALL_REPO)
        est = DepthAnything.load("small", local_only=True)
        assert est.name == "Depth Anything V2 Small"
        assert find_local_weights("Small") == no_hf_cache / "models" / SMALL_REPO

    def test_size_name_from_hf_cache(self, tiny_folder: Path, no_hf_cache: Path) -> None:
        _fake_hf_cache(no_hf_cache / "hf", HUB_IDS["small"], tiny_folder)
        assert find_local_weights("small") == HUB_IDS["small"]
        assert find_local_weights(HUB_IDS["small"]) == HUB_IDS["small"]
        est = load_depth_anything("small", local_only=True)
        assert est.name == "Depth Anything V2 Small"

    def test_missing_weights_name_the_fetch_command(self, no_hf_cache: Path) -> None:
        folder = no_hf_cache / "models" / SMALL_REPO
        with pytest.raises(InputError) as info:
            load_depth_anything("small", local_only=True)
        msg = str(info.value)
        assert f"hf download {HUB_IDS['small']} --local-dir {folder}" in msg
        assert str(no_hf_cache / "hf") in msg  # and where the HF cache was searched

    def test_default_respects_hf_hub_offline(
        self, no_hf_cache: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # a download attempt would spend ~25 s on retries here and say "download failed"
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        with pytest.raises(InputError, match="weights not found"):
            load_depth_anything("base")

    def test_missing_hub_id(self, no_hf_cache: Path) -> None:
        with pytest.raises(InputError, match="hf download someone/custom-da --local-dir"):
            load_depth_anything("someone/custom-da", local_only=True)

    def test_find_local_weights_absent(self, tiny_folder: Path, no_hf_cache: Path) -> None:
        assert find_local_weights("small") is None
        assert find_local_weights("large") is None
        assert find_local_weights("someone/custom-da") is None
        assert find_local_weights(no_hf_cache / "nowhere") is None
        assert find_local_weights("tiny") is None  # not a size, a folder nor a hub id
        assert find_local_weights(tiny_folder) == tiny_folder
        assert find_local_weights(str(tiny_folder)) == tiny_folder

    def test_no_such_folder(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="no such folder"):
            load_depth_anything(tmp_path / "nowhere")

    def test_folder_without_config(self, tiny_folder: Path, tmp_path: Path) -> None:
        (tmp_path / "model.safetensors").write_bytes(
            (tiny_folder / "model.safetensors").read_bytes()
        )
        with pytest.raises(InputError, match=rf"{tmp_path}: not a Depth Anything.*no config.json"):
            load_depth_anything(tmp_path)

    def test_config_not_json(self, tmp_path: Path) -> None:
        (tmp_path / "config.json").write_text("{nope")
        with pytest.raises(InputError, match="not readable JSON"):
            load_depth_anything(tmp_path)

    def test_wrong_model_type(self, tiny_folder: Path, tmp_path: Path) -> None:
        shutil.copytree(tiny_folder, tmp_path / "m")
        config = json.loads((tmp_path / "m" / "config.json").read_text())
        (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
        with pytest.raises(InputError, match=r"model_type 'bert', not 'depth_anything'"):
            load_depth_anything(tmp_path / "m")

    def test_corrupt_safetensors(self, tiny_folder: Path, tmp_path: Path) -> None:
        shutil.copytree(tiny_folder, tmp_path / "m")
        (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file" * 4)
        with pytest.raises(InputError, match=rf"{tmp_path / 'm'}: not a loadable"):
            load_depth_anything(tmp_path / "m")

    def test_weights_of_another_model(self, tiny_folder: Path, tmp_path: Path) -> None:
        shutil.copytree(tiny_folder, tmp_path / "m")
        save_file({"other.weight": torch.zeros(2, 2)}, tmp_path / "m" / "model.safetensors")
        with pytest.raises(InputError, match=r"do not match its config\.json"):
            load_depth_anything(tmp_path / "m")

    def test_pickle_only_is_refused(self, tiny_folder: Path, tmp_path: Path) -> None:
        (tmp_path / "config.json").write_text((tiny_folder / "config.json").read_text())
        (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
        with pytest.raises(InputError, match="safetensors weights only"):
            load_depth_anything(tmp_path)

    def test_file_instead_of_folder(self, tiny_folder: Path) -> None:
        with pytest.raises(InputError, match="is a file"):
            load_depth_anything(tiny_folder / "config.json")

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"input_size": 500}, "multiple of the patch size 14"),
            ({"batch_size": 0}, "batch_size 0"),
            ({"tile": (0, 2)}, "a grid"),
            ({"tile": 3}, "a grid"),
            ({"fp16": True}, "fp16 needs a CUDA device"),
        ],
    )
    def test_bad_arguments(self, tiny_folder: Path, kwargs: dict, match: str) -> None:
        with pytest.raises(InputError, match=match):
            load_depth_anything(tiny_folder, **kwargs)


class TestPreprocess:
    @pytest.mark.parametrize(
        ("hw", "expected"),
        [
            ((720, 1280), (518, 924)),  # 1280 * 518 / 720 = 920.9 -> 66 patches
            ((1080, 1920), (518, 924)),
            ((2160, 3840), (518, 924)),
            ((1280, 720), (924, 518)),
            ((37, 53), (518, 742)),
            ((1, 1), (518, 518)),
            ((500, 501), (518, 518)),
        ],
    )
    def test_size(self, hw: tuple[int, int], expected: tuple[int, int]) -> None:
        size = model_input_size(*hw, input_size=518, multiple=14)
        assert size == expected
        assert size[0] % 14 == 0
        assert size[1] % 14 == 0
        assert min(size) == 518
        # aspect kept to within half a patch on the long side
        long_exact = max(hw) * 518 / min(hw)
        assert abs(max(size) - long_exact) <= 7

    def test_constant_frame_normalisation_is_exact(self) -> None:
        rgb = (0.2, 0.5, 0.9)
        frames = torch.tensor(rgb).view(1, 3, 1, 1).expand(2, 3, 45, 61).contiguous()
        x = preprocess(frames, input_size=518, patch_size=14)
        assert x.shape == (2, 3, 518, 700)
        for c in range(3):
            want = (rgb[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
            # atol: the bicubic weights of a constant sum to 1 up to float32 rounding
            torch.testing.assert_close(x[:, c], torch.full_like(x[:, c], want), atol=2e-6, rtol=0)

    def test_matches_the_checkpoints_pil_processor(self) -> None:
        from PIL import Image
        from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

        # A smooth image, downscaled (600x800 -> 518x686) as video frames are.
        rng = np.random.default_rng(0)
        coarse = torch.from_numpy(rng.random((1, 3, 12, 16), dtype=np.float32))
        frame = torch.nn.functional.interpolate(coarse, size=(600, 800), mode="bilinear")
        img = (frame[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        # The processor settings of the Depth-Anything-V2-*-hf preprocessor_config.json.
        proc = DPTImageProcessorPil(
            do_resize=True,
            size={"height": 518, "width": 518},
            keep_aspect_ratio=True,
            ensure_multiple_of=14,
            do_pad=False,
            image_mean=list(IMAGENET_MEAN),
            image_std=list(IMAGENET_STD),
        )
        want = proc(images=Image.fromarray(img), return_tensors="pt")["pixel_values"]
        got = preprocess(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
        assert got.shape == want.shape == (1, 3, 518, 686)
        # PIL rounds the resized image to 8 bits: 1/255/std = 0.018 after normalisation.
        torch.testing.assert_close(got, want, atol=0.02, rtol=0)


class TestInference:
    @pytest.mark.parametrize(("h", "w"), [(37, 53), (1, 1), (5, 7), (53, 37)])
    def test_output_is_frame_size(self, est: DepthAnything, h: int, w: int) -> None:
        depth = est(torch.rand(2, 3, h, w))
        assert depth.shape == (2, 1, h, w)
        assert depth.dtype == torch.float32
        assert bool(torch.isfinite(depth).all())

    def test_matches_the_model_called_directly(self, est: DepthAnything) -> None:
        frames = torch.rand(1, 3, 120, 180)  # larger than the model input: plain upsampling
        with torch.no_grad():
            pred = est.model(pixel_values=preprocess(frames, FAST, 14)).predicted_depth
        want = torch.nn.functional.interpolate(pred[:, None], size=(120, 180), mode="bilinear")
        # atol: antialiased and plain bilinear upsampling differ by float32 rounding only
        torch.testing.assert_close(est(frames), want, atol=1e-5, rtol=0)

    def test_batching_does_not_change_numbers(self, tiny_folder: Path) -> None:
        frames = torch.rand(5, 3, 37, 53)
        batched = load_depth_anything(tiny_folder, input_size=FAST, batch_size=2)(frames)
        single = load_depth_anything(tiny_folder, input_size=FAST, batch_size=1)
        one_by_one = torch.cat([single(f[None]) for f in frames])
        assert float(batched.std()) > 0.01  # the tiny model's map does vary
        # atol: matmuls over a different batch size may sum in another order (float32)
        torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-5)

    def test_nan_counts_as_zero(self, est: DepthAnything) -> None:
        frames = torch.rand(1, 3, 30, 40)
        frames[:, :, 5:15, 10:20] = float("nan")
        depth = est(frames)
        assert bool(torch.isfinite(depth).all())
        torch.testing.assert_close(depth, est(torch.nan_to_num(frames, nan=0.0)), atol=0, rtol=0)
        assert bool(torch.isfinite(est(torch.full((1, 3, 9, 9), float("nan")))).all())

    def test_reset_is_harmless(self, est: DepthAnything) -> None:
        frames = torch.rand(2, 3, 20, 30)
        before = est(frames)
        est.reset()
        torch.testing.assert_close(est(frames), before, atol=0, rtol=0)

    def test_rejects_non_rgb(self, est: DepthAnything) -> None:
        with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
            est(torch.rand(1, 4, 8, 8))
        with pytest.raises(InputError, match="uint8"):
            est(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))

    def test_empty_batch(self, est: DepthAnything) -> None:
        assert est(torch.rand(0, 3, 8, 8)).shape == (0, 1, 8, 8)


def _smooth_map(h: int, w: int) -> torch.Tensor:
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None]
    return (1.0 + torch.sin(3 * x + 2 * y) * torch.cos(4 * y))[None]  # (1, h, w)


class TestTiling:
    @pytest.mark.parametrize(
        ("h", "w", "grid"), [(300, 400, (2, 2)), (101, 257, (3, 4)), (90, 120, (1, 3))]
    )
    def test_boxes_cover_the_frame(self, h: int, w: int, grid: tuple[int, int]) -> None:
        boxes = tile_boxes(h, w, grid, overlap=0.25)
        assert len(boxes) == grid[0] * grid[1]
        assert len({(bh, bw) for _, _, bh, bw in boxes}) == 1  # one size: tiles batch together
        covered = torch.zeros(h, w)
        for t, left, bh, bw in boxes:
            assert 0 <= t <= h - bh
            assert 0 <= left <= w - bw
            covered[t : t + bh, left : left + bw] += 1
        assert float(covered.min()) >= 1

    def test_no_tile_under_32_px(self) -> None:
        assert len(tile_boxes(90, 40, (3, 3))) == 2  # 90 // 32 rows, 40 // 32 column

    @pytest.mark.parametrize(("grid", "overlap"), [((2, 2), 0.25), ((3, 4), 0.4), ((2, 3), 0.0)])
    def test_weights_sum_to_one(self, grid: tuple[int, int], overlap: float) -> None:
        h, w = 211, 307
        boxes = tile_boxes(h, w, grid, overlap)
        weights = tile_weights(boxes)
        assert float(weights.min()) > 0
        total = torch.zeros(1, h, w)
        for wt, (t, left, bh, bw) in zip(weights, boxes, strict=True):
            total[:, t : t + bh, left : left + bw] += wt
        # atol: float32 rounding of cos^2 + sin^2 computed in float64
        torch.testing.assert_close(total, torch.ones(1, h, w), atol=1e-6, rtol=0)

    def test_constant_tiles_stay_constant(self) -> None:
        boxes = tile_boxes(120, 160, (3, 3), 0.3)
        tiles = torch.full((9, 1, boxes[0][2], boxes[0][3]), 2.5)
        torch.testing.assert_close(
            merge_tiles(tiles, boxes, 120, 160), torch.full((1, 120, 160), 2.5)
        )

    def test_affine_tiles_align_back_without_seams(self) -> None:
        # Tiles that are the whole-frame map under another scale and shift each (what a model
        # predicts for a crop, ideally) must merge back into exactly that map.
        h, w = 150, 220
        ref = _smooth_map(h, w)
        boxes = tile_boxes(h, w, (2, 3), 0.25)
        refs = torch.stack([ref[:, t : t + bh, x : x + bw] for t, x, bh, bw in boxes])
        gen = torch.Generator().manual_seed(0)
        scale = torch.rand(len(boxes), 1, 1, 1, generator=gen) * 3 + 0.2
        shift = torch.randn(len(boxes), 1, 1, 1, generator=gen)
        aligned = align_to_reference(scale * refs + shift, refs)
        # atol: float32 round trip through the scale/shift fit (done in float64)
        torch.testing.assert_close(merge_tiles(aligned, boxes, h, w), ref, atol=1e-5, rtol=0)

    def test_align_degenerate_tiles_take_the_reference_mean(self) -> None:
        ref = _smooth_map(20, 30)[None]
        for pred in (torch.full_like(ref, 3.0), -ref):  # constant, anticorrelated
            out = align_to_reference(pred, ref)
            torch.testing.assert_close(out, torch.full_like(ref, float(ref.mean())))

    @pytest.mark.parametrize(
        ("hw", "grid"), [((2160, 3840), (2, 2)), ((1080, 1920), (2, 2)), ((4320, 7680), (4, 4))]
    )
    def test_auto_grid(self, hw: tuple[int, int], grid: tuple[int, int]) -> None:
        assert auto_tile_grid(*hw, input_size=518) == grid

    def test_tiled_estimator(self, tiny_folder: Path, est: DepthAnything) -> None:
        frames = torch.rand(2, 3, 150, 200)
        tiled = load_depth_anything(tiny_folder, input_size=FAST, tile=(2, 2))
        depth = tiled(frames)
        assert depth.shape == (2, 1, 150, 200)
        assert bool(torch.isfinite(depth).all())
        # each tile is fitted to the whole-frame pass, so the blend keeps its mean level
        assert abs(float(depth.mean() - est(frames).mean())) < 0.05 * float(depth.abs().mean())
        # a frame too small to tile falls back to the plain pass
        small = torch.rand(1, 3, 40, 50)
        torch.testing.assert_close(tiled(small), est(small), atol=0, rtol=0)
        auto = load_depth_anything(tiny_folder, input_size=FAST, tile=True)
        assert auto(frames).shape == (2, 1, 150, 200)


class TestRealArchitecture:
    @pytest.mark.parametrize(
        ("size", "params_m"), [("small", 24.8), ("base", 97.5), ("large", 335.3)]
    )
    def test_parameter_count(self, size: str, params_m: float) -> None:
        from transformers import DepthAnythingForDepthEstimation

        # Parameter counts of the released models: Depth Anything V2 paper (Yang et al. 2024),
        # Table 1 / model cards. Built on the meta device: no memory, no init.
        with torch.device("meta"):
            model = DepthAnythingForDepthEstimation(depth_anything_config(size))
        count = sum(p.numel() for p in model.parameters())
        assert math.isclose(count / 1e6, params_m, abs_tol=0.05)

    def test_random_weights_are_labelled(self) -> None:
        state = torch.random.get_rng_state()
        est = random_depth_anything("small", seed=0, input_size=FAST)
        assert "RANDOM weights" in est.name
        assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
        assert est(torch.rand(1, 3, 28, 28)).shape == (1, 1, 28, 28)

    def test_unknown_size(self) -> None:
        with pytest.raises(InputError, match="small, base, large"):
            random_depth_anything("huge")
