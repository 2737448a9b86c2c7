//! Writes the built-in seeds of every fuzz target (`sluice::fuzzing::seeds`) to
//! `fuzz/seeds/<target>/`, the starting inputs for a cargo-fuzz run:
//!
//! ```sh
//! cargo run --example fuzz_seeds
//! cd fuzz && cargo +nightly fuzz run request_decoder corpus/request_decoder seeds/request_decoder
//! ```

const TARGETS: [&str; 8] = [
    "request_decoder",
    "produce_batches",
    "records_section",
    "coordinator_records",
    "segment_recovery",
    "controller_frame",
    "metadata_log_segment",
    "metadata_snapshot",
];

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for target in TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds = sluice::fuzzing::seeds(target);
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:04}")), seed)?;
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}
