"""deploy/kubernetes/tandem.yaml, checked offline: every object against the Kubernetes
schemas (strict: no unknown fields), and the topology the README promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes" / "tandem.yaml"
KUBERNETES = "1.33.0"


def objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def by_name(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def container(deployment: str) -> dict[str, Any]:
    spec = by_name("Deployment", deployment)["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = spec["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item.get("env", [])}


@pytest.mark.parametrize("index", range(len(objects())))
def test_every_object_is_valid_kubernetes(index: int) -> None:
    kubernetes_validate.validate(objects()[index], KUBERNETES, strict=True)


def test_the_validator_refuses_a_broken_object() -> None:
    broken = by_name("Deployment", "tandem-server")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_two_server_replicas_on_postgresql_and_redis_behind_an_ingress() -> None:
    server = by_name("Deployment", "tandem-server")
    assert server["spec"]["replicas"] >= 2
    env = env_of(container("tandem-server"))
    assert env["TANDEM_LOCAL_WORKER"] == "false"
    for name in ("TANDEM_DATABASE_URL", "TANDEM_REDIS_URL", "TANDEM_FILES_URL"):
        assert "secretKeyRef" in env[name], name  # never a literal in the Deployment
    probe = container("tandem-server")["readinessProbe"]["httpGet"]
    assert probe["path"] == "/api/health"
    db = by_name("Secret", "tandem-db")["stringData"]
    assert db["database-url"].startswith("postgresql+psycopg://")
    assert db["redis-url"].startswith("redis://")
    backend = by_name("Ingress", "tandem")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "tandem-server"
    by_name("Service", "tandem-postgres")
    by_name("Service", "tandem-redis")


def test_gpu_workers_request_a_gpu_and_every_worker_dials_the_servers() -> None:
    gpu = container("tandem-worker-gpu")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    for name in ("tandem-worker", "tandem-worker-gpu"):
        worker = container(name)
        assert "tandem worker --server http://tandem-server:8000" in worker["command"][-1]
        assert "secretKeyRef" in env_of(worker)["TANDEM_WORKER_TOKEN"]
        # Kernels run in bubblewrap boxes inside the pod: namespaces, not the host's paths.
        assert worker["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN"]
        spec = by_name("Deployment", name)["spec"]["template"]["spec"]
        assert "volumes" not in spec
