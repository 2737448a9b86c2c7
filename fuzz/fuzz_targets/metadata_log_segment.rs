//! cargo-fuzz target: `sluice::fuzzing::metadata_log_segment` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::metadata_log_segment(data));
