//! Fuzz target: any bytes, written to a file, then opened and loaded every way h5pom can
//! (generic, by tag, typed, lazily read arrays, ECS world). Must never panic or crash.
#![no_main]

#[path = "../common/targets.rs"]
#[expect(dead_code, reason = "each target uses part of the shared module")]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = targets::load_bytes(data);
});
