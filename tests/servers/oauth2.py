"""A tiny fake OAuth2 provider on loopback (the one thing we cannot run for real).

It plays the part of Microsoft's / Google's token endpoint for the refresh-token and
client-credentials grants, and of an RFC 7662 introspection endpoint that Dovecot's
oauth2 passdb asks whether an access token is valid and whose it is.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeOAuth2Provider:
    """Issue access tokens for registered clients; check them on introspection."""

    client_id: str = "bouncemgr-test-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # refresh token -> username the issued access tokens belong to
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    # username for the client-credentials grant (app-only access, as Office 365 does)
    client_credentials_user: str | None = None
    access_tokens: dict[str, str] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    introspections: int = 0
    expires_in: int = 3600
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def introspection_url(self) -> str:
        return self.base_url + "/introspect"

    def add_refresh_token(self, username: str) -> str:
        """Register a refresh token that yields access tokens for ``username``."""
        token = "rt-" + secrets.token_urlsafe(16)
        self.refresh_tokens[token] = username
        return token

    def revoke_access_tokens(self) -> None:
        """Forget every issued access token (as if they all expired)."""
        self.access_tokens.clear()

    def start(self) -> FakeOAuth2Provider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output clean

            def _reply(self, status: int, payload: dict[str, object]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                form = {
                    k: v[0]
                    for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()
                }
                if self.path == "/token":
                    self._reply(*provider._token(form))
                elif self.path == "/introspect":
                    provider.introspections += 1
                    user = provider.access_tokens.get(form.get("token", ""))
                    if user is None:
                        self._reply(200, {"active": False})
                    else:
                        self._reply(200, {"active": True, "username": user})
                else:
                    self._reply(404, {"error": "not_found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        self.token_requests.append(form)
        if form.get("client_id") != self.client_id or form.get(
            "client_secret"
        ) != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "bad client secret"}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            user = self.refresh_tokens.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {"error": "invalid_grant", "error_description": "refresh token revoked"}
        elif grant == "client_credentials" and self.client_credentials_user:
            user = self.client_credentials_user
        else:
            return 400, {"error": "unsupported_grant_type"}
        access = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = user
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
