"""The production shape: docker-compose.yml wiring and `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_redis_web_worker_and_beat_with_health_checks():
    services = load_compose()["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert name in services, name
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_compose_app_services_use_postgres_and_redis_and_wait_for_them():
    services = load_compose()["services"]
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert "gunicorn" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "bouncemgr", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "bouncemgr", "beat"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_serves_with_gunicorn_and_collects_static_files():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "gunicorn" in dockerfile and "collectstatic" in dockerfile
    assert "whitenoise" in (ROOT / "bouncemgr" / "settings.py").read_text()


def test_check_deploy_passes_with_production_settings(tmp_path):
    from cryptography.fernet import Fernet

    env = {
        # Not the test run's own switches (the browser tests allow async-unsafe ORM calls).
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "bounces.example.com",
        "BOUNCEMGR_VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
