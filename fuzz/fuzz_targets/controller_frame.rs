//! cargo-fuzz target: `sluice::fuzzing::controller_frame` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::controller_frame(data));
