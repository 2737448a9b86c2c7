//! The lab run: OS checks, then the probe, then the sweeps within the remaining budget, then
//! CSVs, plots and report.md in one dated folder; and `redraw`, which rebuilds plots and report
//! from a folder's CSVs. Runs on the main thread (the sweeps start the sampler thread).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::host::{self, HostFacts};
use crate::knobs::{self, KnobRow};
use crate::probe::{self, ProbePlan, ProbeRow};
use crate::report::{self, RunData, RunMeta};
use crate::sampler::Sample;
use crate::sweep::run::{self as sweep_run, SweepConfig};
use crate::sweep::{SweepPlan, SweepRow};
use crate::{csvio, plot};

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Directory under test (the probe file and the brokers' data go here).
    pub data_dir: PathBuf,
    /// Run folder.
    pub out: PathBuf,
    /// Measured seconds per sweep phase.
    pub duration: Duration,
    /// Total time budget.
    pub budget: Duration,
    /// Small grids (CI and smoke runs).
    pub quick: bool,
    /// Probe time per cell.
    pub probe_cell: Duration,
    /// Probe file size.
    pub probe_file: u64,
    /// Read-only probing of a raw device.
    pub allow_raw_device: bool,
    /// `sluice`.
    pub sluice_bin: PathBuf,
    /// `sluice-perf`.
    pub perf_bin: PathBuf,
    /// tuning/check.
    pub check: PathBuf,
    /// Skip the probe.
    pub skip_probe: bool,
    /// Skip the sweeps.
    pub skip_sweeps: bool,
    /// Skip memory warming (tests only: the numbers are then not comparable).
    pub no_warm: bool,
    /// Sweep factors to run besides the baseline; empty: all.
    pub factors: Vec<String>,
    /// The command line, for the report.
    pub command: String,
}

/// Default run folder: tuning/runs/<UTC date>-<time>-<host> beside this crate.
pub fn default_out() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y-%m-%d-%H%M%S");
    let hostname = host::read_trim("/proc/sys/kernel/hostname").unwrap_or_else(|| "host".into());
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../runs/{stamp}-{hostname}"))
}

/// Runs the whole lab; returns the run folder.
pub fn run(o: &LabOptions, mut log: impl FnMut(&str)) -> Result<PathBuf> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&o.out).map_err(LabError::io("creating", &o.out))?;
    let meta = meta(o);
    write_json(&o.out.join("meta.json"), &meta)?;
    let knobs = knobs::run_check(&o.check, &o.data_dir).unwrap_or_else(|e| {
        log(&format!("tuning/check failed: {e}"));
        Vec::new()
    });
    csvio::write(&o.out.join("knobs.csv"), &knobs)?;
    let probe = if o.skip_probe {
        Vec::new()
    } else {
        run_probe(o, &mut log)?
    };
    csvio::write(&o.out.join("probe.csv"), &probe)?;
    let left = o.budget.saturating_sub(t0.elapsed());
    let (sweeps, samples) = if o.skip_sweeps {
        (Vec::new(), Vec::new())
    } else {
        run_sweeps(o, left, &mut log)?
    };
    csvio::write(&o.out.join("sweeps.csv"), &sweeps)?;
    csvio::write(&o.out.join("vmstat.csv"), &samples)?;
    render(&o.out, &meta, &knobs, &probe, &sweeps)?;
    log(&format!(
        "done in {:.0} s: {}",
        t0.elapsed().as_secs_f64(),
        o.out.join("report.md").display()
    ));
    Ok(o.out.clone())
}

