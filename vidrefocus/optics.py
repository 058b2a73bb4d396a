"""Thin-lens optics: focus distance, f-number, focal length and sensor -> blur in pixels."""

from __future__ import annotations

import math
from numbers import Integral

import torch
from torch import Tensor

from vidrefocus.errors import InputError

__all__ = [
    "DEFAULT_COC_LIMIT_MM",
    "blur_scale_px",
    "coc_diameter_m",
    "coc_radius_px",
    "depth_of_field_m",
    "diopters_from_distance_m",
    "distance_m_from_diopters",
    "hyperfocal_distance_m",
    "metric_coc_radius_px",
    "relative_coc_radius_px",
]

# Acceptable circle of confusion for "sharp" on a 36 x 24 mm sensor: the common 0.03 mm, about
# the diagonal / 1442. Scale it with the sensor diagonal for other formats.
DEFAULT_COC_LIMIT_MM = 0.03

# Every lens quantity below is a Python float or a tensor; tensors broadcast elementwise, so a
# (B,) tensor animates a value per frame. Tensor in, tensor out; floats in, float out.
_Scalar = float | Tensor


def _describe(value: _Scalar) -> str:
    """A short text for an offending value (the minimum of a tensor), built only on failure."""
    if isinstance(value, Tensor):
        if value.numel() == 1:
            return f"{value.item():g}"
        return f"a tensor with minimum {value.min().item():g}"
    return f"{value:g}"


def _check_greater(name: str, value: _Scalar, bound: _Scalar, allowed: str) -> None:
    """Raise InputError unless every element of `value` is > `bound` (NaN fails too)."""
    ok = value > bound
    if isinstance(ok, Tensor):
        ok = bool(ok.all())
    if not ok:
        raise InputError(f"{name} must be {allowed}; got {_describe(value)}.")


def _check_lens(focal_length_mm: _Scalar, f_number: _Scalar) -> None:
    _check_greater("focal_length_mm", focal_length_mm, 0.0, "> 0 mm (e.g. 50)")
    _check_greater("f_number", f_number, 0.0, "> 0 (e.g. 1.4, 2.8, 16)")


def _check_focus(focus_distance_m: _Scalar, focal_length_mm: _Scalar) -> None:
    # A thin lens cannot form a real image of a plane at or inside its focal length.
    focal_length_m = focal_length_mm * 1e-3
    _check_greater(
        "focus_distance_m",
        focus_distance_m,
        focal_length_m,
        f"greater than the focal length ({_describe(focal_length_m)} m), infinity allowed",
    )


def _magnification_term_m(
    focus_distance_m: _Scalar, focal_length_mm: _Scalar, f_number: _Scalar
) -> _Scalar:
    """A * f * S_f / (S_f - f) in m^2, with A = f / N the aperture diameter.

    Written as (f^2 / N) / (1 - f / S_f) so focus at infinity (S_f = inf) gives f^2 / N
    instead of inf / inf.
    """
    f_m = focal_length_mm * 1e-3
    return (f_m * f_m / f_number) / (1.0 - f_m / focus_distance_m)


def coc_diameter_m(
    distance_m: _Scalar,
    focus_distance_m: _Scalar,
    focal_length_mm: _Scalar,
    f_number: _Scalar,
) -> _Scalar:
    """Diameter of the circle of confusion on the sensor for an object at `distance_m`.

    Thin lens: `c = A * f * S_f / (S_f - f) * |1/S_f - 1/S|` with `A = f / N` (DESIGN.md "Blur").

    Args:
        distance_m: object distance S in metres, float or tensor, in (0, inf].
        focus_distance_m: focal plane distance S_f in metres, in (f, inf].
        focal_length_mm: focal length f in millimetres, > 0.
        f_number: N, > 0.
    Returns:
        Float or tensor (broadcast shape) in metres on the sensor, >= 0.
    Raises:
        InputError: a non-positive distance, focal length or f-number, or a focus distance
            not beyond the focal length.
    Example:
        >>> round(coc_diameter_m(4.0, 2.0, 50.0, 2.0) * 1e3, 4)  # mm
        0.3205
    """
    _check_lens(focal_length_mm, f_number)
    _check_focus(focus_distance_m, focal_length_mm)
    _check_greater("distance_m", distance_m, 0.0, "> 0 m (infinity allowed)")
    term = _magnification_term_m(focus_distance_m, focal_length_mm, f_number)
    return term * abs(1.0 / focus_distance_m - 1.0 / distance_m)


