"""IMAP connector on top of imapclient.

* Security: implicit TLS (993), STARTTLS (143, refused when the server does not offer
  it: we never fall back to clear text silently) or none when the operator chose it.
* Login: LOGIN with a password, or AUTHENTICATE XOAUTH2 with an access token that is
  refreshed once when the server rejects it.
* Everything is by UID; keys are ``"<uidvalidity>:<uid>"``.
* Reading uses ``BODY.PEEK[]`` so ``\\Seen`` never changes until a disposition says so.
* Delete flags ``\\Deleted`` and expunges only our UIDs (``UID EXPUNGE`` with UIDPLUS;
  without it, other ``\\Deleted`` messages are unflagged around a plain EXPUNGE so we
  never expunge something another client only marked).
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError
from imapclient.util import to_unicode

from . import _net
from .base import (
    INBOX,
    AuthenticationError,
    ConnectionLostError,
    ConnectionSettings,
    Disposition,
    DispositionAction,
    FetchedMessage,
    FolderInfo,
    FolderNotFoundError,
    FolderState,
    MailboxConnector,
    MailboxError,
    MailboxProtocolError,
    MessageRef,
    MessageSummary,
    SecretsWithheldError,
    TLSFailureError,
    UidValidityChangedError,
    group_dispositions,
)
from .oauth2 import TokenSource, xoauth2_sasl_string

log = logging.getLogger(__name__)

T = TypeVar("T")

# Never put more than this many bytes of messages in one FETCH: a batch of 200 large
# messages would otherwise sit in memory at once.
MAX_BATCH_BYTES = 50 * 1024 * 1024
# UIDs per command when listing sizes / storing flags (keeps command lines short).
UID_CHUNK = 500


def _text(value: Any) -> str:
    return to_unicode(value) if isinstance(value, bytes) else str(value)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class IMAPConnector(MailboxConnector):
    """A session with one IMAP account. See :class:`MailboxConnector` for the contract."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._client: IMAPClient | None = None
        self._greeting = ""
        self._capabilities: tuple[str, ...] = ()
        self._folder: FolderState | None = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Open the connection, negotiate TLS and log in (dropping any previous one)."""
        self._drop()
        try:
            client = self._open_socket()
        except MailboxError:
            raise
        except Exception as exc:
            raise _net.translate(exc, self.settings) from exc
        try:
            self._login(client)
            self._capabilities = tuple(_text(c).upper() for c in client.capabilities())
        except MailboxError:
            _quietly(client.shutdown)
            raise
        except Exception as exc:
            _quietly(client.shutdown)
            raise _net.translate(exc, self.settings) from exc
        self._client = client

    def _open_socket(self) -> IMAPClient:
        s = self.settings
        context = _net.make_ssl_context(s) if s.security != "none" else None
        _net.check_address(s.host, s.effective_port, s)
        try:
            client = IMAPClient(
                s.host,
                port=s.effective_port,
                use_uid=True,
                ssl=s.security == "ssl",
                ssl_context=context,
                timeout=s.timeout,
            )
        except imaplib.IMAP4.error as exc:
            # No IMAP greeting: another service (SSH, SMTP, HTTP, ...) or a closed stream.
            if "EOF" in str(exc):
                raise _net.translate(exc, s) from exc
            raise _net.not_a_mail_server(s, exc) from exc
        try:
            _net.check_peer(client.socket(), s)
        except MailboxError:
            _quietly(client.shutdown)
            raise
        self._greeting = _text(client.welcome or b"")
        if s.security == "starttls":
            if not client.has_capability("STARTTLS"):
                _quietly(client.shutdown)
                raise TLSFailureError(
                    f"{s.host}:{s.effective_port} does not offer STARTTLS.",
                    hint="Use SSL/TLS (usually port 993), or, only on a trusted network, "
                    "no encryption.",
                )
            try:
                client.starttls(context)
            except Exception:
                _quietly(client.shutdown)
                raise
        return client

    def _login(self, client: IMAPClient) -> None:
        s = self.settings
        if s.secrets_withheld:
            raise SecretsWithheldError()
        if s.oauth2 is not None:
            source = TokenSource(s.oauth2, timeout=s.timeout,
                                 check_address=lambda host, port: _net.check_address(host, port, s))
            try:
                self._xoauth2(client, source.token())
            except AuthenticationError:
                if not source.can_refresh:
                    raise
                # The cached/configured token may have been revoked early: refresh once.
                self._xoauth2(client, source.token(force_refresh=True))
            return
        try:
            client.login(s.username, s.password)
        except LoginError as exc:
            log.info("IMAP login for %r refused: %r", s.username, _server_text(exc))
            raise AuthenticationError(
                f"The server rejected the login for {s.username!r}.",
                hint="Check the user name and password. Gmail and Office 365 need an app "
                "password or OAuth2 (XOAUTH2).",
            ) from exc

    def _xoauth2(self, client: IMAPClient, token: str) -> None:
        username = self.settings.username
        sent: list[bool] = []

        def respond(challenge: bytes) -> bytes:
            # First round: the initial response. If the server answers with an error
            # challenge (JSON status), RFC 7628 wants an empty response to finish.
            if sent:
                return b""
            sent.append(True)
            return xoauth2_sasl_string(username, token)

        try:
            client.sasl_login("XOAUTH2", respond)
        except LoginError as exc:
            log.info("IMAP XOAUTH2 login for %r refused: %r", username, _server_text(exc))
            raise AuthenticationError(
                f"The server rejected the XOAUTH2 login for {username!r}.",
                hint="Check that the mailbox user matches the account the OAuth2 token "
                "was issued for and that IMAP access is allowed for it.",
            ) from exc

    @property
    def client(self) -> IMAPClient:
        """The live connection; reconnects (and reselects the folder) when needed."""
        if self._client is None:
            if self._folder is not None:
                self._reconnect()
            else:
                self.connect()
        assert self._client is not None
        return self._client

    @property
    def greeting(self) -> str:
        return self._greeting

    def capabilities(self) -> tuple[str, ...]:
        _ = self.client
        return self._capabilities

    def _has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _quietly(client.logout)
            _quietly(client.shutdown)

    def _drop(self) -> None:
        """Throw away a broken connection without talking to the server."""
        client, self._client = self._client, None
        if client is not None:
            _quietly(client.shutdown)

    def _reconnect(self) -> None:
        """Fresh connection + reselect, checking the folder was not reset meanwhile."""
        self._drop()
        self.connect()
        if self._folder is not None:
            previous = self._folder
            state = self.open_folder(previous.name)
            if state.uidvalidity != previous.uidvalidity:
                raise UidValidityChangedError(
                    f"Folder {previous.name!r} was reset while being read (UIDVALIDITY "
                    f"{previous.uidvalidity} -> {state.uidvalidity}); stopping this run.",
                    hint="Nothing was changed on the server; the next run starts afresh.",
                )

    def _call(self, operation: Callable[[], T], *, retry: bool = True) -> T:
        """Run ``operation``; on a broken connection reconnect once and run it again."""
        try:
            return operation()
        except MailboxError:
            raise
        except Exception as exc:
            if not (retry and _net.is_connection_problem(exc)):
                raise self._translate(exc) from exc
            log.warning("IMAP connection to %s broke (%s); reconnecting once",
                        self.settings.host, exc)
        try:
            self._reconnect()
            return operation()
        except MailboxError:
            raise
        except Exception as exc:
            error = self._translate(exc)
            if _net.is_connection_problem(exc):
                error = ConnectionLostError(
                    f"{error.message} (after one reconnect; nothing was changed on the "
                    "server, the next run will pick the messages up again)"
                )
            raise error from exc

    def _translate(self, exc: BaseException) -> MailboxError:
        if isinstance(exc, IMAPClientError) and not isinstance(
            exc, ssl.SSLError | imaplib.IMAP4.abort
        ):
            log.info("IMAP server %s refused a command: %r", self.settings.host, _server_text(exc))
            return MailboxProtocolError("The IMAP server refused a command.")
        return _net.translate(exc, self.settings)

    # ------------------------------------------------------------------ folders
    def list_folders(self) -> list[FolderInfo]:
        """All folders with STATUS counts (skipped for non-selectable ones)."""
        raw = self._call(lambda: self.client.list_folders())
        folders: list[FolderInfo] = []
        for flags, delimiter, name in raw:
            info = FolderInfo(
                name=_text(name),
                delimiter=_text(delimiter) if delimiter is not None else None,
                flags=tuple(_text(f) for f in flags),
            )
            if info.selectable:
                status = self._status(info.name)
                if status is not None:
                    info = FolderInfo(
                        name=info.name,
                        delimiter=info.delimiter,
                        flags=info.flags,
                        messages=int(status.get(b"MESSAGES", 0)),
                        unseen=int(status.get(b"UNSEEN", 0)),
                    )
            folders.append(info)
        folders.sort(key=lambda f: (f.name.upper() != INBOX, f.name.lower()))
        return folders

    def _status(self, name: str) -> dict[bytes, Any] | None:
        try:
            return self._call(
                lambda: self.client.folder_status(
                    name, ("MESSAGES", "UNSEEN", "UIDVALIDITY", "UIDNEXT")
                )
            )
        except MailboxProtocolError:
            return None

    def open_folder(
        self, name: str | None = None, *, expected_uidvalidity: int | None = None
    ) -> FolderState:
        """SELECT the folder read-write; report UIDVALIDITY and counts."""
        name = name or self.settings.folder or INBOX
        # STATUS before SELECT: RFC 3501 6.3.10 advises against STATUS on the selected
        # folder, and SELECT's own UNSEEN is a sequence number, not a count.
        status = self._status(name)
        try:
            response = self._call(lambda: self.client.select_folder(name))
        except MailboxProtocolError as exc:
            raise FolderNotFoundError(
                f"The folder {name!r} does not exist on the server.",
                hint="Use “Browse folders” to pick an existing folder.",
            ) from exc
        uidvalidity = int(response.get(b"UIDVALIDITY", 0)) or None
        messages = int(response.get(b"EXISTS", 0))
        unseen_count = None if status is None else int(status.get(b"UNSEEN", 0))
        state = FolderState(
            name=name,
            uidvalidity=uidvalidity,
            messages=messages,
            unseen=unseen_count,
            uidvalidity_changed=(
                expected_uidvalidity is not None and uidvalidity != expected_uidvalidity
            ),
        )
        if state.uidvalidity_changed:
            log.warning("UIDVALIDITY of %r changed %s -> %s: old keys are void",
                        name, expected_uidvalidity, uidvalidity)
        self._folder = state
        return state

    def _selected(self) -> FolderState:
        if self._folder is None:
            return self.open_folder()
        return self._folder

    # ------------------------------------------------------------------ reading
    def list_messages(
        self,
        *,
        unseen_only: bool = True,
        limit: int | None = None,
        exclude_keys: Collection[str] = (),
    ) -> list[MessageRef]:
        """UIDs (oldest first) matching UNSEEN or ALL, with their sizes."""
        folder = self._selected()
        criteria = ["UNSEEN"] if unseen_only else ["ALL"]
        uids = sorted(int(u) for u in self._call(lambda: self.client.search(criteria)))
        excluded = set(exclude_keys)
        if excluded:
            uids = [u for u in uids if f"{folder.uidvalidity}:{u}" not in excluded]
        if limit is not None:
            uids = uids[:limit]
        sizes: dict[int, int] = {}
        for chunk in _chunks(uids, UID_CHUNK):
            fast = self._call(lambda chunk=chunk: _fetch_sizes_fast(self.client, chunk))
            if fast is not None:
                sizes.update(fast)
                continue
            response = self._call(lambda chunk=chunk: self.client.fetch(chunk, ["RFC822.SIZE"]))
            for uid, data in response.items():
                sizes[int(uid)] = int(data.get(b"RFC822.SIZE", 0))
        return [
            MessageRef(
                key=f"{folder.uidvalidity}:{uid}",
                folder=folder.name,
                uid=uid,
                uidvalidity=folder.uidvalidity,
                size=sizes.get(uid),
            )
            for uid in uids
            if uid in sizes  # vanished between SEARCH and FETCH
        ]

    def seen_keys(self) -> list[str]:
        """``UID SEARCH SEEN``: cheap, no sizes fetched."""
        folder = self._selected()
        uids = sorted(int(u) for u in self._call(lambda: self.client.search(["SEEN"])))
        return [f"{folder.uidvalidity}:{uid}" for uid in uids]

    def fetch(
        self, refs: Collection[MessageRef], *, batch_size: int = 200
    ) -> Iterator[FetchedMessage]:
        """``UID FETCH BODY.PEEK[]`` in batches of ``batch_size`` / ``MAX_BATCH_BYTES``."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        ordered = list(refs)
        self._check_validity(ordered)
        for batch in _batches(ordered, batch_size, MAX_BATCH_BYTES):
            uids = [ref.uid for ref in batch]
            bodies = self._call(lambda uids=uids: _fetch_bodies_fast(self.client, uids))
            if bodies is None:
                response = self._call(lambda uids=uids: self.client.fetch(uids, ["BODY.PEEK[]"]))
                bodies = {uid: data.get(b"BODY[]") for uid, data in response.items()}
            for ref in batch:
                body = bodies.get(ref.uid)
                if body is None:
                    log.info("message %s vanished before it was fetched; skipped", ref.key)
                    continue
                yield FetchedMessage(ref=ref, raw=bytes(body))

    def _check_validity(self, refs: Sequence[MessageRef]) -> None:
        folder = self._selected()
        for ref in refs:
            if ref.folder != folder.name:
                raise MailboxProtocolError(
                    f"Message {ref.key} belongs to folder {ref.folder!r}, "
                    f"but {folder.name!r} is open."
                )
            if ref.uidvalidity != folder.uidvalidity:
                raise UidValidityChangedError(
                    f"Message {ref.key} is from UIDVALIDITY {ref.uidvalidity}, but folder "
                    f"{folder.name!r} now has {folder.uidvalidity}; its UID may point at "
                    "another message, so it is not touched.",
                    hint="List the messages again.",
                )

    # ------------------------------------------------------------------ dispositions
    def apply(self, dispositions: Mapping[MessageRef, Disposition]) -> None:
        """Carry out dispositions, grouped per action, only for the given UIDs."""
        refs = list(dispositions)
        if not refs:
            return
        self._check_validity(refs)
        for (action, target), group in group_dispositions(dispositions).items():
            uids = [ref.uid for ref in group if ref.uid is not None]
            if action is DispositionAction.LEAVE:
                continue
            for chunk in _chunks(uids, UID_CHUNK):
                if action is DispositionAction.MARK_READ:
                    self._call(lambda c=chunk: self.client.add_flags(c, [b"\\Seen"], silent=True))
                elif action is DispositionAction.DELETE:
                    self._delete(list(chunk))
                elif action is DispositionAction.MOVE:
                    assert target is not None
                    self._move(list(chunk), target)

    def _delete(self, uids: list[int]) -> None:
        self._call(lambda: self.client.add_flags(uids, [b"\\Deleted"], silent=True))
        if self._has("UIDPLUS"):
            self._call(lambda: self.client.uid_expunge(uids))
            return
        # No UID EXPUNGE: a plain EXPUNGE would also remove messages another client
        # flagged \Deleted without expunging yet. Unflag those around our EXPUNGE.
        ours = set(uids)
        others = [
            int(u) for u in self._call(lambda: self.client.search(["DELETED"]))
            if int(u) not in ours
        ]
        if others:
            self._call(lambda: self.client.remove_flags(others, [b"\\Deleted"], silent=True))
        try:
            self._call(lambda: self.client.expunge())
        finally:
            if others:
                self._call(lambda: self.client.add_flags(others, [b"\\Deleted"], silent=True))

    def _move(self, uids: list[int], target: str) -> None:
        source = self._selected().name
        if target == source:
            return
        try:
            moved = self._move_or_copy(uids, target)
        except (MailboxProtocolError, CapabilityError):
            # The usual cause is a target that does not exist yet (the server answers NO
            # [TRYCREATE]): a new mailbox moves to "Processed" by default, so create it once.
            try:
                self.create_folder(target)
                moved = self._move_or_copy(uids, target)
            except (MailboxProtocolError, CapabilityError) as exc:
                raise FolderNotFoundError(
                    f"Cannot move messages to folder {target!r}.",
                    hint="Create the folder on the server or pick another one.",
                ) from exc
        if not moved:
            self._delete(uids)

    def _move_or_copy(self, uids: list[int], target: str) -> bool:
        """MOVE when the server can (True), else COPY (False: the caller deletes the originals)."""
        if self._has("MOVE"):
            self._call(lambda: self.client.move(uids, target))
            return True
        self._call(lambda: self.client.copy(uids, target))
        return False

    # ------------------------------------------------------------------ browsing
    def newest_messages(self, folder: str, *, limit: int = 20) -> list[MessageSummary]:
        """EXAMINE (read-only) the folder and ``UID FETCH`` the newest UIDs' Subject, From and
        Date with ``BODY.PEEK[HEADER.FIELDS ...]<0.4096>`` (never marks them seen; at most
        4 KB of headers per message), their size and flags."""
        try:
            self._call(lambda: self.client.select_folder(folder, readonly=True))
        except MailboxProtocolError as exc:
            raise FolderNotFoundError(f"The folder {folder!r} does not exist on the server.") from exc
        finally:
            self._folder = None  # the run's folder is selected afresh when needed
        uids = sorted(int(u) for u in self._call(lambda: self.client.search(["ALL"])))[-max(limit, 0):]
        if not uids or limit <= 0:
            return []
        section = "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM DATE)]<0.4096>"
        response = self._call(lambda: self.client.fetch(uids, [section, "RFC822.SIZE", "FLAGS"]))
        summaries = []
        for uid in reversed(uids):
            data = response.get(uid)
            if data is None:
                continue  # expunged meanwhile
            head = next((bytes(v) for k, v in data.items()
                         if isinstance(k, bytes) and k.startswith(b"BODY[HEADER")), b"")
            summaries.append(summarize_headers(
                head, uid=uid, size=int(data.get(b"RFC822.SIZE", 0)),
                seen=b"\\Seen" in tuple(data.get(b"FLAGS", ())),
            ))
        return summaries

    # ------------------------------------------------------------------ admin helpers
    def create_folder(self, name: str) -> None:
        """Create a folder (used by the admin to make a bounce folder)."""
        self._call(lambda: self.client.create_folder(name))


