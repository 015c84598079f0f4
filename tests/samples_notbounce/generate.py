"""Write the negative set: ordinary messages that are no bounce (eml/ + labels.jsonl).

    python tests/samples_notbounce/generate.py      # rewrites eml/ and labels.jsonl

Each message is built from a template for one kind of mail that reaches a bounce mailbox in
real life (replies, newsletters, notifications, auto-replies, calendar invitations,
challenge-response requests, list-manager notices and digests, read receipts, success
notices, forwarded bounces that people discuss) and a handful of variants of it: other
senders, languages, MIME layouts, and the words that trap a sentence-matching engine
("undeliverable", "550 5.1.1 user unknown" quoted by a person, addresses in quoted text).
No message may yield a bounced recipient (tests/parsing/test_negative_set.py). Auto-replies
may name their sender (reason vacation): that proves the address works.

labels.jsonl follows ../../../shared/bounce-corpus (kind "not-bounce" with no recipient,
"vacation" with the auto-replying address, "delivered" with the address a success notice
names), so tools/score_engine.py can score the set too.
Deterministic: no randomness, no dates from the clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
US = "news@mail.example.com"
BOUNCES = "bounces+a1b2c3d4e5f6a7b8@return.example.com"

PEOPLE = [
    ("Alice Martin", "alice@example.org"),
    ("Bruno Keller", "bruno.keller@example.de"),
    ("Chiara Rossi", "chiara@example.it"),
    ("Daniel Okafor", "d.okafor@example.net"),
    ("Emi Tanaka", "emi@example.jp"),
]
DATES = [
    "Mon, 02 Nov 2026 09:14:03 +0100",
    "Tue, 10 Nov 2026 17:45:59 -0500",
    "Wed, 18 Nov 2026 06:01:00 +0900",
    "Thu, 26 Nov 2026 12:30:15 +0000",
    "Fri, 04 Dec 2026 23:59:59 +0200",
]


def _hdr(
    frm: str,
    to: str,
    subject: str,
    date: str,
    msgid: str,
    extra: str = "",
    ctype: str = "text/plain; charset=utf-8",
    cte: str = "8bit",
) -> str:
    return (
        f"Return-Path: <{_addr(frm)}>\n"
        f"Received: from mx.sender.example (mx.sender.example [192.0.2.10])\n"
        f"\tby mx.return.example.com with ESMTPS id 4Zx{msgid[:6]}\n\tfor <{BOUNCES}>; {date}\n"
        f"From: {frm}\nTo: {to}\nSubject: {subject}\nDate: {date}\n"
        f"Message-ID: <{msgid}@sender.example>\nMIME-Version: 1.0\n{extra}"
        f"Content-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n"
    )


def _addr(frm: str) -> str:
    return frm.split("<")[-1].rstrip(">") if "<" in frm else frm


def _who(i: int) -> tuple[str, str, str]:
    name, addr = PEOPLE[i % len(PEOPLE)]
    return name, addr, f"{name} <{addr}>"


def replies() -> Iterator[tuple[str, str, dict]]:
    """People answering our mail, quoting it (addresses and bounce words in the quote)."""
    bodies = [
        "Thanks, that works for me. See you on Thursday.\n",
        "Please remove me from this list, I never signed up.\n",
        "Hi,\n\nyour last newsletter said my address was undeliverable, but I still get\n"
        "mail fine. Could you check? My address is {addr}.\n",
        "Bonjour,\n\nmerci pour votre message. Je ne peux pas venir lundi.\n\nCordialement\n",
        "Hallo,\n\nich habe die Rechnung erhalten. Die Zustellung war leider verspätet.\n",
        "Hi team,\n\nwe saw '550 5.1.1 User unknown' in our logs for colleague@example.org\n"
        "yesterday, but that was our own mistake, the mailbox is back now.\n",
    ]
    for i, body in enumerate(bodies):
        name, addr, frm = _who(i)
        quote = (
            f"\nOn {DATES[i % 5]}, Example News <{US}> wrote:\n"
            f"> Dear {name.split()[0]},\n> your subscription for {addr} is active.\n"
            f"> To: {addr}\n> From: {US}\n> Unsubscribe: mailto:unsubscribe@mail.example.com\n"
        )
        text = _hdr(frm, BOUNCES, "Re: Our November news", DATES[i % 5], f"reply{i}",
                    f"In-Reply-To: <news-00{i}@mail.example.com>\n"
                    f"References: <news-00{i}@mail.example.com>\n")
        yield f"reply-{i:02d}", text + body.format(addr=addr) + quote, {}


def newsletters() -> Iterator[tuple[str, str, dict]]:
    """Bulk mail from other senders, plain and HTML-only, with list headers."""
    senders = [
        ("Shop Weekly <weekly@shop.example>", "This week's deals", "Up to 50% off. Delivery failed? Track your order."),
        ("Tech Digest <digest@news.example.net>", "Issue #42: mail delivery at scale",
         "How we cut our bounce rate: handling 550 and 421 replies, and undeliverable mail."),
        ("Club Newsletter <club@assoc.example.org>", "Rappel : assemblée générale", "Bonjour à tous, la réunion est jeudi."),
        ("Noticias <boletin@periodico.example.es>", "Boletín: entrega de premios", "Los ganadores fueron notificados."),
        ("Marketing <no-reply@brand.example.com>", "Your delivery status: we miss you!",
         "We haven't seen you in a while. Your address alice@example.org is still subscribed."),
        ("=?utf-8?b?44OL44Ol44O844K5?= <news@example.jp>", "=?utf-8?b?5LuK6YCx44Gu44OL44Ol44O844K5?=",
         "今週のお知らせです。配信停止はこちら。"),
    ]
    for i, (frm, subject, line) in enumerate(senders):
        extra = (
            "List-Unsubscribe: <mailto:leave@list.example.com>, <https://list.example.com/u/1>\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\nPrecedence: bulk\n"
            "List-Id: <news.list.example.com>\nX-Mailer: MassMailer 3\n"
        )
        if i % 2:
            html = (f"<html><body><h1>{subject}</h1><p>{line}</p><p>Sent to <a href='mailto:x'>"
                    "bob@example.com</a>. <a href='https://x.example/u'>Unsubscribe</a></p></body></html>\n")
            text = _hdr(frm, BOUNCES, subject, DATES[i % 5], f"nl{i}", extra, "text/html; charset=utf-8")
            yield f"newsletter-{i:02d}", text + html, {}
        else:
            boundary = f"==nl{i}=="
            body = (
                f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{line}\n\n"
                f"You receive this because you subscribed with bob@example.com.\n"
                f"--{boundary}\nContent-Type: text/html; charset=utf-8\n\n<p>{line}</p>\n--{boundary}--\n"
            )
            text = _hdr(frm, BOUNCES, subject, DATES[i % 5], f"nl{i}", extra,
                        f'multipart/alternative; boundary="{boundary}"', "7bit")
            yield f"newsletter-{i:02d}", text + body, {}


def notifications() -> Iterator[tuple[str, str, dict]]:
    """Machine-sent notices with failure words that are not about mail delivery."""
    items = [
        ("GitHub <noreply@github.example>", "[org/repo] Run failed: CI - main (a1b2c3d)",
         "Run failed for main.\n\nThe job 'test' failed after 3 attempts.\nView results: https://github.example/run/1\n"),
        ("Parcel Service <no-reply@parcel.example>", "Delivery failed: we missed you",
         "We tried to deliver your parcel to 12 Main Street but nobody was home.\n"
         "Recipient: Alice Martin\nTracking number: 1Z999AA10123456784\nWe will try again tomorrow.\n"),
        ("Bank <alerts@bank.example>", "Payment failed", "Your card payment of 25.00 EUR to shop@merchant.example was declined.\n"),
        ("Jira <jira@tracker.example.com>", "[JIRA] (OPS-12) Mail delivery to customer domain fails",
         "Daniel Okafor created OPS-12:\n\n  Mails to user@customer.example bounce with\n"
         "  550 5.1.1 <user@customer.example>: Recipient address rejected: User unknown\n\n"
         "Assignee: Alice Martin\n"),
        ("Monitoring <alerts@monitor.example.net>", "ALERT: mail queue above threshold on mx1",
         "Queue size 1520 (threshold 1000).\nDeferred: 4.4.1 connection timed out to mx.example.org\n"),
        ("Security <security@accounts.example>", "New sign-in to your account",
         "We noticed a new sign-in from Firefox on Linux. If this was not you, reset your password.\n"),
        ("Calendar <calendar-notification@calendar.example>", "Reminder: Team sync @ 10:00",
         "Reminder: Team sync, Thursday 10:00 - 10:30. Guests: alice@example.org, bruno.keller@example.de\n"),
        ("Postmaster Tools <postmaster-noreply@provider.example>", "Your domain's delivery report",
         "Daily delivery report for mail.example.com: 98.7% delivered, 1.1% rejected, 0.2% deferred.\n"
         "Top rejection: 550 5.7.1 (policy).\n"),
    ]
    for i, (frm, subject, body) in enumerate(items):
        extra = "Auto-Submitted: auto-generated\n" if i % 2 else "X-Auto-Response-Suppress: All\n"
        yield f"notification-{i:02d}", _hdr(frm, BOUNCES, subject, DATES[i % 5], f"nt{i}", extra) + body, {}


def autoreplies() -> Iterator[tuple[str, str, dict]]:
    """RFC 3834 and vendor auto-replies: the sender may be named, never as bounced."""
    items = [
        ("Automatic reply: Our November news", "Auto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\n"
         "X-MS-Exchange-Inbox-Rules-Loop: {addr}\n",
         "I am out of the office until 14 December with limited access to email.\n"),
        ("Out of Office: Our November news", "Auto-Submitted: auto-replied\n",
         "Thank you for your message. I'm away and will reply when I return.\n"),
        ("Abwesenheitsnotiz: Our November news", "Auto-Submitted: auto-replied (vacation)\nPrecedence: bulk\n",
         "Ich bin bis zum 3. Januar nicht im Büro. In dringenden Fällen wenden Sie sich an office@example.de.\n"),
        ("Réponse automatique : Our November news", "X-Autoreply: yes\nAuto-Submitted: auto-replied\n",
         "Je suis absente jusqu'au 5 janvier. Pour toute urgence : accueil@example.fr\n"),
        ("Re: Our November news", "X-Autorespond: yes\nPrecedence: auto_reply\n",
         "Thank you for contacting support. Your ticket #4411 has been created.\n"),
        ("Thank you for your email", "Auto-Submitted: auto-replied\n",
         "We have received your message and will get back to you within 2 working days.\n"),
        ("Auto: Our November news", "",
         "I am on parental leave. Mail to this address is read weekly.\n"),
        ("自動応答: Our November news", "Auto-Submitted: auto-replied\n", "ただいま休暇中です。\n"),
    ]
    for i, (subject, extra, body) in enumerate(items):
        _, addr, frm = _who(i)
        subj = subject if subject.isascii() else "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
        text = _hdr(frm, BOUNCES, subj, DATES[i % 5], f"ar{i}",
                    extra.format(addr=addr) + f"In-Reply-To: <news-01{i}@mail.example.com>\n")
        yield f"autoreply-{i:02d}", text + body, {"kind": "vacation", "recipient": addr}


def calendar() -> Iterator[tuple[str, str, dict]]:
    """Invitations and replies with text/calendar parts (attendee lines carry addresses)."""
    for i, method in enumerate(("REQUEST", "REPLY", "CANCEL", "REQUEST")):
        name, addr, frm = _who(i)
        boundary = f"==cal{i}=="
        ics = (
            f"BEGIN:VCALENDAR\nMETHOD:{method}\nPRODID:-//Example//Cal 1.0//EN\nVERSION:2.0\n"
            f"BEGIN:VEVENT\nUID:evt-{i}@sender.example\nDTSTART:20261210T090000Z\n"
            f"DTEND:20261210T100000Z\nSUMMARY:Quarterly review\n"
            f"ORGANIZER;CN={name}:mailto:{addr}\n"
            f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED;CN=Bob:mailto:bob@example.com\n"
            f"ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=News:mailto:{US}\n"
            "END:VEVENT\nEND:VCALENDAR\n"
        )
        prefix = {"REQUEST": "Invitation", "REPLY": "Declined", "CANCEL": "Canceled", }[method]
        body = (
            f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n"
            f"{prefix}: Quarterly review @ Thu 10 Dec 2026 09:00 (UTC)\n\nWho:\n* {addr} - organizer\n"
            f"* bob@example.com\n* {US}\n\n"
            f"--{boundary}\nContent-Type: text/calendar; charset=utf-8; method={method}\n\n{ics}"
            f"--{boundary}--\n"
        )
        extra = "X-Auto-Response-Suppress: All\n" if i % 2 == 0 else ""
        text = _hdr(frm, BOUNCES, f"{prefix}: Quarterly review", DATES[i % 5], f"cal{i}", extra,
                    f'multipart/alternative; boundary="{boundary}"', "7bit")
        yield f"calendar-{i:02d}", text + body, {}


def challenges() -> Iterator[tuple[str, str, dict]]:
    """Challenge-response and whitelist requests, some dressed like a delivery failure."""
    items = [
        ("Please confirm your message", "",
         "Hello,\n\nI use a challenge-response system. Your message to {addr} is held until\n"
         "you confirm you are a real person: click the link below to confirm.\n"
         "https://confirm.example/c/abc\n"),
        ("Sender verification required", "X-Challenge: yes\n",
         "Your message to {addr} with subject 'Our November news' has not been delivered yet.\n"
         "To have your message delivered, please verify that you are human at\nhttps://verify.example/v/1\n"),
        ("[Boxbe] Our November news (Action Required)", "X-Boxbe-Challenge: yes\n",
         "Hello Example News,\n\nYou will not receive any more courtesy notices from {addr}.\n"
         "Your message was waitlisted. Please add yourself to my Guest List.\n"),
        ("Your message is awaiting your confirmation", "Auto-Submitted: auto-replied\n",
         "The recipient {addr} only accepts mail from approved senders.\n"
         "Reply to this message to confirm you sent it; unconfirmed mail is deleted after 7 days.\n"),
    ]
    for i, (subject, extra, body) in enumerate(items):
        _, addr, _frm = _who(i)
        frm = f"Whitelist Service <confirm@{addr.split('@')[1]}>"
        yield f"challenge-{i:02d}", _hdr(frm, BOUNCES, subject, DATES[i % 5], f"cr{i}", extra) + body.format(addr=addr), {}
    # a challenge wrapped in a DSN (multipart/report): it asks, it does not refuse
    _, addr, _ = _who(4)
    boundary = "==crdsn=="
    body = (
        f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
        f"Your message to {addr} has been held by a challenge-response system.\n"
        "To get it delivered, please confirm you are a human by replying to this message.\n\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; cr.example.jp\n\n"
        f"Final-Recipient: rfc822; {addr}\nAction: delayed\nStatus: 4.7.0\n"
        "Diagnostic-Code: X-Challenge; held for sender verification\n\n"
        f"--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        f"From: {US}\nTo: {addr}\nSubject: Our November news\nMessage-ID: <news-99@mail.example.com>\n\n"
        f"--{boundary}--\n"
    )
    text = _hdr("Challenge System <challenge@cr.example.jp>", BOUNCES, "Please confirm: Our November news",
                DATES[0], "crdsn", "Auto-Submitted: auto-replied\nX-Challenge: verification\n",
                f'multipart/report; report-type=delivery-status; boundary="{boundary}"', "7bit")
    yield "challenge-dsn", text + body, {}


def list_manager() -> Iterator[tuple[str, str, dict]]:
    """List-manager notices, digests and welcome messages (many addresses, no failure)."""
    items = [
        ("mailman-owner@lists.example.org", "Your message to News-Discuss awaits moderator approval",
         "Your mail to 'News-Discuss' with the subject\n\n    Our November news\n\n"
         "Is being held until the list moderator can review it for approval.\n\n"
         "The reason it is being held:\n\n    Post by non-member to a members-only list\n",
         "X-Mailman-Version: 2.1.39\nPrecedence: bulk\n"),
        ("news-discuss-request@lists.example.org", "News-Discuss Digest, Vol 12, Issue 3",
         "Send News-Discuss mailing list submissions to\n\tnews-discuss@lists.example.org\n\n"
         "Today's Topics:\n\n   1. Re: bounce handling (alice@example.org)\n   2. delivery failed? (Bruno Keller)\n\n"
         "Message: 1\nDate: Mon, 2 Nov 2026 10:00:00 +0100\nFrom: alice@example.org\n"
         "To: news-discuss@lists.example.org\nSubject: Re: bounce handling\n\n"
         "> Final-Recipient: rfc822; someone@example.net\n> Status: 5.1.1\n"
         "That's a normal DSN, just remove the address.\n\n"
         "------------------------------\n\nMessage: 2\nFrom: Bruno Keller <bruno.keller@example.de>\n\n"
         "Mail to carol@example.com was returned: 'mailbox full'. Anyone else?\n",
         "X-Mailman-Version: 3.3.9\nList-Id: <news-discuss.lists.example.org>\nPrecedence: list\n"),
        ("sympa@lists.example.fr", "Bienvenue dans la liste info-asso",
         "Bienvenue dans la liste info-asso@lists.example.fr.\nVotre adresse d'abonnement est alice@example.org.\n",
         "X-Loop: sympa@lists.example.fr\n"),
        ("majordomo@lists.example.net", "Majordomo results: subscribe",
         ">>>> subscribe news-list bob@example.com\nSucceeded.\n>>>> end\nEND OF COMMANDS\n", ""),
        ("listserv@lists.example.edu", "Confirmation of your subscription request",
         "Your subscription to the NEWS-L list requires confirmation. Reply with OK within 48 hours.\n"
         "Address: bob@example.com\n", "Precedence: list\n"),
        ("news-discuss-bounces@lists.example.org", "You have been unsubscribed from the News-Discuss mailing list",
         "Your subscription has been disabled on the News-Discuss mailing list because it has received\n"
         "a number of bounces indicating that there may be a problem delivering messages to\n"
         "bob@example.com.\n", "X-Mailman-Version: 2.1.39\n"),
        ("groups-noreply@groups.example.com", "Digest for news-discuss@groups.example.com - 3 updates in 2 topics",
         "news-discuss@groups.example.com\n\nalice@example.org: Nov 02 10:00AM +0100\n"
         "Could not be delivered to carol@example.com? I think her domain expired.\n\n"
         "bruno.keller@example.de: Nov 02 11:15AM +0100\nYes, 550 host unknown.\n",
         "Precedence: list\nList-Id: <news-discuss.groups.example.com>\n"),
    ]
    for i, (frm, subject, body, extra) in enumerate(items):
        yield f"list-{i:02d}", _hdr(frm, BOUNCES, subject, DATES[i % 5], f"ls{i}", extra) + body, {}


def forwarded() -> Iterator[tuple[str, str, dict]]:
    """People forwarding a bounce to us and talking about it (inline and attached)."""
    dsn_text = (
        "This is the mail system at host mx.example.org.\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
        "<ghost@example.org>: host mx.example.org[192.0.2.25] said: 550 5.1.1\n"
        "    <ghost@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command)\n"
    )
    for i, intro in enumerate((
        "Hi,\n\nI got this when I wrote to Ghost, do you know his new address?\n\n",
        "FYI - looks like your list has an old address. Can you remove it?\n\n",
        "Bonjour, j'ai reçu ce message d'erreur, pouvez-vous vérifier ?\n\n",
    )):
        name, addr, frm = _who(i)
        fwd = (
            "---------- Forwarded message ---------\n"
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n"
            f"Date: {DATES[i]}\nSubject: Undelivered Mail Returned to Sender\nTo: {addr}\n\n"
        )
        text = _hdr(frm, BOUNCES, "Fwd: Undelivered Mail Returned to Sender", DATES[i], f"fw{i}")
        yield f"forwarded-inline-{i:02d}", text + intro + fwd + dsn_text + f"\n-- \n{name}\n", {}
    # Outlook style: "-----Original Message-----" with the bounce quoted with "> "
    _, addr, frm = _who(3)
    quoted = "".join("> " + ln + "\n" for ln in dsn_text.splitlines())
    text = _hdr(frm, BOUNCES, "FW: Undeliverable: Our November news", DATES[3], "fw3")
    yield "forwarded-quoted", text + ("Can you check this? Thanks.\n\n-----Original Message-----\n"
                                     "From: postmaster@example.org\nSent: Monday\n" + quoted), {}
    # the whole bounce attached as message/rfc822 by a person
    _, addr, frm = _who(4)
    boundary = "==fwatt=="
    inner = (
        "From: MAILER-DAEMON@mx.example.org\nTo: " + addr + "\nSubject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\nContent-Type: text/plain\n\n" + dsn_text
    )
    body = (
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\nSee the attached bounce, is this your server?\n\n"
        f"--{boundary}\nContent-Type: message/rfc822\n\n{inner}\n--{boundary}--\n"
    )
    text = _hdr(frm, BOUNCES, "Fwd: bounce from your server", DATES[4], "fw4", "",
                f'multipart/mixed; boundary="{boundary}"', "7bit")
    yield "forwarded-attached", text + body, {}
    # a helpdesk ticket quoting a DSN in prose
    text = _hdr("Helpdesk <support@helpdesk.example>", BOUNCES, "[Ticket #8812] Customer reports returned mail",
                DATES[1], "fw5", "Auto-Submitted: auto-generated\n")
    yield "forwarded-ticket", text + ("A customer wrote:\n\n  \"I get 'Delivery Status Notification (Failure)' for "
                                       "dave@example.com, status 5.1.1\"\n\nPlease investigate.\n"), {}


def receipts() -> Iterator[tuple[str, str, dict]]:
    """Read receipts (RFC 8098) and success DSNs: reports, but of no failure."""
    for i, disp in enumerate(("displayed", "deleted")):
        name, addr, frm = _who(i)
        boundary = f"==mdn{i}=="
        body = (
            f"--{boundary}\nContent-Type: text/plain\n\nThe message sent to {addr} was {disp}.\n\n"
            f"--{boundary}\nContent-Type: message/disposition-notification\n\n"
            f"Reporting-UA: mail.example.org; Mailer 2.0\nFinal-Recipient: rfc822; {addr}\n"
            f"Original-Message-ID: <news-02{i}@mail.example.com>\n"
            f"Disposition: manual-action/MDN-sent-manually; {disp}\n\n--{boundary}--\n"
        )
        text = _hdr(frm, BOUNCES, "Read: Our November news", DATES[i], f"mdn{i}", "",
                    f'multipart/report; report-type=disposition-notification; boundary="{boundary}"', "7bit")
        yield f"receipt-mdn-{i:02d}", text + body, {}
    for i, action in enumerate(("delivered", "relayed", "expanded")):
        _, addr, _ = _who(i)
        boundary = f"==ok{i}=="
        body = (
            f"--{boundary}\nContent-Type: text/plain\n\nYour message was successfully {action} to {addr}.\n\n"
            f"--{boundary}\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
            f"Final-Recipient: rfc822; {addr}\nAction: {action}\nStatus: 2.0.0\n\n--{boundary}--\n"
        )
        text = _hdr("Mail Delivery System <MAILER-DAEMON@mx.example.org>", BOUNCES,
                    "Successful Mail Delivery Report", DATES[i], f"ok{i}", "Auto-Submitted: auto-replied\n",
                    f'multipart/report; report-type=delivery-status; boundary="{boundary}"', "7bit")
        yield f"success-dsn-{i:02d}", text + body, {"kind": "delivered", "recipient": addr}


def misc() -> Iterator[tuple[str, str, dict]]:
    """Ordinary mail with bounce words in odd places."""
    items = [
        ("Alice Martin <alice@example.org>", "Returned mail policy question",
         "Hi, what does your service do with returned mail? We see 'Action: failed' lines.\n"),
        ("postmaster@partner.example", "Please whitelist our new server",
         "Hello postmaster,\n\nplease add 198.51.100.7 to your allow list. Contact: noc@partner.example\n"),
        ("Mail Administrator <admin@example.net>", "Scheduled maintenance tonight",
         "The mail server will be down from 22:00 to 23:00. Mail will be queued, not returned.\n"),
        ("Bruno Keller <bruno.keller@example.de>", "Unzustellbar? Nein!",
         "Hallo, die Mail an emi@example.jp kam doch an. Grüße\n"),
        ("MAILER-DAEMON <mailer-daemon@lists.example.org>", "Welcome to the mailing list",
         "You are now subscribed to news@lists.example.org. Address: bob@example.com\n"),
        ("Emi Tanaka <emi@example.jp>", "Re: delivery failure report",
         "Thanks for the report.\n\n> 550 5.1.1 <emi.old@example.jp>... User unknown\n> Final-Recipient: rfc822; emi.old@example.jp\n\n"
         "That was my old address, please use this one.\n"),
        ("SES Notifications <no-reply@sns.example.com>", "AWS Notification Message",
         '{"Type" : "Notification", "Message" : "{\\"notificationType\\":\\"Delivery\\",\\"delivery\\":'
         '{\\"recipients\\":[\\"alice@example.org\\"],\\"smtpResponse\\":\\"250 2.0.0 OK\\"}}"}\n'),
        ("Chiara Rossi <chiara@example.it>", "Mancata consegna?",
         "Ciao, ho ricevuto un avviso di mancata consegna ma poi il messaggio è arrivato.\n"),
    ]
    for i, (frm, subject, body) in enumerate(items):
        # misc-06 is an SES delivery notice: it names the delivered address, as a success DSN does
        meta = {"kind": "delivered", "recipient": "alice@example.org"} if "notificationType" in body else {}
        yield f"misc-{i:02d}", _hdr(frm, BOUNCES, subject, DATES[i % 5], f"mi{i}") + body, meta


def lookalikes() -> Iterator[tuple[str, str, dict]]:
    """Ordinary mail that looks bouncy: people, parcels, tickets, moderation, quarantine digests."""
    items = [
        # a person writes a fresh message (no Re:) about a failure notice they got
        ("Daniel Okafor <d.okafor@example.net>", "Re: Your message could not be delivered",
         "Hi,\n\nI got a notice saying your message could not be delivered to my colleague:\n\n"
         "    carol@example.com\n    550 5.1.1 User unknown\n\n"
         "She changed her address last week, please use carol.new@example.com instead.\n\nDaniel\n",
         "In-Reply-To: <news-010@mail.example.com>\nUser-Agent: Mozilla Thunderbird\n"),
        ("Alice Martin <alice@example.org>", "undeliverable?",
         "Hello, your newsletter says my address is undeliverable, but I read it every week.\n"
         "Delivery to the following recipient failed permanently? Not true!\nalice@example.org\n", ""),
        # newsletters and articles that quote failure notices
        ("Deliverability Weekly <editor@deliver.example.net>", "What 'Delivery Status Notification (Failure)' means",
         "This week: how to read a bounce.\n\nA typical one says:\n\n"
         "   Delivery to the following recipient failed permanently:\n\n        someone@example.com\n\n"
         "   Technical details of permanent failure: 550 5.1.1 The email account that you tried to reach does not exist.\n\n"
         "Remove such addresses from your list. Unsubscribe: https://deliver.example.net/u/1\n",
         "List-Unsubscribe: <https://deliver.example.net/u/1>\nPrecedence: bulk\n"),
        ("IT Newsletter <it-news@corp.example.com>", "Mail migration: undeliverable messages this weekend",
         "During the migration on Saturday, mail to old addresses such as team@old.example.com may be\n"
         "returned as undeliverable. Your message could not be delivered? Resend it on Monday.\n",
         "Precedence: bulk\n"),
        # support tickets
        ("Helpdesk <support@helpdesk.example.com>", "[Ticket #48213] Email delivery failed for customer",
         "A new ticket was opened by Chiara Rossi <chiara@example.it>:\n\n"
         "  \"Our invoices to accounts@customer.example bounce with 'mailbox unavailable'.\n"
         "   Delivery has failed to these recipients or groups: accounts@customer.example\"\n\n"
         "Priority: high. Reply above this line to add a comment.\n", "Auto-Submitted: auto-generated\n"),
        ("Support <noreply@desk.example.org>", "Re: [#9912] Mail to our office returned",
         "Hello Bruno,\n\nwe checked the rejection (550 5.7.1 Relaying denied) for office@example.de:\n"
         "the MX record was wrong. It is fixed now.\n\nKind regards, Support\n",
         "In-Reply-To: <t9912@desk.example.org>\nAuto-Submitted: auto-generated\n"),
        # parcels
        ("Parcel Express <tracking@parcel.example>", "Delivery failed: package returned to sender",
         "We were unable to deliver your package.\nRecipient: Alice Martin, alice@example.org\n"
         "Reason: address unknown. The package was returned to sender.\nTracking: PX123456789\n",
         "Auto-Submitted: auto-generated\n"),
        ("Paketdienst <noreply@paket.example.de>", "Zustellung nicht möglich",
         "Ihre Sendung konnte nicht zugestellt werden. Empfänger nicht angetroffen.\n"
         "Empfänger: bruno.keller@example.de\nSendungsnummer: 00340434161094042557\n", ""),
        ("Colis <suivi@colis.example.fr>", "Livraison échouée pour votre colis",
         "Votre colis n'a pas pu être livré : destinataire absent.\nDestinataire : alice@example.org\n", ""),
        ("Mensajería <avisos@envios.example.es>", "Entrega fallida de su paquete",
         "No se pudo entregar su paquete. Destinatario desconocido en la dirección indicada.\n"
         "Contacto: chiara@example.it\n", ""),
        ("Correios <avisos@correio.example.br>", "Sua encomenda não foi entregue",
         "Olá,\n\nsua encomenda não foi entregue: destinatário ausente.\nDestinatário:\nalice@example.org\n"
         "Nova tentativa amanhã.\n", ""),
        ("Kurier <powiadomienia@kurier.example.pl>", "Przesyłka nie została dostarczona",
         "Przesyłka nie została dostarczona. Nie udało się dostarczyć paczki do:\nbruno.keller@example.de\n", ""),
        ("Pakketdienst <info@pakket.example.nl>", "Uw pakket kon niet worden bezorgd",
         "Uw pakket kon niet worden bezorgd. Ontvanger:\nemi@example.jp\nWe proberen het morgen opnieuw.\n", ""),
        ("Служба доставки <info@dostavka.example.ru>", "Ваша посылка не доставлена",
         "Ваша посылка не была доставлена: получатель отсутствовал.\nПолучатель:\nd.okafor@example.net\n", ""),
        # list moderation and quarantine digests
        ("news-owner@lists.example.org", "Post to News rejected by the moderator",
         "Your message to news@lists.example.org with subject \"Offer\" was rejected by the list\n"
         "moderator. Reason: off-topic.\n\nYour address: d.okafor@example.net\n",
         "X-Mailman-Version: 3.3.9\nPrecedence: bulk\n"),
        ("Spam Quarantine <quarantine@gateway.example.com>", "Quarantine summary: 3 messages held",
         "The following messages were blocked and are held in quarantine:\n\n"
         "From: promo@spam.example  Subject: WIN NOW  Reason: spam detected\n"
         "From: news@mail.example.com  Subject: Our November news  Reason: bulk mail\n\n"
         "Release them at https://gateway.example.com/q\n", "Auto-Submitted: auto-generated\n"),
        # Outlook's message recall and its result
        ("Emi Tanaka <emi@example.jp>", "Recall: Our November news",
         "Emi Tanaka would like to recall the message, \"Our November news\".\n", ""),
        ("System Administrator <postmaster@example.jp>", "Message Recall Failure: Our November news",
         "Your message\n\n  To: bob@example.com\n  Subject: Our November news\n\n"
         "could not be recalled: it was already read.\n", "Auto-Submitted: auto-generated\n"),
        # a plain-text abuse complaint (no ARF): a person, not a feedback loop
        ("Abuse Desk <abuse@isp.example.net>", "Spam complaint about 198.51.100.7",
         "Hello,\n\nwe received a complaint from one of our customers (bob@example.com) about the\n"
         "message below. Please make sure that you mail only people who asked for it.\n\n"
         "-----Original Message-----\nFrom: news@mail.example.com\nTo: bob@example.com\nSubject: Our November news\n", ""),
    ]
    for i, (frm, subject, body, extra) in enumerate(items):
        yield f"lookalike-{i:02d}", _hdr(frm, BOUNCES, subject, DATES[i % 5], f"lk{i}", extra) + body, {}


def reports() -> Iterator[tuple[str, str, dict]]:
    """Machine reports that are no delivery failure: DMARC aggregate and failure reports,
    TLS-RPT (RFC 8460), MDNs (RFC 8098) in other forms, an Outlook read receipt."""
    # DMARC aggregate (RFC 7489 7.2): a zipped XML attachment
    boundary = "==dmarc=="
    xml = ("<?xml version=\"1.0\"?><feedback><report_metadata><org_name>provider.example</org_name>"
           "<report_id>1234</report_id></report_metadata><record><row><source_ip>198.51.100.7</source_ip>"
           "<count>12</count><policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf>"
           "</policy_evaluated></row></record></feedback>\n")
    body = (f"--{boundary}\nContent-Type: text/plain\n\nThis is an aggregate report from provider.example.\n\n"
            f"--{boundary}\nContent-Type: application/gzip; name=\"provider.example!mail.example.com!1764547200!1764633600.xml.gz\"\n"
            f"Content-Transfer-Encoding: base64\n\n{base64.encodebytes(xml.encode()).decode()}--{boundary}--\n")
    yield "report-dmarc-aggregate", _hdr(
        "noreply-dmarc-support@provider.example", BOUNCES,
        "Report domain: mail.example.com Submitter: provider.example Report-ID: <1234>", DATES[0], "dm0", "",
        f'multipart/mixed; boundary="{boundary}"', "7bit") + body, {}
    # DMARC failure report (RFC 6591): an ARF report of Feedback-Type auth-failure
    boundary = "==ruf=="
    body = (f"--{boundary}\nContent-Type: text/plain\n\nThis is an authentication failure report for an email "
            "message received from IP 198.51.100.7.\n\n"
            f"--{boundary}\nContent-Type: message/feedback-report\n\nFeedback-Type: auth-failure\n"
            "User-Agent: DMARC-Reporter/1.0\nVersion: 1\nOriginal-Mail-From: <news@mail.example.com>\n"
            "Original-Rcpt-To: <bob@example.com>\nArrival-Date: Mon, 30 Nov 2026 10:00:05 +0000\n"
            "Source-IP: 198.51.100.7\nAuth-Failure: dmarc\nReported-Domain: mail.example.com\n\n"
            f"--{boundary}\nContent-Type: text/rfc822-headers\n\nFrom: news@mail.example.com\nTo: bob@example.com\n"
            f"Subject: Our November news\nMessage-ID: <news-77@mail.example.com>\n\n--{boundary}--\n")
    # names the recipient (as Sisimai's feedback), but as not_bounce: nobody complained
    yield "report-dmarc-failure", _hdr(
        "dmarc-reports@provider.example", BOUNCES, "Authentication failure report for mail.example.com",
        DATES[1], "dm1", "", f'multipart/report; report-type=feedback-report; boundary="{boundary}"', "7bit") + body, {
            "kind": "feedback", "recipient": "bob@example.com"}
    # TLS-RPT (RFC 8460): report-type tlsrpt with a gzipped JSON part
    boundary = "==tlsrpt=="
    js = ('{"organization-name":"provider.example","policies":[{"policy":{"policy-type":"sts",'
          '"policy-domain":"mail.example.com"},"summary":{"total-successful-session-count":120,'
          '"total-failure-session-count":2},"failure-details":[{"result-type":"certificate-expired",'
          '"sending-mta-ip":"198.51.100.7","receiving-mx-hostname":"mx.mail.example.com",'
          '"failed-session-count":2}]}]}\n')
    body = (f"--{boundary}\nContent-Type: text/plain\n\nThis is an aggregate TLS report from provider.example.\n\n"
            f"--{boundary}\nContent-Type: application/tlsrpt+gzip\nContent-Disposition: attachment; "
            "filename=\"provider.example!mail.example.com!1764547200!1764633600.json.gz\"\n"
            f"Content-Transfer-Encoding: base64\n\n{base64.encodebytes(js.encode()).decode()}--{boundary}--\n")
    yield "report-tlsrpt", _hdr(
        "tlsrpt-noreply@provider.example", BOUNCES,
        "Report Domain: mail.example.com Submitter: provider.example Report-ID: <2026.11.30T00.00.00Z+mail.example.com@provider.example>",
        DATES[2], "tr0", "TLS-Report-Domain: mail.example.com\nTLS-Report-Submitter: provider.example\n",
        f'multipart/report; report-type=tlsrpt; boundary="{boundary}"', "7bit") + body, {}
    # MDNs: deleted without being read, a failed disposition, a German read receipt
    for i, (disp, subject, text) in enumerate((
        ("automatic-action/MDN-sent-automatically; deleted", "Not read: Our November news",
         "Your message\n\n  To: bob@example.com\n  Subject: Our November news\n\nwas deleted without being read."),
        ("automatic-action/MDN-sent-automatically; failed", "Disposition notification",
         "The message sent to bob@example.com could not be processed by the recipient's mail program."),
        ("manual-action/MDN-sent-manually; displayed", "Gelesen: Our November news",
         "Ihre Nachricht an bob@example.com wurde gelesen."),
    )):
        boundary = f"==mdnx{i}=="
        body = (f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n\n"
                f"--{boundary}\nContent-Type: message/disposition-notification\n\n"
                "Reporting-UA: pc.example.com; Mail Client 5\nFinal-Recipient: rfc822; bob@example.com\n"
                f"Original-Message-ID: <news-03{i}@mail.example.com>\nDisposition: {disp}\n"
                + ("Failure: mailbox locked by another process\n" if "failed" in disp else "")
                + f"\n--{boundary}--\n")
        yield f"report-mdn-{i:02d}", _hdr(
            "Bob <bob@example.com>", BOUNCES, subject, DATES[i % 5], f"mdx{i}", "",
            f'multipart/report; report-type=disposition-notification; boundary="{boundary}"', "7bit") + body, {}


def multiply(base: Iterator[tuple[str, str, dict]], n: int) -> Iterator[tuple[str, str, dict]]:
    """Variants of each message: CRLF line ends, base64 body, quoted-printable body."""
    for name, text, meta in base:
        yield name, text, meta
        head, _, body = text.partition("\n\n")
        if n >= 2 and "multipart/" not in head:
            b64 = base64.encodebytes(body.encode()).decode()
            yield name + "-b64", head.replace("Content-Transfer-Encoding: 8bit", "Content-Transfer-Encoding: base64")\
                .replace("Content-Transfer-Encoding: 7bit", "Content-Transfer-Encoding: base64") + "\n\n" + b64, meta
        if n >= 3:
            yield name + "-crlf", text.replace("\n", "\r\n"), meta


def messages() -> list[tuple[str, bytes, dict]]:
    """(name, raw bytes, label extras) for every message of the set."""
    out: list[tuple[str, bytes, dict]] = []
    groups = (replies(), newsletters(), notifications(), autoreplies(), calendar(), challenges(),
              list_manager(), forwarded(), receipts(), misc(), lookalikes(), reports())
    for group in groups:
        for name, text, meta in multiply(group, 3):
            out.append((name, text.encode("utf-8"), meta))
    return out


def main() -> None:
    eml = HERE / "eml"
    eml.mkdir(exist_ok=True)
    for old in eml.glob("*.eml"):
        old.unlink()
    labels = []
    for name, raw, meta in messages():
        (eml / f"{name}.eml").write_bytes(raw)
        kind = meta.get("kind", "not-bounce")
        labels.append({
            "file": f"{name}.eml", "recipient": meta.get("recipient"), "status": None, "replycode": None,
            "reason": kind if kind in ("vacation", "delivered", "feedback") else None, "hardbounce": None, "permanent": None,
            "kind": kind, "mta": name.split("-")[0],
        })
    (HERE / "labels.jsonl").write_text("".join(json.dumps(lb) + "\n" for lb in labels))
    print(f"{len(labels)} messages")


if __name__ == "__main__":
    main()
