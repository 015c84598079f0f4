"""Local maildir and mbox connectors on temporary directories."""

from __future__ import annotations

import mailbox

import pytest

from bounces.mailboxes import (
    ConnectionSettings,
    Disposition,
    FolderNotFoundError,
    LocalMailboxError,
    check_connection,
    open_mailbox,
)
from bounces.mailboxes import local as local_module
from bounces.mailboxes.local import mbox_digest

from .helpers import load_bounce_samples, marker, numbered

SAMPLES = load_bounce_samples()


def _msg(i: int) -> bytes:
    return numbered(SAMPLES[i % len(SAMPLES)], i).replace(b"\r\n", b"\n")


# ================================================================== maildir
@pytest.fixture
def maildir(tmp_path):
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for i in range(5):
        box.add(_msg(i))  # bytes are stored exactly as given
    # Message 4 was already read by a mail client: cur/ with the S flag.
    [new_name] = [p for p in (tmp_path / "Maildir" / "new").iterdir() if marker(p.read_bytes()) == 4]
    new_name.rename(tmp_path / "Maildir" / "cur" / f"{new_name.name}:2,S")
    box.add_folder("Processed")
    return tmp_path / "Maildir"


def _maildir_settings(path, **kw):
    # Local mailboxes are confined to configured roots: here the test's temporary folder.
    kw.setdefault("local_roots", (str(path.parent),))
    return ConnectionSettings(protocol="maildir", path=str(path), **kw)


def test_maildir_lists_unseen_messages_and_fetches_them_unchanged(maildir):
    with open_mailbox(_maildir_settings(maildir)) as box:
        state = box.open_folder()
        refs = box.list_messages()
        every = box.list_messages(unseen_only=False)
        fetched = {marker(m.raw): m.raw for m in box.fetch(refs)}
    assert (state.messages, state.unseen) == (5, 4)
    assert len(refs) == 4 and len(every) == 5
    assert fetched == {i: _msg(i) for i in range(4)}


def test_maildir_mark_read_keeps_the_key_and_hides_it_from_unseen(maildir):
    with open_mailbox(_maildir_settings(maildir)) as box:
        box.open_folder()
        refs = box.list_messages()
        box.apply({refs[0]: Disposition.mark_read()})
        unseen = {r.key for r in box.list_messages()}
        everything = {r.key for r in box.list_messages(unseen_only=False)}
    assert refs[0].key not in unseen and refs[0].key in everything
    assert "S" in mailbox.Maildir(maildir, create=False)[refs[0].key].get_flags()


def test_maildir_delete_move_and_leave(maildir):
    with open_mailbox(_maildir_settings(maildir)) as box:
        box.open_folder()
        refs = box.list_messages()
        box.apply(
            {
                refs[0]: Disposition.delete(),
                refs[1]: Disposition.move("Processed"),
                refs[2]: Disposition.leave(),
            }
        )
        inbox = {r.key for r in box.list_messages(unseen_only=False)}
        moved = box.open_folder("Processed")
        [moved_ref] = box.list_messages()
    assert refs[0].key not in inbox and refs[1].key not in inbox and refs[2].key in inbox
    assert moved.messages == 1 and moved_ref.key == refs[1].key


def test_maildir_folders_are_listed_with_counts(maildir):
    report = check_connection(_maildir_settings(maildir))
    assert report.ok
    assert [(f.name, f.messages, f.unseen) for f in report.folders] == [
        ("INBOX", 5, 4),
        ("Processed", 0, 0),
    ]


def test_maildir_errors_are_clear(tmp_path, maildir):
    assert check_connection(_maildir_settings(tmp_path / "nope")).error_category == "local"
    missing = check_connection(_maildir_settings(maildir, folder="Archive"))
    assert missing.error_category == "folder"
    with open_mailbox(_maildir_settings(maildir)) as box:
        box.open_folder()
        [ref, *_] = box.list_messages()
        with pytest.raises(FolderNotFoundError):
            box.apply({ref: Disposition.move("Archive")})


def test_maildir_exclude_keys_is_the_callers_processed_memory(maildir):
    with open_mailbox(_maildir_settings(maildir)) as box:
        box.open_folder()
        refs = box.list_messages()
        rest = box.list_messages(exclude_keys={refs[0].key, refs[1].key})
    assert {r.key for r in rest} == {r.key for r in refs[2:]}


# ================================================================== mbox
@pytest.fixture
def mbox_path(tmp_path):
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path, create=True)
    for i in range(5):
        box.add(_msg(i))
    box.add(_msg(2))  # an identical second copy
    box.flush()
    box.close()
    return path


def _mbox_settings(path, **kw):
    kw.setdefault("local_roots", (str(path.parent),))
    return ConnectionSettings(protocol="mbox", path=str(path), **kw)


def _contents(path):
    """Messages of an mbox file; trailing blank lines are the format's separators."""
    box = mailbox.mbox(path, create=False)
    try:
        return [box.get_bytes(k).rstrip(b"\n") for k in box.iterkeys()]
    finally:
        box.close()


def test_mbox_lists_all_messages_with_distinct_keys_for_identical_copies(mbox_path):
    with open_mailbox(_mbox_settings(mbox_path)) as box:
        refs = box.list_messages()
        fetched = [m.raw for m in box.fetch(refs, batch_size=2)]
    assert len(refs) == 6 and len({r.key for r in refs}) == 6
    assert refs[5].key == refs[2].key + "#2"
    assert [raw.rstrip(b"\n") for raw in fetched] == _contents(mbox_path)


