"""The admin's Integration page: the operator creates an integration and copies the
PowerMTA directives and the Logstash pipeline, filled in with this installation's URL and
token; view-only staff never see the token."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User

from bounces.models import Integration


def test_the_operator_creates_an_integration_and_copies_a_working_configuration(admin_client, settings):
    settings.BOUNCE_INTAKE_PUBLIC_URL = "https://bounces.example.org"
    response = admin_client.post("/admin/bounces/integration/add/", {"name": "pmta-1", "kind": "powermta",
                                                                     "enabled": "on"})
    assert response.status_code == 302
    item = Integration.objects.get()
    page = admin_client.get(f"/admin/bounces/integration/{item.pk}/change/").content.decode()

    assert "&lt;acct-file /var/log/pmta/bouncemgr-acct.csv&gt;" in page
    assert "records b, rb, f" in page and "header_X-Bouncemgr-Token" in page
    assert 'url =&gt; &quot;https://bounces.example.org/intake/accounting/&quot;' in page
    assert f"Bearer {item.token}" in page

    # the configuration's token and URL path work
    response = admin_client.post("/intake/accounting/", data="type,rcpt\n", content_type="text/csv",
                                 HTTP_AUTHORIZATION=f"Bearer {item.token}")
    assert response.status_code == 200


def test_view_only_staff_see_the_configuration_without_the_token(client, db):
    item = Integration(name="pmta-2")
    token = item.set_new_token()
    item.save()
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_integration"))
    client.force_login(viewer)
    page = client.get(f"/admin/bounces/integration/{item.pk}/change/").content.decode()
    assert "acct-file" in page and token not in page


def test_compose_runs_the_bounce_receiver_on_port_25_after_migrations():
    from tests.test_deployment import load_compose

    service = load_compose()["services"]["bounce-smtpd"]
    assert service["command"][:3] == ["python", "manage.py", "run_bounce_smtpd"]
    assert "25:2525" in service["ports"] and "healthcheck" in service
    assert service["environment"]["DATABASE_URL"].startswith("postgres://")
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
