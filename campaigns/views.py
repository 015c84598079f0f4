"""Staff pages of a campaign: results (counts, breakdowns, chart, bounced recipients), CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bounces.models import Bounce
from contacts.importing import csv_cell

from . import selectors, services
from .charts import KIND_COLOURS, bounce_chart
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
    }
    return render(request, "campaigns/results.html", context)


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
