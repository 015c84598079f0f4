from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from .models import Bounce, BounceRule, Mailbox, ProcessingRun, RawMessage

SECRET_FIELDS = ("password", "oauth2_client_secret", "oauth2_refresh_token")


class MailboxForm(forms.ModelForm):
    """Secrets are write-only: the form never renders them back; blank keeps the stored one."""

    class Meta:
        model = Mailbox
        fields = "__all__"  # noqa: DJ007 - the admin fieldsets choose what is shown
        widgets = {
            "password": forms.PasswordInput(render_value=False),
            "oauth2_client_secret": forms.PasswordInput(render_value=False),
            "oauth2_refresh_token": forms.PasswordInput(render_value=False),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            field = self.fields[name]
            field.required = False
            field.initial = ""
            if self.instance.pk and getattr(self.instance, name):
                field.help_text = "A value is stored. Leave blank to keep it."

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            for name in SECRET_FIELDS:
                if not cleaned.get(name):
                    cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = (
        "name", "protocol", "host", "folder", "enabled", "interval_minutes", "last_run_at",
        "last_success_at", "short_error",
    )
    list_filter = ("protocol", "enabled")
    search_fields = ("name", "host", "username")
    filter_horizontal = ("lists",)
    readonly_fields = ("uidvalidity", "last_run_at", "last_success_at", "last_error", "last_error_at")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "protocol", "lists")}),
        ("Server", {"fields": ("host", "port", "security", "verify_certificate", "folder", "path")}),
        (
            "Login",
            {"fields": ("auth", "username", "password", "oauth2_token_url", "oauth2_client_id",
                        "oauth2_client_secret", "oauth2_refresh_token", "oauth2_scope")},
        ),
        (
            "Processing",
            {"fields": ("fetch_mode", "interval_minutes", "batch_size", "max_messages_per_run",
                        "processed_action", "processed_folder", "unmatched_action", "unmatched_folder")},
        ),
        ("State", {"fields": ("uidvalidity", "last_run_at", "last_success_at", "last_error", "last_error_at")}),
    )

    @admin.display(description="last error")
    def short_error(self, obj: Mailbox) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error


@admin.register(BounceRule)
class BounceRuleAdmin(admin.ModelAdmin):
    list_display = (
        "position", "name", "match_type", "section", "pattern", "bounce_type", "action", "enabled",
        "hit_count", "last_hit_at",
    )
    list_display_links = ("name",)
    list_editable = ("position", "enabled")
    list_filter = ("enabled", "bounce_type", "action", "section", "match_type")
    search_fields = ("name", "pattern", "reason")


@admin.register(ProcessingRun)
class ProcessingRunAdmin(admin.ModelAdmin):
    list_display = (
        "id", "mailbox", "trigger", "status", "started_at", "finished_at", "fetched", "hard", "soft",
        "blocked", "complaint", "autoreply", "unknown", "unmatched", "errors",
    )
    list_filter = ("status", "trigger", "mailbox")
    list_select_related = ("mailbox",)
    readonly_fields = [f.name for f in ProcessingRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(RawMessage)
class RawMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "mailbox", "source", "dedupe_key", "size", "state", "disposed", "received_at")
    list_filter = ("state", "source", "disposed", "mailbox")
    search_fields = ("dedupe_key", "sha256")
    list_select_related = ("mailbox",)
    show_full_result_count = False
    exclude = ("raw",)
    readonly_fields = (
        "mailbox", "source", "dedupe_key", "sha256", "size", "state", "disposed", "run", "error",
        "attempts", "received_at", "processed_at", "raw_preview",
    )

    @admin.display(description="raw message (first 64 KB, shown as text)")
    def raw_preview(self, obj: RawMessage) -> str:
        # Shown escaped inside <pre>, never rendered as HTML.
        text = bytes(obj.raw[:65536]).decode("utf-8", errors="replace")
        return format_html('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>', text)

    def has_add_permission(self, request):
        return False


@admin.register(Bounce)
class BounceAdmin(admin.ModelAdmin):
    list_display = (
        "bounced_at", "recipient", "kind", "reason", "status_code", "campaign", "contact", "match_method",
        "state", "matched_rule",
    )
    list_filter = ("kind", "state", "match_method", "reason", "mailbox")
    search_fields = ("recipient", "diagnostic", "status_code")
    list_select_related = ("campaign", "contact", "matched_rule")
    raw_id_fields = ("raw_message", "sent_message", "contact", "campaign", "run")
    show_full_result_count = False
    date_hierarchy = "bounced_at"
