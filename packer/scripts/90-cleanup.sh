#!/usr/bin/env bash
# Leave nothing per-VM or temporary in the image: inputs, caches, logs, SSH host keys.
set -euo pipefail
rm -rf /opt/one-appliance/slm /root/.cache
apt-get clean
rm -rf /var/lib/apt/lists/*
find /var/log -type f -exec truncate -s 0 {} +
rm -f /etc/ssh/ssh_host_*
fstrim -av || true
sync
