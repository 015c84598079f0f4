"""Staff pages of a campaign: results (counts, breakdowns, chart, bounced recipients), CSV export,
preview, test send, the send confirmation, pause and the send progress (JSON)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bounces.incidents import selectors as incident_selectors
from bounces.models import Bounce
from contacts.importing import csv_cell

from . import guardrails, selectors, services
from . import preview as previews
from .charts import KIND_COLOURS, bounce_chart
from .forms import TestSendForm
from .merge import MergeError
from .models import Campaign, SentMessage

PAGE_SIZE = 50


class _Echo:
    """A file-like object whose write() returns the line: lets csv.writer feed a stream."""

    def write(self, value: str) -> str:
        return value


class _MergedPages:
    """What Paginator needs: a known count (from the aggregates, no COUNT query) and slices
    served by selectors.bounced_page."""

    def __init__(self, *, campaign_id: int, kind: str, count: int) -> None:
        self.campaign_id, self.kind, self._count = campaign_id, kind, count

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, item: slice) -> list:
        return selectors.bounced_page(
            campaign_id=self.campaign_id, kind=self.kind or None, offset=item.start or 0,
            limit=(item.stop or self._count) - (item.start or 0),
        )


def _kind_filter(request: HttpRequest) -> str:
    kind = request.GET.get("kind", "")
    return kind if kind in Bounce.Kind.values else ""


@staff_member_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def campaign_results(request: HttpRequest, pk: int) -> HttpResponse:
    """Sent / delivered / bounce counts, breakdowns, bounces over time, bounced recipients."""
    campaign = get_object_or_404(Campaign.objects.select_related("mailing_list"), pk=pk)
    stats, stale = services.campaign_stats(campaign=campaign)
    results = selectors.results_from(
        campaign=campaign, data=stats.data, computed_at=stats.computed_at, stale=stale
    )
    kind = _kind_filter(request)
    total = results.by_kind.get(kind, 0) if kind else results.total_bounces
    paginator = Paginator(_MergedPages(campaign_id=campaign.pk, kind=kind, count=total), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    kinds = [
        {
            "value": value, "label": label, "bounces": results.by_kind.get(value, 0),
            "recipients": results.by_kind_recipients.get(value, 0), "colour": KIND_COLOURS[value],
        }
        for value, label in Bounce.Kind.choices
    ]
    context = {
        "campaign": campaign,
        "results": results,
        "kinds": kinds,
        "kind": kind,
        "page": page,
        "chart": bounce_chart(results.timeline, results.timeline_unit),
        "skipped": selectors.skipped_recipients(campaign_id=campaign.pk),
        "now": timezone.now(),
        "progress": previews.send_progress(campaign=campaign),
        "may_send": request.user.has_perm("campaigns.send_campaign"),
        "guard": guardrails.campaign_state(campaign=campaign),
    }
    return render(request, "campaigns/results.html", context)


@staff_member_required
@require_POST
def resume_campaign(request: HttpRequest, pk: int) -> HttpResponse:
    """The operator's decision to resume a paused campaign (the guardrail's or anyone's):
    needs campaigns.send_campaign, like the admin's send action."""
    if not request.user.has_perm("campaigns.send_campaign"):
        raise PermissionDenied("Resuming a campaign needs the send permission.")
    campaign = get_object_or_404(Campaign, pk=pk)
    if campaign.status != Campaign.Status.PAUSED:
        messages.error(request, "Only a paused campaign can be resumed.")
        return redirect("campaigns:results", pk=campaign.pk)
    try:
        services.queue_campaign(campaign=campaign, actor=request.user)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Resumed: sending goes on; the guardrail's rates count from now.")
    return redirect("campaigns:results", pk=campaign.pk)


@staff_member_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def bounced_recipients_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every bounce of the campaign as CSV, streamed (filter with ?kind=)."""
    campaign = get_object_or_404(Campaign, pk=pk)
    kind = _kind_filter(request)
    rows = (
        selectors.bounced_recipients(campaign_id=campaign.pk, kind=kind or None)
        .select_related(None)
        .values_list(
            "bounced_at", "recipient", "kind", "reason", "status_code", "reply_code", "diagnostic",
            "remote_mta", "contact_id", "contact__email", "contact__status", "sent_message__token",
            "sent_message__message_id", "id",
        )
    )

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow([
            "bounced_at", "recipient", "kind", "reason", "status_code", "reply_code", "diagnostic",
            "remote_mta", "contact_id", "contact_email_now", "contact_status", "token", "message_id",
            "bounce_id",
        ])
        for row in rows.iterator(chunk_size=2000):
            yield writer.writerow([row[0].isoformat(), *(csv_cell(v) for v in row[1:])])

    suffix = f"-{kind}" if kind else ""
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-bounces{suffix}.csv"'
    return response


@csrf_exempt  # RFC 8058: the mailbox provider POSTs without a form token; the token is the key
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The recipient's unsubscribe link: GET asks to confirm, POST (the button, or a mailbox
    provider's one-click "List-Unsubscribe=One-Click") leaves the campaign's list."""
    from contacts.services import unsubscribe_recipient

    row = (SentMessage.objects.select_related("campaign__mailing_list")
           .filter(token=token).only("id", "contact_id", "email", "campaign__mailing_list__name",
                                     "campaign__mailing_list_id").first())
    if row is None or row.contact_id is None:
        return render(request, "campaigns/unsubscribe.html", {"unknown": True}, status=404)
    list_name = row.campaign.mailing_list.name if row.campaign.mailing_list_id else ""
    done = False
    if request.method == "POST":
        unsubscribe_recipient(contact_id=row.contact_id, list_id=row.campaign.mailing_list_id,
                              source="unsubscribe link")
        done = True
    return render(request, "campaigns/unsubscribe.html", {"done": done, "list_name": list_name})


