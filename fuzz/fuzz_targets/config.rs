//! config.json parsing must never panic, whatever the bytes: only Ok or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hull::runtime::spec::parse(text);
    }
});
