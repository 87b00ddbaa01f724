//! Thin wrappers over syscalls and kernel interfaces; the only place for `unsafe`.
