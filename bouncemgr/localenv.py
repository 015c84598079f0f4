"""Prepare var/ for `make run`: private modes and var/local.env with this instance's secrets.

- var/ is made 0700 and everything in it 0600 (files) / 0700 (folders): the SQLite
  database holds sessions, mail and contacts, local.env the keys, admin-password.txt the
  first admin password.
- var/local.env is written once, with a random SECRET_KEY and FIELD_ENCRYPTION_KEY, and
  never overwritten: the encryption key protects the stored mailbox passwords, and losing it
  makes them unreadable. A SECRET_KEY missing from an existing file is added.
- The `DEBUG=true` line that earlier versions wrote is removed: `make run` serves like
  production unless DEBUG=true is set in the environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

HEADER = (
    "# Written by `make run` on first start. Keep it: FIELD_ENCRYPTION_KEY decrypts\n"
    "# the stored mailbox passwords. Variables set in the environment win over these.\n"
)
OLD_DEBUG_LINE = "DEBUG=true\n"


def make_private(root: Path) -> None:
    """root 0700; below it folders 0700 and files 0600 (symlinks left alone)."""
    root.chmod(0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                path.chmod(0o700)
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                path.chmod(0o600)


def write_local_env(path: Path) -> list[str]:
    """Create or complete var/local.env; returns what was done, for the console."""
    done = []
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(HEADER)
            f.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
            f.write(f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n")
        return [f"wrote {path} (secret key and encryption key for this instance)"]
    lines = path.read_text().splitlines(keepends=True)
    if OLD_DEBUG_LINE in lines and lines[: len(HEADER.splitlines())] == HEADER.splitlines(keepends=True):
        lines.remove(OLD_DEBUG_LINE)
        done.append(f"removed DEBUG=true from {path}: `make run` now serves with DEBUG off "
                    "(DEBUG=true make run for development)")
    if not any(line.startswith("SECRET_KEY=") for line in lines):
        lines.append(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
        done.append(f"added a SECRET_KEY to {path}")
    if done:
        path.write_text("".join(lines))
    return done


def main(var_dir: str = "var") -> int:
    os.umask(0o077)
    var = Path(var_dir)
    var.mkdir(mode=0o700, parents=True, exist_ok=True)
    for line in write_local_env(var / "local.env"):
        print(line)
    make_private(var)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
