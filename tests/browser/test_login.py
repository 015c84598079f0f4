"""Logging in through the real login form in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, assert_no_horizontal_scroll, login

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_logs_in_and_lands_on_the_console(page, make_user, shot):
    make_user("operator", superuser=True)
    page.goto("/")
    assert "/login/" in page.url
    shot("login")
    login(page, "operator")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#logout-form button")).to_be_visible()
    assert not page.js_errors


def test_a_wrong_password_keeps_the_operator_on_the_login_page_with_a_message(page, make_user):
    make_user("operator", superuser=True)
    login(page, "operator", "wrong password")
    expect(page.locator(".errornote")).to_be_visible()
    assert "/login/" in page.url


def test_the_login_page_fits_a_phone_screen(page):
    page.set_viewport_size(PHONE)
    page.goto("/admin/login/")
    assert_no_horizontal_scroll(page)
