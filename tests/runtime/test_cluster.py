"""The cluster manifests parse and carry every field KubeRay and `ray up` need, with the
right types, one image and one Ray version everywhere, and a shared volume on every pod."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from media import ROOT
from vidrefocus.config import load_config

CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"

# Fields of the KubeRay v1 CRDs used here (a typo in a key is silently ignored by the API
# server's pruning, so it is caught here instead).
CLUSTER_SPEC_KEYS = {
    "rayVersion", "enableInTreeAutoscaling", "autoscalerOptions", "headGroupSpec",
    "workerGroupSpecs", "suspend", "headServiceAnnotations", "gcsFaultToleranceOptions",
    "managedBy",
}  # fmt: skip
HEAD_KEYS = {"rayStartParams", "template", "serviceType", "headService", "enableIngress"}
WORKER_KEYS = {
    "groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template",
    "scaleStrategy", "suspend", "numOfHosts", "idleTimeoutSeconds",
}  # fmt: skip
RAYJOB_KEYS = {
    "entrypoint", "rayClusterSpec", "clusterSelector", "shutdownAfterJobFinishes",
    "ttlSecondsAfterFinished", "submissionMode", "backoffLimit", "activeDeadlineSeconds",
    "runtimeEnvYAML", "jobId", "metadata", "entrypointNumCpus", "entrypointNumGpus",
    "entrypointResources", "submitterPodTemplate", "submitterConfig", "suspend",
    "deletionStrategy", "managedBy",
}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 1, f"{path}: one document expected"
    assert isinstance(docs[0], dict)
    return docs[0]


def _ray_version() -> str:
    match = re.search(r"^ARG RAY_VERSION=(\S+)$", (CLUSTER / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile pins Ray with ARG RAY_VERSION"
    return match.group(1)


def _string_map(value: Any, where: str) -> None:
    assert isinstance(value, dict), f"{where} must be a mapping"
    for k, v in value.items():
        assert isinstance(k, str), f"{where}: key {k!r} must be a string"
        assert isinstance(v, str), f"{where}.{k} must be a string (got {type(v).__name__})"


def _check_pod(template: Any, where: str, volumes_needed: set[str]) -> list[dict[str, Any]]:
    assert isinstance(template, dict), f"{where}.template"
    spec = template["spec"]
    containers = spec["containers"]
    assert isinstance(containers, list)
    assert containers, f"{where}: no container"
    declared = {v["name"] for v in spec.get("volumes", [])}
    for c in containers:
        assert isinstance(c["name"], str)
        assert isinstance(c["image"], str)
        assert c["image"]
        resources = c["resources"]
        for part in ("requests", "limits"):
            _string_map(resources[part], f"{where}.{c['name']}.resources.{part}")
            assert {"cpu", "memory"} <= resources[part].keys()
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        assert set(mounts) <= declared, f"{where}: mounts of undeclared volumes"
        assert volumes_needed <= set(mounts), f"{where}: the shared volume is not mounted"
        assert mounts.get("media") == "/data", f"{where}: /data must be the shared volume"
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    assert claims == {_load(KUBERAY / "pvc.yaml")["metadata"]["name"]}
    return containers


def _check_cluster_spec(spec: Any, where: str) -> None:
    assert isinstance(spec, dict)
    assert set(spec) <= CLUSTER_SPEC_KEYS, f"{where}: unknown keys {set(spec) - CLUSTER_SPEC_KEYS}"
    assert spec["rayVersion"] == _ray_version(), "rayVersion must be the image's Ray"
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert set(head) <= HEAD_KEYS
    _string_map(head["rayStartParams"], f"{where}.headGroupSpec.rayStartParams")
    assert head["rayStartParams"]["num-cpus"] == "0", "chunk workers must stay off the head"
    images = {c["image"] for c in _check_pod(head["template"], f"{where}.head", {"media"})}
    groups = spec["workerGroupSpecs"]
    assert isinstance(groups, list)
    assert groups
    for group in groups:
        assert set(group) <= WORKER_KEYS, f"{where}: unknown keys {set(group) - WORKER_KEYS}"
        assert isinstance(group["groupName"], str)
        for key in ("replicas", "minReplicas", "maxReplicas"):
            assert type(group[key]) is int, f"{where}.{group['groupName']}.{key} must be int"
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["maxReplicas"] >= 1
        _string_map(group["rayStartParams"], f"{where}.{group['groupName']}.rayStartParams")
        pod = _check_pod(group["template"], f"{where}.{group['groupName']}", {"media"})
        images |= {c["image"] for c in pod}
        limits = pod[0]["resources"]["limits"]
        assert limits.get("nvidia.com/gpu") == "1", "one GPU per worker pod"
        assert pod[0]["resources"]["requests"].get("nvidia.com/gpu") == "1"
    assert len(images) == 1, f"{where}: head and workers must run the same image"


def test_raycluster() -> None:
    doc = _load(KUBERAY / "raycluster.yaml")
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == "RayCluster"
    assert isinstance(doc["metadata"]["name"], str)
    _check_cluster_spec(doc["spec"], "RayCluster.spec")


def test_rayjob() -> None:
    doc = _load(KUBERAY / "rayjob.yaml")
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == "RayJob"
    spec = doc["spec"]
    assert set(spec) <= RAYJOB_KEYS, f"unknown keys {set(spec) - RAYJOB_KEYS}"
    assert isinstance(spec["entrypoint"], str)
    assert spec["submissionMode"] in ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
    assert spec["shutdownAfterJobFinishes"] is True
    for key in ("ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds"):
        assert type(spec[key]) is int
    _check_cluster_spec(spec["rayClusterSpec"], "RayJob.spec.rayClusterSpec")
    # the entrypoint runs files the image has
    for path in re.findall(r"/opt/vidrefocus/(\S+)", spec["entrypoint"]):
        assert (ROOT / path).is_file(), f"{path} is not in the repository"


def test_pvc_is_read_write_many() -> None:
    doc = _load(KUBERAY / "pvc.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "PersistentVolumeClaim")
    assert doc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert isinstance(doc["spec"]["resources"]["requests"]["storage"], str)


def test_ray_up_cluster() -> None:
    doc = _load(CLUSTER / "ray-cluster.yaml")
    assert isinstance(doc["cluster_name"], str)
    assert isinstance(doc["docker"]["image"], str)
    assert "-v /data:/data" in doc["docker"]["run_options"]
    types = doc["available_node_types"]
    assert doc["head_node_type"] in types
    assert types[doc["head_node_type"]]["resources"] == {"CPU": 0}
    workers = [t for name, t in types.items() if name != doc["head_node_type"]]
    assert workers
    for t in workers:
        assert type(t["min_workers"]) is int
        assert type(t["max_workers"]) is int
        assert t["min_workers"] <= t["max_workers"] <= doc["max_workers"]
        assert t["resources"]["GPU"] >= 1
        assert isinstance(t["node_config"]["InstanceType"], str)
    assert any("ray start --head" in c for c in doc["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP:6379" in c for c in doc["worker_start_ray_commands"])


def test_dockerfile_and_job_config() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-\S+$", text, re.M)
    for needed in ("COPY vidrefocus", "COPY pipelines", "cluster/job-config.yaml", "wget"):
        assert needed in text
    config = load_config(files=[CLUSTER / "job-config.yaml"])
    assert config.runtime.device == "cuda"


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml", "pvc.yaml"])
def test_one_namespace(name: str) -> None:
    assert _load(KUBERAY / name)["metadata"]["namespace"] == "vidrefocus"
