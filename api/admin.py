"""Admin for API keys and webhooks: keys are created (token shown once) and revoked here;
endpoints are configured here; the delivery log shows every attempt and redelivers."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import ApiKey, EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "owner", "scope"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "owner", "scope", "revoked", "last_used_at", "created_at")
    list_filter = ("scope", "revoked")
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("prefix", "revoked", "revoked_at", "last_used_at", "created_at")
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "owner", "scope"]
        return ["name", "owner", "scope", "prefix", "revoked", "revoked_at", "last_used_at", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # a key's owner and scope are fixed: a new key is made for another use
        return self.readonly_fields + (("owner", "scope") if obj is not None else ())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            # Staff are semi-trusted: only a superuser may make a key that acts as someone else.
            from django.contrib.auth import get_user_model

            users = get_user_model().objects.filter(is_active=True)
            kwargs["queryset"] = users if request.user.is_superuser else users.filter(pk=request.user.pk)
            kwargs.setdefault("initial", request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj: ApiKey, form, change) -> None:
        if change:
            obj.save(update_fields=["name", "updated_at"])
            return
        owner = obj.owner if request.user.is_superuser else request.user
        key, token = services.create_api_key(name=obj.name, owner=owner, scope=obj.scope)
        obj.pk, obj.prefix, obj._token = key.pk, key.prefix, token  # shown once by response_add

    def response_add(self, request, obj: ApiKey, post_url_continue=None):
        context = {**self.admin_site.each_context(request), "key": obj, "token": obj._token,
                   "opts": self.model._meta, "title": "API key created"}
        response = TemplateResponse(request, "admin/api/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        count = services.revoke_api_keys(key_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} key(s) revoked.")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="https:// URL that receives POSTed events.")
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple,
                                            required=False)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("https://", "http://")):
            raise forms.ValidationError("Use an https:// URL.")
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "description", "enabled", "failure_count", "last_success_at", "last_failure_at",
                    "log_link")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    readonly_fields = ("signing_secret", "failure_count", "disabled_at", "disabled_reason", "last_success_at",
                       "last_failure_at", "created_at", "log_link")
    actions = ["enable", "rotate_secret"]

    @admin.display(description="signing secret")
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        return obj.secret if obj.pk else "(made when the endpoint is saved)"

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if not self.has_change_permission(request, obj):
            fields.remove("signing_secret")  # viewers see the configuration, not the secret
        return fields

    @admin.display(description="deliveries")
    def log_link(self, obj: WebhookEndpoint) -> str:
        if not obj.pk:
            return "–"
        url = reverse("admin:api_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">delivery log</a>', url)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        services.endpoints_changed()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        services.endpoints_changed()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        services.endpoints_changed()

    @admin.action(description="Enable and resume pending deliveries", permissions=["change"])
    def enable(self, request, queryset):
        for endpoint in queryset:
            services.enable_endpoint(endpoint=endpoint)
        messages.success(request, f"{queryset.count()} endpoint(s) enabled.")

    @admin.action(description="Rotate the signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            services.rotate_endpoint_secret(endpoint=endpoint)
        messages.warning(request, "New secrets made: give each receiver its new secret (shown on the endpoint).")


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("event_id",)
    readonly_fields = ("event_id", "type", "payload", "created_at")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: per endpoint, status, attempts, response code and time."""

    list_display = ("created_at", "event_type", "event_ref", "endpoint", "status", "attempts", "response_code",
                    "response_ms", "last_error", "next_attempt_at", "delivered_at")
    list_filter = ("status", "endpoint", "event__type")
    search_fields = ("event__event_id",)
    list_select_related = ("event", "endpoint")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields if f.name not in ("claim", "locked_until")]
    exclude = ("claim", "locked_until")
    show_full_result_count = False
    actions = ["redeliver"]

    @admin.display(description="event")
    def event_ref(self, obj: WebhookDelivery) -> str:
        return obj.event.event_id

    @admin.display(description="type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    def has_add_permission(self, request):
        return False

    @admin.action(description="Redeliver the selected events", permissions=["change"])
    def redeliver(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        count = services.redeliver(delivery_ids=ids)
        disabled = queryset.filter(endpoint__enabled=False).count()
        messages.success(request, f"{count} deliveries queued again.")
        if disabled:
            messages.warning(request, f"{disabled} of them are for a disabled endpoint: they wait until it is "
                                      "enabled again.")
