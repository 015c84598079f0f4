"""Reading variations that held-back mail has and our corpora may not (issue 13 follow-up).

Each notice is synthetic, built by tests/parsing/notices.py from a documented format, with
the result an operator needs: who bounced, the status, the reason, hard or soft, and for
warnings and auto-replies that nobody counts as failed.
"""

from __future__ import annotations

import pytest

from bounces.parsing import Category, Kind, parse_bounce

from . import notices as n

Expect = tuple[str, str | None, str | None]  # recipient, status, reason (None: not checked)

_DIAG_FULL = "smtp; 552 5.2.2 <carla@example.org>: mailbox full, the user has exceeded the storage quota"
_DIAG_UNKNOWN = "smtp; 550 5.1.1 <ruth@example.org>: Recipient address rejected: User unknown in virtual mailbox table"


def _postfix_report(diag: str, rcpt: str, status: str, *, ds_cte: str | None = None, human_cte: str | None = None,
                    ds_ctype: str = "message/delivery-status") -> bytes:
    human = (
        "This is the mail system at host mx.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "                   The mail system\n\n"
        f"<{rcpt}>: host mx.{rcpt.split('@')[1]}[192.0.2.25] said: {diag.split('; ', 1)[1]} (in reply to RCPT TO command)\n"
    )
    ds = n.ds_fields([{
        "Final-Recipient": f"rfc822; {rcpt}", "Original-Recipient": f"rfc822;{rcpt}", "Action": "failed",
        "Status": status, "Remote-MTA": f"dns; mx.{rcpt.split('@')[1]}", "Diagnostic-Code": diag,
    }])
    return n.message("Undelivered Mail Returned to Sender",
                     n.report(human, ds, n.original(rcpt), ds_cte=ds_cte, human_cte=human_cte, ds_ctype=ds_ctype))


def _check(raw: bytes, kind: Kind, expected: list[Expect]) -> None:
    result = parse_bounce(raw)
    assert result.kind == kind, (result.kind, result.error, [r.recipient for r in result.recipients])
    got = [(r.recipient, r.status, r.reason) for r in result.recipients]
    assert [g[0] for g in got] == [e[0] for e in expected], got
    for (rcpt, status, reason), r in zip(expected, result.recipients, strict=True):
        if status is not None:
            assert r.status == status, (rcpt, r.status, r.diagnostic)
        if reason is not None:
            assert r.reason == reason, (rcpt, r.reason, r.diagnostic)


# ---- 1. line wrapping -----------------------------------------------------------------------

@pytest.mark.parametrize("width", [20, 28, 36, 44, 52, 60, 68, 76])
@pytest.mark.parametrize("indent", [" ", "\t", "        "])
def test_a_diagnostic_code_folded_at_any_column_reads_the_same(width: int, indent: str) -> None:
    """RFC 3464 fields may be folded like headers (RFC 5322 2.2.3): continuation lines start
    with white space, wherever the MTA chose to break."""
    raw = _postfix_report(_DIAG_UNKNOWN, "ruth@example.org", "5.1.1")
    folded = n.fold("Diagnostic-Code: " + _DIAG_UNKNOWN, width, indent)
    raw = raw.replace(("Diagnostic-Code: " + _DIAG_UNKNOWN).encode(), folded.encode())
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


@pytest.mark.parametrize("width", [24, 40, 56, 72])
def test_a_folded_diagnostic_without_a_specific_status_keeps_its_reason(width: int) -> None:
    """Status 5.0.0 leaves the reason to the words: folding between "mailbox" and "full"
    must not hide them."""
    diag = "smtp; 552 sorry, the recipient's mailbox is full and cannot accept new messages"
    raw = _postfix_report(diag, "carla@example.org", "5.0.0")
    raw = raw.replace(("Diagnostic-Code: " + diag).encode(), n.fold("Diagnostic-Code: " + diag, width).encode())
    _check(raw, Kind.FAILURE, [("carla@example.org", None, "mailboxfull")])


@pytest.mark.parametrize("width", [30, 50, 70])
def test_the_human_text_wrapped_at_any_column_still_names_the_recipient(width: int) -> None:
    """A notice without a delivery-status part whose lines the MTA wrapped."""
    text = (
        "This is the mail system at host mx.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not be delivered to one or more "
        "recipients. It's attached below.\n\n"
        "<ruth@example.org>: host mx.example.org[192.0.2.25] said: 550 5.1.1 <ruth@example.org>: "
        "Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)\n"
    )
    wrapped = "\n".join(n.fold(line, width, "    ") if line else "" for line in text.split("\n"))
    ctype, body = n.multipart("multipart/mixed", [n.part("text/plain", wrapped), n.part("message/rfc822", n.original("ruth@example.org") + "\nHello\n")])
    raw = n.message("Undelivered Mail Returned to Sender", (ctype, body))
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


def test_folded_subject_and_from_headers_are_read() -> None:
    raw = _postfix_report(_DIAG_UNKNOWN, "ruth@example.org", "5.1.1")
    raw = raw.replace(b"Subject: Undelivered Mail Returned to Sender", b"Subject: Undelivered Mail\n Returned to Sender")
    raw = raw.replace(b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
                      b"From: Mail Delivery System\n\t<MAILER-DAEMON@mx.example.net>")
    result = parse_bounce(raw)
    assert result.subject == "Undelivered Mail Returned to Sender"
    assert result.from_address == "MAILER-DAEMON@mx.example.net"
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


# ---- 2. transfer encodings and mislabelled parts ---------------------------------------------

@pytest.mark.parametrize("ds_cte", [None, "base64", "quoted-printable", "7bit"])
@pytest.mark.parametrize("human_cte", [None, "base64", "quoted-printable"])
def test_encoded_delivery_status_and_text_parts_are_decoded(ds_cte: str | None, human_cte: str | None) -> None:
    raw = _postfix_report(_DIAG_FULL, "carla@example.org", "5.2.2", ds_cte=ds_cte, human_cte=human_cte)
    _check(raw, Kind.FAILURE, [("carla@example.org", "5.2.2", "mailboxfull")])


