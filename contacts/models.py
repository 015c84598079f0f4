"""Contacts, mailing lists, subscriptions and the suppression list."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ContactQuerySet(models.QuerySet["Contact"]):
    def deliverable(self) -> ContactQuerySet:
        """Contacts that may be mailed: active, not hard-bounced, with an address (issue 11:
        a hard-bounced contact is never mailed again until an operator resets it)."""
        return self.filter(status=Contact.Status.ACTIVE, has_bounced=False).exclude(email="")

    def by_email(self, email: str) -> ContactQuerySet:
        """Case-insensitive lookup, served by contact_email_ci_unique.

        The index is partial (email <> ''), so the filter repeats that condition: without
        it PostgreSQL cannot use the index and scans every contact.
        """
        return self.exclude(email="").annotate(email_lower=Lower("email")).filter(
            email_lower=email.strip().lower()
        )


class Contact(TimeStamped):
    """A person we mail. The address is unique regardless of case.

    Bounce state lives here: counters, the last bounce, `has_bounced` (OpenCRM's flag,
    reset by an operator once the address is fixed) and `bounced_address`, the address
    that bounced when a hard bounce removed it from `email`.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BLACKLISTED = "blacklisted", "Blacklisted"

    email = models.EmailField(max_length=254, blank=True)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    consecutive_bounces = models.PositiveIntegerField(default=0)
    hard_bounce_count = models.PositiveIntegerField(default=0)
    soft_bounce_count = models.PositiveIntegerField(default=0)
    bounce_score = models.FloatField(default=0.0, help_text="Decaying soft-bounce score.")
    last_bounce_at = models.DateTimeField(null=True, blank=True)
    bounce_scored_on = models.DateField(
        null=True, blank=True, help_text="Score policy: the day the score last went up (at most once a day)."
    )
    last_bounce_sent_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Send time of the last message whose soft bounce was counted (consecutive policy).",
    )
    has_bounced = models.BooleanField(default=False)
    bounced_address = models.EmailField(max_length=254, blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=~Q(email=""),
                name="contact_email_ci_unique",
                violation_error_message="A contact with this email address already exists.",
            ),
        ]
        indexes = [
            # contact list filtered by status; deliverable() for sending
            models.Index(fields=["status"], name="contact_status_idx"),
            # "contacts that bounced recently" review page
            models.Index(fields=["has_bounced", "-last_bounce_at"], name="contact_bounced_idx"),
        ]

    def __str__(self) -> str:
        return self.email or self.bounced_address or f"contact #{self.pk}"


