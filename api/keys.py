"""API key tokens: how they are made, stored and checked (no Django models here).

A token reads `bmk_<prefix>_<secret>`: the 12-character prefix finds the key's row, the
SHA-256 of the whole token is what is stored and compared.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "bmk_"
PREFIX_LENGTH = 12
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """(token, prefix, hash) for a new key."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    return token, prefix, hash_token(token)


def prefix_of(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or not secret or len(token) > 100:
        return None
    return prefix


def token_matches(token: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_token(token), hashed)
