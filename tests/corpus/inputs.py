"""The hostile inputs of the reliability corpus, written deterministically into a folder.

Every input is made here, by the tests, with the ffmpeg CLI (`media.ffmpeg`), PyAV, OpenCV or
plain bytes: nothing is committed. Clips come from `clips` (tiny and bit-exact) unless their
size is the point; inputs with hostile timestamps are in `timestamps`. Nothing here imports
the code under test, except `ffmpeg_exe()` through `media` and `cctv_clips`.

`make_inputs(folder)` writes them all and returns name -> path; `INPUTS` says what each one is.

Example:
    >>> paths = make_inputs(tmp_path)  # doctest: +SKIP
    >>> paths["zero_byte"].stat().st_size
    0
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from cctv_clips import make_cctv_clip
from corpus.clips import (
    BITEXACT,
    CLIP_FRAMES,
    CLIP_SIZE,
    RATE,
    X264,
    X265,
    Hostile,
    clip,
    long_clip,
    synthetic,
)
from corpus.timestamps import TIMESTAMP_INPUTS
from media import SAMPLES, ffmpeg

__all__ = ["INPUTS", "make_inputs"]


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _png_as_mp4(folder: Path) -> Path:
    path = folder / "still.mp4"
    _, png = cv2.imencode(".png", np.full((24, 32, 3), (40, 120, 200), np.uint8))
    path.write_bytes(png.tobytes())
    return path


def _audio_only(folder: Path) -> Path:
    path = folder / "audio_only.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=0.5", "-c:a", "aac", *BITEXACT, str(path))
    return path


def _truncated_mid_gop(folder: Path) -> Path:
    full = long_clip(folder, ".full_for_cut.mkv")
    data = full.read_bytes()
    full.unlink()
    path = folder / "cut_mid_gop.mkv"
    path.write_bytes(data[: int(len(data) * 0.6)])  # inside the third GOP of four
    return path


def _corrupt_mid_stream(folder: Path) -> Path:
    path = long_clip(folder, "corrupt.mkv")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 512] = np.random.default_rng(11).bytes(512)
    path.write_bytes(bytes(data))
    return path


def _moov_missing(folder: Path) -> Path:
    path = synthetic(folder / "no_moov.mp4", after=("-movflags", "+faststart"))
    data = path.read_bytes()
    at = data.index(b"moov") - 4  # a box is a 32-bit size, then its type
    size = int.from_bytes(data[at : at + 4], "big")
    # cut out whole: FFmpeg finds a moov merely renamed to 'free'
    path.write_bytes(data[:at] + data[at + size :])
    return path


def _header_only(folder: Path) -> Path:
    path = synthetic(folder / "header_only.mkv")
    path.write_bytes(path.read_bytes()[:300])
    return path


def _sized(name: str, size: tuple[int, int], frames: int, pix_fmt: str = "yuv420p",
           source: str = "testsrc2") -> Callable[[Path], Path]:  # fmt: skip
    def make(folder: Path) -> Path:
        return synthetic(folder / name, size=size, frames=frames, pix_fmt=pix_fmt, source=source)

    return make


def _codec(name: str, codec: tuple[str, ...], pix_fmt: str) -> Callable[[Path], Path]:
    return lambda folder: synthetic(folder / name, codec=codec, pix_fmt=pix_fmt)


def _rotated(degrees: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        plain = synthetic(folder / f".plain{degrees}.mp4")
        path = folder / f"rotated_{degrees}.mp4"
        # the display matrix turns counter-clockwise; 90 is a phone held upright
        ffmpeg("-display_rotation", str(degrees), "-i", str(plain), "-c", "copy", *BITEXACT,
               str(path))  # fmt: skip
        plain.unlink()
        return path

    return make


def _anamorphic(folder: Path) -> Path:
    return synthetic(folder / "anamorphic.mp4", after=("-vf", "setsar=2/1"))


def _cctv(kind: str, name: str) -> Callable[[Path], Path]:
    return lambda folder: make_cctv_clip(folder, kind, frames=3, name=name).path


def _interlaced(folder: Path) -> Path:
    fields = (*X264, "-flags", "+ildct+ilme", "-x264-params", "tff=1")
    return synthetic(folder / "interlaced.mp4", codec=fields, after=("-vf", "setfield=tff"))


def _with_streams(path: Path, inputs: list[str], maps: list[str], codecs: list[str]) -> Path:
    """The ordinary clip's video, muxed with more inputs' streams."""
    w, h = CLIP_SIZE
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={RATE}", *inputs, "-map", "0:v", *maps,
        "-frames:v", str(CLIP_FRAMES), *X264, "-pix_fmt", "yuv420p", *codecs, *BITEXACT,
        str(path),
    )  # fmt: skip
    return path


def _many_audio(folder: Path) -> Path:
    inputs, maps = [], []
    for i in range(8):
        inputs += ["-f", "lavfi", "-i", f"sine=f={220 * (i + 1)}:d=0.2"]
        maps += ["-map", f"{i + 1}:a"]
    return _with_streams(folder / "many_audio.mkv", inputs, maps, ["-c:a", "pcm_s16le"])


def _subtitles(folder: Path) -> Path:
    srt = folder / ".subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,100\nHello\n\n"
                   "2\n00:00:00,100 --> 00:00:00,150\n[bold]not markup[/bold]\n")  # fmt: skip
    path = _with_streams(folder / "subtitles.mkv", ["-i", str(srt)], ["-map", "1:s"],
                         ["-c:s", "srt"])  # fmt: skip
    srt.unlink()
    return path


def _png_frames(folder: Path, numbers: list[int], sizes: dict[int, tuple[int, int]]) -> Path:
    folder.mkdir()
    for n in numbers:
        w, h = sizes.get(n, CLIP_SIZE)
        img = np.zeros((h, w, 3), np.uint8)
        img[:, : min(w, 6 * n)] = (0, 160, 255)
        cv2.imwrite(str(folder / f"frame_{n:04d}.png"), img)
    return folder


def _seq_missing(folder: Path) -> Path:
    return _png_frames(folder / "seq_missing", [1, 2, 4, 5], {})


def _seq_mixed_sizes(folder: Path) -> Path:
    return _png_frames(folder / "seq_mixed", [1, 2, 3, 4], {3: (40, 40)})


def _empty_folder(folder: Path) -> Path:
    path = folder / "empty_folder"
    path.mkdir()
    (path / "README.txt").write_text("no frames here\n")
    return path


def _batch_folder(folder: Path) -> Path:
    """Clips for a folder batch: two good ones and two that cannot be read."""
    path = folder / "batch_in"
    path.mkdir()
    clip(path, "good_a.mp4")
    clip(path, "good_b.mp4")
    (path / "zero_byte.mp4").write_bytes(b"")
    (path / "notes.mp4").write_text("not a video\n")
    return path


def _markup_name(folder: Path) -> Path:
    path = folder / "[bold]take [x] 1.mp4"
    path.write_text("not a video\n")
    return path


def _markup_name_ok(folder: Path) -> Path:
    return synthetic(folder / "[red]take [f2] 2.mp4")


def _markup_metadata(folder: Path) -> Path:
    return synthetic(folder / "tagged.mp4", after=("-metadata", "title=[/] [bold]Scene 1[/i]"))


def _scene(folder: Path) -> Path:
    """The first 48 frames of samples/scene.mp4 at 320x180 with a keyframe every 8 frames
    (chunks of 1/3 s), with its audio: a clip that takes long enough to interrupt, in chunks
    small enough to resume. `_scene_depth` is its depth (16-bit mm)."""
    path = folder / "scene.mp4"
    ffmpeg(
        "-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-map", "0:a", "-frames:v", "48",
        "-vf", "scale=320:180", *X264, "-g", "8", "-pix_fmt", "yuv420p", "-c:a", "copy",
        "-shortest", *BITEXACT, str(path),
    )  # fmt: skip
    return path


def _scene_depth(folder: Path) -> Path:
    depth = folder / "scene_depth"
    depth.mkdir()
    for i in range(48):
        mm = cv2.imread(str(SAMPLES / "scene_depth" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        small = cv2.resize(mm, (320, 180), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(depth / f"{i:06d}.png"), small)
    return depth


# fmt: off
INPUTS: tuple[Hostile, ...] = (
    Hostile("control", "nothing (a good clip: the harness itself works)", clip),
    Hostile("scene", "nothing (48 frames: long enough to interrupt)", _scene),
    Hostile("scene_depth", "nothing (the scene's depth)", _scene_depth),
    # bytes and containers
    Hostile("zero_byte", "an empty file", _bytes("zero_byte.mp4", b"")),
    Hostile("text_as_mp4", "a text file named .mp4", _bytes("notes.mp4", b"shot list: 1A\n" * 4)),
    Hostile("png_as_mp4", "a PNG image named .mp4", _png_as_mp4),
    Hostile("audio_only", "no video stream", _audio_only),
    Hostile("truncated_mid_gop", "Matroska cut off inside a GOP", _truncated_mid_gop),
    Hostile("corrupt_mid_stream", "512 random bytes in the middle", _corrupt_mid_stream),
    Hostile("moov_missing", "MP4 without its moov (index) box", _moov_missing),
    Hostile("header_only", "the first 300 bytes of a Matroska file", _header_only),
    # frame sizes
    Hostile("size_1x1", "1x1 pixels", _sized("1x1.mp4", (1, 1), 3, "yuv444p", "color=c=red")),
    Hostile("size_2x2", "2x2 pixels", _sized("2x2.mp4", (2, 2), 3)),
    Hostile("size_33x19", "odd width and height", _sized("33x19.mp4", (33, 19), 3, "yuv444p")),
    Hostile("size_1919x1079", "odd full-HD size",
            _sized("1919x1079.mp4", (1919, 1079), 2, "yuv444p")),
    Hostile("size_8192", "8192x8192, one frame",
            _sized("8192x8192.mp4", (8192, 8192), 1, source="color=c=gray")),
    # pixel formats
    Hostile("tenbit", "10-bit H.264", _codec("tenbit.mp4", X264, "yuv420p10le")),
    Hostile("twelvebit", "12-bit HEVC", _codec("twelvebit.mp4", X265, "yuv420p12le")),
    Hostile("yuv444", "4:4:4 chroma", _codec("yuv444.mp4", X264, "yuv444p")),
    Hostile("gray", "greyscale, no chroma", _codec("gray.mkv", ("-c:v", "ffv1"), "gray")),
    Hostile("gray16", "16-bit greyscale", _codec("gray16.mkv", ("-c:v", "ffv1"), "gray16le")),
    Hostile("rgba_png", "RGB with alpha (PNG in MOV)", _codec("rgba.mov", ("-c:v", "png"), "rgba")),
    # geometry
    Hostile("rotated_90", "display matrix 90 degrees", _rotated(90)),
    Hostile("rotated_180", "display matrix 180 degrees", _rotated(180)),
    Hostile("rotated_270", "display matrix 270 degrees", _rotated(270)),
    Hostile("anamorphic", "pixels twice as wide as tall (SAR 2:1)", _anamorphic),
    Hostile("cctv_cif", "CIF MPEG-4 in AVI, SAR 12:11", _cctv("mpeg4_cif", "cctv_cif")),
    Hostile("interlaced", "interlaced H.264, top field first", _interlaced),
    Hostile("interlaced_mpeg2", "interlaced MPEG-2 PS (a DVR export)",
            _cctv("mpeg2_interlaced", "dvr_export")),
    # time
    *TIMESTAMP_INPUTS,
    # streams
    Hostile("many_audio", "eight audio streams", _many_audio),
    Hostile("subtitles", "a SubRip subtitle stream", _subtitles),
    # folders and names
    Hostile("seq_missing_frame", "PNG sequence with frame 3 missing", _seq_missing),
    Hostile("seq_mixed_sizes", "PNG sequence whose frame 3 is another size", _seq_mixed_sizes),
    Hostile("empty_folder", "a folder without images", _empty_folder),
    Hostile("batch_folder", "a batch folder with two unreadable clips", _batch_folder),
    Hostile("markup_name_bad", "rich markup in the name of a bad file", _markup_name),
    Hostile("markup_name_ok", "rich markup in the name of a good clip", _markup_name_ok),
    Hostile("markup_metadata", "rich markup in the title tag", _markup_metadata),
)
# fmt: on


def make_inputs(folder: Path) -> dict[str, Path]:
    """Write every input of `INPUTS` into `folder` (created); returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {h.name: h.make(folder) for h in INPUTS}
    for stray in folder.glob(".*"):  # intermediates of the makers
        shutil.rmtree(stray) if stray.is_dir() else stray.unlink()
    return paths
