"""Issue 12 in a real browser: the Content-Security-Policy breaks no page (the run page's
live progress included), two-factor login as staff do it, and the login lockout."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import PASSWORD, login

pytestmark = pytest.mark.django_db(transaction=True)


def csp_violations(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_staff_pages_run_their_scripts_under_the_content_security_policy(page, make_user, shot):
    from bounces.models import ProcessingRun
    from campaigns.models import Campaign

    violations = csp_violations(page)
    make_user("operator", superuser=True)
    campaign = Campaign.objects.create(name="November", subject="News", from_email="news@example.com")
    run = ProcessingRun.objects.create(status=ProcessingRun.Status.RUNNING, total=10, fetched=2)

    login(page, "operator", next_url="/admin/")
    for url in ("/admin/", reverse("campaigns:results", args=[campaign.pk]),
                reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
                reverse("bounces:rule_coverage")):
        response = page.goto(url)
        assert response.status == 200, url
        policy = response.headers["content-security-policy"]
        # the directives come in any order: read script-src itself
        directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
        assert "'self'" in directives["script-src"] and "'unsafe-inline'" not in directives["script-src"]

    # The run page polls its status with static/bouncemgr/pages.js (no inline script).
    page.goto(reverse("bounces:pipeline_run", args=[run.pk]))
    ProcessingRun.objects.filter(pk=run.pk).update(status=ProcessingRun.Status.SUCCEEDED, fetched=10)
    page.wait_for_function(
        "() => !document.querySelector('#run-bar').classList.contains('progress-bar-animated')", timeout=15_000
    )
    shot("run-finished")
    assert page.locator("#run-status").inner_text() != "Running"

    # The rule coverage page's sample size submits on change (was an inline onchange).
    page.goto(reverse("bounces:rule_coverage"))
    select = page.locator("select[name=sample]")
    if select.count():
        options = select.locator("option").all_inner_texts()
        with page.expect_navigation():
            select.select_option(options[-1])
        assert f"sample={options[-1]}" in page.url
    assert violations == [] and page.js_errors == []


def test_with_two_factor_required_staff_log_in_with_their_authenticator_code(page, make_user, settings, shot):
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.REQUIRE_2FA = True
    user = make_user("operator", superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    page.goto("/admin/")
    shot("asks-for-the-code")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit][value='Log in']")
    page.wait_for_load_state()
    assert "/login/" in page.url  # the password alone is not enough
    page.fill("input[name=password]", PASSWORD)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    page.fill("input[name=otp_token]", f"{totp.token():06d}")
    page.click("input[type=submit][value='Log in']")
    page.wait_for_load_state()
    assert "/login/" not in page.url, page.locator(".errornote, .errorlist").all_inner_texts()
    assert page.locator("text=Log out").count() >= 1


def test_the_login_page_locks_out_after_repeated_wrong_passwords(page, make_user, settings, shot):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("operator", superuser=True)
    for _ in range(3):
        login(page, "operator", "wrong password", next_url="/admin/")
    login(page, "operator", next_url="/admin/")  # the right one, too late
    shot("locked-out")
    assert "/login/" in page.url or "locked" in page.content().lower()
    # still not logged in: /admin/ leads to the dashboard, which asks for a login
    assert "/admin/login/?next=" in page.goto("/admin/").url
