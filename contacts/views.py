"""Staff pages of contacts: a contact's bounce history and reset, CSV import, suppression export."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import import_jobs
from .forms import ImportContactsForm
from .importing import csv_cell
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
    """Upload a CSV file into a list. The file is stored first, then imported: in the request
    when small (CONTACTS_IMPORT_INLINE_MAX_BYTES), else by a background task; either way the
    job's page shows the progress and then the report."""
    initial = {}
    list_id = request.GET.get("list", "")
    if list_id.isdigit():  # ?list= comes from links, but a hand-edited one must not be a 500
        initial["mailing_list"] = MailingList.objects.filter(pk=int(list_id)).first()
    form = ImportContactsForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = import_jobs.start_import_job(
            upload=upload, mailing_list=form.cleaned_data["mailing_list"], new_list=form.cleaned_data["new_list"],
            update_names=form.cleaned_data["update_names"], user=request.user,
        )
        if upload.size > import_jobs.inline_max_bytes():
            import_jobs.queue_import_job(job)
            return redirect("contacts:import_job", job_id=job.id)
        job = import_jobs.run_import_job(job.id, actor=request.user)
        if job.status != import_jobs.Status.FAILED:
            return redirect("contacts:import_job", job_id=job.id)
        form.add_error("file", job.error)  # the file cannot be read at all: say so on the form
    return render(request, "contacts/import.html", {"form": form, "title": "Import contacts"})


def _own_job(request: HttpRequest, job_id: str) -> import_jobs.ImportJob:
    """The job, if the user started it (or is a superuser); 404 otherwise."""
    job = import_jobs.load_job(job_id)
    if job is None or (job.user_id != request.user.pk and not request.user.is_superuser):
        raise Http404("No such import.")
    return job


@never_cache
@staff_member_required
@permission_required("contacts.add_contact", raise_exception=True)
def import_job_view(request: HttpRequest, job_id: str) -> HttpResponse:
    """An import's progress (the page refreshes itself while it runs), then its report."""
    job = _own_job(request, job_id)
    mailing_list = MailingList.objects.filter(pk=job.list_id).first() if job.list_id else None
    return render(request, "contacts/import_job.html",
                  {"job": job, "mailing_list": mailing_list, "title": f"Import of {job.file_name}"})


@staff_member_required
@permission_required("contacts.add_contact", raise_exception=True)
def import_job_report(request: HttpRequest, job_id: str) -> FileResponse:
    """Every row of the import that was not simply created, with its line number (CSV)."""
    job = _own_job(request, job_id)
    path = import_jobs.report_path(job)
    if not path.exists():
        raise Http404("No report yet.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"import-{job.id[:8]}-report.csv",
                        content_type="text/csv; charset=utf-8")


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
