"""Admin pages of alerts, incidents and their counts: read-only lists (an incident is resolved
on its own page, an alert acknowledged from the banner or the list's action). Imported by
bounces/admin.py, which registers them; imports the incidents' models and alerts."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import Alert, Incident, IncidentCount


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(_ReadOnly):
    list_display = ("id", "page_link", "status", "opened_at", "held_count", "resolved_at")
    list_filter = ("status", "scope", "trigger")
    search_fields = ("key", "cause")
    show_full_result_count = False

    @admin.display(description="incident")
    def page_link(self, obj: Incident) -> str:
        return format_html('<a href="{}">{}</a>', reverse("bounces:incident_detail", args=[obj.pk]), obj.label)


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    list_display = ("created_at", "severity", "kind", "title", "acknowledged_at", "acknowledged_by")
    list_filter = ("kind", "severity", ("acknowledged_at", admin.EmptyFieldListFilter))
    list_select_related = ("acknowledged_by",)
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge the selected alerts (hide their banner)", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        n = queryset.filter(acknowledged_at__isnull=True).update(acknowledged_at=timezone.now(),
                                                                 acknowledged_by=request.user)
        self.message_user(request, f"{n} alerts acknowledged.", messages.SUCCESS)

    def has_acknowledge_permission(self, request) -> bool:
        return request.user.has_perm("bounces.change_alert")


@admin.register(IncidentCount)
class IncidentCountAdmin(_ReadOnly):
    list_display = ("scope", "minute", "blocked", "failed", "total")
    search_fields = ("scope",)
    show_full_result_count = False