def test_quoted_printable_soft_breaks_inside_an_address_and_a_status() -> None:
    """A quoted-printable text part broken by soft line breaks (=) in the middle of the
    address and the reply: decoding joins them before anything is read."""
    text = (
        "This is the mail system at host mx.example.net.\n\n"
        "Your message could not be delivered to the following recipient:\n\n"
        "<ruth@example.org>: host mx.example.org said: 550 5.1.1 User unknown (in reply to RCPT TO command)\n"
    )
    qp = n.encode(text, "quoted-printable").replace("ruth@exam", "ruth@ex=\nam").replace("5.1.1 User", "5.1=\n.1 User")
    ctype, body = n.multipart("multipart/mixed", [
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\n" + qp,
        n.part("text/rfc822-headers", n.original("ruth@example.org")),
    ])
    _check(n.message("Undelivered Mail Returned to Sender", (ctype, body)), Kind.FAILURE,
           [("ruth@example.org", "5.1.1", "userunknown")])


@pytest.mark.parametrize("ds_ctype", [
    'text/plain; name="details.txt"',
    "text/plain",
    "application/octet-stream",
    "message/global-delivery-status",
    "text/delivery-status",
])
def test_delivery_status_fields_in_a_mislabelled_part_are_read(ds_ctype: str) -> None:
    """Gateways re-wrap reports: the delivery-status fields arrive as a text attachment, or as
    RFC 6533's message/global-delivery-status."""
    raw = _postfix_report(_DIAG_UNKNOWN, "ruth@example.org", "5.1.1", ds_ctype=ds_ctype)
    raw = raw.replace(b"multipart/report; report-type=delivery-status", b"multipart/mixed")
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


def test_a_base64_body_of_a_single_part_notice_is_decoded() -> None:
    body = (
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<ruth@example.org>:\n192.0.2.25 does not like recipient.\n"
        "Remote host said: 550 5.1.1 <ruth@example.org>: no such user here\n"
        "Giving up on 192.0.2.25.\n\n--- Below this line is a copy of the message.\n\n"
        + n.original("ruth@example.org")
    )
    raw = n.plain("failure notice", body, cte="base64")
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


# ---- 3. missing or empty recipient fields ------------------------------------------------------

def test_a_dsn_without_final_recipient_uses_original_recipient() -> None:
    ds = n.ds_fields([{"Original-Recipient": "rfc822;ruth@example.org", "Action": "failed", "Status": "5.1.1",
                       "Diagnostic-Code": "smtp; 550 5.1.1 user unknown"}])
    raw = n.message("Delivery Status Notification (Failure)",
                    n.report("Delivery to the following recipient failed permanently.\n", ds, n.original("ruth@example.org")))
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


def test_an_empty_final_recipient_takes_the_address_from_x_failed_recipients() -> None:
    ds = n.ds_fields([{"Final-Recipient": "rfc822;", "Action": "failed", "Status": "5.2.2",
                       "Diagnostic-Code": "smtp; 552 5.2.2 mailbox over quota"}])
    ctype, body = n.report("Your message could not be delivered.\n", ds, n.original("carla@example.org"))
    raw = (n.headers("Undeliverable: December news", ctype=ctype, extra="X-Failed-Recipients: carla@example.org\n")
           + "\n" + body).encode()
    _check(raw, Kind.FAILURE, [("carla@example.org", "5.2.2", "mailboxfull")])


def test_an_empty_final_recipient_takes_the_address_the_text_names() -> None:
    ds = n.ds_fields([{"Final-Recipient": "rfc822; ", "Action": "failed", "Status": "5.1.1"}])
    human = ("Delivery has failed to these recipients or groups:\n\nruth@example.org\n"
             "The email address you entered couldn't be found.\n")
    raw = n.message("Undeliverable: December news", n.report(human, ds, n.original("ruth@example.org")))
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


def test_x_failed_recipients_alone_names_every_recipient() -> None:
    """An unknown MTA's prose with no address in it: the header is the only witness."""
    body = ("Your message could not be delivered to some of its recipients.\n"
            "The remote server answered: 550 5.1.1 mailbox unavailable\n\n"
            "------ This is a copy of the message's headers ------\n\n" + n.original("ruth@example.org"))
    raw = n.plain("Mail delivery failed", body,
                  extra="X-Failed-Recipients: ruth@example.org,\n\tsam@example.net\n")
    result = parse_bounce(raw)
    assert result.kind == Kind.FAILURE
    assert sorted(r.recipient for r in result.recipients) == ["ruth@example.org", "sam@example.net"]
    assert all(r.permanent for r in result.recipients)


# ---- 4. transcripts ---------------------------------------------------------------------------

@pytest.mark.parametrize("arrows", [(">>>", "<<<"), ("Sent <<<", "Received >>>")])
def test_a_session_transcript_gives_the_rcpt_reply(arrows: tuple[str, str]) -> None:
    out, inn = arrows
    body = (
        "The original message was received at Tue, 1 Dec 2026 07:59:58 GMT\nfrom localhost [127.0.0.1]\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n<ruth@example.org>\n\n"
        "   ----- Transcript of session follows -----\n"
        f"... while talking to mx.example.org.:\n{out} MAIL From:<{n.VERP}> SIZE=1520\n{inn} 250 2.1.0 Ok\n"
        f"{out} RCPT To:<ruth@example.org>\n{inn} 550-5.1.1 The account you tried to reach does not\n"
        f"{inn} 550 5.1.1 exist. Please check the address.\n550 5.1.1 <ruth@example.org>... User unknown\n"
    )
    raw = n.plain("Returned mail: see transcript for details", body)
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


