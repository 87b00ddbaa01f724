#!/usr/bin/env bash
# Buildroot post-image hook (BR2_ROOTFS_POST_IMAGE_SCRIPT): produces, in BINARIES_DIR, the same
# artifacts as ci/build-image: vmlinuz, rootfs.sqsh, extensions.sqsh, initramfs.xz (talos as
# /init + both images; no modules: the kernel has boot/kernel/talos.config built in) and
# metal-amd64.iso (GRUB, BIOS + UEFI). With ETCD_BINARY=/path/to/etcd (a static etcd release
# binary; buildroot has no etcd package) etcd joins the extension layer.
set -euo pipefail
BINARIES_DIR=${1:?usage: post-image.sh BINARIES_DIR}
: "${TARGET_DIR:?TARGET_DIR is set by buildroot}"
TOP=$(cd "$(dirname "$0")/../../.." && pwd)
# shellcheck source=boot/image-lib.sh
. "$TOP/boot/image-lib.sh"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 0)}
E=$SOURCE_DATE_EPOCH
MKSQUASHFS=${HOST_DIR:+$HOST_DIR/bin/}mksquashfs
command -v "$MKSQUASHFS" >/dev/null || MKSQUASHFS=mksquashfs
WORK=$(mktemp -d "$BINARIES_DIR/.talos.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "[1/5] vmlinuz"
cp "$BINARIES_DIR/bzImage" "$BINARIES_DIR/vmlinuz"
echo "[2/5] rootfs.sqsh"
cp "$BINARIES_DIR/rootfs.squashfs" "$BINARIES_DIR/rootfs.sqsh"
echo "[3/5] extensions.sqsh"
X=$BINARIES_DIR/extensions
mkdir -p "$X"
if [ -n "${ETCD_BINARY:-}" ]; then install -D -m 0755 "$ETCD_BINARY" "$X/usr/bin/etcd"; fi
cp -a "$X" "$WORK/extensions"
image_squash "$WORK/extensions" "$BINARIES_DIR/extensions.sqsh" "$MKSQUASHFS"
echo "[4/5] initramfs.xz"
I=$WORK/initramfs
mkdir -p "$I/dev" "$I/proc" "$I/sys" "$I/root"
install -m 0755 "$TARGET_DIR/sbin/init" "$I/init"
cp "$BINARIES_DIR/rootfs.sqsh" "$BINARIES_DIR/extensions.sqsh" "$I/"
image_initramfs "$I" "$BINARIES_DIR/initramfs.xz"
cp "$TOP/boot/cmdline" "$BINARIES_DIR/cmdline"
echo "[5/5] metal-amd64.iso"
PATH=${HOST_DIR:+$HOST_DIR/bin:}$PATH image_iso "$BINARIES_DIR/vmlinuz" "$BINARIES_DIR/initramfs.xz" \
    "$(cat "$TOP/boot/cmdline")" "$WORK" "$BINARIES_DIR/metal-amd64.iso"
ls -l "$BINARIES_DIR"/{vmlinuz,rootfs.sqsh,extensions.sqsh,initramfs.xz,metal-amd64.iso}
