"""BokehNet: the layered renderer plus a small learned fill for disocclusions and depth edges."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from vidrefocus.errors import InputError
from vidrefocus.layered import RenderSettings, render_layered

__all__ = ["BokehNet", "FillNet", "default_weights_path", "load_fill_net", "reach_mask", "refine"]

log = logging.getLogger(__name__)

# Blur radii are fed to the net divided by this, so typical values land in [-1, 1].
RADIUS_SCALE_PX = 16.0
# The net changes only pixels within this distance of disoccluded content (where the
# classical fill extended a layer); every other pixel is the classical render exactly.
REACH_PX = 3
# Disocclusion below this share is treated as none.
HIDDEN_MIN = 0.02
# Context around the pixels the net may change when it runs on a crop: more than its
# receptive field (about 30 px), so a crop gives the whole frame's result there.
CONTEXT_PX = 48


def default_weights_path() -> Path:
    return Path(__file__).parent / "weights" / "bokehnet_fill.safetensors"


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.GELU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class FillNet(nn.Module):
    """A two-level U-Net that corrects the classical render where it guessed.

    Inputs (concatenated): the classical render, the all-in-focus frame (both display-referred),
    the signed blur radius / 16 px and the disocclusion map. Output: the render plus a gated
    residual, applied only within `REACH_PX` of content the renderer extended under a nearer
    layer (a disocclusion share above 2 %; frames without any are not touched); the gate lets
    the net leave every pixel it cannot improve as rendered.

    Args:
        width: channels at full resolution (doubled at each level).
    """

    in_channels = 8

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.width = width
        self.enc0 = _ConvBlock(self.in_channels, width)
        self.enc1 = _ConvBlock(width, width * 2)
        self.mid = _ConvBlock(width * 2, width * 2)
        self.dec1 = _ConvBlock(width * 4, width * 2)
        self.dec0 = _ConvBlock(width * 3, width)
        self.head = nn.Conv2d(width, 4, 3, padding=1)
        # Start as the identity: a zero residual, whatever the gate. The gate starts mostly
        # open (sigmoid(2) = 0.88): a nearly closed one (bias -4) starves the residual of
        # gradient, and two runs (one from half open at lr 2e-3) ended with it shut.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[3] = 2.0

    def forward(
        self, render: Tensor, image: Tensor, signed_radius: Tensor, hidden: Tensor
    ) -> Tensor:
        """Refine a render.

        Args:
            render: (B, 3, H, W) display-referred classical render.
            image: (B, 3, H, W) display-referred all-in-focus frame.
            signed_radius: (B, 1, H, W) px.
            hidden: (B, 1, H, W) in [0, 1], disocclusion map from the renderer.
        Returns:
            (B, 3, H, W) display-referred in [0, 1].
        """
        h, w = render.shape[-2:]
        x = torch.cat([render, image, signed_radius / RADIUS_SCALE_PX, hidden], dim=1)
        # Pad to a multiple of 4 so any frame size works (two 2x downsamplings), crop after.
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        e0 = self.enc0(x)
        e1 = self.enc1(F.avg_pool2d(e0, 2))
        m = self.mid(F.avg_pool2d(e1, 2))
        d1 = self.dec1(torch.cat([F.interpolate(m, scale_factor=2.0, mode="bilinear"), e1], 1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, scale_factor=2.0, mode="bilinear"), e0], 1))
        out = self.head(d0)[..., :h, :w]
        residual, gate = out[:, :3], torch.sigmoid(out[:, 3:4])
        return (render + reach_mask(hidden) * gate * residual).clamp(0.0, 1.0)


def reach_mask(hidden: Tensor) -> Tensor:
    """(B, 1, H, W) 1 where the fill may change a pixel (near disoccluded content), else 0."""
    k = 2 * REACH_PX + 1
    return F.max_pool2d((hidden > HIDDEN_MIN).to(hidden.dtype), k, stride=1, padding=REACH_PX)


def refine(fill: FillNet, render: Tensor, image: Tensor, radius: Tensor, hidden: Tensor) -> Tensor:
    """Run the fill on each frame's crop around its disocclusions (none: the render as is).

    The crop is the bounding box of the pixels the net may change, widened by `CONTEXT_PX`
    and aligned to the net's 4 px grid, so the changed pixels are those of a whole-frame pass.
    """
    out = render.clone()
    h, w = render.shape[-2:]
    for b in range(render.shape[0]):
        ys, xs = torch.nonzero(reach_mask(hidden[b : b + 1])[0, 0], as_tuple=True)
        if ys.numel() == 0:
            continue
        y0 = max(0, int(ys.min()) - CONTEXT_PX) // 4 * 4
        x0 = max(0, int(xs.min()) - CONTEXT_PX) // 4 * 4
        y1, x1 = min(h, int(ys.max()) + 1 + CONTEXT_PX), min(w, int(xs.max()) + 1 + CONTEXT_PX)
        box = (slice(b, b + 1), slice(None), slice(y0, y1), slice(x0, x1))
        out[box] = fill(render[box], image[box], radius[box], hidden[box])
    return out


def load_fill_net(path: Path | None = None, device: str | torch.device = "cpu") -> FillNet:
    """Load trained fill weights (safetensors only) with the width stored in their metadata.

    Raises:
        InputError: the file is missing or not a BokehNet fill checkpoint.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise InputError(
            f"{path}: BokehNet fill weights not found. Train them with "
            "`python -m vidrefocus.train bokeh` or run with the learned fill off (--no-fill)."
        )
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    width = int(json.loads(meta.get("config", "{}")).get("width", 24))
    net = FillNet(width)
    try:
        net.load_state_dict(load_file(str(path)))
    except RuntimeError as err:
        raise InputError(f"{path}: not a BokehNet fill checkpoint ({err}).") from err
    return net.to(device).eval()


class BokehNet(nn.Module):
    """Physically based layered bokeh, optionally refined by the learned fill.

    Args:
        settings: renderer settings (aperture, highlights, layering).
        fill: a trained `FillNet`, or None to use the classical renderer alone.

    Example:
        >>> net = BokehNet(RenderSettings(), fill=None)
        >>> out = net(torch.rand(1, 3, 32, 48), torch.zeros(1, 1, 32, 48))
        >>> tuple(out.shape)
        (1, 3, 32, 48)
    """

    def __init__(self, settings: RenderSettings, fill: FillNet | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.fill = fill

    @torch.no_grad()
    def forward(self, image: Tensor, signed_radius: Tensor) -> Tensor:
        """Render bokeh.

        Args:
            image: (B, 3, H, W) float, display-referred, all in focus.
            signed_radius: (B, 1, H, W) float, px, > 0 in front of the focal plane.
        Returns:
            (B, 3, H, W) float, display-referred in [0, 1].
        """
        if self.fill is None:
            return render_layered(image, signed_radius, self.settings)
        render, hidden = render_layered(image, signed_radius, self.settings, return_layers=True)
        return refine(self.fill, render, image.clamp(0, 1), signed_radius, hidden)

    def describe(self) -> dict[str, object]:
        info = {k: v for k, v in asdict(self.settings).items() if k != "aperture"}
        info["aperture"] = self.settings.aperture.shape
        info["learned_fill"] = self.fill is not None
        return info
