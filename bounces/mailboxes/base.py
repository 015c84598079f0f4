"""The mailbox connector interface, its value types and its errors.

Pure Python on purpose (no Django): the pipeline, the admin views and the
``mailbox_check`` command all speak to mailboxes through these types only.

How the pipeline uses a connector (STYLE.md section 6: download, store, commit, then
act on the server)::

    with open_mailbox(settings) as box:
        state = box.open_folder(settings.folder, expected_uidvalidity=last_uidvalidity)
        refs = box.list_messages(unseen_only=True, exclude_keys=already_stored_keys)
        for msg in box.fetch(refs):
            store_raw_message(key=msg.ref.key, raw=msg.raw)   # commit per message/batch
        box.apply({ref: Disposition.delete() for ref in committed_refs})

Guarantees:

* ``list_messages`` and ``fetch`` never change anything on the server (IMAP uses
  ``BODY.PEEK[]``, so ``\\Seen`` stays as it was; POP3 only RETRs).
* Only :meth:`MailboxConnector.apply` changes the mailbox, and only for the refs given.
  So when a run dies anywhere before ``apply`` nothing is lost: the next run sees the
  same messages again (deduplicate on :attr:`MessageRef.key` and on the raw sha256).
* ``MessageRef.key`` is stable across sessions as long as the mailbox is not reset:
  IMAP ``"<uidvalidity>:<uid>"``, POP3 the UIDL, maildir the file key, mbox a digest
  of the message. When an IMAP folder's UIDVALIDITY changes, every key changes with it:
  :class:`FolderState` says so, and :meth:`apply` refuses refs from the old validity
  (flagging by UID would hit the wrong messages).

Errors are all :class:`MailboxError` subclasses with an operator-facing ``message``, a
``hint`` and a ``transient`` flag: transient errors (timeouts, refused or dropped
connections, temporary DNS failure) are worth retrying with backoff; permanent ones
(bad password, unknown folder, certificate mismatch) need a human.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, Literal, Self

Protocol_ = Literal["imap", "pop3", "mbox", "maildir"]
Security = Literal["ssl", "starttls", "none"]

PROTOCOLS: tuple[str, ...] = ("imap", "pop3", "mbox", "maildir")
SECURITIES: tuple[str, ...] = ("ssl", "starttls", "none")

# Well-known ports per (protocol, security).
DEFAULT_PORTS: dict[tuple[str, str], int] = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
}

# The IMAP name of the inbox; POP3, mbox and maildir only have this one "folder" (plus
# maildir++ subfolders).
INBOX = "INBOX"


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class OAuth2Token:
    """An access token and when it stops being valid (``time.time()`` seconds)."""

    access_token: str
    expires_at: float | None = None
    # Some providers (Microsoft) rotate refresh tokens: persist this one when set.
    refresh_token: str | None = None


@dataclass(frozen=True)
class OAuth2Settings:
    """How to obtain an XOAUTH2 access token for the mailbox user.

    ``refresh_token`` set: the refresh-token grant (Gmail, delegated Office 365).
    No ``refresh_token``: the client-credentials grant (Office 365 app-only access with
    ``scope="https://outlook.office365.com/.default"``).
    ``access_token`` is used as is until it is rejected or expires (``expires_at``).
    ``on_token`` is called with every freshly obtained token so the caller can persist
    it (and a rotated refresh token).
    """

    token_url: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    access_token: str = field(default="", repr=False)
    expires_at: float | None = None
    scope: str = ""
    on_token: Callable[[OAuth2Token], None] | None = field(
        default=None, compare=False, repr=False
    )


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to reach one mailbox. Secrets are kept out of ``repr``.

    ``port=None`` means the protocol's default for ``security`` (993/143/995/110).
    ``security="none"`` sends the password in clear: only when the operator chose it.
    ``verify_certificate=False`` accepts any certificate (self-signed servers; like
    phpList's ``novalidate-cert``); ``ca_file`` (a path) or ``ca_pem`` (PEM text, e.g.
    stored with the mailbox) trusts a private CA or a self-signed certificate instead,
    which is the better option for a self-hosted server.
    ``path`` is the mbox file or maildir directory for the local protocols. It must lie
    inside one of ``local_roots`` (relative paths are taken inside the first one): with
    no roots, no local path is allowed (see :mod:`bounces.mailboxes.local`).
    ``marker_secret`` keys the mark our mbox connector writes on messages it marked read
    (``X-Bouncemgr-Seen``); the mbox ``Status`` header is never trusted, a sender can
    write it. ``block_private_networks`` refuses hosts (and OAuth2 token URLs) that
    resolve to loopback, private, link-local or other non-public addresses, except those
    in ``allowed_networks`` (CIDR networks, addresses or exact host names).
    """

    protocol: Protocol_ = "imap"
    host: str = ""
    port: int | None = None
    security: Security = "ssl"
    verify_certificate: bool = True
    ca_file: str | None = None
    ca_pem: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    folder: str = INBOX
    path: str = ""
    timeout: float = 30.0
    oauth2: OAuth2Settings | None = None
    local_roots: tuple[str, ...] = ()
    marker_secret: str = field(default="", repr=False)
    block_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()
    # The caller's stored secrets belong to another endpoint (see endpoint_fingerprint):
    # the connector connects (so network errors still show) but refuses to log in.
    secrets_withheld: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise MailboxConfigError(
                f"Unknown mailbox protocol {self.protocol!r}.",
                hint="Use one of: " + ", ".join(PROTOCOLS) + ".",
            )
        if self.protocol in ("imap", "pop3"):
            if self.security not in SECURITIES:
                raise MailboxConfigError(
                    f"Unknown connection security {self.security!r}.",
                    hint="Use one of: ssl (implicit TLS), starttls, none.",
                )
            if not self.host:
                raise MailboxConfigError("No server host name is configured.")
            if self.port is not None and not 0 < self.port < 65536:
                raise MailboxConfigError(f"Port {self.port} is not a valid TCP port.")
        elif not self.path:
            raise MailboxConfigError(
                f"No {self.protocol} path is configured.",
                hint="Give the full path of the mbox file or maildir directory.",
            )
        if self.timeout <= 0:
            raise MailboxConfigError("The timeout must be a positive number of seconds.")

    @property
    def effective_port(self) -> int | None:
        """The TCP port to connect to (explicit, else the protocol default)."""
        if self.port is not None:
            return self.port
        return DEFAULT_PORTS.get((self.protocol, self.security))

    def endpoint_fingerprint(self) -> str:
        """See :func:`endpoint_fingerprint`: where this configuration sends its secrets."""
        oauth2 = self.oauth2
        return endpoint_fingerprint(
            protocol=self.protocol, host=self.host, port=self.port, security=self.security,
            verify_certificate=self.verify_certificate, ca_pem=self.ca_pem or "",
            ca_file=self.ca_file or "", username=self.username,
            token_url=oauth2.token_url if oauth2 else "",
            client_id=oauth2.client_id if oauth2 else "",
        )

    def describe(self) -> str:
        """Where this connects, for logs and reports (never includes secrets)."""
        if self.protocol in ("mbox", "maildir"):
            return f"{self.protocol}:{self.path}"
        scheme = {"ssl": f"{self.protocol}s", "starttls": f"{self.protocol}+starttls"}.get(
            self.security, self.protocol
        )
        return f"{scheme}://{self.username}@{self.host}:{self.effective_port}"


