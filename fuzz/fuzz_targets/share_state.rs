//! cargo-fuzz target: `sluice::fuzzing::share_state` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::share_state(data));
