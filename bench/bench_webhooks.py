"""Deliver 10,000 bounce.recorded webhook events to a local receiver and time it.

Starts a durable PostgreSQL and a Redis (tests.servers), a receiver process (an HTTP
server on a loopback port that answers 200 and counts webhook-ids), and a Celery worker
(prefork, --concurrency 2) on Redis. Then emits the events the way the pipeline does
(`api.events.emit_events` inside a transaction, batches of 500), and measures from the
first commit until every delivery is recorded as delivered. Every body is verified with
the standardwebhooks library by the receiver.

    .venv/bin/python bench/bench_webhooks.py [--events 10000] [--batch 500] [--concurrency 2]

Target: at least 500 events/s. Loopback only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "dGVzdC1rZXktZm9yLWJvdW5jZW1nci10ZXN0cy0wMDA="


def receiver_main(port: int, secret: str, counter, bad) -> None:
    """A receiver in its own process: verify each request, count distinct webhook-ids."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks.webhooks import Webhook

    wh = Webhook(secret)
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                wh.verify(body, dict(self.headers.items()), json_parse=False)
            except Exception:  # noqa: BLE001
                with bad.get_lock():
                    bad.value += 1
            msg_id = self.headers.get("webhook-id")
            if msg_id not in seen:
                seen.add(msg_id)
                with counter.get_lock():
                    counter.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    from tests.servers.common import free_loopback_port, wait_for_port
    from tests.servers.postgres import PostgresServer, postgres_available
    from tests.servers.redis import RedisServer, redis_available

    for reason in (postgres_available(), redis_available()):
        if reason:
            sys.exit(f"cannot run: {reason}")
    pg = PostgresServer.start(durable=True)
    redis = RedisServer.start()
    worker = receiver = None
    try:
        env = {**os.environ, "DATABASE_URL": pg.url, "REDIS_URL": redis.url, "FIELD_ENCRYPTION_KEY": KEY,
               "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 40,  # settings need one
               "DJANGO_SETTINGS_MODULE": "bouncemgr.settings", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
               "LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import transaction

        call_command("migrate", verbosity=0)
        from api import events
        from api.models import WebhookDelivery, WebhookEndpoint

        port = free_loopback_port()
        endpoint = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/hooks",
                                                  event_types=["bounce.recorded"])
        counter, bad = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
        receiver = multiprocessing.Process(target=receiver_main, args=(port, endpoint.secret, counter, bad),
                                           daemon=True)
        receiver.start()
        wait_for_port("127.0.0.1", port)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "-l", "warning",
             f"--concurrency={args.concurrency}", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env,
        )
        time.sleep(4)  # worker start-up
        print(f"PostgreSQL (durable) and Redis on loopback; worker: prefork x {args.concurrency}; "
              f"{args.events:,} events in batches of {args.batch}", flush=True)
        started = time.perf_counter()
        for start in range(0, args.events, args.batch):
            with transaction.atomic():
                events.emit_events("bounce.recorded", [
                    {"bounce_id": i, "recipient": f"user{i}@example.com", "kind": "hard", "reason": "userunknown",
                     "status_code": "5.1.1", "diagnostic": "550 5.1.1 user unknown", "campaign_id": 1,
                     "contact_id": i, "mailbox_id": 1}
                    for i in range(start, min(start + args.batch, args.events))
                ])
        emitted = time.perf_counter() - started
        print(f"emitted (persisted, queued) in {emitted:.2f}s", flush=True)
        deadline = time.monotonic() + 600
        while counter.value < args.events and time.monotonic() < deadline:
            time.sleep(0.05)
        received = time.perf_counter() - started
        while WebhookDelivery.objects.exclude(status="delivered").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        recorded = time.perf_counter() - started
        print(f"received by the receiver: {counter.value:,} distinct ids in {received:.2f}s "
              f"= {counter.value / received:,.0f} events/s; signature failures: {bad.value}")
        print(f"all recorded as delivered after {recorded:.2f}s = {args.events / recorded:,.0f} events/s")
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if receiver is not None:
            receiver.terminate()
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
