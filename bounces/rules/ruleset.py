"""Rules at run time, pure: the message sections a rule searches (`MessageView`), compiled
rules and the ordered rule set the pipeline asks for the first match. Imports no Django."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from bounces.parsing.message import Mail, decode_header_value
from bounces.parsing.message import load as load_mail
from bounces.parsing.types import ParseResult, RecipientResult

from .patterns import MAX_PROGRAM_SIZE, PatternError, compile_pattern

logger = logging.getLogger(__name__)

# Usage:
#     ruleset = load_ruleset()                       # bounces.rules.selectors: one query
#     view = MessageView.from_raw(raw, result)       # sections computed lazily
#     match = ruleset.first_match(message=view, recipient=result.recipients[0])

# A section is searched in its first 256 KB (the useful text of a bounce is at its start).
MAX_SECTION_BYTES = 256 * 1024
# Only the first 1 MB of a stored message is parsed for sections: a 20 MB returned
# attachment would cost time and holds nothing a rule should look for.
MAX_RAW_BYTES = 1024 * 1024

# The cost of a rule (issue 12, item 5). RE2 is linear in the text, but when its DFA runs out of
# memory the fallback costs program size x text length, so a section is searched in windows of
# at most SEARCH_COST / program size bytes (at least MIN_WINDOW; consecutive windows overlap by
# WINDOW_OVERLAP bytes, so a match shorter than that is found wherever it lies), and the clock is
# checked between windows. A rule gets RULE_BUDGET seconds per message and a message
# MESSAGE_BUDGET seconds of rule evaluation in all: a rule over its budget is stopped, flagged
# (`RuleSet.slow`) and skipped for the rest of the rule set's life (one run, one page); a message
# over its budget keeps the engine's verdict. No rule can hold a worker longer than that.
SEARCH_COST = 8 * 1024 * 1024
MIN_WINDOW = 4096
WINDOW_OVERLAP = 512
RULE_BUDGET = 0.25
MESSAGE_BUDGET = 1.0


class Budget:
    """Seconds of rule evaluation left for one message, and the rules stopped on it."""

    __slots__ = ("clock", "rule_seconds", "deadline", "stopped", "exhausted", "counted")

    def __init__(self, *, message_seconds: float = MESSAGE_BUDGET, rule_seconds: float = RULE_BUDGET,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.rule_seconds = rule_seconds
        self.deadline = clock() + message_seconds
        self.stopped: list[int] = []  # rules stopped for running over their budget
        self.exhausted = False  # the message's budget ran out before every rule had run
        self.counted = False


# --- What a message offers to rules ----------------------------------------------------------


def _cap(text: str) -> bytes:
    data = text.encode("utf-8", "replace")
    return data[:MAX_SECTION_BYTES]


class MessageView:
    """The sections of one message a rule can search, computed lazily and cached.

    Sections (all decoded text, each cut to its first 256 KB):
    diagnostic — the diagnostic text of the recipient asked for (all recipients' when none);
    subject, from, to_cc (To and Cc) — decoded top-level headers; headers — every top-level
    header line; body — readable text parts plus delivery-status and feedback-report parts
    (not the returned original message, whose own text would otherwise trigger rules);
    whole — headers, body and the returned original message.
    """

    __slots__ = (
        "_raw", "_raw_loader", "_result", "_diagnostic", "_mail", "_cache", "_mail_failed", "_headers", "_shared",
    )

    def __init__(
        self,
        *,
        raw: bytes | None = None,
        result: ParseResult | None = None,
        diagnostic: str | None = None,
        raw_loader: Callable[[], bytes | None] | None = None,
    ) -> None:
        self._raw = bytes(raw[:MAX_RAW_BYTES]) if raw is not None else None
        self._raw_loader = raw_loader
        self._result = result
        self._diagnostic = diagnostic
        self._mail: Mail | None = None
        self._mail_failed = False
        self._headers: list[tuple[str, str]] | None = None
        self._cache: dict[tuple[str, str | None], bytes] = {}
        self._shared: MessageView | None = None

    def with_diagnostic(self, diagnostic: str) -> MessageView:
        """A view of the same message for another stored bounce (its own diagnostic): every
        other section, and the parsed message, are this view's, so a message shared by 4,000
        stored bounces is loaded and parsed once (issue 12, item 3)."""
        view = MessageView(diagnostic=diagnostic)
        view._shared = self
        return view

    @classmethod
    def from_raw(cls, raw: bytes, result: ParseResult | None) -> MessageView:
        """A view of a message being processed: ``result`` is the engine's `ParseResult`."""
        return cls(raw=raw, result=result)

    @classmethod
    def from_stored(
        cls,
        *,
        raw: bytes | memoryview | None = None,
        diagnostic: str,
        raw_loader: Callable[[], bytes | None] | None = None,
    ) -> MessageView:
        """A view of a stored bounce: its saved diagnostic text plus its raw message, given
        or fetched by ``raw_loader`` on first use (a diagnostic-only rule never needs it)."""
        return cls(raw=bytes(raw) if raw is not None else None, diagnostic=diagnostic, raw_loader=raw_loader)

    def raw(self) -> bytes | None:
        """The (first 1 MB of the) raw message, loading it if needed."""
        if self._shared is not None:
            return self._shared.raw()
        if self._raw is None and self._raw_loader is not None:
            loaded = self._raw_loader()
            self._raw_loader = None
            self._raw = bytes(loaded[:MAX_RAW_BYTES]) if loaded else None
        return self._raw

    def needs_raw(self) -> bool:
        """Whether the raw message would still have to be loaded (see `provide_raw`)."""
        if self._shared is not None:
            return self._shared.needs_raw()
        return self._raw is None and self._raw_loader is not None

    def provide_raw(self, raw: bytes | memoryview | None) -> None:
        """Hand over the raw message read elsewhere (callers read many in one query)."""
        if self._shared is not None:
            self._shared.provide_raw(raw)
            return
        self._raw = bytes(raw[:MAX_RAW_BYTES]) if raw else None
        self._raw_loader = None

    # The parsed message is built on first use only: most rules search the diagnostic.
    def _load(self) -> Mail | None:
        if self._mail is None and not self._mail_failed:
            raw = self.raw()
            if not raw:
                self._mail_failed = True
                return None
            try:
                self._mail = load_mail(raw)
            except Exception:  # hostile input: a section we cannot read is empty
                logger.warning("rules: message could not be parsed for sections", exc_info=True)
                self._mail_failed = True
        return self._mail

    def _diagnostic_text(self, recipient: RecipientResult | None) -> str:
        if recipient is not None:
            return recipient.diagnostic or ""
        if self._diagnostic is not None:
            return self._diagnostic
        if self._result is not None:
            return "\n".join(r.diagnostic for r in self._result.recipients if r.diagnostic)
        return ""

    def header_items(self) -> list[tuple[str, str]]:
        """The top-level header fields as (name, decoded value), in order.

        Read from the message's own header block with the stdlib parser, independent of
        how the engine splits MIME parts.
        """
        if self._headers is None:
            self._headers = []
            raw = self.raw()
            if raw:
                data = raw.replace(b"\r\n", b"\n")
                if data.startswith(b"From "):  # mbox separator line
                    data = data.split(b"\n", 1)[1] if b"\n" in data else b""
                end = data.find(b"\n\n")
                block = data[: end + 1 if end >= 0 else MAX_SECTION_BYTES][:MAX_SECTION_BYTES]
                try:
                    parsed = BytesHeaderParser(policy=compat32).parsebytes(block)
                    for name, value in parsed.items():
                        self._headers.append((name, " ".join(decode_header_value(value).split())))
                except Exception:  # hostile headers: no header section rather than an error
                    logger.warning("rules: headers could not be parsed", exc_info=True)
        return self._headers

    def _header_values(self, *names: str) -> str:
        wanted = {n.lower() for n in names}
        return "\n".join(value for name, value in self.header_items() if name.lower() in wanted)

    def _all_headers(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.header_items())

    def _body(self, mail: Mail) -> str:
        return "\n\n".join([mail.body, *mail.ds_texts, *mail.feedback_texts])

    def text(self, section: str, recipient: RecipientResult | None = None) -> str:
        """Decoded text of ``section`` (bounded), for display and highlighting."""
        return self.encoded(section, recipient).decode("utf-8", "replace")

    def encoded(self, section: str, recipient: RecipientResult | None = None) -> bytes:
        """UTF-8 bytes of ``section`` (cut to 256 KB) as the rules search them."""
        if self._shared is not None and section != "diagnostic":
            return self._shared.encoded(section, recipient)
        key = (section, recipient.diagnostic if (section == "diagnostic" and recipient) else None)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if section == "diagnostic":
            data = _cap(self._diagnostic_text(recipient))
        else:
            if section == "subject":
                text = self._header_values("subject")
                if not text and self._result is not None:
                    text = self._result.subject or ""
            elif section == "from":
                text = self._header_values("from")
                if not text and self._result is not None:
                    text = self._result.from_address or ""
            elif section == "to_cc":
                text = self._header_values("to", "cc")
            elif section == "headers":
                text = self._all_headers()
            elif section in ("body", "whole"):
                mail = self._load()
                body = self._body(mail) if mail is not None else ""
                if section == "body":
                    text = body
                else:
                    text = "\n\n".join([self._all_headers(), body, *(mail.returned if mail else [])])
            else:
                raise ValueError(f"unknown section {section!r}")
            data = _cap(text)
        self._cache[key] = data
        return data


# --- Rules at run time -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """What a matching rule says about a bounce (the pipeline decides what to do with it)."""

    rule_id: int
    rule_name: str
    bounce_type: str  # hard / soft / complaint / autoreply / ignore / either
    reason: str
    actions_mode: str  # kind (the kind's policy) / add / replace
    actions: tuple[str, ...]  # contact actions the rule adds or replaces the policy with
    delete_message: bool
    in_statistics: bool
    fallback_only: bool  # applies only where the engine could not classify the message
    matched_text: str
    message: str = ""  # the message's disposition: "" (the mailbox's), delete, mark_read, leave, move:<folder>


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to run: its settings and its RE2 program."""

    rule_id: int
    name: str
    section: str
    bounce_type: str
    reason: str
    actions_mode: str
    actions: tuple[str, ...]
    delete_message: bool
    in_statistics: bool
    fallback_only: bool
    regex: Any
    window: int = MAX_SECTION_BYTES  # bytes searched at once (see SEARCH_COST)
    message: str = ""  # as RuleMatch.message

    def search(
        self, message: MessageView, recipient: RecipientResult | None = None, budget: Budget | None = None
    ) -> tuple[bytes, int, int] | None:
        """(section bytes, start, end) of the first match, or None. Searched window by window
        within ``budget`` (a fresh one when None): when time runs out the rule's id is added
        to ``budget.stopped`` and None is returned."""
        data = message.encoded(self.section, recipient)
        if not data:
            return None
        if budget is None:
            budget = Budget()
        started = budget.clock()
        size, pos = len(data), 0
        while True:
            end = min(size, pos + self.window)
            m = self.regex.search(data, pos, end)
            if m is not None:
                start, stop = m.span()
                return data, start, stop
            if end >= size:
                return None
            now = budget.clock()
            if now - started > budget.rule_seconds:
                budget.stopped.append(self.rule_id)
                return None
            if now > budget.deadline:
                budget.exhausted = True
                return None
            pos = end - WINDOW_OVERLAP

    def match(self, message: MessageView, recipient: RecipientResult | None = None,
              budget: Budget | None = None) -> RuleMatch | None:
        """The `RuleMatch` of this rule on ``message``, or None."""
        found = self.search(message, recipient, budget)
        if found is None:
            return None
        data, start, end = found
        return RuleMatch(
            rule_id=self.rule_id,
            rule_name=self.name,
            bounce_type=self.bounce_type,
            reason=self.reason,
            actions_mode=self.actions_mode,
            actions=self.actions,
            delete_message=self.delete_message,
            in_statistics=self.in_statistics,
            fallback_only=self.fallback_only,
            matched_text=data[start:end].decode("utf-8", "replace")[:1000],
            message=self.message,
        )


def compile_rule(rule: Any) -> CompiledRule:
    """Compile a `BounceRule` (or any object with its fields); raises `PatternError`."""
    regex = compile_pattern(rule.pattern, match_type=rule.match_type, case_sensitive=rule.case_sensitive)
    return CompiledRule(
        rule_id=rule.pk or 0,
        name=rule.name,
        section=rule.section,
        bounce_type=rule.bounce_type,
        reason=rule.reason or "",
        actions_mode=getattr(rule, "actions_mode", "kind") or "kind",
        actions=tuple(getattr(rule, "actions", None) or ()),
        delete_message=bool(rule.delete_message),
        in_statistics=bool(getattr(rule, "in_statistics", True)),
        fallback_only=bool(getattr(rule, "fallback_only", False)),
        regex=regex,
        window=window_for(regex.programsize),
        message=str(getattr(rule, "message_request", None) or ("delete" if rule.delete_message else "")),
    )


def window_for(program_size: int) -> int:
    """Bytes of text searched at once by a program of ``program_size`` instructions."""
    return min(MAX_SECTION_BYTES, max(MIN_WINDOW, SEARCH_COST // max(1, min(program_size, MAX_PROGRAM_SIZE))))


class RuleSet:
    """Enabled rules in the operator's order; the first match wins."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        # Rules stopped for running over their time budget (id -> name): skipped from then on,
        # and reported to the operator by whoever runs the set (the run's log, the rule pages).
        self.slow: dict[int, str] = {}
        self.messages_over_budget = 0

    def __len__(self) -> int:
        return len(self.rules)

    def first_match(
        self, *, message: MessageView, recipient: RecipientResult | None = None, budget: Budget | None = None,
        category: str | None = None,
    ) -> RuleMatch | None:
        """The first rule (in order) whose pattern occurs in its section, or None. Evaluation
        stays within ``budget`` (one message's; a fresh one when None): see RULE_BUDGET.

        `category` is the engine's verdict: a rule marked `fallback_only` (the starter rules)
        is tried only when the engine could not classify the message ("unknown", or None).
        """
        if budget is None:
            budget = Budget()
        engine_knows = category is not None and str(category) != "unknown"
        for rule in self.rules:
            if rule.rule_id in self.slow or (rule.fallback_only and engine_knows):
                continue
            if budget.exhausted or budget.clock() > budget.deadline:
                budget.exhausted = True
                break
            found = rule.match(message, recipient, budget)
            if budget.stopped and budget.stopped[-1] == rule.rule_id:
                self.slow[rule.rule_id] = rule.name
                logger.warning("rules: rule %s (%s) stopped: over its time budget; skipped from now on",
                               rule.rule_id, rule.name)
            if found is not None:
                return found
        if budget.exhausted and not budget.counted:
            budget.counted = True
            self.messages_over_budget += 1
            logger.warning("rules: a message ran out of its rule-evaluation budget; the engine's verdict stands")
        return None

    def budget_report(self) -> str:
        """What the operator should know about rules stopped for their cost ("" when nothing)."""
        lines = [f"Rule #{rid} \"{name}\" was stopped after {RULE_BUDGET:g} s on one message and skipped "
                 "for the rest of this run: simplify its pattern." for rid, name in sorted(self.slow.items())]
        if self.messages_over_budget:
            lines.append(f"{self.messages_over_budget} message(s) ran out of their {MESSAGE_BUDGET:g} s of "
                         "rule evaluation; the engine's verdict stands for the rules not run.")
        return "\n".join(lines)

    def first_match_in(
        self, *, raw: bytes, result: ParseResult, recipient: RecipientResult | None, views: dict,
        category: str | None = None,
    ) -> RuleMatch | None:
        """`first_match` on the message ``raw`` being processed; its view is built on first
        use and kept in ``views`` for the message's other recipients."""
        view = views.get("view")
        if view is None:
            view = views["view"] = MessageView.from_raw(raw, result)
            views["budget"] = Budget()  # one budget for all the recipients of a message
        return self.first_match(message=view, recipient=recipient, budget=views["budget"], category=category)

    @classmethod
    def from_rules(cls, rules: Iterable[Any]) -> RuleSet:
        """Compile ``rules`` (already ordered); a rule that no longer compiles is skipped and logged."""
        compiled = []
        for rule in rules:
            try:
                compiled.append(compile_rule(rule))
            except PatternError as exc:
                # Saved rules are validated; this only happens after a direct database edit.
                logger.error("rules: rule %s skipped, its pattern does not compile: %s", rule.pk, exc)
        return cls(compiled)
