//! cargo-fuzz target: `sluice::fuzzing::replicated_batches` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::replicated_batches(data));
