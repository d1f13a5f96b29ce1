#!/usr/bin/env bash
# Set up everything, then run the whole stack in ./sandbox on loopback with the small model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/wizard --root "${SLM_SANDBOX:-./sandbox}" sandbox "$@"
