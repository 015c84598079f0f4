"""Admin views for a mailbox: "Test connection" and "Browse folders". An interface: imports
models, the intake's connection settings and the connectors.

Plain functions taking the ``ModelAdmin`` so ``MailboxAdmin.get_urls`` can wire them
through ``admin_site.admin_view`` (login, staff check, CSRF, never cached)::

    def get_urls(self):
        from functools import partial
        from django.urls import path
        from .views import mailboxes as mailbox_views

        def wrap(view):
            return self.admin_site.admin_view(partial(view, model_admin=self))

        return [
            path("<int:mailbox_id>/test/", wrap(mailbox_views.test_connection_view),
                 name="bounces_mailbox_test"),
            path("<int:mailbox_id>/folders/", wrap(mailbox_views.browse_folders_view),
                 name="bounces_mailbox_folders"),
            *super().get_urls(),
        ]

The views talk to the mail server inside the request, with a short timeout; the
password never reaches the template.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from bounces.intake.connections import mailbox_connection_settings
from bounces.mailboxes import (
    ConnectionReport,
    ConnectionSettings,
    FolderInfo,
    MailboxError,
    MessageSummary,
    check_connection,
    open_mailbox,
)
from bounces.models import Mailbox

# An admin page should not hang for the connector's default 30 s per step.
ADMIN_TIMEOUT = 15.0
# "Newest messages" of a folder: headers of at most this many (bounded work per page).
NEWEST_MESSAGES = 20


def _settings(mailbox: Mailbox) -> ConnectionSettings:
    settings = mailbox_connection_settings(mailbox)
    return dataclasses.replace(settings, timeout=min(settings.timeout, ADMIN_TIMEOUT))


def _context(
    request: HttpRequest, model_admin: admin.ModelAdmin, mailbox: Mailbox, title: str
) -> dict[str, Any]:
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "original": mailbox,
        "mailbox": mailbox,
        "title": title,
        "change_url": reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[mailbox.pk]
        ),
    }


def _failed_report(mailbox: Mailbox, exc: MailboxError) -> ConnectionReport:
    return ConnectionReport(
        ok=False,
        target=mailbox.name,
        error_category=str(exc.category),
        error_message=exc.message,
        hint=exc.hint or None,
        transient=exc.transient,
    )


def test_connection_view(
    request: HttpRequest, model_admin: admin.ModelAdmin, mailbox_id: int
) -> HttpResponse:
    """Log in to the mailbox and show capabilities and counts, or the precise error."""
    mailbox = get_object_or_404(Mailbox, pk=mailbox_id)
    if not model_admin.has_view_or_change_permission(request, mailbox):
        raise PermissionDenied
    try:
        report = check_connection(_settings(mailbox))
    except MailboxError as exc:  # the stored settings are incomplete
        report = _failed_report(mailbox, exc)
    context = _context(request, model_admin, mailbox, f"Test connection: {mailbox.name}")
    context.update(
        report=report,
        folders_url=reverse("admin:bounces_mailbox_folders", args=[mailbox.pk])
        if _has_url("admin:bounces_mailbox_folders", mailbox.pk)
        else "",
    )
    return TemplateResponse(request, "bounces/mailbox_test.html", context)


# Not a test, whatever pytest thinks of the name.
test_connection_view.__test__ = False  # type: ignore[attr-defined]


def browse_folders_view(
    request: HttpRequest, model_admin: admin.ModelAdmin, mailbox_id: int
) -> HttpResponse:
    """List the server's folders with counts; POST ``folder`` picks it for the mailbox;
    ``?messages=<folder>`` also lists that folder's newest messages (headers only, read with
    BODY.PEEK on a read-only EXAMINE: nothing is marked seen, nothing is processed)."""
    mailbox = get_object_or_404(Mailbox, pk=mailbox_id)
    if not model_admin.has_view_or_change_permission(request, mailbox):
        raise PermissionDenied
    can_change = model_admin.has_change_permission(request, mailbox)
    folders: list[FolderInfo] = []
    error: MailboxError | None = None
    wanted = request.GET.get("messages", "") if request.method == "GET" else ""
    newest: list[MessageSummary] | None = None
    newest_error: MailboxError | None = None
    try:
        with open_mailbox(_settings(mailbox)) as box:
            folders = box.list_folders()
            # Only a folder the server just listed is opened (a hand-made URL opens nothing else).
            if wanted and wanted in {f.name for f in folders if f.selectable}:
                try:
                    newest = box.newest_messages(wanted, limit=NEWEST_MESSAGES)
                except MailboxError as exc:
                    newest_error = exc
    except MailboxError as exc:
        error = exc

    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        chosen = request.POST.get("folder", "")
        # Only a folder the server just listed can be picked: no typos, no injection
        # of names that would fail at the next run.
        selectable = {f.name for f in folders if f.selectable}
        if error is not None or chosen not in selectable:
            messages.error(request, f"The folder {chosen!r} is not on the server.")
        else:
            mailbox.folder = chosen
            mailbox.save(update_fields=["folder", "updated_at"])
            messages.success(request, f"The mailbox now reads the folder {chosen!r}.")
            return HttpResponseRedirect(request.path)

    context = _context(request, model_admin, mailbox, f"Folders of {mailbox.name}")
    context.update(
        folders=folders,
        error=error,
        can_change=can_change,
        current_folder=mailbox.folder,
        messages_folder=wanted if newest is not None or newest_error is not None else "",
        newest=newest,
        newest_error=newest_error,
        newest_limit=NEWEST_MESSAGES,
        can_list_messages=mailbox.protocol == Mailbox.Protocol.IMAP,
    )
    return TemplateResponse(request, "bounces/mailbox_folders.html", context)


def _has_url(name: str, *args: Any) -> bool:
    try:
        reverse(name, args=args)
    except Exception:  # noqa: BLE001 - NoReverseMatch until the lead wires the URL
        return False
    return True