fn meta(o: &LabOptions) -> RunMeta {
    let mem = host::read_trim("/proc/meminfo").unwrap_or_default();
    RunMeta {
        command: o.command.clone(),
        started: chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        host: HostFacts::of(&o.data_dir),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total_mib: host::proc_field(&mem, "MemTotal").unwrap_or(0) >> 10,
        data_dir: o.data_dir.display().to_string(),
        quick: o.quick,
        duration_s: o.duration.as_secs(),
        budget_s: o.budget.as_secs(),
        probe_cell_ms: o.probe_cell.as_millis() as u64,
        probe_file_mib: o.probe_file >> 20,
        commit: git_commit(),
    }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn run_probe(o: &LabOptions, log: &mut impl FnMut(&str)) -> Result<Vec<ProbeRow>> {
    let plan = if o.quick {
        ProbePlan::quick(o.probe_cell, o.probe_file)
    } else {
        ProbePlan::full(o.probe_cell, o.probe_file)
    };
    log(&format!(
        "probe: {} cells of {:?} on a {} MiB file in {}",
        plan.cells().len(),
        o.probe_cell,
        o.probe_file >> 20,
        o.data_dir.display()
    ));
    probe::run(&o.data_dir, &plan, o.allow_raw_device, |r| {
        log(&format!("  probe {}", r.summary()))
    })
}

fn run_sweeps(
    o: &LabOptions,
    budget: Duration,
    log: &mut impl FnMut(&str),
) -> Result<(Vec<SweepRow>, Vec<Sample>)> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = if o.quick {
        SweepPlan::quick()
    } else {
        SweepPlan::full(cpus)
    };
    let steps: Vec<_> = plan
        .steps()
        .into_iter()
        .filter(|s| {
            o.factors.is_empty()
                || s.factor == "baseline"
                || o.factors.iter().any(|f| f == s.factor)
        })
        .collect();
    let secs = o.duration.as_secs().max(1);
    let cfg = SweepConfig {
        sluice_bin: o.sluice_bin.clone(),
        perf_bin: o.perf_bin.clone(),
        data_dir: o.data_dir.clone(),
        out_dir: o.out.clone(),
        warmup_s: (secs / 5).clamp(1, 2),
        duration_s: secs,
        cpus,
        sample_every: Duration::from_millis(250),
        warm: !o.no_warm,
        settle_s: if o.quick || o.no_warm { 0 } else { 30 },
    };
    log(&format!(
        "sweeps: {} steps, about {:?} each, {:?} of budget left",
        steps.len(),
        cfg.step_estimate(),
        budget
    ));
    let res = sweep_run::run_all(&cfg, &steps, budget, |r| {
        log(&format!(
            "  sweep {:<20} {:<16} {:<10} {:<7} {:>8.1} MB/s p99 {:>8.2} ms broker {:>3.0}% client {:>3.0}% dirty max {:>6} KiB {}",
            r.factor,
            r.label,
            r.phase,
            r.status,
            r.mb_per_sec,
            r.p99_ms,
            r.broker_cpu_util * 100.0,
            r.client_cpu_util * 100.0,
            r.dirty_max_kib,
            r.note
        ))
    })?;
    Ok((res.rows, res.samples))
}

/// Draws the plots and writes report.md from the rows.
pub fn render(
    out: &Path,
    meta: &RunMeta,
    knobs: &[KnobRow],
    probe: &[ProbeRow],
    sweeps: &[SweepRow],
) -> Result<()> {
    let plots = plot::draw_all(out, probe, sweeps)?;
    let names: Vec<String> = plots
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let md = report::render(&RunData {
        meta,
        knobs,
        probe,
        sweeps,
        plots: &names,
    });
    let path = out.join("report.md");
    std::fs::write(&path, md).map_err(LabError::io("writing", path))
}

/// Rebuilds plots and report.md of a run folder from its CSVs and meta.json.
pub fn redraw(out: &Path) -> Result<()> {
    let path = out.join("meta.json");
    let text = std::fs::read_to_string(&path).map_err(LabError::io("reading", &path))?;
    let meta: RunMeta =
        serde_json::from_str(&text).map_err(|source| LabError::Json { path, source })?;
    let knobs: Vec<KnobRow> = csvio::read(&out.join("knobs.csv"))?;
    let probe: Vec<ProbeRow> = csvio::read(&out.join("probe.csv"))?;
    let sweeps: Vec<SweepRow> = csvio::read(&out.join("sweeps.csv"))?;
    render(out, &meta, &knobs, &probe, &sweeps)
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|source| LabError::Json {
        path: path.into(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(LabError::io("writing", path))
}
