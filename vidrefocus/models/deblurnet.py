"""DeblurNet: defocused frames in, all-in-focus frames and a defocus map out, stable over time.

A compact U-Net over a 2x space-to-depth of the frame (so no convolution runs at full
resolution), three levels (1/2, 1/4, 1/8), residual blocks of plain 3x3 convolutions (oneDNN
runs them faster on a CPU than the depthwise convolutions and normalisations of NAFNet
blocks; see the card for the measurement). Two heads: a residual added to the input frame,
and the per-pixel defocus radius in px.

At 1/8 resolution a recurrent fusion block takes the previous frame's bottleneck features,
warped onto the current frame by optical flow (`models.flow`), and mixes them in through a
learned gate multiplied by the flow's forward-backward confidence, so occluded or wrongly
warped features are ignored. `TemporalDeblur` holds that state for a sequence; `reset()` it
at a chunk start. With `temporal=False` every frame is processed on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from vidrefocus.errors import InputError
from vidrefocus.models.flow import DISFlow, temporal_blend, temporal_noise, warp
from vidrefocus.models.layers import ResBlock

__all__ = [
    "DeblurConfig",
    "DeblurNet",
    "DeblurOutput",
    "TemporalDeblur",
    "default_weights_path",
    "load_deblurnet",
]

log = logging.getLogger(__name__)

# Frames are padded to a multiple of this (2x space-to-depth, then two 2x downsamplings).
MULTIPLE = 8
# The defocus head's output unit: a softplus of ~1 means this many px.
DEFOCUS_UNIT_PX = 8.0
# The input blend's smallest tolerance (display units, ~1.3 / 255): 8-bit rounding is noise too.
_NOISE_FLOOR = 0.005


def default_weights_path(variant: str = "default") -> Path:
    name = "deblurnet.safetensors" if variant == "default" else f"deblurnet_{variant}.safetensors"
    return Path(__file__).parent / "weights" / name


@dataclass(frozen=True)
class DeblurConfig:
    """Architecture of a DeblurNet.

    Attributes:
        width: channels at 1/2 resolution (x2 at 1/4, x4 at 1/8).
        blocks: residual blocks at 1/2, 1/4 and 1/8 (encoder and decoder each; the bottleneck
            has this many before and after the temporal fusion).
    """

    width: int = 24
    blocks: tuple[int, int, int] = (1, 1, 2)


def _blocks(ch: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(ch) for _ in range(n)])


class TemporalFusion(nn.Module):
    """Mix warped previous features into the current ones through a confidence-gated update.

    `out = feat + sigmoid(g) * conf * delta`, with `(delta, g)` computed from the current
    features, the warped previous ones (zeroed where not confident) and the confidence. Where
    the flow is not trusted (conf = 0) the output is exactly the current features.
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2 * ch + 1, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, 2 * ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, feat: Tensor, warped: Tensor, conf: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(torch.cat([feat, warped * conf, conf], 1)), True))
        delta, gate = h.chunk(2, dim=1)
        return feat + torch.sigmoid(gate) * conf * delta


@dataclass(frozen=True)
class DeblurOutput:
    """What DeblurNet returns for a batch of frames.

    Attributes:
        sharp: (B, 3, H, W) display-referred in [0, 1].
        defocus: (B, 1, H, W) estimated blur radius of the input, px, >= 0.
        state: (B, C, H/8, W/8) bottleneck features for the next frame (padded grid).
    """

    sharp: Tensor
    defocus: Tensor
    state: Tensor


