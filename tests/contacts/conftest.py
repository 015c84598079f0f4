"""Fixtures of the contacts tests: the import jobs' folder in a temporary directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _import_dir(settings, tmp_path):
    settings.CONTACTS_IMPORT_DIR = tmp_path / "imports"
