"""POP3 connector on top of poplib.

POP3 has one folder (the inbox), no seen flag and message numbers that are only valid
in one session, so:

* keys are the server's UIDL strings, the only stable identity POP3 offers;
* ``list_messages`` always lists everything (``unseen_only`` is ignored), the caller's
  ``exclude_keys`` is the "already processed" memory;
* ``delete`` is ``DELE`` + ``QUIT``: the server only removes messages at a clean QUIT,
  so a dropped connection rolls back every DELE of that session (nothing is lost, the
  messages are seen again next run); ``mark_read`` and ``leave`` do nothing on the
  server; ``move`` is not possible.
"""

from __future__ import annotations

import base64
import logging
import poplib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, TypeVar

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
    SecretsWithheldError,
    TLSFailureError,
    UnsupportedOperationError,
)
from .oauth2 import TokenSource, xoauth2_sasl_string

log = logging.getLogger(__name__)

T = TypeVar("T")

# poplib refuses lines over 2048 bytes; real bounces carry far longer ones (HTML or
# base64 without line breaks: a 1.5 MiB line stopped a mailbox for good, issue 12 item
# 10). IMAP and maildir store such a message as it is, so POP3 must too: a line is read
# in chunks of READ_CHUNK and may be as long as the largest message we would store.
READ_CHUNK = 1024 * 1024
MAX_LINE = 256 * 1024 * 1024


class _LongLines:
    """Mixin replacing poplib's line reader with one that accepts long lines."""

    file: Any

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(READ_CHUNK)
        if not line:
            raise poplib.error_proto("-ERR EOF")
        if not line.endswith(b"\n") and len(line) == READ_CHUNK:
            parts = [line]
            size = len(line)
            while True:
                chunk = self.file.readline(READ_CHUNK)
                if not chunk:
                    raise poplib.error_proto("-ERR EOF")
                parts.append(chunk)
                size += len(chunk)
                if size > MAX_LINE:
                    raise poplib.error_proto("line too long")
                if chunk.endswith(b"\n"):
                    break
            line = b"".join(parts)
        size = len(line)
        if line.endswith(b"\r\n"):
            return line[:-2], size
        if line.endswith((b"\n", b"\r")):
            return line[:-1], size
        return line, size


class _POP3(_LongLines, poplib.POP3):
    pass


class _POP3SSL(_LongLines, poplib.POP3_SSL):
    pass


