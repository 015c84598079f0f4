"""Classification by evidence strength (issue 13): an enhanced status code beats a bare reply
code or a generic phrase, advice is no refusal, "expired" only when no cause is named."""

from __future__ import annotations

import pytest

from bounces.parsing.classify import classify, without_advice


def _reason(diagnostic: str, action: str = "failed") -> tuple[str, str | None]:
    v = classify(status=None, replycode=None, diagnostic=diagnostic, action=action, kind_hint="failure", mta="generic")
    return v.reason, v.status


def test_a_specific_enhanced_code_beats_a_bare_reply_code() -> None:
    assert _reason("551 5.1.1 <ann@example.org>: user unknown") == ("userunknown", "5.1.1")
    # the reply code still speaks when no enhanced code is given
    assert _reason("551 User not local; please try <ann@example.net>")[0] == "hasmoved"


@pytest.mark.parametrize(
    "diagnostic",
    [
        "550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown. Please check your SPF record.",
        "550 5.1.1 The email account that you tried to reach does not exist. For more information "
        "about SPF and DKIM authentication visit the help pages.",
    ],
)
def test_advice_after_the_refusal_does_not_pick_the_reason(diagnostic: str) -> None:
    assert _reason(diagnostic)[0] == "userunknown"


def test_without_advice_keeps_the_refusal() -> None:
    text = "550 5.7.1 message rejected as spam. please check your spf record. see https://x.example/help"
    assert without_advice(text).strip() == "550 5.7.1 message rejected as spam."
    assert without_advice("please check your spf record") == "please check your spf record"


def test_expired_only_when_no_cause_is_named() -> None:
    assert _reason("Retry timeout exceeded; TLS is required but the remote host refused STARTTLS")[0] == "failedstarttls"
    assert _reason("Message expired after 5 days: 552 5.2.2 mailbox full")[0] == "mailboxfull"
    assert _reason("retry timeout exceeded")[0] == "expired"


def test_the_verdict_cache_keys_on_the_recipients_domain_only() -> None:
    """Verdicts are cached by the inputs the rules read: the domain matters (host rules),
    the local part does not."""
    args = {"status": "5.0.0", "replycode": "550", "diagnostic": "550 : User unknown", "action": "failed",
            "kind_hint": "failure", "mta": "generic"}
    a = classify(**args, recipient="ann@example.org")
    b = classify(**args, recipient="bob@example.org")
    assert a == b
    kddi = classify(**args, recipient="ann@ezweb.ne.jp", remote_mta="lsean.ezweb.ne.jp")
    assert classify(**args, recipient="bob@ezweb.ne.jp", remote_mta="lsean.ezweb.ne.jp") == kddi
