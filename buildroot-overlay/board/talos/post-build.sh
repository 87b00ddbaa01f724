#!/usr/bin/env bash
# Buildroot post-build hook (BR2_ROOTFS_POST_BUILD_SCRIPT): turns TARGET_DIR into the talos-rs
# root file system. The talos-rs package already installed the binary as /sbin/init; this adds
# the rootfs/ skeleton (files + MANIFEST: directories and the applet symlinks) and moves the
# container runtime (containerd, runc) out of the root into the extension layer's staging
# directory, BINARIES_DIR/extensions, which post-image.sh turns into extensions.sqsh.
set -euo pipefail
TARGET_DIR=${1:?usage: post-build.sh TARGET_DIR}
: "${BINARIES_DIR:?BINARIES_DIR is set by buildroot}"
TOP=$(cd "$(dirname "$0")/../../.." && pwd)
# shellcheck source=boot/image-lib.sh
. "$TOP/boot/image-lib.sh"

[ -x "$TARGET_DIR/sbin/init" ] || { echo "post-build: $TARGET_DIR/sbin/init missing (is BR2_PACKAGE_TALOS_RS set?)" >&2; exit 1; }
if [ -f "$TOP/rootfs/MANIFEST" ]; then
    image_copy_skeleton "$TOP/rootfs" "$TARGET_DIR"
    image_apply_manifest "$TOP/rootfs/MANIFEST" "$TARGET_DIR"
else
    for a in machined apid trustd networkd installer talosctl; do ln -sfn init "$TARGET_DIR/sbin/$a"; done
    mkdir -p "$TARGET_DIR/system" "$TARGET_DIR/var" "$TARGET_DIR/run" "$TARGET_DIR/tmp"
fi

X=$BINARIES_DIR/extensions
rm -rf "$X"
for f in usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr usr/sbin/runc usr/bin/runc; do
    if [ -e "$TARGET_DIR/$f" ]; then
        mkdir -p "$X/$(dirname "$f")"
        mv "$TARGET_DIR/$f" "$X/$f"
    fi
done
