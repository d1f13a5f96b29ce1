#!/usr/bin/env bash
# sysprep, sparsify, compress, and write the marketplace manifest (virtual size, file size,
# sha256), as one-apps' postprocess.sh and manifest.sh do.
set -euo pipefail
image=$1
out=$2
mkdir -p "$out"
timeout 5m virt-sysprep --add "$image" --root-password disabled \
    --hostname localhost.localdomain --run-command 'truncate -s0 -c /etc/machine-id' \
    --delete /etc/resolv.conf
timeout -s9 5m virt-sparsify --in-place "$image" || echo "virt-sparsify timed out; continuing"
name=slm-appliance
qemu-img convert -c -O qcow2 "$image" "$out/$name.qcow2"
virtual=$(qemu-img info --output=json "$out/$name.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
cat > "$out/$name.yaml" <<MANIFEST
name: $name
version: $(date -u +%Y%m%d)
image: $name.qcow2
format: qcow2
size: $virtual
file_size: $(stat -c %s "$out/$name.qcow2")
sha256: $(sha256sum "$out/$name.qcow2" | cut -d' ' -f1)
creation_time: $(date -u +%s)
MANIFEST
cat "$out/$name.yaml"
