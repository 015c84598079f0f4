"""MTA records that report bounces: PowerMTA CSV accounting, Postfix and Exim log lines (pure).

PowerMTA accounting (CSV, RFC 4180): one header line at the start of the file names the
columns; the first column is always the record `type`. A file configured for several
record types has the union of their columns, empty where a type has no such field. We
read:

* `b` (bounce) and `rb` (remote bounce: a DSN PowerMTA's own bounce processor received)
  with rcpt, orig, dsnAction, dsnStatus, dsnDiag, dsnMta, bounceCat, jobId, envId, vmta,
  timeLogged and any `header_<Name>` columns (`header_Message-Id`, `header_X-...`, our
  tracking header);
* `f` (feedback loop: a complaint) with rcpt, orig, feedbackType, format, userAgent,
  reportingMta, reportedDomain and `header_*`.

Other record types (d, t, tq, r, rs) are skipped. The idempotency key of a record is the
SHA-256 of its fields (names and values, in column order), so a record read from a file
and the same record pushed over HTTP are one notice.

Postfix (`status=bounced`) and Exim (`**` lines) log lines with a permanent failure are
read the same way, as send-time bounces. The readers remember the Message-ID of each
queue id they saw (Postfix `cleanup: message-id=<...>`, Exim `<= ... id=...`), so the
bounce can be matched by the Message-ID we sent with.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from .structured import StructuredNotice

BOUNCE_TYPES = frozenset({"b", "bounce", "rb", "remote-bounce"})
FEEDBACK_TYPES = frozenset({"f", "feedback-loop", "fbl"})
MAX_FIELD = 8000
MAX_FIELDS = 200
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")

# PowerMTA's bounce categories (User's Guide, "Bounce Categories"), used only when the
# record carries no status and no diagnostic text to classify.
BOUNCE_CATEGORIES = {
    "bad-mailbox": ("userunknown", True),
    "bad-domain": ("hostunknown", True),
    "inactive-mailbox": ("suspend", True),
    "invalid-sender": ("rejected", True),
    "quota-issues": ("mailboxfull", False),
    "message-expired": ("expired", False),
    "no-answer-from-host": ("networkerror", False),
    "bad-connection": ("networkerror", False),
    "routing-errors": ("systemerror", False),
    "protocol-errors": ("systemerror", False),
    "bad-configuration": ("systemerror", False),
    "policy-related": ("policyviolation", None),
    "spam-related": ("spamdetected", None),
    "virus-related": ("virusdetected", None),
    "content-related": ("contenterror", None),
    "other": ("undefined", None),
}


#: The fields that identify one accounting record (lower case). The hash covers only
#: these, so the same record read from the file and pushed by Logstash (which adds its own
#: fields: host, path, @timestamp, ...) is one notice.
IDENTITY_FIELDS = ("type", "timelogged", "timequeued", "orig", "rcpt", "orcpt", "dsnaction", "dsnstatus",
                   "dsndiag", "dsnmta", "bouncecat", "jobid", "envid", "vmta", "feedbacktype",
                   "header_message-id")


def record_hash(record: dict[str, str]) -> str:
    """The idempotency key of one accounting record (SHA-256 of its identifying fields)."""
    fields = {k.lower(): (v or "").strip() for k, v in record.items()}
    h = hashlib.sha256()
    for name in IDENTITY_FIELDS:
        value = fields.get(name, "")
        if value:
            h.update(name.encode() + b"\x00" + value.encode("utf-8", "replace") + b"\x01")
    return h.hexdigest()


def _header(record: dict[str, str], name: str) -> str | None:
    wanted = "header_" + name.lower()
    for key, value in record.items():
        if key.lower() == wanted and value:
            return value
    return None


def accounting_notice(record: dict[str, str], *, tracking_header: str = "X-Bouncemgr-Token",
                      verp_prefix: str = "bounces") -> StructuredNotice | None:
    """The notice of one PowerMTA accounting record, or None for a record type we skip."""
    rtype = (record.get("type") or "").strip().lower()
    rcpt = record.get("rcpt") or ""
    if not rcpt.strip():
        return None
    token = _header(record, tracking_header) or verp_token(record.get("orig"), verp_prefix)
    message_id = _header(record, "Message-Id")
    original = {k: v for k, v in record.items() if v}
    if rtype in FEEDBACK_TYPES:
        return StructuredNotice(
            source="pmta", event="complaint", recipient=rcpt, message_id=message_id, token=token,
            feedback_type=(record.get("feedbackType") or "abuse")[:64],
            remote_mta=record.get("reportingMta") or None, occurred_at=record.get("timeLogged") or None,
            original=original,
        )
    if rtype not in BOUNCE_TYPES:
        return None
    category = (record.get("bounceCat") or "").strip().lower()
    hint, permanent = BOUNCE_CATEGORIES.get(category, (None, None))
    action = (record.get("dsnAction") or "").strip().lower()
    found = _STATUS.search(record.get("dsnStatus") or "")  # "5.1.1 (bad destination mailbox address)"
    status = found.group(1) if found else None
    if status and status[0] in "45":
        permanent = status[0] == "5"
    return StructuredNotice(
        source="pmta", event="delay" if action == "delayed" else "failure", recipient=rcpt,
        status=status, diagnostic=record.get("dsnDiag") or "", remote_mta=_mta(record.get("dsnMta")),
        message_id=message_id, token=token, permanent=permanent, reason_hint=hint,
        occurred_at=record.get("timeLogged") or None, original=original,
    )


def _mta(value: str | None) -> str | None:
    """"dns;mx.example.org (192.0.2.10)" -> "dns;mx.example.org" (the type goes later)."""
    if not value:
        return None
    return value.split("(", 1)[0].strip() or None


def verp_token(address: str | None, verp_prefix: str = "bounces") -> str | None:
    """Our token from a VERP return path `bounces+TOKEN@...` (None when it is not one)."""
    if not address:
        return None
    local = address.strip().strip("<>").split("@", 1)[0].lower()
    prefix = verp_prefix.lower()
    for sep in "+=-":
        if local.startswith(prefix + sep):
            token = local[len(prefix) + 1 :]
            if re.fullmatch(r"[a-z0-9]{16}", token):
                return token
    return None


class AccountingReader:
    """Reads PowerMTA CSV accounting from a file, resuming at a byte offset.

    `records(stream)` yields `(offset_after, record)` for complete lines only (a line the
    MTA is still writing is left for the next read); `header` is the column list, taken
    from the first line of the file (or given, when resuming mid-file).
    """

    def __init__(self, header: list[str] | None = None) -> None:
        self.header = header
        self.orphans = 0  # records seen before any header line (their columns are unknown)

    def records(self, stream: io.BufferedIOBase, offset: int = 0) -> Iterator[tuple[int, dict[str, str]]]:
        stream.seek(offset)
        pending = b""
        pos = offset
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            pending += chunk
            while True:
                line, complete = _take_csv_line(pending)
                if not complete:
                    break
                pending = pending[len(line):]
                pos += len(line)
                record = self._row(line)
                if record is not None:
                    yield pos, record
            if len(pending) > 1 << 22:  # one "line" over 4 MiB: not accounting, skip it
                pos += len(pending)
                pending = b""

    def _row(self, line: bytes) -> dict[str, str] | None:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not text.strip():
            return None
        try:
            row = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            return None
        if row and row[0].strip() == "type":
            self.header = [c.strip() for c in row][:MAX_FIELDS]
            return None
        if self.header is None:
            self.orphans += 1
            return None
        return {name: value[:MAX_FIELD] for name, value in zip(self.header, row, strict=False) if name}


def _take_csv_line(data: bytes) -> tuple[bytes, bool]:
    """The first complete CSV record of `data` (newlines inside quotes do not end it)."""
    quoted = False
    for i, byte in enumerate(data):
        if byte == 0x22:  # "
            quoted = not quoted
        elif byte == 0x0A and not quoted:
            return data[: i + 1], True
    return data, False


def parse_accounting_csv(text: str) -> Iterator[dict[str, str]]:
    """Records of a CSV body (with its header line), e.g. a batch pushed over HTTP."""
    reader = AccountingReader()
    yield from (record for _, record in reader.records(io.BytesIO(text.encode("utf-8"))))


# --------------------------------------------------------------------------- Postfix and Exim
_POSTFIX = re.compile(
    r"postfix(?:/[\w.-]+)*/(?:smtp|lmtp|local|virtual|pipe|error|discard)\[\d+\]:\s+"
    r"(?P<qid>[0-9A-Za-z]+):\s+to=<(?P<rcpt>[^>]*)>,(?:\s*orig_to=<[^>]*>,)?.*?"
    r"(?:relay=(?P<relay>[^,\s]+),)?.*?\bdsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}),\s*status=bounced\s*\((?P<text>.*)\)\s*$"
)
_POSTFIX_RELAY = re.compile(r"\brelay=(?P<relay>[^,\s]+),")
_POSTFIX_MSGID = re.compile(r"postfix(?:/[\w.-]+)*/cleanup\[\d+\]:\s+(?P<qid>[0-9A-Za-z]+):\s+message-id=<?(?P<mid>[^>\s]+)>?")
_EXIM_ID = r"(?P<qid>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})"
_EXIM_FAIL = re.compile(_EXIM_ID + r" \*\* (?P<rcpt>\S+?)(?: <(?P<orig>[^>]+)>)?(?:\s+(?P<rest>.*))?$")
_EXIM_IN = re.compile(_EXIM_ID + r" <= (?P<sender>\S+).*?\bid=(?P<mid>\S+)")
_EXIM_HOST = re.compile(r"\bH=(?P<host>[^\s\[]+)")
_EXIM_TEXT = re.compile(r":\s+(?P<text>(?:SMTP error from remote mail server after .*|[245]\d\d[ -].*|.*))$")
_PROGRESS = 10_000


class MessageIds:
    """Queue id → Message-ID, for the last `size` messages a log mentioned."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self.ids: OrderedDict[str, str] = OrderedDict()

    def put(self, qid: str, mid: str) -> None:
        self.ids[qid] = mid
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)

    def get(self, qid: str) -> str | None:
        return self.ids.get(qid)


