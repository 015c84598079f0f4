"""Safe patterns, message sections, Octeth one-liners and rule sets (no database)."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest

from bounces.parsing import parse_bounce
from bounces.rules.patterns import (
    MAX_PATTERN_LENGTH,
    PatternError,
    compile_pattern,
    parse_octeth_line,
    parse_octeth_lines,
)
from bounces.rules.ruleset import MAX_SECTION_BYTES, MessageView, RuleSet
from tests.rules.conftest import dsn


def rule(pattern: str, rule_id: int = 1, **kwargs: object) -> SimpleNamespace:
    """An unsaved rule-like object, as RuleSet.from_rules accepts."""
    values = {
        "pk": rule_id, "name": f"rule {rule_id}", "pattern": pattern, "match_type": "contains",
        "section": "diagnostic", "case_sensitive": False, "bounce_type": "hard", "reason": "",
        "actions_mode": "kind", "actions": [], "delete_message": False, "in_statistics": True,
        "fallback_only": False,
    }
    values.update(kwargs)
    return SimpleNamespace(**values)


def view_of(raw: bytes) -> tuple[MessageView, object]:
    result = parse_bounce(raw)
    return MessageView.from_raw(raw, result), (result.recipients[0] if result.recipients else None)


# --- Safety ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_catastrophic_pattern_against_a_100_kb_line_returns_promptly() -> None:
    compiled = compile_pattern("(a+)+$", match_type="regex", case_sensitive=False)
    line = b"a" * 100_000 + b"!"  # the classic exponential case for backtracking engines
    started = time.monotonic()
    assert compiled.search(line) is None
    assert compiled.search(b"a" * 100_000) is not None
    # Not a timing assertion in spirit: a backtracking engine would take longer than the universe.
    assert time.monotonic() - started < 5


@pytest.mark.timeout(30)
def test_catastrophic_rule_over_a_whole_hostile_message_completes() -> None:
    raw = dsn(diagnostic="a" * 100_000 + "!", human="a" * 200_000 + "!")
    view, recipient = view_of(raw)
    ruleset = RuleSet.from_rules([
        rule("(x+x+)+y", 2, match_type="regex", section="body"),
        rule("(a|aa)+b", 3, match_type="regex", section="diagnostic"),
        rule("(a+)+!", 4, match_type="regex", section="whole"),
    ])
    found = ruleset.first_match(message=view, recipient=recipient)
    assert found is not None and found.rule_id == 4  # the only rule that can match did, promptly


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("(?<=user )unknown", "Look-ahead and look-behind are not supported"),
        ("user(?= unknown)", "Look-ahead and look-behind are not supported"),
        (r"(\w+) \1", "Back-references are not supported"),
        ("(unclosed", "missing )"),
        ("[z-a]", "Not a valid regular expression"),
        ("*leading", "Not a valid regular expression"),
    ],
)
def test_invalid_regex_is_rejected_with_a_clear_message(pattern: str, expected: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(pattern, match_type="regex", case_sensitive=False)
    assert expected in str(info.value)


def test_pattern_longer_than_the_limit_is_rejected() -> None:
    compile_pattern("x" * MAX_PATTERN_LENGTH, match_type="contains", case_sensitive=False)
    with pytest.raises(PatternError, match=f"limit is {MAX_PATTERN_LENGTH}"):
        compile_pattern("x" * (MAX_PATTERN_LENGTH + 1), match_type="contains", case_sensitive=False)


def test_pattern_too_big_for_the_engine_is_rejected() -> None:
    with pytest.raises(PatternError, match="too big"):
        compile_pattern("((a{100}){100}){100}", match_type="regex", case_sensitive=False)


@pytest.mark.parametrize("pattern", ["a*", "(x|)", "^", "\\b", "   "])
def test_pattern_matching_empty_text_is_rejected(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern, match_type="regex", case_sensitive=False)


def test_a_python_re_fallback_never_reaches_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # Some re2 wrappers fall back to Python's backtracking `re` for patterns RE2 lacks; the
    # guard refuses whatever object is not RE2's.
    import bounces.rules.patterns as rules_module

    monkeypatch.setattr(rules_module.re2, "compile", lambda source, options=None: re.compile(source))
    with pytest.raises(PatternError, match="safe regular-expression engine"):
        compile_pattern("(a+)+$", match_type="regex", case_sensitive=False)


# --- Contains and case ---------------------------------------------------------------------------


def test_contains_pattern_is_literal_and_spacing_tolerant() -> None:
    compiled = compile_pattern("mailbox full (quota)", match_type="contains", case_sensitive=False)
    assert compiled.search(b"552 Mailbox   full\n (quota) exceeded")
    assert not compiled.search(b"mailbox full quota")  # parentheses are literal text


def test_rules_are_case_insensitive_by_default() -> None:
    compiled = compile_pattern("user unknown", match_type="contains", case_sensitive=False)
    assert compiled.search(b"550 User Unknown")
    assert compile_pattern("É", match_type="contains", case_sensitive=False).search("boîte é".encode())


def test_case_sensitive_rule_only_matches_the_same_case() -> None:
    compiled = compile_pattern("User Unknown", match_type="contains", case_sensitive=True)
    assert compiled.search(b"550 User Unknown")
    assert not compiled.search(b"550 user unknown")
    regex = compile_pattern(r"RESOLVER\.ADR", match_type="regex", case_sensitive=True)
    assert not regex.search(b"resolver.adr.recipnotfound")


# --- Sections ------------------------------------------------------------------------------------

SECTION_RAW = dsn(
    recipient="kim@example.org",
    diagnostic="550 5.1.1 mailbox kim unavailable",
    subject="Returned mail: see transcript",
    from_="Mail Delivery Subsystem <mailer-daemon@mx.example.net>",
    to="bounces+tok@news.example.com",
    cc="postmaster@news.example.com",
    extra_headers="X-Spam-Flag: YES\n",
    human="The original message was refused by the remote host.",
    returned="Subject: Weekly news\n\nSpecial offer inside the returned copy.",
)


@pytest.mark.parametrize(
    ("section", "present", "absent"),
    [
        ("diagnostic", "mailbox kim unavailable", "refused by the remote host"),
        ("body", "refused by the remote host", "Special offer inside"),
        ("subject", "see transcript", "refused by the remote host"),
        ("from", "mailer-daemon@mx.example.net", "news.example.com"),
        ("to_cc", "postmaster@news.example.com", "mailer-daemon"),
        ("headers", "X-Spam-Flag: YES", "refused by the remote host"),
        ("whole", "Special offer inside", None),
    ],
)
def test_each_section_searches_its_own_part_of_the_message(section: str, present: str, absent: str | None) -> None:
    view, recipient = view_of(SECTION_RAW)
    ruleset = RuleSet.from_rules([rule(present, 1, section=section)])
    found = ruleset.first_match(message=view, recipient=recipient)
    assert found is not None and found.matched_text.lower() == present.lower()
    if absent:
        miss = RuleSet.from_rules([rule(absent, 2, section=section)])
        assert miss.first_match(message=view, recipient=recipient) is None


def test_diagnostic_section_is_the_asked_recipients() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\nTo: b@news.example.com\nSubject: failure\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\n"
        b"Content-Type: text/plain\n\nTwo failures.\n--B\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\n"
        b"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n\n"
        b"Final-Recipient: rfc822; b@example.org\nAction: failed\nStatus: 5.2.2\n"
        b"Diagnostic-Code: smtp; 552 5.2.2 mailbox full\n--B--\n"
    )
    result = parse_bounce(raw)
    view = MessageView.from_raw(raw, result)
    by_address = {r.recipient: r for r in result.recipients}
    ruleset = RuleSet.from_rules([rule("mailbox full", 1, bounce_type="soft")])
    assert ruleset.first_match(message=view, recipient=by_address["b@example.org"]) is not None
    assert ruleset.first_match(message=view, recipient=by_address["a@example.org"]) is None
    assert ruleset.first_match(message=view, recipient=None) is not None  # all recipients' text


def test_sections_are_decoded_text() -> None:
    raw = (
        b"From: =?utf-8?q?Syst=C3=A8me_de_messagerie?= <postmaster@example.fr>\nTo: b@news.example.com\n"
        b"Subject: =?utf-8?b?w4ljaGVjIGRlIGxhIGRpc3RyaWJ1dGlvbg==?=\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        b"La bo=C3=AEte aux lettres est pleine.\n"
    )
    view = MessageView.from_raw(raw, parse_bounce(raw))
    assert view.text("subject") == "Échec de la distribution"
    assert "Système de messagerie" in view.text("from")
    assert "boîte aux lettres est pleine" in view.text("body")


def test_sections_are_bounded() -> None:
    raw = dsn(human="x" * (MAX_SECTION_BYTES * 2))
    view = MessageView.from_raw(raw, parse_bounce(raw))
    assert len(view.encoded("body")) <= MAX_SECTION_BYTES
    assert len(view.encoded("whole")) <= MAX_SECTION_BYTES


def test_unparseable_message_gives_empty_sections_not_an_error() -> None:
    view = MessageView.from_stored(raw=b"\xff\xfe\x00garbage", diagnostic="")
    assert RuleSet.from_rules([rule("garbage", 1, section="headers")]).first_match(message=view) is None
    assert view.text("diagnostic") == ""


# --- Order ---------------------------------------------------------------------------------------


def test_first_matching_rule_in_order_wins() -> None:
    view, recipient = view_of(dsn(diagnostic="552 5.2.2 mailbox full, user unknown"))
    ruleset = RuleSet.from_rules([
        rule("no such thing", 1),
        rule("mailbox full", 2, bounce_type="soft", reason="mailboxfull"),
        rule("user unknown", 3, bounce_type="hard"),
    ])
    found = ruleset.first_match(message=view, recipient=recipient)
    assert found is not None
    assert (found.rule_id, found.bounce_type, found.reason) == (2, "soft", "mailboxfull")


def test_a_rule_that_no_longer_compiles_is_skipped_not_fatal() -> None:
    ruleset = RuleSet.from_rules([rule("(?<=bad)", 1, match_type="regex"), rule("unknown", 2)])
    assert [r.rule_id for r in ruleset.rules] == [2]


@pytest.mark.parametrize(
    ("mode", "actions", "delete_message"),
    [(m, a, d) for m, a in (("kind", []), ("add", ["suppress"]), ("replace", ["unconfirm", "unsubscribe"]))
     for d in (False, True)],
)
def test_match_carries_the_rules_actions_and_message_disposition(mode: str, actions: list, delete_message: bool
                                                                  ) -> None:
    view, recipient = view_of(dsn())
    found = RuleSet.from_rules([rule("user unknown", 7, actions_mode=mode, actions=actions,
                                     delete_message=delete_message)]).first_match(message=view, recipient=recipient)
    assert found is not None
    assert (found.actions_mode, list(found.actions), found.delete_message, found.rule_id) == (
        mode, actions, delete_message, 7)


def test_a_fallback_rule_only_applies_where_the_engine_could_not_classify() -> None:
    view, recipient = view_of(dsn())
    ruleset = RuleSet.from_rules([rule("user unknown", 7, fallback_only=True)])
    assert ruleset.first_match(message=view, recipient=recipient, category="soft") is None
    assert ruleset.first_match(message=view, recipient=recipient, category="unknown").rule_id == 7


@pytest.mark.parametrize(
    ("bounce_type", "engine_kind", "expected"),
    [
        ("hard", "soft", "hard"), ("soft", "hard", "soft"), ("complaint", "unknown", "complaint"),
        ("autoreply", "unknown", "autoreply"), ("ignore", "hard", "ignored"), ("either", "blocked", "blocked"),
        (None, "delay", "delay"),
    ],
)
def test_a_rule_type_sets_the_kind_and_either_keeps_the_engine_verdict(
    bounce_type: str | None, engine_kind: str, expected: str
) -> None:
    from bounces.pipeline.decisions import decide
    from bounces.pipeline.policies import Policy
    from bounces.rules.ruleset import RuleMatch

    rule = None if bounce_type is None else RuleMatch(
        rule_id=1, rule_name="r", bounce_type=bounce_type, reason="", actions_mode="kind", actions=(),
        delete_message=False, in_statistics=True, fallback_only=False, matched_text="",
    )
    decision = decide(category=engine_kind, rule=rule, mailbox_policy=Policy())
    assert ("ignored" if decision.not_bounce else decision.kind) == expected


# --- Octeth one-liners ---------------------------------------------------------------------------


def test_octeth_one_liner_becomes_a_hard_contains_pattern() -> None:
    assert parse_octeth_line("550 5.7.1 Unfortunately, messages from==>Hard") == (
        "550 5.7.1 Unfortunately, messages from", "hard",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("mailbox is full==>Soft", ("mailbox is full", "soft")),
        ("  out of office ==> ignore  ", ("out of office", "ignore")),
        ("a==>b ==>HARD", ("a==>b", "hard")),
    ],
)
def test_octeth_types_and_spacing(line: str, expected: tuple[str, str]) -> None:
    assert parse_octeth_line(line) == expected


@pytest.mark.parametrize("line", ["no arrow here", "==>Hard", "text==>Maybe"])
def test_bad_octeth_line_is_an_error(line: str) -> None:
    with pytest.raises(PatternError):
        parse_octeth_line(line)


def test_pasted_octeth_lines_report_bad_lines_by_number() -> None:
    parsed, errors = parse_octeth_lines(
        "# Octeth patterns\n550 5.7.1 Unfortunately, messages from==>Hard\n\nmailbox full==>Soft\nbroken line\n"
    )
    assert [(p.line_number, p.bounce_type) for p in parsed] == [(2, "hard"), (4, "soft")]
    assert [e[0] for e in errors] == [5]
