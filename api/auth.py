"""Authentication of API requests: an API key (Bearer or Token), or a staff session."""

from __future__ import annotations

import datetime as dt
import threading
import time

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from . import keys
from .models import ApiKey

# last_used_at is written at most this often per key (no write on most requests).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# A key owner's permissions are remembered this long per process (saves two queries per
# request); a permission taken away applies to API keys within this time.
PERMISSIONS_TTL = 5.0

_perms_lock = threading.Lock()
_perms: dict[int, tuple[float, set[str]]] = {}


def forget_permissions() -> None:
    """Drop this process's cached permissions (tests; after changing someone's permissions)."""
    with _perms_lock:
        _perms.clear()


def _with_cached_permissions(user) -> None:
    """Give `user` the permission set Django's ModelBackend would load (two queries), from a
    short per-process cache."""
    now = time.monotonic()
    cached = _perms.get(user.pk)
    if cached is None or cached[0] < now:
        from django.contrib.auth.backends import ModelBackend

        user.__dict__.pop("_perm_cache", None)
        perms = ModelBackend().get_all_permissions(user) if not user.is_superuser else set()
        with _perms_lock:
            if len(_perms) > 10_000:
                _perms.clear()
            _perms[user.pk] = (now + PERMISSIONS_TTL, set(perms))
    else:
        user._perm_cache = set(cached[1])


_KEY_FIELDS = ("id", "name", "scope", "prefix", "hashed_key", "revoked", "last_used_at", "owner_id")
_USER_FIELDS = ("id", "username", "is_active", "is_staff", "is_superuser")
_KEY_SQL: dict[str, str] = {}


def _key_with_owner(prefix: str) -> ApiKey | None:
    """The key with this prefix and its owner, in one query (raw SQL: the per-request path)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    user_model = get_user_model()
    sql = _KEY_SQL.get(connection.vendor)
    if sql is None:
        q = connection.ops.quote_name
        key_cols = ", ".join(f"k.{q(ApiKey._meta.get_field(f).column)}" for f in _KEY_FIELDS)
        user_cols = ", ".join(f"u.{q(user_model._meta.get_field(f).column)}" for f in _USER_FIELDS)
        sql = _KEY_SQL[connection.vendor] = (
            f"SELECT {key_cols}, {user_cols} FROM {q(ApiKey._meta.db_table)} k "
            f"JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = k.{q('owner_id')} "
            f"WHERE k.{q('prefix')} = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(_KEY_FIELDS)
    values = dict(zip(_KEY_FIELDS, row[:n], strict=True))
    last_used = values["last_used_at"]
    if last_used is not None and not isinstance(last_used, dt.datetime):
        from django.utils.dateparse import parse_datetime

        last_used = parse_datetime(str(last_used))
    if last_used is not None and timezone.is_naive(last_used):
        last_used = timezone.make_aware(last_used, dt.UTC)
    values["last_used_at"] = last_used
    values["revoked"] = bool(values["revoked"])
    key = ApiKey(**values)
    owner_values = dict(zip(_USER_FIELDS, row[n:], strict=True))
    owner = user_model(**{k: bool(v) if k.startswith("is_") else v for k, v in owner_values.items()})
    owner._state.adding = False
    key._state.adding = False
    key.owner = owner
    return key


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
        key = _key_with_owner(prefix) if prefix is not None else None
        if key is None or not keys.token_matches(token, key.hashed_key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if not key.owner.is_active:
            raise exceptions.AuthenticationFailed("The owner of this API key is inactive.")
        _with_cached_permissions(key.owner)
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
