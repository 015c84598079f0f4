"""The raw psycopg cursors used for bulk writes (COPY, server-side executemany, the intake's
INSERT ... RETURNING) raise django.db's exceptions like every ORM query, so a broken
connection reaches the pipeline's database-failure handling (one line, no traceback)."""

import pytest
from django.db import DatabaseError, connection

from contacts.services import copy_rows, executemany

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("raw psycopg cursors are used on PostgreSQL only")


def test_executemany_failure_is_a_django_database_error():
    _postgres_only()
    with pytest.raises(DatabaseError):
        executemany("INSERT INTO no_such_table_here (x) VALUES (%s)", [[1], [2]])


def test_copy_failure_is_a_django_database_error():
    _postgres_only()
    with pytest.raises(DatabaseError):
        copy_rows("COPY no_such_table_here (x) FROM STDIN", [[1]])