def test_a_transcript_refused_after_data_is_not_a_dead_address() -> None:
    body = (
        "----- The following addresses had permanent fatal errors -----\n<ruth@example.org>\n\n"
        "----- Transcript of session follows -----\n... while talking to mx.example.org.:\n"
        ">>> DATA\n<<< 554 5.7.1 Message rejected as spam by content filter\n554 5.0.0 Service unavailable\n"
    )
    result = parse_bounce(n.plain("Returned mail: see transcript for details", body))
    assert result.kind == Kind.FAILURE
    [r] = result.recipients
    assert r.recipient == "ruth@example.org"
    assert r.hard is False and r.category == Category.BLOCKED


# ---- 5. several recipients, different fates ---------------------------------------------------

def test_each_recipient_of_one_notice_gets_its_own_status() -> None:
    ds = n.ds_fields([
        {"Final-Recipient": "rfc822; ruth@example.org", "Action": "failed", "Status": "5.1.1",
         "Diagnostic-Code": "smtp; 550 5.1.1 user unknown"},
        {"Final-Recipient": "rfc822; carla@example.org", "Action": "failed", "Status": "5.2.2",
         "Diagnostic-Code": "smtp; 552 5.2.2 mailbox full"},
        {"Final-Recipient": "rfc822; tom@example.com", "Action": "delayed", "Status": "4.4.1",
         "Diagnostic-Code": "smtp; 421 4.4.1 connection timed out", "Will-Retry-Until": "Fri, 4 Dec 2026 08:00:00 +0000"},
        {"Final-Recipient": "rfc822; uma@example.com", "Action": "relayed", "Status": "2.0.0"},
    ])
    human = "Delivery to some of the recipients failed; details are in the attached report.\n"
    raw = n.message("Delivery Status Notification (Failure)", n.report(human, ds, n.original("ruth@example.org")))
    result = parse_bounce(raw)
    assert result.kind == Kind.FAILURE
    got = {r.recipient: (r.status, r.reason, r.category) for r in result.recipients}
    assert got["ruth@example.org"] == ("5.1.1", "userunknown", Category.HARD)
    assert got["carla@example.org"] == ("5.2.2", "mailboxfull", Category.SOFT)
    assert got["tom@example.com"][2] == Category.DELAY
    assert got.get("uma@example.com", (None, "delivered", Category.DELIVERED))[2] == Category.DELIVERED


# ---- 6. warnings are never failures --------------------------------------------------------------

def _delay_dsn(subject: str, human: str, status: str = "4.4.1") -> bytes:
    ds = n.ds_fields([{
        "Final-Recipient": "rfc822; tom@example.com", "Action": "delayed", "Status": status,
        "Diagnostic-Code": "smtp; 451 4.4.1 no answer from host", "Will-Retry-Until": "Fri, 4 Dec 2026 08:00:00 +0000",
    }])
    return n.message(subject, n.report(human, ds, n.original("tom@example.com")))


@pytest.mark.parametrize(("subject", "human"), [
    ("Delayed Mail (still being retried)",
     "This is the mail system at host mx.example.net.\n\n####################################################"
     "#################\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
     "#####################################################################\n\n"
     "Your message could not be delivered for more than 4 hour(s).\nIt will be retried until it is 5 day(s) old.\n"),
    ("Warning: could not send message for past 4 hours",
     "    **********************************************\n    **      THIS IS A WARNING MESSAGE ONLY      **\n"
     "    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n    **********************************************\n\n"
     "The original message was received at Tue, 1 Dec 2026 04:00:00 GMT\n\n"
     "   ----- Transcript of session follows -----\n<tom@example.com>... Deferred: Connection timed out\n"
     "Warning: message still undelivered after 4 hours\nWill keep trying until message is 5 days old\n"),
    ("Delivery Status Notification (Delay)",
     "Delivery is delayed to these recipients or groups:\n\ntom@example.com\n\n"
     "This message hasn't been delivered yet. Delivery will continue to be attempted.\n"),
    ("Zustellung verzögert: December news",
     "Die Zustellung an folgende Empfänger oder Gruppen verzögert sich:\n\ntom@example.com\n\n"
     "Die Nachricht wurde noch nicht zugestellt. Es wird weiterhin versucht, sie zuzustellen.\n"),
])
def test_a_warning_only_notice_is_a_delay_never_a_failure(subject: str, human: str) -> None:
    result = parse_bounce(_delay_dsn(subject, human))
    assert result.kind == Kind.DELAY
    assert [r.recipient for r in result.recipients] == ["tom@example.com"]
    assert all(r.category == Category.DELAY for r in result.recipients)


def test_an_exim_delay_warning_without_dsn_part_is_a_delay() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on mx.example.net.\n\n"
        "The message identifier is:     1kXyZa-000Abc-7Q\nThe subject of the message is: December news\n\n"
        "The address to which the message has not yet been delivered is:\n\n  tom@example.com\n"
        "    Delay reason: SMTP error from remote mail server after RCPT TO:<tom@example.com>:\n"
        "    451 4.7.1 Greylisted, please try again later\n\n"
        "No action is required on your part. Delivery attempts will continue for\nsome time, "
        "and this warning may be repeated at intervals if the message\nremains undelivered. "
        "Eventually the mail delivery software will give up,\nand when that happens, the message will be returned to you.\n"
    )
    result = parse_bounce(n.plain("Warning: message 1kXyZa-000Abc-7Q delayed 24 hours", body,
                                  extra="X-Failed-Recipients: tom@example.com\n" if False else ""))
    assert result.kind == Kind.DELAY, result.kind
    assert all(r.category == Category.DELAY for r in result.recipients)


# ---- 7. notices in other languages --------------------------------------------------------------

