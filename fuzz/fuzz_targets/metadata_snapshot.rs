//! cargo-fuzz target: `sluice::fuzzing::metadata_snapshot` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::metadata_snapshot(data));
