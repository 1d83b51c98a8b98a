//! The linux.seccomp translation must never panic, and what it compiles must fit the kernel.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(program) = hull::seccomp::compile_json(text) {
        for filter in &program.filters {
            assert!(
                !filter.is_empty() && filter.len() <= 4096,
                "filter of {} instructions",
                filter.len()
            );
        }
    }
});
