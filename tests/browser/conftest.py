"""Browser tests: Playwright driving Debian's chromium against a live Django server.

One browser for the whole session (started lazily by the first browser test), a fresh
context per test, and a screenshot of every test's last page under var/screenshots/
(git-ignored) so a person can look at what the operator saw. The browser is the
distribution's /usr/bin/chromium (`executable_path`): nothing is downloaded. Without it
the tests skip, except with CI=true, where they fail (tests/servers/common.unavailable).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.common import unavailable

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    """The distribution's chromium, or CHROMIUM_PATH when set."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One browser for all browser tests, closed after the last of them.

    Playwright's sync API keeps an event loop in this thread while it runs; the ORM calls
    the tests make to set up data are still plain synchronous calls, so Django's async guard
    is lifted for exactly that span (never for later tests: a subprocess such as
    `check --deploy` must not inherit it)."""
    path = chromium_path()
    if not path:
        unavailable("chromium is not installed (apt-get install chromium fonts-liberation)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch(sync_playwright, path)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch(sync_playwright, path: str) -> Iterator:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)  # a loaded 2-core CI machine is slow
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120]


class Shots:
    """Saves named screenshots of a page: var/screenshots/<test>--<name>.png."""

    def __init__(self, page, test_name: str) -> None:
        self.page = page
        self.test_name = _slug(test_name)
        self.taken: list[Path] = []

    def __call__(self, name: str = "final", *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{self.test_name}--{_slug(name)}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.fixture
def page(browser, live_server, request: pytest.FixtureRequest, screenshot_dir) -> Iterator:
    """A fresh browser page at 1366 px whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.set_default_timeout(30_000)  # a loaded 2-core CI machine is slow
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.shots = Shots(page, request.node.name)
    page.js_errors = errors
    try:
        yield page
    finally:
        # Every browser test leaves a screenshot of the page as it ended.
        try:
            page.shots("end")
        finally:
            context.close()


@pytest.fixture
def shot(page):
    return page.shots


def login(page, username: str, password: str = PASSWORD, *, next_url: str = "/") -> None:
    """Log in through the real login form, as a person does."""
    page.goto(next_url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("input[type=submit], button[type=submit]")


def assert_no_horizontal_scroll(page) -> None:
    """The page fits its viewport's width (no sideways scrolling)."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow}px at {page.viewport_size['width']}px"


@pytest.fixture
def make_user(django_user_model):
    """Create a staff user with a password and the named model permissions."""
    from django.contrib.auth.models import Permission

    def make(username: str, *, perms: tuple[str, ...] = (), superuser: bool = False):
        user = django_user_model.objects.create_user(
            username=username, password=PASSWORD, is_staff=True, is_superuser=superuser,
        )
        for codename in perms:
            app_label, code = codename.split(".", 1)
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=code)
            )
        return user

    return make
