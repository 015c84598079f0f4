"""Rate limits per API key (or staff user): API_THROTTLE_RATE.

Unauthenticated requests are refused (401) before throttling. Counts live in the default
cache: with a per-process cache each gunicorn worker counts on its own; configure a shared
cache (Redis) for one limit across workers.
"""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from .models import ApiKey


class ApiRateThrottle(SimpleRateThrottle):
    scope = "api"

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}