def endpoint_fingerprint(
    *,
    protocol: str,
    host: str,
    port: int | None,
    security: str,
    verify_certificate: bool,
    ca_pem: str,
    username: str,
    token_url: str,
    client_id: str,
    ca_file: str = "",
) -> str:
    """A digest of everything that decides where stored secrets are sent.

    Protocol, host, port (the default port spelled out or not), TLS mode, certificate
    trust, user name, and the OAuth2 token URL and client id. A secret is bound to the
    fingerprint it was entered with: repointing any of these makes the caller withhold
    the secret and ask for it again instead of sending it to the new place (issue 12,
    item 4). Secrets, the folder and the timeout are not part of it.
    """
    parts = {
        "protocol": protocol,
        "host": host.strip().lower().rstrip("."),
        "port": port if port is not None else DEFAULT_PORTS.get((protocol, security)),
        "security": security,
        "verify_certificate": bool(verify_certificate),
        "ca_file": ca_file,
        "ca_pem": ca_pem.strip(),
        "username": username,
        "token_url": token_url.strip(),
        "client_id": client_id,
    }
    encoded = json.dumps(parts, sort_keys=True).encode()
    return "v1:" + hashlib.sha256(encoded).hexdigest()


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class FolderInfo:
    """A folder as listed by the server, with counts when the server gave them."""

    name: str
    delimiter: str | None = None
    flags: tuple[str, ...] = ()
    messages: int | None = None
    unseen: int | None = None

    @property
    def selectable(self) -> bool:
        """False for pure container folders (``\\Noselect``)."""
        lowered = {f.lower() for f in self.flags}
        return not ({"\\noselect", "\\nonexistent"} & lowered)


