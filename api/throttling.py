"""Rate limits: per API key (or staff user), and a lower one per client IP for the rest.

Counts live in the default cache: with a per-process cache each gunicorn worker counts
on its own; configure a shared cache (Redis) for one limit across workers.
"""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from .models import ApiKey


class ApiRateThrottle(SimpleRateThrottle):
    scope = "api"

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return self.cache_format % {"scope": "api_anon", "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        authenticated = bool(request.user and request.user.is_authenticated)
        self.scope = "api" if authenticated else "api_anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
