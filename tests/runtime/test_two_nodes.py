"""A real two-node Ray cluster on loopback: jobs through `--address` and `ray job submit`.

The head and a second node are started with `ray start` (one CPU each, so two workers must
sit on different nodes), with their own ports and temporary folder. `ray start` replaces a
loopback `--node-ip-address` by the machine's own address, so the nodes advertise that one;
every connection still stays on this machine. The cluster uses token authentication (the
default of `ray start --head` since Ray 2.5x whenever a token exists) with a token of its
own, so every process here (nodes, drivers, `ray job submit`) is given it. It is torn down by
killing exactly the processes it started (those naming its temporary folder or GCS port, and
their children) rather than `ray stop --force`, which would also stop any other Ray cluster
of this user on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from media import ROOT, SAMPLES, ffmpeg
from vidrefocus.io.probe import frame_pts
from vidrefocus.io.reader import VideoReader

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

RAY = str(Path(sys.executable).with_name("ray"))
FRAMES = 48  # two keyframe intervals of the sample: 2 chunks of 1 s


@dataclass(frozen=True)
class Cluster:
    address: str  # GCS, for --address
    dashboard: str  # job server, for `ray job submit --address`
    env: dict[str, str]  # for every process that talks to the cluster (the auth token)


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _node_ports(ports: list[int]) -> list[str]:
    # Every listening port of a node, so the second node on this host (and any other Ray on
    # the machine) never collides with the defaults (52365, 10001, ...).
    names = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
             "runtime-env-agent-port", "node-manager-port", "object-manager-port")  # fmt: skip
    return [f"--{name}={port}" for name, port in zip(names, ports, strict=True)]


def _run(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run a command; its stdout, or a failure with both of its outputs."""
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n"
                           f"{done.stderr}")  # fmt: skip
    return done.stdout


def _pids_of(marks: tuple[str, ...]) -> set[int]:
    """Processes whose command line holds one of `marks`, and all their descendants (Ray
    workers rename themselves `ray::...`, but they are children of their node's raylet)."""
    parents: dict[int, int] = {}
    roots: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if any(mark.encode() in cmdline for mark in marks):
            roots.add(int(proc.name))
    found = set(roots)
    while True:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        if not more:
            return found
        found |= more


def _kill_cluster(temp_dir: Path, gcs_port: int) -> None:
    # The Ray client server names the GCS address but not the temporary folder.
    marks = (str(temp_dir), f":{gcs_port} ", f":{gcs_port}\0")
    for _ in range(20):
        pids = _pids_of(marks) - {os.getpid()}
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.25)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Short and outside pytest's tmp folder: Ray's socket paths must fit in 107 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="vr-ray-", dir="/tmp"))
    token = temp_dir / "auth_token"
    token.write_text(uuid.uuid4().hex)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN_PATH=str(token))  # fmt: skip
    gcs, dashboard, client, *ports = _free_ports(15)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0",
              f"--temp-dir={temp_dir}", "--object-store-memory=100000000",
              "--disable-usage-stats"]  # fmt: skip
    try:
        head = ["--head", f"--port={gcs}", f"--ray-client-server-port={client}",
                "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard}"]  # fmt: skip
        _run(RAY, "start", *head, *common, *_node_ports(ports[:6]), env=env)
        address = f"127.0.0.1:{gcs}"
        _run(RAY, "start", f"--address={address}", *common, *_node_ports(ports[6:12]), env=env)
        probe = (
            f"import ray, time; ray.init(address='{address}', log_to_driver=False)\n"
            "for _ in range(120):\n"
            "    if sum(n['Alive'] for n in ray.nodes()) == 2: break\n"
            "    time.sleep(0.5)\n"
            "print(sum(n['Alive'] for n in ray.nodes()), ray.cluster_resources().get('CPU'))"
        )
        out = _run(sys.executable, "-c", probe, env=env).split()
        assert out[-2:] == ["2", "2.0"], f"expected 2 nodes with a CPU each, got {out[-2:]}"
        yield Cluster(address, f"http://127.0.0.1:{dashboard}", env)
    finally:
        _kill_cluster(temp_dir, gcs)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 48 frames of the sample scene (keyframes at 0 and 24) and its depth maps."""
    folder = tmp_path_factory.mktemp("two-nodes")
    path = folder / "shot.mp4"
    ffmpeg("-i", str(SAMPLES / "scene.mp4"), "-map", "0:v", "-map", "0:a",
           "-frames:v", str(FRAMES), "-t", "2", "-c", "copy", str(path))  # fmt: skip
    depth = folder / "depth"
    depth.mkdir()
    for i in range(FRAMES):
        shutil.copy(SAMPLES / "scene_depth" / f"{i:06d}.png", depth / f"{i:06d}.png")
    return path, depth


def _cli(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, object]:
    env = env or {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = _run(sys.executable, "-m", "vidrefocus.cli", *(str(a) for a in args), "--json",
               env=env, timeout=300)  # fmt: skip
    return json.loads(out)


def _options(clip: tuple[Path, Path], folder: Path) -> list[str]:
    """Refocus options of every run here: FFV1 (exact frames), 1 s chunks (2 chunks)."""
    source, depth = clip
    config = folder / "chunks.yaml"
    config.write_text("encode: {codec: ffv1}\nruntime: {chunk_seconds: 1.0}\n")
    return [str(source), "--depth", str(depth), "--focus", "0s:2m, 1.5s:8m",
            "--config", str(config)]  # fmt: skip


@pytest.fixture(scope="module")
def reference(clip: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same job's chunks in one process (`--workers 0`)."""
    folder = tmp_path_factory.mktemp("reference")
    out = folder / "reference.mov"
    summary = _cli("refocus", *_options(clip, folder), "-o", out, "--workers", "0")
    assert (summary["chunks"], summary["frames"]) == (2, FRAMES)
    return out