@dataclass(frozen=True)
class FolderState:
    """The selected folder. ``uidvalidity`` is None where the protocol has none."""

    name: str
    uidvalidity: int | None
    messages: int
    unseen: int | None = None
    # Set when the caller passed ``expected_uidvalidity`` and the server's differs:
    # the folder was recreated or restored, every old key is void.
    uidvalidity_changed: bool = False


@dataclass(frozen=True)
class MessageRef:
    """One message in the selected folder.

    ``key`` is the stable identity the pipeline stores for deduplication. ``uid`` is the
    IMAP UID (or the position in an mbox/POP3 listing, only meaningful in the session
    that produced it); ``uidvalidity`` is set for IMAP.
    """

    key: str
    folder: str = INBOX
    uid: int | None = None
    uidvalidity: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class MessageSummary:
    """A message as "Browse folders" lists it before anything is processed: headers only,
    decoded and cut to a few hundred characters (they come from strangers)."""

    uid: int | None
    subject: str
    sender: str
    date: str
    size: int | None
    seen: bool | None = None


@dataclass(frozen=True)
class FetchedMessage:
    """The raw RFC 5322 bytes of a message, exactly as the server holds them."""

    ref: MessageRef
    raw: bytes


class DispositionAction(enum.StrEnum):
    """What to do with a message once its result is committed."""

    DELETE = "delete"
    MARK_READ = "mark_read"
    MOVE = "move"
    LEAVE = "leave"


@dataclass(frozen=True)
class Disposition:
    """An action plus, for ``move``, the target folder."""

    action: DispositionAction
    target_folder: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", DispositionAction(self.action))
        if self.action is DispositionAction.MOVE and not self.target_folder:
            raise MailboxConfigError("Moving a message needs a target folder.")

    @classmethod
    def delete(cls) -> Disposition:
        return cls(DispositionAction.DELETE)

    @classmethod
    def mark_read(cls) -> Disposition:
        return cls(DispositionAction.MARK_READ)

    @classmethod
    def move(cls, folder: str) -> Disposition:
        return cls(DispositionAction.MOVE, folder)

    @classmethod
    def leave(cls) -> Disposition:
        return cls(DispositionAction.LEAVE)


