"""The real defocus measurement set, and how any deblurrer is run on images.

A deblurrer is any callable `frames (B, 3, H, W) -> sharp` (or `-> (sharp, defocus px)`, as
`TemporalDeblur` returns), so DeblurNet and the classical baselines are measured by the same
code. If it has a `reset()`, it is called before every independent image or sequence.

The set: seven real defocus-blurred photos and their all-in-focus targets, samples of the
LFDOF test set (Ruan et al., "AIFNet: All-in-Focus Image Restoration Network Using a Light
Field-Based Dataset", IEEE TCI 2021), in ../shared/data/real_defocus_lfdof. It is a
measurement: never train or tune anything on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidrefocus.errors import InputError
from vidrefocus.eval.baselines import WIENER_RADII_PX, wiener_best_radius
from vidrefocus.eval.metrics import psnr, ssim

__all__ = [
    "DEFAULT_REAL_DEFOCUS",
    "REAL_DEFOCUS_SOURCE",
    "Deblurrer",
    "ImageScore",
    "RealDefocusResult",
    "read_rgb",
    "real_defocus",
    "real_defocus_wiener_oracle",
    "reset_deblurrer",
    "run_deblurrer",
]

Deblurrer = Callable[[Tensor], Tensor | tuple[Tensor, Tensor]]

_REPO = Path(__file__).resolve().parents[2]
# Beside the repository, as ../shared/data/README.md lays it out.
DEFAULT_REAL_DEFOCUS = _REPO.parent / "shared" / "data" / "real_defocus_lfdof"
REAL_DEFOCUS_SOURCE = (
    "LFDOF test samples (Ruan et al., 'AIFNet: All-in-Focus Image Restoration Network Using "
    "a Light Field-Based Dataset', IEEE TCI 2021)"
)


def run_deblurrer(
    deblur: Deblurrer, frames: Tensor, device: str | torch.device = "cpu"
) -> tuple[Tensor, Tensor | None]:
    """Run a deblurrer on `device`.

    Args:
        deblur: a deblurrer (see module docstring).
        frames: (B, 3, H, W) float32 in [0, 1].
        device: where the frames are sent.
    Returns:
        sharp (B, 3, H, W) float32 and the defocus map (B, 1, H, W) px or None, on the CPU.
    """
    out = deblur(frames.to(device))
    sharp, defocus = out if isinstance(out, tuple) else (out, None)
    return sharp.float().cpu(), None if defocus is None else defocus.float().cpu()


def reset_deblurrer(deblur: Deblurrer) -> None:
    """Call the deblurrer's `reset()` if it has one (a new, independent sequence starts)."""
    reset = getattr(deblur, "reset", None)
    if callable(reset):
        reset()


def read_rgb(path: Path) -> Tensor:
    """An 8-bit image file as (3, H, W) float32 RGB in [0, 1].

    Raises:
        InputError: the file cannot be read as an image.
    """
    arr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if arr is None:
        raise InputError(f"{path}: not a readable image.")
    return torch.from_numpy(np.ascontiguousarray(arr[..., ::-1])).permute(2, 0, 1).float() / 255.0


@dataclass(frozen=True)
class ImageScore:
    """Input and output of one image against its sharp target (PSNR in dB, SSIM)."""

    name: str
    input_psnr_db: float
    output_psnr_db: float
    input_ssim: float
    output_ssim: float
    radius_px: float | None = None  # the oracle Wiener baseline's chosen radius

    @property
    def psnr_gain_db(self) -> float:
        return self.output_psnr_db - self.input_psnr_db


