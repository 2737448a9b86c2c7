//! The plotting and report code on fixed CSVs (tests/fixtures): every SVG parses and carries
//! its titles and labels, and report.md has its sections and a server.properties snippet that
//! parses as key=value.

mod common;

use std::path::{Path, PathBuf};

use sluice_tuning::lab;

fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    for f in ["probe.csv", "sweeps.csv", "knobs.csv", "meta.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let dir = tmp.path().to_path_buf();
    (tmp, dir)
}

fn svgs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    v.sort();
    v
}

#[test]
fn quick_run_fixture_draws_and_reports() {
    let (_tmp, dir) = fixture_copy("run");
    lab::redraw(&dir).unwrap();
    assert_eq!(
        svgs(&dir),
        [
            "probe-block-size.svg",
            "probe-queue-depth.svg",
            "roofline.svg",
            "sweep-flush.svg",
            "sweep-segment-bytes.svg"
        ]
    );
    let texts = common::check_svg(&dir.join("probe-block-size.svg"));
    assert!(
        texts.iter().any(|t| t.contains("by block size")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "4KiB") && texts.iter().any(|t| t == "64KiB"),
        "{texts:?}"
    );
    let texts = common::check_svg(&dir.join("sweep-segment-bytes.svg"));
    assert!(
        texts.iter().any(|t| t == "16MiB") && texts.iter().any(|t| t == "1GiB"),
        "{texts:?}"
    );
    let texts = common::check_svg(&dir.join("roofline.svg"));
    assert!(
        texts.iter().any(|t| t.starts_with("Sluice best step")),
        "{texts:?}"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let props = common::check_report(&md);
    // Fixture: 1 GiB segments beat 16 MiB (105 vs 52 MB/s).
    assert_eq!(props["log.segment.bytes"], "1073741824");
    for svg in svgs(&dir) {
        assert!(
            md.contains(&format!("- `{svg}`: ")),
            "no limit line for {svg}"
        );
        assert!(md.contains(&format!("]({svg})")), "{svg} not shown");
    }
}

#[test]
fn full_plan_fixture_draws_every_factor() {
    let (_tmp, dir) = fixture_copy("full");
    lab::redraw(&dir).unwrap();
    let names = svgs(&dir);
    for f in [
        "segment-bytes",
        "flush",
        "writeback-bytes",
        "shards",
        "record-size",
        "partitions-per-shard",
        "producers",
        "linger-ms",
        "log-io",
    ] {
        let svg = format!("sweep-{f}.svg");
        assert!(names.contains(&svg), "{svg} missing from {names:?}");
        common::check_svg(&dir.join(&svg));
    }
    let texts = common::check_svg(&dir.join("sweep-linger-ms.svg"));
    for label in ["0", "1", "5", "20"] {
        assert!(
            texts.iter().any(|t| t == label),
            "linger {label} not on the axis: {texts:?}"
        );
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    common::check_report(&md);
    assert!(
        md.contains("# log_io: direct ran at 0.90 of the page cache's throughput")
            && md.contains("sluice.log.io=page-cache"),
        "the O_DIRECT A/B is not in the recommendation"
    );
    assert!(
        md.contains("- linger_ms 50 throughput: skipped (time budget spent)"),
        "skipped step not listed"
    );
    assert!(md.contains("### partitions_per_shard"));
}
