"""MTA family detectors: one module per family, tried in registry order.

Each module has ``NAME``, ``match(mail) -> bool`` (cheap: headers, a marker string) and
``parse(mail, dsn) -> list[Rec]`` where ``dsn`` holds the RFC 3464 records already read from
the message (empty when it has none). A module returns [] to pass. To add a family, write
the module and add it to ``DETECTORS`` below, before the broader families it could be
mistaken for.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    amazonses,
    domino,
    dragonfly,
    einsundeins,
    exchange2003,
    exim,
    ezweb,
    fml,
    generic,
    gmail,
    googlegroups,
    kddi,
    mfilter,
    microsoft,
    notes,
    opensmtpd,
    postfix,
    qmail,
    sendmail,
    v5sendmail,
    verizon,
    x3,
    yahoo,
    zoho,
)

DETECTORS: tuple[ModuleType, ...] = (
    amazonses,
    fml,
    kddi,
    ezweb,
    verizon,
    zoho,
    notes,
    domino,
    einsundeins,
    mfilter,
    googlegroups,
    gmail,
    dragonfly,
    opensmtpd,
    x3,
    exchange2003,
    microsoft,
    yahoo,
    qmail,
    postfix,
    v5sendmail,
    sendmail,
    exim,
)

__all__ = ["DETECTORS", "generic"]
