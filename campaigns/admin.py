from django.contrib import admin

from .models import Campaign, SentMessage


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "subject", "mailing_list", "status", "sent_at")
    list_filter = ("status", "mailing_list")
    search_fields = ("name", "subject")
    list_select_related = ("mailing_list",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(SentMessage)
class SentMessageAdmin(admin.ModelAdmin):
    list_display = ("email", "campaign", "status", "sent_at", "token", "message_id")
    list_filter = ("status", "campaign")
    search_fields = ("email", "message_id", "token")
    list_select_related = ("campaign",)
    raw_id_fields = ("contact", "campaign")
    show_full_result_count = False
    readonly_fields = ("token", "created_at")