def blur_scale_px(
    focus_distance_m: _Scalar,
    focal_length_mm: _Scalar,
    f_number: _Scalar,
    sensor_width_mm: _Scalar,
    image_width_px: int,
) -> _Scalar:
    """Pixels of signed blur radius per unit of metric disparity (1/m): the lens's `K`.

    From `coc_diameter_m`, the signed radius on the sensor is
    `0.5 * A * f * S_f / (S_f - f) * (1/S - 1/S_f)`; one sensor metre is
    `image_width_px / sensor_width_m` pixels, assuming the frame spans the full sensor width.
    Hence `r_px = K * (disparity - focus_disparity)` with disparity `1/S`, and `r > 0` for
    objects nearer than the focal plane.

    Args:
        focus_distance_m: focal plane distance in metres, in (f, inf]; float or tensor.
        focal_length_mm: focal length in millimetres, > 0.
        f_number: N, > 0.
        sensor_width_mm: width of the sensor area that the frame covers, in mm, > 0.
        image_width_px: frame width in pixels, > 0.
    Returns:
        K in px * m (pixels per diopter), float or tensor (broadcast shape), > 0.
    Raises:
        InputError: any argument outside its range (the message names it).
    Example:
        >>> round(blur_scale_px(2.0, 50.0, 2.0, 36.0, 1920), 3)
        34.188
    """
    _check_lens(focal_length_mm, f_number)
    _check_focus(focus_distance_m, focal_length_mm)
    _check_greater("sensor_width_mm", sensor_width_mm, 0.0, "> 0 mm (36 for full frame)")
    if (
        isinstance(image_width_px, bool)
        or not isinstance(image_width_px, Integral)
        or image_width_px < 1
    ):
        raise InputError(f"image_width_px must be a positive integer; got {image_width_px!r}.")
    term = _magnification_term_m(focus_distance_m, focal_length_mm, f_number)
    return 0.5 * term * image_width_px / (sensor_width_mm * 1e-3)


def _check_coc_shapes(disparity: Tensor, focus_disparity: Tensor, k: _Scalar) -> None:
    if not isinstance(disparity, Tensor) or not isinstance(focus_disparity, Tensor):
        raise InputError(
            "disparity and focus_disparity must be tensors of shape (B, 1, H, W) and (B,); "
            f"got {type(disparity).__name__} and {type(focus_disparity).__name__}."
        )
    if disparity.ndim != 4 or disparity.shape[1] != 1:
        raise InputError(f"disparity must have shape (B, 1, H, W); got {tuple(disparity.shape)}.")
    batch = disparity.shape[0]
    if focus_disparity.shape != (batch,):
        raise InputError(
            f"focus_disparity must have shape (B,) = ({batch},) to match disparity; "
            f"got {tuple(focus_disparity.shape)}."
        )
    if isinstance(k, Tensor) and k.shape not in ((), (batch,)):
        raise InputError(
            f"k must be a float, a 0-d tensor or shape (B,) = ({batch},); got {tuple(k.shape)}."
        )


def coc_radius_px(disparity: Tensor, focus_disparity: Tensor, k: _Scalar) -> Tensor:
    """Signed circle-of-confusion radius.

    Args:
        disparity: (B, 1, H, W) float32, larger = nearer.
        focus_disparity: (B,) float32, the focal plane of each frame.
        k: pixels per unit of disparity (lens or user strength); a float, or a (B,) tensor
            when it changes per frame (a lens's K depends on the focus distance).
    Returns:
        (B, 1, H, W) float32 in pixels, > 0 in front of the focal plane.
    Raises:
        InputError: shapes that do not match the above.
    Example:
        >>> coc_radius_px(torch.tensor([[[[0.5]]]]), torch.tensor([0.25]), 8.0).item()
        2.0
    """
    _check_coc_shapes(disparity, focus_disparity, k)
    if isinstance(k, Tensor):
        k = k.reshape(-1, 1, 1, 1)
    return k * (disparity - focus_disparity.view(-1, 1, 1, 1))


