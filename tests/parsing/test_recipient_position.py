"""Recipients and diagnostics from the right place (issue 13): a broken Final-Recipient falls
back to the text and X-Failed-Recipients, postmaster@ in recipient position is a recipient,
a multi-line SMTP reply is joined with one code in front, an ordinary sender's notice names
recipients only in recipient position."""

from __future__ import annotations

from bounces.parsing import Kind, parse_bounce
from bounces.parsing.common import clean_smtp_reply

_BROKEN_FINAL = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+a1b2c3d4e5f6a7b8@return.example.com
Subject: Undelivered Mail Returned to Sender
X-Failed-Recipients: tina@example.org
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Delivery to the following recipient failed permanently:

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822;
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--b1--
"""


def test_a_broken_final_recipient_falls_back_and_keeps_the_dsn_status() -> None:
    result = parse_bounce(_BROKEN_FINAL)
    assert result.kind == Kind.FAILURE
    assert [(r.recipient, r.status, r.reason) for r in result.recipients] == [
        ("tina@example.org", "5.1.1", "userunknown")
    ]


_POSTMASTER = b"""From: MAILER-DAEMON@mx.example.net
To: bounces+a1b2c3d4e5f6a7b8@return.example.com
Subject: failure notice

Your message could not be delivered to the following recipients:

postmaster@example.org:
    550 5.1.1 mailbox unavailable

Please contact postmaster@mx.example.net if you need help.
"""


def test_postmaster_in_recipient_position_is_the_recipient() -> None:
    result = parse_bounce(_POSTMASTER)
    assert [r.recipient for r in result.recipients] == ["postmaster@example.org"]


def test_a_multi_line_reply_is_joined_with_one_code_in_front() -> None:
    reply = (
        "550-5.7.1 [192.0.2.1 12] Our system has detected that this message is\n"
        "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n"
        "550 5.7.1 this message has been blocked. x1si - gsmtp"
    )
    assert clean_smtp_reply(reply) == (
        "550 5.7.1 [192.0.2.1 12] Our system has detected that this message is likely unsolicited mail. "
        "To reduce the amount of spam sent to Gmail, this message has been blocked. x1si - gsmtp"
    )


_GATEWAY = b"""From: Symantec_AntiVirus_for_SMTP_Gateways@gw.example.org
To: bounces+a1b2c3d4e5f6a7b8@return.example.com
Subject: Delivery failure notification

Your message with Subject: Our November news
could not be delivered to the following recipients:

Ursula@example.org

Please do not resend your original message.

-- Original message --
From: news@mail.example.com
To: ursula@example.org, victor@example.org
Cc: list-owner@example.com
"""


def test_a_gateway_with_an_ordinary_sender_is_recognised_by_what_it_says() -> None:
    result = parse_bounce(_GATEWAY)
    assert result.kind == Kind.FAILURE
    assert [r.recipient for r in result.recipients] == ["Ursula@example.org"]


_MSGID_IN_TEXT = b"""From: MAILER-DAEMON@mx.example.net
To: bounces+a1b2c3d4e5f6a7b8@return.example.com
Subject: Delivery failure

Delivery failed for message <20261124.5f3a@mail.example.com> to wendy@example.org: 550 5.1.1 user unknown

------ Original message follows ------
From: news@mail.example.com
To: wendy@example.org
Message-ID: <20261124.5f3a@mail.example.com>
Subject: News
"""


def test_a_message_id_is_never_a_recipient() -> None:
    result = parse_bounce(_MSGID_IN_TEXT)
    assert [r.recipient for r in result.recipients] == ["wendy@example.org"]
