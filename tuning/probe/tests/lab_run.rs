//! End to end on this machine, as CI runs it: `sluice-lab run --quick` against the debug
//! `sluice` and `sluice-perf` (tests/run-all.sh builds them with `cargo build --bins`) on a
//! temporary data dir, a few seconds per step; the run folder is parsed: CSV columns and value
//! ranges, SVGs, report sections, the server.properties snippet, and nothing left behind.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// A binary of another package of the workspace: $SLUICE_BIN for the broker (as the rest of
/// the suite uses), else beside this package's binary in the same target dir.
fn workspace_bin(name: &str) -> PathBuf {
    if name == "sluice"
        && let Ok(p) = std::env::var("SLUICE_BIN")
    {
        return PathBuf::from(p);
    }
    let me = PathBuf::from(env!("CARGO_BIN_EXE_sluice-lab"));
    let p = me.parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --bins` first (tests/run-all.sh does)",
        p.display()
    );
    p
}

#[test]
fn quick_lab_run_writes_a_well_formed_report() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_sluice-lab"))
        .arg("run")
        .arg("--data-dir")
        .arg(data.path())
        .arg("--out")
        .arg(&run)
        .args([
            "--quick",
            "--duration",
            "1s",
            "--budget",
            "3m",
            "--probe-cell",
            "50ms",
            "--probe-file-mib",
            "8",
        ])
        .arg("--sluice-bin")
        .arg(workspace_bin("sluice"))
        .arg("--perf-bin")
        .arg(workspace_bin("sluice-perf"))
        .status()
        .unwrap();
    assert!(status.success());

    let probe = common::check_probe_csv(&run);
    assert!(
        probe
            .iter()
            .any(|r| r.sweep == "ring" && r.ring == "sqpoll")
    );
    let sweeps = common::check_sweeps_csv(&run);
    let ok: Vec<_> = sweeps.iter().filter(|r| r.status == "ok").collect();
    assert!(ok.len() >= 4, "most quick steps must measure: {sweeps:?}");
    assert!(
        ok.iter().any(|r| r.factor == "segment_bytes")
            && ok.iter().any(|r| r.flush == "flush.messages=1")
            && ok
                .iter()
                .any(|r| r.factor == "log_io" && r.log_io == "direct"),
        "the quick plan measures segment sizes, a flush policy and the O_DIRECT log"
    );
    common::check_knobs_csv(&run);
    let samples = std::fs::read_to_string(run.join("vmstat.csv")).unwrap();
    assert!(
        samples.starts_with("step,t_s,dirty_kib,writeback_kib,nr_dirty,nr_writeback,mem_free_kib")
    );
    assert!(samples.lines().count() > 6);

    for svg in [
        "probe-block-size.svg",
        "probe-queue-depth.svg",
        "sweep-segment-bytes.svg",
        "sweep-flush.svg",
        "sweep-log-io.svg",
        "roofline.svg",
    ] {
        common::check_svg(&run.join(svg));
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    common::check_report(&md);

    // Only files the lab made, and none of them left in the data dir.
    let left: Vec<_> = std::fs::read_dir(data.path()).unwrap().collect();
    assert!(left.is_empty(), "left in the data dir: {left:?}");
}

#[test]
fn probe_refuses_a_raw_device() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-lab"))
        .args([
            "probe",
            "--data-dir",
            "/dev/null",
            "--quick",
            "--cell",
            "10ms",
            "--file-mib",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("raw device") && err.contains("--allow-raw-device"),
        "{err}"
    );
}