# Exchange 2007+ / Exchange Online: the user section's heading, one explanation, the
# administrators' heading, "Generating server", the original headers' heading; the line
# "Remote Server returned '...'" is never translated.
_EXCHANGE = {
    "de": ("Unzustellbar:", "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:",
           "Die eingegebene E-Mail-Adresse wurde nicht gefunden.", "Diagnoseinformationen für Administratoren:",
           "Generierender Server:", "Ursprüngliche Nachrichtenheader:"),
    "fr": ("Non remis :", "La remise a échoué pour ces destinataires ou groupes :",
           "L'adresse e-mail que vous avez entrée est introuvable.",
           "Informations de diagnostic pour les administrateurs :", "Serveur de génération :",
           "En-têtes de message d'origine :"),
    "es": ("No se puede entregar:", "Error en la entrega a estos destinatarios o grupos:",
           "No se encontró la dirección de correo electrónico.", "Información de diagnóstico para administradores:",
           "Servidor de generación:", "Encabezados de mensajes originales:"),
    "it": ("Non recapitabile:", "Recapito non riuscito per i destinatari o gruppi seguenti:",
           "Impossibile trovare l'indirizzo di posta elettronica.",
           "Informazioni di diagnostica per gli amministratori:", "Server di generazione:",
           "Intestazioni originali del messaggio:"),
    "pt": ("Não é possível entregar:", "Falha na entrega para estes destinatários ou grupos:",
           "O endereço de email não foi encontrado.", "Informações de diagnóstico para administradores:",
           "Servidor de geração:", "Cabeçalhos da mensagem original:"),
    "nl": ("Onbestelbaar:", "De bezorging is mislukt voor deze ontvangers of groepen:",
           "Het e-mailadres is niet gevonden.", "Diagnostische gegevens voor beheerders:", "Genererende server:",
           "Oorspronkelijke berichtkoppen:"),
    "ru": ("Недоставляемое сообщение:", "Доставка следующим получателям или группам не выполнена:",
           "Не удалось найти адрес электронной почты.", "Диагностические сведения для администраторов:",
           "Создающий сервер:", "Исходные заголовки сообщения:"),
    "ja": ("配信不能:", "次の受信者またはグループへの配信に失敗しました:", "メール アドレスが見つかりませんでした。",
           "管理者向けの診断情報:", "生成サーバー:", "元のメッセージ ヘッダー:"),
    "zh": ("无法投递:", "传递到这些收件人或组失败:", "找不到电子邮件地址。", "管理员的诊断信息:", "生成服务器:",
           "原始邮件头:"),
    "pl": ("Niedostarczalne:", "Dostarczenie do tych adresatów lub grup nie powiodło się:",
           "Nie znaleziono adresu e-mail.", "Informacje diagnostyczne dla administratorów:", "Serwer generujący:",
           "Oryginalne nagłówki wiadomości:"),
    "cs": ("Nedoručitelné:", "Doručení následujícím příjemcům nebo skupinám se nezdařilo:",
           "E-mailová adresa nebyla nalezena.", "Diagnostické informace pro správce:", "Generující server:",
           "Původní záhlaví zprávy:"),
}


@pytest.mark.parametrize("with_dsn", [False, True])
@pytest.mark.parametrize("lang", sorted(_EXCHANGE))
def test_an_exchange_ndr_in_any_interface_language(lang: str, with_dsn: bool) -> None:
    subject, user, why, admin, gen, orig = _EXCHANGE[lang]
    human = (f"{user}\n\nruth@example.org\n{why}\n\n\n\n\n{admin}\n\n{gen} mx01.example.net\n\nruth@example.org\n"
             "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n\n")
    if with_dsn:
        ds = n.ds_fields([{"Final-Recipient": "rfc822;ruth@example.org", "Action": "failed", "Status": "5.1.1",
                           "Diagnostic-Code": "smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"}])
        raw = n.message(f"{subject} December news", n.report(human, ds, n.original("ruth@example.org")),
                        frm="postmaster@example.net")
    else:
        raw = n.plain(f"{subject} December news", human + f"{orig}\n\n" + n.original("ruth@example.org"),
                      frm="postmaster@example.net")
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


# Exchange 2000/2003 (and Outlook's own) report: intro, subject/sent lines, "cannot be
# reached" heading, then "addr on DATE" and the indented "<host #5.1.1 smtp;550 ...>".
_EXCHANGE_2003 = {
    "en": ("Your message did not reach some or all of the intended recipients.", "Subject:", "Sent:",
           "The following recipient(s) cannot be reached:", "on 12/1/2026 8:00 AM"),
    "de": ("Ihre Nachricht hat einige oder alle Empfänger nicht erreicht.", "Betreff:", "Gesendet am:",
           "Folgende(r) Empfänger konnte(n) nicht erreicht werden:", "am 01.12.2026 08:00"),
    "fr": ("Votre message n'est pas parvenu à certains ou à l'ensemble des destinataires.", "Objet :", "Envoyé :",
           "Impossible de joindre le(s) destinataire(s) suivant(s) :", "le 01/12/2026 08:00"),
    "es": ("Su mensaje no llegó a algunos o a todos los destinatarios.", "Asunto:", "Enviado:",
           "No se puede obtener acceso a los siguientes destinatarios:", "el 01/12/2026 8:00"),
    "nl": ("Uw bericht heeft sommige of alle geadresseerden niet bereikt.", "Onderwerp:", "Verzonden:",
           "De volgende geadresseerde(n) kan/kunnen niet worden bereikt:", "op 1-12-2026 8:00"),
    "it": ("Il messaggio non è stato recapitato ad alcuni o a tutti i destinatari.", "Oggetto:", "Inviato:",
           "Impossibile raggiungere i seguenti destinatari:", "il 01/12/2026 8.00"),
}


