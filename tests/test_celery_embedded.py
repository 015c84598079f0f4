"""The embedded default: kombu's filesystem broker and django-db results on SQLite, no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CLIENT = """
import django
django.setup()
from bouncemgr.tasks import ping_task
result = ping_task.delay("through the filesystem broker")
print(result.get(timeout=60)["value"])
"""


def test_a_task_goes_through_the_filesystem_broker_to_a_worker_with_results_in_sqlite(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL",
                                                           "CELERY_RESULT_BACKEND")},
        "BOUNCEMGR_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--pool=threads", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        out = subprocess.run([sys.executable, "-c", CLIENT], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip().endswith("through the filesystem broker")
    finally:
        worker.terminate()
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
    assert (tmp_path / "bouncemgr.sqlite3").exists()
    assert (tmp_path / "celery" / "broker" / "queue").is_dir()
