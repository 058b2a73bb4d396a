"""The audit log of an enhancement: what went in, what came out, how, and how faithfully.

The log is one JSON document beside the output (`OUTPUT.audit.json`), validated against
`audit.schema.json` (shipped in this package, documented in docs/audit.md) before it is
written. It records the sha256 of the input, every output and every weights file; package and
library versions; the command and the resolved settings; the device and the determinism flags
in force; and per frame the pixel digest of the output as decoded, the data-consistency
residual and whether it was flagged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import cv2
import torch
from jsonschema import Draft202012Validator

from vidrefocus.errors import InputError
from vidrefocus.io.digest import file_sha256
from vidrefocus.io.probe import MediaInfo
from vidrefocus.io.writer import ffmpeg_exe
from vidrefocus.machine import cpu_model

__all__ = [
    "SCHEMA_ID",
    "DeterminismFlags",
    "audit_schema",
    "deterministic_runtime",
    "environment",
    "file_record",
    "input_record",
    "json_number",
    "read_audit",
    "validate_audit",
    "video_record",
]

SCHEMA_ID = "vidrefocus-audit/1"
SCHEMA_PATH = Path(__file__).with_name("audit.schema.json")
_PACKAGES = (
    "vidrefocus", "torch", "numpy", "av", "opencv-python-headless", "kornia", "decord",
    "safetensors", "imageio-ffmpeg", "ray", "jsonschema",
)  # fmt: skip


@cache
def audit_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every audit log validates against."""
    return json.loads(SCHEMA_PATH.read_text())


def validate_audit(doc: dict[str, Any], source: str = "audit log") -> None:
    """Raise InputError naming the first place where `doc` breaks the schema."""
    errors = sorted(
        Draft202012Validator(audit_schema()).iter_errors(doc), key=lambda e: list(e.path)
    )
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise InputError(
            f"{source}: not a valid vidrefocus audit log ({SCHEMA_ID}): at {where}: "
            f"{err.message}"
            + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")
        )


def read_audit(path: Path) -> dict[str, Any]:
    """Load and validate an audit log.

    Raises:
        InputError: missing, not JSON, or not valid against the schema.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no such audit log. `vidrefocus enhance` writes OUTPUT.audit.json."
        )
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a JSON audit log ({err}).") from err
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a vidrefocus audit log (a JSON object is expected).")
    validate_audit(doc, str(path))
    return doc


def json_number(value: float) -> float | None:
    """A float for JSON: inf and NaN (e.g. the PSNR of identical images) become null."""
    return None if value != value or value in (float("inf"), float("-inf")) else round(value, 4)


def file_record(path: Path) -> dict[str, Any]:
    """Path (absolute), size and sha256 of a file."""
    path = Path(path)
    return {
        "path": str(path.resolve()),
        "size_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }


def _ratio(value: Fraction) -> str:
    return f"{value.numerator}:{value.denominator}"


def input_record(path: Path) -> dict[str, Any]:
    """`file_record` of an input file; for an image-sequence folder, the sha256 of the list of
    its files' names and sha256 (so any changed, added or removed image changes it)."""
    if not path.is_dir():
        return file_record(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    listing = "".join(f"{p.name}\t{file_sha256(p)}\n" for p in files)
    return {
        "path": str(path.resolve()),
        "size_bytes": sum(p.stat().st_size for p in files),
        "sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "files": len(files),
    }


def video_record(info: MediaInfo) -> dict[str, Any]:
    """The facts of a video stream a reviewer checks: codec, size, pixel aspect, fields."""
    v = info.video
    assert v is not None
    return {
        "container": info.container,
        "codec": v.codec,
        "width": v.width,
        "height": v.height,
        "pix_fmt": v.pix_fmt,
        "sample_aspect_ratio": _ratio(v.sample_aspect_ratio),
        "field_order": v.field_order or "unknown",
        "frame_count": v.frame_count,
        "time_base": f"{v.time_base.numerator}/{v.time_base.denominator}",
    }


@cache
def _ffmpeg_version() -> str:
    try:
        out = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        return f"unknown ({err})"
    return out.splitlines()[0] if out else "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(device: torch.device) -> dict[str, Any]:
    """Package and library versions, interpreter, machine and device."""
    libs = {name: _version(name) for name in _PACKAGES}
    libs["ffmpeg (encoder binary)"] = _ffmpeg_version()
    libs.update({f"{k} (PyAV)": ".".join(map(str, v)) for k, v in av.library_versions.items()})
    libs["opencv (build)"] = cv2.__version__
    dev = {"type": device.type, "name": cpu_model()}
    if device.type == "cuda":
        dev["name"] = torch.cuda.get_device_name(device)
        dev["cuda"] = torch.version.cuda or "unknown"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count() or 0,
        "device": dev,
        "libraries": libs,
    }


@dataclass(frozen=True)
class DeterminismFlags:
    """The settings that make a run repeatable, as they were in force."""

    torch_threads: int
    opencv_threads: int
    deterministic_algorithms: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    float32_matmul_precision: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@contextmanager
def deterministic_runtime(threads: int) -> Iterator[DeterminismFlags]:
    """Pin what decides the bits of a result: torch and OpenCV thread counts, deterministic
    algorithms, cuDNN autotuning off, full float32 matmul precision. Restored on exit.

    Args:
        threads: CPU threads for torch and OpenCV (a reduction split differently can round
            differently, so a repeat run must use the same count).
    """
    saved = (
        torch.get_num_threads(),
        cv2.getNumThreads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_float32_matmul_precision(),
    )
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield DeterminismFlags(
            torch_threads=torch.get_num_threads(),
            opencv_threads=cv2.getNumThreads(),
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
            cudnn_deterministic=torch.backends.cudnn.deterministic,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            float32_matmul_precision=torch.get_float32_matmul_precision(),
        )
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])
        torch.use_deterministic_algorithms(saved[2])
        torch.backends.cudnn.deterministic = saved[3]
        torch.backends.cudnn.benchmark = saved[4]
        torch.set_float32_matmul_precision(saved[5])


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
