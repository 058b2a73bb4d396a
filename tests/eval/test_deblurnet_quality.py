"""Issue #5, "must show": the packaged DeblurNet holds its measured numbers, with a margin.

The numbers themselves (and how they were measured) are in the weights card,
vidrefocus/models/weights/deblurnet.md, and in BENCHMARKS.md.
"""

from __future__ import annotations

import pytest
import torch

from media import SHARED_DATA
from vidrefocus.eval.baselines import unsharp_mask
from vidrefocus.eval.deblur_eval import (
    do_no_harm_sample,
    real_defocus,
    synthetic_heldout,
    temporal_stability,
)
from vidrefocus.models.deblurnet import TemporalDeblur, load_deblurnet

REAL = SHARED_DATA / "real_defocus_lfdof"

# Measured on the packaged weights (card): each bound leaves a margin below the measurement.
REAL_GAIN_MIN_DB = 0.90
SYNTHETIC_GAIN_MIN_DB = 0.75
NO_HARM_MIN_DB = 38.0
# E_warp / ground truth with sensor noise and JPEG on every frame: the goal is 1.1x
# (the card: 1.07x on 6 sequences); these 3 measure 0.87x.
NOISY_FLICKER_MAX_RATIO = 1.0
CLEAN_FLICKER_MAX_RATIO = 1.1  # the goal, without camera noise


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return load_deblurnet()


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real_defocus_lfdof missing")
def test_real_defocus_gain(net: torch.nn.Module) -> None:
    result = real_defocus(TemporalDeblur(net, temporal=False), REAL).to_dict()
    mean = result["mean"]
    assert mean["psnr_gain_db"] >= REAL_GAIN_MIN_DB
    assert mean["ssim_gain"] > 0.0
    assert all(image["psnr_gain_db"] > 0.0 for image in result["per_image"])
    classical = real_defocus(unsharp_mask, REAL).to_dict()["mean"]
    assert classical["psnr_gain_db"] < 0.0 < mean["psnr_gain_db"]


def test_synthetic_gain_and_no_harm(net: torch.nn.Module) -> None:
    result = synthetic_heldout(TemporalDeblur(net, temporal=False), clips=12)
    assert result.psnr_gain_db >= SYNTHETIC_GAIN_MIN_DB
    assert result.no_harm_psnr_db >= NO_HARM_MIN_DB
    assert result.defocus_mae_px < 2.0


@pytest.mark.parametrize("temporal", [False, True])
def test_sharp_footage_passes_through(net: torch.nn.Module, temporal: bool) -> None:
    result = do_no_harm_sample(TemporalDeblur(net, temporal=temporal), max_frames=16)
    assert result["min_psnr_db"] >= NO_HARM_MIN_DB


def test_recurrent_mode_flickers_less(net: torch.nn.Module) -> None:
    modes = {"per_frame": TemporalDeblur(net, temporal=False), "recurrent": TemporalDeblur(net)}
    noisy = temporal_stability(modes, clips=3).ratio_to_ground_truth
    assert noisy["recurrent"] <= NOISY_FLICKER_MAX_RATIO
    assert noisy["recurrent"] < 0.8 * noisy["per_frame"]
    clean = temporal_stability(modes, clips=3, camera_noise=False).ratio_to_ground_truth
    assert clean["recurrent"] <= CLEAN_FLICKER_MAX_RATIO
