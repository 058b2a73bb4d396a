"""DepthNet: the built-in depth estimator, monocular cues plus motion parallax, no download.

A small U-Net sees the frame and, when there is a previous frame, its motion parallax: the
optical flow from this frame to the previous one (`models.flow`, DIS), reduced to what
depth explains. A global affine motion is fitted to the confident flow (the camera's pan,
tilt, roll and zoom look affine over a frame); what it leaves is parallax and independent
motion. Both residuals (after the affine fit, and after the translation only, which keeps
the parallax of slanted planes that an affine fit absorbs), the translation itself and the
flow's forward-backward confidence are passed as extra channels, divided by the median flow
so they do not depend on the frame size or the speed of the camera (`parallax_channels`).

The output is relative disparity (larger = nearer, any scale and shift). Trained on the
project's synthetic layered clips (`vidrefocus.train.depth`) with the parallax channels
zeroed in part of the samples, so the same net works on a first frame or a locked-off shot.
`BuiltinDepth` runs it over a sequence at a reduced internal resolution and upsamples.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from vidrefocus.errors import InputError
from vidrefocus.models.flow import DISFlow, luma_u8
from vidrefocus.models.layers import ResBlock

__all__ = [
    "PARALLAX_CHANNELS",
    "BuiltinDepth",
    "DepthNet",
    "DepthNetConfig",
    "config_metadata",
    "default_weights_path",
    "load_depthnet",
    "parallax_channels",
]

log = logging.getLogger(__name__)

# Residual after the affine fit (2), residual after the translation (2), translation (2),
# confidence (1).
PARALLAX_CHANNELS = 7
# What `load_depthnet` expects in the metadata: bump when the inputs change meaning.
FORMAT = "vidrefocus.depthnet/1"
# Normalised parallax channels are clipped here: beyond a few median flows a value says
# "moves on its own or flow failed", not a finer depth.
_PARALLAX_CLIP = 6.0


def default_weights_path() -> Path:
    return Path(__file__).parent / "weights" / "depthnet.safetensors"


@dataclass(frozen=True)
class DepthNetConfig:
    """Architecture of a DepthNet.

    Attributes:
        widths: channels per level, at 1/2, 1/4, ... of the net's input (the first level
            works on a 2x space-to-depth of the input, so nothing runs at full resolution).
        blocks: residual blocks per level in the encoder (the decoder has one per level).
    """

    widths: tuple[int, ...] = (16, 32, 48, 64, 96)
    blocks: tuple[int, ...] = (1, 1, 1, 2, 2)

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this (2x space-to-depth, then halvings)."""
        return 2 ** len(self.widths)


class DepthNet(nn.Module):
    """The network; stateless (`BuiltinDepth` runs it over a sequence).

    Args:
        config: widths and depth.
    """

    def __init__(self, config: DepthNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or DepthNetConfig()
        widths, blocks = self.config.widths, self.config.blocks
        if len(widths) != len(blocks) or len(widths) < 2:
            raise InputError(f"widths and blocks need the same length >= 2; got {self.config}.")
        self.stem = nn.Conv2d(4 * (3 + PARALLAX_CHANNELS), widths[0], 3, padding=1)
        self.enc = nn.ModuleList(
            nn.Sequential(*[ResBlock(w) for _ in range(n)])
            for w, n in zip(widths, blocks, strict=True)
        )
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, 2, stride=2) for a, b in itertools.pairwise(widths)
        )
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(b, 4 * a, 1), nn.PixelShuffle(2))
            for a, b in itertools.pairwise(widths)
        )
        self.dec = nn.ModuleList(ResBlock(w) for w in widths[:-1])
        self.head = nn.Conv2d(widths[0], 4, 3, padding=1)

    def forward(self, frames: Tensor, parallax: Tensor | None = None) -> Tensor:
        """Relative disparity of a batch of frames.

        Args:
            frames: (B, 3, H, W) float32 RGB in [0, 1], display-referred; any size >= 1x1.
            parallax: (B, PARALLAX_CHANNELS, H, W) float32 from `parallax_channels`, or None
                (no previous frame: the channels are zero).
        Returns:
            (B, 1, H, W) float32 relative disparity, larger = nearer, any scale and shift.
        Raises:
            InputError: frames that are not (B, 3, H, W) or parallax of another shape.
        """
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise InputError(f"frames must be (B, 3, H, W); got {tuple(frames.shape)}.")
        b, _, h, w = frames.shape
        if parallax is None:
            parallax = frames.new_zeros(b, PARALLAX_CHANNELS, h, w)
        elif parallax.shape != (b, PARALLAX_CHANNELS, h, w):
            raise InputError(
                f"parallax must be {(b, PARALLAX_CHANNELS, h, w)}; got {tuple(parallax.shape)}."
            )
        m = self.config.multiple
        ph, pw = (-h) % m, (-w) % m
        x = torch.cat([frames - 0.5, parallax], 1)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        feats = []
        y = self.stem(F.pixel_unshuffle(x, 2))
        for i, enc in enumerate(self.enc):
            if i:
                y = self.down[i - 1](y)
            y = enc(y)
            feats.append(y)
        for i in range(len(self.dec) - 1, -1, -1):
            y = self.dec[i](self.up[i](y) + feats[i])
        disparity = F.pixel_shuffle(self.head(y), 2)
        return disparity[..., :h, :w]


