from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import Campaign, CampaignStats, SentMessage


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "subject", "mailing_list", "status", "sent_at", "sent_count", "error", "results_link")
    list_filter = ("status", "mailing_list")
    search_fields = ("name", "subject")
    list_select_related = ("mailing_list",)
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
