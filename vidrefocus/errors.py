"""Exception types of vidrefocus; the CLI maps them to exit codes."""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "ProcessingError", "VidRefocusError"]


class VidRefocusError(Exception):
    """Base of every error vidrefocus raises on purpose."""

    exit_code: int = 1


class InputError(VidRefocusError, ValueError):
    """Bad media, bad arguments or bad keyframes: the user can fix it."""

    exit_code = 2


class ConfigError(VidRefocusError, ValueError):
    """A preset, YAML file or option value that does not validate."""

    exit_code = 2


class ProcessingError(VidRefocusError, RuntimeError):
    """Valid input that failed while being processed (an encoder died, a worker was lost)."""

    exit_code = 1
