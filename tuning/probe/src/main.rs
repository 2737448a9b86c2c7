//! `sluice-lab`: the tuning lab's command line (`run`, `probe`, `redraw`). Runs on the main
//! thread; `tuning/lab` builds it in release mode and calls `sluice-lab run`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sluice_tuning::error::LabError;
use sluice_tuning::lab::{self, LabOptions};
use sluice_tuning::probe::{self, ProbePlan};
use sluice_tuning::{csvio, knobs};

#[derive(Parser)]
#[command(
    name = "sluice-lab",
    about = "Finds what limits this host and how to set Sluice on it"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The probe, the OS checks and the sweeps, into one dated folder with plots and report.md.
    Run(RunArgs),
    /// The device probe alone, as CSV.
    Probe(ProbeArgs),
    /// Redraw the plots and report.md of a run folder from its CSVs.
    Redraw {
        /// The run folder.
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Directory under test: the probe's file and the brokers' data go here (never touched
    /// otherwise).
    #[arg(long)]
    data_dir: PathBuf,
    /// Measured time per sweep phase (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Run folder (default tuning/runs/<date>-<time>-<host>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Total time budget; sweep steps that no longer fit are recorded as skipped (default:
    /// 60m, quick 5m).
    #[arg(long, value_parser = humantime::parse_duration)]
    budget: Option<Duration>,
    /// Small grids for CI and smoke runs.
    #[arg(long)]
    quick: bool,
    /// Probe time per cell (default 2s, quick 200ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    probe_cell: Option<Duration>,
    /// Probe file size in MiB (default 1024, quick 32).
    #[arg(long)]
    probe_file_mib: Option<u64>,
    /// Allow --data-dir to be a raw device, probed read-only (the sweeps are then skipped).
    #[arg(long)]
    allow_raw_device: bool,
    /// `sluice` binary (default: next to this one).
    #[arg(long)]
    sluice_bin: Option<PathBuf>,
    /// `sluice-perf` binary (default: next to this one).
    #[arg(long)]
    perf_bin: Option<PathBuf>,
    /// tuning/check script.
    #[arg(long)]
    check: Option<PathBuf>,
    /// Skip the device probe.
    #[arg(long)]
    skip_probe: bool,
    /// Skip the Sluice sweeps.
    #[arg(long)]
    skip_sweeps: bool,
    /// Do not warm memory before steps (faster; numbers not comparable: tests only).
    #[arg(long)]
    no_warm: bool,
    /// Only these sweep factors besides the baseline (comma-separated, e.g. log_io,flush);
    /// default: all of them.
    #[arg(long, value_delimiter = ',')]
    factors: Vec<String>,
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// Directory to probe (a file of the probe's own is created and deleted there).
    #[arg(long)]
    data_dir: PathBuf,
    /// CSV output (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Small grid.
    #[arg(long)]
    quick: bool,
    /// Time per cell.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    cell: Duration,
    /// Probe file size in MiB.
    #[arg(long, default_value_t = 1024)]
    file_mib: u64,
    /// Allow a raw device, probed read-only.
    #[arg(long)]
    allow_raw_device: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Probe(a) => run_probe(a),
        Cmd::Redraw { dir } => lab::redraw(&dir),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-lab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn beside_me(name: &str) -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.parent()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(a: RunArgs) -> Result<(), LabError> {
    if !a.data_dir.exists() {
        // An empty directory the lab then works in; nothing that existed is touched.
        std::fs::create_dir_all(&a.data_dir).map_err(LabError::io("creating", &a.data_dir))?;
    }
    let raw = std::fs::metadata(&a.data_dir)
        .map(|m| !m.is_dir())
        .unwrap_or(false);
    let o = LabOptions {
        out: a.out.unwrap_or_else(lab::default_out),
        duration: a.duration,
        budget: a
            .budget
            .unwrap_or(Duration::from_secs(if a.quick { 300 } else { 3600 })),
        quick: a.quick,
        probe_cell: a
            .probe_cell
            .unwrap_or(Duration::from_millis(if a.quick { 200 } else { 2000 })),
        probe_file: a.probe_file_mib.unwrap_or(if a.quick { 32 } else { 1024 }) << 20,
        allow_raw_device: a.allow_raw_device,
        sluice_bin: a.sluice_bin.unwrap_or_else(|| beside_me("sluice")),
        perf_bin: a.perf_bin.unwrap_or_else(|| beside_me("sluice-perf")),
        check: a.check.unwrap_or_else(knobs::default_check_path),
        skip_probe: a.skip_probe,
        // A raw device has no directory for brokers' data.
        skip_sweeps: a.skip_sweeps || raw,
        no_warm: a.no_warm,
        factors: a.factors,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        data_dir: a.data_dir,
    };
    lab::run(&o, |line| eprintln!("{line}")).map(|_| ())
}

fn run_probe(a: ProbeArgs) -> Result<(), LabError> {
    let size = a.file_mib << 20;
    let plan = if a.quick {
        ProbePlan::quick(a.cell, size)
    } else {
        ProbePlan::full(a.cell, size)
    };
    let rows = probe::run(&a.data_dir, &plan, a.allow_raw_device, |r| {
        eprintln!("{}", r.summary())
    })?;
    match a.out {
        Some(p) => csvio::write(&p, &rows),
        None => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            for r in &rows {
                w.serialize(r).map_err(|source| LabError::Csv {
                    path: "stdout".into(),
                    source,
                })?;
            }
            w.flush().map_err(LabError::io("writing", "stdout"))
        }
    }
}
