################################################################################
#
# talos-rs: built from this source tree (the directory above buildroot-overlay/)
#
################################################################################

TALOS_RS_VERSION = local
TALOS_RS_SITE = $(BR2_EXTERNAL_TALOS_RS_PATH)/..
TALOS_RS_SITE_METHOD = local
TALOS_RS_LICENSE = MPL-2.0
TALOS_RS_LICENSE_FILES = LICENSE
# Keep the copy of the source tree small: no build outputs.
TALOS_RS_RSYNC_EXCLUDE = --exclude target --exclude _out --exclude .git

# cargo-package builds with the buildroot toolchain (musl: a static binary) and installs it.
define TALOS_RS_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/release/talos \
		$(TARGET_DIR)/sbin/init
endef

$(eval $(cargo-package))
