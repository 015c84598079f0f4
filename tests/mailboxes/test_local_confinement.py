"""Local mailbox paths are confined to the configured roots (issue 12, item 2).

A staff user could point an mbox mailbox at any file (``/etc/shadow``), or "move" messages
to an absolute path or through ``..`` and so write files anywhere the process may write
(a ``.pth`` file in site-packages ran code at the next start). Every path the local
connectors touch must resolve inside one of ``local_roots``, be of the right kind (a
regular file for mbox, a directory for maildir) and be refused before anything is opened,
locked or created.
"""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

import pytest

from bounces.mailboxes import (
    ConnectionSettings,
    Disposition,
    LocalMailboxError,
    check_connection,
    open_mailbox,
)
from bounces.mailboxes.local import check_local_path, check_move_target

from .helpers import load_bounce_samples, numbered

SAMPLES = load_bounce_samples()


def _msg(i: int) -> bytes:
    return numbered(SAMPLES[i % len(SAMPLES)], i).replace(b"\r\n", b"\n")


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside the root, standing for /etc/shadow or site-packages."""
    path = tmp_path / "secret" / "shadow"
    path.parent.mkdir()
    box = mailbox.mbox(path, create=True)
    box.add(_msg(0))
    box.flush()
    box.close()
    return path


def _mbox(root: Path, path: Path | str, **kw) -> ConnectionSettings:
    return ConnectionSettings(protocol="mbox", path=str(path), local_roots=(str(root),), **kw)


def _inside_mbox(root: Path, name: str = "bounces.mbox", count: int = 2) -> Path:
    path = root / name
    box = mailbox.mbox(path, create=True)
    for i in range(count):
        box.add(_msg(i))
    box.flush()
    box.close()
    return path


def _no_lock_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".lock")]


@pytest.mark.parametrize("target", ["outside", "/etc/shadow"])
def test_test_connection_on_a_file_outside_the_roots_fails_clearly_and_leaves_no_lock(
    root, outside, target
):
    path = outside if target == "outside" else Path(target)
    before = sorted(os.listdir(path.parent))
    report = check_connection(_mbox(root, path))
    assert not report.ok
    assert report.error_category == "local"
    assert "outside" in (report.error_message or "")
    assert sorted(os.listdir(path.parent)) == before  # no .lock, nothing created
    assert "Connection OK" not in report.as_text()


def test_a_path_with_dotdot_is_refused_even_when_it_lands_inside(root):
    _inside_mbox(root)
    (root / "sub").mkdir()
    report = check_connection(_mbox(root, root / "sub" / ".." / "bounces.mbox"))
    assert report.error_category == "local" and ".." in (report.error_message or "")


def test_a_relative_path_is_taken_inside_the_first_root(root):
    _inside_mbox(root)
    report = check_connection(_mbox(root, "bounces.mbox"))
    assert report.ok, report.as_text()


def test_a_symlink_that_escapes_the_root_is_refused(root, outside):
    (root / "link.mbox").symlink_to(outside)
    report = check_connection(_mbox(root, root / "link.mbox"))
    assert report.error_category == "local" and "outside" in (report.error_message or "")
    assert _no_lock_files(outside.parent)


def test_a_special_file_is_not_an_mbox(root):
    fifo = root / "pipe.mbox"
    os.mkfifo(fifo)
    report = check_connection(_mbox(root, fifo))
    assert report.error_category == "local" and "regular file" in (report.error_message or "")


def test_without_configured_roots_no_local_path_is_allowed(root):
    path = _inside_mbox(root)
    report = check_connection(ConnectionSettings(protocol="mbox", path=str(path)))
    assert report.error_category == "local"
    assert "no folder is allowed" in (report.error_message or "").lower()


@pytest.mark.parametrize(
    "target", ["/tmp/evil.mbox", "../escaped.mbox", "sub/../../escaped.mbox", "a/b.mbox", "..", ""]
)
def test_moving_to_an_absolute_or_climbing_target_is_refused_and_writes_nothing(
    root, tmp_path, target
):
    path = _inside_mbox(root)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with open_mailbox(_mbox(root, path)) as box:
        refs = box.list_messages()
        with pytest.raises(LocalMailboxError):
            box.apply({refs[0]: Disposition.move(target or "x/")})
        assert len(box.list_messages()) == 2  # nothing removed either
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/evil.mbox").exists()


def test_a_move_target_that_is_a_symlink_out_of_the_root_is_refused(root, outside):
    path = _inside_mbox(root)
    (root / "done.mbox").symlink_to(outside)
    size = outside.stat().st_size
    with open_mailbox(_mbox(root, path)) as box:
        refs = box.list_messages()
        with pytest.raises(LocalMailboxError):
            box.apply({refs[0]: Disposition.move("done.mbox")})
    assert outside.stat().st_size == size


def test_a_plain_move_target_next_to_the_mbox_still_works(root):
    path = _inside_mbox(root)
    with open_mailbox(_mbox(root, path)) as box:
        refs = box.list_messages()
        box.apply({refs[0]: Disposition.move("processed.mbox")})
    assert (root / "processed.mbox").is_file()


def test_pure_checks_used_by_the_form_and_the_system_checks(root, outside):
    _inside_mbox(root)
    assert check_local_path("bounces.mbox", "mbox", [str(root)]) is None
    assert "outside" in (check_local_path(str(outside), "mbox", [str(root)]) or "")
    assert "outside" in (check_local_path("/etc/shadow", "mbox", [str(root)]) or "")
    assert check_move_target("Processed", "maildir") is None
    assert check_move_target("done.mbox", "mbox") is None
    for bad in ("/etc", "../x", "a/../../b", ".", "..", "a\x00b"):
        assert check_move_target(bad, "mbox"), bad
        assert check_move_target(bad, "maildir"), bad


# ================================================================== maildir
@pytest.fixture
def maildir(root) -> Path:
    box = mailbox.Maildir(root / "Maildir", create=True)
    for i in range(2):
        box.add(_msg(i))
    box.add_folder("Processed")
    return root / "Maildir"


def _maildir(root: Path, path: Path, **kw) -> ConnectionSettings:
    return ConnectionSettings(protocol="maildir", path=str(path), local_roots=(str(root),), **kw)


def test_a_maildir_outside_the_roots_is_refused(tmp_path, root):
    elsewhere = mailbox.Maildir(tmp_path / "Elsewhere", create=True)
    elsewhere.add(_msg(0))
    report = check_connection(_maildir(root, tmp_path / "Elsewhere"))
    assert report.error_category == "local" and "outside" in (report.error_message or "")


@pytest.mark.parametrize("folder", ["./../../secret", "/etc", "../x", "a/b"])
def test_a_maildir_folder_name_cannot_climb_out(root, maildir, folder):
    with open_mailbox(_maildir(root, maildir)) as box:
        box.open_folder()
        refs = box.list_messages()
        with pytest.raises(LocalMailboxError):
            box.apply({refs[0]: Disposition.move(folder)})
        with pytest.raises(LocalMailboxError):
            box.open_folder(folder)
    assert len(list((maildir / "new").iterdir())) == 2


def test_a_symlinked_message_file_is_not_read(root, maildir, outside):
    (maildir / "new" / "1700000000.M1P1.host").symlink_to(outside)
    with open_mailbox(_maildir(root, maildir)) as box:
        box.open_folder()
        raws = [m.raw for m in box.fetch(box.list_messages())]
    assert len(raws) == 2
    assert all(outside.read_bytes() not in raw for raw in raws)


def test_a_fifo_among_the_messages_is_skipped_without_blocking(root, maildir):
    os.mkfifo(maildir / "new" / "1700000000.M2P1.host")
    with open_mailbox(_maildir(root, maildir)) as box:
        box.open_folder()
        assert len(list(box.fetch(box.list_messages()))) == 2


def test_a_subfolder_symlinked_out_of_the_root_is_not_listed_or_used(root, maildir, tmp_path):
    elsewhere = mailbox.Maildir(tmp_path / "Elsewhere", create=True)
    elsewhere.add(_msg(5))
    (maildir / ".Leak").symlink_to(tmp_path / "Elsewhere")
    report = check_connection(_maildir(root, maildir))
    assert report.ok, report.as_text()
    assert [f.name for f in report.folders] == ["INBOX", "Processed"]
    with open_mailbox(_maildir(root, maildir)) as box:
        with pytest.raises(LocalMailboxError):
            box.open_folder("Leak")
