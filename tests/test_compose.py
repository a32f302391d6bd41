"""docker-compose.yml, read offline (CI has no Docker daemon): the embedded server as before,
and the replicas profile's topology: PostgreSQL, Redis, two replicas, HAProxy in front with
websocket-friendly timeouts and health checks; HAProxy's own parser checks its config."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_the_embedded_server_is_the_default(compose: dict[str, Any]) -> None:
    server = compose["services"]["server"]
    assert "profiles" not in server  # `docker compose up` starts it, alone
    assert "TANDEM_DATABASE_URL" not in server["environment"]


def test_replicas_share_postgres_and_redis_behind_a_load_balancer(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    replicas = [name for name in services if name.startswith("replica-") and "worker" not in name]
    assert replicas == ["replica-a", "replica-b"]
    for name in ["postgres", "redis", "lb", *replicas]:
        assert services[name]["profiles"] == ["replicas"], name
    for name in replicas:
        replica = services[name]
        env = replica["environment"]
        assert env["TANDEM_DATABASE_URL"].startswith("postgresql+psycopg://tandem:")
        assert env["TANDEM_DATABASE_URL"].endswith("@postgres:5432/tandem")
        assert env["TANDEM_REDIS_URL"] == "redis://redis:6379/0"
        assert env["TANDEM_LOCAL_WORKER"] == "false"
        assert replica["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        assert "/api/health" in " ".join(replica["healthcheck"]["test"])
        # Only the load balancer's forwarded address is believed.
        lb_address = services["lb"]["networks"]["tandem"]["ipv4_address"]
        assert json.loads(env["TANDEM_TRUSTED_PROXIES"]) == [lb_address]
    volumes = [services[name]["volumes"][0] for name in replicas]
    assert len(set(volumes)) == 2  # each replica's data dir is its own
    assert services["lb"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in replicas
    }
    assert "--save" in services["redis"]["command"]  # nothing persisted: never the truth
    worker = services["replica-worker"]
    assert worker["command"][-1] == "http://lb:8000"


def test_the_load_balancer_checks_health_and_keeps_websockets_open(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    config = compose["configs"]["haproxy"]["content"]
    lines = [line.strip() for line in config.splitlines()]
    assert "option httpchk GET /api/health" in lines
    assert "http-check expect status 200" in lines
    assert "timeout tunnel 1h" in lines
    assert "mode http" in lines  # HTTP mode: the websocket upgrade is understood
    servers = [line.split()[1:3] for line in lines if line.startswith("server ")]
    assert servers == [["replica-a", "replica-a:8000"], ["replica-b", "replica-b:8000"]]
    default_server = next(line for line in lines if line.startswith("default-server"))
    assert " check " in f" {default_server} "
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (apt-get install haproxy) to parse the config")
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