class DeblurNet(nn.Module):
    """The network; stateless (`TemporalDeblur` runs it over a sequence).

    Args:
        config: width and depth.
    """

    def __init__(self, config: DeblurConfig | None = None) -> None:
        super().__init__()
        self.config = config or DeblurConfig()
        w = self.config.width
        b0, b1, b2 = self.config.blocks
        self.stem = nn.Conv2d(12, w, 3, padding=1)
        self.enc0 = _blocks(w, b0)
        self.down0 = nn.Conv2d(w, 2 * w, 2, stride=2)
        self.enc1 = _blocks(2 * w, b1)
        self.down1 = nn.Conv2d(2 * w, 4 * w, 2, stride=2)
        self.mid_in = _blocks(4 * w, b2)
        self.fusion = TemporalFusion(4 * w)
        self.mid_out = _blocks(4 * w, b2)
        self.up1 = nn.Sequential(nn.Conv2d(4 * w, 8 * w, 1), nn.PixelShuffle(2))
        self.dec1 = _blocks(2 * w, b1)
        self.up0 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 1), nn.PixelShuffle(2))
        self.dec0 = _blocks(w, b0)
        self.head = nn.Conv2d(w, 12, 3, padding=1)
        self.defocus_head = nn.Conv2d(w, 4, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def state_channels(self) -> int:
        return 4 * self.config.width

    def forward(
        self,
        frames: Tensor,
        previous: Tensor | None = None,
        flow: Tensor | None = None,
        confidence: Tensor | None = None,
    ) -> DeblurOutput:
        """Deblur a batch of frames (each with its own previous state, if any).

        Args:
            frames: (B, 3, H, W) display-referred, nominally [0, 1]; any size >= 1x1.
            previous: (B, C, h8, w8) state of the previous frame (`DeblurOutput.state`), or
                None (first frame, or per-frame mode).
            flow: (B, 2, H, W) px, from these frames to the previous ones (`models.flow`).
            confidence: (B, 1, H, W) in [0, 1], where `flow` is trusted.
        Returns:
            A `DeblurOutput` at the input size.
        """
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise InputError(f"frames must be (B, 3, H, W); got {tuple(frames.shape)}.")
        _, _, h, w = frames.shape
        ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(frames, (0, pw, 0, ph), mode=mode) if ph or pw else frames
        e0 = self.enc0(self.stem(F.pixel_unshuffle(x - 0.5, 2)))
        e1 = self.enc1(self.down0(e0))
        m = self.mid_in(self.down1(e1))
        if previous is not None:
            if flow is None or confidence is None:
                raise ValueError("a previous state needs the flow and its confidence")
            small_flow, small_conf = _to_grid(flow, confidence, m.shape[-2:], (ph, pw))
            m = self.fusion(m, warp(previous, small_flow), small_conf)
        state = m
        m = self.mid_out(m)
        d1 = self.dec1(self.up1(m) + e1)
        d0 = self.dec0(self.up0(d1) + e0)
        residual = F.pixel_shuffle(self.head(d0), 2)
        defocus = F.softplus(F.pixel_shuffle(self.defocus_head(d0), 2)) * DEFOCUS_UNIT_PX
        sharp = (x + residual)[..., :h, :w].clamp(0.0, 1.0)
        return DeblurOutput(sharp, defocus[..., :h, :w], state)


def _to_grid(
    flow: Tensor, confidence: Tensor, size: tuple[int, int], pad: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Flow and confidence on the 1/8 feature grid: padded like the frame, area-averaged,
    flow rescaled to grid px."""
    ph, pw = pad
    if ph or pw:
        flow = F.pad(flow, (0, pw, 0, ph), mode="replicate")
        confidence = F.pad(confidence, (0, pw, 0, ph), value=0.0)
    small_flow = F.adaptive_avg_pool2d(flow, size) / MULTIPLE
    small_conf = F.adaptive_avg_pool2d(confidence, size)
    return small_flow, small_conf


class TemporalDeblur:
    """Run DeblurNet over a sequence, frame after frame, carrying warped features.

    Flow is computed between consecutive *input* frames (the only thing a video has), with
    DIS on downscaled luma, and checked forward-backward. The same flow carries three things:

    - the input: before the network sees a frame, it is blended with the previous frame's
      denoised input, warped, where the two differ by no more than `noise_sigmas` times the
      frame's own noise (`temporal_noise`, measured over time on this pair), so sensor noise
      and compression are averaged out over frames rather than sharpened;
    - the network's bottleneck features (learned fusion), which keep structure stable;
    - the previous output, blended in by `history` where it agrees with the current one to
      within `tolerance` after being clamped to the current output's 3x3 neighbourhood
      (temporal anti-aliasing's ghost guard), which keeps fine grain from flickering.

    Both blends act only where the flow is trusted, and their clamps keep them within what the
    current frame supports, so motion and cuts pass through. Defaults measured on synthetic
    sequences (BENCHMARKS.md, "Flicker on noisy footage"): with noisy input the input blend
    cuts E_warp from 2.0x to 1.25x the ground truth's, and the flow on frames averaged 2x
    (`flow_scale`) to 1.07x; the sharp sample still passes at 40.2 dB at worst (43.0 dB
    without the input blend). The tolerance is wide (12 sigma) because the clamp to the
    current frame's neighbourhood, not the tolerance, is what stops ghosts. The flow is the
    lever that is left: with the flow of the noise-free frames the same steps reach 0.59x.

    Args:
        net: a DeblurNet (eval mode).
        temporal: carry state between frames (False: every frame on its own).
        history: weight of the warped previous output in [0, 1) (0 = features only).
        tolerance: differences between the warped previous output and the current one well
            above this (display units) are real changes, not noise: no blend there.
        denoise: weight of the warped previous (denoised) input in [0, 1) (0 = none).
        noise_sigmas: the input blend's tolerance in units of the measured noise.
        flow_side_px: long side of the luma DIS sees.
        flow_scale: at most this fraction of the frame's size for DIS (0.5: a 2x average first,
            which halves the noise DIS sees; frames from 640 px up are already reduced more
            by `flow_side_px`). On noisy synthetic sequences it takes E_warp from 1.25x to
            1.07x the ground truth's (BENCHMARKS.md, "Flicker on noisy footage: the flow").
    """

    def __init__(
        self,
        net: DeblurNet,
        *,
        temporal: bool = True,
        history: float = 0.7,
        tolerance: float = 0.05,
        denoise: float = 0.9,
        noise_sigmas: float = 12.0,
        flow_side_px: int = 320,
        flow_scale: float = 0.5,
    ) -> None:
        for name, value in (("history", history), ("denoise", denoise)):
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name} must be in [0, 1); got {value}.")
        self.net = net.eval()
        self.temporal = temporal
        self.history = history
        self.tolerance = tolerance
        self.denoise = denoise
        self.noise_sigmas = noise_sigmas
        self.flow_scale = flow_scale
        self.flow = (
            DISFlow("fast", max_side_px=flow_side_px, max_scale=flow_scale) if temporal else None
        )
        self._state: Tensor | None = None
        self._previous: Tensor | None = None
        self._denoised: Tensor | None = None
        self._output: Tensor | None = None

    def reset(self) -> None:
        """Forget the previous frame (chunk start, scene cut)."""
        self._state = None
        self._previous = None
        self._denoised = None
        self._output = None

    @torch.inference_mode()
    def __call__(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Deblur consecutive frames.

        Args:
            frames: (B, 3, H, W) float32 display-referred in [0, 1], in time order.
        Returns:
            sharp (B, 3, H, W) and defocus radius (B, 1, H, W) in px.
        """
        sharp, defocus = [], []
        for frame in frames.split(1):
            frame = frame.nan_to_num(0.0).clamp(0.0, 1.0)
            prev, flow, conf = None, None, None
            if (
                self.temporal
                and self._state is not None
                and self._previous is not None
                and self._previous.shape == frame.shape
            ):
                flow, conf = self.flow.flow_and_confidence(frame, self._previous)
                prev = self._state
            clean = frame
            if prev is not None and self.denoise > 0:
                clean = self._denoise(frame, flow, conf)
            out = self.net(clean, prev, flow, conf)
            result = out.sharp
            if prev is not None and self.history > 0:
                result = temporal_blend(
                    result, warp(self._output, flow), conf, self.history, self.tolerance
                )
            if self.temporal:
                self._state, self._previous, self._output = out.state, frame, result
                self._denoised = clean
            sharp.append(result)
            defocus.append(out.defocus)
        return torch.cat(sharp), torch.cat(defocus)

    def _denoise(self, frame: Tensor, flow: Tensor, conf: Tensor) -> Tensor:
        sigma = temporal_noise(frame, warp(self._previous, flow), conf)
        if sigma is None:
            return frame
        tolerance = max(_NOISE_FLOOR, self.noise_sigmas * sigma)
        return temporal_blend(frame, warp(self._denoised, flow), conf, self.denoise, tolerance)


def load_deblurnet(path: Path | str | None = None, device: str | torch.device = "cpu") -> DeblurNet:
    """Load trained DeblurNet weights (safetensors only); the architecture is in their metadata.

    Raises:
        InputError: the file is missing or is not a DeblurNet checkpoint.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise InputError(
            f"{path}: DeblurNet weights not found. They ship inside the package; reinstall it, "
            "or train them with `python -m vidrefocus.train deblur --config "
            "configs/train/deblurnet.yaml`."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        arch = json.loads(meta.get("config", "{}"))
        config = DeblurConfig(
            width=int(arch.get("width", 24)), blocks=tuple(arch.get("blocks", (1, 1, 2)))
        )
        net = DeblurNet(config)
        net.load_state_dict(load_file(str(path)))
    except (RuntimeError, ValueError, OSError) as err:
        raise InputError(f"{path}: not a DeblurNet checkpoint ({err}).") from err
    return net.to(device).eval()


def config_metadata(config: DeblurConfig) -> dict[str, str]:
    """safetensors metadata that `load_deblurnet` reads back."""
    return {"config": json.dumps(asdict(config))}
