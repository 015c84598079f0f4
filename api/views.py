"""The REST API (v1). Views fetch by id and call services and selectors; see docs/api.md."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bounces.incidents import selectors as incident_selectors
from bounces.models import Bounce, Incident, Mailbox, ProcessingRun
from bounces.rules.models import BounceRule
from campaigns.models import Campaign
from campaigns.selectors import suppressed_among
from contacts import services as contact_services
from contacts.models import Contact, Suppression

from . import selectors
from . import serializers as s
from .errors import ApiError
from .models import ApiKey
from .pagination import BounceCursorPagination

RAW_MAX_BYTES = 5 * 1024 * 1024  # raw message returned by ?raw=true (the rest is cut)


def _actor(request: Request) -> tuple[object, str]:
    """(user, label) for audit rows: the key's owner and which key."""
    if isinstance(request.auth, ApiKey):
        return request.user, f"API key {request.auth.prefix}"
    return request.user, "API (session)"


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(f"'{name}' must be an integer.", code="invalid_parameter") from None


def _moment(request: Request, name: str, *, end: bool = False) -> dt.datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ApiError(f"'{name}' must be a date (YYYY-MM-DD) or an ISO 8601 time.", code="invalid_parameter")
        moment = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time())
    return moment if moment.tzinfo else make_aware(moment)


# --------------------------------------------------------------------------- bounces
_BOUNCE_FILTERS = [
    OpenApiParameter("kind", str, enum=Bounce.Kind.values),
    OpenApiParameter("reason", str, description="Engine or rule reason, e.g. userunknown, mailboxfull."),
    OpenApiParameter("state", str, enum=Bounce.State.values),
    OpenApiParameter("mailbox", int), OpenApiParameter("campaign", int), OpenApiParameter("contact", int),
    OpenApiParameter("recipient", str, description="Exact address (case-insensitive)."),
    OpenApiParameter("since", str, description="Bounced at or after (date or ISO time)."),
    OpenApiParameter("until", str, description="Bounced before (a date includes that day)."),
]


@extend_schema(parameters=_BOUNCE_FILTERS)
class BounceList(generics.ListAPIView):
    """Bounces, newest first (cursor pagination)."""

    queryset = Bounce.objects.all()
    serializer_class = s.BounceSerializer
    pagination_class = BounceCursorPagination

    def get_queryset(self) -> QuerySet[Bounce]:
        qs = Bounce.objects.all()
        params = self.request.query_params
        for name in ("kind", "reason", "state"):
            if params.get(name):
                qs = qs.filter(**{name: params[name]})
        for name in ("mailbox", "campaign", "contact"):
            value = _int_param(self.request, name)
            if value is not None:
                qs = qs.filter(**{f"{name}_id": value})
        if params.get("recipient"):
            qs = qs.filter(recipient__iexact=params["recipient"].strip())
        since, until = _moment(self.request, "since"), _moment(self.request, "until", end=True)
        if since:
            qs = qs.filter(bounced_at__gte=since)
        if until:
            qs = qs.filter(bounced_at__lt=until)
        return qs


