"""Issue #11: the layered renderer works on the tiles a layer reaches, with the whole frame's
result (`vidrefocus.layer_tiles`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vidrefocus.layer_tiles as layer_tiles
import vidrefocus.layered as layered
from vidrefocus.aperture import ApertureSpec
from vidrefocus.config import load_config
from vidrefocus.layer_tiles import box_counts, box_mean, gather, pad_for, plan_tiles, within
from vidrefocus.layered import RenderSettings, render_layered


def _scene(b: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames with point lights and a depth map of a few discs and a step: layers in bands."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g) * 0.8
    image[:, :, ::17, ::23] = 1.0
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    radius = torch.full((b, 1, h, w), -6.0)
    radius[..., : h // 3, :] = 0.0
    # blurred layers that touch the frame's edges, with nearer layers to extend under
    radius[..., :15, :25] = 3.0
    radius[..., -12:, w // 2 : w // 2 + 30] = 2.0
    for i in range(b):
        for _ in range(3):
            cy, cx = (torch.rand(2, generator=g) * torch.tensor([h, w])).tolist()
            r = 6 + 14 * torch.rand(1, generator=g).item()
            disc = (ys - cy) ** 2 + (xs - cx) ** 2 < r * r
            radius[i, 0][disc] = 4 + 6 * torch.rand(1, generator=g).item()
    return image, radius


def _whole_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "plan_tiles", lambda *args, **kwargs: None)


class TestTiledRender:
    @pytest.mark.parametrize(("b", "h", "w"), [(1, 250, 330), (2, 197, 401)])
    @pytest.mark.parametrize("shape", ["disk", "hexagon"])
    def test_same_as_whole_frame(
        self, monkeypatch: pytest.MonkeyPatch, b: int, h: int, w: int, shape: str
    ) -> None:
        spec = ApertureSpec() if shape == "disk" else ApertureSpec("polygon", blades=6)
        settings = RenderSettings(aperture=spec, highlight_gain=4.0)
        image, radius = _scene(b, h, w, seed=h)
        # tiles small enough to pay off on a small frame
        monkeypatch.setattr(layer_tiles, "TILE_SIDES", (16, 32, 64))
        planned: list[bool] = []
        original = layered.plan_tiles

        def spy(support: torch.Tensor, halo: int) -> object:
            tiles = original(support, halo)
            planned.append(tiles is not None)
            return tiles

        monkeypatch.setattr(layered, "plan_tiles", spy)
        tiled = render_layered(image, radius, settings)
        assert any(planned), "no layer ran on tiles: the test would not test them"
        _whole_frame(monkeypatch)
        whole = render_layered(image, radius, settings)
        # float32 prefix sums over a crop vs a whole row: rounding only
        torch.testing.assert_close(tiled, whole, atol=2e-4, rtol=0)

    def test_hidden_map_same_as_whole_frame(self, monkeypatch: pytest.MonkeyPatch) -> None:
        image, radius = _scene(1, 120, 160, seed=3)
        settings = RenderSettings(highlight_gain=4.0)
        monkeypatch.setattr(layer_tiles, "TILE_SIDES", (16, 32, 64))
        tiled = render_layered(image, radius, settings, return_layers=True)
        _whole_frame(monkeypatch)
        whole = render_layered(image, radius, settings, return_layers=True)
        for got, want in zip(tiled, whole, strict=True):
            torch.testing.assert_close(got, want, atol=2e-4, rtol=0)


class TestPlanTiles:
    def test_covers_the_support_and_its_halo(self) -> None:
        support = torch.zeros(2, 1, 200, 300, dtype=torch.bool)
        support[0, 0, 100, 150] = True
        support[1, 0, 0:3, 290:300] = True
        tiles = plan_tiles(support, halo=10, sides=(16, 32, 64))
        assert tiles is not None
        covered = torch.zeros(2, 200, 300, dtype=torch.bool)
        for b, y, x in tiles.origins():
            covered[b, y : y + tiles.side, x : x + tiles.side] = True
        reach = F.max_pool2d(support.float(), 21, stride=1, padding=10)[:, 0] > 0
        assert bool(covered[reach].all())
        assert covered.float().mean() < 0.6

    def test_whole_frame_when_cheaper(self) -> None:
        support = torch.ones(1, 1, 200, 300, dtype=torch.bool)
        assert plan_tiles(support, halo=10) is None

    def test_gather_cuts_tiles_with_their_halo(self) -> None:
        x = torch.arange(2 * 50 * 70, dtype=torch.float32).view(2, 1, 50, 70) + 1
        support = torch.zeros(2, 1, 50, 70, dtype=torch.bool)
        support[1, 0, 40, 5] = True
        tiles = plan_tiles(support, halo=4, sides=(8, 16))
        assert tiles is not None
        crops = gather(pad_for(x, 6, tiles.side), 6, tiles)
        for crop, (b, y, x0) in zip(crops, tiles.origins(), strict=True):
            inner = crop[0, 4 : 4 + tiles.side, 4 : 4 + tiles.side]
            want = x[b, 0, y : y + tiles.side, x0 : x0 + tiles.side]
            torch.testing.assert_close(inner[: want.shape[0], : want.shape[1]], want)
            assert bool((inner[want.shape[0] :, :] == 0).all())  # beyond the frame: zeros


def test_box_mean_on_a_crop_matches_the_frame() -> None:
    x = torch.rand(1, 2, 40, 60, dtype=torch.float64)
    r = 5
    zero = torch.zeros(1, dtype=torch.long)
    whole = box_mean(x, r, box_counts(zero, 40, 40, r), box_counts(zero, 60, 60, r))
    # a crop reaching past the frame's top-left, zeros there, counts from the frame
    y0, x0, n = -7, -3, 30
    crop = F.pad(x, (3, 0, 7, 0))[..., :n, :n]
    counts = (box_counts(torch.tensor([y0]), n, 40, r), box_counts(torch.tensor([x0]), n, 60, r))
    got = box_mean(crop, r, *counts)
    # valid where the box lies inside the crop
    torch.testing.assert_close(got[..., 7 : n - r, 3 : n - r], whole[..., : n - 7 - r, : n - 3 - r])
    assert within(torch.tensor([y0]), n, 40)[0, :7].sum() == 0


def test_fast_quality_stays_close_to_full() -> None:
    """`bokeh.quality: fast` (the draft preset) trades a little accuracy for speed."""
    image, radius = _scene(1, 200, 300, seed=5)
    full = render_layered(image, radius * 1.5, RenderSettings(highlight_gain=4.0))
    fast = render_layered(
        image, radius * 1.5, RenderSettings(highlight_gain=4.0, **layered.QUALITY["fast"])
    )
    psnr = 10 * torch.log10(1.0 / ((full - fast) ** 2).mean()).item()
    assert 30.0 < psnr < 60.0, psnr  # different, and close
    assert load_config("draft").bokeh.quality == "fast"
    assert load_config("default").bokeh.quality == "full"
