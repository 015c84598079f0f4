"""Root test configuration.

Unit tests run on SQLite. `pytest --postgres` points the default database at a real
PostgreSQL started here for the session (scripts/test.sh runs the tests marked
`postgres` that way, so model tests run on both). Real servers (PostgreSQL, Redis,
Dovecot) are started on loopback ports by fixtures; a missing one skips its tests,
except with CI=true, where it fails them.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.servers.common import unavailable

TEST_ENCRYPTION_KEY = "dGVzdC1rZXktZm9yLWJvdW5jZW1nci10ZXN0cy0wMDA="  # 32 bytes, tests only
# Settings refuse to start without SECRET_KEY unless DEBUG: the servers and commands the
# tests start (celery workers, manage.py) get a throwaway one.
os.environ.setdefault("SECRET_KEY", "tests-only-" + "k" * 40)
# Local mbox/maildir mailboxes must lie inside LOCAL_MAILBOX_ROOTS: tests build theirs in
# pytest's temporary folders (tests of the confinement itself narrow it).
os.environ.setdefault("LOCAL_MAILBOX_ROOTS", tempfile.gettempdir())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres", action="store_true", default=False,
        help="run the database tests on a real PostgreSQL started for the session",
    )


@pytest.fixture(scope="session", autouse=True)
def _test_settings() -> None:
    from django.conf import settings

    settings.FIELD_ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]
    settings.LOCAL_MAILBOX_ROOTS = [tempfile.gettempdir()]
    # The test client speaks plain HTTP; production keeps the redirect (check --deploy test).
    settings.SECURE_SSL_REDIRECT = False
    # No collectstatic before tests: the manifest storage would refuse every page.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Test users' passwords: a fast hash (PBKDF2's million rounds cost ~0.3 s per user, over
    # a minute of the suite). Production keeps Django's default; subprocess servers too.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest):
    """A real PostgreSQL for the whole session."""
    from tests.servers.postgres import PostgresServer, postgres_available

    reason = postgres_available()
    if reason:
        unavailable(reason)
    server = PostgresServer.start()
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request: pytest.FixtureRequest, django_db_modify_db_settings_parallel_suffix):
    """With --postgres, the default database is a real PostgreSQL server."""
    if not request.config.getoption("--postgres"):
        return
    from django.conf import settings
    from django.db import connections

    server = request.getfixturevalue("postgres_server")
    db = settings.DATABASES["default"]
    db.clear()
    db.update(server.django_settings())
    # Forget any SQLite connection made before this point.
    for conn in connections.all(initialized_only=True):
        conn.close()
    connections.__dict__.pop("settings", None)
    for alias in list(connections.settings):
        if hasattr(connections._connections, alias):
            delattr(connections._connections, alias)


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server for the whole session."""
    from tests.servers.redis import RedisServer, redis_available

    reason = redis_available()
    if reason:
        unavailable(reason)
    server = RedisServer.start()
    yield server
    server.stop()
