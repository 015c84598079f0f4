"""Helpers shared by the mailbox tests."""

from __future__ import annotations

import base64
import os
from pathlib import Path

CORPUS = Path("/work/shared/bounce-corpus/eml")


def _generated_bounce(index: int) -> bytes:
    return (
        "From: MAILER-DAEMON@example.net\r\n"
        "To: bounces@example.org\r\n"
        f"Subject: Undelivered Mail Returned to Sender #{index}\r\n"
        f"Message-ID: <gen-{index}@example.net>\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        f"<user{index}@example.com>: host mx.example.com said: 550 5.1.1 unknown user\r\n"
    ).encode()


def load_bounce_samples() -> list[bytes]:
    """Real bounce files from the shared corpus (generated ones when it is absent)."""
    if CORPUS.is_dir():
        samples = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
        if samples:
            return samples
    return [_generated_bounce(i) for i in range(50)]


def numbered(raw: bytes, index: int) -> bytes:
    """``raw`` with a unique first header, so repeated corpus files stay distinct."""
    return f"X-Bouncemgr-Test: {index}\r\n".encode() + raw


def marker(raw: bytes) -> int:
    """The index :func:`numbered` put into a message."""
    first = raw.split(b"\n", 1)[0]
    return int(first.split(b":", 1)[1])


def big_message(size: int) -> bytes:
    """A message of about ``size`` bytes: a base64 attachment of random data."""
    payload = base64.encodebytes(os.urandom(size * 3 // 4))
    head = (
        b"From: MAILER-DAEMON@example.net\r\nSubject: huge bounce\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    return head + payload.replace(b"\n", b"\r\n")


class BannerServer:
    """A loopback TCP service that is not a mail server (SSH, a database, ...).

    It greets with ``banner`` and answers every line with ``reply``, the way "Test
    connection" pointed at another port meets some other program. Counts connections, so
    a test can tell that a blocked address was never contacted.
    """

    def __init__(self, banner: bytes, reply: bytes = b"", *, capability: bytes = b"") -> None:
        import socket
        import threading

        self.banner = banner
        self.reply = reply
        # For a minimal IMAP server: the untagged answer to CAPABILITY (then OK).
        self.capability = capability
        self.connections = 0
        self.received: list[bytes] = []  # everything clients sent (a password, say)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(sock,), daemon=True).start()

    def _talk(self, sock) -> None:  # noqa: ANN001 - a socket
        try:
            sock.sendall(self.banner)
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                self.received.append(chunk)
                data += chunk
                while b"\n" in data:
                    line, data = data.split(b"\n", 1)
                    tag, _, command = line.partition(b" ")
                    if self.capability and command.strip().upper() == b"CAPABILITY":
                        sock.sendall(self.capability + tag + b" OK done\r\n")
                        continue
                    sock.sendall(self.reply.replace(b"{tag}", tag))
        except OSError:
            return
        finally:
            sock.close()

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> BannerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
