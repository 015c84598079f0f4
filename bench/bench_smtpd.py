"""Benchmark: the bounce SMTP receiver, real clients on loopback, a real durable PostgreSQL.

10,000 corpus DSNs (shared/bounce-corpus/eml, cycled; each to its own VERP address, so
each is a distinct message) are sent by 4 client processes, each on one SMTP connection,
to `manage.py run_bounce_smtpd` (a subprocess, the production command). Every message is
committed to PostgreSQL (durable defaults: fsync and synchronous_commit on) before the
receiver answers 250. A processor subprocess runs the intake's `process_notices` in
batches meanwhile (what the Celery task does in production), woken every 0.2 s.

    .venv/bin/python bench/bench_smtpd.py [--messages 10000] [--clients 4]

Prints accepted messages/s (first MAIL to last 250) and the time until every message is
processed (Bounce rows written, contacts acted on). Goal: >= 500 accepted messages/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("BOUNCE_CORPUS", ROOT.parent / "shared" / "bounce-corpus"))
if not (CORPUS / "eml").is_dir():
    CORPUS = Path("/work/shared/bounce-corpus")
sys.path.insert(0, str(ROOT))
DOMAIN = "bounces.bench.example"


def client(port: int, indexes: list[int], files: list[str], out) -> None:
    bodies = [Path(f).read_bytes() for f in files]
    sent = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("mx.bench.example")
        for i in indexes:
            smtp.mail("")
            smtp.rcpt(f"bounces+{i:016x}@{DOMAIN}")
            code, reply = smtp.data(bodies[i % len(bodies)])
            if code != 250:
                raise RuntimeError(f"message {i}: {code} {reply!r}")
            sent += 1
    out.put((sent, time.perf_counter()))


def processor_main(stop_after: int) -> None:
    """Process stored notices until `stop_after` rows are processed (the Celery task's work)."""
    import django

    django.setup()
    from bounces.intake.notices import process_notices
    from bounces.models import RawMessage

    while RawMessage.objects.filter(state="processed").count() < stop_after:
        counts = process_notices(sources=["smtpd"], batch_size=500, limit=2000)
        if not counts.get("processed"):
            time.sleep(0.2)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commit_latency_ms(url: str, n: int = 50) -> float:
    """Median time of one single-row INSERT committed (an fsync of the WAL) on this server: with
    each connection waiting for its 250, `clients` messages per commit at best."""
    import statistics

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (n integer)")
        times = []
        for i in range(n):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_commit VALUES (%s)", [i])
            times.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_commit")
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--no-processing", action="store_true",
                        help="measure the receiver alone (nothing processes the stored messages)")
    parser.add_argument("--profile-receiver", metavar="FILE",
                        help="run the receiver under cProfile and write its profile to FILE")
    parser.add_argument("--processor", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processor is not None:
        processor_main(args.processor)
        return

    from tests.conftest import TEST_ENCRYPTION_KEY
    from tests.servers.common import free_loopback_port, wait_for_port
    from tests.servers.postgres import PostgresServer

    files = [str(p) for p in sorted((CORPUS / "eml").glob("*.eml"))]
    if not files:
        sys.exit(f"no corpus at {CORPUS}/eml")
    pg = PostgresServer.start(durable=True)
    env = {**os.environ, "DATABASE_URL": pg.url, "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
           "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "BOUNCE_SMTPD_DOMAINS": DOMAIN}
    os.environ.update(env)
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        latency = commit_latency_ms(pg.url)
        print(f"commit latency (one INSERT, fsync): median {latency:.1f} ms -> with {args.clients} connections "
              f"each waiting for its 250, at most ~{args.clients * 1000 / latency:,.0f} msgs/s from commits alone")
        port = free_loopback_port()
        profile = ["-m", "cProfile", "-o", str(Path(args.profile_receiver).resolve())] if args.profile_receiver else []
        receiver = subprocess.Popen([sys.executable, *profile, "manage.py", "run_bounce_smtpd", "--host", "127.0.0.1",
                                     "--port", str(port), "--process", "none"], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL)
        procs.append(receiver)
        wait_for_port("127.0.0.1", port, timeout=60)
        worker = None
        if not args.no_processing:
            worker = subprocess.Popen([sys.executable, __file__, "--processor", str(args.messages)], cwd=ROOT,
                                      env=env)
            procs.append(worker)
        print(f"sending {args.messages} corpus DSNs ({len(files)} files, cycled) from {args.clients} connections; "
              f"PostgreSQL {pg.port} durable (fsync, synchronous_commit on)")
        out: multiprocessing.Queue = multiprocessing.Queue()
        parts = [list(range(k, args.messages, args.clients)) for k in range(args.clients)]
        receiver_cpu_start = _cpu_seconds(receiver.pid)  # start-up (imports, Django) left out
        start = time.perf_counter()
        clients = [multiprocessing.Process(target=client, args=(port, part, files, out)) for part in parts]
        for c in clients:
            c.start()
        results = [out.get(timeout=900) for _ in clients]
        receiver_cpu = _cpu_seconds(receiver.pid) - receiver_cpu_start
        for c in clients:
            c.join()
        accepted_at = max(t for _, t in results)
        accepted = sum(n for n, _ in results)
        if worker is not None:
            worker.wait(timeout=1800)
        processed_at = time.perf_counter()

        import django

        django.setup()
        from bounces.models import Bounce, RawMessage

        stored = RawMessage.objects.filter(source="smtpd").count()
        done = RawMessage.objects.filter(source="smtpd", state="processed").count()
        print(f"accepted: {accepted} messages in {accepted_at - start:.2f} s -> "
              f"{accepted / (accepted_at - start):,.0f} accepted msgs/s")
        print(f"stored: {stored}, processed: {done}, bounce rows: {Bounce.objects.count()}")
        print(f"all processed {processed_at - start:.2f} s after the first message "
              f"({processed_at - accepted_at:.2f} s after the last 250)")
        print(f"CPU: receiver process {receiver_cpu:.2f} s ({receiver_cpu / max(accepted, 1) * 1000:.2f} ms per message)")
        print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        pg.stop()


if __name__ == "__main__":
    main()
