"""Alerts, incidents and the rolling counts behind them (issue 14). Imported by bounces/models.py
so Django registers them (app_label "bounces"); imports no other module of bounces."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Alert(models.Model):
    """Something staff must see: mailed once (after commit) and shown as a banner on the
    dashboard until someone acknowledges it. Written only by `bounces.incidents.alerts.raise_alert`."""

    class Kind(models.TextChoices):
        INCIDENT_OPENED = "incident.opened", "Incident opened"
        INCIDENT_RESOLVED = "incident.resolved", "Incident resolved"
        GUARDRAIL_WARNING = "guardrail.warning", "Guardrail warning"
        CAMPAIGN_PAUSED = "campaign.paused", "Campaign paused"
        OTHER = "other", "Other"

    class Severity(models.TextChoices):
        INFO = "info", "Information"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.OTHER)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="A path on this site, e.g. the incident page.")
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the banner: unacknowledged alerts, newest first
            models.Index(fields=["-created_at"], condition=Q(acknowledged_at__isnull=True), name="alert_open_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Incident(models.Model):
    """A sender-side problem or a receiving provider's outage, seen in the rolling counts.

    While open, bounces in its scope are recorded but held (Bounce.state "held", `incident`
    set): no contact action, no counting. The operator resolves it as ours (release: the held
    bounces never count) or as real (apply: they count as the policy says).
    """

    MAX_DOMAINS = 500

    class Scope(models.TextChoices):
        PROVIDER = "provider", "Provider group"
        DOMAIN = "domain", "Receiving domain"
        SENDING = "sending", "Sending domain"

    class Trigger(models.TextChoices):
        BLOCKED = "blocked", "Our-side refusals (blocked) reached the threshold"
        BURST = "burst", "Failures far above the scope's own baseline"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RELEASED = "released", "Resolved: our problem (held bounces released, never counted)"
        APPLIED = "applied", "Resolved: real (held bounces counted as usual)"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=255, help_text="The provider group, or the domain.")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    cause = models.CharField(max_length=32, blank=True, help_text="The most frequent cause when it opened.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    window_start = models.DateTimeField(help_text="Bounces dated from here on, in scope, are held.")
    window_count = models.PositiveIntegerField(default=0, help_text="Bounces in the window when it opened.")
    baseline = models.FloatField(null=True, blank=True, help_text="Expected failures per window (burst).")
    held_count = models.PositiveIntegerField(default=0)
    domains = models.JSONField(default=list, blank=True,
                               help_text="Recipient domains of its held bounces: sending to them pauses too.")
    last_bounce_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # one open incident per scope (two batches racing to open the same one)
            models.UniqueConstraint(fields=["scope", "key"], condition=Q(status="open"),
                                    name="incident_one_open_per_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.get_trigger_display().split(' ')[0]} {self.cause or ''} at {self.key}".replace("  ", " ")

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def label(self) -> str:
        what = "Blocked" if self.trigger == self.Trigger.BLOCKED else "Failure burst"
        cause = f" ({self.cause})" if self.cause else ""
        return f"{what}{cause} — {self.get_scope_display().lower()} {self.key}"


class IncidentCount(models.Model):
    """Bounces per scope and minute (by the bounce's own time), upserted once per batch.

    `scope` is "provider:<group>", "domain:<domain>", "sending:<domain>" or "cause:<cause>";
    `blocked` counts our-side refusals, `failed` other failures (hard, soft), `total` all.
    Rows older than INCIDENT_BASELINE_HOURS are deleted by the hourly sweep.
    """

    scope = models.CharField(max_length=270)
    minute = models.DateTimeField()
    blocked = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # the upsert's conflict target; also serves "scopes in (...) since t" (window, baseline)
            models.UniqueConstraint(fields=["scope", "minute"], name="incidentcount_scope_minute"),
        ]
        indexes = [
            # the sweep (minute < cutoff) and the deliverability view's time ranges
            models.Index(fields=["minute"], name="incidentcount_minute_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.minute:%Y-%m-%d %H:%M}"
