"""Sending one signed webhook request (no Django models here).

Standard Webhooks: the body is the JSON event, signed with HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}` by the `standardwebhooks` package. Requests go
only to public addresses unless private networks are allowed (the host is resolved once
and the connection is made to the checked address, so DNS cannot point it elsewhere
afterwards). Redirects are not followed. Remote error text is never stored: failures are
categorised ("HTTP 503", "timeout", "connection refused", ...).
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

USER_AGENT = "bouncemgr-webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    """The outcome of one request."""

    ok: bool
    status: int | None
    ms: int
    error: str = ""


class BlockedAddressError(Exception):
    """The endpoint resolves to an address outbound requests must not reach."""


def address_allowed(ip: str) -> bool:
    """Whether a request may go to `ip`: a public unicast address."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
                or addr.is_reserved or addr.is_unspecified)


def signed_headers(*, secret: str, msg_id: str, body: bytes, now: dt.datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=now, data=body),
    }


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Sender:
    """Posts to one endpoint URL, keeping the connection open between requests."""

    def __init__(self, url: str, *, timeout: float, allow_private: bool) -> None:
        self.url = url
        self.timeout = timeout
        self.allow_private = allow_private
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._conn: http.client.HTTPConnection | None = None

    def _resolve(self) -> str:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        addresses = [info[4][0] for info in infos]
        if not self.allow_private and not all(address_allowed(a) for a in addresses):
            raise BlockedAddressError(self.host)
        return addresses[0]

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme not in ("http", "https") or not self.host:
                raise ValueError("invalid URL")
            ip = self._resolve()
            cls = _PinnedHTTPSConnection if self.scheme == "https" else _PinnedHTTPConnection
            self._conn = cls(self.host, self.port, ip, self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, body: bytes, headers: dict[str, str]) -> Attempt:
        """POST `body`; 2xx is success, anything else a categorised failure."""
        started = time.monotonic()
        all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        try:
            for retry_on_stale in (True, False):
                conn = self._connection()
                reused = conn.sock is not None
                try:
                    conn.request("POST", self.path, body=body, headers=all_headers)
                    response = conn.getresponse()
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # a kept-alive connection the server closed meanwhile: once more, fresh
                    self.close()
                    if not (reused and retry_on_stale):
                        raise
            data = response.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES or response.will_close:
                self.close()
            status = response.status
        except BlockedAddressError:
            self.close()
            return Attempt(False, None, _ms(started), "blocked: private or local address")
        except ValueError:
            self.close()
            return Attempt(False, None, _ms(started), "invalid URL")
        except socket.gaierror:
            self.close()
            return Attempt(False, None, _ms(started), "DNS lookup failed")
        except TimeoutError:
            self.close()
            return Attempt(False, None, _ms(started), "timeout")
        except ConnectionRefusedError:
            self.close()
            return Attempt(False, None, _ms(started), "connection refused")
        except ssl.SSLError:
            self.close()
            return Attempt(False, None, _ms(started), "TLS error")
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Attempt(False, None, _ms(started), f"connection error ({type(exc).__name__})")
        if 200 <= status < 300:
            return Attempt(True, status, _ms(started))
        return Attempt(False, status, _ms(started), f"HTTP {status}")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
