"""The corpus table: which commands run over which hostile input, and what each must do.

A case's expected outcome is what vidrefocus *should* do (DESIGN.md, "Errors"): a user's
mistake or an unusable input exits 2 with one message naming the file and the problem; a
processing failure (the disk filling up) exits 1; an interrupted job exits 130 (SIGINT) or
143 (SIGTERM); whatever FFmpeg itself plays is processed (exit 0), and `info` describes any
file it can open. Where vidrefocus does otherwise because of a bug outside `cli/` and `io/`,
the case keeps the right outcome and names the bug (the test marks it xfail, strict: fixing
the bug makes the case fail until its mark is removed).

The tables are kept out of the formatter (`fmt: off`): one line per input reads as a table.
"""

from __future__ import annotations

import os
from dataclasses import replace

from corpus.cases import ALL_COMMANDS, Case

__all__ = ["CASES", "HUGE"]


def ok(input: str, *commands: str, says: tuple[str, ...] = (), **kw: object) -> list[Case]:
    """`commands` process `input` (exit 0); `says`: warnings the run must print."""
    return [Case(input, c, 0, says, **kw) for c in commands]  # type: ignore[arg-type]


def refused(input: str, commands: tuple[str, ...], *says: str, **kw: object) -> list[Case]:
    """`commands` refuse `input` (exit 2) with a message naming it and saying `says`."""
    return [Case(input, c, 2, says, **kw) for c in commands]  # type: ignore[arg-type]


def unreadable(input: str, *says: str, info: int = 2) -> list[Case]:
    """Every command refuses `input`; `info` too (2), or it describes what is there (0)."""
    first = [Case(input, "info", 2, says)] if info else ok(input, "info")
    return [*first, *refused(input, ALL_COMMANDS[1:], *says)]


def bug(cases: list[Case], reason: str) -> list[Case]:
    """`cases` fail today for a bug outside cli/ and io/: `reason` says which."""
    return [replace(c, bug=reason) for c in cases]


_METRIC = ("--depth", "{depth_good}", "--focus", "0s:2m")  # the control clip's own depth
_SCENE = ("--depth", "{scene_depth}", "--focus", "0s:2m")
_CHUNKS = ("--config", "{config_small_chunks}")
_BROKEN_TIME = "does not increase"
_GAP = "missing (first: 3)"
_FULL = "file size limit|file too large|no space left"
_ROOT = os.geteuid() == 0
# Root writes into a chmod 555 folder; /proc refuses new files to everyone.
_UNWRITABLE = "/proc/vidrefocus-corpus-out" if _ROOT else "readonly/out"

