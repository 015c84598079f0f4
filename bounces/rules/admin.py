"""Admin of bounce rules (ordered list, hit counts, export, Octeth paste, import); an interface:
imports the rules' models, services and views. Imported by bounces/admin.py.

Links lead to the test/coverage/re-apply pages. The add/change form can test the draft against stored
bounces before saving (the button hands the form to the rule editor, /bounces/rules/).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from bounces.pipeline.decisions import describe_rule
from bounces.pipeline.policies import global_policy

from . import services
from .models import BounceRule, BounceRuleChange, RuleReapply, StarterRuleRecord


@admin.register(BounceRule)
class BounceRuleAdmin(admin.ModelAdmin):
    """The ordered rule list; the add/change form has a "Test against stored bounces" button."""

    change_list_template = "bounces/rules/admin_change_list.html"
    change_form_template = "bounces/rules/admin_change_form.html"
    # Fits 1366 px without sideways scrolling: how a rule matches is one column.
    list_display = (
        "position", "name", "short_pattern", "matching", "bounce_type", "effective_actions", "enabled",
        "hit_count", "test_link",
    )
    list_display_links = ("name",)
    list_editable = ("position", "enabled")
    list_filter = ("enabled", "bounce_type", "actions_mode", "fallback_only", "section", "match_type",
                   "case_sensitive", "message_action")
    search_fields = ("name", "pattern", "reason", "notes")
    ordering = ("position", "id")
    readonly_fields = ("hit_count", "last_hit_at", "created_at", "updated_at", "editor_link", "effective_actions")
    fieldsets = (
        (None, {"fields": ("editor_link", "name", "enabled", "position")}),
        ("Pattern", {"fields": ("pattern", "match_type", "section", "case_sensitive")}),
        ("Meaning", {"fields": ("bounce_type", "reason", "fallback_only", "notes")}),
        ("What happens", {"fields": ("effective_actions", "actions_mode", "actions", "message_action",
                                     "message_folder",
                                     "in_statistics")}),
        ("Statistics", {"fields": ("hit_count", "last_hit_at", "created_at", "updated_at")}),
    )
    actions = ("export_selected", "enable_selected", "disable_selected", "renumber_all")

    @admin.display(description="what it does to a contact")
    def effective_actions(self, obj: BounceRule) -> str:
        """The rule's effective actions in words (the kind's policy unless it says otherwise)."""
        policy = getattr(self, "_policy", None) or global_policy()
        return describe_rule(obj, policy)

    @admin.display(description="pattern")
    def short_pattern(self, obj: BounceRule) -> str:
        return obj.pattern if len(obj.pattern) <= 60 else obj.pattern[:59] + "…"

    @admin.display(description="matches")
    def matching(self, obj: BounceRule) -> str:
        how = f"{obj.get_match_type_display()} in {obj.get_section_display()}"
        return how + (", case-sensitive" if obj.case_sensitive else "")

    @admin.display(description="test")
    def test_link(self, obj: BounceRule) -> str:
        return format_html('<a href="{}">edit &amp; test</a>', reverse("bounces:rule_edit", args=[obj.pk]))

    @admin.display(description="rule editor")
    def editor_link(self, obj: BounceRule) -> str:
        if not obj.pk:
            return format_html(
                'Use <b>Test against stored bounces</b> below to see what the rule would do before saving, '
                'or write it in the <a href="{}">rule editor</a>.', reverse("bounces:rule_new"),
            )
        return format_html(
            '<a href="{}">Open in the rule editor</a> to test changes against stored bounces before saving.',
            reverse("bounces:rule_edit", args=[obj.pk]),
        )

    def get_form(self, request: HttpRequest, obj: BounceRule | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        # Empty position: the rule's default place (hard before soft before either).
        if "position" in form.base_fields:  # not for a view-only user: every field is read-only
            form.base_fields["position"].required = False
            form.base_fields["actions"] = forms.MultipleChoiceField(
                choices=BounceRule.Action.choices, required=False, widget=forms.CheckboxSelectMultiple,
                help_text=BounceRule._meta.get_field("actions").help_text,
            )
            if obj is None:
                form.base_fields["position"].initial = None
        return form

    def save_model(self, request: HttpRequest, obj: BounceRule, form: Any, change: bool) -> None:
        services.place_rule(rule=obj, position=obj.position)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # "Test against stored bounces" posts the admin form to the rule editor's test,
        # which shows the results and saves only when asked.
        if request.method == "POST" and "_test_rule" in request.POST:
            from .views import rule_edit

            return rule_edit(request, pk=int(object_id) if object_id else None)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        self._policy = global_policy()  # read once for the whole list (effective_actions)
        extra_context = {
            **(extra_context or {}),
            # each link only for those who may use it (the pages check the same permissions)
            "rule_links": [
                (label, reverse(name)) for label, name, perms in (
                    ("New rule (with test)", "bounces:rule_new", ["bounces.add_bouncerule"]),
                    ("Coverage", "bounces:rule_coverage", ["bounces.view_bouncerule"]),
                    ("Re-apply to stored bounces", "bounces:rule_reapply", ["bounces.apply_bouncerule"]),
                    ("Paste Octeth lines", "bounces:rule_paste", ["bounces.add_bouncerule"]),
                    ("Import JSON", "bounces:rule_import", ["bounces.add_bouncerule"]),
                    ("Export all", "bounces:rule_export", ["bounces.view_bouncerule"]),
                ) if request.user.has_perms(perms)
            ],
        }
        return super().changelist_view(request, extra_context=extra_context)

    @admin.action(description="Export selected rules as JSON", permissions=["view"])
    def export_selected(self, request: HttpRequest, queryset: QuerySet[BounceRule]) -> HttpResponse:
        from .views import export_response

        return export_response(queryset.order_by("position", "id"))

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[BounceRule]) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, f"{count} rules enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[BounceRule]) -> None:
        count = queryset.update(enabled=False)
        self.message_user(request, f"{count} rules disabled.", messages.SUCCESS)

    @admin.action(description="Renumber all rules 10, 20, 30… (keeps the order)", permissions=["change"])
    def renumber_all(self, request: HttpRequest, queryset: QuerySet[BounceRule]) -> None:
        count = services.renumber_rules()
        self.message_user(request, f"{count} rules renumbered.", messages.SUCCESS)


@admin.register(RuleReapply)
class RuleReapplyAdmin(admin.ModelAdmin):
    """Read-only history of re-applies (undo is on the re-apply page)."""

    list_display = ("id", "created_at", "actor", "actor_label", "scope", "examined", "changed", "undone_at")
    list_select_related = ("actor",)
    readonly_fields = [f.name for f in RuleReapply._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BounceRuleChange)
class BounceRuleChangeAdmin(admin.ModelAdmin):
    """Read-only audit of fields changed by re-applies."""

    list_display = ("id", "reapply", "bounce", "field", "old_value", "new_value", "rule", "applied_at", "undone_at")
    list_filter = ("field",)
    list_select_related = ("reapply", "bounce", "rule")
    raw_id_fields = ("reapply", "bounce", "rule")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StarterRuleRecord)
class StarterRuleRecordAdmin(admin.ModelAdmin):
    """Which starter rules were loaded here (deleting a record lets load_starter_rules add it again)."""

    list_display = ("key", "rule", "loaded_at")
    list_select_related = ("rule",)
    search_fields = ("key",)
    readonly_fields = ("key", "rule", "loaded_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
