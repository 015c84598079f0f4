"""Bounce rules: operator-written patterns with the verdict and action they impose, and the
audit trail of re-applying them to stored bounces. Imports only the pure patterns module."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from contacts.models import TimeStamped

from .patterns import MAX_PATTERN_LENGTH, PatternError, validate_pattern


class BounceRule(TimeStamped):
    """An operator's rule: a pattern searched in part of a bounce, and what to do on a match.

    Enabled rules are tried in `position` order (then id); the first match wins. The
    pattern is validated by `clean()` (RE2 syntax, length, not matching empty text); the
    pipeline never sees a pattern that did not pass it.
    """

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
        """Contact actions (the values of contacts.services.Action), in the order they run."""

        MARK_HARD = "mark_hard", "Mark the contact hard-bounced"
        UNCONFIRM = "unconfirm", "Unconfirm the contact"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe from the bounced message's list"
        UNSUBSCRIBE_ALL = "unsubscribe_all", "Unsubscribe from all lists"
        SUPPRESS = "suppress", "Suppress the address"
        BLACKLIST_CONTACT = "blacklist_contact", "Blacklist the contact"
        BLACKLIST_ADDRESS = "blacklist_address", "Blacklist the address"
        REMOVE_ADDRESS = "remove_address", "Move the address aside (kept as 'bounced address')"
        DELETE_CONTACT = "delete_contact", "Delete the contact"

    class ActionsMode(models.TextChoices):
        KIND = "kind", "The kind's policy (recommended)"
        ADD = "add", "The kind's policy plus the actions below (stronger)"
        REPLACE = "replace", "Only the actions below, instead of the kind's policy (may be weaker)"

    name = models.CharField(max_length=200)
    pattern = models.TextField(
        max_length=MAX_PATTERN_LENGTH,
        help_text=(
            "Contains text: the words in this order, any spacing or line breaks between them. "
            "Regular expression: RE2 syntax (no back-references or look-around)."
        ),
    )
    match_type = models.CharField(max_length=8, choices=MatchType.choices, default=MatchType.CONTAINS)
    section = models.CharField(max_length=10, choices=Section.choices, default=Section.DIAGNOSTIC)
    case_sensitive = models.BooleanField(default=False)
    bounce_type = models.CharField(max_length=10, choices=BounceType.choices, default=BounceType.EITHER)
    reason = models.CharField(max_length=32, blank=True)
    # Issue 11: a rule says what a bounce is; its kind's policy (Bounce settings) decides what
    # happens to the contact, unless the rule says explicitly that it adds or replaces actions.
    actions_mode = models.CharField(
        max_length=8, choices=ActionsMode.choices, default=ActionsMode.KIND, verbose_name="contact actions",
        help_text="What happens to the contact. Anything but the kind's policy is shown on the rule page "
                  "as stronger or weaker than the policy.",
    )
    actions = models.JSONField(
        default=list, blank=True, help_text="The actions added to, or replacing, the kind's policy.",
    )
    class MessageAction(models.TextChoices):
        """What happens to the message in the mailbox once processed (issue 11)."""

        DEFAULT = "", "The mailbox's setting"
        DELETE = "delete", "Delete it"
        MOVE = "move", "Move it to a folder"
        MARK_READ = "mark_read", "Mark it read and leave it"
        LEAVE = "leave", "Leave it untouched (unread)"

    message_action = models.CharField(
        max_length=10, choices=MessageAction.choices, blank=True, default="", verbose_name="the message",
        help_text="What happens to the bounce message in the mailbox once processed; the mailbox's setting "
                  "(processed / unmatched disposition) unless the rule says otherwise.",
    )
    message_folder = models.CharField(
        max_length=200, blank=True, help_text="With 'move': the folder the message goes to.",
    )
    delete_message = models.BooleanField(
        default=False, help_text="Kept in step with 'the message' = delete (older exports and the API set it).",
    )
    in_statistics = models.BooleanField(
        default=True, verbose_name="count in campaign statistics",
        help_text="Off: the bounce is recorded but left out of its campaign's figures "
                  "(phpList's '... and delete bounce').",
    )
    fallback_only = models.BooleanField(
        default=False, verbose_name="only when the engine cannot tell",
        help_text="Apply only to messages the engine could not classify; where it could, its verdict "
                  "stands. The starter rules work this way.",
    )
    position = models.PositiveIntegerField(
        default=0, db_index=True, help_text="Rules are tried from the lowest position; the first match wins."
    )
    enabled = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    hit_count = models.PositiveIntegerField(default=0, editable=False)
    last_hit_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["position", "id"]
        # Re-applying rules rewrites stored bounces' verdicts (and contacts' state): its own
        # right, apart from writing rules (issue 15, part 3).
        permissions = [("apply_bouncerule", "Can re-apply rules to stored bounces")]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_db(cls, db, field_names, values):
        rule = super().from_db(db, field_names, values)
        rule._loaded_delete = rule.__dict__.get("delete_message")
        return rule

    def save(self, *args, **kwargs) -> None:
        # `delete_message` (older exports, the API) and `message_action` stay in step: a
        # changed `delete_message` sets the action, otherwise the action sets the flag.
        loaded = getattr(self, "_loaded_delete", False)
        if self.delete_message != loaded and self.delete_message != (self.message_action == "delete"):
            self.message_action = self.MessageAction.DELETE if self.delete_message else self.MessageAction.DEFAULT
        self.delete_message = self.message_action == self.MessageAction.DELETE
        self._loaded_delete = self.delete_message
        super().save(*args, **kwargs)

    @property
    def message_request(self) -> str:
        """The rule's disposition as the pipeline carries it: "" (the mailbox's), "delete",
        "mark_read", "leave" or "move:<folder>"."""
        return message_request(self.message_action or ("delete" if self.delete_message else ""),
                               self.message_folder)

    def clean(self) -> None:
        """Reject patterns that cannot run safely, unknown actions, and actions an "ignore" rule cannot take."""
        super().clean()
        errors: dict[str, str] = {}
        try:
            validate_pattern(
                self.pattern or "", match_type=self.match_type, case_sensitive=self.case_sensitive
            )
        except PatternError as exc:
            errors["pattern"] = str(exc)
        actions = self.actions if isinstance(self.actions, list) else None
        if actions is None or any(a not in self.Action.values for a in actions):
            errors["actions"] = "Choose actions from the list."
        elif self.bounce_type == self.BounceType.IGNORE and (actions or self.actions_mode != self.ActionsMode.KIND):
            errors["actions_mode"] = (
                "A rule that marks a message as not a bounce takes no contact action; "
                "keep the kind's policy (you may still delete the message)."
            )
        elif self.actions_mode == self.ActionsMode.ADD and not actions:
            errors["actions"] = "Choose the actions to add to the kind's policy."
        elif self.actions_mode == self.ActionsMode.KIND and actions:
            errors["actions"] = "The kind's policy takes no actions of its own: choose 'plus' or 'only'."
        if self.message_action == self.MessageAction.MOVE and not (self.message_folder or "").strip():
            errors["message_folder"] = "Name the folder the message is moved to."
        if errors:
            raise ValidationError(errors)


def message_request(action: str, folder: str = "") -> str:
    """A rule's message action as one string ("move:<folder>" for a move)."""
    if action == "move":
        return f"move:{(folder or '').strip()}" if (folder or "").strip() else ""
    return action if action in ("delete", "mark_read", "leave") else ""


