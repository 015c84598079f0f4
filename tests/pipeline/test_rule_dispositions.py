"""Issue 11: a rule says what happens to the message in the mailbox (the mailbox's setting,
delete, move, mark read, leave), carried out by a real run against the test Dovecot."""

from __future__ import annotations

import pytest

from bounces.intake.mailbox import process_mailbox
from bounces.models import RawMessage
from bounces.pipeline.decisions import describe_rule
from bounces.pipeline.dispositions import strongest
from bounces.pipeline.policies import global_policy
from bounces.rules.models import BounceRule

from .conftest import dsn, send

pytestmark = pytest.mark.django_db


def _seen(path) -> bool:
    return ":2," in path.name and "S" in path.name.rsplit(":2,", 1)[1]


def test_each_rules_message_action_is_carried_out_on_the_server(pipeline_dovecot, mail_user, mailbox, campaign):
    pipeline_dovecot.make_folder(mail_user, "Traps")
    assert mailbox.processed_action == "delete" and mailbox.unmatched_action == "mark_read"
    BounceRule.objects.create(name="keep", pattern="keepme", section="whole", message_action="leave")
    BounceRule.objects.create(name="read", pattern="markme", section="whole", message_action="mark_read")
    trap = BounceRule.objects.create(name="trap", pattern="spamtrap", section="whole", message_action="move",
                                     message_folder="Traps")
    BounceRule.objects.create(name="old export", pattern="oldrule", section="whole", delete_message=True)
    for address in ("keepme@example.net", "markme@example.net", "plain@example.net"):
        sent = send(campaign, address)
        pipeline_dovecot.inject(mail_user, dsn(address, token=sent.token))
    pipeline_dovecot.inject(mail_user, dsn("spamtrap@example.net"))  # unmatched: the mailbox would mark it read
    pipeline_dovecot.inject(mail_user, dsn("oldrule@example.net"))  # unmatched, the rule deletes it

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert (run.fetched, run.errors) == (5, 0), run.error_log
    inbox = pipeline_dovecot.message_files(mail_user)
    texts = {p: p.read_bytes() for p in inbox}
    assert len(inbox) == 2  # plain: deleted (mailbox setting); oldrule: deleted (rule)
    kept = next(p for p, t in texts.items() if b"keepme@example.net" in t)
    read = next(p for p, t in texts.items() if b"markme@example.net" in t)
    assert not _seen(kept) and _seen(read)
    moved = pipeline_dovecot.message_files(mail_user, "Traps")
    assert len(moved) == 1 and b"spamtrap@example.net" in moved[0].read_bytes()
    assert RawMessage.objects.filter(disposed=True).count() == 5
    assert set(RawMessage.objects.values_list("requested_disposition", flat=True)) == {
        "", "leave", "mark_read", "move:Traps"}

    again = process_mailbox(mailbox_id=mailbox.pk)  # what was left is not counted again
    assert (again.fetched, again.hard) == (0, 0)
    assert "moved to the folder 'Traps'" in describe_rule(trap, global_policy())


def test_the_rule_says_what_happens_to_the_message_in_words_and_a_move_needs_a_folder():
    rule = BounceRule(name="r", pattern="x", bounce_type="hard")
    assert "the mailbox's setting decides" in describe_rule(rule, _policy())
    rule.message_action = "leave"
    assert "left untouched (unread)" in describe_rule(rule, _policy())
    rule.message_action = "move"
    with pytest.raises(Exception, match="Name the folder"):
        rule.clean()
    assert strongest(["", "leave", "move:A", "mark_read"]) == "move:A"
    assert strongest(["leave", "delete"]) == "delete" and strongest(["", ""]) == ""


def _policy():
    from bounces.pipeline.policies import Policy

    return Policy()


def test_saving_keeps_delete_message_in_step(db):
    rule = BounceRule.objects.create(name="d", pattern="x", delete_message=True)
    assert rule.message_action == "delete" and rule.message_request == "delete"
    rule.message_action = "mark_read"
    rule.save()
    assert not BounceRule.objects.get(pk=rule.pk).delete_message
    rule.delete_message = True  # as the API or an older export sets it
    rule.save()
    assert BounceRule.objects.get(pk=rule.pk).message_action == "delete"
    rule = BounceRule.objects.get(pk=rule.pk)
    rule.delete_message = False
    rule.save()
    assert BounceRule.objects.get(pk=rule.pk).message_action == ""


def test_after_a_folder_reset_a_known_message_gets_its_rules_disposition_again(pipeline_dovecot, mail_user, mailbox,
                                                                             campaign):
    """UIDVALIDITY changes (a restored or recreated folder): the messages come back under new
    keys and are recognised by their bytes; each gets what its rule asked the first time, not
    the mailbox's setting (here: delete)."""
    pipeline_dovecot.make_folder(mail_user, "Traps")
    BounceRule.objects.create(name="keep", pattern="keepme", section="whole", message_action="leave")
    BounceRule.objects.create(name="trap", pattern="spamtrap", section="whole", message_action="move",
                              message_folder="Traps")
    for address in ("keepme@example.net", "spamtrap@example.net"):
        sent = send(campaign, address)
        pipeline_dovecot.inject(mail_user, dsn(address, token=sent.token))
    first = process_mailbox(mailbox_id=mailbox.pk)
    assert (first.fetched, first.errors) == (2, 0), first.error_log
    # The operator moves the trap copy back to the inbox, then the folder is restored.
    moved = pipeline_dovecot.message_files(mail_user, "Traps")
    assert len(moved) == 1
    pipeline_dovecot.inject(mail_user, moved[0].read_bytes())
    moved[0].unlink()
    pipeline_dovecot.reset_uidvalidity(mail_user)

    again = process_mailbox(mailbox_id=mailbox.pk)

    assert "UIDVALIDITY changed" in again.error_log
    assert (again.hard, again.soft, again.errors) == (0, 0, 0)
    inbox = pipeline_dovecot.message_files(mail_user)
    assert len(inbox) == 1 and b"keepme@example.net" in inbox[0].read_bytes()  # left, not deleted
    assert not _seen(inbox[0])
    moved = pipeline_dovecot.message_files(mail_user, "Traps")
    assert len(moved) == 1 and b"spamtrap@example.net" in moved[0].read_bytes()  # moved again, not deleted
    assert RawMessage.objects.count() == 2  # recognised, not stored again
