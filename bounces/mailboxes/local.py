"""Local mailboxes: a maildir directory or an mbox file (stdlib ``mailbox``).

Maildir: keys are the maildir unique names (stable when a file moves from ``new`` to
``cur`` or gets flags). "Unseen" means no ``S`` flag, so ``mark_read`` is the maildir way
of remembering what was processed; subfolders are Maildir++ (``.Name``).

mbox: one file, no stable ids, so the key is a digest of the message (its ``Status`` /
``X-Status`` / ``X-Bouncemgr-Seen`` headers left out, so marking it read keeps the key),
with ``#2``, ``#3`` for identical copies. Every read and write happens under the mbox lock
(fcntl + dot-lock, as MTAs and mail clients use) and re-reads the file, so mail delivered
meanwhile is never overwritten. ``move`` appends to another mbox file next to this one.
"Unseen" in an mbox never trusts ``Status: R``: a mail client sets it, and so can the
sender of a bounce (MDAs deliver the header as it came). Only our own mark counts:
``X-Bouncemgr-Seen: <HMAC of the message digest>``, keyed by ``marker_secret``, which
``mark_read`` writes along with ``Status: RO`` (issue 12, item 11).

Confinement (issue 12, item 2): every path these connectors open, lock, create or rename
into must resolve, symlinks followed, inside one of ``ConnectionSettings.local_roots``;
paths with ``..`` are refused, the mbox must be a regular file, move targets are plain
names (an mbox file beside this one, or a Maildir++ folder), and message files are opened
without following symlinks. :func:`check_local_path` and :func:`check_move_target` are
the same rules for form validation and system checks.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mailbox
import os
import stat
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePath

from .base import (
    INBOX,
    ConnectionSettings,
    Disposition,
    DispositionAction,
    FetchedMessage,
    FolderInfo,
    FolderNotFoundError,
    FolderState,
    LocalMailboxError,
    MailboxConnector,
    MessageRef,
    group_dispositions,
)

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 10.0


def _os_error(exc: OSError, what: str) -> LocalMailboxError:
    return LocalMailboxError(
        f"Cannot access {what}: {exc.strerror or exc}.",
        hint="Check the path and that the bouncemgr process may read and write it.",
        transient=False,
    )


# ============================================================================ confinement
ROOTS_HINT = (
    "Local mailboxes must live inside the folders an administrator allowed "
    "(LOCAL_MAILBOX_ROOTS); give a path inside one of them."
)


def _inside(real: str, roots: Sequence[str]) -> bool:
    for root in roots:
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def _confine(path: str, roots: Sequence[str]) -> Path:
    """``path`` resolved (symlinks followed) inside ``roots``, or LocalMailboxError."""
    if not roots:
        raise LocalMailboxError(
            "No folder is allowed for local mailboxes on this installation.",
            hint=ROOTS_HINT,
        )
    if not path or "\x00" in path:
        raise LocalMailboxError("The local mailbox path is empty or invalid.")
    if ".." in PurePath(path).parts:
        raise LocalMailboxError(
            f"The path {path!r} contains '..'; give the path without it.", hint=ROOTS_HINT
        )
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(roots[0]) / candidate
    real_roots = [os.path.realpath(root) for root in roots]
    real = os.path.realpath(candidate)
    if not _inside(real, real_roots):
        raise LocalMailboxError(
            f"The path {path!r} is outside the folders allowed for local mailboxes "
            f"({', '.join(roots)}).",
            hint=ROOTS_HINT,
        )
    return Path(real)


def resolve_local_path(path: str, protocol: str, roots: Sequence[str]) -> Path:
    """The real path of an mbox file / maildir, checked; raises LocalMailboxError."""
    real = _confine(path, roots)
    try:
        mode = os.lstat(real).st_mode
    except FileNotFoundError:
        if protocol == "mbox":
            raise LocalMailboxError(
                f"The mbox file {path} does not exist.",
                hint="Give the path of the mbox file inside the allowed folders.",
            ) from None
        raise LocalMailboxError(
            f"{path} is not a maildir (it does not exist).",
            hint="Give the path of the Maildir directory itself.",
        ) from None
    except OSError as exc:
        raise _os_error(exc, path) from exc
    if protocol == "mbox":
        if not stat.S_ISREG(mode):
            raise LocalMailboxError(
                f"{path} is not a regular file, so it cannot be an mbox.",
                hint="Give the path of the mbox file itself.",
            )
    elif not stat.S_ISDIR(mode) or not all(
        os.path.isdir(real / sub) and not os.path.islink(real / sub)
        for sub in ("cur", "new", "tmp")
    ):
        raise LocalMailboxError(
            f"{path} is not a maildir (it needs cur/, new/ and tmp/ subdirectories).",
            hint="Give the path of the Maildir directory itself.",
        )
    return real


def check_local_path(
    path: str, protocol: str, roots: Sequence[str], *, must_exist: bool = True
) -> str | None:
    """The problem with a local mailbox path (None: fine). For forms and system checks.

    ``must_exist=False`` checks only what makes the path unacceptable (outside the
    roots, ``..``, a special file or a non-directory where a maildir should be), so a
    mailbox can be configured before its mail arrives.
    """
    try:
        if must_exist:
            resolve_local_path(path, protocol, roots)
            return None
        real = _confine(path, roots)
    except LocalMailboxError as exc:
        return exc.message
    if os.path.lexists(real):
        return check_local_path(path, protocol, roots)
    return None


def check_move_target(name: str, protocol: str) -> str | None:
    """The problem with a "move to folder" name of a local mailbox (None: fine).

    mbox: the name of another mbox file in the same directory. maildir: a Maildir++
    folder name (``Processed``, ``Archive.2024``). Never a path.
    """
    if not name:
        return "Moving messages needs a target folder name."
    if any(ch in name for ch in ("/", "\\", "\x00")) or name.startswith(".") or name in (".", ".."):
        what = "file name beside the mbox" if protocol == "mbox" else "Maildir++ folder name"
        return (
            f"The folder {name!r} must be a plain {what} (no '/', no leading '.', no '..')."
        )
    return None


def _checked_target(name: str, protocol: str) -> str:
    problem = check_move_target(name, protocol)
    if problem:
        raise LocalMailboxError(problem, hint=ROOTS_HINT)
    return name


# ============================================================================ maildir
class MaildirConnector(MailboxConnector):
    """A maildir directory (with Maildir++ subfolders)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._root: mailbox.Maildir | None = None
        self._base: Path | None = None
        self._folder_name = INBOX
        self._folder_path: Path | None = None

    def connect(self) -> None:
        path = resolve_local_path(self.settings.path, "maildir", self.settings.local_roots)
        self._base = path
        try:
            self._root = mailbox.Maildir(path, factory=None, create=False)
        except OSError as exc:
            raise _os_error(exc, str(path)) from exc

    @property
    def root(self) -> mailbox.Maildir:
        if self._root is None:
            self.connect()
        assert self._root is not None
        return self._root

    def capabilities(self) -> tuple[str, ...]:
        return ("MAILDIR",)

    def close(self) -> None:
        self._root = None

    def _path_of(self, name: str) -> Path:
        _ = self.root
        assert self._base is not None
        base = self._base
        if name.upper() == INBOX:
            return base
        path = base / f".{_checked_target(name, 'maildir')}"
        if not (path / "cur").is_dir():
            raise FolderNotFoundError(
                f"The maildir has no folder {name!r} (looked for {path}).",
                hint="Maildir++ subfolders are directories named '.Name'.",
            )
        real = Path(os.path.realpath(path))
        if not _inside(str(real), [os.path.realpath(r) for r in self.settings.local_roots]):
            raise LocalMailboxError(
                f"The maildir folder {name!r} leads outside the allowed folders.",
                hint=ROOTS_HINT,
            )
        return real

    def list_folders(self) -> list[FolderInfo]:
        names = [INBOX, *sorted(self.root.list_folders())]
        folders = []
        for name in names:
            try:
                path = self._path_of(name)
            except LocalMailboxError as exc:  # a subfolder leading out of the roots
                log.warning("maildir folder %r skipped: %s", name, exc.message)
                continue
            entries = list(_maildir_entries(path))
            folders.append(
                FolderInfo(
                    name=name,
                    delimiter=".",
                    messages=len(entries),
                    unseen=sum(1 for e in entries if "S" not in e.flags),
                )
            )
        return folders

    def open_folder(
        self, name: str | None = None, *, expected_uidvalidity: int | None = None
    ) -> FolderState:
        name = name or self.settings.folder or INBOX
        path = self._path_of(name)
        entries = list(_maildir_entries(path))
        self._folder_name = INBOX if name.upper() == INBOX else name
        self._folder_path = path
        return FolderState(
            name=self._folder_name,
            uidvalidity=None,
            messages=len(entries),
            unseen=sum(1 for e in entries if "S" not in e.flags),
        )

    def _current(self) -> Path:
        if self._folder_path is None:
            self.open_folder()
        assert self._folder_path is not None
        return self._folder_path

    def list_messages(
        self,
        *,
        unseen_only: bool = True,
        limit: int | None = None,
        exclude_keys: Collection[str] = (),
    ) -> list[MessageRef]:
        path = self._current()
        excluded = set(exclude_keys)
        entries = sorted(_maildir_entries(path), key=lambda e: (e.mtime, e.key))
        refs = [
            MessageRef(key=e.key, folder=self._folder_name, size=e.size)
            for e in entries
            if not (unseen_only and "S" in e.flags) and e.key not in excluded
        ]
        return refs[:limit] if limit is not None else refs

    def fetch(
        self, refs: Collection[MessageRef], *, batch_size: int = 200
    ) -> Iterator[FetchedMessage]:
        path = self._current()
        entries = _index(path)
        for ref in refs:
            entry = entries.get(ref.key)
            if entry is None:
                log.info("message %s vanished before it was fetched; skipped", ref.key)
                continue
            try:
                raw = _read_message_file(entry.path)
            except FileNotFoundError:
                continue  # renamed or removed by another reader just now
            except OSError as exc:
                raise _os_error(exc, str(entry.path)) from exc
            if raw is None:
                log.warning("maildir entry %s is not a regular file; skipped", entry.path)
                continue
            yield FetchedMessage(ref=ref, raw=raw)

    def apply(self, dispositions: Mapping[MessageRef, Disposition]) -> None:
        path = self._current()
        entries = _index(path)
        groups = group_dispositions(dispositions)
        # Every target checked before anything moves: a bad one changes nothing.
        targets = {target: self._path_of(target) for action, target in groups
                   if action is DispositionAction.MOVE and target}
        for (action, target), refs in groups.items():
            if action is DispositionAction.LEAVE:
                continue
            target_path = targets.get(target) if target else None
            for ref in refs:
                entry = entries.get(ref.key)
                if entry is None:
                    continue  # already gone: the disposition is moot
                try:
                    if action is DispositionAction.DELETE:
                        entry.path.unlink()
                    elif action is DispositionAction.MARK_READ:
                        entry.path.rename(path / "cur" / entry.name_with({"S"}))
                    elif action is DispositionAction.MOVE:
                        assert target_path is not None
                        # A rename within one filesystem is atomic: never two copies.
                        entry.path.rename(target_path / "cur" / entry.name_with(set()))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise _os_error(exc, str(entry.path)) from exc


