"""Validation of mailbox settings: used by the admin form and by Django's system checks.
Imports models only.

A setting that cannot work (a POP3 mailbox told to move messages to a folder, a move
without a target folder, a remote mailbox without a host) is refused when the operator
saves it, and reported by `manage.py check` for mailboxes created any other way, so it
never surfaces only as a failed run at 3 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import checks
from django.db import DatabaseError

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


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
    if mailbox.auth == Mailbox.Auth.XOAUTH2 and not (mailbox.oauth2_token_url and mailbox.oauth2_client_id):
        problems.append(Problem("oauth2_token_url", "OAuth2 login needs the token URL and the client id.",
                                "See docs/mailboxes.md for Gmail and Office 365.", "bounces.E005"))
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
