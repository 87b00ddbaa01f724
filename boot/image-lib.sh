# Shell functions shared by ci/build-image and buildroot-overlay/board/talos/post-image.sh, so
# both produce the same artifacts the same way. Source it; it needs $E (SOURCE_DATE_EPOCH).
# shellcheck shell=bash

# Sets every timestamp of a staged tree to $E.
image_normalize() { # DIR
    find "$1" -exec touch -h -d "@$E" {} +
}

# A squashfs image of DIR: owners 0:0, all times $E, zstd, one processor (byte-reproducible).
# mksquashfs refuses -mkfs-time/-all-time while SOURCE_DATE_EPOCH is set: it is unset for it.
image_squash() { # DIR IMAGE [MKSQUASHFS]
    image_normalize "$1"
    env -u SOURCE_DATE_EPOCH "${3:-mksquashfs}" "$1" "$2" -noappend -quiet -no-progress \
        -all-root -no-xattrs -comp zstd -mkfs-time "$E" -all-time "$E" -processors 1 >/dev/null
}

# Applies a rootfs MANIFEST (`dir PATH MODE`, `symlink PATH TARGET`, `#` comments) to ROOT.
image_apply_manifest() { # MANIFEST ROOT
    local kind path arg
    while read -r kind path arg; do
        case "$kind" in
            "" | \#*) continue ;;
            dir) mkdir -p "$2$path" && chmod "$arg" "$2$path" ;;
            symlink) mkdir -p "$(dirname "$2$path")" && ln -sfn "$arg" "$2$path" ;;
            *) echo "image-lib: $1: unknown entry '$kind $path'" >&2; return 1 ;;
        esac
    done <"$1"
}

# Copies the rootfs/ skeleton's plain files (not MANIFEST) into ROOT, with 0644/0755 modes.
image_copy_skeleton() { # SKELETON_DIR ROOT
    local f
    (cd "$1" && find . -type f ! -name MANIFEST -print0 | sort -z) | while IFS= read -r -d '' f; do
        mkdir -p "$2/$(dirname "$f")"
        cp "$1/$f" "$2/$f"
        if [ -x "$1/$f" ]; then chmod 0755 "$2/$f"; else chmod 0644 "$2/$f"; fi
    done
}

# The initramfs: newc cpio of DIR in sorted order, owners 0:0, times $E, xz with the crc32
# check the kernel's decompressor needs, single-threaded (reproducible), preset 0: the payload
# is mostly squashfs (already compressed), so higher presets cost minutes and save <1%.
image_initramfs() { # DIR OUTPUT
    image_normalize "$1"
    (cd "$1" && find . -mindepth 1 -print0 | sort -z \
        | cpio --null --create --format=newc --reproducible --owner=0:0 --quiet) \
        | xz --check=crc32 --threads=1 -0 >"$2"
}

# A BIOS + UEFI bootable ISO with GRUB (grub-mkrescue) booting KERNEL + INITRAMFS with CMDLINE
# (the serial console and the screen both get GRUB's menu).
image_iso() { # KERNEL INITRAMFS CMDLINE WORKDIR OUTPUT
    local s=$4/iso
    mkdir -p "$s/boot/grub"
    cp "$1" "$s/boot/vmlinuz"
    cp "$2" "$s/boot/initramfs.xz"
    cat >"$s/boot/grub/grub.cfg" <<GRUB
set default=0
set timeout=1
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
menuentry "Talos ISO" {
    linux /boot/vmlinuz $3
    initrd /boot/initramfs.xz
}
GRUB
    image_normalize "$s"
    if ! grub-mkrescue -o "$5" "$s" -- -volid TALOS >"$4/grub.log" 2>&1; then
        cat "$4/grub.log" >&2
        return 1
    fi
}
