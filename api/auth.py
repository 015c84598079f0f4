"""Authentication of API requests: an API key (Bearer or Token), or a staff session."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from . import keys
from .models import ApiKey

# last_used_at is written at most this often per key (no write on most requests).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer bmk_…` or `Authorization: Token bmk_…`.

    One query (the key with its owner). A revoked key, a wrong secret or an inactive owner
    is refused with 401. `request.auth` is the ApiKey.
    """

    keywords = ("bearer", "token")

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected '<scheme> <token>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        prefix = keys.prefix_of(token)
        key = None
        if prefix is not None:
            key = ApiKey.objects.select_related("owner").filter(prefix=prefix).first()
        if key is None or not keys.token_matches(token, key.hashed_key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if not key.owner.is_active:
            raise exceptions.AuthenticationFailed("The owner of this API key is inactive.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key.owner, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The admin's session, for staff using the browsable API and the docs page (CSRF enforced)."""

    def authenticate(self, request: Request):
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result
