"""Output codecs, containers and pixel formats: what the writer may produce, resolved once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidrefocus.color import YCbCrSpec
from vidrefocus.config import EncodeOptions
from vidrefocus.errors import InputError
from vidrefocus.io.pixfmt import PixelLayout, layout_of
from vidrefocus.io.probe import VideoInfo

__all__ = ["CODEC_SPECS", "CONTAINERS", "CodecSpec", "OutputFormat", "resolve_output"]

# Extension -> FFmpeg muxer name.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}

_YUV8 = ("yuv420p", "yuv422p", "yuv444p")
_YUV10 = ("yuv420p10le", "yuv422p10le", "yuv444p10le")
_YUV12 = ("yuv420p12le", "yuv422p12le", "yuv444p12le")
_YUV16 = ("yuv420p16le", "yuv422p16le", "yuv444p16le")


@dataclass(frozen=True)
class CodecSpec:
    """An output codec: its encoder, where it may go, and the pixel formats it takes.

    Attributes:
        name: the user-facing name (`--codec`).
        encoder: FFmpeg encoder.
        containers: file extensions that can hold it.
        pix_fmts: pixel formats it accepts, most preferred first.
        encoder_args: fixed encoder options.
        uses_crf: whether `crf` applies.
        default_crf: CRF when the user gives none.
    """

    name: str
    encoder: str
    containers: tuple[str, ...]
    pix_fmts: tuple[str, ...]
    encoder_args: tuple[tuple[str, str], ...] = ()
    uses_crf: bool = False
    default_crf: int = 18


CODEC_SPECS: dict[str, CodecSpec] = {
    "h264": CodecSpec(
        name="h264",
        encoder="libx264",
        containers=(".mp4", ".mov", ".mkv", ".m4v"),
        pix_fmts=(*_YUV8, *_YUV10, "gray", "gray10le"),
        uses_crf=True,
        default_crf=18,
    ),
    "h265": CodecSpec(
        name="h265",
        encoder="libx265",
        containers=(".mp4", ".mov", ".mkv", ".m4v"),
        pix_fmts=(*_YUV8, *_YUV10, *_YUV12, "gray", "gray10le", "gray12le"),
        encoder_args=(("x265-params", "log-level=error"),),
        uses_crf=True,
        default_crf=20,
    ),
    "prores_hq": CodecSpec(
        name="prores_hq",
        encoder="prores_ks",
        containers=(".mov", ".mkv"),
        pix_fmts=("yuv422p10le",),
        encoder_args=(("profile:v", "3"), ("vendor", "apl0")),
    ),
    "prores_4444": CodecSpec(
        name="prores_4444",
        encoder="prores_ks",
        containers=(".mov", ".mkv"),
        pix_fmts=("yuv444p10le",),
        encoder_args=(("profile:v", "4"), ("vendor", "apl0")),
    ),
    "ffv1": CodecSpec(
        name="ffv1",
        encoder="ffv1",
        containers=(".mkv", ".mov", ".avi"),
        pix_fmts=(
            *_YUV8,
            *_YUV10,
            *_YUV12,
            *_YUV16,
            "gbrp",
            "gbrp10le",
            "gbrp12le",
            "gbrp16le",
            "gray",
            "gray10le",
            "gray12le",
            "gray16le",
        ),
        encoder_args=(("level", "3"), ("g", "1"), ("slicecrc", "1")),
    ),
}


@dataclass(frozen=True)
class OutputFormat:
    """Everything the writer needs, decided before the first frame.

    Attributes:
        codec: the codec.
        container: FFmpeg muxer name.
        layout: planar pixel layout written to the encoder.
        spec: Y'CbCr rule used to encode R'G'B' into `layout`.
        colour_matrix, colour_range, colour_primaries, colour_transfer: tags written.
        crf: quality for CRF codecs.
    """

    codec: CodecSpec
    container: str
    layout: PixelLayout
    spec: YCbCrSpec
    colour_matrix: str
    colour_range: str
    colour_primaries: str | None
    colour_transfer: str | None
    crf: int | None


def _with_bits(layout: PixelLayout, bits: int) -> str:
    suffix = "" if bits == 8 else f"{bits}le"
    if layout.kind == "gray":
        return f"gray{suffix}"
    if layout.kind == "rgb":
        return f"gbrp{suffix}"
    sub = {(0, 0): "444", (1, 0): "422", (1, 1): "420"}.get((layout.shift_x, layout.shift_y), "420")
    return f"yuv{sub}p{suffix}"


def _pick_pix_fmt(codec: CodecSpec, source: VideoInfo, opts: EncodeOptions) -> str:
    if opts.pix_fmt is not None:
        if opts.pix_fmt not in codec.pix_fmts:
            raise InputError(
                f"codec {codec.name} cannot write pixel format {opts.pix_fmt!r}; "
                f"it takes: {', '.join(codec.pix_fmts)}."
            )
        return opts.pix_fmt
    like = layout_of(source.pix_fmt)
    bits = opts.bit_depth or like.bits
    wanted = [
        _with_bits(like, b)
        for b in sorted({bits, 10, 12, 16, 8}, key=lambda b: (b < bits, abs(b - bits)))
    ]
    if like.kind == "rgb":
        # RGB sources (image sequences) become Y'CbCr for codecs without an RGB mode.
        yuv = PixelLayout(name="yuv420p", kind="yuv", bits=8, shift_x=1, shift_y=1)
        wanted += [_with_bits(yuv, bits), _with_bits(yuv, 10), "yuv420p"]
    for name in wanted:
        if name in codec.pix_fmts:
            if opts.bit_depth is not None and layout_of(name).bits != opts.bit_depth:
                continue
            return name
    if opts.bit_depth is not None:
        depths = sorted({layout_of(p).bits for p in codec.pix_fmts})
        raise InputError(
            f"codec {codec.name} cannot write {opts.bit_depth}-bit video; "
            f"it takes {', '.join(map(str, depths))} bits."
        )
    return codec.pix_fmts[0]


def resolve_output(path: Path, source: VideoInfo, opts: EncodeOptions) -> OutputFormat:
    """Decide codec, container, pixel format and colour tags for an output file.

    Unset options follow the source: same pixel layout and bit depth where the codec allows,
    same colour matrix, range, primaries and transfer.

    Args:
        path: output file; its extension picks the container.
        source: the input's video stream.
        opts: the user's encode options.
    Returns:
        The resolved format.
    Raises:
        InputError: an extension we cannot write, or a codec/container/pixel-format clash.
    """
    ext = path.suffix.lower()
    codec = CODEC_SPECS[opts.codec]
    if ext not in CONTAINERS:
        raise InputError(
            f"{path}: cannot write '{ext or 'no extension'}' files; "
            f"use one of {', '.join(sorted(CONTAINERS))}."
        )
    if ext not in codec.containers:
        raise InputError(
            f"{path}: codec {codec.name} cannot go in a {ext} file; "
            f"use {' or '.join(codec.containers)} (or pick another --codec)."
        )
    pix_fmt = _pick_pix_fmt(codec, source, opts)
    layout = layout_of(pix_fmt)
    source_kind = layout_of(source.pix_fmt).kind
    if layout.kind == "rgb":
        matrix, colour_range = "rgb", "pc"
    else:
        matrix = opts.colour_matrix or (
            source.colour_matrix if source.colour_matrix not in ("rgb", "ycgco") else "bt709"
        )
        colour_range = opts.colour_range or (source.colour_range if source_kind != "rgb" else "tv")
    primaries = source.colour_primaries or ("bt709" if source_kind == "rgb" else None)
    transfer = source.colour_transfer
    if source_kind == "rgb":
        # Image sequences were converted to display-referred sRGB on reading.
        transfer = "iec61966-2-1"
    spec = YCbCrSpec(
        matrix=matrix if matrix != "rgb" else "bt709",
        full_range=colour_range == "pc",
        bits=layout.bits,
    )
    return OutputFormat(
        codec=codec,
        container=CONTAINERS[ext],
        layout=layout,
        spec=spec,
        colour_matrix=matrix,
        colour_range=colour_range,
        colour_primaries=primaries,
        colour_transfer=transfer,
        crf=(opts.crf if opts.crf is not None else codec.default_crf) if codec.uses_crf else None,
    )
