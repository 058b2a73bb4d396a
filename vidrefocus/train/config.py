"""Training configs: frozen dataclasses read from the YAML files in configs/train/."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vidrefocus.errors import ConfigError

__all__ = ["load_train_config"]

T = TypeVar("T")


def load_train_config(cls: type[T], path: Path) -> T:
    """Build the dataclass `cls` from a YAML file.

    Lists become tuples where the field's default is a tuple (YAML has no tuples).

    Raises:
        ConfigError: unreadable YAML, unknown keys (named), or values the class refuses.
    """
    try:
        data: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the training config ({err}).") from err
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}.")
    for key, value in data.items():
        default = known[key].default
        if isinstance(value, list) and default is not MISSING and isinstance(default, tuple):
            data[key] = tuple(value)
    try:
        return cls(**data)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}.") from err
