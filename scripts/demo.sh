#!/usr/bin/env bash
# Install Vigil into .venv and run the demo: an embedded server, three users chatting (one offline,
# one sending an image), and what the server stored beside what the clients saw.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
exec .venv/bin/vigil demo "$@"
