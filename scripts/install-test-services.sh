#!/usr/bin/env bash
# Install the Debian packages of the real servers the tests start as plain processes on
# loopback: PostgreSQL, Redis, Dovecot (IMAP + POP3), and the browser the browser tests
# drive (Debian's chromium, with fonts-liberation for readable screenshots; Playwright
# never downloads a browser of its own). As root they are installed when missing;
# otherwise this says exactly what to install.
set -euo pipefail
packages=(postgresql redis-server dovecot-imapd dovecot-pop3d openssl chromium fonts-liberation)
missing=()
have_pg() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_pg || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/sbin/dovecot ] && [ -e /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
[ -e /usr/lib/dovecot/pop3 ] || missing+=(dovecot-pop3d)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || missing+=(fonts-liberation)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing test services: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages' own system services are not needed (the tests start private instances).
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "The tests need these Debian packages: ${missing[*]}" >&2
  echo "Install them as root with: apt-get install ${packages[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1
  echo "Continuing: tests that need them will be skipped." >&2
fi
