"""Authentication of API requests: an API key (Bearer or Token), or a staff session."""

from __future__ import annotations

import datetime as dt
import hmac
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

def _key_cache_seconds() -> float:
    """How long a verified key (and its owner) is remembered per process, by the SHA-256 of
    its token, so most requests need no query to authenticate (issue 17, speed): settings'
    API_KEY_CACHE_SECONDS, 5 by default; 0 checks the database on every request. A revocation
    applies at once in the process that made it (`revoke_api_keys` calls `forget_keys`) and
    within this time in the other server processes, as does an owner made inactive."""
    from django.conf import settings

    return float(getattr(settings, "API_KEY_CACHE_SECONDS", 5.0))


_keys_lock = threading.Lock()
_keys: dict[str, tuple[float, dict, dict]] = {}


def forget_permissions() -> None:
    """Drop this process's cached permissions (tests; after changing someone's permissions)."""
    with _perms_lock:
        _perms.clear()


def forget_keys() -> None:
    """Drop this process's verified keys (after a revocation; tests)."""
    with _keys_lock:
        _keys.clear()


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


def _build_key(values: dict, owner_values: dict) -> ApiKey:
    """Fresh ApiKey and owner instances from the (cached) column values."""
    from django.contrib.auth import get_user_model

    key = ApiKey(**values)
    owner = get_user_model()(**owner_values)
    owner._state.adding = False
    key._state.adding = False
    key.owner = owner
    return key


def _key_row(prefix: str) -> tuple[dict, dict] | None:
    """(key column values, owner column values) of the key with this prefix, one query."""
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
    owner_values = {k: bool(v) if k.startswith("is_") else v
                    for k, v in zip(_USER_FIELDS, row[n:], strict=True)}
    return values, owner_values


def _verified_key(token: str, prefix: str) -> ApiKey | None:
    """The key this token belongs to (secret checked), from the short per-process cache of
    keys verified before, else from the database. Only a valid, unrevoked key of an active
    owner is cached; refusals always come from the database."""
    digest = keys.hash_token(token)
    now = time.monotonic()
    cached = _keys.get(digest)
    if cached is not None and cached[0] >= now:
        return _build_key(dict(cached[1]), dict(cached[2]))
    found = _key_row(prefix)
    if found is None or not hmac.compare_digest(digest, found[0]["hashed_key"]):
        return None
    values, owner_values = found
    ttl = _key_cache_seconds()
    if ttl > 0 and not values["revoked"] and owner_values["is_active"]:
        with _keys_lock:
            if len(_keys) > 10_000:
                _keys.clear()
            _keys[digest] = (now + ttl, values, owner_values)
    return _build_key(dict(values), dict(owner_values))


def _remember_last_used(token: str, moment: dt.datetime) -> None:
    cached = _keys.get(keys.hash_token(token))
    if cached is not None:
        cached[1]["last_used_at"] = moment


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer bmk_…` or `Authorization: Token bmk_…`.

    One query (the key with its owner), none for a key verified in the last
    API_KEY_CACHE_SECONDS. A revoked key, a wrong secret or an inactive owner is refused
    with 401. `request.auth` is the ApiKey.
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
        key = _verified_key(token, prefix) if prefix is not None else None
        if key is None:
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
            _remember_last_used(token, now)
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
