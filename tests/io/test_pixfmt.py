from __future__ import annotations

import av
import numpy as np
import pytest

from vidrefocus.color import YCbCrSpec
from vidrefocus.errors import InputError
from vidrefocus.io.pixfmt import _plane_array, frame_to_rgb, layout_of, rgb_to_frame


class TestLayoutOf:
    @pytest.mark.parametrize(
        ("pix_fmt", "name", "kind", "bits", "shift"),
        [
            ("yuv420p", "yuv420p", "yuv", 8, (1, 1)),
            ("yuvj420p", "yuv420p", "yuv", 8, (1, 1)),
            ("yuv422p10le", "yuv422p10le", "yuv", 10, (1, 0)),
            ("nv12", "yuv420p", "yuv", 8, (1, 1)),
            ("p010le", "yuv420p10le", "yuv", 10, (1, 1)),
            ("yuyv422", "yuv422p", "yuv", 8, (1, 0)),
            ("rgb24", "gbrp", "rgb", 8, (0, 0)),
            ("rgb48le", "gbrp16le", "rgb", 16, (0, 0)),
            ("gray", "gray", "gray", 8, (0, 0)),
            ("yuva444p10le", "yuv444p10le", "yuv", 10, (0, 0)),
            ("pal8", "gbrp", "rgb", 8, (0, 0)),
        ],
    )
    def test_mapping(self, pix_fmt: str, name: str, kind: str, bits: int, shift: tuple) -> None:
        layout = layout_of(pix_fmt)
        assert (layout.name, layout.kind, layout.bits) == (name, kind, bits)
        assert (layout.shift_x, layout.shift_y) == shift

    def test_unknown(self) -> None:
        with pytest.raises(InputError, match="unknown pixel format"):
            layout_of("not_a_format")


def _random_frame(fmt: str, w: int, h: int, seed: int) -> av.VideoFrame:
    layout = layout_of(fmt)
    frame = av.VideoFrame(w, h, fmt)
    rng = np.random.default_rng(seed)
    for plane in frame.planes:
        n = plane.line_size // layout.dtype.itemsize
        data = rng.integers(0, 1 << layout.bits, (plane.height, n)).astype(layout.dtype)
        plane.update(data.tobytes())
    return frame


@pytest.mark.parametrize(
    "fmt",
    ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p12le",
     "gbrp", "gbrp10le", "gbrp16le", "gray", "gray10le"],
)  # fmt: skip
@pytest.mark.parametrize(("w", "h"), [(64, 48), (33, 17), (1, 1)])
def test_untouched_frame_encodes_to_the_same_codes(fmt: str, w: int, h: int) -> None:
    """decode -> RGB -> encode is the identity on codes, even for random (out-of-gamut) codes
    and odd sizes, which is what makes the identity pipeline lossless with FFV1."""
    layout = layout_of(fmt)
    spec = YCbCrSpec("bt709", False, layout.bits)
    frame = _random_frame(fmt, w, h, seed=w * h)
    back = rgb_to_frame(frame_to_rgb(frame, layout, spec), layout, spec)
    for p, q in zip(frame.planes, back.planes, strict=True):
        np.testing.assert_array_equal(_plane_array(p, layout.dtype), _plane_array(q, layout.dtype))


def test_packed_input_is_repacked_losslessly() -> None:
    rgb24 = av.VideoFrame.from_ndarray(
        np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8), format="rgb24"
    )
    layout = layout_of("rgb24")
    out = frame_to_rgb(rgb24, layout, YCbCrSpec())
    np.testing.assert_array_equal(
        np.rint(out.permute(1, 2, 0).numpy() * 255).astype(np.uint8), rgb24.to_ndarray()
    )