class POP3Connector(MailboxConnector):
    """A session with one POP3 maildrop. See :class:`MailboxConnector`."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._conn: poplib.POP3 | None = None
        self._greeting = ""
        self._capabilities: tuple[str, ...] = ()
        # UIDL -> message number, valid for the current session only.
        self._numbers: dict[str, int] = {}

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Connect, negotiate TLS, log in and read the UIDL list (dropping any old one)."""
        self._drop()
        s = self.settings
        _net.check_address(s.host, s.effective_port, s)
        try:
            conn: poplib.POP3
            if s.security == "ssl":
                conn = _POP3SSL(
                    s.host,
                    s.effective_port or 995,
                    timeout=s.timeout,
                    context=_net.make_ssl_context(s),
                )
            else:
                conn = _POP3(s.host, s.effective_port or 110, timeout=s.timeout)
        except poplib.error_proto as exc:
            if not _net.is_pop3_server_reply(exc):
                raise _net.translate(exc, s) from exc
            # The greeting was not "+OK": another service (SSH, SMTP, ...), not POP3.
            raise _net.not_a_mail_server(s, exc) from exc
        except Exception as exc:
            raise _net.translate(exc, s) from exc
        try:
            _net.check_peer(conn.sock, s)
            self._greeting = conn.getwelcome().decode("utf-8", "replace")
            capabilities = self._capa(conn)
            if s.security == "starttls":
                if "STLS" not in capabilities:
                    raise TLSFailureError(
                        f"{s.host}:{s.effective_port} does not offer STLS (STARTTLS).",
                        hint="Use SSL/TLS (usually port 995), or, only on a trusted "
                        "network, no encryption.",
                    )
                conn.stls(_net.make_ssl_context(s))
                capabilities = self._capa(conn)
            self._login(conn)
            self._capabilities = tuple(sorted(set(capabilities) | set(self._capa(conn))))
            self._numbers = self._read_uidl(conn)
        except MailboxError:
            _close_socket(conn)
            raise
        except Exception as exc:
            _close_socket(conn)
            raise _net.translate(exc, s) from exc
        self._conn = conn

    @staticmethod
    def _capa(conn: poplib.POP3) -> tuple[str, ...]:
        try:
            return tuple(name.upper() for name in conn.capa())
        except poplib.error_proto:
            return ()  # CAPA is optional (RFC 2449)

    def _login(self, conn: poplib.POP3) -> None:
        s = self.settings
        if s.secrets_withheld:
            raise SecretsWithheldError()
        if s.oauth2 is not None:
            source = TokenSource(s.oauth2, timeout=s.timeout,
                                 check_address=lambda host, port: _net.check_address(host, port, s))
            try:
                self._xoauth2(conn, source.token())
            except AuthenticationError:
                if not source.can_refresh:
                    raise
                self._xoauth2(conn, source.token(force_refresh=True))
            return
        try:
            conn.user(s.username)
            conn.pass_(s.password)
        except poplib.error_proto as exc:
            if not _net.is_pop3_server_reply(exc):
                raise
            log.info("POP3 login for %r refused: %r", s.username, _reply_text(exc))
            raise AuthenticationError(
                f"The server rejected the login for {s.username!r}.",
                hint="Check the user name and password.",
            ) from exc

    def _xoauth2(self, conn: poplib.POP3, token: str) -> None:
        # RFC 5034 flow without an initial response ("AUTH XOAUTH2", "+", response):
        # the form every server accepts, Microsoft's documented one included.
        response = base64.b64encode(xoauth2_sasl_string(self.settings.username, token))
        try:
            conn._shortcmd("AUTH XOAUTH2")  # poplib takes the "+" continuation as success
            conn._putcmd(response.decode("ascii"))
            reply = conn._getresp()
            if not reply.startswith(b"+OK"):
                # An error challenge (base64 JSON status): answer empty, the server
                # then sends its final -ERR, which _getresp raises.
                conn._putcmd("")
                conn._getresp()
                raise poplib.error_proto(b"-ERR XOAUTH2 failed")
        except poplib.error_proto as exc:
            if not _net.is_pop3_server_reply(exc):
                raise
            log.info("POP3 XOAUTH2 login for %r refused: %r", self.settings.username,
                     _reply_text(exc))
            raise AuthenticationError(
                f"The server rejected the XOAUTH2 login for {self.settings.username!r}.",
            ) from exc

    @staticmethod
    def _read_uidl(conn: poplib.POP3) -> dict[str, int]:
        try:
            _, lines, _ = conn.uidl()
        except poplib.error_proto as exc:
            if not _net.is_pop3_server_reply(exc):
                raise
            raise MailboxProtocolError(
                "The POP3 server does not support UIDL, so messages cannot be tracked "
                "safely between runs.",
                hint="Use IMAP for this mailbox.",
            ) from exc
        numbers: dict[str, int] = {}
        for line in lines:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            numbers[uidl.strip()] = int(number)
        return numbers

    @property
    def conn(self) -> poplib.POP3:
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        return self._conn

    @property
    def greeting(self) -> str:
        return self._greeting

    def capabilities(self) -> tuple[str, ...]:
        _ = self.conn
        return self._capabilities

    def close(self) -> None:
        """QUIT (commits nothing: DELEs are only ever sent by :meth:`apply`)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except Exception:  # noqa: BLE001 - best effort
            _close_socket(conn)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_socket(conn)

    def _call(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; on a broken connection reconnect once and retry."""
        try:
            return operation()
        except MailboxError:
            raise
        except Exception as exc:
            if not _net.is_connection_problem(exc):
                raise self._translate(exc) from exc
            log.warning("POP3 connection to %s broke (%s); reconnecting once",
                        self.settings.host, exc)
        self._drop()
        try:
            self.connect()
            return operation()
        except MailboxError:
            raise
        except Exception as exc:
            error = self._translate(exc)
            if _net.is_connection_problem(exc):
                error = ConnectionLostError(
                    f"{error.message} (after one reconnect; nothing was deleted)"
                )
            raise error from exc

    def _translate(self, exc: BaseException) -> MailboxError:
        if isinstance(exc, poplib.error_proto) and _net.is_pop3_server_reply(exc):
            log.info("POP3 server %s refused a command: %r", self.settings.host, _reply_text(exc))
            return MailboxProtocolError("The POP3 server refused a command.")
        return _net.translate(exc, self.settings)

    # ------------------------------------------------------------------ folders
    def list_folders(self) -> list[FolderInfo]:
        count, _ = self._call(lambda: self.conn.stat())
        return [FolderInfo(name=INBOX, messages=int(count))]

    def open_folder(
        self, name: str | None = None, *, expected_uidvalidity: int | None = None
    ) -> FolderState:
        name = name or self.settings.folder or INBOX
        if name.upper() != INBOX:
            raise FolderNotFoundError(
                f"POP3 has no folder {name!r}: it only gives access to the inbox.",
                hint="Use IMAP to read other folders, or set the folder to INBOX.",
            )
        count, _ = self._call(lambda: self.conn.stat())
        return FolderState(name=INBOX, uidvalidity=None, messages=int(count))

    # ------------------------------------------------------------------ reading
    def list_messages(
        self,
        *,
        unseen_only: bool = True,
        limit: int | None = None,
        exclude_keys: Collection[str] = (),
    ) -> list[MessageRef]:
        """Every message (POP3 has no seen flag), oldest first, keyed by UIDL."""

        def listing() -> list[MessageRef]:
            self._numbers = self._read_uidl(self.conn)
            _, lines, _ = self.conn.list()
            sizes = {}
            for line in lines:
                number, _, size = line.decode("ascii", "replace").partition(" ")
                sizes[int(number)] = int(size.split()[0]) if size.strip() else None
            return [
                MessageRef(key=uidl, folder=INBOX, uid=number, size=sizes.get(number))
                for uidl, number in sorted(self._numbers.items(), key=lambda kv: kv[1])
            ]

        refs = self._call(listing)
        excluded = set(exclude_keys)
        refs = [ref for ref in refs if ref.key not in excluded]
        return refs[:limit] if limit is not None else refs

    def seen_keys(self) -> list[str]:
        """POP3 has no seen flag: every message is listed, none is left out."""
        return []

    def fetch(
        self, refs: Collection[MessageRef], *, batch_size: int = 200
    ) -> Iterator[FetchedMessage]:
        """RETR each message (POP3 has no batch command; ``batch_size`` is unused)."""
        for ref in refs:
            raw = self._call(lambda ref=ref: self._retr(ref.key))
            if raw is None:
                log.info("message %s vanished before it was fetched; skipped", ref.key)
                continue
            yield FetchedMessage(ref=ref, raw=raw)

    def _retr(self, key: str) -> bytes | None:
        conn = self.conn  # may reconnect, which refreshes the UIDL map
        number = self._numbers.get(key)
        if number is None:
            return None
        _, lines, _ = conn.retr(number)
        return b"\r\n".join(lines) + b"\r\n"

    # ------------------------------------------------------------------ dispositions
    def apply(self, dispositions: Mapping[MessageRef, Disposition]) -> None:
        """DELE what is to be deleted, then QUIT so the server commits it."""
        for disposition in dispositions.values():
            if disposition.action is DispositionAction.MOVE:
                raise UnsupportedOperationError(
                    "POP3 cannot move messages to a folder.",
                    hint="Use IMAP for this mailbox, or choose delete or leave.",
                )
        keys = [
            ref.key for ref, d in dispositions.items() if d.action is DispositionAction.DELETE
        ]
        if not keys:
            return

        def delete_and_quit() -> None:
            conn = self.conn
            for key in keys:
                number = self._numbers.get(key)
                if number is not None:
                    conn.dele(number)
            # Only a clean QUIT makes the server remove the messages (RFC 1939 6).
            self._conn = None
            try:
                conn.quit()
            except Exception:
                _close_socket(conn)
                raise

        try:
            self._call(delete_and_quit)
        except MailboxError as exc:
            raise ConnectionLostError(
                f"Deleting messages on the POP3 server did not complete: {exc.message}. "
                "The server rolls back unfinished deletions, so the messages may be "
                "seen again (they are deduplicated by key).",
            ) from exc


def _reply_text(exc: poplib.error_proto) -> str:
    reply = exc.args[0] if exc.args else b""
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply)


def _close_socket(conn: poplib.POP3) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - best effort
        log.debug("ignored error while closing", exc_info=True)
