"""The job manifest: atomic writes, damaged files, and which chunks survive a resume."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from vidrefocus.errors import ProcessingError
from vidrefocus.io.digest import file_sha256
from vidrefocus.runtime.chunk import ChunkRecord
from vidrefocus.runtime.manifest import MANIFEST_NAME, Manifest, job_key, write_json_atomic
from vidrefocus.runtime.plan import Timeline, plan_chunks

PLAN = plan_chunks(Timeline(tuple(range(96)), (0, 24, 48, 72), Fraction(1, 24)), 1.0)


def _record(folder: Path, index: int, content: bytes) -> ChunkRecord:
    path = folder / f"chunk-{index:05d}-run.mkv"
    path.write_bytes(content)
    return ChunkRecord(
        index=index, path=str(path), frames=24, first_pts=24 * index, last_pts=24 * index + 23,
        sha256=file_sha256(path), size_bytes=len(content), elapsed_s=0.1, worker="host:1",
    )  # fmt: skip


def _manifest(folder: Path) -> Manifest:
    identity = {"input": "in.mp4", "config": {"encode": {"codec": "ffv1"}}}
    return Manifest(path=folder / MANIFEST_NAME, key=job_key(identity), identity=identity,
                    plan=PLAN)  # fmt: skip


def test_round_trip(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    m.start_run("run-a", [])
    m.record(_record(tmp_path, 2, b"two"), "run-a")
    loaded = Manifest.load(tmp_path / MANIFEST_NAME)
    assert loaded is not None
    assert (loaded.key, loaded.plan, loaded.runs[0]["run"]) == (m.key, PLAN, "run-a")
    assert loaded.chunks[2]["path"] == "chunk-00002-run.mkv"  # relative to the folder
    assert loaded.chunks[2]["run"] == "run-a"
    assert loaded.chunk_file(2) == tmp_path / "chunk-00002-run.mkv"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_key_depends_on_every_option() -> None:
    a = job_key({"config": {"encode": {"crf": 18}}, "input": "x"})
    assert a == job_key({"input": "x", "config": {"encode": {"crf": 18}}})
    assert a != job_key({"config": {"encode": {"crf": 19}}, "input": "x"})


@pytest.mark.parametrize("text", ["", "{not json", '{"version": 99}', '{"version": 1}', "[]"])
def test_damaged_manifest_means_start_afresh(tmp_path: Path, text: str) -> None:
    (tmp_path / MANIFEST_NAME).write_text(text)
    assert Manifest.load(tmp_path / MANIFEST_NAME) is None


def test_verified_drops_missing_and_changed_chunks(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    for i in range(4):
        m.record(_record(tmp_path, i, f"chunk {i}".encode()), "run-a")
    (tmp_path / "chunk-00001-run.mkv").unlink()
    (tmp_path / "chunk-00002-run.mkv").write_bytes(b"chunk X")  # same size, other bytes
    (tmp_path / "chunk-00003-run.mkv").write_bytes(b"chunk 3 and more")
    assert m.verified() == [0]
    reloaded = Manifest.load(tmp_path / MANIFEST_NAME)
    assert reloaded is not None
    assert sorted(reloaded.chunks) == [0]


def test_record_outside_the_folder_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ProcessingError, match="outside the work folder"):
        _manifest(work).record(_record(other, 0, b"x"), "run-a")


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"b": [1, 2]})
    assert json.loads(target.read_text()) == {"b": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]
