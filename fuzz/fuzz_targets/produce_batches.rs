//! cargo-fuzz target: `sluice::fuzzing::produce_batches` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::produce_batches(data));
