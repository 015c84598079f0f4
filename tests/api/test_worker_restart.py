"""A real Celery worker killed (SIGKILL) while it delivers a webhook: after a restart the
event is still delivered, with the same id. Real Redis, real PostgreSQL, real receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection, transaction

from api import events
from api.models import WebhookDelivery
from tests.conftest import TEST_ENCRYPTION_KEY

from .conftest import Behaviour, Receiver, make_endpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--beat", "--pool=solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--scheduler", "celery.beat:PersistentScheduler", "-s", env["BEAT_FILE"]],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def test_a_worker_killed_mid_delivery_delivers_after_restart(redis_server, tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs the shared database (pytest --postgres)")
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_server.url, "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_TIMEOUT": "2", "WEBHOOK_SWEEP_SECONDS": "1", "BEAT_FILE": str(tmp_path / "beat"),
    }
    # This process queues through Redis as a web process configured with REDIS_URL would.
    client = Celery("client", broker=redis_server.url)
    monkeypatch.setattr(events, "queue_deliveries",
                        lambda ids, countdown=None: client.send_task("api.deliver_webhooks", args=[ids]))
    with Receiver(Behaviour(hold_seconds=30)) as receiver:
        make_endpoint(receiver.url, ["run.failed"])
        worker = _worker(env)
        outputs = []
        try:
            with transaction.atomic():
                event = events.emit_event("run.failed", {"run_id": 1})
            assert receiver.first_request.wait(60), "the worker never made the request"
            os.killpg(worker.pid, signal.SIGKILL)  # mid-request: the receiver is holding it
            outputs.append(worker.communicate(timeout=30)[0].decode(errors="replace"))
            delivery = WebhookDelivery.objects.get()
            assert delivery.status == "pending" and delivery.attempts == 1
            worker = _worker(env)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                delivery.refresh_from_db()
                if delivery.status == "delivered":
                    break
                time.sleep(0.2)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                outputs.append(worker.communicate(timeout=30)[0].decode(errors="replace"))
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                outputs.append(worker.communicate()[0].decode(errors="replace"))
    assert delivery.status == "delivered", (delivery.__dict__, outputs)
    assert delivery.attempts == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event.event_id}
    assert "Traceback" not in "".join(outputs), outputs
