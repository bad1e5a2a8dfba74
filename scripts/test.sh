#!/usr/bin/env bash
# Install Vigil into .venv, check it with the pinned linters (ruff, ruff format, mypy --strict), then run
# the whole test suite (unit, integration on SQLite and PostgreSQL, browser). PostgreSQL defaults to
# 127.0.0.1:5432/test; without it those tests skip, unless VIGIL_REQUIRE_POSTGRES=1 (as in CI) makes them
# fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"
echo "lint: ruff check, ruff format --check, mypy --strict" >&2
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy --no-error-summary
export VIGIL_TEST_POSTGRES_URL="${VIGIL_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
export VIGIL_TEST_REDIS_URL="${VIGIL_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
# Two workers (`--dist load`: any test to any worker) overlap the test processes with the server processes
# they start, so both cores stay busy. Pass `-n 0` to run serially.
exec .venv/bin/pytest -q -n 2 --dist load "$@"
