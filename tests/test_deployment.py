"""The production shape: docker-compose.yml wiring and `check --deploy`."""

from __future__ import annotations

import json
import os
import re
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


# --- issue 12: secrets, exposure, proxy trust, static build ------------------------------

SECRET_NAMES = ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "EMAIL_PASSWORD")


def test_compose_passes_secrets_as_docker_secrets_never_in_the_environment():
    compose = load_compose()
    services = compose["services"]
    for name in ("web", "worker", "beat", "migrate"):
        service = services[name]
        assert "env_file" not in service, name
        env = service["environment"]
        for secret in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY"):
            assert secret not in env and env[f"{secret}_FILE"].startswith("/run/secrets/"), (name, secret)
            assert env[f"{secret}_FILE"].removeprefix("/run/secrets/") in service["secrets"]
        assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
        assert ":" not in env["DATABASE_URL"].split("//", 1)[1].split("@", 1)[0]  # no password in the URL
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    text = (ROOT / "docker-compose.yml").read_text()
    assert "env_file" not in text


def test_compose_publishes_gunicorn_on_the_hosts_loopback_only():
    services = load_compose()["services"]
    for name, service in services.items():
        if name == "bounce-smtpd":
            continue  # an MX must be reachable from the Internet (docs/intake.md)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert services["web"]["ports"]


def test_compose_does_not_trust_x_forwarded_proto_by_default():
    services = load_compose()["services"]
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["environment"]["TRUST_X_FORWARDED_PROTO"] == "${TRUST_X_FORWARDED_PROTO:-false}"
    # The health check needs no forged header: /healthz answers on plain HTTP.
    assert "X-Forwarded-Proto" not in str(services["web"]["healthcheck"]["test"])


def test_the_env_example_holds_no_compose_secrets_and_lists_the_new_settings():
    example = (ROOT / ".env.example").read_text()
    for name in ("TRUST_X_FORWARDED_PROTO", "REQUIRE_2FA", "AXES_FAILURE_LIMIT", "ALLOWED_HOSTS"):
        assert f"{name}=" in example, name
    assert "POSTGRES_PASSWORD=" not in example


def test_vendored_static_files_point_to_no_missing_source_map():
    for path in (ROOT / "static").rglob("*"):
        if path.suffix in (".js", ".css"):
            for ref in re.findall(r"sourceMappingURL=([^\s*]+)", path.read_text(errors="replace")):
                assert (path.parent / ref).is_file(), f"{path.relative_to(ROOT)} -> {ref}"


def test_collectstatic_with_debug_off_builds_the_manifest_like_the_image(tmp_path):
    """The Dockerfile's step: DEBUG off selects whitenoise's compressed manifest storage."""
    static_root = tmp_path / "static"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        "DEBUG": "false", "SECRET_KEY": "build-only", "STATIC_ROOT": str(static_root),
        "BOUNCEMGR_VAR_DIR": str(tmp_path / "var"),
    }
    out = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    for name in ("vendor/bootstrap/bootstrap.min.css", "vendor/bootstrap/bootstrap.bundle.min.js",
                 "bouncemgr/pages.js", "admin/css/base.css"):
        assert (static_root / manifest[name]).is_file(), name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DEBUG=false" in dockerfile and "collectstatic" in dockerfile
