"""XOAUTH2 for IMAP/POP3: the SASL string and access-token refresh (stdlib only).

Gmail and Office 365 accept ``AUTHENTICATE XOAUTH2`` with a short-lived access token.
We get that token from the provider's token endpoint with the operator's OAuth2 client
(refresh-token grant, or client-credentials grant for Office 365 app-only access) and
keep it in a per-process cache until shortly before it expires.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import replace

from .base import MailboxConfigError, MailboxError, OAuth2Error, OAuth2Settings, OAuth2Token

# Refresh this many seconds before the provider's expiry, so a token never dies
# between our check and the server's.
EXPIRY_MARGIN = 60.0
# A token reply is a few hundred bytes; never read more than this of what comes back.
MAX_BODY = 64 * 1024

# RFC 6749 section 5.2 error codes: the only words of the provider's reply we show. The
# error_description (and any non-JSON body) is the remote side's free text: a token URL
# pointed at some other web service must not turn "Test connection" into a way to read it.
OAUTH2_ERROR_CODES = frozenset({
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope",
})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A token endpoint answers; it does not send our secrets on to somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


_opener = urllib.request.build_opener(_NoRedirect)

_cache: dict[tuple[str, str, str, str], OAuth2Token] = {}
_cache_lock = threading.Lock()


def xoauth2_sasl_string(username: str, access_token: str) -> bytes:
    """The XOAUTH2 initial client response (before base64), as Google documents it.

    ``user=<user>^Aauth=Bearer <token>^A^A``
    """
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01".encode()


def _cache_key(settings: OAuth2Settings) -> tuple[str, str, str, str]:
    return (settings.token_url, settings.client_id, settings.refresh_token, settings.scope)


def clear_token_cache() -> None:
    """Forget all cached access tokens (tests; credential changes)."""
    with _cache_lock:
        _cache.clear()


class TokenSource:
    """Hands out a valid access token for one :class:`OAuth2Settings`."""

    def __init__(
        self,
        settings: OAuth2Settings,
        *,
        timeout: float = 30.0,
        check_address: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        # The connection's address policy (private networks), applied to the token URL.
        self.check_address = check_address

    def token(self, *, force_refresh: bool = False) -> str:
        """A usable access token; ``force_refresh`` after the server rejected one."""
        key = _cache_key(self.settings)
        now = time.time()
        if not force_refresh:
            with _cache_lock:
                cached = _cache.get(key)
            if cached and (cached.expires_at is None or cached.expires_at - EXPIRY_MARGIN > now):
                return cached.access_token
            configured = self.settings.access_token
            if configured and (
                self.settings.expires_at is None
                or self.settings.expires_at - EXPIRY_MARGIN > now
            ) and cached is None:
                return configured
        if not self.can_refresh:
            raise OAuth2Error(
                "The OAuth2 access token was rejected or expired and cannot be refreshed.",
                hint="Configure the token URL, client id and secret (and a refresh token) "
                "so bouncemgr can renew access tokens itself.",
            )
        fresh = self._request_token()
        with _cache_lock:
            _cache[key] = fresh
        if self.settings.on_token is not None:
            self.settings.on_token(fresh)
        return fresh.access_token

    @property
    def can_refresh(self) -> bool:
        """Whether a new token can be requested (token URL + client configured)."""
        return bool(self.settings.token_url and self.settings.client_id)

    def _request_token(self) -> OAuth2Token:
        s = self.settings
        url = urllib.parse.urlsplit(s.token_url)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise MailboxConfigError(
                "The OAuth2 token URL must be an https:// address.",
                hint="E.g. https://oauth2.googleapis.com/token.",
            )
        if self.check_address is not None:
            self.check_address(url.hostname, url.port or (443 if url.scheme == "https" else 80))
        form: dict[str, str] = {"client_id": s.client_id}
        if s.client_secret:
            form["client_secret"] = s.client_secret
        if s.refresh_token:
            form.update(grant_type="refresh_token", refresh_token=s.refresh_token)
        else:
            form["grant_type"] = "client_credentials"
        if s.scope:
            form["scope"] = s.scope
        request = urllib.request.Request(
            s.token_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                payload = json.loads(response.read(MAX_BODY) or b"{}")
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else ""
            raise OAuth2Error(
                f"Cannot reach the OAuth2 token endpoint {s.token_url}"
                + (f": {detail}." if detail else "."),
                transient=True,
            ) from exc
        except ValueError as exc:
            raise OAuth2Error(
                f"The OAuth2 token endpoint {s.token_url} did not return JSON.",
                transient=True,
            ) from exc
        access = payload.get("access_token") if isinstance(payload, dict) else None
        if not access:
            raise OAuth2Error(f"The OAuth2 token endpoint {s.token_url} returned no access_token.")
        try:
            expires_at = time.time() + float(payload["expires_in"])
        except (KeyError, TypeError, ValueError):
            expires_at = None
        return OAuth2Token(
            access_token=str(access),
            expires_at=expires_at,
            refresh_token=payload.get("refresh_token") or None,
        )

    def _http_error(self, exc: urllib.error.HTTPError) -> MailboxError:
        try:
            body = json.loads(exc.read(MAX_BODY) or b"{}")
        except ValueError:
            body = {}
        error = body.get("error", "") if isinstance(body, dict) else ""
        error = error if isinstance(error, str) and error in OAUTH2_ERROR_CODES else ""
        hint = {
            "invalid_client": "Check the OAuth2 client id and client secret.",
            "invalid_grant": "The refresh token was revoked or expired: sign in again "
            "to get a new one.",
            "unauthorized_client": "The OAuth2 app is not allowed to use this grant type.",
            "invalid_scope": "Check the scope (Office 365: "
            "https://outlook.office365.com/.default; Gmail: https://mail.google.com/).",
        }.get(str(error), "")
        if 300 <= exc.code < 400:
            error, hint = "", "The token URL redirects elsewhere: enter the final token URL."
        return OAuth2Error(
            f"The OAuth2 token endpoint refused to issue a token (HTTP {exc.code})"
            + (f": {error}." if error else "."),
            hint=hint,
            transient=exc.code >= 500 or exc.code == 429,
        )


def with_token(settings: OAuth2Settings, token: OAuth2Token) -> OAuth2Settings:
    """A copy of ``settings`` carrying ``token`` (for callers that persist tokens)."""
    return replace(
        settings,
        access_token=token.access_token,
        expires_at=token.expires_at,
        refresh_token=token.refresh_token or settings.refresh_token,
    )
