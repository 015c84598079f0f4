"""bouncemgr.safejson: nesting measured without recursion, deep documents refused cleanly."""

from __future__ import annotations

import json
import time

import pytest

from bouncemgr import safejson


@pytest.mark.parametrize("text, depth", [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4),
    ('["[[[[", "]]]]{{"]', 1),  # brackets inside strings do not count
    ('["\\"[[[["]', 1),  # nor after an escaped quote
])
def test_nesting_depth_counts_only_real_brackets(text, depth):
    assert safejson.nesting_depth(text) == depth
    assert safejson.nesting_depth(text.encode()) == depth


def test_a_document_nested_100000_deep_is_refused_quickly_without_recursion_error():
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(text)  # what the import used to do
    started = time.monotonic()
    with pytest.raises(safejson.JSONTooDeep, match="more than 32 levels"):
        safejson.loads(text)
    assert time.monotonic() - started < 5


def test_ordinary_documents_load_as_json_does():
    doc = {"format": "bouncemgr-rules", "rules": [{"pattern": "a[b]{2}", "bounce_type": "hard"}]}
    assert safejson.loads(json.dumps(doc)) == doc
    assert safejson.loads(json.dumps(doc).encode()) == doc
    with pytest.raises(ValueError):
        safejson.loads("{not json")
