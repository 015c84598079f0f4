"""Fixtures of the engine tests (DB-free): sample and corpus locations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "samples"
# The labelled corpus lives beside the repository (shared/ next to main/).
CORPUS = REPO.parent / "shared" / "bounce-corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The labelled bounce corpus; skips when absent (fails under CI=true)."""
    if not (CORPUS / "labels.jsonl").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"bounce corpus missing at {CORPUS}")
        pytest.skip(f"bounce corpus not found at {CORPUS}")
    return CORPUS
