"""`vidrefocus enhance`: faithful, audited deblurring of surveillance footage.

DeblurNet alone (a regression network; nothing generative), per frame or temporal (fusing only
the footage's own previous frames), on the whole frame or a region of interest; interlaced
video field by field. Every output appears whole or not at all, together with its audit log
(`vidrefocus.analyst.audit`), and the same input, settings and version give the same bytes on
CPU (`vidrefocus verify` checks it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Literal

from torch import Tensor

from vidrefocus.analyst.audit import (
    SCHEMA_ID,
    deterministic_runtime,
    environment,
    file_record,
    input_record,
    json_number,
    utc_now,
    validate_audit,
    video_record,
)
from vidrefocus.analyst.process import (
    ROI_MARGIN_PX,
    EnhancedFrame,
    FrameEnhancer,
    paste,
    upscale,
    upscale_note,
)
from vidrefocus.analyst.select import Roi, Span, frame_spans, parse_roi
from vidrefocus.analyst.view import side_by_side
from vidrefocus.config import Config
from vidrefocus.errors import InputError, ProcessingError
from vidrefocus.io.digest import frame_digests
from vidrefocus.io.formats import CONTAINERS
from vidrefocus.io.probe import probe
from vidrefocus.io.random_access import RandomAccessReader
from vidrefocus.io.sequence import write_image
from vidrefocus.io.staged import StagedOutput
from vidrefocus.io.writer import VideoWriter
from vidrefocus.memory import check_memory
from vidrefocus.models.deblurnet import MULTIPLE, default_weights_path, load_deblurnet
from vidrefocus.runtime.local import Progress
from vidrefocus.stages import torch_device

__all__ = ["EnhanceRequest", "EnhanceResult", "audit_path_for", "enhance", "side_by_side_path_for"]

log = logging.getLogger(__name__)

FieldMode = Literal["auto", "separate", "frame"]
INTERLACED = ("tt", "bb", "tb", "bt")
MAX_SCALE = 16
_STILL_EXT = {"png": "png", "tiff": "tif"}


def audit_path_for(output: Path) -> Path:
    """Where the audit log of `output` goes: `OUTPUT.audit.json` beside it."""
    return output.with_name(output.name + ".audit.json")


def side_by_side_path_for(output: Path) -> Path:
    """Where `--side-by-side` writes: `NAME.side_by_side.EXT` beside the output."""
    return output.with_name(f"{output.stem}.side_by_side{output.suffix}")


@dataclass(frozen=True)
class EnhanceRequest:
    """What to enhance and how: everything but the configuration.

    Attributes:
        input: a video file (or an image sequence folder).
        output: the enhanced video (.mkv, .mp4, .mov, ...).
        roi: "X,Y,W,H" region to enhance; None for the whole frame.
        roi_output: "pass" keeps the whole frame, the rest passed through untouched; "crop"
            writes the region alone.
        scale: integer enlargement of the cropped region for viewing (needs "crop").
        scale_filter: "nearest" or "lanczos" (Lanczos-3).
        frames: `--frames` spec (`frame_spans`); None for every frame.
        temporal: fuse the previous frame's flow-warped features; False: frame by frame.
        fields: "auto" processes interlaced video field by field, "separate" always, "frame"
            never.
        side_by_side: also write original | enhanced, labelled (`side_by_side_path_for`).
        export_frames: folder for lossless stills of output frames.
        export_at: which output frames to export (`--frames` syntax); None = all of them.
        export_format: "png" or "tiff" (16-bit when the source has more than 8 bits).
        overwrite: replace existing outputs.
    """

    input: Path
    output: Path
    roi: str | None = None
    roi_output: Literal["pass", "crop"] = "pass"
    scale: int = 1
    scale_filter: Literal["nearest", "lanczos"] = "lanczos"
    frames: str | None = None
    temporal: bool = True
    fields: FieldMode = "auto"
    side_by_side: bool = False
    export_frames: Path | None = None
    export_at: str | None = None
    export_format: Literal["png", "tiff"] = "png"
    overwrite: bool = False

    def settings(self) -> dict[str, Any]:
        """The request as JSON values (paths absolute), as the audit records it."""
        out = asdict(self)
        for key in ("input", "output", "export_frames"):
            if out[key] is not None:
                out[key] = str(Path(out[key]).resolve())
        out.pop("overwrite")
        return out

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **changes: Any) -> EnhanceRequest:
        """The request an audit's `settings` describe, with some fields replaced."""
        values = {**settings, **changes}
        for key in ("input", "output", "export_frames"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        return cls(**values)


@dataclass(frozen=True)
class EnhanceResult:
    output: Path
    audit: Path
    frames: int
    flagged: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    side_by_side: Path | None = None
    exported: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _check_request(req: EnhanceRequest) -> Roi | None:
    if req.output.suffix.lower() not in CONTAINERS:
        raise InputError(
            f"{req.output}: enhance writes a video; name it with one of "
            f"{', '.join(sorted(CONTAINERS))} (.mkv keeps FFV1 lossless, the default for this job)."
        )
    if not 1 <= req.scale <= MAX_SCALE:
        raise InputError(f"--scale {req.scale}: give a whole number from 1 to {MAX_SCALE}.")
    roi = parse_roi(req.roi) if req.roi is not None else None
    if req.roi_output == "crop" and roi is None:
        raise InputError("--roi-output crop needs a --roi X,Y,W,H to crop to.")
    if req.scale > 1 and req.roi_output != "crop":
        raise InputError(
            "--scale enlarges the region of interest for viewing: add --roi X,Y,W,H and "
            "--roi-output crop (the whole frame is never resampled)."
        )
    if req.export_at is not None and req.export_frames is None:
        raise InputError("--export-at chooses frames for --export-frames DIR; give the folder too.")
    return roi


def _field_order(mode: FieldMode, tag: str | None, notes: list[str]) -> str | None:
    interlaced = tag in INTERLACED
    if mode == "frame":
        if interlaced:
            notes.append(f"interlaced ({tag}) but processed as whole frames (--fields frame)")
        return None
    if mode == "separate" and not interlaced:
        notes.append("fields processed separately (--fields separate), top field first assumed")
        return "tt"
    if interlaced:
        first = "top" if tag in ("tt", "tb") else "bottom"
        notes.append(
            f"interlaced ({tag}): each field deblurred on its own ({first} field first, the "
            "other field's lines interpolated for context and then discarded)"
        )
        return tag
    return None


def _caption(index: int, pts: int, time_s: float) -> str:
    return f"f{index}  {time_s:.3f} s"


@dataclass
class _FrameLog:
    index: int
    pts: int
    time_s: float
    residual_psnr_db: float
    change_psnr_db: float
    defocus_px: float
    flagged: bool
    exported: str | None = None

    def as_dict(self, digest: str | None) -> dict[str, Any]:
        return {
            "index": self.index,
            "pts": self.pts,
            "time_s": round(self.time_s, 6),
            "output_sha256": digest,
            "residual_psnr_db": json_number(self.residual_psnr_db),
            "change_psnr_db": json_number(self.change_psnr_db),
            "defocus_px": round(self.defocus_px, 4),
            "flagged": self.flagged,
            "exported": self.exported,
        }


def _export_indices(req: EnhanceRequest, reader: RandomAccessReader, spans: list[Span]) -> set[int]:
    if req.export_frames is None:
        return set()
    chosen = spans if req.export_at is None else frame_spans(req.export_at, reader)
    wanted = {i for s in chosen for i in range(s.start, s.stop)}
    processed = {i for s in spans for i in range(s.start, s.stop)}
    if missing := sorted(wanted - processed):
        raise InputError(
            f"--export-at names frame f{missing[0]}, which --frames does not enhance; export "
            "frames from the enhanced ones."
        )
    return wanted


def _summary(logs: list[_FrameLog]) -> dict[str, Any]:
    residuals = [f.residual_psnr_db for f in logs]
    finite = [r for r in residuals if r != float("inf")]
    return {
        "frames": len(logs),
        "flagged": sum(f.flagged for f in logs),
        "flagged_frames": [f.index for f in logs if f.flagged],
        "residual_psnr_db": {
            "min": json_number(min(residuals)),
            "median": json_number(median(finite)) if finite else None,
            "mean": json_number(sum(finite) / len(finite)) if finite else None,
        },
        "defocus_px_median": round(median(f.defocus_px for f in logs), 4),
    }


def enhance(
    req: EnhanceRequest,
    config: Config,
    *,
    argv: Sequence[str] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> EnhanceResult:
    """Enhance a clip faithfully and write its audit log.

    Args:
        req: what to enhance (see `EnhanceRequest`).
        config: resolved options: `deblur` (weights), `encode` (the output format; bitexact
            is forced on), `enhance` (flag threshold, threads), `runtime.device`.
        argv: the command line as typed, for the audit.
        progress: called after each frame.
    Returns:
        What was written.
    Raises:
        InputError: bad arguments, input or output paths (before anything is written).
        ConfigError: bad options or device.
        ProcessingError: DeblurNet or the encoder failed; no output is left behind.
    """
    start = time.perf_counter()
    roi = _check_request(req)
    info = probe(req.input, config.input.sequence_rate)
    video = info.video
    if video is None:
        raise InputError(f"{req.input}: no video stream to enhance.")
    reader = RandomAccessReader(req.input, fps=config.input.sequence_rate)
    width, height = video.display_width, video.display_height
    if roi is not None:
        roi.check_inside(width, height)
    # DeblurNet sees the ROI's window (FrameEnhancer.window), not the whole frame.
    window = (roi or Roi(0, 0, width, height)).padded(ROI_MARGIN_PX, width, height, align=MULTIPLE)
    check_memory("enhance", window.w, window.h, config, path=req.input, region=roi is not None)
    spans = frame_spans(req.frames, reader)
    export = _export_indices(req, reader, spans)
    notes: list[str] = []
    field_order = _field_order(req.fields, video.field_order, notes)
    subset = sum(len(s) for s in spans) < len(reader)
    if subset:
        notes.append("a frame selection keeps the source's times; its audio is not copied")
    device = torch_device(config.runtime.device)
    # Bit-exact whatever the preset says: the audit promises repeatable bytes. A selection's
    # frames keep their source times, so the source's audio would no longer match them.
    update: dict[str, Any] = {"bitexact": True}
    if subset:
        update["audio"] = "none"
    encode = config.encode.model_copy(update=update)
    weights = config.deblur.weights or default_weights_path()
    sbs_path = side_by_side_path_for(req.output) if req.side_by_side else None
    audit_path = audit_path_for(req.output)
    inputs = [req.input]
    with ExitStack() as stack:
        out = stack.enter_context(StagedOutput(req.output, inputs, overwrite=req.overwrite))
        audit = stack.enter_context(StagedOutput(audit_path, inputs, overwrite=req.overwrite))
        sbs = (
            stack.enter_context(StagedOutput(sbs_path, inputs, overwrite=req.overwrite))
            if sbs_path
            else None
        )
        stills = (
            stack.enter_context(
                StagedOutput(req.export_frames, inputs, folder=True, overwrite=req.overwrite)
            )
            if req.export_frames is not None
            else None
        )
        rotation = video.rotation if config.input.apply_rotation else 0

        def writer(staged: StagedOutput) -> VideoWriter:
            w = VideoWriter(
                staged.path(), info, encode, overwrite=True, stored_rotation=rotation,
                name=staged.target,
            )  # fmt: skip
            stack.push(lambda exc_type, *_: w.abort() if exc_type is not None else None)
            return w

        out_writer = writer(out)
        sbs_writer = writer(sbs) if sbs else None
        logs: list[_FrameLog] = []
        total = sum(len(s) for s in spans)
        with deterministic_runtime(config.enhance.threads) as flags:
            net = load_deblurnet(weights, device)
            enhancer = FrameEnhancer(
                net, temporal=req.temporal, roi=roi, frame_size=(width, height),
                field_order=field_order, device=device,
            )  # fmt: skip
            if roi is not None and field_order is not None and not enhancer.fields:
                notes.append("the region's window has an odd height: processed as whole frames")
            for span in spans:
                enhancer.reset()  # a gap in the selection: no state across it
                for frame in reader.iter_range(span.start, span.stop):
                    e = enhancer(frame.rgb)
                    time_s = float(frame.pts * frame.time_base)
                    flagged = e.residual_psnr_db < config.enhance.residual_flag_db
                    result = _compose(frame.rgb, e, req, roi, field_order is not None)
                    out_writer.write(result, frame.pts)
                    if sbs_writer is not None:
                        before = _compose_original(frame.rgb, e, req, roi, field_order is not None)
                        flag = f"residual {e.residual_psnr_db:.1f} dB" if flagged else None
                        caption = _caption(frame.index, frame.pts, time_s)
                        sbs_writer.write(
                            side_by_side(before, result, caption, flag=flag), frame.pts
                        )
                    entry = _FrameLog(
                        frame.index, frame.pts, time_s, e.residual_psnr_db, e.change_psnr_db,
                        e.defocus_px, flagged,
                    )  # fmt: skip
                    if stills is not None and frame.index in export:
                        name = f"frame_{frame.index:06d}.{_STILL_EXT[req.export_format]}"
                        bits = 16 if video.bit_depth > 8 else 8
                        write_image(stills.path(name), result, bits)
                        entry.exported = name
                    logs.append(entry)
                    if progress is not None:
                        progress(Progress(len(logs), total, time.perf_counter() - start))
        out_writer.close()
        if sbs_writer is not None:
            sbs_writer.close()
        digests = list(frame_digests(out.path()))
        if len(digests) != len(logs) or any(d.damaged for d in digests):
            raise ProcessingError(
                f"{req.output}: the encoded file decodes to {len(digests)} frames, "
                f"{len(logs)} were written; nothing was kept."
            )
        if req.scale > 1:
            notes.append(upscale_note(req.scale, req.scale_filter))
        doc = _audit_document(
            req, config, info, argv, flags.as_dict(), device, weights, logs, digests, notes,
            out.path(), sbs.path() if sbs else None, stills, time.perf_counter() - start,
        )  # fmt: skip
        validate_audit(doc, str(audit_path))
        audit.path().write_text(_dumps(doc))
    flagged = sum(f.flagged for f in logs)
    if flagged:
        notes.append(
            f"{flagged} frame(s) flagged: their output re-blurred matches the input below "
            f"{config.enhance.residual_flag_db:g} dB (see the audit log)"
        )
    return EnhanceResult(
        output=req.output, audit=audit_path, frames=len(logs), flagged=flagged,
        elapsed_s=time.perf_counter() - start, notes=notes, side_by_side=sbs_path,
        exported=sum(f.exported is not None for f in logs),
    )  # fmt: skip


def _compose(
    frame: Tensor, e: EnhancedFrame, req: EnhanceRequest, roi: Roi | None, interlaced: bool
) -> Tensor:
    if roi is None:
        return e.enhanced
    if req.roi_output == "pass":
        return paste(frame, e.enhanced, roi)
    return upscale(e.enhanced, req.scale, req.scale_filter, interlaced=interlaced)


def _compose_original(
    frame: Tensor, e: EnhancedFrame, req: EnhanceRequest, roi: Roi | None, interlaced: bool
) -> Tensor:
    if roi is None or req.roi_output == "pass":
        return frame
    return upscale(e.original, req.scale, req.scale_filter, interlaced=interlaced)


def _dumps(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _audit_document(
    req: EnhanceRequest,
    config: Config,
    info: Any,
    argv: Sequence[str] | None,
    flags: dict[str, Any],
    device: Any,
    weights: Path,
    logs: list[_FrameLog],
    digests: list[Any],
    notes: list[str],
    staged_output: Path,
    staged_sbs: Path | None,
    stills: StagedOutput | None,
    elapsed_s: float,
) -> dict[str, Any]:
    weights = Path(weights)
    card = weights.with_suffix(".md")
    output = file_record(staged_output) | {"path": str(req.output.resolve())}
    outputs: dict[str, Any] = {"video": output | {"stream": video_record(probe(staged_output))}}
    if staged_sbs is not None:
        outputs["side_by_side"] = file_record(staged_sbs) | {
            "path": str(side_by_side_path_for(req.output).resolve())
        }
    if stills is not None:
        outputs["exported_frames"] = [
            file_record(stills.path(f.exported))
            | {"path": str((req.export_frames / f.exported).resolve()), "index": f.index}
            for f in logs
            if f.exported is not None
        ]
    return {
        "schema": SCHEMA_ID,
        "created_utc": utc_now(),
        "command": {"argv": list(argv) if argv is not None else None, "cwd": str(Path.cwd())},
        "settings": req.settings(),
        "config": config.model_dump(mode="json"),
        "method": {
            "model": "DeblurNet",
            "kind": "regression network: predicts the sharp frame and its defocus map; no "
            "generative or learned-prior component, no upscaling network",
            "temporal": "flow-warped features and output of the footage's own previous frame"
            if req.temporal
            else "none: every frame on its own",
            "residual": "enhanced frame re-blurred by the estimated defocus map through the "
            "layered disk-aperture renderer, compared with the input (PSNR, dB)",
            "residual_flag_db": config.enhance.residual_flag_db,
            "weights": [
                file_record(weights)
                | ({"card_sha256": file_record(card)["sha256"]} if card.is_file() else {})
            ],
        },
        "runtime": {"determinism": flags, "elapsed_s": round(elapsed_s, 3)},
        "environment": environment(device),
        "input": input_record(Path(req.input)) | {"stream": video_record(info)},
        "outputs": outputs,
        "frames": [f.as_dict(d.sha256) for f, d in zip(logs, digests, strict=True)],
        "summary": _summary(logs),
        "notes": notes,
    }