def _check(out: Path, work: Path, reference: Path, source: Path) -> None:
    fa, fb = list(VideoReader(out)), list(VideoReader(reference))
    assert [f.pts for f in fa] == frame_pts(source), "pts differ from the input's"
    assert [f.pts for f in fa] == [f.pts for f in fb]
    for x, y in zip(fa, fb, strict=True):
        assert torch.equal(x.rgb, y.rgb), f"frame at pts {x.pts} differs"
    # One CPU per node and per worker: the two chunks were written by two processes, one on
    # each node (a chunk of refocus takes longer than the workers' start-up skew).
    manifest = json.loads((work / "manifest.json").read_text())
    assert sorted(manifest["chunks"]) == ["0", "1"]
    assert len({rec["worker"] for rec in manifest["chunks"].values()}) == 2


def test_job_through_address(
    cluster: Cluster, clip: tuple[Path, Path], reference: Path, tmp_path: Path
) -> None:
    out, work = tmp_path / "remote.mov", tmp_path / "work"
    summary = _cli("refocus", *_options(clip, tmp_path), "-o", out, "--workers", "2",
                   "--address", cluster.address, "--work-dir", work, env=cluster.env)  # fmt: skip
    assert (summary["chunks"], summary["workers"], summary["frames"]) == (2, 2, FRAMES)
    _check(out, work, reference, clip[0])


def test_job_through_ray_job_submit(
    cluster: Cluster, clip: tuple[Path, Path], reference: Path, tmp_path: Path
) -> None:
    out, work = tmp_path / "submitted.mov", tmp_path / "work"
    job_id = f"vidrefocus-test-{uuid.uuid4().hex[:8]}"
    env = cluster.env
    # `ray job submit` waits for the job and prints its log; the status says how it ended.
    # The entrypoint finds the cluster in RAY_ADDRESS, which the job server sets.
    log = _run(RAY, "job", "submit", "--address", cluster.dashboard, "--submission-id", job_id,
               "--", sys.executable, str(ROOT / "pipelines" / "refocus.py"),
               *_options(clip, tmp_path), "-o", str(out), "--workers", "2",
               "--work-dir", str(work), env=env, timeout=300)  # fmt: skip
    status = _run(RAY, "job", "status", "--address", cluster.dashboard, job_id, env=env)
    assert "succeeded" in status.lower(), f"job {job_id} did not succeed:\n{status}\n{log}"
    _check(out, work, reference, clip[0])
