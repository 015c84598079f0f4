"""Staff pages of contacts: a contact's bounce history and reset, CSV import, suppression export."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .forms import ImportContactsForm
from .importing import ImportFileError, csv_cell, import_contacts, open_text
from .models import Contact, MailingList, Suppression

HISTORY_LIMIT = 200


class _Echo:
    def write(self, value: str) -> str:
        return value


@staff_member_required
@permission_required("contacts.view_contact", raise_exception=True)
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Current status, counters, bounce history (address at the time), what was sent, audit trail."""
    from bounces.models import Bounce
    from campaigns.models import SentMessage

    contact = get_object_or_404(Contact, pk=pk)
    bounces = (
        Bounce.objects.filter(contact=contact)
        .select_related("campaign", "matched_rule")
        .order_by("-bounced_at")[:HISTORY_LIMIT]
    )
    sent = SentMessage.objects.filter(contact=contact).select_related("campaign").order_by("-created_at")[:50]
    context = {
        "contact": contact,
        "bounces": bounces,
        "bounce_total": Bounce.objects.filter(contact=contact).count(),
        "sent_messages": sent,
        "events": contact.events.select_related("actor")[:100],
        "subscriptions": contact.subscriptions.select_related("mailing_list"),
        "suppressions": _suppressions_of(contact),
        "history_limit": HISTORY_LIMIT,
    }
    return render(request, "contacts/detail.html", context)


def _suppressions_of(contact: Contact) -> list[Suppression]:
    from campaigns.selectors import domain_of

    addresses = {a.strip().lower() for a in (contact.email, contact.bounced_address) if a}
    domains = {domain_of(a) for a in addresses} - {""}
    return list(
        Suppression.objects.filter(kind=Suppression.Kind.ADDRESS, value__in=addresses)
        | Suppression.objects.filter(kind=Suppression.Kind.DOMAIN, value__in=domains)
    )


@require_POST
@staff_member_required
@permission_required("contacts.change_contact", raise_exception=True)
def reset_bounce(request: HttpRequest, pk: int) -> HttpResponse:
    """Reset the contact's bounce state once the address is fixed (contacts.services.reset_bounce_state)."""
    from .services import reset_bounce_state

    contact = get_object_or_404(Contact, pk=pk)
    reset_bounce_state(contact=contact, actor=request.user)
    messages.success(request, f"The bounce state of {contact} was reset.")
    return redirect("contacts:detail", pk=contact.pk)


@staff_member_required
@permission_required("contacts.add_contact", raise_exception=True)
def import_contacts_view(request: HttpRequest) -> HttpResponse:
    """Upload a CSV file into a list; the page then shows the report of every row not created."""
    report = None
    initial = {}
    list_id = request.GET.get("list", "")
    if list_id.isdigit():  # ?list= comes from links, but a hand-edited one must not be a 500
        initial["mailing_list"] = MailingList.objects.filter(pk=int(list_id)).first()
    form = ImportContactsForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            # One transaction: a file found broken half-way leaves nothing behind, not even
            # the new list it was meant to create.
            with transaction.atomic():
                mailing_list = form.cleaned_data["mailing_list"] or MailingList.objects.create(
                    name=form.cleaned_data["new_list"]
                )
                report = import_contacts(
                    stream=open_text(upload.file), mailing_list=mailing_list,
                    update_names=form.cleaned_data["update_names"], actor=request.user,
                    actor_label=f"CSV upload {upload.name}"[:200],
                )
        except ImportFileError as exc:
            form.add_error("file", f"{exc} Nothing was imported.")
        else:
            text = (f"{report.rows} rows read: {report.counts['created']} contacts created, "
                    f"{report.rejected} rejected.")
            if report.rejected:
                messages.warning(request, text + " See the rejected rows below.")
            else:
                messages.success(request, text)
    return render(request, "contacts/import.html", {"form": form, "report": report})


@staff_member_required
@permission_required("contacts.view_suppression", raise_exception=True)
def suppressions_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The whole suppression list as CSV, streamed."""
    rows = Suppression.objects.order_by("kind", "value").values_list(
        "kind", "value", "reason", "source", "note", "created_at"
    )

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(["kind", "value", "reason", "source", "note", "created_at"])
        for kind, value, reason, source, note, created_at in rows.iterator(chunk_size=2000):
            yield writer.writerow(
                [kind, csv_cell(value), reason, csv_cell(source), csv_cell(note), created_at.isoformat()]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="suppressions.csv"'
    return response
