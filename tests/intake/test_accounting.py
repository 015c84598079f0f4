"""MTA accounting as the operator runs it: PowerMTA CSV through `import_accounting` and
through the authenticated HTTP endpoint; Postfix / Exim logs; every record counted once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from bounces.models import AccountingFile, Bounce, Integration, RawMessage
from contacts.models import Contact, Suppression

from .conftest import send

pytestmark = pytest.mark.postgres  # runs on SQLite and again on PostgreSQL

SAMPLES = Path(__file__).parent / "samples"
URL = "/intake/accounting/"


@pytest.fixture
def sent(campaign):
    """What the sample's records refer to: tokens in the tracking header, one Message-ID."""
    rows = {}
    for email, token in [("bob@example.org", "aaaaaaaaaaaaaaa2"), ("carol@example.net", "aaaaaaaaaaaaaaa3"),
                         ("dave@example.com", None), ("erin@example.com", "aaaaaaaaaaaaaaa5"),
                         ("grace@example.com", "aaaaaaaaaaaaaaa7"), ("alice@example.org", "aaaaaaaaaaaaaaa1")]:
        s = send(campaign, email)
        if token:
            s.token = token
            s.save(update_fields=["token"])
        rows[email] = s
    rows["dave@example.com"].message_id = "m4@news.example.com"
    rows["dave@example.com"].save(update_fields=["message_id"])
    return rows


def _outcome() -> dict[str, tuple[str, str, int | None]]:
    return {b.recipient: (b.kind, b.match_method, b.sent_message_id) for b in Bounce.objects.all()}


def _expect(sent) -> dict:
    return {
        "bob@example.org": ("hard", "token", sent["bob@example.org"].pk),
        "carol@example.net": ("soft", "token", sent["carol@example.net"].pk),
        "dave@example.com": ("hard", "message_id", sent["dave@example.com"].pk),
        "erin@example.com": ("blocked", "token", sent["erin@example.com"].pk),
        "grace@example.com": ("complaint", "token", sent["grace@example.com"].pk),
    }


def test_import_accounting_records_bounces_and_a_second_import_counts_nothing(sent, tmp_path, capsys):
    path = tmp_path / "acct.csv"
    shutil.copy(SAMPLES / "pmta-acct.csv", path)

    call_command("import_accounting", str(path))

    assert _outcome() == _expect(sent)
    out = capsys.readouterr().out
    assert "7 records read, 5 bounce records, 5 new" in out
    bob = Contact.objects.get(email="bob@example.org")
    assert bob.has_bounced and bob.hard_bounce_count == 1
    # the complaint (an `f` record) suppresses
    assert Suppression.objects.filter(value="grace@example.com", reason="complaint").exists()
    assert not Contact.objects.get(email="alice@example.org").has_bounced  # a `d` record is no bounce

    call_command("import_accounting", str(path))  # nothing new in the file
    AccountingFile.objects.update(offset=0)  # even reading it all again ...
    call_command("import_accounting", str(path))

    assert Bounce.objects.count() == 5 and RawMessage.objects.count() == 5  # ... counts each record once
    assert Contact.objects.get(email="bob@example.org").hard_bounce_count == 1


def test_import_resumes_where_it_stopped_and_a_rotated_file_starts_over(sent, tmp_path):
    path = tmp_path / "acct.csv"
    lines = (SAMPLES / "pmta-acct.csv").read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))  # header, d, b(bob)
    call_command("import_accounting", str(path))
    assert set(_outcome()) == {"bob@example.org"}
    state = AccountingFile.objects.get()
    assert state.offset == path.stat().st_size

    with path.open("ab") as fh:  # PowerMTA appends
        fh.write(b"".join(lines[3:5]) + b"b,2026-12-06 10:09:00+0000,,x@y,half-written")
    call_command("import_accounting", str(path))
    assert set(_outcome()) == {"bob@example.org", "carol@example.net", "dave@example.com"}

    rotated = tmp_path / "acct.csv.1"
    path.rename(rotated)
    path.write_bytes(lines[0] + lines[5])  # a new file at the same path: erin's record
    call_command("import_accounting", str(path))
    assert "erin@example.com" in _outcome() and AccountingFile.objects.count() == 2