class _MaildirEntry:
    __slots__ = ("path", "key", "flags", "size", "mtime")

    def __init__(self, path: Path, key: str, flags: str, size: int, mtime: float) -> None:
        self.path = path
        self.key = key
        self.flags = flags
        self.size = size
        self.mtime = mtime

    def name_with(self, extra_flags: set[str]) -> str:
        flags = "".join(sorted(set(self.flags) | extra_flags))
        return f"{self.key}:2,{flags}"


def _split_name(name: str) -> tuple[str, str]:
    # "<unique>:2,<flags>" (cur) or "<unique>" (new). Some tools use '!' instead of ':'.
    for sep in (":2,", "!2,"):
        if sep in name:
            key, _, flags = name.partition(sep)
            return key, flags
    return name, ""


def _maildir_entries(path: Path) -> Iterator[_MaildirEntry]:
    for sub in ("new", "cur"):
        try:
            with os.scandir(path / sub) as it:
                for entry in it:
                    # Regular files only: a symlink (to /etc/shadow, say) or a FIFO
                    # dropped into the maildir is not a message.
                    if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                        continue
                    key, flags = _split_name(entry.name)
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    yield _MaildirEntry(
                        Path(entry.path), key, flags, stat.st_size, stat.st_mtime
                    )
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _os_error(exc, str(path / sub)) from exc


