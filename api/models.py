"""API keys and outgoing webhooks: endpoints, persisted events and their deliveries."""

from __future__ import annotations

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from bouncemgr.fields import EncryptedTextField


class ApiKey(models.Model):
    """A token for the REST API, acting as its owner with the owner's model permissions.

    The token is shown once, when the key is created; only its SHA-256 is stored (a
    random 192-bit secret needs no slow hash). `prefix` finds the row, the hash proves it.
    A read-only key can only read, whatever its owner may do.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read-only"
        WRITE = "write", "Read-write"

    name = models.CharField(max_length=100, help_text="What uses this key, e.g. 'CRM sync'.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys",
        help_text="The key acts as this user: their model permissions apply.",
    )
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: 'whsec_' + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class EventType(models.TextChoices):
    BOUNCE_RECORDED = "bounce.recorded", "bounce.recorded: a bounce was recorded"
    CONTACT_SUPPRESSED = "contact.suppressed", "contact.suppressed: an address was suppressed"
    CONTACT_RELEASED = "contact.released", "contact.released: a suppression was lifted"
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", "contact.unsubscribed: a contact left a list"
    CAMPAIGN_PAUSED = "campaign.paused", "campaign.paused: a campaign stopped sending"
    INCIDENT_OPENED = "incident.opened", "incident.opened: an incident opened (its bounces are held)"
    INCIDENT_RESOLVED = "incident.resolved", "incident.resolved: an operator resolved an incident"
    GUARDRAIL_WARNING = "guardrail.warning", "guardrail.warning: a campaign's bounce or complaint rate is high"
    RUN_FAILED = "run.failed", "run.failed: a mailbox run failed"


class WebhookEndpoint(models.Model):
    """A URL that receives signed events (Standard Webhooks) of the types it subscribes to.

    `failure_count` counts consecutive failed attempts; at WEBHOOK_DISABLE_AFTER_FAILURES
    the endpoint is disabled and the admins are mailed. Its pending deliveries wait, and
    resume (within their 3 days) when it is enabled again.
    """

    url = models.URLField(max_length=500, help_text="https:// URL that receives POSTed events.")
    description = models.CharField(max_length=200, blank=True)
    secret = EncryptedTextField(
        default=new_webhook_secret, help_text="Signing secret (Standard Webhooks 'whsec_…' form)."
    )
    event_types = models.JSONField(default=list, blank=True, help_text="Event types sent to this endpoint.")
    enabled = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=200, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_failure_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.description or self.url


def new_event_id() -> str:
    """The public id of an event, sent as webhook-id (the receiver de-duplicates on it)."""
    return "evt_" + uuid.uuid4().hex


class WebhookEvent(models.Model):
    """One event, persisted (in the transaction that caused it) before any delivery."""

    Type = EventType

    event_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=32, choices=EventType.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    """One event for one endpoint: attempts, outcome, and when to try again.

    Claimed for an attempt by a conditional UPDATE that sets `locked_until` (a lease): a
    worker killed mid-attempt leaves a lease that expires, and the sweep tries again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    # indexed by whdelivery_endpoint_idx
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField(
        null=True, blank=True, help_text="No more attempts after this (3 days after the event or a redelivery)."
    )
    # The attempt's claim: a conditional UPDATE sets both; the lease expires by itself.
    claim = models.CharField(max_length=32, blank=True, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="whdelivery_once_per_endpoint"),
        ]
        indexes = [
            # the sweep: pending deliveries that are due (a small partial index)
            models.Index(fields=["next_attempt_at"], name="whdelivery_due_idx", condition=Q(status="pending")),
            # delivery log per endpoint, newest first
            models.Index(fields=["endpoint", "-created_at"], name="whdelivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
