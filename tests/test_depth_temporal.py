"""Depth stabilisation and edge alignment against exact synthetic references."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import Tensor

from vidrefocus.depth_temporal import (
    DepthStabilizer,
    StabilizeSettings,
    align_edges,
    fit_scale_shift,
    normalise_relative,
)
from vidrefocus.errors import InputError
from vidrefocus.eval.depth_eval import edge_distance

H, W = 72, 96


def _texture(seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, H // 4, W // 4, generator=g)
    return torch.nn.functional.interpolate(small, size=(H, W), mode="bilinear").clamp(0, 1)


def _scene(x0: int = 40) -> tuple[Tensor, Tensor]:
    """A textured frame with a bright square in front (near) of a ramp backdrop."""
    frame = _texture() * 0.5
    depth = torch.linspace(0.1, 0.4, W).view(1, 1, 1, W).expand(1, 1, H, W).clone()
    frame[..., 20:50, x0 : x0 + 30] = 0.9
    depth[..., 20:50, x0 : x0 + 30] = 0.9
    return frame, depth


def test_normalise_relative() -> None:
    d = torch.linspace(-3, 5, 1000).view(1, 1, 10, 100)
    out = normalise_relative(d, 0.0, 1.0)
    assert out.min() == 0.0
    assert out.max() == 1.0
    assert torch.allclose(normalise_relative(torch.full((2, 1, 4, 4), 7.0)), torch.tensor(0.5))


def test_fit_scale_shift_is_exact_and_robust() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 32, 32, generator=g)
    y = 2.5 * x + 0.3
    s, b = fit_scale_shift(x, y, torch.ones_like(x))
    assert torch.allclose(s, torch.tensor(2.5), atol=1e-4)
    assert torch.allclose(b, torch.tensor(0.3), atol=1e-4)
    # 15 % of the pixels belong to something that moved: the robust fit ignores them.
    outliers = torch.rand(x.shape, generator=g) < 0.15
    s, b = fit_scale_shift(x, torch.where(outliers, y + 3.0, y), torch.ones_like(x))
    assert torch.allclose(s, torch.tensor(2.5), atol=0.05)
    assert torch.allclose(b, torch.tensor(0.3), atol=0.05)
    s, b = fit_scale_shift(x, y, torch.zeros_like(x))
    assert float(s.flatten()[0]) == 1.0
    assert float(b.flatten()[0]) == 0.0


def test_relative_scale_shift_jitter_is_removed() -> None:
    """A provider whose per-frame normalisation jumps (a new object at the frame edge does
    that): the stabiliser holds the scene's depth steady."""
    frame, depth = _scene()
    g = torch.Generator().manual_seed(2)
    frames = frame.expand(24, -1, -1, -1)
    scale = 1.0 + 0.3 * torch.rand(24, 1, 1, 1, generator=g)
    shift = 0.2 * torch.rand(24, 1, 1, 1, generator=g)
    raw = depth * scale + shift
    settings = replace(StabilizeSettings(), edges=False)
    out = DepthStabilizer(metric=False, settings=settings)(raw, frames)
    # per-frame min-max normalisation already removes an exact affine change; what is left
    # must not drift frame to frame
    change = (out[1:] - out[:-1]).abs().mean()
    assert float(change) < 1e-3
    assert out.min() >= 0.0
    assert out.max() <= 1.0


def test_noise_flicker_drops_at_least_3x_without_drift() -> None:
    frame, depth = _scene()
    g = torch.Generator().manual_seed(3)
    n = 120
    frames = frame.expand(n, -1, -1, -1)
    raw = depth + 0.03 * torch.randn(n, 1, H, W, generator=g)
    settings = replace(StabilizeSettings(), edges=False)
    out = DepthStabilizer(metric=True, settings=settings)(raw, frames)
    before = (raw[1:] - raw[:-1]).abs().mean()
    after = (out[1:] - out[:-1]).abs().mean()
    assert before / after >= 3.0, (float(before), float(after))
    # no drift: the last frames are as close to the truth as the filter gets, not further
    err_late = (out[-20:] - depth).abs().mean()
    err_raw = (raw - depth).abs().mean()
    assert err_late < 0.6 * err_raw
    assert abs(float(out[-20:].mean() - depth.mean())) < 2e-3


def test_real_depth_change_passes_through() -> None:
    """Something that really moves nearer is not held back by the filter."""
    frame, near = _scene()
    far = near.clone()
    far[..., 20:50, 40:70] = 0.45
    frames = frame.expand(14, -1, -1, -1)
    raw = torch.cat([far.expand(6, -1, -1, -1), near.expand(8, -1, -1, -1)])
    settings = replace(StabilizeSettings(), edges=False)
    out = DepthStabilizer(metric=True, settings=settings)(raw, frames)
    inside = out[:, 0, 25:45, 45:65].mean(dim=(1, 2))
    # a step of half the range (0.45 -> 0.9): most of it in its first frame, 90% in eight
    assert float(inside[6]) > 0.45 + 0.7 * 0.45
    assert float(inside[13]) > 0.45 + 0.9 * 0.45


def test_follows_motion_without_ghosts() -> None:
    frames, depths = [], []
    for t in range(8):
        f, d = _scene(x0=20 + 4 * t)
        frames.append(f)
        depths.append(d)
    frames_t, depth_t = torch.cat(frames), torch.cat(depths)
    g = torch.Generator().manual_seed(4)
    raw = depth_t + 0.02 * torch.randn(depth_t.shape, generator=g)
    out = DepthStabilizer(metric=True)(raw, frames_t)
    err = (out[-1] - depth_t[-1]).abs()
    # the square's trail (where it was 4-8 px ago) shows no ghost of its depth
    assert float(err[..., 20:50, 40:48].max()) < 0.2
    assert float(err.mean()) < float((raw[-1] - depth_t[-1]).abs().mean())


def test_reset_forgets_the_previous_frame() -> None:
    frame, depth = _scene()
    stab = DepthStabilizer(metric=True, settings=replace(StabilizeSettings(), edges=False))
    stab(depth, frame)
    stab.reset()
    other = depth * 0.5 + 0.1
    assert torch.allclose(stab(other, frame), other)


def test_edges_snap_to_the_image() -> None:
    """A depth step 3 px off the subject's outline (what a low-resolution estimate gives)
    moves onto the outline."""
    frame, depth = _scene()
    _, shifted = _scene(x0=43)
    aligned = align_edges(shifted, frame, radius=6)
    assert edge_distance(aligned, depth) < 0.5 * edge_distance(shifted, depth)
    assert aligned.shape == depth.shape


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(InputError, match="differ"):
        DepthStabilizer(metric=False)(torch.rand(2, 1, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="differ"):
        align_edges(torch.rand(1, 1, 8, 9), torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="history"):
        DepthStabilizer(metric=False, settings=StabilizeSettings(history=1.0))


def test_tiny_and_nan_inputs() -> None:
    stab = DepthStabilizer(metric=False)
    for h, w in ((1, 1), (3, 5), (9, 7)):
        stab.reset()
        out = stab(torch.rand(2, 1, h, w), torch.rand(2, 3, h, w))
        assert out.shape == (2, 1, h, w)
        assert torch.isfinite(out).all()
    d = torch.rand(1, 1, 16, 16)
    d[..., 3, 3] = float("nan")
    f = torch.rand(1, 3, 16, 16)
    f[..., 5, 5] = float("nan")
    assert torch.isfinite(stab(d, f)).all()
