"""A real HTTP server on loopback that receives webhooks, for the tests and the bench.

It records every request (headers, body) and answers per `behaviour`: a status code, or
failing the first N requests of each webhook-id, or holding a request open for a while
(to kill a worker mid-delivery). Runs in a thread; stop it with `stop()`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers.common import free_loopback_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Behaviour:
    status: int = 200
    fail_first: int = 0  # answer 500 to the first N requests of each webhook-id
    hold_seconds: float = 0.0  # sleep this long before answering the first request of each id


@dataclass
class Receiver:
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Received] = field(default_factory=list)
    record: bool = True
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self.count = 0
        self.first_request = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._answer(self, body)

            def log_message(self, *args) -> None:
                pass

        self.port = self.port or free_loopback_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        msg_id = handler.headers.get("webhook-id", "")
        with self._lock:
            self._seen[msg_id] += 1
            nth = self._seen[msg_id]
            self.count += 1
        self.first_request.set()
        b = self.behaviour
        if b.hold_seconds and nth == 1:
            time.sleep(b.hold_seconds)
        status = 500 if nth <= b.fail_first else b.status
        if self.record:
            with self._lock:
                self.requests.append(Received({k.lower(): v for k, v in handler.headers.items()}, body, status))
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def delivered_ids(self) -> list[str]:
        """webhook-ids of the requests answered with a 2xx."""
        return [r.headers["webhook-id"] for r in self.requests if 200 <= r.status < 300]
