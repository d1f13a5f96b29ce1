#!/usr/bin/env bash
# Put the one-apps framework and our appliance in place, then run the install stage.
set -euo pipefail
cd /etc/one-appliance
mv common.sh functions.sh lib/
mv service.sh service
chmod 0755 service
chmod 0750 service.d lib
mv net-90-service-appliance net-99-report-ready /etc/one-context.d/
chown root:root /etc/one-context.d/net-90-service-appliance /etc/one-context.d/net-99-report-ready
chmod 0755 /etc/one-context.d/net-90-service-appliance /etc/one-context.d/net-99-report-ready
SLM_DEFAULT_MODEL="${SLM_DEFAULT_MODEL:-phi-3-mini-4k-instruct-q4}" /etc/one-appliance/service install
sync
