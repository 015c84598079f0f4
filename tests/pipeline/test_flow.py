"""End to end through a real Dovecot: fetch, store, classify, match, act, dispose."""

from __future__ import annotations

import pytest

from bounces.intake.mailbox import process_mailbox
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from contacts.models import Contact, ContactEvent, Subscription, Suppression

from .conftest import arf, dsn, send, vacation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]


def test_a_hard_bounce_is_matched_by_token_recorded_acted_on_and_deleted(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    sent = send(campaign, "gone@example.net")
    pipeline_dovecot.inject(mail_user, dsn("gone@example.net", token=sent.token))

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert (run.fetched, run.hard, run.unmatched) == (1, 1, 0)
    bounce = Bounce.objects.get()
    assert bounce.kind == Bounce.Kind.HARD
    assert bounce.match_method == Bounce.MatchMethod.TOKEN
    assert bounce.contact_id == sent.contact_id and bounce.campaign_id == campaign.pk
    assert bounce.actions_taken == ["mark_hard", "suppress", "unsubscribe_all"]
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.has_bounced and contact.hard_bounce_count == 1
    assert Suppression.objects.filter(value="gone@example.net").exists()
    assert Subscription.objects.get(contact=contact).status == Subscription.Status.UNSUBSCRIBED
    sent.refresh_from_db()
    assert sent.status == "bounced"
    assert ContactEvent.objects.filter(contact=contact, kind="hard_bounce").count() == 1
    assert pipeline_dovecot.message_files(mail_user) == []  # deleted on the server
    assert RawMessage.objects.get().disposed


def test_matching_falls_back_to_message_id_then_address(pipeline_dovecot, mail_user, mailbox, campaign):
    by_id = send(campaign, "a@example.net")
    by_address = send(campaign, "b@example.net")
    pipeline_dovecot.inject(mail_user, dsn("a@example.net", message_id=by_id.message_id))
    pipeline_dovecot.inject(mail_user, dsn("b@example.net"))

    process_mailbox(mailbox_id=mailbox.pk)

    methods = dict(Bounce.objects.values_list("recipient", "match_method"))
    assert methods == {"a@example.net": "message_id", "b@example.net": "address"}
    assert Bounce.objects.get(recipient="b@example.net").contact_id == by_address.contact_id


def test_unmatched_messages_are_marked_read_and_left_on_the_server(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    pipeline_dovecot.inject(mail_user, dsn("stranger@example.net"))

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.unmatched == 1
    assert Bounce.objects.get().state == Bounce.State.UNMATCHED
    files = pipeline_dovecot.message_files(mail_user)
    assert len(files) == 1 and files[0].name.endswith("S")  # \Seen, still there
    again = process_mailbox(mailbox_id=mailbox.pk)
    assert (again.fetched, again.duplicates) == (0, 0)


def test_complaints_auto_replies_and_ordinary_mail(pipeline_dovecot, mail_user, mailbox, campaign):
    complained = send(campaign, "angry@example.net")
    away = send(campaign, "away@example.net")
    pipeline_dovecot.inject(mail_user, arf("angry@example.net", token=complained.token))
    pipeline_dovecot.inject(mail_user, vacation("away@example.net", token=away.token))
    pipeline_dovecot.inject(mail_user, b"From: someone@example.net\r\nSubject: hello\r\n\r\nHi there\r\n")

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert (run.complaint, run.autoreply, run.unknown) == (1, 1, 1), run.summary()
    angry = Contact.objects.get(email="angry@example.net")
    assert Suppression.objects.get(value="angry@example.net").reason == "complaint"
    assert Subscription.objects.get(contact=angry).status == "unsubscribed"
    event = ContactEvent.objects.get(contact=angry)
    assert (event.kind, event.detail["actions"]) == ("complaint", ["suppress", "unsubscribe_all"])
    away_contact = Contact.objects.get(email="away@example.net")
    assert (away_contact.hard_bounce_count, away_contact.soft_bounce_count) == (0, 0)
    assert Bounce.objects.get(kind="autoreply").state == Bounce.State.RECORDED


@pytest.mark.parametrize("feedback_type", ["auth-failure", "not-spam"])
def test_a_dmarc_failure_report_or_not_spam_report_punishes_no_one(
    pipeline_dovecot, mail_user, mailbox, campaign, feedback_type
):
    """A DMARC failure report (RFC 6591, ARF auth-failure) says our authentication failed, and a
    not-spam report says the recipient wants the mail: neither is a complaint. The contact stays
    subscribed and unsuppressed, and the next campaign mails it."""
    sent = send(campaign, "reader@example.net")
    pipeline_dovecot.inject(mail_user, arf("reader@example.net", token=sent.token, feedback_type=feedback_type))

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert run.complaint == 0 and run.hard == 0, run.summary()
    reader = Contact.objects.get(email="reader@example.net")
    assert not Suppression.objects.exists()
    assert Subscription.objects.get(contact=reader).status == Subscription.Status.SUBSCRIBED
    assert not reader.has_bounced and reader.status == Contact.Status.ACTIVE
    assert not Bounce.objects.filter(kind__in=["complaint", "hard", "soft", "blocked"]).exists()
    from api.selectors import check_address  # the campaign sender's rules, as the API answers them

    check = check_address(email="reader@example.net", list_id=campaign.mailing_list_id)
    assert check.allowed, check


def test_a_malformed_message_is_stored_as_unknown_and_the_batch_continues(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    sent = send(campaign, "x@example.net")
    pipeline_dovecot.inject(mail_user, b"\xff\xfe\x00garbage\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n")
    pipeline_dovecot.inject(mail_user, dsn("x@example.net", token=sent.token))

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED
    assert run.hard == 1 and run.unknown == 1
    assert RawMessage.objects.filter(state="processed").count() == 2
    assert Bounce.objects.filter(kind="unknown", state="unmatched").count() == 1


def test_dry_run_changes_nothing(pipeline_dovecot, mail_user, mailbox, campaign):
    sent = send(campaign, "dry@example.net")
    pipeline_dovecot.inject(mail_user, dsn("dry@example.net", token=sent.token))

    run = process_mailbox(mailbox_id=mailbox.pk, dry_run=True)

    assert run.hard == 1 and run.fetched == 1
    assert not RawMessage.objects.exists() and not Bounce.objects.exists()
    assert not Contact.objects.get(email="dry@example.net").has_bounced
    assert len(pipeline_dovecot.message_files(mail_user)) == 1
    assert Mailbox.objects.get(pk=mailbox.pk).locked_until is None


def test_a_dry_run_leaves_messages_stored_by_a_crashed_run_untouched(
    pipeline_dovecot, mail_user, mailbox, campaign, monkeypatch
):
    from bounces.pipeline.processing import Processor

    sent = send(campaign, "stored@example.net")
    pipeline_dovecot.inject(mail_user, dsn("stored@example.net", token=sent.token))

    class Killed(BaseException):
        pass

    def boom(self, items):
        raise Killed

    with monkeypatch.context() as patch:  # a run that dies after storing, before processing
        patch.setattr(Processor, "process", boom)
        with pytest.raises(Killed):
            process_mailbox(mailbox_id=mailbox.pk)
    assert RawMessage.objects.get().state == RawMessage.State.NEW

    run = process_mailbox(mailbox_id=mailbox.pk, dry_run=True)

    assert run.hard == 1  # counted as the real run would
    raw = RawMessage.objects.get()
    assert (raw.state, raw.disposed) == (RawMessage.State.NEW, False)
    assert not Bounce.objects.exists()
    assert not Contact.objects.get(email="stored@example.net").has_bounced
    assert len(pipeline_dovecot.message_files(mail_user)) == 1  # still on the server


def test_large_runs_parse_in_a_helper_process_with_the_same_results(
    pipeline_dovecot, mail_user, mailbox, campaign, monkeypatch
):
    from bounces.intake import mailbox as intake_mailbox
    from bounces.pipeline import background
    from bounces.pipeline.background import BackgroundParser

    monkeypatch.setattr(intake_mailbox, "PARALLEL_PARSE_MIN", 1)
    monkeypatch.setattr(background, "FORK_WITH_THREADS", True)  # earlier tests leave threads
    started = []
    real_start = BackgroundParser.start.__func__

    def start(cls, options):
        parser = real_start(cls, options)
        started.append(parser.executor is not None)
        return parser

    monkeypatch.setattr(BackgroundParser, "start", classmethod(start))
    sent = [send(campaign, f"p{i}@example.net") for i in range(7)]
    pipeline_dovecot.inject_many(mail_user, [dsn(s.email, token=s.token) for s in sent])
    pipeline_dovecot.inject(mail_user, dsn("nobody@example.net"))

    run = process_mailbox(mailbox_id=mailbox.pk, batch_size=3)

    assert (run.fetched, run.hard, run.unmatched, run.processed) == (8, 8, 1, 8), run.summary()
    assert Bounce.objects.filter(match_method="token").count() == 7
    assert len(pipeline_dovecot.message_files(mail_user)) == 1  # the unmatched one, marked read
    assert RawMessage.objects.filter(disposed=True, state="processed").count() == 8
    assert started == [True]  # the helper process really parsed


def test_processed_messages_can_be_moved_and_a_rule_can_ask_for_deletion(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    from bounces.rules.models import BounceRule

    pipeline_dovecot.make_folder(mail_user, "Processed")
    Mailbox.objects.filter(pk=mailbox.pk).update(processed_action="move", processed_folder="Processed")
    BounceRule.objects.create(name="spam trap", pattern="spamtrap", section="whole", delete_message=True)
    sent = send(campaign, "mv@example.net")
    pipeline_dovecot.inject(mail_user, dsn("mv@example.net", token=sent.token))
    pipeline_dovecot.inject(mail_user, dsn("spamtrap@example.net"))  # unmatched, but the rule deletes it

    process_mailbox(mailbox_id=mailbox.pk)

    assert pipeline_dovecot.message_files(mail_user) == []
    assert len(pipeline_dovecot.message_files(mail_user, "Processed")) == 1
    assert RawMessage.objects.filter(delete_requested=True).count() == 1


def test_pop3_mailboxes_dedupe_by_uidl_and_delete_what_was_processed(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    Mailbox.objects.filter(pk=mailbox.pk).update(protocol="pop3", port=pipeline_dovecot.pop3_port, batch_size=2)
    row = Mailbox.objects.get(pk=mailbox.pk)
    row.enter_secrets(password=row.password)  # a new endpoint: the password is entered again
    row.save()
    sent = [send(campaign, f"pop{i}@example.net") for i in range(3)]
    pipeline_dovecot.inject_many(mail_user, [dsn(s.email, token=s.token) for s in sent])
    pipeline_dovecot.inject(mail_user, dsn("stranger@example.net"))

    run = process_mailbox(mailbox_id=mailbox.pk)
    again = process_mailbox(mailbox_id=mailbox.pk)

    assert (run.fetched, run.hard, run.unmatched) == (4, 4, 1), run.error_log
    assert (again.fetched, again.duplicates, again.hard) == (0, 0, 0)
    assert len(pipeline_dovecot.message_files(mail_user)) == 1  # the unmatched one stays


def test_deleting_mailboxes_keeps_their_stored_messages(pipeline_dovecot, mail_user, mailbox, campaign):
    other = Mailbox.objects.create(name="other", host="127.0.0.1")
    for box in (mailbox, other):
        RawMessage.objects.create(mailbox=box, dedupe_key="1:1", sha256="0" * 64, raw=b"x", size=1)

    Mailbox.objects.filter(pk__in=[mailbox.pk, other.pk]).delete()

    assert RawMessage.objects.filter(mailbox__isnull=True, dedupe_key="1:1").count() == 2
