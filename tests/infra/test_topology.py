"""The production topology as described, without running it: the compose file as `docker compose
config` resolves it, the nginx configuration of `make up-prod`, the work-pool deployments."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.prod import ProdConfig, render_nginx, work_pool_deployments
from lienthong.settings import REPO_ROOT, reset_settings

COMPOSE = REPO_ROOT / "infra" / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "test-only-pg",
    "PREFECT_SERVER_ENCRYPTION_KEY": "test-only-key",
    "LIENTHONG_AGENCY_SECRETS": '{"DVCQG": ["test-only-secret-0123456789"]}',
    "MINIO_ROOT_USER": "test-only-user",
    "MINIO_ROOT_PASSWORD": "test-only-password",
    "LIENTHONG_VAULT_SIGNING_KEYS": "{}",
}


def _compose_command() -> list[str]:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("the docker client has no compose plugin and docker-compose is missing: run `make setup`")


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only PATH and HOME from outside: a secret of the developer's shell must not make this pass.
    base = {k: v for k, v in __import__("os").environ.items() if k in ("PATH", "HOME")}
    return subprocess.run([*_compose_command(), "-f", str(COMPOSE), "config"], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def compose() -> dict:
    done = _config(SECRETS)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _command(service: dict) -> list[str]:
    c = service.get("command") or []
    return c.split() if isinstance(c, str) else list(c)


def test_compose_describes_the_production_topology(compose):
    s = compose["services"]
    assert set(s) == {
        "postgres", "redis", "minio", "minio-init", "prefect-migrate", "lienthong-migrate", "prefect-api",
        "prefect-services", "proxy", "deployments", "worker", "gateway", "relay", "agency-sim", "portal-sim"}
    # API replicas without services, and the services in a process of their own.
    assert s["prefect-api"]["deploy"]["replicas"] == 2 and "--no-services" in _command(s["prefect-api"])
    assert _command(s["prefect-services"])[:4] == ["prefect", "server", "services", "start"]
    # Two workers of the process pool the deployments are registered to, two gateways behind nginx.
    assert s["worker"]["deploy"]["replicas"] == 2
    worker = _command(s["worker"])
    assert worker[worker.index("--pool") + 1] == "lienthong" and worker[worker.index("--type") + 1] == "process"
    deploy = _command(s["deployments"])
    assert deploy[:3] == ["python", "-m", "infra.prod"] and deploy[deploy.index("--pool") + 1] == "lienthong"
    assert s["gateway"]["deploy"]["replicas"] == 2
    assert s["proxy"]["image"].startswith("nginx:")
    nginx = (REPO_ROOT / "infra" / "nginx" / "compose.conf").read_text()
    assert "server gateway:8720" in nginx and "server prefect-api:4200" in nginx


def test_compose_prefect_runs_on_postgresql_with_redis_messaging(compose):
    for name in ("prefect-api", "prefect-services", "worker", "relay", "gateway"):
        env = compose["services"][name]["environment"]
        assert env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
        assert env["PREFECT_MESSAGING_BROKER"] == env["PREFECT_MESSAGING_CACHE"] == "prefect_redis.messaging"
        assert env["PREFECT_SERVER_EVENTS_CAUSAL_ORDERING"] == "prefect_redis.ordering"
        assert env["PREFECT_REDIS_MESSAGING_HOST"] == "redis"
        assert env["PREFECT_API_URL"] == "http://proxy:4200/api"
        assert env["LIENTHONG_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["LIENTHONG_VAULT_BACKEND"] == "s3" and env["LIENTHONG_VAULT_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert compose["services"]["worker"]["environment"]["PREFECT_WORKER_WEBSERVER_PORT"] == "8080"


def test_compose_starts_each_part_after_what_it_needs(compose):
    s = compose["services"]

    def needs(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in s[name].get("depends_on", {}).items()}

    assert needs("prefect-api") == {"prefect-migrate": "service_completed_successfully", "redis": "service_healthy"}
    assert needs("prefect-migrate") == {"postgres": "service_healthy"}
    assert needs("proxy") == {"gateway": "service_healthy", "prefect-api": "service_healthy"}
    assert needs("deployments") == {"proxy": "service_healthy"}
    assert needs("worker")["deployments"] == "service_completed_successfully"
    assert needs("worker")["minio-init"] == "service_completed_successfully"
    assert needs("gateway") == {"lienthong-migrate": "service_completed_successfully"}
    long_running = set(s) - {"minio-init", "prefect-migrate", "lienthong-migrate", "deployments",
                             "prefect-services", "relay"}
    assert {n for n in long_running if "healthcheck" not in s[n]} == set()


def test_compose_bakes_in_no_secret(compose):
    for name in SECRETS:
        done = _config({k: v for k, v in SECRETS.items() if k != name})
        assert done.returncode != 0 and name in done.stderr, f"{name} is not required"
    text = COMPOSE.read_text() + (REPO_ROOT / "infra" / "Dockerfile").read_text()
    assert not any(v in text for v in SECRETS.values())


def test_the_image_installs_the_system_packages_from_the_shared_list():
    dockerfile = (REPO_ROOT / "infra" / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "system-deps.sh --runtime" in dockerfile and "pip install ." in dockerfile


def test_local_nginx_configuration_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: run `make setup`")
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path / "var"))
    reset_settings()
    cfg = ProdConfig(port_base=31000, gateways=3, api_replicas=2)
    conf = render_nginx(cfg)
    text = conf.read_text()
    assert "@" not in text.replace("$", "")
    assert all(f"server 127.0.0.1:{cfg.port('gateway-replica', i)} " in text for i in (1, 2, 3))
    done = subprocess.run(["nginx", "-t", "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)
    reset_settings()
    assert done.returncode == 0, done.stderr


def test_work_pool_deployments_are_the_served_ones_with_importable_module_entrypoints():
    from infra.deployments import all_deployments

    served = {(d.flow_name, d.name) for d in all_deployments()}
    pooled = work_pool_deployments("lienthong")
    assert {(d.flow_name, d.name) for d in pooled} == served
    for d in pooled:
        module, _, attr = d.entrypoint.rpartition(".")
        assert getattr(importlib.import_module(module), attr).name == d.flow_name
        assert d.work_pool_name == "lienthong"
        assert d.work_queue_name == ("procedures" if d.flow_name == "procedure" else "batch")
