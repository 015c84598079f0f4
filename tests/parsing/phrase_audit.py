"""Which phrases of the reason tables fire, and on what (docs/classification.md, *Audit*).

    .venv/bin/python -m tests.parsing.phrase_audit            # summary per table
    .venv/bin/python -m tests.parsing.phrase_audit --never    # list the phrases that never fire
    .venv/bin/python -m tests.parsing.phrase_audit --ordinary # phrases that fire on ordinary text

Parses every message of the development corpora (../shared/bounce-corpus,
../shared/bounce-corpus-flufl), tests/samples/ and the negative set, records each text the
classifier hands to the phrase tables (`reasons.matching_tables`), then tests every phrase
of `reasons._PHRASES` on those texts. `--ordinary` also runs every phrase over the own text
(body without quotes) of the negative set's messages: a phrase that matches there matches
wording ordinary mail uses, and is a false-positive risk wherever a decoder hands such text
to the classifier.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from bounces.parsing import classify, parse_bounce, reasons
from bounces.parsing.message import load
from bounces.parsing.recognise import own_text

REPO = Path(__file__).resolve().parents[2]
SETS = {
    "shared": REPO.parent / "shared" / "bounce-corpus",
    "flufl": REPO.parent / "shared" / "bounce-corpus-flufl",
    "samples": REPO / "tests" / "samples",
    "ordinary": REPO / "tests" / "samples_notbounce",
}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix == ".eml" or (p.suffix == ".txt" and "eml" in p.parts)))


def collect() -> dict[str, list[str]]:
    """Set name -> the texts the classifier gave to the phrase tables while parsing it."""
    seen: list[str] = []
    real = classify.matching_tables

    def spy(text: str) -> frozenset[str]:
        seen.append(text)
        return real(text)

    classify.matching_tables = spy  # type: ignore[assignment]
    out: dict[str, list[str]] = {}
    try:
        for name, root in SETS.items():
            seen.clear()
            classify._classify_cached.cache_clear()  # type: ignore[attr-defined]
            for path in _files(root):
                parse_bounce(path.read_bytes())
            out[name] = list(dict.fromkeys(seen))
    finally:
        classify.matching_tables = real  # type: ignore[assignment]
    return out


def fire_counts(texts: dict[str, list[str]]) -> dict[tuple[str, str], Counter[str]]:
    """(table, phrase) -> set name -> number of texts it matches."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    for table, phrases in reasons._PHRASES.items():
        for phrase in phrases:
            rx = re.compile(phrase)
            c: Counter[str] = Counter()
            for name, items in texts.items():
                c[name] = sum(1 for t in items if rx.search(t))
            counts[(table, phrase)] = c
    return counts


def ordinary_hits() -> dict[tuple[str, str], list[str]]:
    """(table, phrase) -> negative-set files whose own text (lower-cased, folded) it matches."""
    texts = {}
    for path in _files(SETS["ordinary"]):
        texts[path.name] = " ".join(own_text(load(path.read_bytes())).lower().split())
    out: dict[tuple[str, str], list[str]] = {}
    for table, phrases in reasons._PHRASES.items():
        for phrase in phrases:
            rx = re.compile(phrase)
            files = [n for n, t in texts.items() if rx.search(t)]
            if files:
                out[(table, phrase)] = files
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--never", action="store_true", help="list the phrases that fire on no development text")
    ap.add_argument("--ordinary", action="store_true", help="list phrases that match ordinary mail's own text")
    args = ap.parse_args(argv)
    counts = fire_counts(collect())
    total = len(counts)
    never = [k for k, c in counts.items() if not (c["shared"] or c["flufl"] or c["samples"])]
    on_ordinary = [k for k, c in counts.items() if c["ordinary"]]
    print(f"{total} phrases in {len(reasons._PHRASES)} tables; {len(never)} fire on no development text; "
          f"{len(on_ordinary)} fire on a text the classifier got from the negative set")
    by_table = Counter(t for t, _ in never)
    for table, n in sorted(by_table.items(), key=lambda kv: -kv[1]):
        print(f"  {table:32} {n:4} never fire of {len(reasons._PHRASES[table])}")
    if args.never:
        for table, phrase in never:
            print(f"{table}\t{phrase}")
    if args.ordinary:
        for (table, phrase), files in sorted(ordinary_hits().items()):
            print(f"{table}\t{phrase}\t{len(files)}\t{' '.join(files[:4])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
