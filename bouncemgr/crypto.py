"""Encryption at rest for secrets stored in the database (mailbox passwords, OAuth2 secrets).

Fernet (AES-128-CBC + HMAC-SHA256, from the `cryptography` package) with the key(s) in
settings.FIELD_ENCRYPTION_KEYS, read from the environment. The first key encrypts;
every key decrypts, so keys can be rotated (`python manage.py rotate_encryption_key`).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is not set: it is needed to store mailbox passwords "
            "encrypted. Generate one with `python manage.py generate_encryption_key`."
        )
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is not a valid Fernet key: {exc}") from exc


def encrypt(plaintext: str) -> str:
    """Encrypt a secret; the result is ASCII text safe to store in a TextField."""
    token = _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode("utf-8"))
    return PREFIX + token.decode("ascii")


def decrypt(stored: str) -> str:
    """Decrypt a value written by `encrypt`."""
    if not stored.startswith(PREFIX):
        raise DecryptionError("stored secret is not in the expected format")
    try:
        data = _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(stored[len(PREFIX) :].encode("ascii"))
    except InvalidToken as exc:
        raise DecryptionError(
            "stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY changed? "
            "Keep the old key after the new one in FIELD_ENCRYPTION_KEY to rotate."
        ) from exc
    return data.decode("utf-8")


def rotate(stored: str) -> str:
    """Re-encrypt a stored secret with the first (current) key."""
    f = _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))
    return PREFIX + f.rotate(stored[len(PREFIX) :].encode("ascii")).decode("ascii")


def generate_key() -> str:
    """A new random key for FIELD_ENCRYPTION_KEY."""
    return Fernet.generate_key().decode("ascii")
