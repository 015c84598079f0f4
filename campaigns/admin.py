from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from . import guardrails, services
from .models import (
    Campaign,
    CampaignGuardrail,
    CampaignStats,
    GuardrailCount,
    GuardrailSettings,
    SentMessage,
)


class CampaignGuardrailInline(admin.StackedInline):
    """The campaign's own guardrail thresholds (empty: the site-wide value); the pause state is
    the guardrail's to write."""

    model = CampaignGuardrail
    can_delete = False
    verbose_name = verbose_name_plural = "guardrail thresholds of this campaign (empty: site-wide)"
    fields = ("min_sent", "bounce_warn_percent", "bounce_pause_percent", "complaint_warn_percent",
              "complaint_pause_percent", "pause_reason", "resumed_at", "resumed_by")
    readonly_fields = ("pause_reason", "resumed_at", "resumed_by")

    # Whoever may edit the campaign may edit its thresholds; a view-only user only reads them.
    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("campaigns.view_campaign") or request.user.has_perm("campaigns.change_campaign")

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("campaigns.change_campaign")

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("campaigns.change_campaign")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "subject", "mailing_list", "status", "paused_why", "sent_at", "sent_count", "error",
                    "results_link")
    list_filter = ("status", "mailing_list")
    search_fields = ("name", "subject")
    list_select_related = ("mailing_list", "guardrail")
    inlines = [CampaignGuardrailInline]
    readonly_fields = (
        "results_link", "status", "sent_at", "finished_at", "sent_count", "refused_count", "deferred_count",
        "skipped_count", "last_error", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "mailing_list", "results_link")}),
        ("Message", {"fields": ("from_email", "subject", "body_text", "body_html")}),
        ("Sending", {"fields": ("status", "sent_at", "finished_at", "sent_count", "refused_count",
                                "deferred_count", "skipped_count", "last_error")}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    actions = ["send_campaigns", "pause_campaigns", "retry_deferred_now", "recount_campaigns"]

    def has_send_permission(self, request) -> bool:
        """Send, pause and retry need campaigns.send_campaign: view or change is not enough."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.send_campaign")

    @admin.display(description="last sending error")
    def error(self, obj: Campaign) -> str:
        """Shown until a later message is accepted (campaigns.services clears it)."""
        return (obj.last_error[:120] + "…") if len(obj.last_error) > 120 else obj.last_error
    @admin.display(description="why paused")
    def paused_why(self, obj: Campaign) -> str:
        """The guardrail's reason (which rate, which scope, the figures) for a paused campaign."""
        if obj.status != Campaign.Status.PAUSED:
            return ""
        guard = getattr(obj, "guardrail", None)  # list_select_related: no query per row
        if guard is not None and guard.paused_at:
            return guard.pause_reason
        return obj.last_error or "Paused by an operator"

    @admin.display(description="results")
    def results_link(self, obj: Campaign) -> str:
        if not obj.pk:
            return "–"
        return format_html('<a href="{}">results</a>', reverse("campaigns:results", args=[obj.pk]))

    @admin.action(description="Send (or resume) the selected campaigns", permissions=["send"])
    def send_campaigns(self, request, queryset):
        for campaign in queryset:
            try:
                services.queue_campaign(campaign=campaign, actor=request.user)
            except services.CampaignError as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: queued for sending.", messages.SUCCESS)

    @admin.action(description="Pause the selected campaigns", permissions=["send"])
    def pause_campaigns(self, request, queryset):
        for campaign in queryset:
            try:
                services.pause_campaign(campaign=campaign)
            except services.CampaignError as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: paused after the current batch.", messages.SUCCESS)

    @admin.action(description="Retry the deferred messages now (instead of waiting for their next attempt)",
                  permissions=["send"])
    def retry_deferred_now(self, request, queryset):
        for campaign in queryset:
            if campaign.status not in services.RETRYABLE_CAMPAIGN_STATUSES:
                self.message_user(request, f"{campaign}: only a sending or sent campaign retries its messages.",
                                  messages.ERROR)
                continue
            due = services.retry_deferred_now(campaign=campaign)
            self.message_user(request, f"{campaign}: {due} deferred messages queued for another attempt.",
                              messages.SUCCESS)

    @admin.action(description="Recount the send counters from the sent messages", permissions=["change"])
    def recount_campaigns(self, request, queryset):
        for campaign in queryset:
            services.recount_campaign(campaign=campaign)
        self.message_user(request, f"{queryset.count()} campaigns recounted.", messages.SUCCESS)


class RetryPendingFilter(admin.SimpleListFilter):
    """Deferred messages waiting for another attempt, or given up."""

    title = "deferred retries"
    parameter_name = "retry"

    def lookups(self, request, model_admin):
        return [("pending", "waiting for another attempt"), ("given_up", "deferred, not retried any more")]

    def queryset(self, request, queryset):
        deferred = queryset.filter(status=SentMessage.Status.DEFERRED)
        if self.value() == "pending":
            return deferred.filter(next_attempt_at__isnull=False)
        if self.value() == "given_up":
            return deferred.filter(next_attempt_at__isnull=True)
        return queryset


@admin.register(SentMessage)
class SentMessageAdmin(admin.ModelAdmin):
    list_display = ("email", "campaign", "status", "sent_at", "attempts", "next_attempt_at", "token", "message_id")
    list_filter = ("status", RetryPendingFilter, "campaign")
    search_fields = ("email", "message_id", "token")
    list_select_related = ("campaign",)
    raw_id_fields = ("contact", "campaign")
    show_full_result_count = False
    # Send attempts are written by the sender only (claims depend on them).
    readonly_fields = ("token", "created_at", "attempts", "last_attempt_at", "next_attempt_at", "last_reply")


@admin.register(CampaignStats)
class CampaignStatsAdmin(admin.ModelAdmin):
    """Stored bounce figures of the results page (a cache rebuilt from Bounce rows): read-only."""

    list_display = ("campaign", "computed_at", "bounce_rows", "last_bounced_at", "duration_ms")
    list_select_related = ("campaign",)
    readonly_fields = ("campaign", "computed_at", "bounce_rows", "last_bounced_at", "duration_ms", "data",
                       "refresh_requested_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GuardrailSettings)
class GuardrailSettingsAdmin(admin.ModelAdmin):
    """The site-wide guardrail thresholds: one row (created from the GUARDRAIL_* settings)."""

    list_display = ("__str__", "min_sent", "bounce_warn_percent", "bounce_pause_percent", "complaint_warn_percent",
                    "complaint_pause_percent", "sending_window_hours", "updated_at")

    def has_add_permission(self, request) -> bool:
        # one row (migration 0008 makes it); added again only if it is gone
        return super().has_add_permission(request) and not GuardrailSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changeform_initial_data(self, request) -> dict:
        return {**guardrails.initial_values(), **super().get_changeform_initial_data(request)}


@admin.register(CampaignGuardrail)
class CampaignGuardrailAdmin(admin.ModelAdmin):
    """Each campaign's guardrail state (its thresholds are edited on the campaign's page): read-only."""

    list_display = ("campaign", "paused_at", "pause_reason", "resumed_at", "resumed_by")
    list_select_related = ("campaign",)
    search_fields = ("campaign__name",)
    readonly_fields = ("campaign", "min_sent", "bounce_warn_percent", "bounce_pause_percent",
                       "complaint_warn_percent", "complaint_pause_percent", "paused_at", "pause_reason",
                       "pause_detail", "warnings", "resumed_at", "resumed_by")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GuardrailCount)
class GuardrailCountAdmin(admin.ModelAdmin):
    """The guardrails' running counts (written by the sender and the pipeline): read-only."""

    list_display = ("scope", "campaign", "key", "period", "sent", "bounced", "complained", "base_sent")
    list_filter = ("scope",)
    list_select_related = ("campaign",)
    search_fields = ("key",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
