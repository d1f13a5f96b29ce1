#!/usr/bin/env bash
# sysprep, compress and write the marketplace manifest (virtual size, file size, sha256, md5),
# as one-apps' postprocess.sh and manifest.sh do. No virt-sparsify: 90-cleanup.sh's fstrim
# through the discard-enabled disk already freed deleted blocks (one appliance boot less).
#   postprocess.sh IMAGE OUT_DIR [ACCELERATOR]
# ACCELERATOR tcg makes libguestfs emulate too (its appliance would hang where KVM does).
set -euo pipefail
image=$1
out=$2
if [ "${3:-kvm}" = tcg ]; then
    export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
fi
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
mkdir -p "$out"
echo "== post-processing: virt-sysprep"
timeout 20m virt-sysprep --quiet --add "$image" --root-password disabled \
    --hostname localhost.localdomain --run-command 'truncate -s0 -c /etc/machine-id' \
    --delete /etc/resolv.conf
echo "== post-processing: compress"
name=slm-appliance
qemu-img convert -c -O qcow2 "$image" "$out/$name.qcow2.part"
mv "$out/$name.qcow2.part" "$out/$name.qcow2"
virtual=$(qemu-img info --output=json "$out/$name.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
cat > "$out/$name.yaml.part" <<MANIFEST
name: $name
version: $(date -u +%Y%m%d)
image: $name.qcow2
format: qcow2
size: $virtual
file_size: $(stat -c %s "$out/$name.qcow2")
sha256: $(sha256sum "$out/$name.qcow2" | cut -d' ' -f1)
md5: $(md5sum "$out/$name.qcow2" | cut -d' ' -f1)
creation_time: $(date -u +%s)
MANIFEST
mv "$out/$name.yaml.part" "$out/$name.yaml"
cat "$out/$name.yaml"