def summarize_headers(head: bytes, *, uid: int | None, size: int | None, seen: bool | None) -> MessageSummary:
    """Subject, From and Date of a header block, decoded (RFC 2047) and cut to 200 characters;
    a header that does not decode is shown as its raw text."""
    import email.header
    from email.parser import BytesHeaderParser

    try:
        headers = BytesHeaderParser().parsebytes(head[:8192])
    except Exception:  # noqa: BLE001 - hostile bytes lose the summary, not the page
        headers = {}

    def text(name: str) -> str:
        value = headers.get(name, "") if headers else ""
        try:
            value = str(email.header.make_header(email.header.decode_header(str(value))))
        except Exception:  # noqa: BLE001
            value = str(value)
        value = " ".join(value.split())
        return value if len(value) <= 200 else value[:199] + "…"

    return MessageSummary(uid=uid, subject=text("Subject"), sender=text("From"), date=text("Date"),
                          size=size, seen=seen)


def _batches(
    refs: Sequence[MessageRef], batch_size: int, max_bytes: int
) -> Iterator[list[MessageRef]]:
    batch: list[MessageRef] = []
    size = 0
    for ref in refs:
        ref_size = ref.size or 0
        if batch and (len(batch) >= batch_size or size + ref_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(ref)
        size += ref_size
    if batch:
        yield batch


def _server_text(exc: BaseException) -> str:
    """The server's words without Python's bytes repr and Dovecot's timing suffix."""
    text = str(exc)
    for prefix in ("b'", 'b"'):
        text = text.replace(prefix, "")
    text = re.sub(r"\s*\([0-9.]+ \+ [0-9.+ ]+secs\)", "", text)
    return text.strip("'\"[] ")


def _quietly(func: Callable[[], object]) -> None:
    try:
        func()
    except Exception:  # noqa: BLE001 - best effort cleanup of a connection
        log.debug("ignored error while closing", exc_info=True)


# The two FETCHes of every run (sizes of every message, then the bodies) read by imaplib
# directly: imapclient's general response parser (a Python tokenizer, a debug log call per
# line) was the largest CPU cost of a pipeline run (issue 11, speed). Any response of an
# unexpected shape returns None and the caller asks imapclient as before.
_UID = re.compile(rb"[( ]UID (\d+)[ )]")
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)[ )]")


