//! cargo-fuzz target: `sluice::fuzzing::segment_recovery` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::segment_recovery(data));
