#!/usr/bin/env bash
# The whole suite: lint, every test on SQLite, then the PostgreSQL-marked tests again on a
# real PostgreSQL started by the fixtures. Exits non-zero if anything fails or nothing ran.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== ruff"
.venv/bin/ruff check .
echo "== lint-imports (import contracts in pyproject.toml, see docs/architecture.md)"
.venv/bin/lint-imports
bash scripts/audit.sh  # dependency audit: fails on a known vulnerability, never for want of network
echo "== pytest (SQLite, all tests)"
$py -m pytest "$@"
echo "== pytest (PostgreSQL, tests marked postgres)"
$py -m pytest --postgres -m postgres "$@"
