"""Picklable recipes for a job's stages, built once in each worker (or once in-process)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrefocus.config import Config
from vidrefocus.errors import ConfigError
from vidrefocus.stages import DeblurStage, Stage

__all__ = [
    "DEBLUR",
    "IDENTITY",
    "BuiltStages",
    "StageFactory",
    "deblur_notes",
    "deblur_stages",
    "identity_stages",
    "prepare_refocus",
    "refocus_factory",
    "refocus_stages",
]


@dataclass(frozen=True)
class BuiltStages:
    """What a factory returns: the stages, and human-readable notes about the decisions made."""

    stages: list[Stage]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StageFactory:
    """A recipe for a job's stages that travels to workers instead of the stages themselves.

    `target` names a callable `f(input_path: Path, config: Config, **kwargs)` returning
    `BuiltStages` (or a plain list of stages). Each worker calls it once, so models load once
    per worker, on the worker's device. `kwargs` must be JSON values: they are part of the
    job's identity in the resume manifest.

    Work that depends on the whole clip rather than on a chunk belongs in `prepare`: a
    callable `g(input_path, config, work_dir, **kwargs)` that a chunked job's driver calls
    once, while its Ray workers start, returning more keyword arguments (JSON values) for the
    workers' `target`, e.g. a file it wrote in the work folder. They are not part of the
    job's identity: `prepare` must only save work, never change the result.

    Args:
        target: "package.module:function".
        kwargs: extra keyword arguments, JSON values only.
        prepare: "package.module:function" run once per job by the driver, or None.

    Raises:
        ConfigError: a malformed target or non-JSON arguments.

    Example:
        >>> StageFactory("vidrefocus.runtime.factory:identity_stages").target
        'vidrefocus.runtime.factory:identity_stages'
    """

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    prepare: str | None = None

    def __post_init__(self) -> None:
        for ref in (r for r in (self.target, self.prepare) if r is not None):
            module, _, name = ref.partition(":")
            if not module or not name:
                raise ConfigError(f"stage factory {ref!r}: write it as 'package.module:function'.")
        try:
            json.dumps(self.kwargs, sort_keys=True)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"stage factory {self.target}: its arguments must be JSON values "
                f"(strings, numbers, lists, mappings): {err}."
            ) from err

    def identity(self) -> dict[str, Any]:
        """JSON-ready description, used to recognise the same job on resume."""
        return {"target": self.target, "kwargs": self.kwargs}

    def resolve(self, ref: str | None = None) -> Callable[..., Any]:
        """Import the target callable (or `ref`, another "module:function").

        Raises:
            ConfigError: the module or function cannot be imported.
        """
        ref = ref or self.target
        module_name, _, name = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(
                f"stage factory {ref}: cannot import {module_name} ({err}); "
                "on a cluster, install the package in the worker image."
            ) from err
        func = getattr(module, name, None)
        if not callable(func):
            raise ConfigError(f"stage factory {ref}: {module_name} has no function {name}.")
        return func

    def prepared(self, input_path: Path, config: Config, work_dir: Path) -> StageFactory:
        """This factory with `prepare`'s arguments added (itself when it has no `prepare`)."""
        if self.prepare is None:
            return self
        extra = self.resolve(self.prepare)(input_path, config, work_dir, **self.kwargs)
        return StageFactory(self.target, {**self.kwargs, **extra})

    def build(self, input_path: Path, config: Config) -> BuiltStages:
        """Call the target and normalise its result to `BuiltStages`."""
        built = self.resolve()(input_path, config, **self.kwargs)
        if isinstance(built, BuiltStages):
            return built
        return BuiltStages(stages=list(built))


def identity_stages(input_path: Path, config: Config) -> BuiltStages:
    """No stages: decode and re-encode (`vidrefocus transcode`)."""
    return BuiltStages(stages=[])


IDENTITY = StageFactory("vidrefocus.runtime.factory:identity_stages")


