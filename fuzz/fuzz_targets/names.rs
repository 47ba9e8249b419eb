//! Fuzz target: the object-name, field-name and dict-key validators and `Filters::from_str`.
#![no_main]

#[path = "../common/targets.rs"]
#[expect(dead_code, reason = "each target uses part of the shared module")]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::names(data);
});