@pytest.mark.parametrize("lang", sorted(_EXCHANGE_2003))
def test_an_exchange_2003_report_in_its_languages(lang: str) -> None:
    intro, subj, sent, heading, on = _EXCHANGE_2003[lang]
    body = (f"{intro}\n\n      {subj}\tDecember news\n      {sent}\t30/11/2026 10:00\n\n{heading}\n\n"
            f"      ruth@example.org {on}\n            (...)\n"
            "            <mx01.example.net #5.1.1 smtp;550 5.1.1 User unknown>\n")
    ctype, mp = n.multipart("multipart/mixed", [n.part('text/plain; charset="utf-8"', body),
                                                n.part("message/rfc822", n.original("ruth@example.org") + "\nHello\n")])
    raw = n.message("Undeliverable: December news", (ctype, mp), frm="System Administrator <postmaster@example.net>")
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


# Postfix sites translate the introduction (bounce_template_file); the recipient lines come
# from the delivery agents and stay as they are, folded with four spaces.
_POSTFIX_INTROS = {
    "de": "Dies ist das Mailsystem auf dem Rechner mx.example.de.\n\nLeider konnte Ihre Nachricht nicht an "
          "einen oder mehrere Empfänger zugestellt werden.",
    "fr": "Ceci est le système de messagerie de l'hôte mx.example.fr.\n\nNous sommes désolés, votre message "
          "n'a pas pu être remis à un ou plusieurs destinataires.",
    "ru": "Это почтовая система на узле mx.example.ru.\n\nК сожалению, ваше сообщение не может быть "
          "доставлено одному или нескольким получателям.",
    "ja": "これは mx.example.jp のメールシステムです。\n\n申し訳ありませんが、メッセージを配信できませんでした。",
    "pl": "To jest system pocztowy na serwerze mx.example.pl.\n\nNiestety nie udało się dostarczyć wiadomości.",
}


@pytest.mark.parametrize("lang", sorted(_POSTFIX_INTROS))
def test_a_postfix_notice_with_a_translated_introduction(lang: str) -> None:
    """No status code in the reply: the wording, folded over three lines, decides."""
    body = (_POSTFIX_INTROS[lang] + "\n\n<ruth@example.org>: host mx.example.org[192.0.2.25] said: 550\n"
            "    <ruth@example.org>: Recipient address rejected: User unknown in virtual\n"
            "    mailbox table (in reply to RCPT TO command)\n")
    result = parse_bounce(n.plain("Undelivered Mail Returned to Sender", body))
    assert result.kind == Kind.FAILURE and result.mta == "postfix"
    [r] = result.recipients
    assert (r.recipient, r.reason, r.hard) == ("ruth@example.org", "userunknown", True)
    assert "mailbox table" in r.diagnostic


# Notices of unknown MTAs: an intro in the language, the address on its own line, the
# reason indented below it, then the returned copy's banner in the same language.
_PLAIN_NOTICES = {
    "it": ("Messaggio non recapitato", "Il messaggio non è stato consegnato ai seguenti destinatari:",
           "550 5.1.1 Utente sconosciuto", "--- Messaggio originale ---", "userunknown"),
    "pt": ("Mensagem não entregue", "Não foi possível entregar a mensagem aos seguintes destinatários:",
           "550 5.1.1 Usuário desconhecido", "--- Mensagem original ---", "userunknown"),
    "nl": ("Onbestelbaar bericht", "Uw bericht kon niet worden afgeleverd bij de volgende ontvangers:",
           "550 5.1.1 Onbekende gebruiker", "--- Oorspronkelijk bericht ---", "userunknown"),
    "pl": ("Wiadomość niedostarczona", "Nie udało się dostarczyć wiadomości do następujących odbiorców:",
           "550 5.1.1 Nieznany użytkownik", "--- Oryginalna wiadomość ---", "userunknown"),
    "cs": ("Nedoručitelná zpráva", "Zprávu nebylo možné doručit následujícím příjemcům:",
           "550 5.1.1 Neznámý uživatel", "--- Původní zpráva ---", "userunknown"),
    "ru": ("Сообщение не доставлено", "Ваше сообщение не было доставлено следующим получателям:",
           "550 5.1.1 Пользователь не найден", "--- Исходное сообщение ---", "userunknown"),
    "zh": ("退信通知", "您的邮件无法投递到以下收件人:", "550 5.1.1 用户不存在", "--- 原始邮件 ---", "userunknown"),
    "ja": ("配信エラー", "以下の宛先にメッセージを配信できませんでした。", "550 5.1.1 ユーザーが存在しません",
           "--- 元のメッセージ ---", "userunknown"),
    "de": ("Unzustellbar", "Ihre Nachricht konnte nicht zugestellt werden an:", "Das Postfach ist voll.",
           "--- Ursprüngliche Nachricht ---", "mailboxfull"),
    "fr": ("Message non remis", "Votre message n'a pas pu être remis au destinataire suivant :",
           "Boîte aux lettres pleine.", "--- Message d'origine ---", "mailboxfull"),
    "es": ("Mensaje no entregado", "No se ha podido entregar su mensaje al siguiente destinatario:",
           "El buzón está lleno.", "--- Mensaje original ---", "mailboxfull"),
    "sv": ("Kan inte levereras", "Meddelandet kunde inte levereras till följande mottagare:",
           "550 5.1.1 Okänd användare", "--- Original message ---", "userunknown"),
    "da": ("Kan ikke leveres", "Meddelelsen kunne ikke leveres til følgende modtager:",
           "550 5.1.1 Ukendt bruger", "--- Original message ---", "userunknown"),
    "fi": ("Toimitus epäonnistui", "Viestiä ei voitu toimittaa seuraavalle vastaanottajalle:",
           "550 5.1.1 Tuntematon käyttäjä", "--- Original message ---", "userunknown"),
    "hu": ("Nem kézbesíthető üzenet", "Az üzenetet nem sikerült kézbesíteni a következő címzettnek:",
           "550 5.1.1 Ismeretlen felhasználó", "--- Original message ---", "userunknown"),
    "tr": ("İleti teslim edilemedi", "İletiniz aşağıdaki alıcıya teslim edilemedi:",
           "550 5.1.1 Bilinmeyen kullanıcı", "--- Original message ---", "userunknown"),
}


