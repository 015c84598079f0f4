"""Receiving provider groups and causes, pure: a recipient domain (and, when a notice names it,
the remote MTA / MX host) to a provider group; a bounce reason to a cause. No DNS lookups:
the pipeline never waits for the network. Standard library only."""

from __future__ import annotations

import re

# Mailbox domains of the large providers (their consumer domains; hosted domains are
# recognised by the MX host a notice names, see MX_SUFFIXES).
PROVIDER_DOMAINS: dict[str, str] = {
    "gmail.com": "google", "googlemail.com": "google",
    "outlook.com": "microsoft", "hotmail.com": "microsoft", "live.com": "microsoft", "msn.com": "microsoft",
    "passport.com": "microsoft", "outlook.fr": "microsoft", "hotmail.fr": "microsoft", "hotmail.co.uk": "microsoft",
    "hotmail.de": "microsoft", "hotmail.it": "microsoft", "hotmail.es": "microsoft", "live.fr": "microsoft",
    "live.co.uk": "microsoft", "live.de": "microsoft",
    "yahoo.com": "yahoo", "ymail.com": "yahoo", "rocketmail.com": "yahoo", "aol.com": "yahoo", "aim.com": "yahoo",
    "yahoo.co.uk": "yahoo", "yahoo.fr": "yahoo", "yahoo.de": "yahoo", "yahoo.co.jp": "yahoo",
    "icloud.com": "apple", "me.com": "apple", "mac.com": "apple",
    "gmx.de": "united-internet", "gmx.net": "united-internet", "gmx.com": "united-internet",
    "web.de": "united-internet", "mail.com": "united-internet",
    "yandex.ru": "yandex", "yandex.com": "yandex", "ya.ru": "yandex",
    "mail.ru": "mailru", "inbox.ru": "mailru", "list.ru": "mailru", "bk.ru": "mailru",
    "comcast.net": "comcast", "orange.fr": "orange", "wanadoo.fr": "orange", "free.fr": "free",
    "proton.me": "proton", "protonmail.com": "proton", "zoho.com": "zoho", "qq.com": "tencent",
    "t-online.de": "t-online", "libero.it": "italiaonline",
}
# Prefixes of country variants (yahoo.es, hotmail.com.br, ...).
_PREFIXES = (("yahoo.", "yahoo"), ("hotmail.", "microsoft"), ("outlook.", "microsoft"), ("live.", "microsoft"))
# MX / remote MTA host suffixes: a hosted domain whose notice names its provider's MX.
MX_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("google.com", "google"), ("googlemail.com", "google"), ("gmail-smtp-in.l.google.com", "google"),
    ("outlook.com", "microsoft"), ("hotmail.com", "microsoft"), ("protection.outlook.com", "microsoft"),
    ("yahoodns.net", "yahoo"), ("yahoo.com", "yahoo"), ("aol.com", "yahoo"),
    ("icloud.com", "apple"), ("me.com", "apple"), ("apple.com", "apple"),
    ("gmx.net", "united-internet"), ("web.de", "united-internet"), ("kundenserver.de", "united-internet"),
    ("yandex.net", "yandex"), ("yandex.ru", "yandex"), ("mail.ru", "mailru"),
    ("comcast.net", "comcast"), ("orange.fr", "orange"), ("protonmail.ch", "proton"), ("zoho.com", "zoho"),
    ("qq.com", "tencent"), ("t-online.de", "t-online"),
    ("pphosted.com", "proofpoint"), ("mimecast.com", "mimecast"), ("messagelabs.com", "broadcom"),
    ("barracudanetworks.com", "barracuda"),
)
# "host mx.example.net[192.0.2.1] said:" (Postfix), "mx.example.net [192.0.2.1]" (others).
_HOST_IN_TEXT = re.compile(r"\b((?:[a-z0-9-]{1,63}\.){1,10}[a-z]{2,24})\.?\s?\[[0-9a-f.:]{3,45}\]", re.I)
TEXT_SCANNED = 300  # characters of a diagnostic searched for an MX host

# Bounce reasons of our-side refusals (kind "blocked") and what they mean for the sender.
CAUSES: dict[str, str] = {
    "blocked": "blocklist", "badreputation": "reputation", "authfailure": "authentication",
    "requireptr": "authentication", "notcompliantrfc": "policy", "policyviolation": "policy",
    "securityerror": "policy", "rejected": "policy", "norelaying": "policy", "notaccept": "policy",
    "syntaxerror": "policy", "speeding": "rate limiting", "toomanyconn": "rate limiting",
    "spamdetected": "content", "virusdetected": "content", "contenterror": "content",
    "userunknown": "user unknown", "hasmoved": "user unknown", "mailboxfull": "mailbox full",
    "suspend": "mailbox disabled", "expired": "expired", "systemerror": "server error",
    "mailererror": "server error", "networkerror": "network", "hostunknown": "host unknown",
}


def domain_of(address: str) -> str:
    """The domain of an address, lower-cased ("" when there is none)."""
    _, at, domain = (address or "").rpartition("@")
    return domain.strip().strip(".").lower()[:253] if at else ""


def group_of_domain(domain: str) -> str:
    """The provider group a mailbox domain belongs to by name ("" when not a known one)."""
    domain = domain.lower()
    group = PROVIDER_DOMAINS.get(domain)
    if group:
        return group
    for prefix, name in _PREFIXES:
        if domain.startswith(prefix) and domain.count(".") <= 3:
            return name
    return ""


def group_of_host(host: str) -> str:
    """The provider group an MX / remote MTA host name belongs to ("" when not a known one)."""
    host = host.strip().strip(".").lower()
    if host.startswith("dns;"):
        host = host[4:].strip()
    for suffix, name in MX_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return name
    return ""


def provider_group(domain: str, remote_mta: str = "", diagnostic: str = "") -> str:
    """The receiving provider group of a bounce: by the recipient domain, else by the remote
    MTA it names, else by an MX host in the start of its diagnostic; "" when unknown."""
    group = group_of_domain(domain)
    if group:
        return group
    if remote_mta:
        group = group_of_host(remote_mta.split()[-1] if remote_mta.split() else "")
        if group:
            return group
    if diagnostic:
        found = _HOST_IN_TEXT.search(diagnostic[:TEXT_SCANNED])
        if found:
            return group_of_host(found.group(1))
    return ""


def cause_of(reason: str, kind: str) -> str:
    """A bounce's cause in words (the reason's, else the reason or kind itself)."""
    return CAUSES.get(reason, reason or kind)[:32]