def metric_coc_radius_px(
    disparity_per_m: Tensor,
    focus_distance_m: Tensor,
    focal_length_mm: _Scalar,
    f_number: _Scalar,
    sensor_width_mm: _Scalar,
    image_width_px: int,
) -> Tensor:
    """Signed blur radius from metric disparity and a physical lens (`metric=True` depth).

    Args:
        disparity_per_m: (B, 1, H, W) float, 1 / distance in 1/m (0 = infinity).
        focus_distance_m: (B,) float, focal plane distance of each frame in metres.
        focal_length_mm: focal length in mm; float or (B,) tensor.
        f_number: N; float or (B,) tensor.
        sensor_width_mm: sensor width in mm covered by the frame.
        image_width_px: frame width in pixels.
    Returns:
        (B, 1, H, W) in pixels, dtype of `disparity_per_m`, > 0 in front of the focal plane.
    Raises:
        InputError: a lens value out of range or mismatched shapes.
    """
    k = blur_scale_px(focus_distance_m, focal_length_mm, f_number, sensor_width_mm, image_width_px)
    return coc_radius_px(disparity_per_m, 1.0 / focus_distance_m, k)


def relative_coc_radius_px(
    disparity: Tensor, focus_disparity: Tensor, strength_px: _Scalar
) -> Tensor:
    """Signed blur radius for relative depth (disparity in [0, 1], no lens known).

    The user's strength is `K` itself: the radius in pixels at a disparity distance of 1
    from the focal plane, i.e. the largest blur the frame can get.

    Args:
        disparity: (B, 1, H, W) float in [0, 1], larger = nearer.
        focus_disparity: (B,) float in [0, 1], the focal plane of each frame.
        strength_px: maximum blur radius in pixels, >= 0; float or (B,) tensor.
    Returns:
        (B, 1, H, W) in pixels, in [-strength_px, strength_px], > 0 in front of focus.
    Raises:
        InputError: a negative or non-finite strength, a focus disparity outside [0, 1],
            or mismatched shapes.
    Example:
        >>> d = torch.tensor([[[[1.0, 0.0]]]])
        >>> relative_coc_radius_px(d, torch.tensor([0.5]), 20.0).flatten().tolist()
        [10.0, -10.0]
    """
    if isinstance(strength_px, Tensor):
        ok = bool(((strength_px >= 0) & torch.isfinite(strength_px)).all())
    else:
        ok = 0.0 <= strength_px < math.inf
    if not ok:
        raise InputError(
            f"strength_px must be a finite blur radius >= 0 px; got {_describe(strength_px)}."
        )
    if not bool(((focus_disparity >= 0) & (focus_disparity <= 1)).all()):
        raise InputError(
            "focus_disparity must lie in [0, 1] for relative depth; "
            f"got values in [{focus_disparity.min().item():g}, {focus_disparity.max().item():g}]."
        )
    return coc_radius_px(disparity, focus_disparity, strength_px)


def hyperfocal_distance_m(
    focal_length_mm: _Scalar, f_number: _Scalar, coc_limit_mm: _Scalar = DEFAULT_COC_LIMIT_MM
) -> _Scalar:
    """Hyperfocal distance: focusing here keeps everything from H/2 to infinity acceptably sharp.

    `H = f^2 / (N c) + f`, the exact thin-lens form (en.wikipedia.org/wiki/Hyperfocal_distance).

    Args:
        focal_length_mm: focal length in mm, > 0.
        f_number: N, > 0.
        coc_limit_mm: largest circle of confusion still called sharp, in mm, > 0.
    Returns:
        H in metres, float or tensor (broadcast shape).
    Raises:
        InputError: any argument <= 0.
    Example:
        >>> round(hyperfocal_distance_m(50.0, 2.0), 4)
        41.7167
    """
    _check_lens(focal_length_mm, f_number)
    _check_greater("coc_limit_mm", coc_limit_mm, 0.0, "> 0 mm (0.03 for full frame)")
    f_m = focal_length_mm * 1e-3
    return f_m * f_m / (f_number * coc_limit_mm * 1e-3) + f_m