@pytest.mark.parametrize("lang", sorted(_PLAIN_NOTICES))
def test_a_plain_notice_in_another_language(lang: str) -> None:
    subject, intro, reason_line, banner, reason = _PLAIN_NOTICES[lang]
    body = f"{intro}\n\nruth@example.org\n    {reason_line}\n\n{banner}\n" + n.original("ruth@example.org")
    _check(n.plain(subject, body), Kind.FAILURE, [("ruth@example.org", None, reason)])


# ---- 8. auto-replies and challenges in many languages: nobody bounced ---------------------------

_AUTOREPLIES = {
    "de": ("Abwesenheitsnotiz:", "Ich bin bis zum 14.12. nicht im Büro. Ihre Nachricht wird nicht weitergeleitet."),
    "fr": ("Réponse automatique :", "Je suis absent jusqu'au 14 décembre. Votre message ne sera pas transféré."),
    "es": ("Respuesta automática:", "Estoy fuera de la oficina. Su mensaje no ha sido entregado a ningún compañero."),
    "it": ("Risposta automatica:", "Sono fuori ufficio fino al 14 dicembre. Il messaggio non è stato inoltrato."),
    "pt": ("Resposta automática:", "Estou fora do escritório. Sua mensagem não foi encaminhada."),
    "nl": ("Automatisch antwoord:", "Ik ben afwezig tot 14 december. Uw bericht wordt niet doorgestuurd."),
    "ru": ("Автоматический ответ:", "Я в отпуске до 14 декабря. Ваше сообщение не будет переслано."),
    "ja": ("自動応答:", "12月14日まで不在にしております。メールは確認できません。"),
    "zh": ("自动答复:", "我将于12月14日前休假，期间无法及时回复邮件。"),
    "pl": ("Automatyczna odpowiedź:", "Jestem poza biurem do 14 grudnia. Wiadomość nie została przekazana."),
    "cs": ("Automatická odpověď:", "Jsem mimo kancelář do 14. prosince. Vaše zpráva nebude přeposlána."),
    "sv": ("Automatiskt svar:", "Jag är på semester till den 14 december."),
    "hu": ("Automatikus válasz:", "December 14-ig szabadságon vagyok."),
    "tr": ("Otomatik yanıt:", "14 Aralık'a kadar ofis dışındayım."),
}


@pytest.mark.parametrize("header", ["Auto-Submitted: auto-replied\n", ""])
@pytest.mark.parametrize("lang", sorted(_AUTOREPLIES))
def test_an_auto_reply_in_any_language_is_no_failure(lang: str, header: str) -> None:
    """With the RFC 3834 header, and without it (Outlook's prefix alone): an auto-reply that
    names its sender as working, never a bounce."""
    prefix, text = _AUTOREPLIES[lang]
    raw = n.plain(f"{prefix} December news", text, frm="Emi Tanaka <emi@example.jp>", to=n.US,
                  return_path="<emi@example.jp>", extra=header + "In-Reply-To: <n-2026-12@mail.example.com>\n")
    result = parse_bounce(raw)
    assert result.kind == Kind.AUTOREPLY
    assert [(r.recipient, r.reason) for r in result.recipients] == [("emi@example.jp", "vacation")]


_CHALLENGES = {
    "en": ("Please confirm your message", "Your message to emi@example.jp is held until you confirm that you "
           "are a person. Please click the link below. Unconfirmed messages will not be delivered."),
    "de": ("Bitte bestätigen Sie Ihre Nachricht", "Ihre Nachricht an emi@example.jp wurde zurückgehalten. Bitte "
           "bestätigen Sie, dass Sie kein Roboter sind. Ohne Bestätigung wird sie nicht zugestellt."),
    "fr": ("Confirmez votre message", "Votre message à emi@example.jp est en attente. Merci de confirmer que vous "
           "êtes une personne. Sans confirmation, le message ne sera pas remis."),
    "es": ("Verificación de remitente", "Su mensaje para emi@example.jp está retenido. Por favor confirme que es "
           "una persona. Si no confirma, el mensaje no será entregado."),
}


@pytest.mark.parametrize("lang", sorted(_CHALLENGES))
def test_a_challenge_in_any_language_is_a_challenge(lang: str) -> None:
    subject, text = _CHALLENGES[lang]
    raw = n.plain(subject, text + "\nhttps://confirm.example.jp/c/abc123\n", frm="Spam Filter <confirm@example.jp>",
                  to=n.US, return_path="<confirm@example.jp>")
    result = parse_bounce(raw)
    assert result.kind == Kind.CHALLENGE
    assert all(r.recipient != "emi@example.jp" for r in result.recipients)


# ---- 9. mailing-list VERP ------------------------------------------------------------------------

@pytest.mark.parametrize("verp", ["news-bounces+ruth.m-x=example.org@lists.example.com",
                                  "news-return-12-ruth.m-x=example.org@lists.example.com"])
def test_a_list_verp_address_names_the_member_when_the_notice_does_not(verp: str) -> None:
    """A notice sent to Mailman's "list-bounces+ruth=example.org@" or ezmlm's
    "list-return-12-ruth=example.org@" that names nobody in its text."""
    raw = n.plain("Undeliverable mail", "Your message could not be delivered.\n\nReason: 550 5.1.1 mailbox does not exist\n",
                  to=verp, extra=f"Delivered-To: {verp}\n")
    _check(raw, Kind.FAILURE, [("ruth.m-x@example.org", "5.1.1", "userunknown")])


def test_the_address_a_notice_names_wins_over_the_list_verp_address() -> None:
    body = ("This is the mail system at host mx.example.org.\n\nI'm sorry to have to inform you that your message "
            "could not\nbe delivered to one or more recipients.\n\n<ruth.new@example.org>: host mx.example.org"
            "[192.0.2.25] said: 550 5.1.1 User unknown (in reply to RCPT TO command)\n")
    raw = n.plain("Undelivered Mail Returned to Sender", body, to="news-bounces+ruth=example.org@lists.example.com")
    _check(raw, Kind.FAILURE, [("ruth.new@example.org", "5.1.1", "userunknown")])