def parallax_channels(flow: Tensor, confidence: Tensor, min_confident: float = 0.05) -> Tensor:
    """The net's motion input: flow minus the camera's global motion, scale-free.

    Fits `flow(x) ~ A x + t` (x centred, in units of half the long side) to the confident
    pixels by weighted least squares, twice: the second fit leaves out pixels whose residual
    is above twice the mean (independently moving objects, near layers), so the fit follows
    the dominant background. Everything is divided by the median confident flow magnitude
    plus 0.2% of the long side (so a still camera does not blow up the noise).

    Args:
        flow: (B, 2, H, W) float32 px, from frame t to t-1 (`models.flow` convention).
        confidence: (B, 1, H, W) float32 in [0, 1], forward-backward check of `flow`.
        min_confident: below this fraction of confident pixels the motion is not trusted and
            the channels of that image are all zero (as for a first frame).
    Returns:
        (B, 7, H, W) float32: affine residual (x, y), translation residual (x, y),
        translation (x, y, constant planes), all in median flows and clipped to +-6; then the
        confidence.
    Raises:
        InputError: shapes that are not a flow and its confidence.
    """
    if flow.ndim != 4 or flow.shape[1] != 2 or confidence.shape != (
        flow.shape[0], 1, *flow.shape[2:]
    ):  # fmt: skip
        raise InputError(
            f"flow must be (B, 2, H, W) and confidence (B, 1, H, W); got "
            f"{tuple(flow.shape)} and {tuple(confidence.shape)}."
        )
    b, _, h, w = flow.shape
    flow = flow.float().nan_to_num(0.0)
    conf = confidence.float().nan_to_num(0.0).clamp(0.0, 1.0)
    half = max(h, w) / 2.0
    ys = (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) / half
    xs = (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) / half
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    design_t = torch.stack([gx.flatten(), gy.flatten(), torch.ones(h * w)])  # (3, N)
    values = flow.flatten(2)  # (B, 2, N)
    conf_flat = conf.flatten(1)  # (B, N)
    weight = conf_flat
    ridge = 1e-4 * torch.eye(3)
    fitted = torch.zeros_like(values)
    coef = torch.zeros(b, 2, 3)
    for _ in range(2):
        wd = design_t * weight[:, None]  # (B, 3, N)
        normal = wd @ design_t.T + ridge  # (B, 3, 3)
        coef = torch.linalg.solve(normal, wd @ values.transpose(1, 2)).transpose(1, 2)
        fitted = coef @ design_t  # (B, 2, N)
        res = (values - fitted).square().sum(1).sqrt()
        mean_res = (res * weight).sum(1) / weight.sum(1).clamp_min(1e-6)
        weight = conf_flat * (res <= 2.0 * mean_res[:, None] + 1e-3).float()
    magnitude = values.square().sum(1).sqrt().masked_fill(conf_flat <= 0.5, float("nan"))
    median = magnitude.nanmedian(dim=1).values.nan_to_num(0.0)
    scale = (median + 0.002 * max(h, w)).view(b, 1, 1, 1)
    translation = coef[:, :, 2].reshape(b, 2, 1, 1)
    affine_res = flow - fitted.view(b, 2, h, w)
    out = torch.cat(
        [
            affine_res / scale,
            (flow - translation) / scale,
            (translation / scale).expand(b, 2, h, w),
        ],
        1,
    ).clamp(-_PARALLAX_CLIP, _PARALLAX_CLIP)
    trusted = (conf.flatten(1).mean(1) >= min_confident).float().view(b, 1, 1, 1)
    return torch.cat([out, conf], 1) * trusted


