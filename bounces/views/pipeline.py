"""Staff pages of the pipeline: a run's progress, the unexplained queue (deliverability: deliverability.py).
An interface: imports models, selectors, intake schedules and pipeline actions."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from bounces import selectors
from bounces.intake import schedules
from bounces.models import Bounce, Mailbox, ProcessingRun
from bounces.pipeline import actions
from contacts.models import Contact

PROCESS = "bounces.process_mailbox"  # custom permission (Mailbox.Meta.permissions)
UNEXPLAINED_PAGE = 100
RUNS_PAGE = 50


@staff_member_required
@permission_required("bounces.view_processingrun", raise_exception=True)
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run's progress; the page polls `run_status` until the run has finished."""
    run = get_object_or_404(ProcessingRun.objects.select_related("mailbox"), pk=run_id)
    return TemplateResponse(request, "bounces/pipeline/run.html",
                            {"run": run, "progress": selectors.run_progress(run=run)})


@staff_member_required
@permission_required("bounces.view_processingrun", raise_exception=True)
def run_status(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(ProcessingRun.objects.select_related("mailbox"), pk=run_id)
    return JsonResponse(selectors.run_progress(run=run))


@staff_member_required
@require_POST
def process_now(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Queue a run of one mailbox and show its page."""
    if not request.user.has_perm(PROCESS):
        messages.error(request, "You may not process mailboxes.")
        return redirect("admin:bounces_mailbox_changelist")
    mailbox = get_object_or_404(Mailbox, pk=mailbox_id)
    run = schedules.queue_mailbox_run(mailbox=mailbox, actor=request.user)
    return redirect("bounces:pipeline_run", run_id=run.pk)


@staff_member_required
@require_POST
def process_all_now(request: HttpRequest) -> HttpResponse:
    """Queue a run of every enabled mailbox; show the run list."""
    if not request.user.has_perm(PROCESS):
        messages.error(request, "You may not process mailboxes.")
        return redirect("admin:bounces_mailbox_changelist")
    runs = [schedules.queue_mailbox_run(mailbox=m, actor=request.user)
            for m in Mailbox.objects.filter(enabled=True)]
    if not runs:
        messages.warning(request, "No mailbox is enabled: nothing to process.")
        return redirect("admin:bounces_mailbox_changelist")
    if len(runs) == 1:
        return redirect("bounces:pipeline_run", run_id=runs[0].pk)
    messages.success(request, f"Queued {len(runs)} runs.")
    return redirect("bounces:pipeline_runs")


@staff_member_required
@permission_required("bounces.view_processingrun", raise_exception=True)
def run_list(request: HttpRequest) -> HttpResponse:
    try:
        page = max(int(request.GET.get("page") or 1), 1)
    except ValueError:
        page = 1
    start = (page - 1) * RUNS_PAGE
    # one row more than shown says whether an older page exists (no count over all runs)
    runs = list(ProcessingRun.objects.select_related("mailbox").order_by("-id")[start:start + RUNS_PAGE + 1])
    return TemplateResponse(request, "bounces/pipeline/runs.html", {
        "runs": runs[:RUNS_PAGE], "page": page, "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if len(runs) > RUNS_PAGE else None,
    })


@staff_member_required
@permission_required("bounces.view_bounce", raise_exception=True)
def unexplained(request: HttpRequest) -> HttpResponse:
    """The unmatched / unexplained queue with its three ways out."""
    queue = selectors.unexplained_bounces()
    try:
        page = max(int(request.GET.get("page") or 1), 1)
    except ValueError:
        page = 1
    start = (page - 1) * UNEXPLAINED_PAGE
    bounces = selectors.attach_raw_heads(list(queue[start:start + UNEXPLAINED_PAGE]))
    # the count only when there may be more: the usual short queue costs no extra query
    full = len(bounces) == UNEXPLAINED_PAGE or page > 1
    total = queue.count() if full else len(bounces)
    for bounce in bounces:
        if bounce.recipient and bounce.diagnostic:
            query = {"pattern": bounce.diagnostic[:120], "section": "diagnostic"}
        else:
            # nothing decoded: the subject is what a rule can key on
            query = {"pattern": _subject(bounce)[:120], "section": "subject"}
        bounce.rule_url = reverse("bounces:rule_new") + "?" + urlencode(query)
    return TemplateResponse(request, "bounces/pipeline/unexplained.html", {
        "bounces": bounces, "total": total, "kinds": Bounce.Kind.choices, "page": page,
        "first_shown": start + 1, "last_shown": start + len(bounces),
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if start + len(bounces) < total else None,
    })


def _subject(bounce: Bounce) -> str:
    from email.header import decode_header, make_header
    from email.parser import BytesHeaderParser

    raw = bytes(bounce.raw_head or b"") if bounce.raw_message_id else b""  # selectors.unexplained_bounces
    try:
        value = BytesHeaderParser().parsebytes(raw).get("Subject", "")
        return str(make_header(decode_header(value))).strip()
    except Exception:  # noqa: BLE001 - a hostile header only loses the pre-filled pattern
        return ""


@staff_member_required
@require_POST
def unexplained_action(request: HttpRequest, bounce_id: int) -> HttpResponse:
    if not request.user.has_perm("bounces.change_bounce"):
        messages.error(request, "You may not change bounces.")
        return redirect("bounces:pipeline_unexplained")
    bounce = get_object_or_404(Bounce, pk=bounce_id)
    action = request.POST.get("action")
    if action == "not_bounce":
        actions.mark_not_a_bounce(bounce=bounce, actor=request.user)
        messages.success(request, f"Bounce #{bounce.pk} marked as not a bounce.")
    elif action == "assign":
        email = request.POST.get("email", "").strip()
        contact = Contact.objects.by_email(email).first() if email else None
        if contact is None:
            messages.error(request, f"No contact with the address {email!r}.")
        else:
            kind = request.POST.get("kind") or None
            if kind not in dict(Bounce.Kind.choices):
                kind = None
            actions.assign_bounce(bounce=bounce, contact=contact, kind=kind, actor=request.user)
            messages.success(request, f"Bounce #{bounce.pk} assigned to {contact}.")
    else:
        messages.error(request, "Unknown action.")
    return redirect("bounces:pipeline_unexplained")
