#!/usr/bin/env bash
# Builds a Talos-like kernel (everything the OS needs built in: boot/kernel/talos.config) from
# Debian's linux-source-6.1 package. Not run in CI: it takes tens of minutes on 2 cores.
#
# usage: boot/kernel/build.sh [OUT_DIR]      (default _out/kernel)
# then:  ci/build-image --kernel OUT_DIR/vmlinuz   (the image's Debian modules do not match its
#        release, so stage 1 finds no /lib/modules for it and relies on the built-in drivers).
#
# Needs: linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev xz-utils
#        (apt-get install -y --no-install-recommends ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-_out/kernel}
FRAGMENT=$PWD/boot/kernel/talos.config
SRC_TAR=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)
[ -n "$SRC_TAR" ] || { echo "build.sh: /usr/src/linux-source-6.1.tar.xz missing: apt-get install linux-source-6.1" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$OUT/src
start=$(date +%s)
if [ ! -d "$WORK/linux-source-6.1" ]; then
    mkdir -p "$WORK"
    echo "[1/4] unpacking $SRC_TAR"
    tar -xf "$SRC_TAR" -C "$WORK"
fi
cd "$WORK/linux-source-6.1"
echo "[2/4] configuring: x86_64_defconfig + $FRAGMENT"
export KBUILD_BUILD_TIMESTAMP="@${SOURCE_DATE_EPOCH:-0}" KBUILD_BUILD_USER=talos KBUILD_BUILD_HOST=talos-rs
make -s x86_64_defconfig
scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >/dev/null
make -s olddefconfig
# Every =y of the fragment must have survived (a dependency may silently drop one).
missing=0
while IFS= read -r line; do
    case "$line" in CONFIG_*=y) grep -qx "$line" .config || { echo "  not set: $line" >&2; missing=1; } ;; esac
done <"$FRAGMENT"
[ "$missing" = 0 ] || echo "build.sh: some options did not take (see above); continuing" >&2
echo "[3/4] building bzImage and modules with $(nproc) jobs"
make -s -j"$(nproc)" bzImage modules
echo "[4/4] installing into $OUT"
cp arch/x86/boot/bzImage "$OUT/vmlinuz"
make -s INSTALL_MOD_PATH="$OUT/modules" modules_install
echo "done in $(( $(date +%s) - start ))s: $(stat -c %s "$OUT/vmlinuz") bytes vmlinuz"
