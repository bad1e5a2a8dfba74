#!/usr/bin/env bash
# Install Vigil into .venv and run the demo: an embedded server, three users chatting (one offline,
# one sending an image), and what the server stored beside what the clients saw; then a harmless image
# listed in a demo bank is withheld by the sender's device, its voucher becomes a case, and the case is
# filed to a CyberTipline stand-in the demo starts (the finished report id is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }
step "creating the virtual environment in .venv"
python3 -m venv .venv
step "updating pip"
.venv/bin/pip install --upgrade --progress-bar on pip
step "installing Vigil and its dependencies (a few minutes the first time; pip lists each package)"
.venv/bin/pip install --progress-bar on -e .
step "running the demo"
exec .venv/bin/vigil demo "$@"
