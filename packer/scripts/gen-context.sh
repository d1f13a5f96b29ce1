#!/usr/bin/env bash
# A real OpenNebula context CD for the build VM (as one-apps does): DHCP on eth0 and root SSH
# with the build password, which 90-cleanup.sh and virt-sysprep remove again.
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(printf '%s\n' "sed -i 's/^#*PermitRootLogin.*/PermitRootLogin yes/;s/^#*PasswordAuthentication.*/PasswordAuthentication yes/' /etc/ssh/sshd_config" \
    "systemctl reload sshd || systemctl reload ssh" | base64 -w0)
cat > "$work/context.sh" <<CONTEXT
ETH0_METHOD='dhcp'
ETH0_MAC='00:11:22:33:44:55'
NETWORK='YES'
SET_HOSTNAME='slm-build'
PASSWORD='opennebula'
START_SCRIPT_BASE64='$start'
CONTEXT
mkdir -p "$(dirname "$out")"
genisoimage -quiet -V CONTEXT -J -R -o "$out" "$work/context.sh"
