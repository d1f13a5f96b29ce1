#!/usr/bin/env bash
# The image test (separate from scripts/test.sh and CI): builds the one-apps style Debian 12 base
# image (cached by its inputs), runs the real `packer build` cold and warm with SmolLM2 served by
# a loopback mirror, then boots a copy of the artifact with OpenNebula context CDs.
#   scripts/test-image.sh ONE_APPS_DIR [pytest node ids]
# ONE_APPS_DIR is a checkout of OpenNebula/one-apps (its framework, one-context and base
# provisioning scripts are used unchanged). Timings land in packer/build/timings.json.
set -euo pipefail
cd "$(dirname "$0")/.."
one_apps=$(cd "${1:?usage: scripts/test-image.sh ONE_APPS_DIR [pytest args]}" && pwd)
shift
scripts/setup.sh
for p in debootstrap qemu-system-x86 qemu-utils genisoimage libguestfs-tools linux-image-amd64 \
         openssh-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
scripts/build-portable-engine.sh >/dev/null
# In this order: the cold build and its manifest, the boots of its artifact, then a warm build.
if [ $# -eq 0 ]; then
  set -- tests/image/test_packer_build.py::test_cold_build_manifest_matches_the_file \
    tests/image/test_vm_boot.py tests/image/test_packer_build.py::test_warm_build \
    tests/image/test_packer_build.py::test_a_failed_build_names_its_step
fi
SLM_IMAGE_TEST=1 SLM_ONE_APPS="$one_apps" exec .venv/bin/pytest -s -p no:cacheprovider "$@"
