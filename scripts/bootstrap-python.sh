#!/usr/bin/env bash
# Create the virtualenv with Python >= 3.11, installing Debian's python3-venv when it is
# missing and we are root.
set -euo pipefail
venv="${1:-.venv}"
[ -x "$venv/bin/python" ] && exit 0
py=""
for cand in python3.11 python3.12 python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    py="$cand"; break
  fi
done
if [ -z "$py" ]; then
  echo "bouncemgr needs Python >= 3.11 (Debian 12: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$py" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    "$py" -m venv "$venv"
  else
    echo "Cannot create a virtualenv: install python3-venv (apt-get install python3-venv) and retry" >&2
    exit 1
  fi
fi