class RuleReapply(models.Model):
    """One re-application of the rules to stored bounces; its changes can be undone together."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="e.g. a management command.")
    scope = models.CharField(max_length=300, blank=True, help_text="Which bounces were examined.")
    examined = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"re-apply #{self.pk} ({self.changed} bounces changed)"


class BounceRuleChange(models.Model):
    """One field of one stored bounce changed by re-applying the rules (old → new), undoable."""

    class Field(models.TextChoices):
        KIND = "kind", "Kind"
        REASON = "reason", "Reason"
        STATE = "state", "State"
        MATCHED_RULE = "matched_rule", "Matched rule"

    reapply = models.ForeignKey(RuleReapply, on_delete=models.CASCADE, related_name="changes")
    bounce = models.ForeignKey("bounces.Bounce", on_delete=models.CASCADE, related_name="rule_changes")
    rule = models.ForeignKey(
        BounceRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes",
        help_text="The rule that now matches (empty: no rule matches any more).",
    )
    field = models.CharField(max_length=16, choices=Field.choices)
    old_value = models.CharField(max_length=64, blank=True)
    new_value = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # a bounce's history of rule changes (bounce detail page)
            models.Index(fields=["bounce", "applied_at"], name="rulechange_bounce_idx"),
        ]

    def __str__(self) -> str:
        return f"bounce {self.bounce_id}: {self.field} {self.old_value!r} → {self.new_value!r}"


class StarterRuleRecord(models.Model):
    """A starter rule once loaded: deleting the rule does not bring it back on the next load."""

    key = models.CharField(max_length=100, unique=True)
    rule = models.ForeignKey(BounceRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(key=""), name="starter_rule_key_not_empty"),
        ]

    def __str__(self) -> str:
        return self.key
