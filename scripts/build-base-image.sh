#!/usr/bin/env bash
# A one-apps style Debian 12 base image, built here because the Debian cloud image cannot be
# downloaded: debootstrap, kernel and GRUB, one-context packaged with dpkg-deb from a one-apps
# checkout's context-linux (its own generate.sh lays out the files, pkg/postinstall is the
# maintainer script), then one-apps' own base provisioning scripts (packer/debian/80, 81, 11,
# 98) unchanged. Cached by its inputs: rebuilt only when this script, the package list or the
# one-apps checkout change. About 10 min on 2 shared cores (debootstrap dominates).
#   scripts/build-base-image.sh ONE_APPS_DIR   -> prints "PATH SHA256" of the qcow2
set -euo pipefail
one_apps=$(cd "$1" && pwd)
CACHE="${SLM_CACHE:-$HOME/.cache/slm-appliance}/base"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The Debian cloud image's essentials plus one-context's Depends (context-linux/targets.sh, deb).
PACKAGES=linux-image-amd64,grub-pc,systemd-sysv,systemd-resolved,udev,kmod,dbus,sudo,passwd
PACKAGES+=,openssh-server,curl,ca-certificates,bind9-host,cloud-utils,cloud-guest-utils,parted
PACKAGES+=,ruby,ifupdown,acpid,qemu-guest-agent,gawk,virt-what,haveged,jq,util-linux-extra
PACKAGES+=,iproute2,procps,less,e2fsprogs,initramfs-tools,fdisk,apt-utils
SIZE=4G

key=$( { cat "$0"; echo "$PACKAGES $MIRROR"; \
         (cd "$one_apps" && find context-linux packer/debian -type f -print0 | sort -z \
          | xargs -0 sha256sum); } | sha256sum | cut -c1-16)
out="$CACHE/debian12-$key.qcow2"
if [ -f "$out" ] && [ -f "$out.sha256" ]; then
    echo "$out $(cat "$out.sha256")"
    exit 0
