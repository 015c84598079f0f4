"""Campaigns and the messages they sent, each traceable back from a bounce."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models

from contacts.models import Contact, MailingList, TimeStamped

# Lower-case letters and digits only: MTAs and mailbox providers may lower-case the
# local part of a VERP address, so a token must survive that unchanged.
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TOKEN_LENGTH = 16


def new_token() -> str:
    """A random public token for the VERP return path and the tracking header (~82 bits)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def validate_header_value(value: str) -> None:
    """A header value (Subject, From) is one line: a CR or LF would end the header early.

    Django refuses such a header only when the message is built, mid-send (BadHeaderError),
    which used to leave the campaign stuck in "sending" (issue 12).
    """
    if "\r" in value or "\n" in value:
        raise ValidationError("Must be a single line: remove the line breaks (CR/LF).", code="line_break")


class Campaign(TimeStamped):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998, validators=[validate_header_value])
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    from_email = models.CharField(
        max_length=254, help_text='e.g. "News <news@example.com>"', validators=[validate_header_value]
    )
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.PROTECT, related_name="campaigns", null=True, blank=True
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When sending started.")
    finished_at = models.DateTimeField(null=True, blank=True)
    # Maintained by campaigns.services in the same transaction as each SentMessage's
    # outcome, so the results page never counts a million rows
    # (campaigns.services.recount_campaign rebuilds them from the rows).
    sent_count = models.PositiveIntegerField(default=0, editable=False, help_text="Accepted by SMTP.")
    refused_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Refused permanently (5xx) at send time."
    )
    deferred_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Refused temporarily (4xx) at send time."
    )
    skipped_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Queued, then not sent: suppressed or unsubscribed meanwhile."
    )
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        # Mailing a list is the most dangerous button here: viewing or editing a campaign
        # does not allow it (the admin actions declare permissions=["send"]).
        permissions = [("send_campaign", "Can send, pause and retry campaigns")]

    def __str__(self) -> str:
        return self.name


