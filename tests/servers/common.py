"""Small helpers shared by the test servers."""

from __future__ import annotations

import os
import socket
import time

import pytest


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float = 20.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def unavailable(reason: str) -> None:
    """Skip a test whose real server cannot run here; on CI (CI=true) that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test service unavailable on CI: {reason}", pytrace=False)
    pytest.skip(reason)