@dataclass(frozen=True)
class ConnectionReport:
    """Outcome of :func:`bounces.mailboxes.test_connection` for the admin and the CLI."""

    ok: bool
    target: str
    greeting: str = ""
    capabilities: tuple[str, ...] = ()
    folders: tuple[FolderInfo, ...] = ()
    folder: FolderState | None = None
    error_category: str | None = None
    error_message: str | None = None
    hint: str | None = None
    transient: bool | None = None
    elapsed: float = 0.0

    def as_text(self) -> str:
        """A human-readable multi-line report."""
        lines = [f"Mailbox: {self.target}"]
        if self.greeting:
            lines.append(f"Server greeting: {self.greeting}")
        if self.capabilities:
            lines.append("Capabilities: " + " ".join(self.capabilities))
        if self.folder is not None:
            unseen = "" if self.folder.unseen is None else f", {self.folder.unseen} unseen"
            validity = (
                "" if self.folder.uidvalidity is None
                else f", UIDVALIDITY {self.folder.uidvalidity}"
            )
            lines.append(
                f"Folder {self.folder.name!r}: {self.folder.messages} messages{unseen}{validity}"
            )
        if self.folders:
            lines.append("Folders:")
            for info in self.folders:
                counts = ""
                if info.messages is not None:
                    counts = f"  {info.messages} messages"
                    if info.unseen is not None:
                        counts += f", {info.unseen} unseen"
                lines.append(f"  {info.name}{counts}")
        if self.ok:
            lines.append(f"OK ({self.elapsed:.2f}s)")
        else:
            kind = "temporary" if self.transient else "permanent"
            lines.append(f"FAILED [{self.error_category}, {kind}]: {self.error_message}")
            if self.hint:
                lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- errors
class ErrorCategory(enum.StrEnum):
    """Stable machine names for failures (stored by the pipeline, shown in the admin)."""

    CONFIG = "config"
    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"
    TLS = "tls"
    CERTIFICATE = "certificate"
    AUTH = "auth"
    OAUTH2 = "oauth2"
    FOLDER = "folder"
    UIDVALIDITY = "uidvalidity"
    UNSUPPORTED = "unsupported"
    PROTOCOL = "protocol"
    LOCAL = "local"
    BLOCKED = "blocked"


