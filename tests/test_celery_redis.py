"""The Celery app delivers a task through a real Redis broker to a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent


def test_a_task_goes_through_redis_to_a_worker_and_its_result_comes_back(redis_server, tmp_path):
    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "BOUNCEMGR_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--pool=solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        from celery import Celery

        client = Celery("client", broker=redis_server.url, backend=redis_server.url)
        result = client.send_task("bouncemgr.ping", args=["hello"])
        assert result.get(timeout=60)["value"] == "hello"
        assert result.successful()
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")
    assert "Traceback" not in output, output
