"""`vidrefocus verify AUDIT.json`: check an enhancement against its audit log, and repeat it.

1. The log validates against its schema.
2. The input on disk is the audited one (sha256).
3. The weights file is the audited one (sha256).
4. Every output on disk is the audited file (sha256); a changed video is decoded and its
   frames compared with the audited pixel digests, naming the first frame that differs.
5. The enhancement runs again with the audited settings and configuration into a temporary
   folder; its frames and files must be bit-identical to the audited ones.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrefocus.analyst.audit import input_record, read_audit
from vidrefocus.analyst.enhance import EnhanceRequest, enhance
from vidrefocus.config import Config
from vidrefocus.errors import InputError
from vidrefocus.io.digest import FrameDigest, file_sha256, frame_digests
from vidrefocus.runtime.local import Progress

__all__ = ["Check", "VerifyReport", "first_difference", "verify"]


@dataclass(frozen=True)
class Check:
    """One verification step: what was checked, whether it held, and the detail."""

    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    audit: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def _frame_name(entry: dict[str, Any]) -> str:
    return f"frame f{entry['index']} (pts {entry['pts']}, {entry['time_s']:.3f} s)"


def first_difference(frames: list[dict[str, Any]], digests: Iterable[FrameDigest]) -> str | None:
    """Where decoded `digests` first depart from the audited `frames`, or None if they match.

    Stops decoding at the first difference.
    """
    count = 0
    for entry, got in zip(frames, digests, strict=False):
        count += 1
        if got.damaged:
            return f"{_frame_name(entry)} cannot be decoded (damaged data)"
        if got.sha256 != entry["output_sha256"]:
            return (
                f"{_frame_name(entry)} differs (pixel digest {got.sha256[:12]}, audited "
                f"{entry['output_sha256'][:12]})"
            )
    if count < len(frames):
        return f"the video ends after {count} frames; the audit lists {len(frames)}"
    return None


def _count_extra(path: Path, audited: int) -> int:
    return sum(1 for _ in frame_digests(path)) - audited


def _check_file(report: VerifyReport, name: str, path: Path, audited: dict[str, Any]) -> bool:
    if not path.is_file():
        report.add(name, False, f"{path}: missing")
        return False
    digest = file_sha256(path)
    same = digest == audited["sha256"]
    report.add(name, same, f"{path}: sha256 {'matches' if same else 'differs: ' + digest[:16]}")
    return same


def _compare_video(report: VerifyReport, name: str, path: Path, doc: dict[str, Any]) -> None:
    """The video file on disk against the audit: bytes first, then frames if they differ."""
    audited = doc["outputs"]["video"]
    if _check_file(report, name, path, audited):
        return
    if not path.is_file():
        return
    try:
        where = first_difference(doc["frames"], frame_digests(path))
    except InputError as err:
        report.add(f"{name} frames", False, f"cannot be read as video: {err}")
        return
    if where is None and _count_extra(path, len(doc["frames"])) > 0:
        where = "it holds more frames than the audit lists"
    if where is None:
        detail = "every frame's pixels match the audit; only container bytes differ"
    else:
        detail = f"first difference: {where}"
    report.add(f"{name} frames", False, detail)


def verify(
    audit_path: Path,
    config: Config | None = None,
    *,
    input_path: Path | None = None,
    output_path: Path | None = None,
    rerun: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> VerifyReport:
    """Check an enhancement against its audit log and, unless `rerun` is False, repeat it.

    Args:
        audit_path: the `OUTPUT.audit.json` file.
        config: the configuration to re-run with; None takes the audited one (normal use).
        input_path: where the input is now, if it moved (default: the audited path).
        output_path: where the output is now, if it moved (default: the audited path, or the
            file of that name beside the audit log).
        rerun: repeat the enhancement and compare (the slow part).
        progress: called after each re-run frame.
    Returns:
        The checks made; `ok` is True only if every one held.
    Raises:
        InputError: the audit log is missing, unreadable or invalid.
    """
    audit_path = Path(audit_path)
    doc = read_audit(audit_path)
    report = VerifyReport(audit_path)
    report.add("audit log", True, f"valid {doc['schema']} document")
    settings = doc["settings"]
    src = Path(input_path or settings["input"])
    if not src.exists():
        report.add("input", False, f"{src}: missing (pass --input where it is now)")
        return report
    found = input_record(src)["sha256"]
    same_input = found == doc["input"]["sha256"]
    report.add("input", same_input, f"{src}: sha256 {'matches' if same_input else 'differs'}")
    if config is None:
        config = Config.model_validate(doc["config"])
    for weights in doc["method"]["weights"]:
        _check_file(report, "weights", Path(weights["path"]), weights)
    out = Path(output_path or settings["output"])
    if output_path is None and not out.exists() and (audit_path.parent / out.name).exists():
        out = audit_path.parent / out.name
    _compare_video(report, "output", out, doc)
    outputs = doc["outputs"]
    if "side_by_side" in outputs:
        sbs = out.with_name(Path(outputs["side_by_side"]["path"]).name)
        _check_file(report, "side-by-side", sbs, outputs["side_by_side"])
    for still in outputs.get("exported_frames", []):
        _check_file(report, f"still f{still['index']}", Path(still["path"]), still)
    if rerun and same_input:
        _rerun(report, doc, src, config, progress)
    return report


def _rerun(
    report: VerifyReport,
    doc: dict[str, Any],
    src: Path,
    config: Config,
    progress: Callable[[Progress], None] | None,
) -> None:
    settings = doc["settings"]
    work = Path(tempfile.mkdtemp(prefix="vidrefocus-verify-"))
    try:
        stills = work / "stills" if settings["export_frames"] is not None else None
        req = EnhanceRequest.from_settings(
            settings, input=src, output=work / Path(settings["output"]).name, export_frames=stills
        )
        result = enhance(req, config, progress=progress)
        again = read_audit(result.audit)
        where = first_difference(doc["frames"], (
            FrameDigest(f["pts"], f["output_sha256"]) for f in again["frames"]
        ))  # fmt: skip
        if where is None and len(again["frames"]) != len(doc["frames"]):
            where = (
                f"the re-run wrote {len(again['frames'])} frames, the audit lists "
                f"{len(doc['frames'])}"
            )
        report.add(
            "re-run frames",
            where is None,
            f"{len(again['frames'])} frames bit-identical"
            if where is None
            else f"first difference: {where}",
        )
        same = again["outputs"]["video"]["sha256"] == doc["outputs"]["video"]["sha256"]
        report.add(
            "re-run file",
            same,
            "byte-identical video file" if same else "the video file's bytes differ",
        )
        for key in ("side_by_side",):
            if key in doc["outputs"]:
                ok = again["outputs"][key]["sha256"] == doc["outputs"][key]["sha256"]
                report.add(f"re-run {key.replace('_', '-')}", ok, "identical" if ok else "differs")
        stills_then = {s["index"]: s["sha256"] for s in doc["outputs"].get("exported_frames", [])}
        stills_now = {s["index"]: s["sha256"] for s in again["outputs"].get("exported_frames", [])}
        if stills_then:
            bad = sorted(i for i in stills_then if stills_now.get(i) != stills_then[i])
            report.add(
                "re-run stills", not bad,
                f"{len(stills_then)} identical" if not bad else f"frame f{bad[0]} differs",
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
