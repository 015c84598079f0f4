"""Representations of the API's resources (read) and of what callers send (write)."""

from __future__ import annotations

from rest_framework import serializers

from bounces.models import Bounce, Incident, Mailbox, ProcessingRun
from bounces.rules.models import BounceRule
from campaigns.models import Campaign
from contacts.models import Contact, Suppression

MAX_BULK_ADDRESSES = 10_000
LIST_DIAGNOSTIC_CHARS = 500


class BounceSerializer(serializers.ModelSerializer):
    diagnostic = serializers.SerializerMethodField()

    class Meta:
        model = Bounce
        fields = [
            "id", "recipient", "kind", "reason", "state", "status_code", "reply_code", "diagnostic",
            "remote_mta", "permanent", "address_bad", "counted", "match_method", "matched_rule",
            "actions_taken", "bounced_at", "mailbox", "campaign", "contact", "sent_message", "run",
            "raw_message",
        ]

    def get_diagnostic(self, obj: Bounce) -> str:
        return (obj.diagnostic or "")[:LIST_DIAGNOSTIC_CHARS]


class RecipientReportSerializer(serializers.Serializer):
    recipient = serializers.CharField(allow_null=True)
    action = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    replycode = serializers.CharField(allow_null=True)
    diagnostic = serializers.CharField()
    remote_mta = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    hard = serializers.BooleanField(allow_null=True)
    permanent = serializers.BooleanField(allow_null=True)
    category = serializers.CharField()
    feedback_type = serializers.CharField(allow_null=True)


class ReportSerializer(serializers.Serializer):
    """The engine's report of the stored message, parsed again now."""

    kind = serializers.CharField()
    mta = serializers.CharField(allow_null=True)
    subject = serializers.CharField(allow_null=True)
    from_address = serializers.CharField(allow_null=True)
    message_id = serializers.CharField(allow_null=True)
    token = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    recipients = RecipientReportSerializer(many=True)


class PartSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    content_type = serializers.CharField()
    filename = serializers.CharField()
    size = serializers.IntegerField()
    is_attachment = serializers.BooleanField()


class BounceDetailSerializer(BounceSerializer):
    diagnostic = serializers.CharField(read_only=True)
    report = ReportSerializer(read_only=True, allow_null=True)
    parts = PartSerializer(many=True, read_only=True)
    raw_size = serializers.IntegerField(read_only=True, allow_null=True)
    raw = serializers.CharField(read_only=True, required=False, allow_null=True,
                                help_text="The raw message (?raw=true), decoded as UTF-8 with replacements.")
    raw_truncated = serializers.BooleanField(read_only=True, required=False)

    class Meta(BounceSerializer.Meta):
        fields = [*BounceSerializer.Meta.fields, "report", "parts", "raw_size", "raw", "raw_truncated"]


class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "kind", "value", "reason", "source", "note", "contact", "bounce_id", "bounce_kind",
                  "bounce_reason", "rule_id", "expires_at", "created_at"]
        read_only_fields = ["id", "source", "contact", "bounce_id", "bounce_kind", "bounce_reason", "rule_id",
                            "expires_at", "created_at"]
        # uniqueness is handled by the service (adding twice is not an error)
        validators: list = []


class ContactSerializer(serializers.ModelSerializer):
    suppression = serializers.SerializerMethodField()
    deliverable = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id", "email", "name", "status", "deliverable", "has_bounced", "bounced_address",
            "hard_bounce_count", "soft_bounce_count", "consecutive_bounces", "bounce_score",
            "last_bounce_at", "suppression", "created_at", "updated_at",
        ]

    def _suppressions(self) -> dict:
        return self.context.get("suppressions", {})

    def get_suppression(self, obj: Contact) -> dict | None:
        address = (obj.email or obj.bounced_address or "").strip().lower()
        hit = self._suppressions().get(address)
        return None if hit is None else {"kind": hit.kind, "value": hit.value, "reason": hit.reason}

    def get_deliverable(self, obj: Contact) -> bool:
        """Active, with an address, not suppressed (list subscriptions aside)."""
        return bool(obj.email) and obj.status == Contact.Status.ACTIVE and self.get_suppression(obj) is None


class BulkSuppressionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["add", "release"])
    kind = serializers.ChoiceField(choices=Suppression.Kind.choices, default=Suppression.Kind.ADDRESS)
    values = serializers.ListField(
        child=serializers.CharField(max_length=320, allow_blank=True), max_length=MAX_BULK_ADDRESSES,
        help_text="Addresses (or domains, with kind=domain), at most 10,000.",
    )
    reason = serializers.ChoiceField(choices=Suppression.Reason.choices, default=Suppression.Reason.MANUAL)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    preview = serializers.BooleanField(default=False, help_text="Only count; change nothing.")


class BulkSuppressionResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    preview = serializers.BooleanField()
    requested = serializers.IntegerField()
    invalid = serializers.ListField(child=serializers.CharField())
    changed = serializers.IntegerField(help_text="Added / released (or, in a preview, that would be).")
    unchanged = serializers.IntegerField(help_text="Already suppressed / not suppressed.")


class CheckReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class CheckSerializer(serializers.Serializer):
    email = serializers.CharField()
    allowed = serializers.BooleanField()
    reasons = CheckReasonSerializer(many=True)
    contact = serializers.DictField(allow_null=True)
    suppression = serializers.DictField(allow_null=True)


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = [
            "id", "name", "subject", "status", "mailing_list", "sent_at", "finished_at", "sent_count",
            "refused_count", "deferred_count", "skipped_count", "created_at",
        ]


class CampaignResultsSerializer(serializers.Serializer):
    attempted = serializers.IntegerField()
    sent = serializers.IntegerField()
    refused = serializers.IntegerField()
    deferred = serializers.IntegerField()
    awaiting_retry = serializers.IntegerField()
    skipped = serializers.IntegerField()
    in_flight = serializers.IntegerField()
    delivered = serializers.IntegerField()
    bounced_recipients = serializers.IntegerField()
    bounce_rate = serializers.FloatField(allow_null=True)
    by_kind = serializers.DictField(child=serializers.IntegerField())
    by_kind_recipients = serializers.DictField(child=serializers.IntegerField())
    by_reason = serializers.ListField(child=serializers.DictField())
    by_domain = serializers.ListField(child=serializers.DictField())
    computed_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField()


class CampaignDetailSerializer(CampaignSerializer):
    results = CampaignResultsSerializer(read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "results"]


class MailboxSerializer(serializers.ModelSerializer):
    class Meta:
        model = Mailbox
        fields = [
            "id", "name", "protocol", "enabled", "interval_minutes", "batch_size", "last_run_at",
            "last_success_at", "last_error_at",
        ]


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProcessingRun
        fields = [
            "id", "mailbox", "trigger", "status", "dry_run", "created_at", "started_at", "finished_at",
            "total", "processed", "fetched", "duplicates", "hard", "soft", "blocked", "complaint",
            "autoreply", "delay", "unknown", "unmatched", "errors",
        ]


class IncidentSerializer(serializers.ModelSerializer):
    """An incident of the deliverability guard (issue 14): scope, why, held bounces, resolution."""

    class Meta:
        model = Incident
        fields = [
            "id", "scope", "key", "trigger", "cause", "status", "opened_at", "window_start", "window_count",
            "baseline", "held_count", "last_bounce_at", "domains", "resolved_at", "resolution_note",
        ]


class IncidentDetailSerializer(IncidentSerializer):
    """An incident with its bounces by kind and state and its most frequent diagnostics."""

    by_kind = serializers.DictField(child=serializers.IntegerField())
    by_state = serializers.DictField(child=serializers.IntegerField())
    samples = serializers.ListField(child=serializers.DictField())

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "by_kind", "by_state", "samples"]


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = BounceRule
        fields = [
            "id", "name", "pattern", "match_type", "section", "case_sensitive", "bounce_type", "reason",
            "actions_mode", "actions", "message_action", "message_folder", "delete_message", "in_statistics",
            "fallback_only", "position", "enabled", "notes", "hit_count", "last_hit_at", "created_at",
        ]
        read_only_fields = ["id", "hit_count", "last_hit_at", "created_at"]
        extra_kwargs = {"position": {"required": False}}

    def validate(self, attrs: dict) -> dict:
        """The model's own checks (RE2 syntax, length, empty matches, ignore-rule actions)."""
        from django.core.exceptions import ValidationError as DjangoValidationError

        values = {k: v for k, v in attrs.items() if k not in ("position", "limit")}
        rule = BounceRule(**values)
        try:
            rule.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class RuleTestSerializer(RuleSerializer):
    limit = serializers.IntegerField(default=2000, min_value=1, max_value=20000,
                                     help_text="How many of the most recent stored bounces to examine.")

    class Meta(RuleSerializer.Meta):
        fields = [*RuleSerializer.Meta.fields, "limit"]
        extra_kwargs = {"position": {"required": False}, "name": {"required": False}}


class RuleTestRowSerializer(serializers.Serializer):
    bounce = serializers.IntegerField()
    recipient = serializers.CharField()
    old_kind = serializers.CharField()
    new_kind = serializers.CharField()
    shadowed_by = serializers.CharField()
    contact_effects = serializers.ListField(child=serializers.CharField())


class RuleTestResultSerializer(serializers.Serializer):
    examined = serializers.IntegerField()
    matched = serializers.IntegerField()
    shadowed = serializers.IntegerField()
    verdict_changes = serializers.IntegerField()
    transitions = serializers.ListField(child=serializers.DictField())
    contact_changes = serializers.DictField(child=serializers.IntegerField())
    sample = RuleTestRowSerializer(many=True)
