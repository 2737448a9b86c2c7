//! The fuzz targets of `fuzz/` on the stable toolchain, for CI: each target replays its
//! corpus (`fuzz/corpus/<target>/`: inputs cargo-fuzz found interesting and every input that
//! once crashed, kept as regressions) and the built-in seeds, then runs seeded random
//! mutations of them for a bounded time (`SLUICE_FUZZ_SECONDS` per target, default 10).
//! The mutation stream is fixed by `SLUICE_FUZZ_SEED` (default 1), so a failure replays.
//! A panicking input is written to the corpus directory and its hex printed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn budget() -> Duration {
    let seconds = std::env::var("SLUICE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(seconds)
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// xorshift64*, seeded: the same seed gives the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that sit on the edges parsers get wrong: lengths and counts at the limits, in the
/// classic (big-endian int) and varint forms.
const INTERESTING: &[&[u8]] = &[
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x80, 0, 0, 0],
    &[0, 0, 0, 0],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0x0d],
    &[0x7f, 0xff],
    &[0x80, 0x00],
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(6) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next() as u8;
            }
            2 => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(len + 1);
                let end = (at + value.len()).min(len);
                input.splice(at..end, value.iter().copied());
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            4 => {
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..=rng.below(8)).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                input.truncate(at);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
        }
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut inputs = sluice::fuzzing::seeds(target);
    if let Ok(entries) = std::fs::read_dir(corpus_dir(target)) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            inputs.push(std::fs::read(&path).expect("read corpus file"));
        }
    }
    inputs
}

fn run_one(target: &str, entry: fn(&[u8]), input: &[u8]) {
    let outcome = std::panic::catch_unwind(|| entry(input));
    if outcome.is_err() {
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("crash-{:016x}", fnv(input));
        let _ = std::fs::create_dir_all(corpus_dir(target));
        let _ = std::fs::write(corpus_dir(target).join(&name), input);
        panic!("{target} panicked on input {hex} (saved as fuzz/corpus/{target}/{name})");
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn fuzz(target: &str, entry: fn(&[u8])) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "{target} has no seeds");
    for input in &seeds {
        run_one(target, entry, input);
    }
    let seed = std::env::var("SLUICE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        run_one(target, entry, &input);
        runs += 1;
    }
    eprintln!(
        "{target}: {} corpus inputs, {runs} mutations (seed {seed})",
        seeds.len()
    );
    assert!(runs > 0, "{target} ran no mutation");
}

#[test]
fn fuzz_request_decoder() {
    fuzz("request_decoder", sluice::fuzzing::request_decoder);
}

#[test]
fn fuzz_produce_batches() {
    fuzz("produce_batches", sluice::fuzzing::produce_batches);
}

#[test]
fn fuzz_replicated_batches() {
    fuzz("replicated_batches", sluice::fuzzing::replicated_batches);
}

#[test]
fn fuzz_records_section() {
    fuzz("records_section", sluice::fuzzing::records_section);
}

#[test]
fn fuzz_coordinator_records() {
    fuzz("coordinator_records", sluice::fuzzing::coordinator_records);
}

#[test]
fn fuzz_segment_recovery() {
    fuzz("segment_recovery", sluice::fuzzing::segment_recovery);
}

#[test]
fn fuzz_controller_frame() {
    fuzz("controller_frame", sluice::fuzzing::controller_frame);
}

#[test]
fn fuzz_metadata_log_segment() {
    fuzz(
        "metadata_log_segment",
        sluice::fuzzing::metadata_log_segment,
    );
}

#[test]
fn fuzz_metadata_snapshot() {
    fuzz("metadata_snapshot", sluice::fuzzing::metadata_snapshot);
}

#[test]
fn fuzz_share_state() {
    fuzz("share_state", sluice::fuzzing::share_state);
}
