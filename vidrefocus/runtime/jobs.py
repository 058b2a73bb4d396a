"""Batch job lists: many clips with their own settings, from a YAML file or a folder of videos."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vidrefocus.config import Config, load_config
from vidrefocus.errors import ConfigError, InputError
from vidrefocus.io.formats import CODEC_SPECS, CONTAINERS
from vidrefocus.runtime.driver import default_work_dir
from vidrefocus.runtime.factory import DEBLUR, IDENTITY, StageFactory, refocus_factory

__all__ = [
    "COMMANDS",
    "VIDEO_EXTENSIONS",
    "BatchJob",
    "JobSettings",
    "check_inside",
    "jobs_from_file",
    "jobs_from_folder",
    "load_batch",
]

COMMANDS = ("refocus", "transcode", "deblur")
Command = Literal["refocus", "transcode", "deblur"]

# What a folder batch picks up; anything else in the folder (depth maps, notes) is left alone.
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mxf", ".ts", ".mts", ".m2ts", ".mpg",
    ".mpeg", ".wmv", ".flv", ".3gp", ".y4m",
)  # fmt: skip


class JobSettings(BaseModel):
    """How to process a clip; every key is optional (a job file's `defaults`, or a job).

    Relative paths are relative to the job file's folder.

    Attributes:
        command: refocus, transcode or deblur.
        preset: bundled preset the options start from.
        config: YAML config files merged over the preset, in order.
        options: config values over those: sections (`{encode: {codec: ffv1}}`) or dotted
            keys (`{"lens.f_number": 2.8}`).
        focus: refocus keyframes, as `--focus`.
        focus_file: refocus keyframes file, as `--focus-file`.
        depth: refocus depth folder, as `--depth` (sets `depth.path`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Command | None = None
    preset: str | None = None
    config: list[str] | str | None = None
    options: dict[str, Any] | None = None
    focus: str | None = None
    focus_file: str | None = None
    depth: str | None = None


class JobEntry(JobSettings):
    """One clip of a job file: its input, optionally its output name inside the output
    folder, and its settings."""

    input: str
    output: str | None = None


class JobFile(BaseModel):
    """A job file that is a mapping: `defaults` for every job, and the `jobs`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: JobSettings = JobSettings()
    jobs: list[Any]


@dataclass(frozen=True)
class BatchJob:
    """One clip of a batch, resolved and validated: absolute paths, a `Config`, a factory.

    Attributes:
        name: how messages and the summary name the job (`jobs[2] (a.mp4)`, or the file name).
        command: refocus, transcode or deblur.
        input: the clip (it may be missing: that is the job's failure, not the batch's).
        output: where its result goes, inside the batch's output folder.
        config: the job's validated options.
        factory: the recipe for its stages.
    """

    name: str
    command: str
    input: Path
    output: Path
    config: Config
    factory: StageFactory


def _flatten(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _layer(settings: JobSettings) -> dict[str, Any]:
    """The keys a settings layer sets; `options` flattened to dotted keys so layers merge."""
    data = settings.model_dump(exclude_none=True)
    if "options" in data:
        data["options"] = _flatten(data["options"])
    if isinstance(data.get("config"), str):
        data["config"] = [data["config"]]
    return data


def _merged(*layers: dict[str, Any]) -> dict[str, Any]:
    # Later layers win key by key; `options` merge key by key too.
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = {**out.get(key, {}), **value} if key == "options" else value
    return out


def _resolve(base: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def _output_name(name: str | None, source: Path, config: Config, where: str, outdir: Path) -> Path:
    codec = CODEC_SPECS[config.encode.codec]
    if name is None:
        suffix = source.suffix.lower()
        name = source.stem + (suffix if suffix in codec.containers else codec.containers[0])
    rel = Path(name)
    # Refused even where it would stay inside (`/abs/out/a.mp4`, `sub/../a.mp4`): a name
    # relative to the folder keeps the job list valid wherever the folder is.
    if rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(
            f"{where}: output {name!r} is not a name inside the output folder {outdir}/ "
            "(absolute paths and '..' are refused); give a path relative to it, so the "
            "folder holds the whole batch."
        )
    if not rel.name:
        raise ConfigError(f"{where}: output {name!r} must name a file inside the output folder.")
    if rel.suffix.lower() not in CONTAINERS:
        raise ConfigError(
            f"{where}: output {name!r} needs a video extension ({', '.join(CONTAINERS)})."
        )
    return rel


def _escaping_link(path: Path, outdir: Path, root: Path) -> Path | None:
    """The first symlink on the way from `outdir` down to `path` that leads out of `root`."""
    try:
        parts = path.relative_to(outdir).parts
    except ValueError:
        return None
    step = outdir
    for part in parts:
        step = step / part
        if step.is_symlink() and not step.resolve().is_relative_to(root):
            return step
    return None


def check_inside(where: str, output: Path, outdir: Path) -> None:
    """Refuse a job that would write outside the batch's output folder.

    Names are checked as written when the job list is read (no absolute paths, no '..');
    this follows symlinks: a link inside the folder (the output itself, a subfolder, or the
    job's hidden work folder beside the output) that points outside it would let the batch
    write, and later delete chunk files, there. Links that stay inside are fine.

    Args:
        where: how messages name the job (`jobs[2] (a.mp4)`).
        output: the job's output path.
        outdir: the batch's output folder (it may not exist yet).
    Raises:
        InputError: the output or the work folder resolves outside `outdir`; the message
            names the job, the path and the link.
    """
    outdir = Path(outdir)
    for what, path in (("output", output), ("work folder", default_work_dir(output))):
        try:
            root = outdir.resolve()
            inside = path.resolve().is_relative_to(root)
        except (OSError, RuntimeError) as err:  # a symlink loop (RuntimeError before 3.13)
            raise InputError(
                f"{where}: {what} {path} cannot be resolved ({err}); remove the broken link."
            ) from err
        if inside:
            continue
        try:
            shown = path.relative_to(outdir).as_posix()
        except ValueError:
            shown = str(path)
        link = _escaping_link(path, outdir, root)
        why = f" ({link} is a symlink to {link.resolve()})" if link is not None else ""
        raise InputError(
            f"{where}: {what} {shown} leaves the output folder {outdir}/{why}; give a name "
            "inside it, or remove the link."
        )


def _build(where: str, data: dict[str, Any], base: Path, outdir: Path) -> BatchJob:
    command = data.get("command", "refocus")
    if command != "refocus":
        given = [k for k in ("focus", "focus_file", "depth") if k in data]
        if given:
            raise ConfigError(f"{where}: '{given[0]}' applies to refocus jobs, not {command}.")
    source = _resolve(base, data["input"])
    overrides = dict(data.get("options", {}))
    if "depth" in data:
        overrides["depth.path"] = str(_resolve(base, data["depth"]))
    for key in ("depth.path", "deblur.weights"):  # files named in options, like paths above
        if overrides.get(key) is not None:
            overrides[key] = str(_resolve(base, str(overrides[key])))
    try:
        config = load_config(
            data.get("preset", "default"),
            [_resolve(base, f) for f in data.get("config", [])],
            overrides,
            overrides_source="options",
        )
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
    output = outdir / _output_name(data.get("output"), source, config, where, outdir)
    check_inside(where, output, outdir)
    if output.resolve() == source.resolve():
        raise ConfigError(
            f"{where}: its output would replace its input {source}; choose another output "
            "folder or an output name."
        )
    if command == "refocus":
        focus_file = _resolve(base, data["focus_file"]) if "focus_file" in data else None
        factory = refocus_factory(data.get("focus"), focus_file)
    else:
        factory = DEBLUR if command == "deblur" else IDENTITY
    return BatchJob(where, command, source, output, config, factory)


def _check_unique(jobs: Sequence[BatchJob], source: str) -> None:
    seen: dict[Path, str] = {}
    for job in jobs:
        other = seen.setdefault(job.output.resolve(), job.name)
        if other != job.name:
            raise ConfigError(
                f"{source}: {other} and {job.name} both write {job.output}; give one of them "
                "another `output` name."
            )


def _explain(err: ValidationError, source: str, where: str) -> ConfigError:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            if where != "top level":
                model: type[BaseModel] = JobEntry
            else:
                model = JobSettings if len(e["loc"]) > 1 else JobFile
            known = ", ".join(sorted(model.model_fields))
            lines.append(f"unknown key '{loc}' (known keys: {known})")
        elif e["type"] == "missing":
            lines.append(f"'{loc}' is missing")
        else:
            lines.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    return ConfigError(f"{source}: {where}: " + "; ".join(lines) + ".")


def jobs_from_file(path: Path, outdir: Path, defaults: JobSettings | None = None) -> list[BatchJob]:
    """Read a job file: a YAML (or JSON) list of jobs, or a mapping with `defaults` and `jobs`.

        defaults: {command: refocus, preset: default, options: {encode: {codec: h265}}}
        jobs:
          - {input: a.mp4, depth: a_depth, focus: "0s:1.2m, 2s:3m"}
          - {input: b.mov, output: b_flat.mov, command: transcode}

    Settings apply in order: `defaults` (given here, e.g. from command-line flags), then the
    file's `defaults`, then the job's own keys; `options` merge key by key.

    Args:
        path: the job file.
        outdir: the batch's output folder; outputs are named inside it.
        defaults: settings below the file's (the command-line flags).
    Returns:
        The jobs, in file order.
    Raises:
        ConfigError: the file cannot be read, is not a job list, or a job is invalid (an
            unknown key, a missing `input`, a bad option, two jobs writing one output); the
            message names the file and the job. A missing input file is not an error here:
            that job fails when it runs.
        InputError: a symlink in the output folder leads a job's output or work folder out
            of it (`check_inside`).
    """
    try:
        data: Any = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the job file ({err.strerror}).") from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not a YAML job list (it is not text); give a .yaml file of jobs, or a "
            "folder of videos."
        ) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from err
    if isinstance(data, list):
        data = {"jobs": data}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a list of jobs, or a mapping with 'jobs' (and 'defaults'); "
            f"got {type(data).__name__}."
        )
    try:
        parsed = JobFile.model_validate(data)
    except ValidationError as err:
        raise _explain(err, str(path), "top level") from err
    if not parsed.jobs:
        raise ConfigError(f"{path}: the job list is empty.")
    base = Path(path).resolve().parent
    outer = _merged(_layer(defaults or JobSettings()), _layer(parsed.defaults))
    jobs = []
    for i, entry in enumerate(parsed.jobs):
        label = entry.get("input") if isinstance(entry, dict) else None
        where = f"jobs[{i}]" + (f" ({Path(str(label)).name})" if label else "")
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: {where}: a job is a mapping with at least 'input'.")
        try:
            job = JobEntry.model_validate(entry)
        except ValidationError as err:
            raise _explain(err, str(path), where) from err
        merged = _merged(outer, _layer(job))
        try:
            jobs.append(_build(where, merged, base, Path(outdir)))
        except (ConfigError, InputError) as err:
            raise type(err)(f"{path}: {err}") from err
    _check_unique(jobs, str(path))
    return jobs


def jobs_from_folder(
    folder: Path, outdir: Path, defaults: JobSettings | None = None
) -> list[BatchJob]:
    """One job per video in `folder` (not its subfolders), all with the same settings.

    A refocus job takes its depth from `<clip stem>_depth/` beside the clip when the settings
    give none (the layout of `samples/`: `scene.mp4`, `scene_depth/`); without one, its depth
    is estimated (`depth.source: auto`).

    Raises:
        ConfigError: no videos in the folder, or settings that do not validate.
        InputError: a symlink in the output folder leads an output out of it.
    """
    folder = Path(folder)
    videos = sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
    )  # fmt: skip
    if not videos:
        raise ConfigError(
            f"{folder}: no videos found (looked for {', '.join(VIDEO_EXTENSIONS)}); pass a "
            "folder of clips or a YAML job file."
        )
    layer = _layer(defaults or JobSettings())
    jobs = []
    for video in videos:
        data = {**layer, "input": str(video.resolve())}
        depth = video.with_name(f"{video.stem}_depth")
        if data.get("command", "refocus") == "refocus" and "depth" not in data and depth.is_dir():
            data["depth"] = str(depth.resolve())
        try:
            jobs.append(_build(video.name, data, folder.resolve(), Path(outdir)))
        except (ConfigError, InputError) as err:
            raise type(err)(f"{folder}: {err}") from err
    _check_unique(jobs, str(folder))
    return jobs


def load_batch(source: Path, outdir: Path, defaults: JobSettings | None = None) -> list[BatchJob]:
    """The jobs of a job file, or of a folder of videos (see `jobs_from_file`,
    `jobs_from_folder`).

    Raises:
        InputError: `source` does not exist, or a symlink in the output folder leads an
            output out of it.
        ConfigError: an invalid job file or setting.
    """
    source = Path(source)
    if source.is_dir():
        return jobs_from_folder(source, outdir, defaults)
    if not source.exists():
        raise InputError(
            f"{source}: no such job file or folder; pass a YAML job list or a folder of videos."
        )
    return jobs_from_file(source, outdir, defaults)
