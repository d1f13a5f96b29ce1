#!/usr/bin/env bash
# The real VM boot test (separate from scripts/test.sh: ~7 min warm, ~25 min the first time, as it
# debootstraps Debian 12 and builds the portable engine; cached afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
for p in debootstrap qemu-system-x86 qemu-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
scripts/build-portable-engine.sh
SLM_IMAGE_TEST=1 exec .venv/bin/pytest -s tests/image "$@"
