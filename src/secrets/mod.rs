//! Secrets bundle and PKI.
