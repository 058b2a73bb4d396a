"""Options several commands share (configuration, encoding, chunks, workers) and their use."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidrefocus.config import CODECS, Config, available_presets, load_config

__all__ = [
    "add_config_args",
    "add_encode_args",
    "add_job_args",
    "add_runtime_args",
    "chunked",
    "config_from",
    "run_chunked",
]


def add_job_args(
    p: argparse.ArgumentParser,
    *,
    input_help: str | None = None,
    output_help: str | None = None,
    output_metavar: str | None = None,
    overwrite_help: str = "replace an existing output",
) -> None:
    """The positional input, `-o/--output`, `--overwrite`, `-q` and `--json` of a job."""
    p.add_argument("input", type=Path, help=input_help)
    p.add_argument("-o", "--output", type=Path, required=True, metavar=output_metavar,
                   help=output_help)  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument(
        "--preset",
        default="default",
        metavar="NAME",
        help=f"bundled preset ({', '.join(available_presets())})",
    )
    g.add_argument("--config", type=Path, action="append", default=[], metavar="FILE",
                   help="YAML file merged over the preset (repeatable)")  # fmt: skip


def add_encode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("encoding (default: like the input)")
    g.add_argument("--codec", help=f"one of {', '.join(CODECS)}")
    g.add_argument("--crf", type=int, help="quality for h264/h265 (lower = better; 18 default)")
    g.add_argument("--encoder-preset", help="x264/x265 speed preset (default medium)")
    g.add_argument("--pix-fmt", help="output pixel format, e.g. yuv420p, yuv422p10le")
    g.add_argument("--bit-depth", type=int, help="8, 10, 12 or 16")
    g.add_argument("--audio", help="copy (default), aac or none")
    g.add_argument("--threads", type=int, help="encoder threads (0 = automatic)")
    g.add_argument("--bitexact", action="store_true", default=None,
                   help="byte-identical output for the same input and settings (no random "
                        "container ids or version strings; x264/x265 on fixed threads)",
                   )  # fmt: skip
    g.add_argument("--sequence-fps", type=float, help="frame rate of image-sequence input")


def add_weights_arg(g: argparse._ArgumentGroup) -> None:
    """`--weights FILE`: DeblurNet weights other than the packaged ones (`weights_override`)."""
    g.add_argument("--weights", type=Path, metavar="FILE",
                   help="DeblurNet .safetensors (default: the packaged weights)")  # fmt: skip


def weights_override(args: argparse.Namespace) -> dict[str, Any]:
    """The `deblur.weights` override of `--weights`, absolute, so a worker in another folder
    (or on another node) finds the same file."""
    return {"deblur.weights": str(args.weights.resolve()) if args.weights is not None else None}


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chunks and workers (Ray; default: one pass in this process)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="cut the clip into chunks and run them on N Ray workers "
                        "(0 = chunks in this process, for debugging)")  # fmt: skip
    g.add_argument("--address", metavar="ADDR",
                   help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                        "(default: start Ray on this machine)")  # fmt: skip
    g.add_argument("--resume", action="store_true",
                   help="reuse the finished chunks of an interrupted run of this job")  # fmt: skip
    g.add_argument("--work-dir", type=Path, metavar="DIR",
                   help="chunks and manifest, kept after success (default: a hidden "
                        "folder beside the output, removed after success)")  # fmt: skip


def chunked(args: argparse.Namespace) -> bool:
    # `--workers 0` counts: chunks in this process (note 0 == False, hence `is not None`).
    given = (args.workers, args.address, args.work_dir)
    return args.resume or any(value is not None for value in given)


def run_chunked(
    args: argparse.Namespace, config: Config, factory: Any, on_progress: Callable[[Any], None]
) -> Any:
    from vidrefocus.runtime.driver import run_job

    return run_job(
        args.input, args.output, config, factory=factory, workers=args.workers,
        address=args.address, resume=args.resume, work_dir=args.work_dir,
        overwrite=args.overwrite, progress=on_progress,
    )  # fmt: skip


def _encode_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "encode.codec": getattr(args, "codec", None),
        "encode.crf": getattr(args, "crf", None),
        "encode.preset": getattr(args, "encoder_preset", None),
        "encode.pix_fmt": getattr(args, "pix_fmt", None),
        "encode.bit_depth": getattr(args, "bit_depth", None),
        "encode.audio": getattr(args, "audio", None),
        "encode.threads": getattr(args, "threads", None),
        "encode.bitexact": getattr(args, "bitexact", None),
        "input.sequence_fps": getattr(args, "sequence_fps", None),
    }


def config_from(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Config:
    """The preset, the --config files, then the encode options and `overrides` (dotted keys;
    None values are "not given")."""
    return load_config(args.preset, args.config, {**_encode_overrides(args), **(overrides or {})})