@dataclass(frozen=True)
class RealDefocusResult:
    """Per-image scores on the real defocus set and their means."""

    images: list[ImageScore]
    folder: str
    size_wh: tuple[int, int] = (0, 0)
    source: str = REAL_DEFOCUS_SOURCE

    def mean(self, key: str) -> float:
        return float(np.mean([getattr(s, key) for s in self.images]))

    def to_dict(self) -> dict[str, object]:
        keys = ("input_psnr_db", "output_psnr_db", "psnr_gain_db", "input_ssim", "output_ssim")
        mean = {k: round(self.mean(k), 4) for k in keys}
        mean["ssim_gain"] = round(mean["output_ssim"] - mean["input_ssim"], 4)
        return {
            "source": self.source,
            "images": len(self.images),
            "size_wh": list(self.size_wh),
            "mean": mean,
            "per_image": [{**asdict(s), "psnr_gain_db": s.psnr_gain_db} for s in self.images],
        }


def _real_pairs(folder: Path | None) -> Iterator[tuple[str, Tensor, Tensor]]:
    folder = Path(folder) if folder is not None else DEFAULT_REAL_DEFOCUS
    names = sorted(p.name for p in (folder / "source").glob("*.png"))
    if not names or not (folder / "target").is_dir():
        raise InputError(
            f"{folder}: no real defocus pairs (expected source/NAME.png and target/NAME.png). "
            "The set lives in ../shared/data/real_defocus_lfdof beside the repository; pass "
            "its folder explicitly if it is elsewhere."
        )
    for name in names:
        target = folder / "target" / name
        if not target.is_file():
            raise InputError(f"{target}: missing target for source/{name}.")
        yield Path(name).stem, read_rgb(folder / "source" / name), read_rgb(target)


def _score(name: str, x: Tensor, out: Tensor, y: Tensor, radius: float | None) -> ImageScore:
    return ImageScore(
        name,
        float(psnr(x, y)),
        float(psnr(out, y)),
        float(ssim(x, y)),
        float(ssim(out, y)),
        radius,
    )


def real_defocus(
    deblur: Deblurrer,
    folder: Path | None = None,
    device: str | torch.device = "cpu",
    limit: int | None = None,
) -> RealDefocusResult:
    """PSNR / SSIM of input and output against the all-in-focus target, full resolution.

    A measurement only: never tune anything on this set (see ../shared/data/README.md).

    Args:
        deblur: a deblurrer (see module docstring); reset before each image.
        folder: the set's folder (default `DEFAULT_REAL_DEFOCUS`).
        device: where frames are sent; results come back to the CPU.
        limit: score only the first `limit` images (sorted by name), for quick checks.
    Returns:
        A `RealDefocusResult`.
    Raises:
        InputError: the folder is missing or holds no pairs.
    """
    folder = Path(folder) if folder is not None else DEFAULT_REAL_DEFOCUS
    scores, size = [], (0, 0)
    for i, (name, x, y) in enumerate(_real_pairs(folder)):
        if limit is not None and i >= limit:
            break
        reset_deblurrer(deblur)
        out, _ = run_deblurrer(deblur, x[None], device)
        scores.append(_score(name, x, out[0].clamp(0, 1), y, None))
        size = (x.shape[-1], x.shape[-2])
    return RealDefocusResult(scores, str(folder), size)


def real_defocus_wiener_oracle(
    folder: Path | None = None, radii: Sequence[float] = WIENER_RADII_PX
) -> RealDefocusResult:
    """The oracle Wiener baseline on the real set: per image, the disk radius whose result
    scores the highest PSNR against the target (`baselines.wiener_best_radius`). It looks at
    the answer, so it bounds what a one-radius Wiener filter can do; it is not a method.

    Args:
        folder: the set's folder (default `DEFAULT_REAL_DEFOCUS`).
        radii: candidate disk radii in px.
    Returns:
        A `RealDefocusResult` whose scores carry the chosen `radius_px`.
    Raises:
        InputError: the folder is missing or holds no pairs.
    """
    folder = Path(folder) if folder is not None else DEFAULT_REAL_DEFOCUS
    scores, size = [], (0, 0)
    for name, x, y in _real_pairs(folder):
        (radius,), out = wiener_best_radius(x, y, radii)
        scores.append(_score(name, x, out, y, radius))
        size = (x.shape[-1], x.shape[-2])
    return RealDefocusResult(scores, str(folder), size)
