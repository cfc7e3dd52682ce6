//! libFuzzer target `posting`: see `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)] // every target uses one function of the shared harness
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::posting(data));