def test_our_own_verp_token_is_read_from_the_notice() -> None:
    result = parse_bounce(_postfix_report(_DIAG_UNKNOWN, "ruth@example.org", "5.1.1"))
    assert result.token == n.TOKEN
    assert result.message_id == "<n-2026-12@mail.example.com>"


# ---- 10. charsets and folded DSN fields ---------------------------------------------------------

def test_a_folded_final_recipient_and_diagnostic_code_are_joined() -> None:
    ds = ("Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822;\n ruth@example.org\nAction: failed\n"
          "Status: 5.1.1\nDiagnostic-Code: smtp;\n 550 5.1.1 user unknown\n")
    raw = n.message("Undelivered Mail Returned to Sender",
                    n.report("Your message could not be delivered.\n", ds, n.original("ruth@example.org")))
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown")])


def test_recipient_blocks_without_blank_lines_between_them() -> None:
    ds = ("Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; ruth@example.org\nAction: failed\n"
          "Status: 5.1.1\nFinal-Recipient: rfc822; carla@example.org\nAction: failed\nStatus: 5.2.2\n"
          "Diagnostic-Code: smtp; 552 mailbox full\n")
    raw = n.message("Undelivered Mail Returned to Sender",
                    n.report("Your message could not be delivered.\n", ds, n.original("ruth@example.org")))
    _check(raw, Kind.FAILURE, [("ruth@example.org", "5.1.1", "userunknown"), ("carla@example.org", "5.2.2", "mailboxfull")])


_CHARSET_NOTICES = [
    ("iso-8859-1", "=?iso-8859-1?Q?Unzustellbar=3A_Ihre_Nachricht?=",
     "Ihre Nachricht konnte nicht zugestellt werden an:\n\nruth@example.org\n    Das Postfach ist voll. Größe überschritten.\n",
     "mailboxfull"),
    ("iso-2022-jp", "=?ISO-2022-JP?B?GyRCR1s/LiVoJWklPBsoQg==?=",
     "以下の宛先にメッセージを配信できませんでした。\n\nruth@example.org\n    550 5.1.1 ユーザーが存在しません\n", "userunknown"),
    ("shift_jis", "=?ISO-2022-JP?B?GyRCR1s/LiVoJWklPBsoQg==?=",
     "以下の宛先にメッセージを配信できませんでした。\n\nruth@example.org\n    550 5.1.1 ユーザーが存在しません\n", "userunknown"),
    ("euc-jp", "=?ISO-2022-JP?B?GyRCR1s/LiVoJWklPBsoQg==?=",
     "以下の宛先にメッセージを配信できませんでした。\n\nruth@example.org\n    550 5.1.1 ユーザーが存在しません\n", "userunknown"),
    ("koi8-r", "=?utf-8?B?0KHQvtC+0LHRidC10L3QuNC1INC90LUg0LTQvtGB0YLQsNCy0LvQtdC90L4=?=",
     "Ваше сообщение не было доставлено следующим получателям:\n\nruth@example.org\n    Ящик переполнен\n",
     "mailboxfull"),
    ("windows-1251", "=?utf-8?B?0KHQvtC+0LHRidC10L3QuNC1INC90LUg0LTQvtGB0YLQsNCy0LvQtdC90L4=?=",
     "Ваше сообщение не было доставлено следующим получателям:\n\nruth@example.org\n    Ящик переполнен\n",
     "mailboxfull"),
    ("iso-8859-2", "Wiadomość niedostarczona",
     "Nie udało się dostarczyć wiadomości do następujących odbiorców:\n\nruth@example.org\n    Skrzynka jest pełna\n",
     "mailboxfull"),
]


@pytest.mark.parametrize(("charset", "subject", "text", "reason"), _CHARSET_NOTICES)
def test_a_notice_in_a_legacy_charset_is_decoded(charset: str, subject: str, text: str, reason: str) -> None:
    """No status code in most of them: the failure sentence and the reason words in the
    language decide, after the declared charset is decoded."""
    body = text + "\n--- Original message ---\n" + n.original("ruth@example.org")
    head = n.headers(subject, ctype=f'text/plain; charset="{charset}"', extra="Content-Transfer-Encoding: 8bit\n")
    raw = head.encode() + b"\n" + body.encode(charset)
    _check(raw, Kind.FAILURE, [("ruth@example.org", None, reason)])


# ---- 11. findings of the phrase audit -----------------------------------------------------------

@pytest.mark.parametrize(("diagnostic", "reason"), [
    # "250-STARTTLS" is a capability an EHLO reply lists, not the command that failed
    ("Sent: EHLO mx.example.net Received: 250-mx.example.org 250-STARTTLS 250 8BITMIME "
     "Sent: RCPT TO:<ruth@example.org> Received: 550 Requested action not taken: mailbox unavailable", "userunknown"),
    ("550 Requested action not taken: mailbox unavailable 250-STARTTLS", "filtered"),
    ("454 4.7.0 TLS not available due to local problem (in reply to STARTTLS command)", "failedstarttls"),
    ("530 5.7.0 Must issue a STARTTLS command first", "failedstarttls"),
    # a gateway's host name is no blocklist listing
    ("host mx1.barracuda.example.com said: 550 No such user here (in reply to RCPT TO command)", "userunknown"),
    ("550 5.7.1 Service unavailable; client [192.0.2.1] blocked using b.barracudacentral.org", "blocked"),
    ("550 message rejected: high probability of spam", "spamdetected"),
])
def test_phrases_tightened_by_the_audit(diagnostic: str, reason: str) -> None:
    from bounces.parsing.classify import classify

    verdict = classify(status=None, replycode=diagnostic[:3] if diagnostic[:1].isdigit() else "550",
                       diagnostic=diagnostic, action="failed")
    assert verdict.reason == reason


