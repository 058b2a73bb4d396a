"""Issue #4: BokehNet = layered renderer + learned fill; focus pulls on the sample."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from media import SAMPLES
from vidrefocus.errors import InputError
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.layered import RenderSettings, render_layered
from vidrefocus.models.bokehnet import BokehNet, FillNet, default_weights_path, load_fill_net
from vidrefocus.optics import blur_scale_px


class TestFillNet:
    @pytest.mark.parametrize(("h", "w"), [(32, 48), (33, 47), (5, 7)])
    def test_untrained_net_is_identity_any_size(self, h: int, w: int) -> None:
        net = FillNet(8).eval()
        render = torch.rand(2, 3, h, w)
        with torch.no_grad():
            out = net(
                render, torch.rand(2, 3, h, w), torch.randn(2, 1, h, w), torch.rand(2, 1, h, w)
            )
        # the gate starts nearly closed (sigmoid(-4)) and the residual at exactly zero
        torch.testing.assert_close(out, render, atol=1e-6, rtol=0)

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        net = FillNet(8)
        torch.nn.init.normal_(net.head.weight, std=0.01)
        path = tmp_path / "fill.safetensors"
        save_file(
            {k: v.contiguous() for k, v in net.state_dict().items()},
            str(path),
            metadata={"config": json.dumps({"width": 8})},
        )
        loaded = load_fill_net(path)
        x = [torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16),
             torch.zeros(1, 1, 16, 16)]  # fmt: skip
        with torch.no_grad():
            torch.testing.assert_close(loaded(*x), net.eval()(*x))

    def test_missing_weights_message(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match=r"vidrefocus\.train bokeh"):
            load_fill_net(tmp_path / "nope.safetensors")

    def test_wrong_file(self, tmp_path: Path) -> None:
        path = tmp_path / "other.safetensors"
        save_file({"w": torch.zeros(3)}, str(path))
        with pytest.raises(InputError, match="not a BokehNet fill checkpoint"):
            load_fill_net(path)


def test_bokehnet_without_fill_is_the_renderer() -> None:
    image = torch.rand(1, 3, 40, 56)
    radius = torch.linspace(-6, 6, 56).view(1, 1, 1, 56).expand(1, 1, 40, 56).contiguous()
    torch.testing.assert_close(
        BokehNet(RenderSettings())(image, radius), render_layered(image, radius, RenderSettings())
    )


def test_shipped_weights_load_and_have_a_card() -> None:
    net = load_fill_net()
    card = json.loads(default_weights_path().with_suffix(".json").read_text())
    import hashlib

    assert card["sha256"] == hashlib.sha256(default_weights_path().read_bytes()).hexdigest()
    assert isinstance(net, FillNet)
    # The fill is on by default only if its card shows it helps on held-out scenes.
    m = card["metrics"]
    helps = m["with_net"]["psnr_db"] > m["without_net"]["psnr_db"]
    from vidrefocus.config import load_config

    assert load_config().bokeh.learned_fill == helps


def _local_contrast(img: torch.Tensor, cx: float, cy: float, r: int) -> float:
    """Mean absolute Laplacian of luma in a box: high when sharp."""
    luma = (0.2126 * img[0] + 0.7152 * img[1] + 0.0722 * img[2]).numpy().astype(np.float32)
    lap = np.abs(cv2.Laplacian(luma, cv2.CV_32F, ksize=3))
    y0, x0 = int(cy) - r, int(cx) - r
    return float(lap[y0 : y0 + 2 * r, x0 : x0 + 2 * r].mean())


def test_focus_pull_moves_sharpness_on_the_sample() -> None:
    """Render the sample's all-in-focus frame with its known depth, focused first on the
    near ball (1.2 m) then on the card (3 m): sharpness moves from one to the other."""
    meta = json.loads((SAMPLES / "scene.json").read_text())
    index = 10  # the ball is clear of the card here
    frame = RandomAccessReader(SAMPLES / "scene_sharp.mp4").at_indices([index])[0].rgb
    depth_mm = cv2.imread(str(SAMPLES / "scene_depth" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
    disparity = torch.from_numpy(1000.0 / depth_mm.astype(np.float32))[None, None]
    per_frame = meta["frames"][index]
    ball, card = per_frame["near_center_px"], per_frame["middle_center_px"]
    contrasts = {}
    for name, focus_m in (("near", 1.2), ("card", 3.0)):
        k = blur_scale_px(focus_m, 50.0, 2.0, 36.0, 640)
        radius = k * (disparity - 1.0 / focus_m)
        out = render_layered(frame[None], radius, RenderSettings())[0]
        contrasts[name] = (_local_contrast(out, *ball, 12), _local_contrast(out, *card, 12))
    print("local contrast (ball, card):", contrasts)
    ball_near, card_near = contrasts["near"]
    ball_card, card_card = contrasts["card"]
    assert ball_near > 2 * ball_card  # the ball loses its sharpness when focus leaves it
    assert card_card > 2 * card_near  # and the card gains it
