#!/usr/bin/env bash
# Install Vigil into .venv and run the whole test suite (unit, integration on SQLite and PostgreSQL,
# browser). PostgreSQL defaults to 127.0.0.1:5432/test; without it those tests skip, unless
# VIGIL_REQUIRE_POSTGRES=1 (as in CI) makes them fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"
export VIGIL_TEST_POSTGRES_URL="${VIGIL_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
export VIGIL_TEST_REDIS_URL="${VIGIL_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
exec .venv/bin/pytest -q "$@"
