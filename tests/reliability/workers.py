"""Real worker processes for the fault tests and bench/faults.py: `process_mailbox` in a child
Python on the same PostgreSQL, the process table read from /proc, and the service faults
(PostgreSQL and Dovecot stopped and started again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The child: one mailbox run; `parallel_min` lowers PARALLEL_PARSE_MIN so the run forks its
# parse helper at test scale.
_CHILD = """
import sys, django
django.setup()
import bounces.intake.mailbox as mailbox
mailbox.PARALLEL_PARSE_MIN = int(sys.argv[3])
run = mailbox.process_mailbox(mailbox_id=int(sys.argv[1]), batch_size=int(sys.argv[2]))
print(run.status, run.error_log)
"""


def database_env(db: dict) -> dict:
    from tests.conftest import TEST_ENCRYPTION_KEY

    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
    }


def start_run(db: dict, mailbox_id: int, *, batch_size: int = 5, parallel_min: int = 2000,
              capture: bool = False) -> subprocess.Popen:
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(mailbox_id), str(batch_size), str(parallel_min)],
        env=database_env(db), cwd=ROOT, stdout=out, stderr=out,
    )


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(name))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_postgres_again(server) -> None:
    """Start the test PostgreSQL stopped by a fault, with the options it had."""
    data = server.root / "data"
    opts = (f"-p {server.port} -k {data} -c listen_addresses={server.host} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    server._run([str(server.bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(server.root / "server.log"),
                 "-w", "-t", "60", "start"])


def kill_dovecot(server) -> None:
    """SIGKILL to Dovecot's whole process group: the master and every IMAP session at once
    (a graceful stop takes over a second, letting short runs finish first)."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    server.process = None


def start_dovecot_again(server) -> None:
    """Start the killed Dovecot with its config and ports."""
    (server.root / "run" / "master.pid").unlink(missing_ok=True)
    server._spawn(15)


def wait_until(condition, seconds: float) -> bool:
    """Poll `condition` every 50 ms for up to `seconds`; its last answer."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def inject_bounces(server, user, campaign, n: int, prefix: str) -> list:
    """Send `n` campaign messages and drop a DSN for each into `user`'s mailbox on `server`."""
    from tests.pipeline.conftest import dsn, send

    sent = [send(campaign, f"{prefix}{i}@example.net") for i in range(n)]
    server.inject_many(user, [dsn(s.email, token=s.token) for s in sent])
    return sent


def sqlite_database_env(path) -> dict:
    """The environment of a child process on the SQLite database file `path` (the embedded
    default, as `make run` uses it)."""
    from tests.conftest import TEST_ENCRYPTION_KEY

    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{Path(path).resolve()}",
        "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
    }


def run_mailbox_in_child(env: dict, mailbox_id: int, *, batch_size: int = 5,
                         timeout: float = 120) -> subprocess.CompletedProcess:
    """One mailbox run in a child Python with `env`, to its end; its output captured."""
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(mailbox_id), str(batch_size), "2000"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def fill_up(path: Path) -> None:
    """Append zeros to `path` until its file system says no (a full disk, for real)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
