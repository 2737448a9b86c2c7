//! cargo-fuzz target: `sluice::fuzzing::metadata_log_segment` on every input.
//!
//! Each input opens a log store and a state machine, each with its own flusher thread that
//! exits once they are dropped; LeakSanitizer now and then catches such a thread mid-exit and
//! reports its TLS destructor list (32 bytes from `__cxa_thread_atexit_impl`) as a leak. Run
//! with `-detect_leaks=0` when that shows up.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::metadata_log_segment(data));