# fmt: off
_INPUTS = [
    *ok("control", *ALL_COMMANDS),
    *unreadable("zero_byte", "empty (0 bytes)"),
    *unreadable("text_as_mp4", "not a media file"),
    *unreadable("moov_missing", "not a media file"),
    *unreadable("header_only", "not a media file"),
    *unreadable("empty_folder", "no images found"),
    *unreadable("markup_name_bad", "not a media file"),
    *unreadable("seq_mixed_sizes", "differs from the first frame", info=0),
    *unreadable("audio_only", "no video stream", info=0),
    # FFmpeg opens a PNG renamed to .mp4 as a one-frame video, and so does vidrefocus;
    # decord (random access: enhance, preview) cannot index a lone image and says so.
    *ok("png_as_mp4", "info", "transcode", "refocus", "deblur", "depth", "plot-focus"),
    *refused("png_as_mp4", ("enhance", "preview"), "cannot index"),
    # a damaged stream gives every frame that decodes, as FFmpeg does
    *ok("truncated_mid_gop", "info", "transcode", "refocus", "deblur", "depth", "preview"),
    *ok("corrupt_mid_stream", "info", "transcode", "refocus", "deblur", "plot-focus"),
    *ok("size_1x1", "info", "transcode", "deblur", "enhance", "depth", "preview", "plot-focus"),
    *ok("size_1x1", "refocus"),
    *ok("size_2x2", *ALL_COMMANDS),
    *ok("size_33x19", *ALL_COMMANDS),
    *ok("size_1919x1079", "info", "transcode", "depth"),
    *ok("size_8192", "info", "transcode"),  # plain I/O; refocus and deblur: see HUGE
    *ok("tenbit", "info", "transcode", "refocus", "deblur", "enhance"),
    *ok("twelvebit", "info", "transcode", "refocus", "deblur"),
    *ok("yuv444", "info", "transcode", "refocus", "deblur"),
    *ok("gray", "info", "transcode", "refocus", "deblur", "depth"),
    *ok("gray16", "info", "transcode", "refocus"),
    *ok("rgba_png", "info", "transcode", "refocus", "depth"),
    *ok("rotated_90", "info", "transcode", "refocus", "enhance", "preview", "plot-focus"),
    *ok("rotated_180", "info", "transcode", "refocus", "depth"),
    *ok("rotated_270", "info", "transcode", "deblur", "preview"),
    *ok("anamorphic", "info", "transcode", "refocus", "enhance"),
    *ok("cctv_cif", "info", "transcode", "deblur"),
    *ok("interlaced", "info", "transcode", "refocus", "enhance"),
    *ok("interlaced_mpeg2", "info", "transcode", "deblur"),
    *ok("vfr_gaps", "info", "transcode", "refocus", "depth", "preview", "plot-focus"),
    *ok("vfr_gaps", "transcode", extra=("--workers", "0", *_CHUNKS), label="chunked"),
    # Timestamps that repeat or go back cannot be kept (outputs keep the input's pts):
    # every command refuses them; info describes the file.
    *ok("duplicate_pts", "info"),
    *refused("duplicate_pts", ("transcode", "refocus", "enhance", "preview"), _BROKEN_TIME),
    *refused("duplicate_pts", ("plot-focus",), _BROKEN_TIME),
    *ok("non_monotonic_pts", "info"),
    *refused("non_monotonic_pts", ("transcode", "refocus", "deblur"), _BROKEN_TIME),
    *refused("non_monotonic_pts", ("enhance", "preview", "plot-focus"), _BROKEN_TIME),
    *ok("negative_start", "info", "transcode", "refocus", "preview", "plot-focus"),
    *ok("negative_start", "transcode", extra=("--workers", "0", *_CHUNKS), label="chunked"),
    *ok("no_timestamps", "info", "transcode", "refocus", "deblur", "plot-focus"),
    *refused("no_timestamps", ("enhance",), "cannot index"),
    *ok("elementary_h264", "info", "transcode", "refocus", "depth"),
    *refused("elementary_h264", ("preview",), "cannot index"),
    *refused("elementary_h264", ("transcode",), "no timestamps", "without --workers",
             extra=("--workers", "0"), label="chunked"),
    *ok("many_audio", "info", "transcode", "refocus"),
    *ok("subtitles", "info", "transcode", "refocus", "depth", "enhance"),
    *ok("subtitles", "transcode", output="out.mkv", label="mkv"),
    *ok("subtitles", "transcode", extra=("--workers", "0"), label="chunked"),
    *ok("seq_missing_frame", "info"),
    *ok("seq_missing_frame", "transcode", "enhance", "preview", says=(_GAP,)),
    *ok("seq_missing_frame", "refocus", says=(_GAP,)),
    # plot-focus decodes no frame when the clip's estimated depth is cached: no gap warning
    *ok("seq_missing_frame", "plot-focus"),
    # rich markup in names and tags is printed as text, never interpreted
    *ok("markup_name_ok", "info"),
    *ok("markup_name_ok", "transcode", output="[bold]out [x].mp4", quiet=False),
    *ok("markup_name_ok", "refocus", output="[red]out.mp4", quiet=False),
    *ok("markup_metadata", "info", "transcode"),
]
# fmt: on


def _depth(name: str, *says: str, commands: tuple[str, ...] = ("refocus",),
           units: tuple[str, ...] = ()) -> list[Case]:  # fmt: skip
    extra = ("--depth", f"{{{name}}}", *units, "--focus", "0s:2m")
    return refused("control", commands, *says, names=name, extra=extra, label=name)


def _keys(name: str, says: str, commands: tuple[str, ...]) -> list[Case]:
    extra = ("--depth", "{depth_good}", "--focus-file", f"{{{name}}}")
    return refused("control", commands, says, names=name, extra=extra, label=name)


def _config(name: str, says: str, commands: tuple[str, ...], input: str = "control",
            extra: tuple[str, ...] = ()) -> list[Case]:  # fmt: skip
    args = (*extra, "--config", f"{{{name}}}")
    return refused(input, commands, says, names=name, extra=args, label=name)


_OUT_COMMANDS = (("transcode", ".mp4"), ("refocus", ".mp4"), ("deblur", ".mp4"),
                 ("enhance", ".mkv"), ("depth", ""), ("preview", ".png"),
                 ("plot-focus", ".png"))  # fmt: skip