@extend_schema(parameters=[OpenApiParameter("raw", bool, description="Include the raw message (up to 5 MB).")])
class BounceDetail(generics.RetrieveAPIView):
    """One bounce with the engine's report of its stored message (parsed again now), its MIME
    parts (described, never opened) and, on request, the raw message."""

    queryset = Bounce.objects.all()
    serializer_class = s.BounceDetailSerializer

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        from bounces.parsing import parse_bounce
        from bounces.pipeline.processing import parse_options
        from bounces.views.detail import describe_parts

        bounce = get_object_or_404(Bounce.objects.select_related("raw_message"), pk=kwargs["pk"])
        raw = bytes(bounce.raw_message.raw) if bounce.raw_message_id else None
        data = s.BounceSerializer(bounce).data
        data["diagnostic"] = bounce.diagnostic
        data["report"] = None
        data["parts"] = []
        data["raw_size"] = len(raw) if raw is not None else None
        if raw:
            result = parse_bounce(raw, parse_options())
            data["report"] = {
                "kind": str(result.kind), "mta": result.mta, "subject": result.subject,
                "from_address": result.from_address, "message_id": result.message_id, "token": result.token,
                "error": result.error,
                "recipients": [
                    {"recipient": r.recipient, "action": r.action, "status": r.status, "replycode": r.replycode,
                     "diagnostic": r.diagnostic, "remote_mta": r.remote_mta, "reason": r.reason, "hard": r.hard,
                     "permanent": r.permanent, "category": str(r.category), "feedback_type": r.feedback_type}
                    for r in result.recipients
                ],
            }
            data["parts"] = [
                {"index": p.index, "content_type": p.content_type, "filename": p.filename, "size": p.size,
                 "is_attachment": p.is_attachment}
                for p in describe_parts(raw)
            ]
        if _flag(request, "raw"):
            data["raw"] = raw[:RAW_MAX_BYTES].decode("utf-8", "replace") if raw else None
            data["raw_truncated"] = bool(raw) and len(raw) > RAW_MAX_BYTES
        return Response(data)


# --------------------------------------------------------------------------- contacts
def _with_suppressions(view, contacts: list[Contact]) -> dict:
    return {**view.get_serializer_context(), "suppressions": suppressed_among(
        (c.email or c.bounced_address) for c in contacts)}


@extend_schema(parameters=[
    OpenApiParameter("email", str, description="Exact address (case-insensitive)."),
    OpenApiParameter("status", str, enum=Contact.Status.values),
    OpenApiParameter("has_bounced", bool),
])
class ContactList(generics.ListAPIView):
    """Contacts and their bounce state (counters, flags, suppression)."""

    queryset = Contact.objects.all()
    serializer_class = s.ContactSerializer

    def get_queryset(self) -> QuerySet[Contact]:
        qs = Contact.objects.order_by("pk")
        params = self.request.query_params
        if params.get("email"):
            qs = qs.by_email(params["email"])
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        if params.get("has_bounced"):
            qs = qs.filter(has_bounced=_flag(self.request, "has_bounced"))
        return qs

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        serializer = s.ContactSerializer(page, many=True, context=_with_suppressions(self, page))
        return self.get_paginated_response(serializer.data)


class ContactDetail(generics.RetrieveAPIView):
    queryset = Contact.objects.all()
    serializer_class = s.ContactSerializer

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        contact = self.get_object()
        return Response(s.ContactSerializer(contact, context=_with_suppressions(self, [contact])).data)


# --------------------------------------------------------------------------- suppressions
@extend_schema(parameters=[
    OpenApiParameter("kind", str, enum=Suppression.Kind.values),
    OpenApiParameter("reason", str, enum=Suppression.Reason.values),
    OpenApiParameter("value", str, description="Exact address or domain."),
])
class SuppressionList(generics.ListCreateAPIView):
    """The suppressions in force. POST adds one entry (adding what is already there returns it, 200)."""

    queryset = Suppression.objects.all()
    serializer_class = s.SuppressionSerializer

    def get_queryset(self) -> QuerySet[Suppression]:
        qs = Suppression.objects.active().order_by("pk")
        params = self.request.query_params
        for name in ("kind", "reason"):
            if params.get(name):
                qs = qs.filter(**{name: params[name]})
        if params.get("value"):
            qs = qs.filter(value=params["value"].strip().lower())
        return qs

    @extend_schema(responses={200: s.SuppressionSerializer, 201: s.SuppressionSerializer})
    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kind = serializer.validated_data.get("kind", Suppression.Kind.ADDRESS)
        actor, label = _actor(request)
        change = contact_services.add_suppressions(
            values=[serializer.validated_data["value"]], kind=kind,
            reason=serializer.validated_data.get("reason", Suppression.Reason.MANUAL),
            note=serializer.validated_data.get("note", ""), actor=actor, actor_label=label,
        )
        if change.invalid:
            raise ApiError("Not a valid address (or domain, with kind=domain).", code="invalid",
                           details={"value": ["Enter a valid address or domain."]})
        value = (change.changed or change.unchanged)[0]
        entry = Suppression.objects.get(kind=kind, value=value)
        code = status.HTTP_201_CREATED if change.changed else status.HTTP_200_OK
        return Response(s.SuppressionSerializer(entry).data, status=code)


