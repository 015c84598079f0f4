"""Load-test GET /api/v1/check?email= through gunicorn against PostgreSQL with 1,000,000 contacts.

Starts a private, durable PostgreSQL (tests.servers.postgres, fsync on), migrates, fills
1,000,000 contacts (94 % active, the rest unconfirmed / unsubscribed / blacklisted),
50,000 suppressed addresses and 100 suppressed domains with COPY, runs VACUUM ANALYZE,
makes a read-only API key, starts gunicorn on a loopback port, then sends requests for
random addresses (90 % existing contacts, 10 % unknown) from a load generator on the
same machine and prints throughput and latency percentiles.

    .venv/bin/python bench/bench_api.py [--contacts 1000000] [--seconds 20] [--concurrency 16]
        [--workers 2[,4...]] [--threads 1] [--client python|ab] [--runs 1]

Several worker counts (`--workers 2,4`) and `--runs N` are measured on one filled database,
one after the other; each line says its gunicorn CPU per request and the load average.

The Python client is asyncio with keep-alive connections (it shares the 2 cores with
the server); `--client ab` uses ApacheBench (Debian's apache2-utils) on one address per
run instead. Targets: at least 1,000 requests/s, p99 under 20 ms. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_campaign_page import _copy  # noqa: E402

STATUSES = [("active", 0.94), ("unconfirmed", 0.02), ("unsubscribed", 0.02), ("blacklisted", 0.02)]


def address(i: int) -> str:
    return f"user{i}@d{i % 1000}.example.com"


def fill(n: int, seed: int = 11) -> None:
    from django.db import connection

    from contacts.models import Contact, Suppression

    rng = random.Random(seed)
    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    with connection.cursor() as cur:
        raw = cur.cursor
        _copy(raw, Contact, ["email", "name", "status"],
              ((address(i), "", rng.choices(statuses, weights)[0]) for i in range(n)))
        picked = rng.sample(range(n), min(50_000, n // 20))
        _copy(raw, Suppression, ["kind", "value", "reason", "source"],
              (("address", address(i), "hard_bounce", "bench") for i in picked))
        _copy(raw, Suppression, ["kind", "value", "reason", "source"],
              (("domain", f"d{i}.example.com", "manual", "bench") for i in range(0, 1000, 10)))
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


async def _worker(host: str, port: int, paths: list[str], token: str, stop_at: float,
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    head = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"
    while time.perf_counter() < stop_at:
        path = paths[rng.randrange(len(paths))]
        started = time.perf_counter()
        writer.write(f"GET {path} HTTP/1.1\r\n{head}".encode())
        headers = await reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        close = False
        for line in headers.split(b"\r\n"):
            lower = line.lower()
            if lower.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif lower.startswith(b"connection:") and b"close" in lower:
                close = True
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            errors.append(status)
        if close:
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()


async def load(host: str, port: int, paths: list[str], token: str, *, seconds: float,
               concurrency: int) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_worker(host, port, paths, token, stop_at, latencies, errors)
                           for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


def cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) of gunicorn's master and workers so far, from /proc."""
    pids = [master_pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]
    except OSError:
        pass
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def run_ab(host: str, port: int, path: str, token: str, *, seconds: float, concurrency: int) -> str:
    out = subprocess.run(
        ["ab", "-q", "-k", "-t", str(int(seconds)), "-n", "10000000", "-c", str(concurrency),
         "-H", f"Authorization: Bearer {token}", f"http://{host}:{port}{path}"],
        capture_output=True, text=True, check=False,
    ).stdout
    keep = ("Complete requests", "Failed requests", "Non-2xx", "Requests per second", "  50%", "  90%",
            "  99%", " 100%")
    return "\n".join(line for line in out.splitlines() if line.startswith(keep))


