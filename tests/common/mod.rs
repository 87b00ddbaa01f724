//! Helpers shared by the integration tests.
//!
//! Talos's own test data (the v1.7.0 conformance set) is never copied into this repository; tests
//! read it in place from the shared directory and skip themselves when it is not there.

#![allow(
    dead_code,
    reason = "shared by several integration test crates, each of which uses only some helpers"
)]

use std::path::PathBuf;

/// The conformance configs directory: `$TALOS_SHARED/conformance/talos-v1.7.0/configs/` when
/// `TALOS_SHARED` is set, else `../shared/conformance/talos-v1.7.0/configs/` beside the crate.
pub fn conformance_dir() -> PathBuf {
    let shared = match std::env::var_os("TALOS_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    shared.join("conformance/talos-v1.7.0/configs")
}

/// The path of conformance file `name`, or `None` when it does not exist.
pub fn conformance_file(name: &str) -> Option<PathBuf> {
    let path = conformance_dir().join(name);
    path.is_file().then_some(path)
}

/// The paths of all the conformance files `names`; when one is missing, prints the skip notice
/// for `test` on stderr and returns `None` (the caller then returns without failing).
pub fn conformance_files<const N: usize>(test: &str, names: [&str; N]) -> Option<[PathBuf; N]> {
    let mut out: [PathBuf; N] = std::array::from_fn(|_| PathBuf::new());
    for (slot, name) in out.iter_mut().zip(names) {
        match conformance_file(name) {
            Some(path) => *slot = path,
            None => {
                skip(test);
                return None;
            }
        }
    }
    Some(out)
}

/// Prints the notice a test gives when it returns early for lack of conformance data.
pub fn skip(test: &str) {
    eprintln!("SKIPPED: {test}: conformance data not found (set TALOS_SHARED)");
}

/// Reads a file the test needs, panicking with its path on failure.
pub fn read_to_string(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