def _read_message_file(path: Path) -> bytes | None:
    """The bytes of a regular file, opened without following a symlink (None if not)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _index(path: Path) -> dict[str, _MaildirEntry]:
    """key -> entry for one folder (one directory scan instead of one per message)."""
    return {entry.key: entry for entry in _maildir_entries(path)}


# ============================================================================ mbox
def _header_end(raw: bytes) -> tuple[int, int] | None:
    """(start, end) of the blank line that ends the header, whatever the line endings.

    Line by line on LF, a line being empty or a lone CR: a message that mixes CRLF and
    LF (hostile mail does) is split where a reader sees the header end, not elsewhere.
    """
    pos = 0
    while True:
        newline = raw.find(b"\n", pos)
        if newline == -1:
            return None
        if newline == pos or (newline == pos + 1 and raw[pos : pos + 1] == b"\r"):
            return pos, newline + 1
        pos = newline + 1


def mbox_digest(raw: bytes) -> str:
    """sha256 of a message without its Status/X-Status headers (mbox flag storage).

    Our ``X-Bouncemgr-Seen`` mark is left out too, so marking a message read keeps its
    key. Trailing blank lines are ignored: in an mbox they are indistinguishable from
    the separator line before the next ``From `` line.
    """
    raw = raw.rstrip(b"\r\n")
    bounds = _header_end(raw)
    if bounds is None:
        head, sep, body = raw, b"", b""
    else:
        start, end = bounds
        sep_start = start - (2 if raw[start - 2 : start] == b"\r\n" else 1) if start else 0
        head, sep, body = raw[:sep_start], raw[sep_start:end], raw[end:]
    kept = [
        line.rstrip(b"\r")
        for line in head.split(b"\n")
        if not line.lower().startswith(_FLAG_HEADERS)
    ]
    return hashlib.sha256(b"\n".join(kept) + sep + body).hexdigest()


SEEN_HEADER = b"X-Bouncemgr-Seen"
_FLAG_HEADERS = (b"status:", b"x-status:", SEEN_HEADER.lower() + b":")


def seen_mark(secret: str, digest: str) -> str:
    """Our "processed" mark for the message with ``digest`` (unforgeable without the key)."""
    return hmac.new(secret.encode(), digest.encode(), hashlib.sha256).hexdigest()[:32]


def _marked_by_us(raw: bytes, digest: str, secret: str) -> bool:
    if not secret:
        return False
    bounds = _header_end(raw)
    head = raw if bounds is None else raw[: bounds[0]]
    expected = seen_mark(secret, digest).encode()
    prefix = SEEN_HEADER.lower() + b":"
    return any(
        hmac.compare_digest(line.partition(b":")[2].strip(), expected)
        for line in head.split(b"\n")
        if line.lower().startswith(prefix)
    )


def _without_separator(raw: bytes) -> bytes:
    """Message bytes as read back from an mbox, minus the separator blank line.

    ``mailbox`` returns a message with the blank line that precedes the next ``From ``
    line and adds a new one when writing, so writing read bytes back as they are
    would grow every rewritten message by one line.
    """
    return raw[:-1] if raw.endswith(b"\n\n") else raw


def _with_status_read(raw: bytes, mark: str = "") -> bytes:
    """``raw`` (From_ line first) with ``Status: RO`` and, given, our seen mark.

    Only header lines change; every other byte (line endings included) stays as it was.
    """
    raw = _without_separator(raw)
    first = raw.find(b"\n")
    if first == -1:
        return raw
    from_line, rest = raw[: first + 1], raw[first + 1 :]
    bounds = _header_end(rest)
    head, tail = (rest, b"") if bounds is None else (rest[: bounds[0]], rest[bounds[0] :])
    lines = [line + b"\n" for line in head.split(b"\n")]
    if head.endswith(b"\n") or not head:
        lines.pop()  # the empty piece after the last newline
    eol = b"\r\n" if lines and lines[-1].endswith(b"\r\n") else b"\n"
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += eol  # a header that ended the file without a newline
    dropped = (b"status:", SEEN_HEADER.lower() + b":")
    kept = [line for line in lines if not line.lower().startswith(dropped)]
    added = b"Status: RO" + eol + (SEEN_HEADER + b": " + mark.encode() + eol if mark else b"")
    return from_line + b"".join(kept) + added + tail


class MboxConnector(MailboxConnector):
    """An mbox file; ``move`` targets are other mbox files in the same directory."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._connected = False
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The checked, resolved path of the mbox file (checked on first use)."""
        if self._path is None:
            self._path = resolve_local_path(
                self.settings.path, "mbox", self.settings.local_roots
            )
        return self._path

    def connect(self) -> None:
        path = self.path
        if not os.access(path, os.R_OK | os.W_OK):
            raise LocalMailboxError(
                f"The mbox file {self.settings.path} is not readable and writable by this "
                "process."
            )
        self._connected = True

    def capabilities(self) -> tuple[str, ...]:
        return ("MBOX",)

    def close(self) -> None:
        self._connected = False

    @contextmanager
    def _locked(self, path: Path | None = None) -> Iterator[mailbox.mbox]:
        """A fresh view of the file under its lock (others may have changed it)."""
        if not self._connected:
            self.connect()
        path = path or self.path
        if path != self.path:  # a move target: re-check right before it is created/locked
            self._check_target_path(path)
        try:
            box = mailbox.mbox(path, factory=None, create=path != self.path)
        except OSError as exc:
            raise _os_error(exc, str(path)) from exc
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                box.lock()
                break
            except mailbox.ExternalClashError as exc:
                if time.monotonic() > deadline:
                    raise LocalMailboxError(
                        f"The mbox file {path} stayed locked by another program for "
                        f"{LOCK_WAIT_SECONDS:g}s.",
                        transient=True,
                    ) from exc
                time.sleep(0.1)
            except OSError as exc:
                raise _os_error(exc, f"the lock of {path}") from exc
        try:
            yield box
        finally:
            try:
                box.unlock()
            finally:
                box.close()

    def list_folders(self) -> list[FolderInfo]:
        refs_all = self._scan()
        return [
            FolderInfo(
                name=INBOX,
                messages=len(refs_all),
                unseen=sum(1 for _, _, ours in refs_all if not ours),
            )
        ]

    def open_folder(
        self, name: str | None = None, *, expected_uidvalidity: int | None = None
    ) -> FolderState:
        name = name or self.settings.folder or INBOX
        if name.upper() != INBOX:
            raise FolderNotFoundError(
                f"An mbox file has no folder {name!r}; use INBOX.",
            )
        info = self.list_folders()[0]
        return FolderState(
            name=INBOX, uidvalidity=None, messages=info.messages or 0, unseen=info.unseen
        )

    def _scan(self) -> list[tuple[MessageRef, str, bool]]:
        """(ref, digest key, marked read by us) for every message, in file order."""
        result = []
        seen: dict[str, int] = {}
        with self._locked() as box:
            for index, toc_key in enumerate(box.iterkeys()):
                raw = box.get_bytes(toc_key)
                digest = mbox_digest(raw)
                seen[digest] = seen.get(digest, 0) + 1
                key = digest if seen[digest] == 1 else f"{digest}#{seen[digest]}"
                ref = MessageRef(key=key, folder=INBOX, uid=index, size=len(raw))
                result.append((ref, key, _marked_by_us(raw, digest, self.settings.marker_secret)))
        return result

    def list_messages(
        self,
        *,
        unseen_only: bool = True,
        limit: int | None = None,
        exclude_keys: Collection[str] = (),
    ) -> list[MessageRef]:
        excluded = set(exclude_keys)
        refs = [
            ref
            for ref, key, ours in self._scan()
            if key not in excluded and not (unseen_only and ours)
        ]
        return refs[:limit] if limit is not None else refs

    def _resolve(self, box: mailbox.mbox) -> dict[str, object]:
        """Map our digest keys to the mailbox module's keys for this view of the file."""
        mapping: dict[str, object] = {}
        seen: dict[str, int] = {}
        for toc_key in box.iterkeys():
            digest = mbox_digest(box.get_bytes(toc_key))
            seen[digest] = seen.get(digest, 0) + 1
            mapping[digest if seen[digest] == 1 else f"{digest}#{seen[digest]}"] = toc_key
        return mapping

    def fetch(
        self, refs: Collection[MessageRef], *, batch_size: int = 200
    ) -> Iterator[FetchedMessage]:
        ordered = list(refs)
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            out: list[FetchedMessage] = []
            with self._locked() as box:
                mapping: dict[str, object] | None = None
                for ref in batch:
                    raw = self._get_verified(box, ref)
                    if raw is None:
                        if mapping is None:  # the file changed: fall back to a full scan
                            mapping = self._resolve(box)
                        toc_key = mapping.get(ref.key)
                        raw = None if toc_key is None else box.get_bytes(toc_key)
                    if raw is None:
                        log.info("message %s vanished before it was fetched", ref.key)
                        continue
                    out.append(FetchedMessage(ref=ref, raw=raw))
            yield from out

    @staticmethod
    def _get_verified(box: mailbox.mbox, ref: MessageRef) -> bytes | None:
        """The message at the ref's position if it still is the same message."""
        if ref.uid is None or "#" in ref.key:
            return None  # duplicates are told apart by order: always rescan
        try:
            raw = box.get_bytes(ref.uid)
        except KeyError:
            return None
        return raw if mbox_digest(raw) == ref.key else None

    def apply(self, dispositions: Mapping[MessageRef, Disposition]) -> None:
        groups = group_dispositions(dispositions)
        if all(action is DispositionAction.LEAVE for action, _ in groups):
            return
        # Every move target checked before anything changes: a bad one changes nothing.
        for action, target in groups:
            if action is DispositionAction.MOVE:
                self._target_path(target or "")
        with self._locked() as box:
            mapping = self._resolve(box)
            for (action, target), refs in groups.items():
                toc_keys = [mapping[r.key] for r in refs if r.key in mapping]
                if action is DispositionAction.LEAVE or not toc_keys:
                    continue
                if action is DispositionAction.MARK_READ:
                    secret = self.settings.marker_secret
                    for toc_key in toc_keys:
                        raw = box.get_bytes(toc_key, from_=True)
                        message = raw.partition(b"\n")[2]
                        mark = seen_mark(secret, mbox_digest(message)) if secret else ""
                        # Edit the bytes rather than re-serialise a parsed message,
                        # so the rest of the message stays byte-identical.
                        edited = _with_status_read(raw, mark)
                        if edited != _without_separator(raw):
                            box[toc_key] = edited
                elif action is DispositionAction.MOVE:
                    assert target is not None
                    self._append_to(
                        target, [_without_separator(box.get_bytes(k, from_=True)) for k in toc_keys]
                    )
                    for toc_key in toc_keys:
                        box.remove(toc_key)
                elif action is DispositionAction.DELETE:
                    for toc_key in toc_keys:
                        box.remove(toc_key)
            try:
                box.flush()
            except OSError as exc:
                raise _os_error(exc, str(self.path)) from exc

    def _target_path(self, target: str) -> Path:
        """The mbox file ``target`` names: beside this one, inside the roots."""
        path = self.path.parent / _checked_target(target, "mbox")
        self._check_target_path(path)
        return path

    def _check_target_path(self, path: Path) -> None:
        real = os.path.realpath(path)
        roots = [os.path.realpath(r) for r in self.settings.local_roots]
        if not _inside(real, roots) or os.path.dirname(real) != str(self.path.parent):
            raise LocalMailboxError(
                f"The move target {path.name!r} leads outside the allowed folders.",
                hint=ROOTS_HINT,
            )
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return  # created by the move, inside the root
        if not stat.S_ISREG(mode):
            raise LocalMailboxError(
                f"The move target {path.name!r} exists and is not a regular file."
            )

    def _append_to(self, target: str, raws: list[bytes]) -> None:
        target_path = self._target_path(target)
        with self._locked(target_path) as target_box:
            for raw in raws:
                target_box.add(raw)  # starts with its "From " line, which is kept
            target_box.flush()

