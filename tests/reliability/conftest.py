"""Fixtures of the reliability tests: the pipeline's real Dovecot, mailbox and campaign."""

from __future__ import annotations

import bounces.rules.admin  # noqa: F401 - the rules admin, as in tests/rules/conftest.py
from tests.pipeline.conftest import campaign, mail_user, mailbox, pipeline_dovecot  # noqa: F401
