//! Splits the input at the first NUL byte into a machine config and a patch, loads the patch and
//! applies it. Any input must give a result or an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use talos::config::patch;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (config, patch_text) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(p) = patch::load_patch(patch_text) else {
        return;
    };
    let _ = patch::apply_to_text(config, &[p]);
});
