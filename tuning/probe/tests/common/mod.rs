//! Checks shared by the lab's integration tests: a run folder's CSVs, SVGs and report.md are
//! parsed, not just found. Runs on the test threads.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use sluice_tuning::csvio;
use sluice_tuning::knobs::KnobRow;
use sluice_tuning::probe::ProbeRow;
use sluice_tuning::sweep::SweepRow;

/// The report's sections, in order; the last is the server.properties snippet.
pub const SECTIONS: [&str; 8] = [
    "## Host",
    "## OS knobs (read-only: nothing was changed)",
    "## Device (io_uring probe)",
    "## Sluice sweeps (sluice-perf, acks=all)",
    "## Roofline: Sluice against the device",
    "## Limits each figure hits",
    "## Recommended server.properties",
    "```properties",
];

/// Parses an SVG, checks it is one and has text and drawn lines; returns its texts.
pub fn check_svg(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{}", path.display());
    let width: f64 = root.attribute("width").unwrap().parse().unwrap();
    assert!(width >= 800.0, "{}", path.display());
    let lines = doc
        .descendants()
        .filter(|n| ["polyline", "path", "line"].contains(&n.tag_name().name()))
        .count();
    assert!(lines > 5, "{}: {lines} lines", path.display());
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    assert!(texts.len() > 5, "{}: {texts:?}", path.display());
    texts
}

/// Checks report.md's sections and returns the server.properties snippet as key -> value.
pub fn check_report(md: &str) -> BTreeMap<String, String> {
    let mut at = 0;
    for s in SECTIONS {
        let i = md[at..]
            .find(s)
            .unwrap_or_else(|| panic!("section {s:?} missing or out of order"));
        at += i + s.len();
    }
    let snippet = &md[at..];
    let end = snippet.find("```").expect("snippet closed");
    assert!(
        snippet[end + 3..].trim().is_empty(),
        "the report must end with the snippet"
    );
    let mut props = BTreeMap::new();
    for line in snippet[..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        assert!(
            !k.is_empty() && !k.contains(' ') && !v.is_empty() && !v.contains(' '),
            "{line}"
        );
        props.insert(k.to_string(), v.to_string());
    }
    for key in [
        "log.segment.bytes",
        "sluice.log.writeback.bytes",
        "sluice.cores",
        "num.partitions",
    ] {
        let v = props
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from {props:?}"));
        let n: u64 = v
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a number"));
        if key != "sluice.log.writeback.bytes" {
            assert!(n >= 1, "{key}={v}");
        }
    }
    let io = props
        .get("sluice.log.io")
        .expect("sluice.log.io recommended");
    assert!(io == "page-cache" || io == "direct", "sluice.log.io={io}");
    props
}

/// Reads and range-checks probe.csv.
pub fn check_probe_csv(dir: &Path) -> Vec<ProbeRow> {
    let rows: Vec<ProbeRow> = csvio::read(&dir.join("probe.csv")).unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(
            ["ok", "unsupported", "skipped", "error"].contains(&r.status.as_str()),
            "{r:?}"
        );
        assert!(
            ["block_size", "queue_depth", "registered", "ring", "fsync"]
                .contains(&r.sweep.as_str()),
            "{r:?}"
        );
        assert!(
            ["direct", "buffered"].contains(&r.io_mode.as_str()),
            "{r:?}"
        );
        assert!(
            !r.kernel.is_empty() && !r.filesystem.is_empty() && !r.scheduler.is_empty(),
            "{r:?}"
        );
        assert!(
            r.block_size >= 512 && r.block_size <= 16 << 20 && r.queue_depth >= 1,
            "{r:?}"
        );
        if r.status == "ok" {
            assert!(r.seconds > 0.0 && r.ops > 0 && r.iops > 0.0, "{r:?}");
            assert!(r.mb_per_sec > 0.0 && r.mb_per_sec < 1e6, "{r:?}");
            assert!(
                r.p50_us >= 1.0
                    && r.p50_us <= r.p99_us
                    && r.p99_us <= r.p999_us
                    && r.p999_us <= r.max_us * 1.01,
                "{r:?}"
            );
        } else {
            assert!(!r.note.is_empty(), "a cell not measured says why: {r:?}");
        }
    }
    let ok = |w: &str| rows.iter().any(|r| r.workload == w && r.status == "ok");
    for w in ["seq_write", "rand_read", "fsync_idle", "fsync_under_load"] {
        assert!(ok(w), "{w} never measured");
    }
    rows
}

/// Reads and range-checks sweeps.csv.
pub fn check_sweeps_csv(dir: &Path) -> Vec<SweepRow> {
    let rows: Vec<SweepRow> = csvio::read(&dir.join("sweeps.csv")).unwrap();
    assert!(
        rows.len() >= 2 && rows.len().is_multiple_of(2),
        "{}",
        rows.len()
    );
    assert_eq!(rows[0].factor, "baseline");
    for r in &rows {
        assert!(
            ["throughput", "latency"].contains(&r.phase.as_str()),
            "{r:?}"
        );
        assert!(
            ["ok", "error", "skipped"].contains(&r.status.as_str()),
            "{r:?}"
        );
        if r.status != "ok" {
            continue;
        }
        assert!(r.msgs_per_sec > 0.0 && r.mb_per_sec > 0.0, "{r:?}");
        let bytes = r.msgs_per_sec * r.record_size as f64 / 1e6;
        assert!(
            (bytes - r.mb_per_sec).abs() <= 0.05 * r.mb_per_sec + 0.01,
            "{r:?}"
        );
        assert!(
            r.p50_ms > 0.0 && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms * 1.01,
            "{r:?}"
        );
        assert!(
            (0.0..=1.5).contains(&r.broker_cpu_util) && (0.0..=1.5).contains(&r.client_cpu_util),
            "{r:?}"
        );
        assert!(r.dirty_max_kib >= r.dirty_mean_kib, "{r:?}");
        assert!(
            r.mem_state.starts_with("warm: ") || r.mem_state.starts_with("cold"),
            "{r:?}"
        );
        assert!(r.mem_free_mib > 0, "{r:?}");
        assert_eq!(r.target_rate == "max", r.phase == "throughput", "{r:?}");
    }
    rows
}

/// Reads knobs.csv: every check says how to change it.
pub fn check_knobs_csv(dir: &Path) -> Vec<KnobRow> {
    let rows: Vec<KnobRow> = csvio::read(&dir.join("knobs.csv")).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.check.as_str()).collect();
    for want in [
        "dirty background writeback",
        "dirty expiry",
        "disk scheduler",
        "read-ahead",
        "disk IRQ affinity",
        "CPU affinity",
        "transparent huge pages",
        "cpu governor",
        "open files limit",
        "memlock limit",
        "VM memory (free page reporting)",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for r in &rows {
        assert!(!r.change.is_empty(), "{r:?}");
        assert!(["ok", "warn", "info"].contains(&r.status.as_str()), "{r:?}");
    }
    rows
}
