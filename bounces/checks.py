"""Validation of mailbox settings: used by the admin form and by Django's system checks.
Imports models only.

A setting that cannot work (a POP3 mailbox told to move messages to a folder, a move
without a target folder, a remote mailbox without a host) or is not allowed (a local path
outside LOCAL_MAILBOX_ROOTS, a move target that is a path) is refused when the operator
saves it, and reported by `manage.py check` for mailboxes created any other way, so it
never surfaces only as a failed run at 3 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from .mailboxes.local import check_local_path, check_move_target

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
LOCAL_HINT = "Local mailboxes must live inside LOCAL_MAILBOX_ROOTS ({roots}); see docs/mailboxes.md."


@dataclass(frozen=True)
class Problem:
    field: str | None
    message: str
    hint: str
    id: str
    warning: bool = False


def mailbox_problems(mailbox) -> list[Problem]:
    """What is wrong with a (possibly unsaved) Mailbox's settings."""
    from .models import Disposition, Mailbox

    problems: list[Problem] = []
    remote = mailbox.protocol in (Mailbox.Protocol.IMAP, Mailbox.Protocol.POP3)
    if remote and not mailbox.host:
        problems.append(Problem("host", "An IMAP or POP3 mailbox needs a host.",
                                "Enter the server name, e.g. imap.example.com.", "bounces.E001"))
    if not remote and not mailbox.path:
        problems.append(Problem("path", "A local mbox or maildir mailbox needs a path.",
                                "Enter the mbox file or the maildir folder.", "bounces.E002"))
    roots = [str(r) for r in settings.LOCAL_MAILBOX_ROOTS]
    local_hint = LOCAL_HINT.format(roots=", ".join(roots) or "none configured")
    if not remote and mailbox.path:
        # Issue 12, item 2: a local path is file access on this machine; only the roots.
        problem = check_local_path(mailbox.path, mailbox.protocol, roots, must_exist=False)
        if problem:
            problems.append(Problem("path", problem, local_hint, "bounces.E006"))
        elif check_local_path(mailbox.path, mailbox.protocol, roots):
            problems.append(Problem("path", check_local_path(mailbox.path, mailbox.protocol, roots) or "",
                                    "Create it, or check the path.", "bounces.W003", warning=True))
    for action_field, folder_field in (("processed_action", "processed_folder"),
                                       ("unmatched_action", "unmatched_folder")):
        if getattr(mailbox, action_field) != Disposition.MOVE:
            continue
        if mailbox.protocol == Mailbox.Protocol.POP3:
            problems.append(Problem(action_field, "POP3 has no folders: messages cannot be moved.",
                                    "Choose delete, mark read or leave, or use IMAP.", "bounces.E003"))
        elif not getattr(mailbox, folder_field):
            problems.append(Problem(folder_field, "Moving messages needs a target folder.",
                                    "Pick one with 'Browse folders'.", "bounces.E004"))
        elif not remote:
            problem = check_move_target(getattr(mailbox, folder_field), mailbox.protocol)
            if problem:
                problems.append(Problem(folder_field, problem, local_hint, "bounces.E007"))
    if mailbox.auth == Mailbox.Auth.XOAUTH2 and not (mailbox.oauth2_token_url and mailbox.oauth2_client_id):
        problems.append(Problem("oauth2_token_url", "OAuth2 login needs the token URL and the client id.",
                                "See docs/mailboxes.md for Gmail and Office 365.", "bounces.E005"))
    if remote and mailbox.pk and mailbox.secrets_fingerprint and not mailbox.secrets_bound():
        problems.append(Problem(None, "The stored password or OAuth2 secrets were entered for another "
                                "server, port, user or token URL; they are not sent to the current one.",
                                "Enter them again in the mailbox settings.", "bounces.W002", warning=True))
    if remote and mailbox.security == Mailbox.Security.NONE and mailbox.host not in LOOPBACK_HOSTS:
        problems.append(Problem("security", "The password would travel in clear text to a remote server.",
                                "Use SSL/TLS or STARTTLS unless the network is trusted.", "bounces.W001",
                                warning=True))
    return problems


@checks.register("bounces")
def check_mailboxes(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """System check over the stored mailboxes (skipped while the tables do not exist yet)."""
    from .models import Mailbox

    messages: list[checks.CheckMessage] = []
    from bouncemgr.checks import encrypted_fields

    try:
        # Without the secrets: a lost FIELD_ENCRYPTION_KEY is bouncemgr.W001's to report,
        # not a traceback here that stops migrate (issue 12).
        mailboxes = list(Mailbox.objects.defer(*encrypted_fields(Mailbox)))
    except DatabaseError:  # before `migrate`, or no database reachable: nothing to check
        return messages
    for mailbox in mailboxes:
        for problem in mailbox_problems(mailbox):
            cls = checks.Warning if problem.warning else checks.Error
            messages.append(cls(f"Mailbox {mailbox.name!r}: {problem.message}", hint=problem.hint,
                                obj=mailbox, id=problem.id))
    return messages


@checks.register("bounces")
def check_mailbox_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """LOCAL_MAILBOX_ROOTS must be absolute: a relative root would move with the working directory."""
    return [
        checks.Error(f"LOCAL_MAILBOX_ROOTS entry {root!r} is not an absolute path.",
                     hint="Give the full path of each folder local mailboxes may live in.", id="bounces.E008")
        for root in settings.LOCAL_MAILBOX_ROOTS if not str(root).startswith("/")
    ]
