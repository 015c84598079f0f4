"""The per-domain deliverability page (issue 14, part 5): receiving domain or provider group ×
kind over a date range, top diagnostics, one domain's days, the open incidents and guardrail
state; sortable, paged, filtered by dates and campaign; CSV streamed.
An interface: imports bounces' selectors, the incidents' reads and campaigns' guardrails."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from bounces import selectors
from bounces.incidents import selectors as incident_selectors
from bounces.incidents.providers import group_of_domain
from campaigns import guardrails
from campaigns.models import Campaign
from contacts.importing import csv_cell

PAGE_SIZE = 50
DEFAULT_DAYS = 30
CSV_CHUNK = 2000
KINDS = selectors.DELIVERABILITY_KINDS
COLUMNS = (("domain", "Domain"), ("total", "Bounces"), ("bounced", "Hard + blocked"),
           *((k, k.capitalize().replace("Autoreply", "Auto-reply")) for k in KINDS))


class _Echo:
    """A file-like object whose write() returns the line: lets csv.writer feed a stream."""

    def write(self, value: str) -> str:
        return value


def _days(value: str | None) -> int:
    """?days=: a whole number from 1 to 3650, else the default (a hand-edited URL never fails)."""
    try:
        days = int(value or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return min(max(days, 1), 3650)


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filters(request: HttpRequest) -> dict:
    """The page's filters from the query string, each checked: dates (from, to: whole days,
    else the last ?days=), campaign, domain search, grouping, sort."""
    days = _days(request.GET.get("days"))
    today = timezone.localdate()
    start, end = _date(request.GET.get("from")), _date(request.GET.get("to"))
    end = end or today
    start = start or end - dt.timedelta(days=days - 1)
    if start > end:
        start, end = end, start
    tz = timezone.get_current_timezone()
    try:
        campaign_id = int(request.GET.get("campaign") or 0) or None
    except ValueError:
        campaign_id = None
    sort = request.GET.get("sort") or "-total"
    if sort.lstrip("-") not in selectors.DELIVERABILITY_SORTS:
        sort = "-total"
    return {
        "days": days, "start": start, "end": end,
        "since": dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        "until": dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
        "campaign_id": campaign_id, "q": (request.GET.get("q") or "").strip()[:100],
        "by": "provider" if request.GET.get("by") == "provider" else "domain", "sort": sort,
    }


def _query(f: dict, **extra) -> str:
    params = {"from": f["start"].isoformat(), "to": f["end"].isoformat(), "sort": f["sort"], "by": f["by"]}
    if f["campaign_id"]:
        params["campaign"] = f["campaign_id"]
    if f["q"]:
        params["q"] = f["q"]
    params.update(extra)
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _by_provider(rows: Iterator[dict], sort: str) -> list[dict]:
    """Domain rows folded into provider groups (a known provider by name, else "other"):
    a handful of rows, whatever the number of domains."""
    groups: dict[str, dict] = defaultdict(lambda: {"total": 0, "bounced": 0, **{k: 0 for k in KINDS},
                                                   "domains": 0})
    for row in rows:
        group = groups[group_of_domain(row["domain"]) or "other"]
        group["domains"] += 1
        for name in ("total", "bounced", *KINDS):
            group[name] += row[name]
    out = [{"domain": name, **values} for name, values in groups.items()]
    field = sort.lstrip("-")
    out.sort(key=lambda r: (r[field], r["domain"]) if field != "domain" else r["domain"],
             reverse=sort.startswith("-"))
    return out


def _with_kind_counts(rows: list[dict]) -> list[dict]:
    for row in rows:
        row["kind_counts"] = [row[k] for k in KINDS]
    return rows


@staff_member_required
@permission_required("bounces.view_bounce", raise_exception=True)
def deliverability(request: HttpRequest) -> HttpResponse:
    """The page: the table (a page of domains or the provider groups), the open incidents and
    paused campaigns, top diagnostics, and the days of one domain (?domain=)."""
    f = _filters(request)
    rows = selectors.domains_by_kind(since=f["since"], until=f["until"], campaign_id=f["campaign_id"],
                                     domain_contains=f["q"], sort=f["sort"])
    if f["by"] == "provider":
        page = Paginator(_by_provider(rows.iterator(chunk_size=CSV_CHUNK), f["sort"]), PAGE_SIZE).get_page(
            request.GET.get("page"))
    else:
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = [row["domain"] for row in page.object_list] if f["by"] == "domain" else []
    state = guardrails.domain_state(domains=shown, campaign_id=f["campaign_id"], since=f["since"],
                                    until=f["until"])
    incidents = incident_selectors.open_incidents(limit=50)
    for row in page.object_list:
        row.update(state.get(row["domain"], {}))
        row["kind_counts"] = [row[k] for k in KINDS]
        row["bounce_percent"] = (round(100 * row["bounced"] / row["sent"], 2) if row.get("sent") else None)
        row["incident"] = next((i for i in incidents if i.key in (row["domain"], group_of_domain(row["domain"]))
                                or row["domain"] in (i.domains or ())), None)
    domain = (request.GET.get("domain") or "").strip().lower()[:255]
    headers = []
    for name, label in COLUMNS:
        if name == "domain" and f["by"] == "provider":
            label = "Provider group"
        current = f["sort"].lstrip("-") == name
        descending = f["sort"].startswith("-")
        next_sort = (name if descending else f"-{name}") if current else (name if name == "domain" else f"-{name}")
        headers.append({"name": name, "label": label, "url": "?" + _query(f, sort=next_sort),
                        "arrow": ("▼" if descending else "▲") if current else ""})
    return TemplateResponse(request, "bounces/pipeline/deliverability.html", {
        "title": "Deliverability", "f": f, "days": f["days"], "page": page, "headers": headers,
        "page_query": _query(f), "csv_query": _query(f),
        "campaigns": Campaign.objects.exclude(status=Campaign.Status.DRAFT).order_by("-created_at")
        .values_list("pk", "name")[:200],
        "incidents": incidents, "paused": guardrails.paused_campaigns(limit=50),
        "diagnostics": selectors.top_diagnostics(since=f["since"], until=f["until"], campaign_id=f["campaign_id"],
                                                 domain=domain),
        "domain": domain,
        "timeline": _with_kind_counts(selectors.domain_timeline(domain=domain, since=f["since"], until=f["until"],
                                                                campaign_id=f["campaign_id"]) if domain else []),
        "kinds": KINDS,
    })


@staff_member_required
@permission_required("bounces.view_bounce", raise_exception=True)
def deliverability_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every domain (or provider group) row of the filters as CSV, streamed from the database in
    chunks: memory stays bounded whatever the number of domains."""
    f = _filters(request)
    rows = selectors.domains_by_kind(since=f["since"], until=f["until"], campaign_id=f["campaign_id"],
                                     domain_contains=f["q"], sort=f["sort"])
    names = ["total", "bounced", *KINDS]

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(["provider_group" if f["by"] == "provider" else "domain", *names,
                               *(["domains"] if f["by"] == "provider" else ["provider_group"])])
        if f["by"] == "provider":
            for row in _by_provider(rows.iterator(chunk_size=CSV_CHUNK), f["sort"]):
                yield writer.writerow([row["domain"], *(row[n] for n in names), row["domains"]])
            return
        for row in rows.iterator(chunk_size=CSV_CHUNK):
            yield writer.writerow([csv_cell(row["domain"]), *(row[n] for n in names),
                                   group_of_domain(row["domain"])])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    name = f"deliverability-{f['by']}-{f['start']:%Y%m%d}-{f['end']:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
