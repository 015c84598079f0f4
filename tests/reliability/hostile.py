"""Hostile messages built on the fly for the reliability tests and bench scripts."""

from __future__ import annotations


def huge_dsn(recipients: int = 100_000, *, parts: int | None = None, domain: str = "example.net") -> bytes:
    """One delivery report naming ``recipients`` addresses, with one extra text part per
    recipient (``parts``, default as many): ~18 MB and 100,002 leaf parts at the defaults,
    the message of issue 12 item 3."""
    parts = recipients if parts is None else parts
    boundary = "b-outer"
    out = [
        "From: MAILER-DAEMON@mx.example.com\r\n"
        "To: news@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <huge-dsn@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered to some recipients.\r\n",
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n",
    ]
    for i in range(recipients):
        out.append(
            f"Final-Recipient: rfc822; user{i}@{domain}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
        )
    for i in range(parts):
        out.append(f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nnote {i}\r\n")
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode("ascii")
