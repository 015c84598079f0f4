"""`make run` serves like production on one machine (issue 12): scripts/run.sh as the
operator starts it, with nothing configured.

DEBUG off, gunicorn with whitenoise's hashed static files, bound to 127.0.0.1, var/ private
(0700, files 0600, the SQLite database included), the admin password printed on the first
start only, and a SECRET_KEY generated and kept in var/local.env.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.servers.common import free_loopback_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# Nothing of the test run's own configuration: the operator's clean shell.
DROP = ("SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL",
        "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE",
        "STATIC_ROOT")


def run_env(var: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP}
    env.update({"BOUNCEMGR_VAR_DIR": str(var), "STATIC_ROOT": str(var / "staticfiles"), "PORT": str(port),
                "WEB_CONCURRENCY": "1", "CELERY_CONCURRENCY": "1", **extra})
    env.pop("HOST", None)
    return env


def get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture
def instance(tmp_path):
    var = tmp_path / "var"
    port = free_loopback_port()
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=run_env(var, port), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield var, base, log, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_make_run_serves_like_production_and_keeps_var_private(instance):
    var, base, log, port = instance

    status, headers, page = get(base + "/admin/login/")
    assert status == 200 and headers["Server"].startswith("gunicorn")
    assert "Content-Security-Policy" in headers
    # whitenoise serves the collected, hashed static files
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert css, page[:2000]
    assert get(base + css.group(1))[0] == 200
    # DEBUG is off: a missing page is the plain 404, not the debug page with the URLconf
    status, _, page = get(base + "/no-such-page")
    assert status == 404 and "URLconf" not in page and "DEBUG" not in page
    assert f"Listening at: http://127.0.0.1:{port}" in log.read_text()

    output = log.read_text()
    created = re.search(r"Created admin login: user admin / password (\S+)", output)
    assert created, output
    password = created.group(1)

    # The operator logs in over plain HTTP on loopback (cookies not marked Secure there).
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = browser.open(base + "/admin/login/?next=/admin/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": "admin", "password": password,
                                   "next": "/admin/"}).encode()
    request = urllib.request.Request(base + "/admin/login/?next=/admin/", data=data,
                                     headers={"Referer": base + "/admin/login/"})
    with browser.open(request, timeout=10) as response:
        # /admin/ leads to the dashboard
        assert response.url == base + "/" and "Log out" in response.read().decode()
        assert "no-store" in response.headers["Cache-Control"]

    env_file = (var / "local.env").read_text()
    assert re.search(r"^SECRET_KEY=\S{40,}$", env_file, re.M) and "DEBUG" not in env_file

    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for path in var.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for name in ("bouncemgr.sqlite3", "local.env", "admin-password.txt"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name

    # The second start: same secret key, the password never printed again.
    again = subprocess.run(["bash", "scripts/run.sh"], cwd=ROOT, capture_output=True, text=True, timeout=240,
                           env=run_env(var, port, BOUNCEMGR_PREPARE_ONLY="1"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert password not in again.stdout + again.stderr
    assert "An admin login exists" in again.stdout and "admin-password.txt" in again.stdout
    assert (var / "local.env").read_text() == env_file


def test_an_old_local_env_with_debug_true_is_switched_to_debug_off(tmp_path):
    from bouncemgr import localenv

    var = tmp_path / "var"
    var.mkdir()
    (var / "local.env").write_text(localenv.HEADER + "DEBUG=true\nSECRET_KEY=abc\nFIELD_ENCRYPTION_KEY=k\n")
    (var / "local.env").chmod(0o644)
    localenv.main(str(var))
    assert (var / "local.env").read_text() == localenv.HEADER + "SECRET_KEY=abc\nFIELD_ENCRYPTION_KEY=k\n"
    assert stat.S_IMODE((var / "local.env").stat().st_mode) == 0o600