class MailingList(TimeStamped):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    contacts = models.ManyToManyField(Contact, through="Subscription", related_name="lists")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscription(TimeStamped):
    """A contact's membership of one list, with its own status."""

    class Status(models.TextChoices):
        SUBSCRIBED = "subscribed", "Subscribed"
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions")
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBSCRIBED)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribe_reason = models.CharField(max_length=200, blank=True)
    # The bounce that unsubscribed it (plain id, see Suppression.bounce_id); empty otherwise.
    unsubscribe_bounce_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "mailing_list"], name="subscription_unique"),
        ]
        indexes = [
            # a list's active subscribers, when sending a campaign
            models.Index(fields=["mailing_list", "status"], name="subscr_list_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} on {self.mailing_list} ({self.status})"


class SuppressionQuerySet(models.QuerySet["Suppression"]):
    def active(self, *, now: datetime | None = None) -> SuppressionQuerySet:
        """Suppressions in force: not expired (lifted ones live in `LiftedSuppression`)."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now()))


class Suppression(TimeStamped):
    """An address or a whole domain that must never be mailed."""

    class Kind(models.TextChoices):
        ADDRESS = "address", "Address"
        DOMAIN = "domain", "Domain"

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Too many soft bounces"
        COMPLAINT = "complaint", "Complaint"
        BLACKLIST = "blacklist", "Blacklisted"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        MANUAL = "manual", "Added by an operator"
        IMPORT = "import", "Imported"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ADDRESS)
    value = models.CharField(
        max_length=254, help_text="Lower-case address, or a domain such as example.com."
    )
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.MANUAL)
    source = models.CharField(
        max_length=200, blank=True, help_text="What added it: a bounce, a rule, an import, a user."
    )
    note = models.TextField(blank=True)
    # Why (issue 11): the bounce that caused it, its kind and reason, the rule that matched,
    # the contact and the actor. Plain ids for the bounce and the rule: contacts sits below
    # bounces and must not import it; the ids outlive a deleted bounce or rule.
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    bounce_id = models.BigIntegerField(null=True, blank=True)
    bounce_kind = models.CharField(max_length=10, blank=True)
    bounce_reason = models.CharField(max_length=32, blank=True)
    rule_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Soft and blocked suppressions lapse by themselves then (empty: never).",
    )

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["value"]
        # Releasing lets an address be mailed again: its own right, apart from deleting rows
        # (issue 15, part 3).
        permissions = [("release_suppression", "Can release suppressions (and undo a release)")]
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="suppression_unique"),
            models.CheckConstraint(
                condition=Q(value=Lower("value")), name="suppression_value_lowercase"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}"


class ContactEvent(models.Model):
    """Audit trail of every change to a contact's state (who, what, before, after)."""

    class Kind(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Soft bounce"
        COMPLAINT = "complaint", "Complaint"
        STATUS_CHANGE = "status_change", "Status changed"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        SUPPRESS = "suppress", "Suppressed"
        BOUNCE_RESET = "bounce_reset", "Bounce state reset"
        ADDRESS_REMOVED = "address_removed", "Address removed"
        IMPORT = "import", "Imported"
        BLACKLIST = "blacklist", "Blacklisted"
        RECOMPUTE = "recompute", "Bounce state recomputed"
        DELETED = "deleted", "Contact deleted"
        UNSUPPRESS = "unsuppress", "Suppression lifted"
        RESTORED = "restored", "Lifted suppression restored"

    # indexed by contactevent_contact_idx. The trail outlives the contact (SET_NULL): who was
    # deleted, when and why stays answerable through `email`.
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="events", db_index=False
    )
    email = models.CharField(max_length=254, blank=True, help_text="The contact's address at the time.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="System actor, e.g. a run.")
    old_status = models.CharField(max_length=16, blank=True)
    new_status = models.CharField(max_length=16, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # contact page history
            models.Index(fields=["contact", "-created_at"], name="contactevent_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.contact_id}"


class SuppressionRelease(models.Model):
    """An operator's release of suppressions (one or many at once); undoable as a whole."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=0)
    reset_contacts = models.BooleanField(
        default=False, help_text="Also reset the contacts' bounce state (lists, flag, address)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"release #{self.pk} ({self.count} suppressions)"


class LiftedSuppression(models.Model):
    """A suppression that is no longer in force, kept with why it was made and why it ended.

    Lifting moves the row here (expired, a later delivery, an operator's release, an
    un-bounce), so `Suppression` holds only what blocks sending; undoing a release moves
    it back.
    """

    class LiftReason(models.TextChoices):
        EXPIRED = "expired", "Expired"
        DELIVERED = "delivered", "A later delivery to the address"
        RELEASED = "released", "Released by an operator"
        RESET = "reset", "Contact's bounce state reset"

    kind = models.CharField(max_length=8, choices=Suppression.Kind.choices)
    value = models.CharField(max_length=254)
    reason = models.CharField(max_length=16, choices=Suppression.Reason.choices)
    source = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    bounce_id = models.BigIntegerField(null=True, blank=True)
    bounce_kind = models.CharField(max_length=10, blank=True)
    bounce_reason = models.CharField(max_length=32, blank=True)
    rule_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    suppressed_at = models.DateTimeField(help_text="When the suppression was made.")
    lifted_at = models.DateTimeField()
    lift_reason = models.CharField(max_length=10, choices=LiftReason.choices)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release = models.ForeignKey(
        SuppressionRelease, null=True, blank=True, on_delete=models.SET_NULL, related_name="lifted"
    )

    class Meta:
        ordering = ["-lifted_at"]
        indexes = [
            # an address's suppression history (contact page, suppression admin search)
            models.Index(fields=["value", "-lifted_at"], name="liftedsuppr_value_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.value} (lifted {self.get_lift_reason_display().lower()})"