fi
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/work.XXXXXX")
cleanup() {
    for m in dev/pts dev proc sys; do umount "$work/rootfs/$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
log() { echo "== base image: $*" >&2; }

log "one-context package from $one_apps/context-linux"
# shellcheck disable=SC2016  # the pattern matches a literal ${VERSION:-...} in generate.sh
version=$(sed -n 's/^VERSION=\${VERSION:-\([^}]*\)}.*/\1/p' "$one_apps/context-linux/generate.sh")
pkg="$work/one-context"
(cd "$one_apps/context-linux" && TARGET=deb TYPE=dir RELEASE=1 OUT="$pkg" ./generate.sh >/dev/null)
sed -i "s/\<_PACKAGE_VERSION_\>/$version/" "$pkg/usr/sbin/onesysprep"
depends=$(cd "$one_apps/context-linux" && TARGET=deb bash -c '. ./targets.sh; echo "$DEPENDS"')
install -d -m 0755 "$pkg/DEBIAN"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: one-context
Version: $version-1
Architecture: all
Maintainer: OpenNebula Systems <contact@opennebula.io>
Depends: ${depends// /, }
Conflicts: cloud-init, cloud-init-base, one-context-ec2
Replaces: cloud-init, cloud-init-base
Description: OpenNebula Contextualization Package
 Built from one-apps context-linux for the SLM appliance's base image.
CONTROL
(cd "$pkg" && find etc/ ! -path 'etc/one-context.d/*' ! -path 'etc/init*' -type f \
    -printf '/%p\n') > "$pkg/DEBIAN/conffiles"
for script in postinst:postinstall prerm:preuninstall postrm:postuninstall; do
    install -m 0755 "$one_apps/context-linux/pkg/${script#*:}" "$pkg/DEBIAN/${script%%:*}"
done
deb="$work/one-context_${version}-1_all.deb"
dpkg-deb --root-owner-group --build "$pkg" "$deb" >/dev/null

rootfs="$work/rootfs"
# debootstrap's result alone is cached too (keyed by the package list and mirror): most of the
# time goes there, and it does not change when only the provisioning below does.
tarball="$CACHE/rootfs-$(echo "$PACKAGES $MIRROR" | sha256sum | cut -c1-16).tar"
if [ ! -f "$tarball" ]; then
    log "debootstrap bookworm ($MIRROR)"
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$MIRROR" >&2
    tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
else
    log "debootstrap bookworm: cached $tarball"
    mkdir "$rootfs" && tar -C "$rootfs" -xf "$tarball"
fi

log "one-apps base provisioning (80-install-context, 81-configure-ssh, 11-update-grub, 98-collect-garbage) in a chroot"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$rootfs/$m"; done
install -d "$rootfs/context"
cp "$deb" "$rootfs/context/"
cp "$one_apps"/packer/debian/{80-install-context.sh,81-configure-ssh.sh,11-update-grub.sh,98-collect-garbage.sh} "$rootfs/tmp/"
cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES
printf 'exit 101\n' > "$rootfs/usr/sbin/policy-rc.d" && chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" env DIST_VER=12 bash /tmp/80-install-context.sh >&2
chroot "$rootfs" bash /tmp/81-configure-ssh.sh >&2
# 11-update-grub.sh: kernel command line and initramfs here; its update-grub2 needs the booted
# disk, so it is a no-op now and runs with grub-install from inside the VM below.
install -d "$rootfs/tmp/shim" && printf '#!/bin/sh\nexit 0\n' > "$rootfs/tmp/shim/update-grub2"
chmod 0755 "$rootfs/tmp/shim/update-grub2"
chroot "$rootfs" env PATH="/tmp/shim:/usr/sbin:/usr/bin:/sbin:/bin" bash /tmp/11-update-grub.sh >&2
rm -rf "$rootfs/tmp/shim"
printf 'exit 0\n' > "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" env DIST_VER=12 bash /tmp/98-collect-garbage.sh >&2
rm -f "$rootfs"/tmp/{80,81,11,98}-*.sh "$rootfs"/etc/ssh/ssh_host_*
for m in dev/pts dev proc sys; do umount "$rootfs/$m"; done
# one-context-local waits for the context CD (dev-sr0.device) only systemd's default 90 s; an
# emulated (TCG) or overloaded host can take longer to probe the IDE CD, and a VM that starts
# without its context has no network. Wait longer for that one device.
install -d "$rootfs/etc/systemd/system/dev-sr0.device.d"
printf '[Unit]\nJobRunningTimeoutSec=10min\nJobTimeoutSec=10min\n' \
    > "$rootfs/etc/systemd/system/dev-sr0.device.d/slm-context-cd.conf"
echo "LABEL=root / ext4 defaults 0 1" > "$rootfs/etc/fstab"
echo localhost > "$rootfs/etc/hostname"
truncate -s0 "$rootfs/etc/machine-id"
chroot "$rootfs" passwd -l root >/dev/null
# GRUB must be installed from a booted system (it probes the disk): a one-shot init does it.
cat > "$rootfs/sbin/slm-base-finish" <<'FINISH'
#!/bin/bash
set -x
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mount -o remount,rw /
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
rc=0
grub-install --target=i386-pc /dev/vda && update-grub || rc=$?
rm -f /sbin/slm-base-finish
echo "slm-base-finish rc=$rc"
sync; mount -o remount,ro /
echo o > /proc/sysrq-trigger
sleep 60  # init must not exit before the power-off lands (that is a kernel panic)
FINISH
chmod 0755 "$rootfs/sbin/slm-base-finish"
cp "$rootfs"/boot/vmlinuz-* "$work/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$work/initrd.img"

log "disk: MBR, one ext4 partition labelled root"
raw="$work/disk.raw"
truncate -s "$SIZE" "$raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$raw"
truncate -s "$(( $(stat -c %s "$raw") - 1048576 ))" "$work/part.raw"
mkfs.ext4 -q -F -L root -d "$rootfs" "$work/part.raw"
dd if="$work/part.raw" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -rf "$work/part.raw" "$rootfs"

log "GRUB from inside the VM (grub-install, update-grub)"
accel=tcg
[ "${SLM_QEMU_ACCEL:-tcg}" = kvm ] && accel=kvm
timeout 20m qemu-system-x86_64 -machine "pc,accel=$accel" -cpu max -m 1024 -smp 2 \
    -display none -no-reboot -serial "file:$work/finish.log" \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=/dev/vda1 rw console=ttyS0 panic=1 init=/sbin/slm-base-finish" \
    -drive "file=$raw,if=virtio,format=raw"
grep -q 'slm-base-finish rc=0' "$work/finish.log" || { tail -40 "$work/finish.log" >&2; log "GRUB step failed"; exit 1; }

qemu-img convert -c -O qcow2 "$raw" "$out.part"
sha256sum "$out.part" | cut -d' ' -f1 > "$out.sha256"
mv "$out.part" "$out"
echo "$out $(cat "$out.sha256")"
