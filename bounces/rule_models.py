"""Bounce rules: operator-written patterns with the verdict and action they impose."""

from __future__ import annotations

from django.db import models

from contacts.models import TimeStamped


class BounceRule(TimeStamped):
    """An operator's rule: a pattern searched in part of a bounce, and what to do on a match."""

    class MatchType(models.TextChoices):
        CONTAINS = "contains", "Contains text"
        REGEX = "regex", "Regular expression"

    class Section(models.TextChoices):
        DIAGNOSTIC = "diagnostic", "Diagnostic text"
        BODY = "body", "Body"
        SUBJECT = "subject", "Subject"
        FROM = "from", "From"
        TO_CC = "to_cc", "To / Cc"
        HEADERS = "headers", "Any header"
        WHOLE = "whole", "Whole message"

    class BounceType(models.TextChoices):
        HARD = "hard", "Hard"
        SOFT = "soft", "Soft"
        COMPLAINT = "complaint", "Complaint"
        AUTOREPLY = "autoreply", "Auto-reply"
        IGNORE = "ignore", "Ignore (not a bounce)"
        EITHER = "either", "Either (keep the engine's verdict)"

    class Action(models.TextChoices):
        DELETE_CONTACT = "delete_contact", "Delete contact"
        UNCONFIRM = "unconfirm", "Unconfirm contact"
        BLACKLIST_CONTACT = "blacklist_contact", "Blacklist contact"
        BLACKLIST_ADDRESS = "blacklist_address", "Blacklist address"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe from list"
        SUPPRESS = "suppress", "Add to suppression list"
        MARK_HARD = "mark_hard", "Mark hard-bounced"
        COUNT_ONLY = "count_only", "Count only"

    name = models.CharField(max_length=200)
    pattern = models.TextField(max_length=1000)
    match_type = models.CharField(max_length=8, choices=MatchType.choices, default=MatchType.CONTAINS)
    section = models.CharField(max_length=10, choices=Section.choices, default=Section.DIAGNOSTIC)
    case_sensitive = models.BooleanField(default=False)
    bounce_type = models.CharField(max_length=10, choices=BounceType.choices, default=BounceType.EITHER)
    reason = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices, default=Action.COUNT_ONLY)
    delete_message = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0, db_index=True)
    enabled = models.BooleanField(default=True)
    hit_count = models.PositiveIntegerField(default=0, editable=False)
    last_hit_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
