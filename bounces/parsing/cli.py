"""Command-line front end of the engine (wrapped by ``manage.py classify_bounce``).

    python -m bounces.parsing.cli FILE [FILE ...]
    python -m bounces.parsing.cli --files-from -      # one path per line on stdin
    python -m bounces.parsing.cli -                   # one message on stdin
    python -m bounces.parsing.cli --summary FILE ...  # counts by kind and reason

Prints one JSON object per line per recipient (one with "recipient": null when none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .engine import parse_bounce
from .types import ParseOptions, ParseResult

# one encoder for all rows: json.dumps with options builds a new encoder per call
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def result_rows(name: str, result: ParseResult) -> Iterator[dict[str, Any]]:
    """The JSON rows for one parsed file: one per recipient, or one with recipient None."""
    base = {"file": name, "kind": str(result.kind)}
    tail = {"message_id": result.message_id, "token": result.token}
    if not result.recipients:
        yield {**base, "recipient": None, "status": None, "replycode": None, "reason": None,
               "hard": None, "permanent": None, "diagnostic": result.error or "", "remote_mta": None,
               **tail}
        return
    for r in result.recipients:
        yield {**base, "recipient": r.recipient, "status": r.status, "replycode": r.replycode,
               "reason": r.reason, "hard": r.hard, "permanent": r.permanent,
               "diagnostic": r.diagnostic, "remote_mta": r.remote_mta, **tail}


def _paths(files: Iterable[str], files_from: IO[str] | None) -> Iterator[str]:
    yield from files
    if files_from is not None:
        for line in files_from:
            p = line.rstrip("\n")
            if p.strip():
                yield p


def run(
    files: list[str],
    *,
    files_from: IO[str] | None = None,
    summary: bool = False,
    out: IO[str] | None = None,
    stdin_bytes: IO[bytes] | None = None,
    options: ParseOptions | None = None,
) -> int:
    """Parse the given files and write JSON lines (or a summary) to ``out``. Returns exit code."""
    out = out or sys.stdout
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    failures = 0
    write = out.write
    dumps = _ENCODE
    pending: list[str] = []
    for path in _paths(files, files_from):
        try:
            if path == "-":
                src = stdin_bytes or sys.stdin.buffer
                raw = src.read()
            else:
                with open(path, "rb", buffering=0) as fh:  # unbuffered: one read of the whole file
                    raw = fh.readall()
        except OSError as exc:
            failures += 1
            print(f"{path}: {exc}", file=sys.stderr)
            continue
        result = parse_bounce(raw, options)
        if summary:
            kinds[str(result.kind)] += 1
            for r in result.recipients:
                reasons[r.reason] += 1
            continue
        for row in result_rows(path, result):
            pending.append(dumps(row))
        if len(pending) >= 256:  # one write per batch: a write per line costs more than parsing
            write("\n".join(pending) + "\n")
            pending.clear()
    if pending:
        write("\n".join(pending) + "\n")
    if summary:
        write(json.dumps({"kinds": dict(kinds.most_common()), "reasons": dict(reasons.most_common())}) + "\n")
        total = sum(kinds.values())
        write(f"messages: {total}\n")
        for k, n in kinds.most_common():
            write(f"  kind {k:<12} {n}\n")
        for k, n in reasons.most_common():
            write(f"  reason {k:<16} {n}\n")
    return 1 if failures else 0


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments shared with the management command."""
    p = parser or argparse.ArgumentParser(prog="classify_bounce", description=__doc__,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE", help="message files; '-' reads one message from stdin")
    p.add_argument("--files-from", metavar="LIST", help="read paths, one a line, from LIST ('-' = stdin)")
    p.add_argument("--summary", action="store_true", help="print counts by kind and reason instead")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bounces.parsing.cli``."""
    args = build_parser().parse_args(argv)
    files_from: IO[str] | None = None
    if args.files_from == "-":
        files_from = sys.stdin
    elif args.files_from:
        files_from = open(args.files_from, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    if not args.files and files_from is None:
        build_parser().print_usage(sys.stderr)
        return 2
    try:
        return run(args.files, files_from=files_from, summary=args.summary)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    finally:
        if files_from is not None and files_from is not sys.stdin:
            files_from.close()


if __name__ == "__main__":
    sys.exit(main())
