"""A loopback TCP proxy whose connections the test can cut at will.

Used to drop an IMAP/POP3 connection in the middle of a fetch, the way a NAT timeout or
a server restart does, without touching the server: :meth:`CuttableProxy.cut` closes all
live connections; ``cut_after_bytes`` closes a connection once that many bytes went
from the server to the client (i.e. in the middle of a literal).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class CuttableProxy:
    """Forward ``127.0.0.1:port`` to ``target``; start with :meth:`start`."""

    target: tuple[str, int]
    port: int = 0
    cut_after_bytes: int | None = None
    # How many future connections are cut after ``cut_after_bytes`` (None = all).
    cut_connections: int | None = None
    connections_accepted: int = 0
    _listener: socket.socket | None = None
    _live: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> CuttableProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def cut(self) -> None:
        """Close every live connection now (both directions)."""
        with self._lock:
            live = list(self._live)
            self._live.clear()
        for sock in live:
            _hard_close(sock)

    def close(self) -> None:
        """Stop accepting and cut everything."""
        self._closed.set()
        if self._listener is not None:
            self._listener.close()
        self.cut()

    def __enter__(self) -> CuttableProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.connections_accepted += 1
                limit: int | None = None
                if self.cut_after_bytes is not None and (
                    self.cut_connections is None or self.cut_connections > 0
                ):
                    limit = self.cut_after_bytes
                    if self.cut_connections is not None:
                        self.cut_connections -= 1
                self._live.update((client, upstream))
            threading.Thread(
                target=self._pump, args=(client, upstream, None), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, limit), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._live.discard(src)
                self._live.discard(dst)
            _hard_close(src)
            _hard_close(dst)


def _hard_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
