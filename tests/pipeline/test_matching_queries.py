"""Matching a batch loads only what the batch needs (issue 11, speed): messages the token or
Message-ID settles need no contact or send-history look-ups, and the others still get them."""

from __future__ import annotations

import pytest

from bounces.parsing import Category, Kind, ParseResult, RecipientResult
from bounces.pipeline.matching import BatchMatcher

from .conftest import send

pytestmark = pytest.mark.django_db


def _result(address: str, *, token: str | None = None, message_id: str | None = None,
            also: str | None = None) -> ParseResult:
    def rcpt(a: str) -> RecipientResult:
        return RecipientResult(recipient=a, action="failed", status="5.1.1", replycode="550", diagnostic="",
                               remote_mta=None, reason="userunknown", hard=True, permanent=True,
                               category=Category.HARD)

    recipients = (rcpt(address),) + ((rcpt(also),) if also else ())
    return ParseResult(kind=Kind.FAILURE, recipients=recipients, message_id=message_id, token=token,
                       subject=None, from_address=None, mta="test")


def test_a_batch_settled_by_tokens_and_message_ids_looks_up_no_contacts(campaign, django_assert_num_queries):
    first = send(campaign, "one@example.net")
    second = send(campaign, "two@example.net")
    results = [_result("one@example.net", token=first.token), _result("two@example.net", message_id=second.message_id)]
    matcher = BatchMatcher()
    with django_assert_num_queries(2):  # the tokens, the Message-IDs
        matcher.prepare(results)
    assert matcher.match(results[0], results[0].recipients[0], b"").sent_message_id == first.pk
    assert matcher.match(results[1], results[1].recipients[0], b"").sent_message_id == second.pk
    assert matcher.contacts == {}


def test_recipients_the_token_does_not_settle_are_still_matched_by_address(campaign):
    first = send(campaign, "one@example.net")
    other = send(campaign, "other@example.net")
    unknown_token = _result("other@example.net", token="0" * 16)
    # two recipients, the token's message went to the first: the second goes by address
    several = _result("one@example.net", token=first.token, also="other@example.net")
    matcher = BatchMatcher()
    matcher.prepare([unknown_token, several])
    by_address = matcher.match(unknown_token, unknown_token.recipients[0], b"")
    assert by_address.method == "address" and by_address.contact_id == other.contact_id
    assert by_address.campaign_id == other.campaign_id
    assert matcher.match(several, several.recipients[0], b"").sent_message_id == first.pk
    second = matcher.match(several, several.recipients[1], b"")
    assert second.method == "address" and second.contact_id == other.contact_id
