"""Write var/local.env with fresh random secrets on the first `make run`.

Never overwrites an existing file: the encryption key in it protects stored mailbox
passwords, and losing it would make them unreadable.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def main(var_dir: str = "var") -> int:
    path = Path(var_dir) / "local.env"
    if path.exists():
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        "# Written by `make run` on first start. Keep it: FIELD_ENCRYPTION_KEY decrypts\n"
        "# the stored mailbox passwords. Variables set in the environment win over these.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
    )
    print(f"wrote {path} (secret key and encryption key for this instance)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
