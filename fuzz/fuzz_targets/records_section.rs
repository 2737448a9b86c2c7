//! cargo-fuzz target: `sluice::fuzzing::records_section` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::records_section(data));