class MailboxError(Exception):
    """Base of all connector errors. ``str(err)`` is the operator-facing message."""

    category: ClassVar[ErrorCategory] = ErrorCategory.PROTOCOL
    default_transient: ClassVar[bool] = False

    def __init__(self, message: str, *, hint: str = "", transient: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.transient = self.default_transient if transient is None else transient


class MailboxConfigError(MailboxError):
    """The settings themselves are wrong or incomplete."""

    category = ErrorCategory.CONFIG


class HostNotFoundError(MailboxError):
    """DNS could not resolve the host (transient when the resolver itself failed)."""

    category = ErrorCategory.DNS


class ConnectionRefusedMailboxError(MailboxError):
    """Nothing listens on that host/port (or a firewall rejects us)."""

    category = ErrorCategory.REFUSED
    default_transient = True


class MailboxTimeoutError(MailboxError):
    """The server did not answer in time."""

    category = ErrorCategory.TIMEOUT
    default_transient = True


class ConnectionLostError(MailboxError):
    """The connection broke mid-session; nothing was changed on the server."""

    category = ErrorCategory.CONNECTION_LOST
    default_transient = True


class TLSFailureError(MailboxError):
    """TLS could not be set up (wrong port for the security mode, no STARTTLS, ...)."""

    category = ErrorCategory.TLS


class CertificateError(TLSFailureError):
    """The server's certificate could not be verified."""

    category = ErrorCategory.CERTIFICATE


class AuthenticationError(MailboxError):
    """The server rejected the credentials."""

    category = ErrorCategory.AUTH


class SecretsWithheldError(AuthenticationError):
    """The stored secrets were entered for another endpoint and are not sent to this one."""

    def __init__(self) -> None:
        super().__init__(
            "The stored password or OAuth2 secrets were entered for another server, port, "
            "user name or token URL, so they are not sent to this one.",
            hint="Open the mailbox settings and enter the password again (for OAuth2: the "
            "client secret and refresh token).",
        )


class OAuth2Error(AuthenticationError):
    """The OAuth2 token endpoint refused to give us an access token."""

    category = ErrorCategory.OAUTH2


class FolderNotFoundError(MailboxError):
    """The configured (or move target) folder does not exist."""

    category = ErrorCategory.FOLDER


class UidValidityChangedError(MailboxError):
    """The folder was reset while we worked on it; old UIDs must not be used."""

    category = ErrorCategory.UIDVALIDITY


class UnsupportedOperationError(MailboxError):
    """The protocol cannot do what was asked (e.g. move on POP3)."""

    category = ErrorCategory.UNSUPPORTED


class MailboxProtocolError(MailboxError):
    """The server answered something we did not expect."""

    category = ErrorCategory.PROTOCOL


class LocalMailboxError(MailboxError):
    """A local mbox/maildir could not be read or written (path, permissions, lock)."""

    category = ErrorCategory.LOCAL


class BlockedAddressError(MailboxError):
    """The host resolves to an address this installation does not connect to."""

    category = ErrorCategory.BLOCKED


# --------------------------------------------------------------------------- interface
class MailboxConnector(abc.ABC):
    """One session with one mailbox. Use as a context manager (see ``open_mailbox``).

    Not thread-safe: one connector per worker.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def connect(self) -> None:
        """Connect and log in. Raises a :class:`MailboxError` subclass on failure."""

    @property
    def greeting(self) -> str:
        """What the server said on connect (empty for local mailboxes)."""
        return ""

    @abc.abstractmethod
    def capabilities(self) -> tuple[str, ...]:
        """Server capabilities (IMAP CAPABILITY, POP3 CAPA), upper-case."""

    @abc.abstractmethod
    def list_folders(self) -> list[FolderInfo]:
        """All folders with message/unseen counts where cheaply available."""

    @abc.abstractmethod
    def open_folder(
        self, name: str | None = None, *, expected_uidvalidity: int | None = None
    ) -> FolderState:
        """Select ``name`` (default: the settings' folder) for the calls below."""

    @abc.abstractmethod
    def list_messages(
        self,
        *,
        unseen_only: bool = True,
        limit: int | None = None,
        exclude_keys: Collection[str] = (),
    ) -> list[MessageRef]:
        """Messages to process, oldest first, without changing anything.

        ``unseen_only`` is honoured where the store has a seen flag (IMAP, maildir,
        mbox ``Status: R``); POP3 always lists everything. ``exclude_keys`` drops
        messages the caller already processed (its "not yet processed" memory).
        """

    def seen_keys(self) -> list[str]:
        """Keys of the open folder's messages that ``unseen_only`` leaves out.

        The caller compares them with what it processed itself, so a run can say that
        messages someone else marked read were skipped instead of skipping them
        silently (issue 12, item 11). Protocols without a seen flag return nothing.
        """
        every = {r.key for r in self.list_messages(unseen_only=False)}
        return sorted(every - {r.key for r in self.list_messages(unseen_only=True)})

    def newest_messages(self, folder: str, *, limit: int = 20) -> list[MessageSummary]:
        """The newest ``limit`` messages of ``folder`` (newest first): subject, sender,
        date and size from the headers only, changing nothing (no ``\\Seen``). Protocols
        that cannot read headers alone raise :class:`UnsupportedOperationError`."""
        raise UnsupportedOperationError(
            f"Listing messages is not available for {self.settings.protocol} mailboxes."
        )

    @abc.abstractmethod
    def fetch(
        self, refs: Collection[MessageRef], *, batch_size: int = 200
    ) -> Iterator[FetchedMessage]:
        """Yield the raw bytes of ``refs`` in batches, leaving flags untouched.

        A connection dropped mid-batch is retried once on a fresh connection; if that
        fails too, :class:`ConnectionLostError` (transient) is raised and nothing has
        been changed on the server. Messages that vanished meanwhile are skipped.
        """

    @abc.abstractmethod
    def apply(self, dispositions: Mapping[MessageRef, Disposition]) -> None:
        """Carry out the dispositions. Only call once the results are committed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Log out and release the connection or lock. Never raises."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def group_dispositions(
    dispositions: Mapping[MessageRef, Disposition],
) -> dict[tuple[DispositionAction, str | None], list[MessageRef]]:
    """Group refs by (action, target folder), keeping their order."""
    groups: dict[tuple[DispositionAction, str | None], list[MessageRef]] = {}
    for ref, disposition in dispositions.items():
        groups.setdefault((disposition.action, disposition.target_folder), []).append(ref)
    return groups
