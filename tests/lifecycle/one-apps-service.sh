#!/usr/bin/env bash
# A stand-in for the one-apps service manager (/etc/one-appliance/service), modelled on
# appliances/service.sh and lib/common.sh (`set -e` and `umask 0077` over the whole stage,
# `msg error` returning 1, the status file, the stage log, service_cleanup after every stage).
# The lifecycle tests no longer use it: they run the vendored framework itself (framework.py).
# Only the older VM provisioning in tests/image/vm.py still copies it; remove it with that.
set -e
umask 0077

ONE_SERVICE_DIR="${ONE_SERVICE_DIR:?}"
ONE_SERVICE_STATUS="$ONE_SERVICE_DIR/status"
ONE_SERVICE_LOGDIR="${ONE_SERVICE_LOGDIR:-$ONE_SERVICE_DIR/log}"
ONE_SERVICE_APPLIANCE="${ONE_SERVICE_APPLIANCE:?}"

msg() {
    local level=$1; shift
    case "$level" in
        info) echo "[$(date -u +%FT%TZ)] => INFO: $*" ;;
        debug|warning) echo "[$(date -u +%FT%TZ)] => ${level^^}: $*" >&2 ;;
        error) echo "[$(date -u +%FT%TZ)] => ERROR: $*" >&2; return 1 ;;
        *) return 2 ;;
    esac
}

is_true() { [[ "${!1,,}" =~ ^(1|true|yes|y)$ ]]; }

# shellcheck disable=SC1090
. "$ONE_SERVICE_APPLIANCE"

stage="$1"
status=$(cat "$ONE_SERVICE_STATUS" 2>/dev/null || true)
case "$stage" in
    install) ;;
    configure)
        [ -n "$status" ] || { msg error "missing installation step"; exit 1; }
        if [ "$status" != install_success ] && ! [ "$ONE_SERVICE_RECONFIGURABLE" = true ]; then
            msg error "not reconfigurable"; exit 1
        fi ;;
    bootstrap)
        case "$status" in
            configure_success|bootstrap_*) ;;
            *) msg error "configure has not succeeded ($status)"; exit 1 ;;
        esac ;;
    *) echo "usage: $0 install|configure|bootstrap" >&2; exit 2 ;;
esac

_on_exit() {
    local rc=$?
    service_cleanup || true
    if [ "$(cat "$ONE_SERVICE_STATUS")" = "${stage}_started" ]; then
        echo "${stage}_failure" > "$ONE_SERVICE_STATUS"
    fi
    exit "$rc"
}
trap _on_exit EXIT

echo "${stage}_started" > "$ONE_SERVICE_STATUS"
mkdir -p "$ONE_SERVICE_LOGDIR"
chmod 0700 "$ONE_SERVICE_LOGDIR"
"service_${stage}" 2>&1 | tee -a "$ONE_SERVICE_LOGDIR/${stage}.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit "${PIPESTATUS[0]}"
echo "${stage}_success" > "$ONE_SERVICE_STATUS"
