//! cargo-fuzz target: `sluice::fuzzing::coordinator_records` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::coordinator_records(data));
