"""Rate limits per API key (or staff user): API_THROTTLE_RATE.

A fixed-window counter (`cache.add` + `cache.incr`): O(1) per request, and atomic on a
shared cache. Unauthenticated requests are refused (401) before throttling. Counts live in
the default cache: with a per-process cache each gunicorn worker counts on its own;
configure a shared cache (Redis) for one limit across workers.
"""

from __future__ import annotations

import time

from django.core.cache import cache as default_cache
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiKey


class ApiRateThrottle(SimpleRateThrottle):
    scope = "api"
    cache = default_cache

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        counter = f"{key}:{window}"
        self._wait = (window + 1) * self.duration - now
        self.cache.add(counter, 0, timeout=int(self.duration) + 1)
        try:
            count = self.cache.incr(counter)
        except ValueError:  # expired between add and incr
            self.cache.add(counter, 1, timeout=int(self.duration) + 1)
            count = 1
        return count <= self.num_requests

    def wait(self) -> float:
        return getattr(self, "_wait", None) or 0.0
