//! cargo-fuzz target: `sluice::fuzzing::request_decoder` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::request_decoder(data));