class SentMessage(models.Model):
    """One message of a campaign to one contact.

    Written before the message leaves, so a bounce can always be traced back through its
    `message_id`, or its `token` (VERP return path and tracking header). `email` is the
    address used at send time, which may differ from the contact's address later.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        # Claimed by a sender and handed to SMTP; a row left here by a crash is never
        # sent again (at most once), see docs/campaigns.md.
        SENDING = "sending", "Sending (outcome unknown if it stays)"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent (suppressed or unsubscribed before sending)"
        REFUSED = "refused", "Refused at send time"
        DEFERRED = "deferred", "Deferred at send time"
        BOUNCED = "bounced", "Bounced"
        SOFT_BOUNCED = "soft_bounced", "Soft bounced"
        COMPLAINED = "complained", "Complained"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sent_messages")
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="sent_messages"
    )
    email = models.EmailField(max_length=254)
    message_id = models.CharField(max_length=255, unique=True, help_text="Without angle brackets.")
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Send attempts (campaigns.services): a message deferred at send time (4xx for the
    # recipient) is tried again at next_attempt_at, following CAMPAIGN_DEFER_RETRY_DELAYS.
    attempts = models.PositiveSmallIntegerField(default=0, help_text="SMTP transactions tried.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True,
        help_text="A deferred message is tried again from then; empty: no retry pending (accepted, given up...).",
    )
    last_reply = models.CharField(
        max_length=1000, blank=True, help_text="The last SMTP refusal for this message (code and text)."
    )

    class SkipReason(models.TextChoices):
        SUPPRESSED = "suppressed", "Address suppressed"
        BLACKLISTED = "blacklisted", "Contact blacklisted"
        HARD_BOUNCED = "hard_bounced", "Hard-bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        UNSUBSCRIBED_BY_BOUNCE = "bounce_unsubscribed", "Unsubscribed from this list by a bounce"
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        MOVED_ASIDE = "moved_aside", "Address moved aside after a bounce"

    skip_reason = models.CharField(
        max_length=20, choices=SkipReason.choices, blank=True, help_text="Why a skipped message was not sent."
    )

    class Meta:
        constraints = [
            # never send one contact the same campaign twice
            models.UniqueConstraint(
                fields=["campaign", "contact"],
                condition=models.Q(contact__isnull=False),
                name="sentmessage_once_per_contact",
            ),
        ]
        indexes = [
            # campaign results: counts by status
            models.Index(fields=["campaign", "status"], name="sentmsg_campaign_status_idx"),
            # contact page: what was sent to a contact, newest first
            models.Index(fields=["contact", "-sent_at"], name="sentmsg_contact_idx"),
            # the retry sweep: deferred rows due for another attempt (a small partial index)
            models.Index(
                fields=["next_attempt_at"], name="sentmsg_retry_due_idx",
                condition=models.Q(status="deferred", next_attempt_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.email}"


class CampaignStats(models.Model):
    """Stored bounce aggregates of one campaign, read by the results page.

    Computed by campaigns.services.refresh_campaign_stats from the Bounce rows (grouped
    queries). The page recomputes them when the campaign's bounces changed (the latest
    bounced_at of some kind differs: one query, an index probe per kind) or they are older than
    CAMPAIGN_STATS_MAX_AGE; for large campaigns that happens in a Celery task while the page
    shows the previous figures, so the page stays fast with a million messages.
    """

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, primary_key=True, related_name="stats"
    )
    computed_at = models.DateTimeField()
    bounce_rows = models.PositiveIntegerField(default=0, help_text="Bounces counted then.")
    last_bounced_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0, help_text="Time the computation took.")
    data = models.JSONField(default=dict)
    refresh_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "campaign stats"

    def __str__(self) -> str:
        return f"stats of campaign {self.campaign_id} at {self.computed_at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------
# Rate guardrails (campaigns/guardrails.py, docs/incidents.md "Guardrails")


class GuardrailSettings(models.Model):
    """The site-wide guardrail thresholds (one row, edited in the admin).

    Created on first use from the GUARDRAIL_* settings; a campaign may override each value
    (CampaignGuardrail). Rates are percentages of the messages sent in a scope.
    """

    min_sent = models.PositiveIntegerField(
        default=100, help_text="Messages sent in a scope before its rates are acted on.")
    bounce_warn_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default=5, help_text="Hard + blocked bounces: alert from this rate.")
    bounce_pause_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default=10, help_text="Hard + blocked bounces: pause the campaign.")
    complaint_warn_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default="0.1", help_text="Complaints: alert from this rate.")
    complaint_pause_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default="0.5", help_text="Complaints: pause the campaign.")
    sending_window_hours = models.PositiveIntegerField(
        default=24, help_text="The sending-domain rates count the messages of the last this many hours.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "guardrail settings"

    def __str__(self) -> str:
        return "Guardrail thresholds"


class CampaignGuardrail(models.Model):
    """One campaign's guardrail: the operator's overrides (empty: the site-wide value) and
    its state (why it was paused, which warnings were sent, when it was last resumed)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, primary_key=True, related_name="guardrail")
    min_sent = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the site-wide value.")
    bounce_warn_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    bounce_pause_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    complaint_warn_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    complaint_pause_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    pause_reason = models.CharField(max_length=500, blank=True, editable=False)
    pause_detail = models.JSONField(default=dict, blank=True, editable=False)
    warnings = models.JSONField(default=list, blank=True, editable=False, help_text="Warnings already sent.")
    resumed_at = models.DateTimeField(null=True, blank=True, editable=False)
    resumed_by = models.CharField(max_length=150, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"guardrail of campaign {self.campaign_id}"


class GuardrailCount(models.Model):
    """Running counts of one guardrail scope: messages sent, bounced (hard + blocked), complained.

    Campaign and receiving-domain rows belong to one campaign; sending-domain rows are shared
    by all campaigns and kept per hour (`period`). `base_*` are the counts when the operator
    last resumed the campaign: its rates count from there.
    """

    class Scope(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        RECEIVING = "receiving", "Receiving domain"
        SENDING = "sending", "Sending domain"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="guardrail_counts", db_index=False)
    key = models.CharField(max_length=255, blank=True, help_text="The domain (empty for the campaign scope).")
    period = models.DateTimeField(null=True, blank=True, help_text="Sending domain: the hour.")
    sent = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    base_sent = models.PositiveIntegerField(default=0)
    base_bounced = models.PositiveIntegerField(default=0)
    base_complained = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # one row per campaign and domain (the campaign row has key ""); also serves the
            # guardrail's reads of a campaign's rows
            models.UniqueConstraint(fields=["campaign", "scope", "key"], condition=models.Q(campaign__isnull=False),
                                    name="guardrailcount_campaign_unique"),
            # one row per sending domain and hour; serves the window sums
            models.UniqueConstraint(fields=["key", "period"], condition=models.Q(scope="sending"),
                                    name="guardrailcount_sending_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.campaign_id or self.period})"