class SuppressionDetail(generics.RetrieveDestroyAPIView):
    """One entry; DELETE releases it (the address may be mailed again; kept in the history and
    undoable in the admin)."""

    queryset = Suppression.objects.all()
    serializer_class = s.SuppressionSerializer
    perms = {"GET": ["contacts.view_suppression"], "OPTIONS": ["contacts.view_suppression"],
             "DELETE": ["contacts.release_suppression"]}

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        entry = self.get_object()
        actor, label = _actor(request)
        contact_services.release_suppressions(suppression_ids=[entry.pk], actor=actor, note=f"via {label}")
        return Response(status=status.HTTP_204_NO_CONTENT)


class SuppressionBulk(APIView):
    """Add or release many addresses at once; `preview` only counts. Idempotent."""

    queryset = Suppression.objects.all()
    serializer_class = s.BulkSuppressionSerializer

    def _perms(self, request: Request) -> list[str]:
        action = request.data.get("action") if hasattr(request, "data") else None
        return ["contacts.release_suppression" if action == "release" else "contacts.add_suppression"]

    @property
    def perms(self) -> dict:
        return {"POST": self._perms(self.request)}

    @extend_schema(request=s.BulkSuppressionSerializer, responses=s.BulkSuppressionResultSerializer)
    def post(self, request: Request) -> Response:
        serializer = s.BulkSuppressionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        actor, label = _actor(request)
        if data["action"] == "add":
            change = contact_services.add_suppressions(
                values=data["values"], kind=data["kind"], reason=data["reason"], note=data["note"], actor=actor,
                actor_label=label, preview=data["preview"],
            )
        else:
            change = contact_services.release_addresses(
                values=data["values"], kind=data["kind"], actor=actor, note=data["note"] or f"via {label}",
                preview=data["preview"],
            )
        return Response({
            "action": data["action"], "preview": data["preview"], "requested": change.requested,
            "invalid": change.invalid[:100], "changed": len(change.changed), "unchanged": len(change.unchanged),
        })