def deblur_notes(stage: DeblurStage, config: Config) -> list[str]:
    """What a deblur stage was built from, for the job's summary."""
    weights = config.deblur.weights or "packaged weights"
    mode = "temporal (flow-warped features)" if stage.temporal else "per frame"
    notes = [f"DeblurNet: {weights}, {mode}, on {stage.device}"]
    if stage.sharp_px is not None:
        notes.append(
            "DeblurNet auto: a frame whose median blur radius over its detailed pixels is "
            f"below {stage.sharp_px:g} px is already sharp and passes through unchanged"
        )
    return notes


def deblur_stages(input_path: Path, config: Config, *, auto: bool = False) -> BuiltStages:
    """DeblurNet alone (`vidrefocus deblur`): the `deblur` options, on `runtime.device`.

    Args:
        input_path: the clip (unused: the stage needs nothing from it).
        config: `deblur` options and `runtime.device`.
        auto: pass frames that are already sharp through unchanged (`deblur.enabled: auto`
            in refocus; `vidrefocus deblur` deblurs every frame).
    """
    stage = DeblurStage.from_options(config.deblur, config.runtime.device, auto=auto)
    return BuiltStages(stages=[stage], notes=deblur_notes(stage, config))


DEBLUR = StageFactory("vidrefocus.runtime.factory:deblur_stages")


def refocus_stages(
    input_path: Path,
    config: Config,
    focus: str | None = None,
    focus_file: str | None = None,
    focus_points: list[str] | None = None,
    focus_plan: str | None = None,
) -> BuiltStages:
    """The editor's refocus stages (`vidrefocus.refocus.plan_refocus`).

    Each worker builds its own stages (depth, focus, BokehNet); the focus of every frame
    (point tracking over the whole clip) comes from `focus_plan` when the driver resolved it
    once (`prepare_refocus`), and is resolved here otherwise.
    """
    # Imported here: vidrefocus.refocus imports the runtime, which imports this module.
    from vidrefocus.refocus import plan_refocus

    plan = plan_refocus(
        Path(input_path),
        config,
        focus=focus,
        focus_file=Path(focus_file) if focus_file is not None else None,
        focus_points=tuple(focus_points or ()),
        focus_plan=Path(focus_plan) if focus_plan is not None else None,
    )
    return BuiltStages(stages=plan.stages, notes=list(plan.notes))


FOCUS_PLAN_NAME = "focus-plan.json"


def prepare_refocus(
    input_path: Path,
    config: Config,
    work_dir: Path,
    focus: str | None = None,
    focus_file: str | None = None,
    focus_points: list[str] | None = None,
) -> dict[str, Any]:
    """Resolve every frame's focus once for a chunked refocus job (`write_focus_plan`)."""
    from vidrefocus.refocus import write_focus_plan

    path = write_focus_plan(
        Path(work_dir) / FOCUS_PLAN_NAME,
        Path(input_path),
        config,
        focus=focus,
        focus_file=Path(focus_file) if focus_file is not None else None,
        focus_points=tuple(focus_points or ()),
    )
    return {"focus_plan": str(path)}


def refocus_factory(
    focus: str | None = None, focus_file: Path | None = None, focus_points: Sequence[str] = ()
) -> StageFactory:
    """The factory of a refocus job with these focus keyframes (and `--focus-point` values)."""
    # Absolute, so a worker in another folder (or on another node) finds the same file.
    kwargs: dict[str, Any] = {
        "focus": focus,
        "focus_file": str(focus_file.resolve()) if focus_file else None,
    }
    if focus_points:  # only when given, so the identity of earlier jobs (resume) is unchanged
        kwargs["focus_points"] = list(focus_points)
    return StageFactory(
        "vidrefocus.runtime.factory:refocus_stages",
        kwargs,
        prepare="vidrefocus.runtime.factory:prepare_refocus",
    )
