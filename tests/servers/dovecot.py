"""Run a real Dovecot (IMAP + POP3) as a plain child process for tests.

The server lives entirely in a temporary directory: its own ``base_dir``, ``state_dir``,
log file, passwd-file of test users and maildirs, and listens on free loopback ports.
It never touches the system instance (``instance_name`` is unique).

Facts this relies on (see /work/shared/notes/test-servers.md):

* Dovecot refuses to give mail to root, so mail belongs to a system user
  (``bouncemgr-mail``) that we create when missing; hence the helper must run as root.
* Messages written straight into ``Maildir/new`` are picked up on the next sync, far
  faster than APPEND for thousands of messages.

Usage::

    with DovecotServer.start(tmp_path, tls=True) as server:
        user = server.add_user()
        server.inject(user, b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        ... connect to server.imap_port ...

If Dovecot is not installed :func:`dovecot_available` says why; the pytest fixtures in
``tests/mailboxes/conftest.py`` skip then (and fail when ``CI=true``).
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .common import unavailable
from .oauth2 import FakeOAuth2Provider
from .pki import TestPKI, make_test_pki

MAIL_SYSTEM_USER = "bouncemgr-mail"
DOVECOT_BINARY = "dovecot"

# Capabilities a minimal IMAP4rev1 server advertises: used on the "legacy" listener to
# exercise the client's fallbacks (COPY + delete instead of MOVE, EXPUNGE without UIDPLUS).
LEGACY_IMAP_CAPABILITY = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE"
LEGACY_ADDRESS = "127.0.0.2"
# Implicit-TLS IMAP with a self-signed certificate listens here.
SELF_SIGNED_ADDRESS = "127.0.0.3"
# Accounts written to the passwd-file before start (see DovecotServer.add_user).
USER_POOL = 400


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def dovecot_available() -> str | None:
    """Return ``None`` when a test Dovecot can run here, else the reason it cannot."""
    if shutil.which(DOVECOT_BINARY) is None and not Path("/usr/sbin/dovecot").exists():
        return "dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
    if os.geteuid() != 0:
        return "the test Dovecot must be started as root (it drops to a mail user itself)"
    for account in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(account)
        except KeyError:
            return f"system user {account!r} is missing (installed with the dovecot packages)"
    return None


def ensure_mail_user() -> tuple[int, int]:
    """Return (uid, gid) of the system user owning test mail, creating it if needed."""
    try:
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             MAIL_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


@dataclass(frozen=True)
class MailUser:
    """A test account: log in with ``name`` / ``password``; mail lives in ``maildir``."""

    name: str
    password: str
    home: Path

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    def folder_path(self, folder: str | None = None) -> Path:
        """Filesystem path of ``folder`` (Maildir++ layout, '.' separated on disk)."""
        if folder in (None, "", "INBOX"):
            return self.maildir
        return self.maildir / ("." + folder.replace("/", "."))


@dataclass
class DovecotServer:
    """A running Dovecot; create it with :meth:`start`, stop it with :meth:`stop`."""

    root: Path
    imap_port: int
    pop3_port: int
    imaps_port: int
    pop3s_port: int
    legacy_imap_port: int
    self_signed_imaps_port: int
    pki: TestPKI | None
    oauth2_introspection_url: str | None
    mail_uid: int
    mail_gid: int
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"
    _users: dict[str, MailUser] = field(default_factory=dict)
    _pool: list[MailUser] = field(default_factory=list)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(
        cls,
        root: Path,
        *,
        tls: bool = True,
        oauth2_introspection_url: str | None = None,
        startup_timeout: float = 15.0,
    ) -> DovecotServer:
        """Write a private config under ``root`` and start ``dovecot -F``.

        With ``tls`` a test CA and server certificate are generated and Dovecot offers
        STARTTLS on the plain ports plus implicit TLS on ``imaps_port`` / ``pop3s_port``.
        With ``oauth2_introspection_url`` XOAUTH2/OAUTHBEARER logins are checked by
        Dovecot's oauth2 passdb against that (fake) introspection endpoint.
        """
        reason = dovecot_available()
        if reason:
            raise RuntimeError(reason)
        uid, gid = ensure_mail_user()
        root.mkdir(parents=True, exist_ok=True)
        # Dovecot's unprivileged processes (auth as "dovecot", login as "dovenull") must
        # be able to traverse into the temp dir and read the passwd-file and certs.
        for parent in [root, *root.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o011)
        server = cls(
            root=root,
            imap_port=free_port(),
            pop3_port=free_port(),
            imaps_port=free_port() if tls else 0,
            pop3s_port=free_port() if tls else 0,
            legacy_imap_port=free_port(LEGACY_ADDRESS),
            self_signed_imaps_port=free_port(SELF_SIGNED_ADDRESS) if tls else 0,
            pki=make_test_pki(root / "pki") if tls else None,
            oauth2_introspection_url=oauth2_introspection_url,
            mail_uid=uid,
            mail_gid=gid,
        )
        server._write_config()
        server._spawn(startup_timeout)
        return server

    def stop(self) -> None:
        """Stop the master (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def passwd_path(self) -> Path:
        return self.root / "passwd"

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server log, for assertion messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _write_config(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        self.passwd_path.touch()
        self._pool = [self._new_user() for _ in range(USER_POOL)]
        self._append_users(self._pool)
        os.chown(self.passwd_path, 0, _gid("dovecot"))
        self.passwd_path.chmod(0o640)
        name = f"bm-test-{os.getpid()}-{secrets.token_hex(3)}"
        ssl_block = "ssl = no\n"
        if self.pki is not None:
            ssl_block = (
                "ssl = yes\n"
                f"ssl_cert = <{self.pki.server_cert}\n"
                f"ssl_key = <{self.pki.server_key}\n"
            )
        mechanisms = "plain login"
        oauth_passdb = ""
        if self.oauth2_introspection_url:
            mechanisms += " xoauth2 oauthbearer"
            oauth_conf = self.root / "oauth2.conf.ext"
            oauth_conf.write_text(
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "introspection_mode = post\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "timeout_msecs = 5000\n"
            )
            oauth_conf.chmod(0o644)
            oauth_passdb = (
                "passdb {\n"
                "  driver = oauth2\n"
                "  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {oauth_conf}\n"
                "}\n"
            )
        imaps = f"port = {self.imaps_port}\n    ssl = yes" if self.imaps_port else "port = 0"
        self_signed_listener = self_signed_local = ""
        listen = f"127.0.0.1, {LEGACY_ADDRESS}"
        if self.pki is not None and self.self_signed_imaps_port:
            listen += f", {SELF_SIGNED_ADDRESS}"
            self_signed_listener = (
                "  inet_listener imaps_self_signed {\n"
                f"    port = {self.self_signed_imaps_port}\n"
                f"    address = {SELF_SIGNED_ADDRESS}\n"
                "    ssl = yes\n"
                "  }\n"
            )
            self_signed_local = (
                f"local {SELF_SIGNED_ADDRESS} {{\n"
                f"  ssl_cert = <{self.pki.self_signed_cert}\n"
                f"  ssl_key = <{self.pki.self_signed_key}\n"
                "}\n"
            )
        pop3s = f"port = {self.pop3s_port}\n    ssl = yes" if self.pop3s_port else "port = 0"
        config = f"""\
# Generated by tests/servers/dovecot.py: a private throw-away instance.
instance_name = {name}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log_path}
protocols = imap pop3
listen = {listen}
shutdown_clients = yes
{ssl_block}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
# One auth failure should not stall the suite for seconds.
auth_failure_delay = 0
first_valid_uid = {self.mail_uid}
last_valid_uid = {self.mail_uid}
mail_location = maildir:{self.root}/mail/%u/Maildir
mail_fsync = never
pop3_uidl_format = %08Xv%08Xu
# Tests open many short connections from one address.
mail_max_userip_connections = 1000
{oauth_passdb}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_path}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Trash {{
    special_use = \\Trash
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
    address = 127.0.0.1
  }}
  inet_listener imap_legacy {{
    port = {self.legacy_imap_port}
    address = {LEGACY_ADDRESS}
  }}
  inet_listener imaps {{
    {imaps}
    address = 127.0.0.1
  }}
{self_signed_listener}}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
    address = 127.0.0.1
  }}
  inet_listener pop3s {{
    {pop3s}
    address = 127.0.0.1
  }}
}}
# Tests fail logins on purpose from one IP: no growing per-IP auth penalty.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
local {LEGACY_ADDRESS} {{
  protocol imap {{
    imap_capability = {LEGACY_IMAP_CAPABILITY}
  }}
}}
{self_signed_local}"""
        self.config_path.write_text(config)

    def _spawn(self, startup_timeout: float) -> None:
        self.process = subprocess.Popen(
            [shutil.which(DOVECOT_BINARY) or "/usr/sbin/dovecot", "-F", "-c",
             str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "dovecot.stderr", "wb"),  # noqa: SIM115 - owned by Popen
            start_new_session=True,
        )
        deadline = time.monotonic() + startup_timeout
        pid_file = self.root / "run" / "master.pid"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.root / "dovecot.stderr").read_text(errors="replace")
                raise RuntimeError(f"dovecot exited at start:\n{err}\n{self.log_tail()}")
            if pid_file.exists() and _accepts(self.host, self.imap_port) and _accepts(
                self.host, self.pop3_port
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start in {startup_timeout}s:\n{self.log_tail()}")

    # ------------------------------------------------------------------ users and mail
    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        """An account with an empty maildir.

        Dovecot re-reads a changed passwd-file at most once a second, so a user
        appended now may be unknown for up to a second. Accounts are therefore
        written in advance (:data:`USER_POOL` at start) and handed out from that pool;
        only a named or custom-password user, or an exhausted pool, appends to the file
        and then waits for Dovecot to see it.
        """
        if name is None and password is None and self._pool:
            user = self._pool.pop(0)
        else:
            user = self._new_user(name, password)
            self._append_users([user])
            time.sleep(1.1)
        for sub in ("", "Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
            path = user.home / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, self.mail_uid, self.mail_gid)
            path.chmod(0o700)
        self._users[user.name] = user
        return user

    def _new_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        name = name or f"user{next(self._counter)}-{secrets.token_hex(3)}"
        password = password or secrets.token_urlsafe(12)
        return MailUser(name=name, password=password, home=self.root / "mail" / name)

    def _append_users(self, users: list[MailUser]) -> None:
        with self.passwd_path.open("a") as fh:
            for user in users:
                fh.write(
                    f"{user.name}:{{PLAIN}}{user.password}:{self.mail_uid}:{self.mail_gid}"
                    f"::{user.home}\n"
                )

    def make_folder(self, user: MailUser, folder: str) -> Path:
        """Create an empty (on-disk, UTF-8 named) Maildir++ folder for ``user``."""
        path = user.folder_path(folder)
        for sub in ("", "new", "cur", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
            os.chown(path / sub, self.mail_uid, self.mail_gid)
        return path

    def inject(
        self,
        user: MailUser,
        raw: bytes,
        *,
        folder: str | None = None,
        seen: bool = False,
    ) -> Path:
        """Drop one message file into ``folder`` (default INBOX); return its path.

        Unseen mail goes to ``new/``; seen mail to ``cur/`` with the ``S`` flag.
        """
        base = user.folder_path(folder)
        if not base.exists():
            self.make_folder(user, folder or "INBOX")
        unique = f"{time.time_ns()}.M{next(self._counter)}P{os.getpid()}.bmtest"
        name = f"{unique},S={len(raw)}"
        if seen:
            target = base / "cur" / f"{name}:2,S"
        else:
            target = base / "new" / name
        tmp = base / "tmp" / unique
        tmp.write_bytes(raw)
        os.chown(tmp, self.mail_uid, self.mail_gid)
        tmp.rename(target)  # atomic, as the maildir spec asks
        return target

    def inject_many(self, user: MailUser, messages: list[bytes], **kwargs: object) -> None:
        """Inject several messages (see :meth:`inject`)."""
        for raw in messages:
            self.inject(user, raw, **kwargs)  # type: ignore[arg-type]

    def reset_uidvalidity(self, user: MailUser, folder: str | None = None) -> None:
        """Throw away Dovecot's UID list and indexes of a folder, as a restore would.

        The messages stay; Dovecot assigns a new UIDVALIDITY and new UIDs on next access.
        """
        base = user.folder_path(folder)
        for path in base.iterdir():
            if path.name.startswith(("dovecot-uidlist", "dovecot.index")):
                path.unlink()

    def message_files(self, user: MailUser, folder: str | None = None) -> list[Path]:
        """Message files currently in a folder (new/ and cur/)."""
        base = user.folder_path(folder)
        return sorted(
            p for sub in ("new", "cur") if (base / sub).exists() for p in (base / sub).iterdir()
        )

    def kick(self, user: MailUser) -> None:
        """Disconnect every session of ``user`` (server side), like an admin would."""
        subprocess.run(
            ["doveadm", "-c", str(self.config_path), "kick", user.name],
            check=False,
            capture_output=True,
        )


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def dovecot_root(prefix: str = "bouncemgr-dovecot-") -> Iterator[Path]:
    """A private directory for a test Dovecot, removed afterwards.

    Not under pytest's ``tmp_path``: pytest makes ``/tmp/pytest-of-<user>`` mode 0700
    again whenever another pytest session starts, which locks the mail user out of a
    running server's maildirs.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_dovecot(root: Path, **kwargs: object) -> Iterator[DovecotServer]:
    """Context manager form of :meth:`DovecotServer.start`."""
    server = DovecotServer.start(root, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------- fixtures
# Importable pytest fixtures (tests/mailboxes/conftest.py and tests/conftest.py import
# them by name): one Dovecot per session, a fresh account per test.


@pytest.fixture(scope="session")
def oauth2_provider() -> Iterator[FakeOAuth2Provider]:
    """A fake OAuth2 token + introspection endpoint on loopback (session)."""
    provider = FakeOAuth2Provider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def dovecot(oauth2_provider: FakeOAuth2Provider) -> Iterator[DovecotServer]:
    """A real Dovecot (IMAP, POP3, STARTTLS, implicit TLS, XOAUTH2) for the session.

    Skips when Dovecot cannot run here; fails instead when CI=true.
    """
    reason = dovecot_available()
    if reason:
        unavailable(reason)
    with dovecot_root() as root:
        server = DovecotServer.start(
            root, tls=True, oauth2_introspection_url=oauth2_provider.introspection_url
        )
        yield server
        server.stop()


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A fresh account with an empty maildir (no cleanup needed between tests)."""
    return dovecot.add_user()
