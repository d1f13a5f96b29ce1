#!/usr/bin/env bash
# Lint, type-check, then the whole test suite (real nginx + llama-server + models on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
unset NO_COLOR
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
