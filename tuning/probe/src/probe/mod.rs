//! The device probe: plans the grid of cells (block size x queue depth, buffered vs O_DIRECT,
//! registered buffers and files, SQPOLL and IOPOLL, fdatasync), runs each for its time budget
//! on its own io_uring against a file the probe created, and turns each into a CSV row.
//! Runs on the lab's main thread, one cell at a time, so cells never compete with each other.

pub mod engine;
pub mod target;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::host::HostFacts;
use engine::{CellError, CellSpec, Measured, RingMode, Workload};
use target::ProbeTarget;

/// Which values the probe sweeps and for how long.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// Block sizes of the block-size sweep.
    pub block_sizes: Vec<usize>,
    /// Queue depth the block-size sweep runs at.
    pub bs_sweep_qd: usize,
    /// Queue depths of the queue-depth sweep.
    pub queue_depths: Vec<usize>,
    /// Block size of sequential cells in the queue-depth sweep (random ones use 4 KiB).
    pub qd_sweep_seq_bs: usize,
    /// Time budget per cell.
    pub cell: Duration,
    /// Size of the probe file.
    pub file_size: u64,
}

impl ProbePlan {
    /// The full grid: about 70 cells.
    pub fn full(cell: Duration, file_size: u64) -> Self {
        Self {
            block_sizes: vec![4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20],
            bs_sweep_qd: 16,
            queue_depths: vec![1, 4, 16, 64],
            qd_sweep_seq_bs: 128 << 10,
            cell,
            file_size,
        }
    }

    /// A small grid for CI and smoke runs: about 30 cells.
    pub fn quick(cell: Duration, file_size: u64) -> Self {
        Self {
            block_sizes: vec![4 << 10, 64 << 10],
            bs_sweep_qd: 8,
            queue_depths: vec![1, 8],
            qd_sweep_seq_bs: 64 << 10,
            cell,
            file_size,
        }
    }

    /// Every cell, tagged with the sweep it belongs to; no duplicates within a sweep (a cell
    /// may appear in two sweeps, so each sweep's plot has all its points).
    pub fn cells(&self) -> Vec<(&'static str, CellSpec)> {
        let mut out: Vec<(&'static str, CellSpec)> = Vec::new();
        let mut add = |sweep, spec: CellSpec| {
            if !out.iter().any(|(w, s)| *w == sweep && *s == spec) {
                out.push((sweep, spec));
            }
        };
        let rw = [
            Workload::SeqWrite,
            Workload::RandWrite,
            Workload::SeqRead,
            Workload::RandRead,
        ];
        for direct in [true, false] {
            for &bs in &self.block_sizes {
                for w in rw {
                    add("block_size", plain(w, direct, bs, self.bs_sweep_qd));
                }
            }
        }
        for &qd in &self.queue_depths {
            for w in rw {
                let bs = if matches!(w, Workload::SeqWrite | Workload::SeqRead) {
                    self.qd_sweep_seq_bs
                } else {
                    4 << 10
                };
                add("queue_depth", plain(w, true, bs, qd));
            }
        }
        let qd = self.bs_sweep_qd;
        for w in [Workload::RandRead, Workload::RandWrite] {
            for (rb, rf) in [(true, false), (false, true), (true, true)] {
                add(
                    "registered",
                    CellSpec {
                        reg_buffers: rb,
                        reg_files: rf,
                        ..plain(w, true, 4096, qd)
                    },
                );
            }
            for ring in [RingMode::Sqpoll, RingMode::Iopoll] {
                add(
                    "ring",
                    CellSpec {
                        ring,
                        reg_files: true,
                        ..plain(w, true, 4096, qd)
                    },
                );
            }
        }
        add("fsync", plain(Workload::FsyncIdle, false, 4096, 1));
        add("fsync", plain(Workload::FsyncUnderLoad, false, 64 << 10, 4));
        out
    }
}

fn plain(workload: Workload, direct: bool, block_size: usize, queue_depth: usize) -> CellSpec {
    CellSpec {
        workload,
        direct,
        ring: RingMode::Default,
        reg_buffers: false,
        reg_files: false,
        block_size,
        queue_depth,
    }
}

/// One CSV row of `probe.csv`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeRow {
    /// `uname -r`.
    pub kernel: String,
    /// Whole-disk name.
    pub device: String,
    /// Model string.
    pub device_model: String,
    /// Active I/O scheduler.
    pub scheduler: String,
    /// Filesystem of the data directory.
    pub filesystem: String,
    /// Which sweep the cell belongs to: block_size, queue_depth, registered, ring, fsync.
    pub sweep: String,
    /// seq_write, rand_write, seq_read, rand_read, fsync_idle, fsync_under_load.
    pub workload: String,
    /// direct or buffered.
    pub io_mode: String,
    /// default, sqpoll, iopoll.
    pub ring: String,
    /// Registered (fixed) buffers.
    pub reg_buffers: bool,
    /// Registered (fixed) file.
    pub reg_files: bool,
    /// Bytes per operation.
    pub block_size: u64,
    /// Operations in flight.
    pub queue_depth: u64,
    /// ok, unsupported, skipped or error.
    pub status: String,
    /// Why a cell is not ok, or what its columns mean when they differ from the rest.
    pub note: String,
    /// Timed loop length.
    pub seconds: f64,
    /// Operations completed (fsync cells: fdatasyncs).
    pub ops: u64,
    /// Operations per second.
    pub iops: f64,
    /// 10^6 bytes per second, the closing fdatasync of write cells included.
    pub mb_per_sec: f64,
    /// Latency percentiles in microseconds (fsync cells: of the fdatasyncs).
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
    /// The closing fdatasync of write cells, ms.
    pub sync_ms: f64,
}

