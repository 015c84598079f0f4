"""Local mailboxes: a maildir directory or an mbox file (stdlib ``mailbox``).

Maildir: keys are the maildir unique names (stable when a file moves from ``new`` to
``cur`` or gets flags). "Unseen" means no ``S`` flag, so ``mark_read`` is the maildir way
of remembering what was processed; subfolders are Maildir++ (``.Name``).

mbox: one file, no stable ids, so the key is a digest of the message (its ``Status`` /
``X-Status`` headers left out, so marking it read keeps the key), with ``#2``, ``#3`` for
identical copies. Every read and write happens under the mbox lock (fcntl + dot-lock,
as MTAs and mail clients use) and re-reads the file, so mail delivered meanwhile is never
overwritten. ``move`` appends to another mbox file next to this one.
"""

from __future__ import annotations

import hashlib
import logging
import mailbox
import os
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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


# ============================================================================ maildir
class MaildirConnector(MailboxConnector):
    """A maildir directory (with Maildir++ subfolders)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._root: mailbox.Maildir | None = None
        self._folder_name = INBOX
        self._folder_path: Path | None = None

    def connect(self) -> None:
        path = Path(self.settings.path)
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise LocalMailboxError(
                f"{path} is not a maildir (it needs cur/, new/ and tmp/ subdirectories).",
                hint="Give the path of the Maildir directory itself.",
            )
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
        base = Path(self.settings.path)
        if name.upper() == INBOX:
            return base
        path = base / f".{name}"
        if not (path / "cur").is_dir():
            raise FolderNotFoundError(
                f"The maildir has no folder {name!r} (looked for {path}).",
                hint="Maildir++ subfolders are directories named '.Name'.",
            )
        return path

    def list_folders(self) -> list[FolderInfo]:
        names = [INBOX, *sorted(self.root.list_folders())]
        folders = []
        for name in names:
            entries = list(_maildir_entries(self._path_of(name)))
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
                raw = entry.path.read_bytes()
            except FileNotFoundError:
                continue  # renamed or removed by another reader just now
            except OSError as exc:
                raise _os_error(exc, str(entry.path)) from exc
            yield FetchedMessage(ref=ref, raw=raw)

    def apply(self, dispositions: Mapping[MessageRef, Disposition]) -> None:
        path = self._current()
        entries = _index(path)
        for (action, target), refs in group_dispositions(dispositions).items():
            if action is DispositionAction.LEAVE:
                continue
            target_path = self._path_of(target) if target else None
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
                    if entry.name.startswith(".") or not entry.is_file():
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


def _index(path: Path) -> dict[str, _MaildirEntry]:
    """key -> entry for one folder (one directory scan instead of one per message)."""
    return {entry.key: entry for entry in _maildir_entries(path)}


# ============================================================================ mbox
def mbox_digest(raw: bytes) -> str:
    """sha256 of a message without its Status/X-Status headers (mbox flag storage).

    Trailing blank lines are ignored too: in an mbox they are indistinguishable from
    the separator line before the next ``From `` line.
    """
    raw = raw.rstrip(b"\r\n")
    head, sep, body = raw.partition(b"\n\n")
    if not sep:
        head, sep, body = raw.partition(b"\r\n\r\n")
    kept = [
        line.rstrip(b"\r")
        for line in head.split(b"\n")
        if not line.lower().startswith((b"status:", b"x-status:"))
    ]
    return hashlib.sha256(b"\n".join(kept) + sep + body).hexdigest()


def _mbox_flags(raw: bytes) -> str:
    head = raw.partition(b"\n\n")[0]
    flags = ""
    for line in head.splitlines():
        lowered = line.lower()
        if lowered.startswith((b"status:", b"x-status:")):
            flags += line.partition(b":")[2].strip().decode("ascii", "replace")
    return flags


def _without_separator(raw: bytes) -> bytes:
    """Message bytes as read back from an mbox, minus the separator blank line.

    ``mailbox`` returns a message with the blank line that precedes the next ``From ``
    line and adds a new one when writing, so writing read bytes back as they are
    would grow every rewritten message by one line.
    """
    return raw[:-1] if raw.endswith(b"\n\n") else raw


def _with_status_read(raw: bytes) -> bytes:
    """``raw`` (From_ line first) with its Status header replaced by ``Status: RO``."""
    raw = _without_separator(raw)
    newline = b"\r\n" if b"\r\n" in raw[:200] else b"\n"
    from_line, _, rest = raw.partition(newline)
    head, sep, body = rest.partition(newline + newline)
    lines = [
        line for line in head.split(newline) if not line.lower().startswith(b"status:")
    ]
    lines.append(b"Status: RO")
    return from_line + newline + newline.join(lines) + sep + body


class MboxConnector(MailboxConnector):
    """An mbox file; ``move`` targets are other mbox files in the same directory."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._connected = False

    @property
    def path(self) -> Path:
        return Path(self.settings.path)

    def connect(self) -> None:
        if not self.path.is_file():
            raise LocalMailboxError(
                f"The mbox file {self.path} does not exist.",
                hint="Give the full path of the mbox file (e.g. /var/mail/bounces).",
            )
        if not os.access(self.path, os.R_OK | os.W_OK):
            raise LocalMailboxError(
                f"The mbox file {self.path} is not readable and writable by this process."
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
                unseen=sum(1 for _, _, flags in refs_all if "R" not in flags),
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

    def _scan(self) -> list[tuple[MessageRef, str, str]]:
        """(ref, digest key, flags) for every message, in file order."""
        result = []
        seen: dict[str, int] = {}
        with self._locked() as box:
            for index, toc_key in enumerate(box.iterkeys()):
                raw = box.get_bytes(toc_key)
                digest = mbox_digest(raw)
                seen[digest] = seen.get(digest, 0) + 1
                key = digest if seen[digest] == 1 else f"{digest}#{seen[digest]}"
                ref = MessageRef(key=key, folder=INBOX, uid=index, size=len(raw))
                result.append((ref, key, _mbox_flags(raw)))
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
            for ref, key, flags in self._scan()
            if key not in excluded and not (unseen_only and "R" in flags)
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
        with self._locked() as box:
            mapping = self._resolve(box)
            for (action, target), refs in groups.items():
                toc_keys = [mapping[r.key] for r in refs if r.key in mapping]
                if action is DispositionAction.LEAVE or not toc_keys:
                    continue
                if action is DispositionAction.MARK_READ:
                    for toc_key in toc_keys:
                        raw = box.get_bytes(toc_key, from_=True)
                        if "R" not in _mbox_flags(raw.partition(b"\n")[2]):
                            # Edit the bytes rather than re-serialise a parsed message,
                            # so the rest of the message stays byte-identical.
                            box[toc_key] = _with_status_read(raw)
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

    def _append_to(self, target: str, raws: list[bytes]) -> None:
        target_path = Path(target)
        if not target_path.is_absolute():
            target_path = self.path.parent / target_path
        if not target_path.parent.is_dir():
            raise FolderNotFoundError(f"Cannot move to {target_path}: no such directory.")
        with self._locked(target_path) as target_box:
            for raw in raws:
                target_box.add(raw)  # starts with its "From " line, which is kept
            target_box.flush()