def test_a_success_reply_before_the_refusal_does_not_make_the_notice_delivered() -> None:
    from bounces.parsing.common import find_replycode, find_status

    text = "MAIL From:<a@b> 250 2.1.0 Ok RCPT To:<c@d> 550 5.1.1 no such user"
    assert (find_status(text), find_replycode(text)) == ("5.1.1", "550")
    assert (find_status("250 2.0.0 Ok: queued"), find_replycode("250 2.0.0 Ok: queued")) == ("2.0.0", "250")


# ---- 12. warnings without a delivery-status part -------------------------------------------------

_WARNINGS = {
    "postfix": ("Delayed Mail (still being retried)",
                "This is the mail system at host mx.example.net.\n\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO "
                "RESEND YOUR MESSAGE. #\n\nYour message could not be delivered for more than 4 hour(s).\nIt will be "
                "retried until it is 5 day(s) old.\n\n                   The mail system\n\n<tom@example.com>: connect "
                "to mx.example.com[192.0.2.30]:25: Connection timed out\n"),
    "sendmail": ("Warning: could not send message for past 4 hours",
                 "    **      THIS IS A WARNING MESSAGE ONLY      **\n\nThe original message was received at Tue, 1 Dec "
                 "2026 04:00:00 GMT\n\n   ----- Transcript of session follows -----\n<tom@example.com>... Deferred: "
                 "Connection timed out with mx.example.com.\nWarning: message still undelivered after 4 hours\n"
                 "Will keep trying until message is 5 days old\n"),
    "exchange": ("Delivery Status Notification (Delay)",
                 "This is an automatically generated Delivery Status Notification.\n\nTHIS IS A WARNING MESSAGE ONLY."
                 "\n\nDelivery to the following recipients has been delayed.\n\n       tom@example.com\n"),
    "gmail": ("Delivery Status Notification (Delay)",
              "** Delivery incomplete **\n\nThere was a temporary problem delivering your message to tom@example.com. "
              "Gmail will retry for 46 more hours.\n\nThe response was:\n\n451 4.3.0 Mail server temporarily rejected "
              "message.\n"),
    "office365": ("Delivery delayed: December news",
                  "Delivery is delayed to these recipients or groups:\n\ntom@example.com (tom@example.com)\n\nThis "
                  "message hasn't been delivered yet. Delivery will continue to be attempted.\n"),
    "courier": ("WARNING: delayed mail",
                "This is a delivery status notification from mx.example.net, running the Courier mail server.\n\n"
                "This is only a warning message. Your message has not yet been delivered to the following "
                "recipients. Delivery attempts will continue.\n\n<tom@example.com>: 451 4.4.1 mx.example.com: "
                "connection refused\n"),
}


@pytest.mark.parametrize("mta", sorted(_WARNINGS))
def test_a_text_only_warning_is_a_delay_and_never_counts(mta: str) -> None:
    subject, text = _WARNINGS[mta]
    raw = n.plain(subject, text + "\n--- Original message ---\n" + n.original("tom@example.com"))
    result = parse_bounce(raw)
    assert result.kind == Kind.DELAY
    assert [(r.recipient, r.category) for r in result.recipients] == [("tom@example.com", Category.DELAY)]


# ---- 13. other gateways' plain layouts -----------------------------------------------------------

_GATEWAYS = {
    # Exchange 2007's remote form: "<host> #550 5.1.1 text ##" under a heading without "for administrators"
    "exchange2007": ("Undeliverable: December news", "postmaster@pps.example.org",
                     "Delivery has failed to these recipients or distribution lists:\n\nruth@example.org\nThe "
                     "recipient's e-mail address was not found in the recipient's e-mail system.\n\n"
                     "Diagnostic information:\nruth@example.org\nmx.example.org #550 5.1.1 No such user ##\n",
                     "5.1.1", "userunknown"),
    "mimecast": ("Mimecast Undeliverable Message", "Postmaster <postmaster@mimecast.example.net>",
                 "Your message couldn't be delivered to the recipients shown below:\n\nRecipient: ruth@example.org\n"
                 "Reason: 550 Invalid Recipient - https://community.mimecast.example/docs/DOC-1369#550\n",
                 None, "userunknown"),
    "barracuda": ("Message delivery failure", "Barracuda Email Security <barracuda@bes.example.org>",
                  "Your message could not be delivered to the following recipients:\n\n  ruth@example.org\n"
                  "  Reason: 552 5.2.2 Mailbox full\n", "5.2.2", "mailboxfull"),
    "haraka": ("Mail delivery failed: returning message to sender", "MAILER-DAEMON@haraka.example.net",
               "This message could not be delivered to one or more recipients.\n\nruth@example.org: 550 5.1.1 "
               "no such user\n", "5.1.1", "userunknown"),
    "opensmtpd": ("Delivery status notification: error", "Mailer Daemon <MAILER-DAEMON@smtpd.example.net>",
                  "Hi!\n\nThis is the MAILER-DAEMON, please DO NOT REPLY to this email.\n\n   An error has occurred "
                  "while attempting to deliver a message for\n   the following list of recipients:\n\nruth@example.org: "
                  "550 5.1.1 <ruth@example.org>: Recipient address rejected: User unknown\n", "5.1.1", "userunknown"),
}


@pytest.mark.parametrize("name", sorted(_GATEWAYS))
def test_a_gateways_plain_layout(name: str) -> None:
    subject, frm, text, status, reason = _GATEWAYS[name]
    raw = n.plain(subject, text + "\n------ This is a copy of the message, including all the headers. ------\n"
                  + n.original("ruth@example.org"), frm=frm)
    _check(raw, Kind.FAILURE, [("ruth@example.org", status, reason)])
