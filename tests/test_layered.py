"""Issue #4: the layered renderer against the exact reference and physical checks."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch

from vidrefocus.aperture import ApertureSpec, make_kernel
from vidrefocus.color import srgb_to_linear
from vidrefocus.eval.reference_render import reference_render
from vidrefocus.layered import RenderSettings, box_blur, layer_weights, render_layered
from vidrefocus.train.scenes import LayeredScene, make_scene

SHAPES = {
    "disk": ApertureSpec(),
    "hexagon": ApertureSpec("polygon", blades=6, rotation_deg=15),
    "curved 9 blades": ApertureSpec("polygon", blades=9, curvature=0.5),
    "star": ApertureSpec("star", star_points=5, star_inner=0.45),
    "heart": ApertureSpec("heart"),
    "anamorphic": ApertureSpec(squeeze=1.6),
}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / ((a - b) ** 2).mean().item())


class TestAgainstReference:
    # (scene, focus on, measured MAE in 1/255 with highlight gain 12, measured PSNR dB);
    # the reference sees the hidden content of every layer, the renderer only the frame.
    CASES: ClassVar = [
        ("step", "near", 3.23, 29.5),
        ("step", "far", 2.74, 30.4),
        ("occluder", "near", 3.27, 32.3),
        ("occluder", "far", 4.64, 28.2),
        ("three", "near", 6.04, 27.7),
        ("three", "far", 6.94, 26.3),
    ]

    @pytest.mark.parametrize(("kind", "focus", "mae", "psnr"), CASES)
    def test_scene(self, kind: str, focus: str, mae: float, psnr: float) -> None:
        scene = make_scene(kind, 96, 128, seed=1)
        image, disp = scene.visible()
        focus_disp = float(disp.max() if focus == "near" else disp.min())
        k = 12.0
        ref = reference_render(
            scene, [k * (d - focus_disp) for d in scene.disparity], SHAPES["disk"]
        )
        out = render_layered(
            image[None], (k * (disp - focus_disp))[None], RenderSettings(highlight_gain=12.0)
        )[0]
        inner = (slice(None), slice(12, -12), slice(12, -12))  # away from the frame border
        got_mae = (out - ref)[inner].abs().mean().item() * 255
        got_psnr = _psnr(out[inner], ref[inner])
        print(f"{kind}/{focus}: MAE {got_mae:.2f}/255, PSNR {got_psnr:.1f} dB")
        # margin: 0.5/255 MAE and 1 dB over the figures measured when this test was written
        assert got_mae <= mae + 0.5
        assert got_psnr >= psnr - 1.0


class TestPhysics:
    @pytest.mark.parametrize("name", list(SHAPES))
    def test_point_light_renders_the_aperture(self, name: str) -> None:
        spec = SHAPES[name]
        h = w = 81
        image = torch.zeros(1, 3, h, w)
        image[0, :, 40, 40] = 1.0
        radius = 14.0
        r = torch.full((1, 1, h, w), -radius)
        out = render_layered(image, r, RenderSettings(aperture=spec))
        lin = srgb_to_linear(out[0, 1])
        kernel = make_kernel(spec, radius)
        s = kernel.shape[-1]
        crop = lin[40 - s // 2 : 40 + s // 2 + 1, 40 - s // 2 : 40 + s // 2 + 1]
        a = crop > 0.25 * crop.max()
        b = kernel > 0.25 * kernel.max()
        iou = (a & b).sum().item() / (a | b).sum().item()
        print(f"{name}: IoU {iou:.3f}")
        assert iou >= 0.9

    # Cases where little hidden content can show: a single receding surface, and one blurred
    # foreground over a sharp background (with two stacked occluders the revealed card and
    # wall add ~1.4%, as they would through a real lens). Behind a sharp occluder, a blurred
    # background also shows light from its hidden part around the edge (partial occlusion:
    # the exact reference does the same), so the mean legitimately changes there.
    @pytest.mark.parametrize(
        ("kind", "focus"), [("slant", "near"), ("slant", "far"), ("step", "far"),
                            ("occluder", "far")],
    )  # fmt: skip
    def test_brightness_is_conserved(self, kind: str, focus: str) -> None:
        scene = make_scene(kind, 96, 128, seed=2)
        # no clipped highlights: their true energy is unknown to the renderer
        scene = LayeredScene([c.clamp(0, 1) for c in scene.rgb], scene.alpha, scene.disparity)
        image, disp = scene.visible()
        focus_disp = float(disp.max() if focus == "near" else disp.min())
        r = 10.0 * (disp - focus_disp)
        out = render_layered(image[None], r[None], RenderSettings())[0]
        inner = (slice(None), slice(16, -16), slice(16, -16))
        before = srgb_to_linear(image)[inner].mean().item()
        after = srgb_to_linear(out)[inner].mean().item()
        print(f"{kind}/{focus}: linear mean {before:.4f} -> {after:.4f}")
        assert abs(after / before - 1) <= 0.005

    def test_in_focus_pixels_unchanged(self) -> None:
        scene = make_scene("three", 96, 128, seed=3)
        image, disp = scene.visible()
        focus = float(disp.max())  # the near disc is in focus, everything else behind it
        r = 9.0 * (disp - focus)
        out = render_layered(image[None], r[None], RenderSettings(highlight_gain=8.0))[0]
        sharp = (r.abs() < 0.5).expand_as(out)
        assert sharp.any()
        assert (out - image).abs()[sharp].max().item() <= 1 / 255

    def test_foreground_blur_spills_over_sharp_subject(self) -> None:
        scene = make_scene("occluder", 96, 128, seed=4)
        image, disp = scene.visible()
        r = 10.0 * (disp - float(disp.min()))  # mid plane sharp, near disc blurred
        out = render_layered(image[None], r[None], RenderSettings())[0]
        ring = (disp[0] < 1.0) & (box_blur((disp > 1.0).float()[None], 4)[0, 0] > 0)
        # Sharp pixels right next to the blurred disc take some of its colour.
        assert (out - image).abs().sum(0)[ring].mean().item() > 0.02

    def test_no_dark_halo_at_depth_edges(self) -> None:
        # Uniform grey everywhere, a depth step in the middle: nothing may change.
        image = torch.full((1, 3, 64, 96), 0.5)
        r = torch.zeros(1, 1, 64, 96)
        r[..., 48:] = -12.0
        out = render_layered(image, r, RenderSettings())
        assert (out - image).abs().max().item() <= 1 / 255

    def test_weights_partition_unity(self) -> None:
        r = torch.linspace(-20, 20, 401).view(1, 1, 1, 401)
        centres = torch.tensor([-20.0, -10, -4, -3, -2, -1, 0, 1, 2, 3, 4, 10, 20])
        w = layer_weights(r, centres)
        torch.testing.assert_close(w.sum(1), torch.ones(1, 1, 401))
        assert (w[:, 6][r[:, 0].abs() <= 0.5] == 1).all()


def test_bad_shapes() -> None:
    from vidrefocus.errors import InputError

    with pytest.raises(InputError, match="signed_radius"):
        render_layered(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 9), RenderSettings())


@pytest.mark.parametrize("radius", [1, 3, 8, 30])
def test_box_blur_matches_brute_force(radius: int) -> None:
    x = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    ref = torch.zeros_like(x)
    for i in range(17):
        for j in range(23):
            win = x[..., max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
            ref[..., i, j] = win.mean(dim=(-1, -2))
    torch.testing.assert_close(box_blur(x, radius), ref, atol=1e-12, rtol=0)


def test_cat_eye_changes_the_shape_across_the_frame() -> None:
    """Optical vignetting: bokeh balls are round at the centre and cut towards the corners."""
    h = w = 129
    image = torch.zeros(1, 3, h, w)
    for y, x in ((64, 64), (14, 14)):
        image[0, :, y, x] = 1.0
    r = torch.full((1, 1, h, w), -10.0)
    plain = srgb_to_linear(render_layered(image, r, RenderSettings())[0, 1])
    spec = ApertureSpec(cat_eye=0.8)
    eye = srgb_to_linear(render_layered(image, r, RenderSettings(aperture=spec))[0, 1])

    def area(img: torch.Tensor, y: int, x: int) -> int:
        patch = img[y - 12 : y + 13, x - 12 : x + 13]
        return int((patch > 0.25 * patch.max()).sum())

    assert abs(area(eye, 64, 64) - area(plain, 64, 64)) <= 0.05 * area(plain, 64, 64)
    assert area(eye, 14, 14) < 0.85 * area(plain, 14, 14)