def measure(args: argparse.Namespace, workers: int, port: int, paths: list[str], token: str, pid: int) -> None:
    print(f"gunicorn: {workers} sync workers{f' x {args.threads} threads' if args.threads > 1 else ''}; "
          f"client: {args.client}, {args.concurrency} connections, {args.seconds:.0f} s", flush=True)
    cpu_before = cpu_seconds(pid)
    if args.client == "ab":
        out = run_ab("127.0.0.1", port, paths[0], token, seconds=args.seconds, concurrency=args.concurrency)
        print(out)
        n = int(out.split("Complete requests:")[1].split()[0])
    else:
        latencies, errors, elapsed = asyncio.run(
            load("127.0.0.1", port, paths, token, seconds=args.seconds, concurrency=args.concurrency))
        n = len(latencies)
        print(f"requests: {n:,} in {elapsed:.1f}s = {n / elapsed:,.0f} req/s; non-200: {len(errors)}")
        print("latency ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}".format(
            *(percentile(latencies, p) * 1000 for p in (0.5, 0.9, 0.99)), max(latencies) * 1000))
    cpu = cpu_seconds(pid) - cpu_before
    if n:
        print(f"server CPU per request: {cpu / n * 1000:.2f} ms (gunicorn master + workers; PostgreSQL "
              f"not included); load average now {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", default="2", help="gunicorn sync workers; a comma list runs each")
    parser.add_argument("--runs", type=int, default=1, help="measurements per worker count")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--client", choices=["python", "ab"], default="python")
    args = parser.parse_args()
    if args.client == "ab" and not shutil.which("ab"):
        sys.exit("ab not found: apt-get install apache2-utils, or use --client python")

    from tests.servers.common import free_loopback_port, wait_for_port
    from tests.servers.postgres import PostgresServer, postgres_available

    reason = postgres_available()
    if reason:
        sys.exit(f"cannot run: {reason}")
    server = PostgresServer.start(durable=True)
    gunicorn = None
    try:
        env = {
            **os.environ,
            "DATABASE_URL": server.url, "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
            "FIELD_ENCRYPTION_KEY": "dGVzdC1rZXktZm9yLWJvdW5jZW1nci10ZXN0cy0wMDA=",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 40,  # settings need one
            "SECURE_SSL_REDIRECT": "false", "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "false",
            "API_THROTTLE_RATE": "100000000/min", "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "600",
        }
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "FIELD_ENCRYPTION_KEY",
                                               "SECRET_KEY")})
        import django

        django.setup()
        from django.core.management import call_command

        print(f"PostgreSQL on {server.host}:{server.port} (durable, default settings), migrating...", flush=True)
        call_command("migrate", verbosity=0)
        print(f"filling {args.contacts:,} contacts and 50,100 suppressions...", flush=True)
        t0 = time.perf_counter()
        fill(args.contacts)
        print(f"filled in {time.perf_counter() - t0:.1f}s", flush=True)
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission

        from api.services import create_api_key

        user = get_user_model().objects.create_user("bench", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(
            content_type__app_label="contacts", codename__in=["view_contact", "view_suppression"]))
        _, token = create_api_key(name="bench", owner=user)
        from django.db import connections

        connections.close_all()

        rng = random.Random(3)
        paths = [f"/api/v1/check?email={address(rng.randrange(args.contacts))}" for _ in range(9000)]
        paths += [f"/api/v1/check?email=nobody{i}@unknown{i % 50}.example.net" for i in range(1000)]
        for workers in [int(w) for w in str(args.workers).split(",")]:
            port = free_loopback_port()
            worker_class = ["-k", "gthread", "--threads", str(args.threads)] if args.threads > 1 else []
            gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "bouncemgr.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                 *worker_class, "--keep-alive", "30", "--log-level", "warning"],
                cwd=ROOT, env=env,
            )
            wait_for_port("127.0.0.1", port)
            asyncio.run(load("127.0.0.1", port, paths, token, seconds=2, concurrency=args.concurrency))  # warm up
            for _ in range(args.runs):
                measure(args, workers, port, paths, token, gunicorn.pid)
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
            gunicorn = None
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        server.stop()


if __name__ == "__main__":
    main()
