"""Template tags of the console frame."""

from __future__ import annotations

from django import template

from console import navigation

register = template.Library()


@register.inclusion_tag("console/_nav.html", takes_context=True)
def console_nav(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated or not user.is_staff:
        return {"nav": None}
    return {"nav": navigation.build(user, request.path)}


@register.inclusion_tag("console/_crumbs.html", takes_context=True)
def console_crumbs(context) -> dict:
    """Home › the current section (for pages that do not build their own trail)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    section = None
    if request is not None and user is not None and user.is_authenticated and user.is_staff:
        section = navigation.build(user, request.path)["current"]
    if section and section["label"] == "Dashboard":
        section = None
    return {"section": section, "title": context.get("title")}