# --------------------------------------------------------------------------- check
class _JSONOnly(BaseContentNegotiation):
    """No Accept parsing on the hot path: the view has one renderer and reads no body."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class Check(APIView):
    """May this address be mailed, and if not, why not (the campaign sender's own rules)."""

    content_negotiation_class = _JSONOnly
    parser_classes: list = []

    perms = {"GET": ["contacts.view_contact", "contacts.view_suppression"]}
    renderer_classes = [JSONRenderer]  # the hot path: no browsable page to negotiate

    @extend_schema(
        parameters=[
            OpenApiParameter("email", str, required=True),
            OpenApiParameter("list", int, description="Also require a subscription to this mailing list."),
        ],
        responses=s.CheckSerializer,
    )
    def get(self, request: Request) -> Response:
        email = request.query_params.get("email", "")
        if not email:
            raise ApiError("The 'email' parameter is required.", code="invalid_parameter")
        result = selectors.check_address(email=email, list_id=_int_param(request, "list"))
        return Response({"email": result.email, "allowed": result.allowed, "reasons": result.reasons,
                         "contact": result.contact, "suppression": result.suppression})


# --------------------------------------------------------------------------- campaigns
@extend_schema(parameters=[OpenApiParameter("status", str, enum=Campaign.Status.values)])
class CampaignList(generics.ListAPIView):
    queryset = Campaign.objects.all()
    serializer_class = s.CampaignSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        qs = Campaign.objects.order_by("-created_at", "-pk")
        if self.request.query_params.get("status"):
            qs = qs.filter(status=self.request.query_params["status"])
        return qs


class CampaignDetail(generics.RetrieveAPIView):
    """A campaign with its results figures (as on its results page)."""

    queryset = Campaign.objects.all()
    serializer_class = s.CampaignDetailSerializer

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        from campaigns import selectors as campaign_selectors
        from campaigns import services as campaign_services

        campaign = self.get_object()
        stats, stale = campaign_services.campaign_stats(campaign=campaign)
        results = campaign_selectors.results_from(
            campaign=campaign, data=stats.data, computed_at=stats.computed_at, stale=stale
        )
        data = s.CampaignSerializer(campaign).data
        data["results"] = s.CampaignResultsSerializer(results).data
        return Response(data)


# --------------------------------------------------------------------------- mailboxes, runs
class MailboxList(generics.ListAPIView):
    queryset = Mailbox.objects.order_by("name")
    serializer_class = s.MailboxSerializer


class MailboxDetail(generics.RetrieveAPIView):
    queryset = Mailbox.objects.all()
    serializer_class = s.MailboxSerializer


class MailboxRuns(generics.ListAPIView):
    """A mailbox's processing runs, newest first."""

    queryset = ProcessingRun.objects.all()
    serializer_class = s.RunSerializer

    def get_queryset(self) -> QuerySet[ProcessingRun]:
        get_object_or_404(Mailbox, pk=self.kwargs["pk"])
        return ProcessingRun.objects.filter(mailbox_id=self.kwargs["pk"]).order_by("-created_at", "-pk")


class MailboxProcess(APIView):
    """Process the mailbox now: queues a run (202) whose progress is at /runs/{id}/."""

    perms = {"POST": ["bounces.process_mailbox"]}

    @extend_schema(request=None, responses={202: s.RunSerializer})
    def post(self, request: Request, pk: int) -> Response:
        from bounces.intake.schedules import queue_mailbox_run

        mailbox = get_object_or_404(Mailbox, pk=pk)
        if not mailbox.enabled:
            raise ApiError("This mailbox is disabled.", code="mailbox_disabled", status_code=409)
        run = queue_mailbox_run(mailbox=mailbox, actor=request.user)
        return Response(s.RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunList(generics.ListAPIView):
    queryset = ProcessingRun.objects.order_by("-created_at", "-pk")
    serializer_class = s.RunSerializer


class RunDetail(generics.RetrieveAPIView):
    queryset = ProcessingRun.objects.all()
    serializer_class = s.RunSerializer


# --------------------------------------------------------------------------- incidents
@extend_schema(parameters=[OpenApiParameter("status", str, enum=Incident.Status.values)])
class IncidentList(generics.ListAPIView):
    """Incidents of the deliverability guard, newest first (docs/incidents.md)."""

    queryset = Incident.objects.all()
    serializer_class = s.IncidentSerializer

    def get_queryset(self) -> QuerySet[Incident]:
        qs = incident_selectors.incidents()
        if self.request.query_params.get("status"):
            qs = qs.filter(status=self.request.query_params["status"])
        return qs


class IncidentDetail(generics.RetrieveAPIView):
    """An incident with its bounces by kind and state and its most frequent diagnostics."""

    queryset = Incident.objects.all()
    serializer_class = s.IncidentDetailSerializer

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        incident = self.get_object()
        data = dict(s.IncidentSerializer(incident).data)
        data.update(incident_selectors.incident_summary(incident=incident))
        return Response(data)


# --------------------------------------------------------------------------- rules
class RuleList(generics.ListCreateAPIView):
    """Bounce rules in the order they are tried; POST creates one (validated like the admin's form)."""

    queryset = BounceRule.objects.order_by("position", "pk")
    serializer_class = s.RuleSerializer

    def perform_create(self, serializer) -> None:
        from bounces.rules.services import place_rule

        position = serializer.validated_data.pop("position", None)
        rule = BounceRule(**serializer.validated_data)
        serializer.instance = place_rule(rule=rule, position=position)


class RuleDetail(generics.RetrieveAPIView):
    queryset = BounceRule.objects.all()
    serializer_class = s.RuleSerializer


class RuleTest(APIView):
    """Run a draft rule (not saved) against the most recent stored bounces: what it would change."""

    perms = {"POST": ["bounces.view_bouncerule", "bounces.view_bounce"]}
    read_only_methods = ("POST",)  # writes nothing: a read-only key may test drafts

    @extend_schema(request=s.RuleTestSerializer, responses=s.RuleTestResultSerializer)
    def post(self, request: Request) -> Response:
        from bounces.rules.selectors import preview_draft_rule

        serializer = s.RuleTestSerializer(data={"name": "draft", **request.data})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        limit = data.pop("limit")
        position = data.pop("position", None)
        rule = BounceRule(**data)
        if position is not None:
            rule.position = position
        else:
            from bounces.rules.services import default_position

            rule.position = default_position(bounce_type=rule.bounce_type)
        report = preview_draft_rule(rule=rule, limit=limit)
        return Response({
            "examined": report.examined, "matched": report.matched, "shadowed": report.shadowed,
            "verdict_changes": report.verdict_changes,
            "transitions": [{"from": old, "to": new, "bounces": n} for old, new, n in report.transition_list],
            "contact_changes": dict(report.contact_changes),
            "sample": [
                {"bounce": row.bounce.pk, "recipient": row.bounce.recipient, "old_kind": row.old_kind,
                 "new_kind": row.new_kind, "shadowed_by": row.shadowed_by, "contact_effects": row.contact_effects}
                for row in report.rows
            ],
        })


# --------------------------------------------------------------------------- who am I
class Me(APIView):
    """The caller: the key (scope, owner) or the staff user. Handy to test a key."""

    perms = {"GET": []}

    @extend_schema(responses=inline_serializer("Me", {
        "user": serializers.CharField(), "key": serializers.DictField(allow_null=True),
    }))
    def get(self, request: Request) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        return Response({
            "user": request.user.get_username(),
            "key": None if key is None else {"name": key.name, "prefix": key.prefix, "scope": key.scope},
        })




# --------------------------------------------------------------------------- docs page
class DocsPage(APIView):
    """The OpenAPI schema as a readable page (served from here: no CDN script, CSP-clean)."""

    perms = {"GET": []}
    renderer_classes = [TemplateHTMLRenderer]
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        from drf_spectacular.generators import SchemaGenerator

        schema = SchemaGenerator().get_schema(request=None, public=True)
        operations = []
        for path, methods in schema.get("paths", {}).items():
            for method, op in methods.items():
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                responses = [
                    (code, (r.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                            .rsplit("/", 1)[-1]))
                    for code, r in op.get("responses", {}).items()
                ]
                operations.append({"path": path, "method": method, "description": op.get("description", ""),
                                   "parameters": op.get("parameters", []),
                                   "body": body.get("$ref", "").rsplit("/", 1)[-1], "responses": responses})
        components = []
        for name, component in sorted(schema.get("components", {}).get("schemas", {}).items()):
            fields = []
            for field, spec in component.get("properties", {}).items():
                kind = spec.get("type") or spec.get("$ref", "").rsplit("/", 1)[-1] or (
                    " | ".join(x.get("$ref", "").rsplit("/", 1)[-1] for x in spec.get("allOf", spec.get("oneOf", []))))
                notes = "read-only" if spec.get("readOnly") else ""
                if spec.get("enum"):
                    notes = ", ".join(str(v) for v in spec["enum"])
                fields.append((field, kind, spec.get("description", "") or notes))
            if fields:
                components.append((name, fields))
        return Response({"schema": schema, "operations": operations, "components": components},
                        template_name="api/docs.html")
