"""How a corpus case runs (in this process, or as a real `vidrefocus` process with signals or
resource limits) and what is checked after it: exit code, message, outputs, inputs, leftovers.

Every run gets a marker in its environment (`VIDREFOCUS_CORPUS_RUN=<id>`) that each process it
starts inherits (ffmpeg, Ray's raylet and workers), so a process left behind is found by its
environment, without confusing it with processes of other jobs on the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import resource
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MARKER",
    "TEMP_PATTERNS",
    "Outcome",
    "digest",
    "leftover_processes",
    "leftover_temps",
    "marked",
    "run_in_process",
    "run_process",
]

MARKER = "VIDREFOCUS_CORPUS_RUN"
# What vidrefocus writes while it works and must remove: staged outputs, write probes,
# chunk temporaries.
TEMP_PATTERNS = ("*.vidrefocus-tmp*", ".vidrefocus-probe-*")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Outcome:
    """What a run did.

    Attributes:
        code: exit code; for a process killed by a signal, 128 + the signal (as a shell says).
        stderr: its standard error, colour codes removed.
        seconds: wall time of the run.
        signalled: a signal was sent to it mid-job.
        notes: what the harness saw that is not in stderr (a timeout, a kill).
    """

    code: int
    stderr: str
    seconds: float
    signalled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def flat_stderr(self) -> str:
        """stderr on one line: rich wraps long messages at the console width."""
        return " ".join(self.stderr.split())


def digest(paths: list[Path]) -> str:
    """sha256 over every file under `paths` (names and bytes), to prove inputs unchanged."""
    h = hashlib.sha256()
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            if f.is_file():
                h.update(str(f).encode())
                h.update(f.read_bytes())
    return h.hexdigest()


def leftover_temps(folders: list[Path]) -> list[str]:
    """Temporary files vidrefocus left anywhere under `folders`."""
    found: set[str] = set()
    for folder in folders:
        if folder.is_dir():
            for pattern in TEMP_PATTERNS:
                found.update(str(p) for p in folder.rglob(pattern))
    return sorted(found)


def _marked_pids(run_id: str) -> dict[int, str]:
    """Processes (other than this one) whose environment holds this run's marker."""
    needle = f"{MARKER}={run_id}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(entry.name)] = cmd.strip()[:80]
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def leftover_processes(run_id: str, grace_s: float) -> list[str]:
    """Processes of the run still alive after `grace_s` (Ray takes a moment to stop its
    workers); they are killed, so one failing case does not leak into the next."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = _marked_pids(run_id)
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return [f"{pid} {cmd}" for pid, cmd in sorted(alive.items())]


@contextlib.contextmanager
def marked(env: dict[str, str]) -> Iterator[str]:
    """Set the run marker (and `env`) in os.environ for an in-process run; yields the id."""
    run_id = uuid.uuid4().hex
    saved = {k: os.environ.get(k) for k in [MARKER, *env]}
    os.environ.update({MARKER: run_id, **env})
    try:
        yield run_id
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_in_process(argv: list[str], read_stderr: Callable[[], str]) -> Outcome:
    """`vidrefocus.cli.main(argv)`; an exception escaping it is reported as the console script
    would report it (a traceback, exit 1). `read_stderr` returns what was captured."""
    from vidrefocus.cli import main

    start = time.monotonic()
    extra = ""
    try:
        code = main(argv)
    except SystemExit as err:  # argparse
        code = err.code if isinstance(err.code, int) else 2
    except Exception:
        code, extra = 1, traceback.format_exc()
    return Outcome(code, _ANSI.sub("", read_stderr() + extra), time.monotonic() - start)


def _limits(fsize_bytes: int | None, address_space_bytes: int | None) -> Callable[[], None]:
    def before_exec() -> None:
        # A shell without job control starts background jobs with SIGINT ignored, and the
        # child would inherit that; vidrefocus is tested as a user at a terminal runs it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if address_space_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
        if fsize_bytes is not None:
            # A full disk, simulated: writes past the limit fail with EFBIG. SIGXFSZ would kill
            # the process instead, so it is ignored (and stays ignored in ffmpeg, across exec).
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_bytes, fsize_bytes))

    return before_exec


def run_process(
    argv: list[str],
    env: dict[str, str],
    *,
    fsize_bytes: int | None = None,
    address_space_bytes: int | None = None,
    interrupt: tuple[int, Callable[[], bool]] | None = None,
    timeout_s: float = 180.0,
) -> Outcome:
    """Run `python -m vidrefocus.cli argv` with `env` added to this environment.

    Args:
        argv: the command line after `vidrefocus`.
        env: extra environment (the run marker among it).
        fsize_bytes: limit on the size of any file the process (and ffmpeg) writes.
        address_space_bytes: limit on the process's memory (and ffmpeg's).
        interrupt: (signal, ready): once `ready()` is true the signal is sent, once.
        timeout_s: the run is killed (SIGKILL) after this long; the outcome says so.
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidrefocus.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        preexec_fn=_limits(fsize_bytes, address_space_bytes),
    )
    notes: list[str] = []
    signalled = False
    deadline = start + timeout_s
    try:
        if interrupt is not None:
            sig, ready = interrupt
            while proc.poll() is None and not ready() and time.monotonic() < deadline:
                time.sleep(0.02)
            if proc.poll() is None and time.monotonic() < deadline:
                proc.send_signal(sig)
                signalled = True
            else:
                notes.append("ended before it could be interrupted")
        _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        notes.append(f"killed after {timeout_s:.0f} s")
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return Outcome(code, _ANSI.sub("", err), time.monotonic() - start, signalled, notes)