# ---------------------------------------------------------------------------------------
# Before and while sending: preview, test send, confirmation, pause, progress.
# Viewing needs campaigns.view_campaign; anything that mails or stops mail needs
# campaigns.send_campaign (a view-only user sees no such button and gets 403 on the POST).

SENDABLE = (Campaign.Status.DRAFT, Campaign.Status.PAUSED, Campaign.Status.QUEUED, Campaign.Status.SENDING)


@staff_member_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def campaign_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The message as one of the campaign's recipients would get it (?contact=<id>, ?q= search)."""
    campaign = get_object_or_404(Campaign.objects.select_related("mailing_list"), pk=pk)
    search = request.GET.get("q", "")[:200]
    contact = previews.preview_contact(campaign=campaign, contact_id=request.GET.get("contact"))
    shown, problem = None, ""
    try:
        shown = previews.render_preview(campaign=campaign, contact=contact)
    except MergeError as exc:
        problem = f"A merge field does not compile: {exc}"
    may_send = request.user.has_perm("campaigns.send_campaign")
    context = {
        "campaign": campaign,
        "title": f"Preview of {campaign.name}",
        "contact": contact,
        "choices": previews.preview_recipients(campaign=campaign, search=search),
        "search": search,
        "preview": shown,
        "problem": problem or services.header_problem(campaign),
        "may_send": may_send,
        "test_form": TestSendForm(initial={"contact": contact.pk if contact else None,
                                           "to": getattr(request.user, "email", "")}) if may_send else None,
    }
    return render(request, "campaigns/preview.html", context)


@require_POST
@staff_member_required
@permission_required("campaigns.send_campaign", raise_exception=True)
def campaign_test_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Send one test message to the address given (not counted as a campaign send)."""
    campaign = get_object_or_404(Campaign.objects.select_related("mailing_list"), pk=pk)
    form = TestSendForm(request.POST)
    contact_id = request.POST.get("contact", "")
    back = redirect(f"{reverse('campaigns:preview', args=[campaign.pk])}?contact={contact_id if contact_id.isdigit() else ''}")
    if not form.is_valid():
        messages.error(request, "Test send: give one valid email address.")
        return back
    contact = previews.preview_contact(campaign=campaign, contact_id=form.cleaned_data["contact"])
    to = form.cleaned_data["to"]
    try:
        previews.send_test_message(campaign=campaign, to=to, contact=contact, actor=request.user)
    except (previews.TestSendError, MergeError) as exc:
        messages.error(request, f"The test message was not sent. {exc}")
    else:
        shown = f" as {contact.email} would get it" if contact else ""
        messages.success(request, f"Test message sent to {to}{shown} (not counted as a campaign send).")
    return back


@staff_member_required
@permission_required("campaigns.send_campaign", raise_exception=True)
def campaign_send(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation (how many get it, who is skipped and why); POST: queue it."""
    campaign = get_object_or_404(Campaign.objects.select_related("mailing_list"), pk=pk)
    if request.method == "POST":
        try:
            services.queue_campaign(campaign=campaign, actor=request.user)
        except services.CampaignError as exc:
            messages.error(request, f"Not sent: {exc}")
        else:
            messages.success(request, f"{campaign.name}: queued for sending. Progress shows below.")
        return redirect("campaigns:results", pk=campaign.pk)
    problem = services.header_problem(campaign)
    if campaign.mailing_list_id is None:
        problem = "The campaign has no mailing list: choose one in the campaign's settings."
    elif campaign.status not in SENDABLE:
        problem = f"A campaign that is {campaign.get_status_display().lower()} cannot be sent again."
    context = {
        "campaign": campaign,
        "title": f"Send {campaign.name}",
        "summary": previews.send_summary(campaign=campaign),
        "problem": problem,
        # issue 14: sending into an open incident pauses; say so before sending
        "incidents": incident_selectors.open_incidents(limit=10),
    }
    return render(request, "campaigns/confirm_send.html", context)


@require_POST
@staff_member_required
@permission_required("campaigns.send_campaign", raise_exception=True)
def campaign_pause(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop sending after the current message; Send resumes."""
    campaign = get_object_or_404(Campaign, pk=pk)
    try:
        services.pause_campaign(campaign=campaign)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{campaign.name}: paused. Send it again to resume.")
    return redirect("campaigns:results", pk=campaign.pk)


@never_cache
@staff_member_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def campaign_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """Send progress as JSON, polled by static/campaigns/progress.js while the campaign sends."""
    campaign = get_object_or_404(Campaign, pk=pk)
    return JsonResponse(previews.send_progress(campaign=campaign).as_dict())

