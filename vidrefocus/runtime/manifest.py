"""The job manifest: the plan and every finished chunk, kept as JSON in the job's work folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrefocus.errors import ProcessingError
from vidrefocus.io.digest import file_sha256
from vidrefocus.runtime.chunk import ChunkRecord
from vidrefocus.runtime.plan import ChunkPlan

__all__ = ["MANIFEST_NAME", "Manifest", "job_key", "write_json_atomic"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_VERSION = 1


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader (or a crash) only ever sees the old or the new file.

    The text goes to a temporary file in the same folder, is flushed to disk, and replaces
    `path` in one rename.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def job_key(identity: dict[str, Any]) -> str:
    """A short stable hash of everything that decides a job's output (input, options, stages)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Manifest:
    """The plan of a job and the record of each finished chunk, saved after every change.

    Only the driver writes it. Chunk records hold the file name relative to the work folder,
    so a work folder on a shared volume can be mounted at another path and still resume.

    Attributes:
        path: the manifest file.
        key: `job_key` of the job it belongs to.
        identity: the JSON description the key was made from (for people reading the file).
        plan: the chunk plan.
        chunks: chunk index -> record (as JSON) with the `run` that wrote it.
        runs: one entry per driver run (id, start time, chunks reused).
    """

    path: Path
    key: str
    identity: dict[str, Any]
    plan: ChunkPlan
    chunks: dict[int, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "key": self.key,
            "job": self.identity,
            "plan": self.plan.to_dict(),
            "chunks": {str(i): rec for i, rec in sorted(self.chunks.items())},
            "runs": self.runs,
        }

    def save(self) -> None:
        write_json_atomic(self.path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        """Read a manifest; None when there is none or it cannot be understood.

        A damaged manifest is not an error: the job simply starts afresh.
        """
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object expected, got {type(data).__name__}")
            if data.get("version") != _VERSION:
                log.warning("%s: manifest version %s unknown; starting afresh.", path,
                            data.get("version"))  # fmt: skip
                return None
            return cls(
                path=path,
                key=str(data["key"]),
                identity=dict(data["job"]),
                plan=ChunkPlan.from_dict(data["plan"]),
                chunks={int(i): dict(rec) for i, rec in data["chunks"].items()},
                runs=list(data.get("runs", [])),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("%s: unreadable manifest (%s); starting afresh.", path, err)
            return None

    def start_run(self, run_id: str, reused: list[int]) -> None:
        """Note a driver run and the chunks it takes over from earlier runs."""
        self.runs.append({"run": run_id, "started": time.time(), "reused": reused})
        self.save()

    def record(self, rec: ChunkRecord, run_id: str) -> None:
        """Record a finished chunk and save the manifest.

        Raises:
            ProcessingError: the chunk file is not in the work folder.
        """
        path = Path(rec.path)
        if path.parent.resolve() != self.folder.resolve():
            raise ProcessingError(
                f"{path}: chunk {rec.index} was written outside the work folder {self.folder}; "
                "on a cluster the work folder must be on a volume every node mounts at the "
                "same path."
            )
        entry = rec.to_dict()
        entry["path"] = path.name
        entry["run"] = run_id
        self.chunks[rec.index] = entry
        self.save()

    def chunk_file(self, index: int) -> Path:
        return self.folder / self.chunks[index]["path"]

    def verified(self) -> list[int]:
        """Indices of recorded chunks whose file is still there with the recorded sha256.

        Records whose file is missing or changed are dropped (and saved), so they are redone.
        """
        good: list[int] = []
        for index in sorted(self.chunks):
            rec = self.chunks[index]
            path = self.folder / rec["path"]
            ok = (
                path.is_file()
                and path.stat().st_size == rec.get("size_bytes")
                and file_sha256(path) == rec.get("sha256")
            )
            if ok:
                good.append(index)
            else:
                log.info("chunk %d: %s is missing or changed; it will be redone.", index, path)
                del self.chunks[index]
        self.save()
        return good