class BuiltinDepth:
    """The built-in depth estimator (`models.depth.DepthEstimator`): DepthNet over a sequence.

    Each frame is area-downscaled so its long side is at most `side_px` and the net runs
    there; its output is upsampled bilinearly to the frame size (the edge-alignment stage
    snaps edges afterwards). The flow to the previous frame (DIS "fast", forward-backward
    checked) is computed with a long side of at most `flow_side_px`, where DIS costs less
    and which is nearer the 144 px of the training clips, then upsampled to the net's size
    and turned into the parallax input. The first frame after `reset()`, or after a change
    of frame size, takes its parallax from the next frame of the same call when there is
    one (measured on held-out sequences: a mono first frame, carried on by the stabiliser,
    cost 6% AbsRel over the shot); alone, it has none.

    Args:
        net: a DepthNet (eval mode); `load_depthnet()` gives the packaged one.
        side_px: long side the net works at, >= 32.
        flow_side_px: long side the flow is computed at, >= 32.

    Raises:
        InputError: a `side_px` or `flow_side_px` below 32.

    Example:
        >>> depth = BuiltinDepth(load_depthnet())
        >>> tuple(depth(torch.rand(2, 3, 72, 128)).shape)
        (2, 1, 72, 128)
    """

    name = "built-in DepthNet"
    metric = False

    def __init__(self, net: DepthNet, side_px: int = 384, flow_side_px: int = 256) -> None:
        if side_px < 32 or flow_side_px < 32:
            raise InputError(
                f"side_px and flow_side_px must be >= 32; got {side_px} and {flow_side_px}."
            )
        self.net = net.eval()
        self.side_px = side_px
        self.flow = DISFlow("fast", max_side_px=flow_side_px)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new shot or chunk starts)."""
        self._previous = None

    def _small(self, frame: Tensor) -> Tensor:
        _, _, h, w = frame.shape
        scale = self.side_px / max(h, w)
        if scale >= 1.0:
            return frame
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        return F.interpolate(frame, size=size, mode="area")

    @torch.inference_mode()
    def __call__(self, frames: Tensor) -> Tensor:
        """Depth of consecutive frames.

        Args:
            frames: (B, 3, H, W) float32 RGB in [0, 1], display-referred, in presentation
                order; the next call continues where this one ended unless `reset()`. NaN
                reads as 0.
        Returns:
            (B, 1, H, W) float32 relative disparity, larger = nearer, finite.
        Raises:
            InputError: frames that are not (B, 3, H, W).
        """
        if not isinstance(frames, Tensor) or frames.ndim != 4 or frames.shape[1] != 3:
            shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
            raise InputError(f"frames must be a (B, 3, H, W) RGB tensor; got {shape}.")
        device = next(self.net.parameters()).device
        clean = frames.float().nan_to_num(0.0).clamp(0.0, 1.0)
        smalls = [self._small(f) for f in clean.split(1)]
        lumas = [luma_u8(s)[0] for s in smalls]
        out = []
        for i, (frame, small, luma) in enumerate(zip(clean.split(1), smalls, lumas, strict=True)):
            partner = self._previous
            if (partner is None or partner.shape != luma.shape) and i + 1 < len(lumas):
                # A shot's first frame has no previous one: the next frame shows the same
                # parallax (mirrored), which the net reads as well (camera motion in training
                # goes either way). Without it the first frame is mono, a worse estimate that
                # the stabiliser would then carry into the frames after it.
                partner = lumas[i + 1]
            parallax = None
            if partner is not None and partner.shape == luma.shape:
                flow, ok = self.flow.luma_flow_and_confidence(luma, partner)
                parallax = parallax_channels(
                    torch.from_numpy(flow).permute(2, 0, 1)[None],
                    torch.from_numpy(ok)[None, None].float(),
                ).to(device)
            self._previous = luma
            disparity = self.net(small.to(device), parallax)
            if disparity.shape[-2:] != frame.shape[-2:]:
                disparity = F.interpolate(
                    disparity, size=frame.shape[-2:], mode="bilinear", align_corners=False
                )
            out.append(disparity.nan_to_num(0.0).to(frames.device))
        return torch.cat(out)


def load_depthnet(path: Path | str | None = None, device: str | torch.device = "cpu") -> DepthNet:
    """Load trained DepthNet weights (safetensors only); the architecture is in their metadata.

    Args:
        path: the weights, or None for the packaged ones.
        device: where the net runs.
    Returns:
        A DepthNet in eval mode.
    Raises:
        InputError: the file is missing or is not a DepthNet checkpoint of this version.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise InputError(
            f"{path}: DepthNet weights not found. They ship inside the package; reinstall it, "
            "or train them with `python -m vidrefocus.train depth --config "
            "configs/train/depthnet.yaml`."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"metadata format {meta.get('format')!r}, expected {FORMAT!r}")
        arch = json.loads(meta["config"])
        config = DepthNetConfig(widths=tuple(arch["widths"]), blocks=tuple(arch["blocks"]))
        net = DepthNet(config)
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        net.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, OSError, InputError) as err:
        raise InputError(
            f"{path}: not a DepthNet checkpoint ({err}). Use the packaged weights or retrain."
        ) from err
    return net.to(device).eval()


def config_metadata(config: DepthNetConfig) -> dict[str, str]:
    """safetensors metadata that `load_depthnet` reads back."""
    return {"format": FORMAT, "config": json.dumps(asdict(config))}