def log_line_notice(line: str, message_ids: MessageIds | None = None) -> StructuredNotice | None:
    """The notice of one Postfix or Exim log line reporting a permanent failure, else None.

    Lines that only say a queue id's Message-ID are remembered in `message_ids`.
    """
    line = line.rstrip("\r\n")[:MAX_FIELD]
    if "status=bounced" in line:
        m = _POSTFIX.search(line)
        if m is None:
            return None
        relay = _POSTFIX_RELAY.search(line)
        text = m.group("text")
        if text.startswith("host ") and " said: " in text:
            text = text.split(" said: ", 1)[1]
        return StructuredNotice(
            source="postfix", event="failure", recipient=m.group("rcpt"), status=m.group("dsn"),
            diagnostic=text, remote_mta=_relay_host(relay.group("relay") if relay else None),
            message_id=message_ids.get(m.group("qid")) if message_ids else None,
            permanent=m.group("dsn").startswith("5"), original={"line": line},
        )
    if " ** " in line:
        m = _EXIM_FAIL.search(line)
        if m is None:
            return None
        rest = m.group("rest") or ""
        host = _EXIM_HOST.search(rest)
        text_m = _EXIM_TEXT.search(rest)
        text = text_m.group("text") if text_m else rest
        return StructuredNotice(
            source="exim", event="failure", recipient=m.group("rcpt").strip("<>:"), diagnostic=text,
            remote_mta=host.group("host") if host else None,
            message_id=message_ids.get(m.group("qid")) if message_ids else None,
            permanent=True, original={"line": line},
        )
    if message_ids is not None:
        m = _POSTFIX_MSGID.search(line) or _EXIM_IN.search(line)
        if m is not None:
            message_ids.put(m.group("qid"), m.group("mid").strip("<>"))
    return None


def _relay_host(relay: str | None) -> str | None:
    if not relay or relay == "none":
        return None
    return relay.split("[", 1)[0] or None


def log_notices(lines: Iterable[str]) -> Iterator[StructuredNotice]:
    """Notices of Postfix / Exim log lines (remembering Message-IDs along the way)."""
    ids = MessageIds()
    for line in lines:
        notice = log_line_notice(line, ids)
        if notice is not None:
            yield notice


def line_key(line: str) -> str:
    """Idempotency key of a log line (its SHA-256)."""
    return hashlib.sha256(line.rstrip("\r\n").encode("utf-8", "replace")).hexdigest()