def _uid_set(uids: Sequence[int]) -> str:
    return ",".join(str(int(u)) for u in uids)


def _fetch_sizes_fast(client: IMAPClient, uids: Sequence[int]) -> dict[int, int] | None:
    """``UID FETCH uids RFC822.SIZE`` -> {uid: size}, or None to let imapclient parse it."""
    if not uids:
        return {}
    typ, data = client._imap.uid("FETCH", _uid_set(uids), "(RFC822.SIZE)")
    if typ != "OK":
        return None
    sizes: dict[int, int] = {}
    for line in data:
        if line is None:
            continue
        if not isinstance(line, bytes):
            return None
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid is None or size is None:
            if b"RFC822.SIZE" in line:
                return None
            continue  # an unsolicited FETCH (another client changed flags)
        sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _fetch_bodies_fast(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes] | None:
    """``UID FETCH uids BODY.PEEK[]`` -> {uid: bytes}, or None to let imapclient parse it.

    imaplib returns each message as (b'N (UID u BODY[] {size}', literal) followed by b')';
    a message gone meanwhile is left out, as imapclient's answer would leave it.
    """
    if not uids:
        return {}
    typ, data = client._imap.uid("FETCH", _uid_set(uids), "(BODY.PEEK[])")
    if typ != "OK":
        return None
    bodies: dict[int, bytes] = {}
    for item in data:
        if isinstance(item, tuple):
            head, literal = item
            uid = _UID.search(head + b" ")
            if uid is None or not head.rstrip().endswith(b"}") or b"BODY[]" not in head:
                return None
            bodies[int(uid.group(1))] = bytes(literal)
        elif isinstance(item, bytes) and b"BODY[]" in item:
            return None  # BODY[] not as a literal (NIL, a quoted string): the general parser
    return bodies