fn name<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl ProbeRow {
    fn base(facts: &HostFacts, sweep: &str, spec: &CellSpec) -> Self {
        Self {
            kernel: facts.kernel.clone(),
            device: facts.device.clone(),
            device_model: facts.device_model.clone(),
            scheduler: facts.scheduler.clone(),
            filesystem: facts.filesystem.clone(),
            sweep: sweep.into(),
            workload: name(spec.workload),
            io_mode: if spec.direct { "direct" } else { "buffered" }.into(),
            ring: name(spec.ring),
            reg_buffers: spec.reg_buffers,
            reg_files: spec.reg_files,
            block_size: spec.block_size as u64,
            queue_depth: spec.queue_depth as u64,
            status: "ok".into(),
            note: String::new(),
            seconds: 0.0,
            ops: 0,
            iops: 0.0,
            mb_per_sec: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            max_us: 0.0,
            sync_ms: 0.0,
        }
    }

    fn measured(mut self, m: &Measured) -> Self {
        let h = &m.latency_us;
        let with_sync = m.seconds + m.sync_ms / 1e3;
        self.seconds = m.seconds;
        self.ops = m.ops;
        self.iops = m.ops as f64 / m.seconds.max(1e-9);
        self.mb_per_sec = m.bytes as f64 / 1e6 / with_sync.max(1e-9);
        self.p50_us = h.value_at_quantile(0.50) as f64;
        self.p99_us = h.value_at_quantile(0.99) as f64;
        self.p999_us = h.value_at_quantile(0.999) as f64;
        self.max_us = h.max() as f64;
        self.sync_ms = m.sync_ms;
        self
    }

    /// One line for progress output.
    pub fn summary(&self) -> String {
        format!(
            "{:<11} {:<16} {:<8} {:<7} bs {:>7} qd {:>3}: {:<11} {:>8.1} MB/s {:>9.0} IOPS p99 {:>7.0} us {}",
            self.sweep,
            self.workload,
            self.io_mode,
            self.ring,
            self.block_size,
            self.queue_depth,
            self.status,
            self.mb_per_sec,
            self.iops,
            self.p99_us,
            self.note
        )
    }

    fn not_run(mut self, status: &str, note: String) -> Self {
        self.status = status.into();
        self.note = note;
        self
    }
}

