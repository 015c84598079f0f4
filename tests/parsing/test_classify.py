"""Table tests for bounces.parsing.classify: reason, status, hard, permanent, category.

DB-free. Each row is real MTA wording (anonymised) with what the classifier must say.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounces.parsing.classify import category_for, classify
from bounces.parsing.reasons import PATTERNS, PSEUDO_STATUS, REASONS, STATUS_REASONS
from bounces.parsing.types import Category

# (status, replycode, diagnostic, command) -> (reason, status, hard, permanent, category)
CASES: list[tuple[str | None, str | None, str, str | None, tuple[str, str | None, bool, bool, Category]]] = [
    # -- userunknown ----------------------------------------------------------------------
    ("5.1.1", "550", "550 5.1.1 <a@example.jp>: Recipient address rejected: User unknown in local recipient table",
     "RCPT", ("userunknown", "5.1.1", True, True, Category.HARD)),
    ("5.1.1", None, "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", None,
     ("userunknown", "5.1.1", True, True, Category.HARD)),
    (None, None, "The email account that you tried to reach does not exist. Please try double-checking "
     "the recipient's email address for typos (in reply to RCPT TO command)", None,
     ("userunknown", "5.0.911", True, True, Category.HARD)),
    # RFC 3463's own text for X.1.1, printed by MTAs in place of the reply (flufl dsn_12)
    (None, None, "(failed: Bad destination mailbox address)", "RCPT",
     ("userunknown", "5.0.911", True, True, Category.HARD)),
    # 5.7.1 with "user unknown" answered to RCPT TO: the mailbox is dead, not a policy block
    ("5.7.1", "554", "554 5.7.1 <a@example.ch>: Recipient address rejected: User unknown", "RCPT",
     ("userunknown", "5.7.1", True, True, Category.HARD)),
    # temporary 4.1.1: still the address (Sisimai's hardbounce), but not a permanent failure
    ("4.1.1", "450", "450 4.1.1 <a@example.org>: Recipient address rejected: User unknown in virtual alias table",
     "RCPT", ("userunknown", "4.1.1", True, False, Category.SOFT)),
    # no SMTP command known: a filter may have said it after DATA (Sisimai: filtered) ...
    (None, None, "Unknown Recipient", None, ("filtered", "5.0.910", False, True, Category.SOFT)),
    (None, None, "[User unknown]", None, ("filtered", "5.0.910", False, True, Category.SOFT)),
    (None, None, "This user doesn't have a example.com account (a@example.com) [0]", None,
     ("filtered", "5.0.910", False, True, Category.SOFT)),
    # ... unless the reporting MTA's fixed words say it looked its own directory up
    (None, None, "The recipient name is not recognized MSEXCH:IMS:EXAMPLE:NEKO 0 (000C05A6) Unknown Recipient",
     None, ("userunknown", "5.0.911", True, True, Category.HARD)),
    (None, None, "MSEXCH:IMS:EXAMPLE:NEKO 0 (000C0595) Ambiguous Recipient", None,
     ("filtered", "5.0.910", False, True, Category.SOFT)),
    (None, None, "Unknown user: a@example.com", None, ("userunknown", "5.0.911", True, True, Category.HARD)),
    # Trend Micro InterScan MSS names only the refused address
    (None, None, "Unable to deliver message to <a@example.jp> (and other recipients in the same domain).", None,
     ("userunknown", "5.0.911", True, True, Category.HARD)),
    # Yahoo's own wording, answered to RCPT TO
    (None, "554", "554 delivery error: dd This user doesn't have a yahoo.com account (a@yahoo.com) [0]", "RCPT",
     ("userunknown", "5.0.911", True, True, Category.HARD)),
    # -- filtered: "user unknown" after DATA comes from a content filter --------------------
    (None, "550", "host mail.example.net[192.0.2.78] said: 550 Unknown user a@example.net "
     "(in reply to end of DATA command)", None, ("filtered", "5.0.910", False, True, Category.SOFT)),
    ("5.1.1", "550", "550 5.1.1 RCP-P2 Refused due to recipient preferences", None,
     ("filtered", "5.1.1", False, True, Category.SOFT)),
    # -- mailboxfull ------------------------------------------------------------------------
    ("5.2.2", "552", "552 5.2.2 <a@example.jp>... Mailbox Full", "RCPT",
     ("mailboxfull", "5.2.2", False, True, Category.SOFT)),
    ("4.2.2", "452", "452 4.2.2 The email account that you tried to reach is over quota.", "RCPT",
     ("mailboxfull", "4.2.2", False, False, Category.SOFT)),
    # a 5.1.1 status with quota wording is still a full mailbox
    ("5.1.1", "552", "552 sorry, mailbox a@example.org is over quota temporarily", None,
     ("mailboxfull", "5.1.1", False, True, Category.SOFT)),
    (None, None, "Disk quota exceeded", None, ("mailboxfull", "5.0.922", False, True, Category.SOFT)),
    # -- suspend ----------------------------------------------------------------------------
    ("5.2.1", "550", "550-5.2.1 The email account that you tried to reach is disabled.", "RCPT",
     ("suspend", "5.2.1", False, True, Category.SOFT)),
    # -- hostunknown / notaccept --------------------------------------------------------------
    ("5.1.2", None, "Host or domain name not found. Name service error for name=example.invalid type=A: "
     "Host not found", None, ("hostunknown", "5.1.2", True, True, Category.HARD)),
    (None, "550", "550 Host unknown (Authoritative answer from name server)", None,
     ("hostunknown", "5.0.912", True, True, Category.HARD)),
    ("5.1.10", "550", "550 5.1.10 Recipient address has null MX", None,
     ("notaccept", "5.1.10", True, True, Category.HARD)),
    # a temporary DNS failure is not proof that the domain does not exist
    (None, None, "Name service error for domain example.com: Host not found, try again", None,
     ("networkerror", "5.0.944", False, True, Category.SOFT)),
    # -- hasmoved ---------------------------------------------------------------------------
    ("5.1.6", "550", "550 5.1.6 recipient no longer on server: a@example.jp", None,
     ("hasmoved", "5.1.6", True, True, Category.HARD)),
    # -- norelaying -------------------------------------------------------------------------
    (None, "554", "554 5.7.1 <a@example.org>: Relay access denied", "RCPT",
     ("norelaying", "5.7.1", False, True, Category.BLOCKED)),
    (None, "550", "550 relay not permitted", "RCPT", ("norelaying", "5.0.909", False, True, Category.BLOCKED)),
    # -- blocked / reputation / PTR / auth (our problem, never counted against the contact) --
    ("5.7.1", "554", "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     "RCPT", ("blocked", "5.7.1", False, True, Category.BLOCKED)),
    ("5.7.606", "550", "550 5.7.606 Access denied, banned sending IP [192.0.2.1]. To request removal from "
     "this list please visit https://sender.office.com", "RCPT",
     ("blocked", "5.7.606", False, True, Category.BLOCKED)),
    ("4.0.0", "550", "550 mwinf5c04 ME Adresse IP source bloquee pour incident de spam. Client host blocked "
     "for spamming issues. OFR006_102", None, ("blocked", "4.0.0", False, False, Category.SOFT)),
    ("5.7.25", "550", "550 5.7.25 The IP address sending this message does not have a PTR record setup",
     "DATA", ("requireptr", "5.7.25", False, True, Category.BLOCKED)),
    ("5.7.26", "550", "550-5.7.26 Unauthenticated email from example.jp is not accepted due to domain's "
     "DMARC policy.", "DATA", ("authfailure", "5.7.26", False, True, Category.BLOCKED)),
    ("5.7.1", "550", "550 5.7.1 Email rejected per DMARC policy for example.org", "DATA",
     ("authfailure", "5.7.1", False, True, Category.BLOCKED)),
    ("5.7.23", "550", "550 5.7.23 SPF validation failed", "DATA",
     ("authfailure", "5.7.23", False, True, Category.BLOCKED)),
    ("5.7.1", "550", "550 5.7.1 Our system has detected that this message is likely suspicious due to the "
     "very low reputation of the sending IP address.", "DATA",
     ("badreputation", "5.7.1", False, True, Category.BLOCKED)),
    # -- spamdetected: content judged spam is not the address's fault ------------------------
    ("5.7.1", "550", "550 5.7.1 Message rejected as spam by Content Filtering.", "DATA",
     ("spamdetected", "5.7.1", False, True, Category.BLOCKED)),
    ("5.7.1", "550", "550 5.7.1 Message content rejected, UBE, id=00000-22-225", None,
     ("spamdetected", "5.7.1", False, True, Category.BLOCKED)),
    # -- policy, virus, content, RFC ---------------------------------------------------------
    ("5.7.9", "554", "554 5.7.9 Message not accepted for policy reasons.", "DATA",
     ("policyviolation", "5.7.9", False, True, Category.BLOCKED)),
    (None, "550", "550 Virus Detected; Content Rejected", "DATA",
     ("virusdetected", "5.0.981", False, True, Category.BLOCKED)),
    ("5.6.9", "550", "550 5.6.9 improper use of 8-bit data in message header", "DATA",
     ("contenterror", "5.6.9", False, True, Category.BLOCKED)),
    (None, "554", "554 Transaction failed: Duplicate header 'DKIM-Signature'.", "DATA",
     ("notcompliantrfc", "5.0.974", False, True, Category.BLOCKED)),
    # -- sender rejected ---------------------------------------------------------------------
    ("5.1.8", "501", "501 5.1.8 Sender address rejected", "MAIL",
     ("rejected", "5.1.8", False, True, Category.BLOCKED)),
    # refused at MAIL FROM: about us, whatever the words say about "does not exist"
    ("5.1.0", "553", "553 5.1.0 sender.example.com does not exist", "MAIL",
     ("rejected", "5.1.0", False, True, Category.BLOCKED)),
    # -- rate and connections ------------------------------------------------------------
    ("4.3.2", "452", "452 4.3.2 Connection rate limit exceeded.", "MAIL",
     ("toomanyconn", "4.3.2", False, False, Category.SOFT)),
    ("5.2.1", None, "The user you are trying to contact is receiving mail at a rate that prevents "
     "additional messages from being delivered.", "RCPT", ("speeding", "5.2.1", False, True, Category.BLOCKED)),
    # -- sizes -----------------------------------------------------------------------------
    ("5.3.4", "552", "552 5.3.4 Message too big for system", "DATA",
     ("mesgtoobig", "5.3.4", False, True, Category.SOFT)),
    ("5.2.3", "552", "552 5.2.3 Message length exceeds limit set by recipient", None,
     ("exceedlimit", "5.2.3", False, True, Category.SOFT)),
    # -- expiry, network, system, mailer -------------------------------------------------
    ("4.4.7", None, "Message could not be delivered for 5 days. Connection refused by [192.0.2.1]", None,
     ("expired", "4.4.7", False, False, Category.SOFT)),
    (None, None, "Envelope expired", None, ("expired", "5.0.947", False, True, Category.SOFT)),
    ("5.4.6", "554", "554 5.4.6 Too many hops", None, ("networkerror", "5.4.6", False, True, Category.SOFT)),
    ("5.3.5", "550", "550 5.3.5 <a@example.org>... Internal System Error", None,
     ("systemerror", "5.3.5", False, True, Category.SOFT)),
    ("5.1.1", None, "procmail: Couldn't create \"/var/spool/mail/a\"", None,
     ("mailererror", "5.1.1", False, True, Category.SOFT)),
    # -- nothing to go on --------------------------------------------------------------------
    (None, None, "", None, ("undefined", "5.0.900", False, True, Category.UNKNOWN)),
    (None, None, "The message could not be delivered.", None, ("onhold", "5.0.901", False, True, Category.UNKNOWN)),
]


@pytest.mark.parametrize(("status", "replycode", "diagnostic", "command", "expected"), CASES)
def test_classify_decides_reason_status_hard_permanent_and_category(
    status: str | None, replycode: str | None, diagnostic: str, command: str | None,
    expected: tuple[str, str | None, bool, bool, Category],
) -> None:
    verdict = classify(status=status, replycode=replycode, diagnostic=diagnostic, command=command)
    assert (verdict.reason, verdict.status, verdict.hard, verdict.permanent, verdict.category) == expected


def test_command_is_read_from_postfix_and_exim_wording_when_not_given() -> None:
    postfix = classify(status=None, replycode=None, diagnostic="host mx.example.jp[192.0.2.1] said: 550 "
                       "<a@example.jp>: User unknown (in reply to RCPT TO command)")
    exim = classify(status=None, replycode=None, diagnostic="SMTP error from remote mail server after "
                    "RCPT TO:<a@example.jp>: host mx.example.jp [192.0.2.1]: 550 User unknown")
    assert postfix.reason == exim.reason == "userunknown"


def test_command_is_read_from_a_quoted_transcript() -> None:
    rcpt = classify(status=None, replycode=None, diagnostic="Sent <<< RCPT TO:<a@example.jp> "
                    "Received >>> 550 <a@example.jp>... User unknown")
    sendmail = classify(status=None, replycode=None, diagnostic=">>> RCPT To:<a@example.jp> <<< 550 User unknown")
    data = classify(status=None, replycode=None, diagnostic=">>> RCPT To:<a@example.jp> >>> DATA <<< 550 User unknown")
    assert (rcpt.reason, sendmail.reason, data.reason) == ("userunknown", "userunknown", "filtered")
    # an address or host name that merely contains a verb is not a command
    assert classify(status=None, replycode=None, diagnostic="550 DATABASE@example.jp: User unknown").reason == "filtered"


def test_enhanced_code_in_the_text_beats_a_generic_status_field() -> None:
    verdict = classify(status="5.0.0", replycode="550", diagnostic="550 5.1.1 <a@example.jp>... User Unknown",
                       command="RCPT")
    assert verdict.status == "5.1.1"
    assert verdict.reason == "userunknown"


def test_an_ipv4_address_is_not_taken_for_a_status_code() -> None:
    verdict = classify(status=None, replycode=None, diagnostic="Connection to 192.0.2.5 timed out")
    assert verdict.status == "5.0.947"


def test_temporary_wording_gives_a_temporary_pseudo_status() -> None:
    verdict = classify(status=None, replycode=None,
                       diagnostic="Technical details of temporary failure: mailbox is full")
    assert (verdict.reason, verdict.status, verdict.permanent) == ("mailboxfull", "4.0.922", False)


def test_delayed_action_is_the_delay_category() -> None:
    verdict = classify(status="4.4.1", replycode=None, diagnostic="connect to mx.example.jp: Connection timed out",
                       action="delayed")
    assert verdict.category == Category.DELAY
    assert verdict.permanent is False


def test_kind_hints_short_circuit_to_feedback_vacation_and_delivered() -> None:
    assert classify(status=None, replycode=None, diagnostic="", kind_hint="complaint").reason == "feedback"
    assert classify(status=None, replycode=None, diagnostic="", kind_hint="autoreply").reason == "vacation"
    delivered = classify(status="2.1.5", replycode="250", diagnostic="250 2.1.5 OK", action="delivered")
    assert (delivered.reason, delivered.hard, delivered.category) == ("delivered", None, Category.DELIVERED)


def test_a_non_vague_reason_hint_is_kept_with_its_pseudo_status() -> None:
    verdict = classify(status=None, replycode=None, diagnostic="(message in another language)",
                       reason_hint="rejected")
    assert (verdict.reason, verdict.status) == ("rejected", "5.0.918")


def test_docomo_unknown_user_after_data_is_its_sender_filter() -> None:
    after_data = classify(status="5.0.0", replycode="550", diagnostic="550 Unknown user a@docomo.ne.jp",
                          command="DATA", remote_mta="mfsmax.docomo.ne.jp")
    at_rcpt = classify(status="5.0.0", replycode="550", diagnostic="550 Unknown user a@docomo.ne.jp",
                       command="RCPT", remote_mta="mfsmax.docomo.ne.jp")
    assert (after_data.reason, at_rcpt.reason) == ("rejected", "userunknown")


def test_kddi_names_the_address_for_a_dead_mailbox_and_omits_it_for_its_filter() -> None:
    dead = classify(status="5.0.0", replycode="550", diagnostic="550 <a@ezweb.ne.jp>: User unknown")
    filtered = classify(status=None, replycode="550", diagnostic="550 : User unknown", recipient="a@ezweb.ne.jp")
    elsewhere = classify(status="5.0.0", replycode="550", diagnostic="550 <a@example.net>: User unknown")
    assert (dead.reason, dead.hard) == ("userunknown", True)
    assert (filtered.reason, filtered.status) == ("filtered", "5.0.910")
    assert elsewhere.reason == "filtered"  # no command known, not a KDDI host


def test_messagelabs_refusals_keep_their_documented_meaning() -> None:
    def reason(text: str, host: str | None = "dns; server-7.tower-1.messagelabs.com") -> str:
        return classify(status="5.0.0", replycode="550", diagnostic=text, reporting_mta=host).reason

    assert reason("550 a@example.org... No such user") == "userunknown"
    assert reason("553 Sorry, your email address has been blocked") == "rejected"
    assert reason("550 a@example.org... No such user", host=None) == "filtered"


def test_aol_relay_broken_mx_answer_means_the_domain_takes_no_mail() -> None:
    text = "Name service error for name=example.org type=MX: Malformed or unexpected name server reply"
    aol = classify(status="5.4.4", replycode=None, diagnostic="X-Outbound-Mail-Relay; " + text)
    other = classify(status="5.4.4", replycode=None, diagnostic=text)
    assert (aol.reason, aol.hard, aol.category) == ("notaccept", True, Category.HARD)
    assert (other.reason, other.hard) == ("networkerror", False)


def test_exim_refusal_at_mail_from_gets_the_onhold_pseudo_status() -> None:
    text = ("SMTP error from remote mail server after MAIL FROM:<s@example.com> SIZE=1024: "
            "550 Unroutable sender address")
    exim = classify(status=None, replycode="550", diagnostic=text, mta="exim", command="MAIL")
    other = classify(status=None, replycode="550", diagnostic=text, mta="postfix", command="MAIL")
    temporary = classify(status=None, replycode="450", diagnostic="450 service permits 2 unverifyable sending IPs",
                         mta="exim", command="MAIL", action="delayed")
    assert (exim.reason, exim.status) == ("rejected", "5.0.901")
    assert other.status == "5.0.918"
    assert (temporary.reason, temporary.status, temporary.permanent) == ("requireptr", "4.0.901", False)


def test_exim_full_mailbox_without_a_code_gets_the_temporary_pseudo_status() -> None:
    exim = classify(status=None, replycode=None, diagnostic="save to mbox failed: mailbox is full", mta="exim")
    other = classify(status=None, replycode=None, diagnostic="save to mbox failed: mailbox is full", mta="postfix")
    assert (exim.reason, exim.status) == ("mailboxfull", "4.0.922")
    assert other.status == "5.0.922"


def test_gmail_delay_notice_with_technical_details_is_temporary() -> None:
    detail = classify(status=None, replycode=None, diagnostic="The recipient server did not accept our requests "
                      "to connect. [(0) example.jp. [192.0.2.1]:25: socket error]", action="delayed", mta="gmail")
    bare = classify(status=None, replycode=None, diagnostic="a@example.jp", action="delayed", mta="gmail")
    assert (detail.reason, detail.status, detail.permanent) == ("expired", "4.0.947", False)
    assert (bare.status, bare.permanent) == ("5.0.947", True)


def test_the_refusing_host_named_in_the_reply_text_enables_host_rules() -> None:
    exim = classify(status=None, replycode="550", diagnostic="SMTP error from remote mail server after RCPT "
                    "TO:<a@hotmail.com>: host mx1.hotmail.com [192.0.2.1]: 550 Requested action not taken: "
                    "mailbox unavailable")
    assert exim.reason == "userunknown"


def test_host_names_are_taken_from_dsn_fields() -> None:
    verdict = classify(status="5.0.0", replycode="550", diagnostic="550 Unknown user a@example.ne.jp",
                       command="DATA", remote_mta="dns; mfsmax.docomo.ne.jp (TCP|192.0.2.1|25)")
    assert verdict.reason == "rejected"


def test_local_delivery_agents_explain_their_own_errors() -> None:
    def reason(text: str, command: str | None = None) -> str:
        return classify(status=None, replycode=None, diagnostic=text, command=command).reason

    assert reason("procmail: Quota exceeded while writing \"/var/mail/a\"") == "mailboxfull"
    assert reason("procmail: Couldn't create \"/var/mail/a\"") == "mailererror"
    assert reason("maildrop: maildir over quota.") == "mailboxfull"
    assert reason("maildrop: Cannot find system user") == "userunknown"
    assert reason("Your message to <a@example.jp> was automatically rejected: Not enough disk space") == "mailboxfull"
    assert reason("mail.local: unknown user: a") == "userunknown"
    assert reason("vdelivermail: user is over quota") == "mailboxfull"


def test_exchange_ndr_codes_name_the_reason() -> None:
    def reason(text: str, status: str | None = None) -> str:
        return classify(status=status, replycode=None, diagnostic=text).reason

    assert reason("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found") == "userunknown"
    assert reason("550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized", "5.7.1") == "rejected"
    assert reason("550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large for this recipient") == "exceedlimit"
    assert reason("554 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain", "5.4.4") == "hostunknown"
    assert reason("550 4.4.7 QUEUE.Expired; message expired") == "expired"
    assert reason("550 5.7.1 RESOLVER.RST.AuthRequired; authentication required") == "securityerror"


def test_exim_frozen_or_delayed_message_without_other_reason_is_expired() -> None:
    frozen = classify(status=None, replycode=None, diagnostic="Message 1abc-000 has been frozen by the system filter.",
                      mta="exim")
    assert frozen.reason == "expired"


def test_mimecast_and_icloud_documented_refusals() -> None:
    def reason(text: str, status: str | None = None, command: str | None = "RCPT") -> str:
        return classify(status=status, replycode=None, diagnostic=text, command=command).reason

    assert reason("550 SPF Sender Invalid - envelope rejected") == "authfailure"
    assert reason("553 This route requires encryption (TLS)", command="MAIL") == "failedstarttls"
    assert reason("550 Administrative prohibition envelope blocked") == "rejected"
    assert reason("550 Submitter failed to authenticate", command="MAIL") == "securityerror"
    assert reason("554 5.7.1 [HME1] This message was blocked for failing both SPF and DKIM authentication "
                  "checks.", "5.7.1", "DATA") == "authfailure"
    assert reason("421 4.7.1 Messages to a@icloud.com deferred due to excessive volume.", "4.7.1") == "speeding"


def test_opensmtpd_and_gmail_fixed_failure_strings() -> None:
    def reason(text: str, mta: str) -> str:
        return classify(status=None, replycode=None, diagnostic=text, mta=mta).reason

    assert reason("Network error on destination MXs", "opensmtpd") == "networkerror"
    assert reason("No valid route to remote MX", "opensmtpd") == "networkerror"
    assert reason("Destination seem to reject all mails", "opensmtpd") == "notaccept"
    assert reason("No MX found for domain", "opensmtpd") == "notaccept"
    assert reason("Could not retrieve credentials", "opensmtpd") == "securityerror"
    assert reason("DNS Error: Could not contact DNS servers", "gmail") == "expired"
    assert reason("DNS Error: DNS server returned answer with no data", "gmail") == "hostunknown"


# Fixed failure strings of MTAs (from their sources / Sisimai's per-MTA tables), no code given.
MTA_STRINGS: list[tuple[str, str, str]] = [
    ('notes', 'networkerror', 'Message has exceeded maximum hop count'),
    ('notes', 'userunknown', 'ユーザー Neko (kijitora@example.jp) はディレクトリのリストにありません'),
    ('gmx', 'expired', 'delivery retry timeout exceeded'),
    ('einsundeins', 'mesgtoobig', 'Mail size limit exceeded. For explanation visit http://postmaster.1and1.com/en/error-messages?ip=%1s'),
    ('zoho', 'expired', '[Status: Error, Address: <a@example.co.jp>, ResponseCode 421, , Host not reachable.]'),
    ('ezweb', 'suspend', 'The user(s) account is temporarily limited.'),
    ('dragonfly', 'hostunknown', 'DNS lookup failure: host mx.example.invalid not found'),
    ('courier', 'systemerror', "This domain's DNS violates RFC 1035."),
    ('courier', 'networkerror', 'DNS lookup failed.'),
    ('dragonfly', 'expired', 'Could not deliver for the last 432000 seconds. Giving up.'),
    ('ezweb', 'expired', 'Your message was not delivered within 0 days and 1 hours. Remote host is not responding.'),
    ('ezweb', 'mailboxfull', 'The user(s) account is temporarily over quota'),
    ('ezweb', 'suspend', 'The user(s) account is disabled.'),
    ('courier', 'hostunknown', 'No such domain.'),
    ('domino', 'filtered', 'Cannot route mail to user (kijitora@example.jp)'),
    ('domino', 'systemerror', 'Several matches found in Domino Directory'),
    ('domino', 'userunknown', 'User kijitora (kijitora@example.jp) not listed in Domino Directory'),
    ('domino', 'userunknown', 'El usuario kijitora (kijitora@example.es) no se encuentra en el Directorio de Domino'),
    ('domino', 'userunknown', "Utilisateur kijitora (kijitora@example.fr) non répertorié dans l'annuaire Domino"),
    ('generic', 'mailboxfull', "The number of messages in recipient's mailbox exceeded the local limit."),
    ('kddi', 'mailboxfull', 'As their mailbox is full.'),
    ('kddi', 'norelaying', 'Due to the following SMTP relay error'),
    ('kddi', 'hostunknown', 'As the remote domain doesnt exist.'),
]


@pytest.mark.parametrize(("mta", "reason", "text"), MTA_STRINGS)
def test_mta_fixed_failure_strings(mta: str, reason: str, text: str) -> None:
    assert classify(status=None, replycode=None, diagnostic=text, mta=mta).reason == reason


# Google's documented SMTP replies (reason, reply code, status, text), as Gmail sends them.
GOOGLE_REPLIES: list[tuple[str, str, str, str]] = [
    ("authfailure","451","4.7.24","The SPF record of the sending domain has one or more suspicious entries."),
    ("authfailure","421","4.7.26","This mail has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."),
    ("authfailure","550","5.7.26","This message fails to pass SPF checks for an SPF record with a hard fail policy (-all)."),
    ("authfailure","550","5.7.1","This message does not have authentication information or fails to pass authentication checks (SPF or DKIM)."),
    ("authfailure","421","4.7.27","Your email has been rate limited because SPF authentication didn't pass for this message. Gmail requires all bulk email senders to authenticate their email with SPF."),
    ("authfailure","421","4.7.30","Your email has been rate limited because DKIM authentication didn't pass for this message. Gmail requires all email bulk senders to authenticate their email with DKIM."),
    ("authfailure","550","5.7.30","This mail has been blocked because DKIM does not pass. Gmail requires all large senders to authenticate with DKIM."),
    ("authfailure","421","4.7.32","Your email has been rate limited because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain."),
    ("authfailure","421","4.7.40","Your email has been rate limited because the sending domain doesn't have a DMARC record. Gmail requires all bulk email senders to add a DMARC record to their sending domain."),
    ("badreputation","421","4.7.0","This message is suspicious due to the very low reputation of the sending IP address."),
    ("blocked","421","4.7.0","IP not in whitelist for RCPT domain, closing connection."),
    ("blocked","421","4.7.0","Try again later, closing connection."),
    ("blocked","501","5.5.4","HELO/EHLO argument is invalid."),
    ("blocked","421","4.7.28","Gmail has detected an unusual rate of mail originating from your IP address."),
    ("blocked","550","5.7.28","There is an unusual rate of unsolicited mail originating from your IP address."),
    ("exceedlimit","552","5.2.3","Your message exceeded Google's message size limits."),
    ("exceedlimit","552","5.3.4","The size of the Subject header value (2000 bytes) exceeds Google's limit of 1000 bytes per individual header size."),
    ("expired","421","4.7.0","Connection expired, try reconnecting."),
    ("expired","451","4.4.2","Timeout - closing connection."),
    ("failedstarttls","530","5.7.0","Must issue a STARTTLS command first."),
    ("failedstarttls","454","5.5.1","STARTTLS may not be repeated."),
    ("failedstarttls","421","4.7.0","TLS required for RCPT domain, closing connection."),
    ("failedstarttls","421","4.7.29","Your email has been rate limited because this message wasn't sent over a TLS connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections."),
    ("mailboxfull","452","4.2.2","The recipient's inbox is out of storage space."),
    ("mailboxfull","452","4.2.2","The email account that you tried to reach is over quota."),
    ("mailboxfull","550","5.7.1","Email quota exceeded."),
    ("mesgtoobig","552","5.3.4","Your message exceeded Google's message size limits."),
    ("networkerror","554","5.4.6","Message exceeded 50 hops, this may indicate a mail loop."),
    ("norelaying","550","5.7.0","Mail relay denied 192.0.2.1."),
    ("norelaying","550","5.7.1","Invalid credentials for relay 192.0.2.1."),
    ("norelaying","550","5.7.1","The IP you're using to send mail is not authorized to send email directly to our servers."),
    ("notcompliantrfc","550","5.7.1","Messages missing a valid address in the From: header, or having no From: header, are not accepted."),
    ("notcompliantrfc","550","5.7.1","This message is not RFC 5322 compliant because it has duplicate headers."),
    ("notcompliantrfc","553","5.1.7","The sender address a@b is not a valid RFC 5321 address."),
    ("notcompliantrfc","554","5.6.0","Mail message is malformed. Not accepted."),
    ("policyviolation","552","5.7.0","Our system detected an illegal attachment on your message."),
    ("policyviolation","550","5.7.1","The user or domain that you are sending to (or from) has a policy that prohibited the mail that you sent."),
    ("policyviolation","421","4.7.28","Gmail has detected this message exceeded its quota for sending messages with the same Message-ID:."),
    ("rejected","550","5.7.0","Mail Sending denied."),
    ("rejected","550","5.7.1","Unauthenticated email is not accepted from this domain."),
    ("requireptr","421","4.7.0","The IP address sending this message does not have a PTR record, or the corresponding forward DNS entry does not point to the sending IP."),
    ("requireptr","550","5.7.1","This message does not meet IPv6 sending guidelines regarding PTR records and authentication."),
    ("requireptr","550","5.7.25","The sending IP does not match the IP address of the hostname specified in the pointer (PTR) record."),
    ("securityerror","454","4.7.0","Too many login attempts, please try again later."),
    ("securityerror","503","5.7.0","No identity changes permitted."),
    ("securityerror","530","5.5.1","Authentication Required."),
    ("securityerror","535","5.7.9","Application-specific password required."),
    ("securityerror","534","5.7.14","Please log in through your web browser and then try again."),
    ("securityerror","535","5.7.8","Username and Password not accepted."),
    ("spamdetected","421","4.7.0","This message is suspicious due to the nature of the content or the links within."),
    ("spamdetected","550","5.7.1","Our system has detected that this message is likely unsolicited mail."),
    ("speeding","450","4.2.1","The user you are trying to contact is receiving mail too quickly."),
    ("speeding","450","4.2.1","Peak SMTP relay limit exceeded for customer."),
    ("speeding","550","5.4.5","Daily user sending limit exceeded."),
    ("speeding","550","5.7.1","Daily SMTP relay limit exceeded for user."),
    ("suspend","550","5.2.1","The email account that you tried to reach is inactive."),
    ("syntaxerror","525","5.7.10","SMTP protocol violation, no commands allowed to pipeline after STARTTLS."),
    ("syntaxerror","501","5.5.2","Syntax error, cannot decode response."),
    ("syntaxerror","502","5.5.1","Unrecognized command."),
    ("syntaxerror","503","5.5.1","Bad sequence of commands."),
    ("syntaxerror","503","5.5.1","No DATA after BDAT."),
    ("syntaxerror","504","5.7.4","Unrecognized authentication type."),
    ("syntaxerror","554","5.7.0","Too many unauthenticated commands."),
    ("systemerror","421","4.3.0","Temporary System Problem. Try again later."),
    ("systemerror","451","4.3.0","Mail server temporarily rejected message."),
    ("systemerror","452","4.5.3","Domain policy size per transaction exceeded, please try this recipient in a separate transaction."),
    ("systemerror","454","4.7.0","Cannot authenticate due to temporary system problem."),
    ("toomanyconn","452","4.5.3","Your message has too many recipients."),
    ("toomanyconn","550","5.5.3","Too many recipients for this sender."),
]


@pytest.mark.parametrize(("reason", "reply", "status", "text"), GOOGLE_REPLIES)
def test_google_documented_replies(reason: str, reply: str, status: str, text: str) -> None:
    verdict = classify(status=status, replycode=reply, diagnostic=f"{reply} {status} {text} - gsmtp")
    assert verdict.reason == reason


# Microsoft 365 / Exchange NDR texts (reason, status, text).
MICROSOFT_NDRS: list[tuple[str, str, str]] = [
    ("authfailure","4.7.26","Access denied, a message sent over IPv6 [2a01:111:f200:2004::240] must pass either SPF or DKIM validation, this message is not signed"),
    ("authfailure","5.7.23","The message was rejected because of Sender Policy Framework violation"),
    ("authfailure","5.7.509","Access denied, sending domain EXAMPLE.JP does not pass DMARC verification"),
    ("authfailure","5.7.515","Access denied, sending domain EXAMPLE.JP doesn't meet the required authentication level."),
    ("badreputation","4.7.650","The mail server [192.0.2.5] has been temporarily rate limited due to IP reputation."),
    ("blocked","4.4.2","Connection dropped"),
    ("blocked","4.7.850","Access denied, please try again later"),
    ("blocked","5.7.25","Access denied, the sending IPv6 address [2a01:111:f200:2004::240] must have a reverse DNS record"),
    ("blocked","5.7.506","Access denied, bad HELO"),
    ("blocked","5.7.507","Access denied, rejected by recipient"),
    ("blocked","5.7.510","Access denied, example.com does not accept email over IPv6"),
    ("blocked","5.7.511","Access denied, banned sender"),
    ("blocked","5.7.513","Service unavailable, Client host [192.0.2.1] blocked by example.com using Customer Block list (AS16012607)"),
    ("blocked","5.7.606","Access denied, banned sending IP [192.0.2.1]"),
    ("blocked","4.7.500","Access denied, please try again later"),
    ("blocked","5.7.1","Unfortunately, messages from [10.0.2.5] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."),
    ("contenterror","5.3.0","Too many related errors"),
    ("contenterror","5.6.11","Invalid characters"),
    ("contenterror","5.4.11","Agent generated message depth exceeded"),
    ("contenterror","5.5.6","Invalid message content"),
    ("exceedlimit","5.2.3","RESOLVER.RST.RecipSizeLimit; message too large for this recipient"),
    ("mesgtoobig","5.3.4","Message size exceeds fixed maximum message size"),
    ("mesgtoobig","5.3.4","Message too big for system"),
    ("expired","4.4.1","Connection timed out"),
    ("expired","4.4.7","Message delayed"),
    ("expired","4.4.7","QUEUE.Expired; message expired"),
    ("expired","5.4.300","Message expired"),
    ("expired","5.4.316","Message expired, connection refused(Socket error code 10061)"),
    ("failedstarttls","4.4.8","MX hosts of example.com failed MTA-STS validation"),
    ("failedstarttls","5.4.317","STARTTLS is required to send mail"),
    ("failedstarttls","5.7.5","Remote certificate failed MTA-STS validation. Reason: expired"),
    ("failedstarttls","5.7.321","starttls-not-supported: Destination mail server must support TLS to receive mail."),
    ("failedstarttls","5.7.322","certificate-expired: Destination mail server's certificate is expired."),
]


@pytest.mark.parametrize(("reason", "status", "text"), MICROSOFT_NDRS)
def test_microsoft_ndr_texts(reason: str, status: str, text: str) -> None:
    reply = "550" if status[0] == "5" else "450"
    verdict = classify(status=status, replycode=reply, diagnostic=f"{reply} {status} {text}")
    assert verdict.reason == reason


# Yahoo / AOL documented replies (reason, reply, status, text): decided whatever SMTP stage is known.
YAHOO_REPLIES: list[tuple[str, str, str | None, str]] = [
    ("authfailure","550","5.7.9","This mail has been blocked because the sender is unauthenticated. Yahoo requires all senders to authenticate with either SPF or DKIM."),
    ("blocked","553","5.7.1","[BL21] Connections will not be accepted from 192.0.2.25, because the ip is in Spamhaus's list; see http://postmaster.yahoo.com/550-bl23.html"),
    ("blocked","553","5.7.1","[BL23] Connections not accepted from IP addresses on Spamhaus XBL; see http://postmaster.yahoo.com/errors/550-bl23.html"),
    ("norelaying","550",None,"relaying denied for <a@yahoo.com>"),
    ("policyviolation","554",None,"Message not allowed - [PH01] Email not accepted for policy reasons. Please visit https://postmaster.yahooinc.com/error-codes"),
    ("policyviolation","554","5.7.9","Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes"),
    ("rejected","451",None,"Message temporarily deferred due to unresolvable RFC.5321 from domain."),
    ("rejected","553","5.7.2","[TSS09] All messages from 192.0.2.25 will be permanently deferred; Retrying will NOT succeed."),
    ("speeding","450",None,"User is receiving mail too quickly"),
    ("suspend","554",None,"delivery error: dd a@yahoo.com is no longer valid."),
    ("suspend","554",None,"30 Sorry, your message to a@aol.jp cannot be delivered. This mailbox is disabled (554.30)"),
    ("syntaxerror","501",None,"Syntax error in parameters or arguments"),
    ("toomanyconn","421",None,"Max message per connection reached, closing transmission channel"),
    ("userunknown","554",None,"delivery error: dd This user doesn't have a yahoo.com account (a@yahoo.com) [0]"),
    ("userunknown","552",None,"1 Requested mail action aborted, mailbox not found"),
]


@pytest.mark.parametrize(("reason", "reply", "status", "text"), YAHOO_REPLIES)
@pytest.mark.parametrize("command", [None, "DATA"])
def test_yahoo_documented_replies(reason: str, reply: str, status: str | None, text: str, command: str | None) -> None:
    diagnostic = f"{reply} {status} {text}" if status else f"{reply} {text}"
    assert classify(status=status, replycode=reply, diagnostic=diagnostic, command=command).reason == reason


def test_tencent_qq_refusals_keep_their_documented_meaning() -> None:
    def reason(text: str, host: str | None = None) -> str:
        return classify(status=None, replycode=None, diagnostic=text, remote_mta=host).reason

    help_link = " http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000728"
    assert reason("550 Mailbox not found." + help_link) == "userunknown"
    assert reason("550 Mailbox unavailable or access denied" + help_link) == "speeding"
    assert reason("421 Ip frequency limited." + help_link) == "toomanyconn"
    assert reason("550 Suspected spam ip" + help_link) == "blocked"
    assert reason("550 Mailbox not found.", host="mx3.qq.com") == "userunknown"
    assert reason("550 Mailbox not found.") == "filtered"  # no command, not QQ: Sisimai's default


def test_facebook_response_codes_and_outlook_wording() -> None:
    def reason(text: str, host: str | None = None) -> str:
        return classify(status=None, replycode=None, diagnostic=text, remote_mta=host).reason

    fb = " http://postmaster.facebook.com/response_codes?ip=192.0.2.1"
    assert reason("550 5.1.1 RCP-P1" + fb + " The attempted recipient address does not exist") == "userunknown"
    assert reason("550 5.1.1 RCP-P2" + fb + " Refused due to recipient preferences") == "filtered"
    assert reason("554 5.7.1 POL-P2" + fb) == "blocked"
    assert reason("550 Requested action not taken: mailbox unavailable", "mx1.hotmail.com") == "userunknown"
    assert reason("The mail could not be delivered to the recipient because the domain is not reachable.") == \
        "hostunknown"


def test_temporary_pseudo_status_follows_sisimai_table() -> None:
    filtered = classify(status=None, replycode="450", diagnostic="450 User unknown (in reply to end of DATA command)")
    full = classify(status=None, replycode="452", diagnostic="452 Mailbox full")
    assert (filtered.reason, filtered.status) == ("filtered", "4.0.924")
    assert (full.reason, full.status) == ("mailboxfull", "4.0.922")


@pytest.mark.parametrize("text", [
    "550 Can't determine purported responsible address", "550 Denied [BOUNCEDENY]",
    "553 RFC 1035 violation: recursive cname records for example.org",
    "550 Your access to submit messages to this e-mail system has been rejected",
    "550 Sender address has been blacklisted", "501 Syntax error: empty email address",
])
def test_sender_refusals_are_rejected(text: str) -> None:
    assert classify(status=None, replycode=None, diagnostic=text, command="MAIL").reason == "rejected"
    assert classify(status=None, replycode=None, diagnostic=text).reason == "rejected"


@pytest.mark.parametrize("text", [
    "550 5.7.1 Bad sender IP address", "550 5.7.1 Too many spams from your IP (192.0.2.1)",
    "550 5.7.1 You are sending spam", "550 5.7.1 Sorry, your remotehost looks suspiciously like spammer",
    "550 5.7.1 Mail from 192.0.2.1 refused: see RBL", "554 5.7.1 No matches to nameserver query",
])
def test_sender_ip_refusals_are_blocked(text: str) -> None:
    assert classify(status="5.7.1", replycode="550", diagnostic=text, command="RCPT").reason == "blocked"


@pytest.mark.parametrize("text", [
    "550 5.7.1 Blacklisted URL in message", "550 5.7.1 Message rejected for policy reasons",
    "550 5.7.1 Your message failed several antispam checks", "550 5.7.1 Mail score (12) over 10",
    "554 5.7.1 see //www.spamhaus.org/help/help_spam_16.htm",
])
def test_content_judged_spam_after_data(text: str) -> None:
    assert classify(status="5.7.1", replycode="550", diagnostic=text, command="DATA").reason == "spamdetected"


def test_policy_refusal_at_mail_from_is_not_spam() -> None:
    verdict = classify(status="5.0.0", replycode="554", diagnostic="554 Mail from a@example.net rejected for "
                       "policy reasons. (in reply to MAIL FROM command)")
    assert verdict.reason == "policyviolation"


def test_smtp_auth_failure_towards_a_relay_is_a_security_error_not_spf() -> None:
    verdict = classify(status="5.0.0", replycode=None, diagnostic="SASL authentication failed; server "
                       "smtp.example.net[192.0.2.1] said: 535 5.7.8 Error: authentication failed")
    assert verdict.reason == "securityerror"
    assert classify(status=None, replycode="550", diagnostic="550 Messages with multiple addresses are not "
                    "accepted", command="DATA").reason == "policyviolation"


def test_ses_throttling_is_the_senders_quota_not_a_full_mailbox() -> None:
    verdict = classify(status="4.0.0", replycode="454", diagnostic="454 Throttling failure: Daily message quota exceeded.")
    assert verdict.reason == "toomanyconn"
    assert classify(status=None, replycode="550", diagnostic="550 Relaying mail to example.org is not allowed",
                    command="RCPT").reason == "norelaying"


def test_spf_settings_and_virus_or_spam_content() -> None:
    spf = classify(status=None, replycode="550", diagnostic="550 Please inspect your SPF settings", command="MAIL")
    virus = classify(status="5.7.1", replycode="550", diagnostic="550 5.7.1 The message was rejected because it "
                     "contains prohibited virus or spam content", command="DATA")
    assert (spf.reason, virus.reason) == ("authfailure", "virusdetected")


def test_too_many_received_headers_is_content_but_a_routing_loop_is_network() -> None:
    content = classify(status="5.4.6", replycode="554", diagnostic="554 5.4.6 Routing loop detected -- too many "
                       "Received: headers", command="DATA")
    loop = classify(status="5.4.6", replycode="554", diagnostic="554 5.4.6 Routing loop detected")
    assert (content.reason, loop.reason) == ("contenterror", "networkerror")


@pytest.mark.parametrize("text", [
    "550 Recipient unknown", "550 <a@example.jp> not found", "550 Email address could not be found",
    "553 sorry, that domain or user isn't in my list of allowed rcpthosts (#5.7.1)",
    "550 RCPT <a@example.jp> does not exist", "550 No a in name directory",
])
def test_mailbox_wording_at_rcpt_is_userunknown(text: str) -> None:
    assert classify(status=None, replycode=None, diagnostic=text, command="RCPT").reason == "userunknown"


def test_domain_not_in_rcpthosts_is_norelaying() -> None:
    text = "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    assert classify(status=None, replycode=None, diagnostic=text, command="RCPT").reason == "norelaying"


def test_account_or_domain_may_not_exist_is_hostunknown() -> None:
    verdict = classify(status=None, replycode="550", diagnostic="550 The account or domain may not exist",
                       command="RCPT")
    assert (verdict.reason, verdict.hard) == ("hostunknown", True)


def test_a_suspension_phrase_beats_mailbox_wording() -> None:
    verdict = classify(status="5.1.1", replycode="550", diagnostic="550 5.1.1 This address no longer accepts mail.",
                       command="RCPT")
    assert (verdict.reason, verdict.hard) == ("suspend", False)


def test_qmail_local_lookup_is_a_dead_mailbox_without_a_command() -> None:
    verdict = classify(status=None, replycode=None, diagnostic="Sorry, no mailbox here by that name. (#5.1.1)")
    assert (verdict.reason, verdict.hard) == ("userunknown", True)


def test_provider_error_codes_name_the_reason() -> None:
    def reason(text: str) -> str:
        return classify(status=None, replycode=None, diagnostic=text).reason

    assert reason("550 5.5.0 Invalid recipient. LPN007_416") == "userunknown"
    assert reason("552 5.1.1 Boite du destinataire pleine. Recipient overquota. OFR_417 [417]") == "mailboxfull"
    assert reason("421 Too many connections, slow down. OFR005_104 [104]") == "toomanyconn"
    assert reason("554 Connection refused. This IP address is listed on the Spamhaus Block List. IB104") == "blocked"
    assert reason("550 5.1.0 sender rejected. AUP#CXBL") == "blocked"


def test_category_table() -> None:
    assert category_for("userunknown", True, "failed") == Category.HARD
    assert category_for("userunknown", False, "failed") == Category.SOFT
    assert category_for("blocked", True, "failed") == Category.BLOCKED
    assert category_for("spamdetected", True, None) == Category.BLOCKED
    assert category_for("mailboxfull", True, None) == Category.SOFT
    assert category_for("expired", False, "delayed") == Category.DELAY
    assert category_for("feedback", None, None) == Category.COMPLAINT
    assert category_for("vacation", None, None) == Category.AUTOREPLY
    assert category_for("undefined", True, None) == Category.UNKNOWN
    assert category_for("onhold", True, None) == Category.UNKNOWN


def test_vocabulary_has_the_corpus_reasons_and_every_table_refers_to_it() -> None:
    corpus_reasons = {
        "userunknown", "mailboxfull", "filtered", "expired", "blocked", "rejected", "feedback",
        "hostunknown", "policyviolation", "suspend", "authfailure", "systemerror", "requireptr",
        "networkerror", "onhold", "notaccept", "securityerror", "mailererror", "toomanyconn",
        "hasmoved", "notcompliantrfc", "delivered", "spamdetected", "exceedlimit", "norelaying",
        "virusdetected", "badreputation", "vacation", "mesgtoobig", "syntaxerror", "speeding",
        "failedstarttls", "contenterror", "undefined", "systemfull",
    }
    assert corpus_reasons <= set(REASONS)
    assert set(STATUS_REASONS.values()) <= set(REASONS)
    assert set(PSEUDO_STATUS) <= set(REASONS)
    helper_tables = {"userunknown_strong", "filtered_strong", "dns_temporary", "spamdetected_strong",
                     "mailererror_strong", "rejected_isnot"}
    decisive = {name.split(":", 1)[1] for name in PATTERNS if ":" in name}
    assert decisive <= set(REASONS)
    assert {name for name in PATTERNS if ":" not in name} - helper_tables <= set(REASONS)
    assert {name for name, info in REASONS.items() if info.hard} == {
        "userunknown", "hostunknown", "hasmoved", "notaccept"}


@settings(max_examples=200, deadline=None)
@given(
    host=st.none() | st.text(max_size=80),
    recipient=st.none() | st.text(max_size=60),
    mta=st.none() | st.sampled_from(["exim", "gmail", "postfix", "messagelabs", "kddi", "aol", ""]),
    diagnostic=st.text(max_size=200),
)
def test_host_arguments_never_break_the_verdict(
    host: str | None, recipient: str | None, mta: str | None, diagnostic: str,
) -> None:
    verdict = classify(status=None, replycode=None, diagnostic=diagnostic, mta=mta, remote_mta=host,
                       reporting_mta=host, recipient=recipient, command="MAIL" if mta == "exim" else None)
    assert verdict.reason in REASONS


@pytest.mark.parametrize("junk", ["", " ", "\x00\xff", "5.", "5.1.", "999 9.9.9", "a" * 50_000, "é" * 3000])
def test_odd_input_never_raises(junk: str) -> None:
    verdict = classify(status=junk, replycode=junk, diagnostic=junk, action=junk, kind_hint=junk, command=junk)
    assert verdict.reason in REASONS


@settings(max_examples=300, deadline=None)
@given(
    status=st.none() | st.text(max_size=12),
    replycode=st.none() | st.text(max_size=5),
    diagnostic=st.text(max_size=400),
    action=st.none() | st.sampled_from(["failed", "delayed", "delivered", "relayed", "expanded", "Failed", ""]),
    command=st.none() | st.sampled_from(["RCPT", "MAIL", "DATA", "EHLO", "HELO", "CONN", "STARTTLS", "rcpt to", ""]),
)
def test_random_input_gives_a_vocabulary_reason_and_a_consistent_verdict(
    status: str | None, replycode: str | None, diagnostic: str, action: str | None, command: str | None,
) -> None:
    verdict = classify(status=status, replycode=replycode, diagnostic=diagnostic, action=action, command=command)
    assert verdict.reason in REASONS
    if verdict.status is not None and verdict.status[0] in "45":
        assert verdict.permanent is (verdict.status[0] == "5")
    if verdict.hard:
        assert verdict.reason in {"userunknown", "hostunknown", "hasmoved", "notaccept"}


# Local MTAs and providers answer in their own language; the reply to RCPT TO says which.
NON_ENGLISH: list[tuple[str, str]] = [
    ("550 Utilisateur inconnu", "userunknown"),
    ("550 Le destinataire n'existe pas", "userunknown"),
    ("550 Utente sconosciuto", "userunknown"),
    ("550 Usuário desconhecido", "userunknown"),
    ("550 Destinatario inexistente", "userunknown"),
    ("550 Die E-Mail-Adresse existiert nicht", "userunknown"),
    ("550 Onbekende gebruiker", "userunknown"),
    ("550 Nieznany użytkownik", "userunknown"),
    ("550 Пользователь не найден", "userunknown"),
    ("550 宛先のメールアドレスは存在しません", "userunknown"),
    ("550 用户不存在", "userunknown"),
    ("550 ユーザが見つかりません", "userunknown"),
    ("550 Адрес получателя не существует", "userunknown"),
    ("550 Kullanıcı bulunamadı", "userunknown"),
    ("550 メールアドレスのドメインは存在しません", "hostunknown"),
    ("550 Domaine inexistant", "hostunknown"),
    ("552 メッセージサイズが大きすぎます", "mesgtoobig"),
    ("552 Das Postfach des Empfängers ist voll", "mailboxfull"),
    ("552 La boîte aux lettres du destinataire est pleine", "mailboxfull"),
    ("552 Boîte aux lettres pleine", "mailboxfull"),
    ("552 Caixa postal cheia", "mailboxfull"),
    ("552 Buzón lleno", "mailboxfull"),
    ("552 Postfach ist voll", "mailboxfull"),
    ("552 Mailbox is vol", "mailboxfull"),
    ("552 Skrzynka jest pełna", "mailboxfull"),
    ("552 Почтовый ящик переполнен", "mailboxfull"),
    ("552 メールボックスの容量がいっぱいです", "mailboxfull"),
    ("552 邮箱已满", "mailboxfull"),
]


@pytest.mark.parametrize(("diagnostic", "reason"), NON_ENGLISH)
def test_non_english_reply_to_rcpt_gives_the_reason(diagnostic: str, reason: str) -> None:
    verdict = classify(status=None, replycode=diagnostic[:3], diagnostic=diagnostic, action="failed", command="RCPT")
    assert verdict.reason == reason
