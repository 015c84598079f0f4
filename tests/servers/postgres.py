"""A real PostgreSQL server as a plain child process, for tests and benchmarks.

initdb and the server refuse to run as root, so as root the cluster belongs to a
dedicated system user (created when missing). The cluster lives in a temporary
directory, listens on a free loopback port and its socket directory is the data dir.
fsync and synchronous_commit are off for tests (`durable=True` keeps the defaults, for
benchmarks). See shared/notes/test-servers.md.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .common import free_loopback_port, wait_for_port

PG_SYSTEM_USER = "bouncemgr-pg"


def find_pg_bin() -> Path | None:
    """The bin directory of the newest installed PostgreSQL (Debian layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def postgres_available() -> str | None:
    """None when a test PostgreSQL can run here, else why not."""
    if find_pg_bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    return None


def _ensure_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None  # run as ourselves
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
        )
        return pwd.getpwnam(PG_SYSTEM_USER)


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path
    user: pwd.struct_passwd | None
    host: str = "127.0.0.1"
    db_user: str = "bouncemgr"
    db_password: str = "bouncemgr-test"
    db_name: str = "bouncemgr"

    @property
    def url(self) -> str:
        return f"postgres://{self.db_user}:{self.db_password}@{self.host}:{self.port}/{self.db_name}"

    def django_settings(self) -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.db_name,
            "USER": self.db_user,
            "PASSWORD": self.db_password,
            "HOST": self.host,
            "PORT": str(self.port),
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "OPTIONS": {},
            "ATOMIC_REQUESTS": False,
            "AUTOCOMMIT": True,
            "TIME_ZONE": None,
            "TEST": {},
        }

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        kw.setdefault("check", True)
        kw.setdefault("capture_output", True)
        if self.user is not None:
            uid, gid = self.user.pw_uid, self.user.pw_gid
            return subprocess.run(args, user=uid, group=gid, extra_groups=[], cwd=self.root, **kw)
        return subprocess.run(args, cwd=self.root, **kw)

    @classmethod
    def start(cls, *, durable: bool = False, root: Path | None = None) -> PostgresServer:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError(postgres_available())
        user = _ensure_user()
        root = root or Path(tempfile.mkdtemp(prefix="bouncemgr-pg-"))
        server = cls(root=root, port=free_loopback_port(), bin_dir=bin_dir, user=user)
        data = root / "data"
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        pwfile = root / "pwfile"
        pwfile.write_text(server.db_password + "\n")
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        server._run([str(bin_dir / "initdb"), "-D", str(data), "-U", server.db_user, "-A", "scram-sha-256",
                     f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C"])
        opts = f"-p {server.port} -k {data} -c listen_addresses={server.host}"
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        opts += " -c max_connections=200"
        server._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "server.log"),
                     "-w", "-t", "60", "start"])
        wait_for_port(server.host, server.port)
        server._run([str(bin_dir / "createdb"), "-h", server.host, "-p", str(server.port), "-U", server.db_user,
                     server.db_name], env={**os.environ, "PGPASSWORD": server.db_password})
        return server

    def stop(self) -> None:
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
                  check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.lower()
    return "c.utf8" in out or "c.utf-8" in out