def depth_of_field_m(
    focus_distance_m: _Scalar,
    focal_length_mm: _Scalar,
    f_number: _Scalar,
    coc_limit_mm: _Scalar = DEFAULT_COC_LIMIT_MM,
) -> tuple[_Scalar, _Scalar]:
    """Near and far limits of acceptable sharpness around the focal plane.

    `near = S (H - f) / (H + S - 2f)`, `far = S (H - f) / (H - S)` for `S < H`, else infinity;
    they are exactly the distances where `coc_diameter_m` equals `coc_limit_mm`
    (en.wikipedia.org/wiki/Depth_of_field, "DOF formulae", with the exact H above).

    Args:
        focus_distance_m: focal plane distance S in metres, in (f, inf].
        focal_length_mm: focal length in mm, > 0.
        f_number: N, > 0.
        coc_limit_mm: largest circle of confusion still called sharp, in mm, > 0.
    Returns:
        (near_m, far_m) in metres; far_m is inf at or beyond the hyperfocal distance.
    Raises:
        InputError: any argument out of range.
    Example:
        >>> near, far = depth_of_field_m(2.0, 50.0, 2.0)
        >>> round(near, 4), round(far, 4)
        (1.9106, 2.0982)
    """
    _check_focus(focus_distance_m, focal_length_mm)
    h_m = hyperfocal_distance_m(focal_length_mm, f_number, coc_limit_mm)
    f_m = focal_length_mm * 1e-3
    # Divide by S so focus at infinity needs no inf / inf: near = (H - f) / ((H - 2f)/S + 1).
    inv_s = 1.0 / focus_distance_m
    near = (h_m - f_m) / ((h_m - 2.0 * f_m) * inv_s + 1.0)
    denom = h_m * inv_s - 1.0  # far = (H - f) / (H/S - 1), > 0 only in front of H
    if isinstance(denom, Tensor):
        # Divide by a safe value where masked, or the unused branch's inf poisons gradients.
        safe = torch.where(denom > 0, denom, torch.ones_like(denom))
        far = torch.where(denom > 0, (h_m - f_m) / safe, math.inf)
    else:
        far = (h_m - f_m) / denom if denom > 0 else math.inf
    return near, far


def diopters_from_distance_m(distance_m: _Scalar) -> _Scalar:
    """Focus distance to diopters (1/m), the scale focus is interpolated in; inf -> 0.

    Metric disparity is the same quantity, so this also gives a distance's disparity.

    Args:
        distance_m: distance in metres, in (0, inf]; float or tensor.
    Returns:
        Diopters in 1/m, >= 0, same type and shape.
    Raises:
        InputError: a distance <= 0.
    """
    _check_greater("distance_m", distance_m, 0.0, "> 0 m (infinity allowed)")
    return 1.0 / distance_m


def distance_m_from_diopters(diopters: _Scalar) -> _Scalar:
    """Diopters (1/m) back to a distance in metres; 0 diopters -> infinity.

    Args:
        diopters: in [0, inf); float or tensor.
    Returns:
        Distance in metres, in (0, inf], same type and shape.
    Raises:
        InputError: negative diopters (a virtual object behind the camera).
    """
    ok = diopters >= 0  # NaN fails too
    if isinstance(ok, Tensor):
        ok = bool(ok.all())
    if not ok:
        raise InputError(f"diopters must be >= 0 1/m (0 = infinity); got {_describe(diopters)}.")
    if isinstance(diopters, Tensor):
        return 1.0 / diopters  # IEEE: 1 / 0 = inf
    return math.inf if diopters == 0 else 1.0 / diopters