def test_mbox_mark_read_keeps_keys_and_the_rest_of_the_bytes(mbox_path):
    with open_mailbox(_mbox_settings(mbox_path, marker_secret="k")) as box:
        refs = box.list_messages()
        box.apply({refs[1]: Disposition.mark_read()})
        unseen = [r.key for r in box.list_messages()]
        everything = [r.key for r in box.list_messages(unseen_only=False)]
    assert everything == [r.key for r in refs]
    assert refs[1].key not in unseen
    stored = _contents(mbox_path)[1]
    assert b"Status: RO" in stored
    assert mbox_digest(stored) == refs[1].key


def test_mbox_delete_and_move_keep_other_messages_byte_identical(mbox_path, tmp_path):
    before = _contents(mbox_path)
    with open_mailbox(_mbox_settings(mbox_path)) as box:
        refs = box.list_messages()
        box.apply(
            {
                refs[0]: Disposition.delete(),
                refs[3]: Disposition.move("processed.mbox"),
                refs[5]: Disposition.delete(),
                refs[4]: Disposition.leave(),
            }
        )
        remaining = [r.key for r in box.list_messages(unseen_only=False)]
    assert remaining == [refs[1].key, refs[2].key, refs[4].key]
    assert _contents(mbox_path) == [before[1], before[2], before[4]]
    assert _contents(tmp_path / "processed.mbox") == [before[3]]


def test_mbox_messages_appended_meanwhile_are_kept(mbox_path):
    with open_mailbox(_mbox_settings(mbox_path)) as box:
        refs = box.list_messages()
        other = mailbox.mbox(mbox_path)  # an MDA delivering during our run
        other.lock()
        other.add(_msg(99))
        other.flush()
        other.unlock()
        other.close()
        box.apply({refs[0]: Disposition.delete()})
        keys = [r.key for r in box.list_messages()]
    assert len(keys) == 6 and refs[0].key not in keys
    assert marker(_contents(mbox_path)[-1]) == 99


def test_a_locked_mbox_is_a_transient_error(mbox_path, monkeypatch):
    monkeypatch.setattr(local_module, "LOCK_WAIT_SECONDS", 0.3)
    holder = mailbox.mbox(mbox_path)
    holder.lock()
    try:
        with open_mailbox(_mbox_settings(mbox_path)) as box:
            with pytest.raises(LocalMailboxError) as caught:
                box.list_messages()
    finally:
        holder.unlock()
        holder.close()
    assert caught.value.transient
    assert "locked" in caught.value.message


def test_a_missing_mbox_file_is_reported(tmp_path):
    report = check_connection(_mbox_settings(tmp_path / "missing.mbox"))
    assert report.error_category == "local"
    assert "does not exist" in (report.error_message or "")


# ---------------------------------------------------------- mbox "unseen" (issue 12, item 11)
def _status_ro(raw: bytes) -> bytes:
    """A message as a mail client (or the sender) left it: already carrying Status: RO."""
    first, rest = raw.split(b"\n", 1)
    return first + b"\nStatus: RO\n" + rest


def test_mbox_unseen_lists_messages_a_mail_client_or_the_sender_marked_read(tmp_path):
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path, create=True)
    for i in range(4):
        box.add(_status_ro(_msg(i)) if i % 2 else _msg(i))
    box.flush()
    box.close()
    with open_mailbox(_mbox_settings(path, marker_secret="k")) as conn:
        state = conn.open_folder()
        fetched = [marker(m.raw) for m in conn.fetch(conn.list_messages())]
    assert fetched == [0, 1, 2, 3]
    assert state.unseen == 4


def test_mbox_unseen_skips_only_what_this_installation_marked_read(tmp_path):
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path, create=True)
    for i in range(3):
        box.add(_msg(i))
    box.flush()
    box.close()
    settings = _mbox_settings(path, marker_secret="secret-a")
    with open_mailbox(settings) as conn:
        refs = conn.list_messages()
        conn.apply({refs[0]: Disposition.mark_read()})
        left = [r.key for r in conn.list_messages()]
    assert left == [refs[1].key, refs[2].key]
    stored = _contents(path)[0]
    assert b"Status: RO" in stored and b"X-Bouncemgr-Seen:" in stored
    assert mbox_digest(stored) == refs[0].key
    # Another installation (another key) and a forged header do not count as "ours".
    with open_mailbox(_mbox_settings(path, marker_secret="secret-b")) as conn:
        assert len(conn.list_messages()) == 3
    forged = _msg(7).replace(b"\n", b"\nX-Bouncemgr-Seen: 0000\nStatus: RO\n", 1)
    box = mailbox.mbox(path)
    box.add(forged)
    box.flush()
    box.close()
    with open_mailbox(settings) as conn:
        assert len(conn.list_messages()) == 3


def test_mbox_mark_read_on_mixed_line_endings_keeps_every_other_header(tmp_path):
    # Hostile mail mixes CRLF and LF; marking it read must not swallow a header with the
    # Status line, or the key changes and the message comes back next run.
    path = tmp_path / "bounces.mbox"
    raw = b"X-Bouncemgr-Test: 1\r\nTo: a@example.org\r\nStatus: RO\nSubject: mixed\r\n\r\nbody\r\n"
    box = mailbox.mbox(path, create=True)
    box.add(raw)
    box.flush()
    box.close()
    settings = _mbox_settings(path, marker_secret="k")
    with open_mailbox(settings) as conn:
        [ref] = conn.list_messages()
        conn.apply({ref: Disposition.mark_read()})
        assert conn.list_messages() == []
        assert [r.key for r in conn.list_messages(unseen_only=False)] == [ref.key]
    stored = _contents(path)[0]
    assert b"Subject: mixed" in stored and b"To: a@example.org" in stored
    assert stored.rstrip(b"\r").endswith(b"body")