/// Runs the whole plan against a file of its own in `dir` (or read-only against a raw device
/// when `allow_raw_device`), calling `progress` after each cell; the file is deleted at the end.
pub fn run(
    dir: &Path,
    plan: &ProbePlan,
    allow_raw_device: bool,
    mut progress: impl FnMut(&ProbeRow),
) -> Result<Vec<ProbeRow>> {
    let target = ProbeTarget::prepare(dir, plan.file_size, allow_raw_device)?;
    let facts = HostFacts::of(dir);
    let mut rows = Vec::new();
    for (sweep, spec) in plan.cells() {
        let row = run_one(&target, &facts, sweep, spec, plan.cell);
        progress(&row);
        rows.push(row);
    }
    Ok(rows)
}

fn run_one(
    target: &ProbeTarget,
    facts: &HostFacts,
    sweep: &str,
    spec: CellSpec,
    budget: Duration,
) -> ProbeRow {
    let row = ProbeRow::base(facts, sweep, &spec);
    if target.is_raw_device() && spec.workload.writes() {
        return row.not_run("skipped", "raw device: the probe only reads it".into());
    }
    let file = match target.open(spec.direct) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return row.not_run("unsupported", format!("O_DIRECT open: {e}"));
        }
        Err(e) => return row.not_run("error", format!("open: {e}")),
    };
    if !spec.direct && !spec.workload.writes() {
        drop_cached_pages(&file);
    }
    let note = cell_note(&spec);
    match engine::run_cell(spec, &file, target.size(), budget) {
        Ok(m) => ProbeRow {
            note,
            ..row.measured(&m)
        },
        Err(CellError::Unsupported(why)) => row.not_run("unsupported", why),
        Err(CellError::Failed(why)) => row.not_run("error", why),
    }
}

fn cell_note(spec: &CellSpec) -> String {
    match spec.workload {
        Workload::FsyncIdle => "latency and iops: fdatasync after one 4 KiB write".into(),
        Workload::FsyncUnderLoad => {
            "latency and iops: fdatasync; mb_per_sec: buffered writes beside it".into()
        }
        _ if !spec.direct && !spec.workload.writes() => {
            "page cache of the probe file dropped first (fadvise); re-reads within the cell may hit it".into()
        }
        _ => String::new(),
    }
}

/// Drops the probe file's clean pages so buffered reads start from the device. Only the
/// probe's own file is touched; a failure just leaves reads warmer.
fn drop_cached_pages(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let _ = file.sync_data();
    // SAFETY: a valid descriptor; fadvise has no memory effects on our side.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_sweep_without_duplicates() {
        let cells = ProbePlan::full(Duration::from_millis(10), 1 << 30).cells();
        for sweep in ["block_size", "queue_depth", "registered", "ring", "fsync"] {
            assert!(cells.iter().any(|(s, _)| *s == sweep), "{sweep} missing");
        }
        for (i, a) in cells.iter().enumerate() {
            assert!(
                !cells[i + 1..].contains(a),
                "duplicate {a:?} within its sweep"
            );
        }
        assert!(cells.len() > 50 && cells.len() < 90, "{}", cells.len());
    }

    #[test]
    fn quick_plan_runs_on_a_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let plan = ProbePlan::quick(Duration::from_millis(50), 8 << 20);
        let rows = run(dir.path(), &plan, false, |_| {}).unwrap();
        assert_eq!(rows.len(), plan.cells().len());
        for r in &rows {
            eprintln!("{}", r.summary());
            assert!(["ok", "unsupported"].contains(&r.status.as_str()), "{r:?}");
        }
        let seq = rows
            .iter()
            .find(|r| r.workload == "seq_write" && r.status == "ok")
            .unwrap();
        assert!(seq.mb_per_sec > 0.0 && seq.p99_us >= seq.p50_us);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe left a file"
        );
    }
}