# fmt: off
_SIDE_INPUTS = [
    *ok("control", "refocus", "plot-focus", extra=_METRIC, label="depth"),
    *_depth("depth_wrong_count", "exactly one map per frame",
            commands=("refocus", "preview", "plot-focus")),
    *ok("control", "refocus", says=("resampling the depth",), label="depth_wrong_size",
        extra=("--depth", "{depth_wrong_size}", "--focus", "0s:2m")),
    *_depth("depth_nan", "NaN", units=("--depth-units", "m")),
    *_depth("depth_nan", "NaN", commands=("preview",), units=("--depth-units", "m")),
    *_depth("depth_zero", "must be positive"),
    *_depth("depth_corrupt", "not a readable image"),
    *_depth("depth_empty", "no depth maps found"),
    *_keys("focus_empty", "must be a list", ("refocus", "preview", "plot-focus")),
    *_keys("focus_unsorted", "is not after", ("refocus", "plot-focus")),
    *_keys("focus_out_of_range", "after the end of the clip", ("refocus", "plot-focus")),
    *_keys("focus_malformed", "not valid yaml", ("refocus", "preview")),
    *_keys("focus_bad_value", "f_number", ("refocus", "plot-focus")),
    *_config("config_wrong_type", "encode.crf", ("transcode", "refocus", "enhance")),
    *_config("config_not_mapping", "mapping", ("transcode", "deblur")),
    *_config("config_malformed", "yaml", ("transcode", "depth")),
    *_config("config_bad_range", "chunk_seconds", ("transcode",), extra=("--workers", "0")),
    *_config("config_wrong_type", "encode.crf", ("batch",), "batch_folder",
             ("--command", "transcode")),
    *refused("batch_malformed", ("batch",), "yaml"),
    *refused("batch_unknown_key", ("batch",), "comand"),
    *refused("control", ("batch",), "not a YAML job list", extra=("--command", "transcode"),
             label="video_as_jobs"),
    # A folder of clips, two unreadable: the good ones are done, each bad one is named, the
    # batch exits 1 (a clip failed) and no bad clip leaves an output.
    Case("batch_folder", "batch", 1, ("failed", "notes.mp4", "zero_byte.mp4"),
         extra=("--command", "transcode"),
         leaves=("batch", "batch/good_a.mp4", "batch/good_b.mp4", "batch/vidrefocus-batch.json",
                 "batch/.vidrefocus-batch.json.lock")),
]

_OUTPUTS = [
    *[Case("control", c, 2, ("is the input",), output="{input}", label="out_is_input")
      for c, _ in _OUT_COMMANDS],
    *[Case("control", c, 2, ("does not exist",), "output", output=f"missing/out{ext}",
           label="out_missing_folder") for c, ext in _OUT_COMMANDS],
    *[Case("control", c, 2, ("not writable",), "output", output=_UNWRITABLE + ext,
           label="out_unwritable", prepare=None if _ROOT else "readonly")
      for c, ext in _OUT_COMMANDS],
    Case("control", "preview", 2, ("--overwrite",), "output", label="out_exists",
         prepare="exists"),
    # The disk fills up (a file size limit): exit 1, the output named, nothing left.
    *[Case("control", c, 1, (_FULL,), "output", how="full_disk", label="disk_full", extra=x)
      for c, x in (("transcode", ()), ("refocus", _METRIC), ("depth", ()),
                   ("deblur", ("--workers", "0")))],
    Case("control", "enhance", 1, (_FULL,), "output", how="full_disk", label="disk_full"),
]

_INTERRUPTS = [
    Case("scene", "refocus", 130, ("interrupted",), "output", _SCENE, "sigint", label="sigint"),
    Case("scene", "deblur", 143, ("terminated",), "output", how="sigterm", label="sigterm"),
    Case("scene", "transcode", 130, ("interrupted",), "output", how="sigint",
         extra=("--workers", "0", "--encoder-preset", "veryslow", *_CHUNKS),
         label="sigint_chunked"),
    # Ray: a chunked job on one worker, and one stopped mid-job; neither leaves a process.
    *ok("control", "deblur", how="process", extra=("--workers", "1"), label="ray"),
    Case("scene", "transcode", 143, ("terminated",), "output", how="sigterm",
         extra=("--workers", "1", "--encoder-preset", "veryslow", *_CHUNKS),
         label="sigterm_ray"),
]
# fmt: on

# 8192x8192: refocus and deblur would need ~100 GiB; the memory guard (vidrefocus/memory.py)
# refuses them before any work. They run in a process with 8 GiB of address space and a short
# timeout, so that without the guard they fail inside those limits, not in the machine's.
HUGE = refused("size_8192", ("refocus", "deblur"), "8192x8192", "needs about", how="guarded")

CASES: tuple[Case, ...] = (*_INPUTS, *HUGE, *_SIDE_INPUTS, *_OUTPUTS, *_INTERRUPTS)
