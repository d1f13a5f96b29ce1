#!/usr/bin/env bash
# Install what is missing (quick when done), lint, type-check, then the whole test suite
# (real nginx + llama-server + models + pebble, all on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
unset NO_COLOR
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
