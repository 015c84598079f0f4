"""Who may do what: a signed-in caller, the key's scope, and the owner's model permissions."""

from __future__ import annotations

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from .models import ApiKey

_ACTION_BY_METHOD = {
    "GET": "view", "HEAD": "view", "OPTIONS": "view",
    "POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete",
}


def required_perms(request: Request, view) -> list[str]:
    """The Django permissions a request needs.

    A view names them per method in `perms` ({"GET": [...], "POST": [...]}), or they follow
    from its queryset's model: view for reads, add / change / delete for writes.
    """
    method = "GET" if request.method == "HEAD" else request.method
    declared = getattr(view, "perms", None)
    if declared is not None:
        return list(declared.get(method, declared.get("*", [])))
    queryset = getattr(view, "queryset", None)
    if queryset is None:
        return []
    opts = queryset.model._meta
    return [f"{opts.app_label}.{_ACTION_BY_METHOD.get(method, 'change')}_{opts.model_name}"]


class ApiPermission(permissions.BasePermission):
    """A signed-in caller (API key or staff session); a read-only key only reads (or runs a
    view's `read_only_methods`, such as testing a draft rule); the owner's model permissions."""

    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        key = request.auth if isinstance(request.auth, ApiKey) else None
        read_only = request.method in permissions.SAFE_METHODS or request.method in getattr(
            view, "read_only_methods", ()
        )
        if key is not None and key.scope != ApiKey.Scope.WRITE and not read_only:
            raise exceptions.PermissionDenied("This API key is read-only.")
        missing = [p for p in required_perms(request, view) if not user.has_perm(p)]
        if missing:
            raise exceptions.PermissionDenied(f"The key's owner lacks the permission {missing[0]!r}.")
        return True