def test_postfix_and_exim_logs_are_read_as_send_time_bounces(campaign, tmp_path):
    henry = send(campaign, "henry@example.org")
    henry.message_id = "m8@news.example.com"
    henry.save(update_fields=["message_id"])
    judy = send(campaign, "judy@example.net")
    judy.message_id = "m9@news.example.com"
    judy.save(update_fields=["message_id"])

    call_command("import_accounting", str(SAMPLES / "postfix.log"), str(SAMPLES / "exim.log"))

    assert _outcome() == {"henry@example.org": ("hard", "message_id", henry.pk),
                          "judy@example.net": ("hard", "message_id", judy.pk)}


@pytest.fixture
def integration(db):
    item = Integration(name="pmta1")
    token = item.set_new_token()
    item.save()
    return item, token


def _push(client, token: str, body: bytes | str, content_type: str = "text/csv"):
    return client.post(URL, data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_endpoint_takes_csv_as_logstash_sends_it_and_a_second_delivery_counts_once(
        client, integration, sent, eager, django_capture_on_commit_callbacks):
    _, token = integration
    lines = (SAMPLES / "pmta-acct.csv").read_text().splitlines()
    with django_capture_on_commit_callbacks(execute=True):
        # Logstash posts one line per request: the header line first, then each record
        for line in lines:
            assert _push(client, token, line).status_code == 200

    assert _outcome() == _expect(sent)

    with django_capture_on_commit_callbacks(execute=True):
        again = _push(client, token, "\n".join(lines))  # the whole file, again
    assert again.json() == {"records": 7, "notices": 5, "stored": 0, "duplicates": 5, "skipped": 2}
    assert Bounce.objects.count() == 5
    assert Integration.objects.get().records_received == 14


def test_a_record_imported_from_the_file_and_pushed_as_json_is_one_notice(
        client, integration, sent, eager, django_capture_on_commit_callbacks):
    from bounces.intake.mta_logs import parse_accounting_csv

    call_command("import_accounting", str(SAMPLES / "pmta-acct.csv"))
    _, token = integration
    # Logstash's csv filter + json_lines: its own fields ride along
    records = [{**r, "@timestamp": "2026-12-06T10:00:00Z", "host": {"name": "pmta1"}, "message": "..."}
               for r in parse_accounting_csv((SAMPLES / "pmta-acct.csv").read_text())]
    body = "\n".join(json.dumps(r) for r in records)
    with django_capture_on_commit_callbacks(execute=True):
        response = _push(client, token, body, "application/x-ndjson")

    assert response.json()["duplicates"] == 5 and response.json()["stored"] == 0
    assert Bounce.objects.count() == 5


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic dXNlcjpwYXNz"])
def test_the_endpoint_refuses_requests_without_a_valid_token(client, integration, auth):
    kw = {"HTTP_AUTHORIZATION": auth} if auth else {}
    response = client.post(URL, data="type,rcpt\nb,x@y\n", content_type="text/csv", **kw)
    assert response.status_code == 401
    assert not RawMessage.objects.exists()


def test_a_disabled_integration_is_refused_and_bad_bodies_get_400_or_413(client, integration, settings):
    item, token = integration
    assert _push(client, token, "b,no header yet").status_code == 400
    assert _push(client, token, "[1, 2]", "application/json").status_code == 400
    settings.BOUNCE_INTAKE_MAX_BODY = 100
    assert _push(client, token, "x" * 200).status_code == 413
    Integration.objects.filter(pk=item.pk).update(enabled=False)
    assert _push(client, token, "type,rcpt\n").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code in (401, 405)
