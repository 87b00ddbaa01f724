//! Fuzz target: loading arbitrary bytes as a machine config must never panic, and whatever loads
//! must serialize and load again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = talos::config::Config::from_yaml(data, "fuzz") {
        let _ = cfg.validate(talos::config::Mode::Metal, true);
        if let Ok(text) = cfg.to_yaml() {
            let _ = talos::config::Config::from_yaml(text.as_bytes(), "fuzz-roundtrip");
        }
    }
});
