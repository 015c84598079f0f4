"""OpenAPI descriptions of our authentication classes (drf-spectacular extensions)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from bounces.models import Bounce, Incident, ProcessingRun
from bounces.rules.models import BounceRule
from campaigns.models import Campaign
from contacts.models import Contact, Suppression

# Choices that share a field name across resources, named for the schema
# (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] points here).
BounceKind = Bounce.Kind
BounceState = Bounce.State
SuppressionKind = Suppression.Kind
SuppressionReason = Suppression.Reason
ContactStatus = Contact.Status
CampaignStatus = Campaign.Status
RunStatus = ProcessingRun.Status
RunTrigger = ProcessingRun.Trigger
IncidentStatus = Incident.Status
IncidentTrigger = Incident.Trigger
RuleAction = BounceRule.Action
RuleBounceType = BounceRule.BounceType


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http", "scheme": "bearer", "bearerFormat": "bmk_…",
            "description": "An API key made in the admin: `Authorization: Bearer bmk_…` "
                           "(`Authorization: Token bmk_…` works too).",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "A staff user's admin session (browsable API, docs page); CSRF applies."}
