//! report.md of a run: host, OS knobs with the command to change each, the device's limits
//! from the probe, each sweep with the limit it hits, the roofline ratios, and last the
//! recommended server.properties. A pure function of the run's rows; main thread.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::host::HostFacts;
use crate::knobs::KnobRow;
use crate::plot::{FACTORS, factor_points};
use crate::probe::ProbeRow;
use crate::sweep::{SweepRow, bytes_label};

/// What the report says about how the run was made (also `meta.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunMeta {
    /// The command line.
    pub command: String,
    /// UTC start time.
    pub started: String,
    /// Host and device facts.
    pub host: HostFacts,
    /// CPUs online.
    pub cpus: usize,
    /// MemTotal, MiB.
    pub mem_total_mib: u64,
    /// The directory under test.
    pub data_dir: String,
    /// Quick (CI/smoke) or full grid.
    pub quick: bool,
    /// Measured seconds per sweep phase.
    pub duration_s: u64,
    /// Time budget, s.
    pub budget_s: u64,
    /// Probe time per cell, ms.
    pub probe_cell_ms: u64,
    /// Probe file size, MiB.
    pub probe_file_mib: u64,
    /// Git commit of the tree, if known.
    pub commit: String,
}

/// Everything a report is made from.
pub struct RunData<'a> {
    /// How the run was made.
    pub meta: &'a RunMeta,
    /// OS checks.
    pub knobs: &'a [KnobRow],
    /// Probe rows.
    pub probe: &'a [ProbeRow],
    /// Sweep rows.
    pub sweeps: &'a [SweepRow],
    /// Plot file names (relative to the run folder).
    pub plots: &'a [String],
}

/// The device's headline numbers, from the probe.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeviceLimits {
    /// Best sequential O_DIRECT write, MB/s.
    pub seq_write_direct: f64,
    /// Best sequential buffered write (closing fdatasync included), MB/s.
    pub seq_write_buffered: f64,
    /// Best sequential O_DIRECT read, MB/s.
    pub seq_read_direct: f64,
    /// Best 4 KiB random-read IOPS.
    pub rand_read_iops: f64,
    /// Best 4 KiB random-write IOPS.
    pub rand_write_iops: f64,
    /// fdatasync p99 with nothing else running, µs.
    pub fsync_idle_p99_us: f64,
    /// fdatasync p99 beside buffered writes, µs.
    pub fsync_load_p99_us: f64,
}

fn best(probe: &[ProbeRow], workload: &str, mode: &str, f: impl Fn(&ProbeRow) -> f64) -> f64 {
    probe
        .iter()
        .filter(|r| r.status == "ok" && r.workload == workload && r.io_mode == mode)
        .map(f)
        .fold(0.0, f64::max)
}

impl DeviceLimits {
    /// Reads the limits off the probe rows.
    pub fn of(probe: &[ProbeRow]) -> Self {
        let small = |r: &ProbeRow| if r.block_size == 4096 { r.iops } else { 0.0 };
        let p99 = |w: &str| {
            probe
                .iter()
                .find(|r| r.workload == w && r.status == "ok")
                .map_or(0.0, |r| r.p99_us)
        };
        Self {
            seq_write_direct: best(probe, "seq_write", "direct", |r| r.mb_per_sec),
            seq_write_buffered: best(probe, "seq_write", "buffered", |r| r.mb_per_sec),
            seq_read_direct: best(probe, "seq_read", "direct", |r| r.mb_per_sec),
            rand_read_iops: best(probe, "rand_read", "direct", small),
            rand_write_iops: best(probe, "rand_write", "direct", small),
            fsync_idle_p99_us: p99("fsync_idle"),
            fsync_load_p99_us: p99("fsync_under_load"),
        }
    }

    /// The write ceiling Sluice's page-cache appends meet: the better of the two write paths.
    pub fn write_ceiling(&self) -> f64 {
        self.seq_write_direct.max(self.seq_write_buffered)
    }
}

/// What limits one sweep step's throughput, judged from its CPU and the device's ceiling.
pub fn classify(row: &SweepRow, dev: &DeviceLimits) -> String {
    if row.status != "ok" {
        return format!("not measured ({})", row.status);
    }
    // Utilisation is the 75th percentile of 250 ms intervals; sampling jitter and the client's
    // own idle gaps keep a saturated core a little below 1.0.
    if row.client_cpu_util >= 0.75 && row.client_cpu_util >= row.broker_cpu_util {
        return format!(
            "client CPU (sluice-perf/librdkafka at {:.0}% of its cores)",
            row.client_cpu_util * 100.0
        );
    }
    if row.broker_cpu_util >= 0.75 {
        return format!(
            "broker CPU ({:.0}% of its shards' cores)",
            row.broker_cpu_util * 100.0
        );
    }
    let ceiling = dev.write_ceiling();
    if ceiling > 0.0 && row.mb_per_sec >= 0.8 * ceiling {
        return format!(
            "device write bandwidth ({:.2} of {:.0} MB/s)",
            row.mb_per_sec / ceiling,
            ceiling
        );
    }
    if row.flush != "none" {
        return format!(
            "fdatasync per flush ({}; device fdatasync p99 {:.1} ms under load)",
            row.flush,
            dev.fsync_load_p99_us / 1e3
        );
    }
    "no resource saturated: request round trips and client batching (linger, in-flight limit)"
        .into()
}

/// The report's markdown.
pub fn render(d: &RunData<'_>) -> String {
    let dev = DeviceLimits::of(d.probe);
    let mut s = String::new();
    header(&mut s, d);
    knobs_section(&mut s, d.knobs);
    device_section(&mut s, d, &dev);
    sweeps_section(&mut s, d, &dev);
    roofline_section(&mut s, d, &dev);
    limits_section(&mut s, d, &dev);
    properties_section(&mut s, d.sweeps);
    s
}

fn header(s: &mut String, d: &RunData<'_>) {
    let m = d.meta;
    let _ = writeln!(
        s,
        "# Sluice tuning lab: {} ({})\n",
        m.host.device, m.started
    );
    let _ = writeln!(s, "Command: `{}`  ", m.command);
    let _ = writeln!(
        s,
        "Commit: {}  ",
        if m.commit.is_empty() {
            "unknown"
        } else {
            &m.commit
        }
    );
    let mode = if m.quick {
        "quick (CI/smoke grid)"
    } else {
        "full grid"
    };
    let _ = writeln!(
        s,
        "Mode: {mode}; {} s measured per sweep phase; budget {} s; probe {} ms per cell on a {} MiB file.\n",
        m.duration_s, m.budget_s, m.probe_cell_ms, m.probe_file_mib
    );
    let _ = writeln!(s, "## Host\n");
    let _ = writeln!(
        s,
        "| kernel | device | model | scheduler | filesystem | CPUs | memory | data dir |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let h = &m.host;
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} MiB | {} |\n",
        h.kernel,
        h.device,
        h.device_model,
        h.scheduler,
        h.filesystem,
        m.cpus,
        m.mem_total_mib,
        m.data_dir
    );
    let _ = writeln!(
        s,
        "Memory state (column `mem_state` of sweeps.csv): before every throughput phase the lab wrote and deleted a file as large as the phase's expected data and synced, because a VM with free page reporting hands freed memory to the host and re-touching it costs about 10x. Before a latency phase of a full run it synced and left the machine idle for 30 s instead: memory freed right before a latency run is reclaimed by the host a few seconds into it and stalls the broker for up to a second. Dirty and writeback pages were sampled during every phase (vmstat.csv; `dirty_max_kib`, `writeback_max_kib` in sweeps.csv).\n"
    );
}

fn knobs_section(s: &mut String, knobs: &[KnobRow]) {
    let _ = writeln!(s, "## OS knobs (read-only: nothing was changed)\n");
    if knobs.is_empty() {
        let _ = writeln!(s, "tuning/check did not run.\n");
        return;
    }
    let _ = writeln!(s, "| check | value | recommended | status | to change |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for k in knobs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | `{}` |",
            k.check,
            cell(&k.value),
            cell(&k.recommended),
            k.status,
            cell(&k.change)
        );
    }
    let _ = writeln!(s, "\nWhy each matters:\n");
    for k in knobs {
        let _ = writeln!(s, "- **{}**: {}", k.check, k.why);
    }
    s.push('\n');
}

fn cell(t: &str) -> String {
    t.replace('|', "\\|")
}

fn device_section(s: &mut String, d: &RunData<'_>, dev: &DeviceLimits) {
    let _ = writeln!(s, "## Device (io_uring probe)\n");
    if d.probe.is_empty() {
        let _ = writeln!(s, "The probe did not run.\n");
        return;
    }
    for p in d.plots.iter().filter(|p| p.starts_with("probe-")) {
        let _ = writeln!(s, "![{p}]({p})\n");
    }
    let _ = writeln!(s, "| limit | value |\n|---|---|");
    let _ = writeln!(
        s,
        "| sequential write, O_DIRECT | {:.0} MB/s |",
        dev.seq_write_direct
    );
    let _ = writeln!(
        s,
        "| sequential write, buffered (closing fdatasync included) | {:.0} MB/s |",
        dev.seq_write_buffered
    );
    let _ = writeln!(
        s,
        "| sequential read, O_DIRECT | {:.0} MB/s |",
        dev.seq_read_direct
    );
    let _ = writeln!(
        s,
        "| 4 KiB random read, O_DIRECT | {:.0} IOPS |",
        dev.rand_read_iops
    );
    let _ = writeln!(
        s,
        "| 4 KiB random write, O_DIRECT | {:.0} IOPS |",
        dev.rand_write_iops
    );
    let _ = writeln!(
        s,
        "| fdatasync p99, idle | {:.2} ms |",
        dev.fsync_idle_p99_us / 1e3
    );
    let _ = writeln!(
        s,
        "| fdatasync p99, beside buffered writes | {:.2} ms |\n",
        dev.fsync_load_p99_us / 1e3
    );
    let _ = writeln!(
        s,
        "Registered buffers and files, SQPOLL and IOPOLL (4 KiB, O_DIRECT):\n"
    );
    let _ = writeln!(
        s,
        "| workload | ring | reg. buffers | reg. files | status | IOPS | p99 µs | note |\n|---|---|---|---|---|---|---|---|"
    );
    let same = |r: &&ProbeRow| {
        r.sweep == "registered"
            || r.sweep == "ring"
            || (r.sweep == "block_size"
                && r.block_size == 4096
                && r.io_mode == "direct"
                && r.workload.starts_with("rand"))
    };
    for r in d.probe.iter().filter(same) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {} |",
            r.workload,
            r.ring,
            r.reg_buffers,
            r.reg_files,
            r.status,
            r.iops,
            r.p99_us,
            cell(&r.note)
        );
    }
    let unsupported: Vec<String> = d
        .probe
        .iter()
        .filter(|r| r.status != "ok")
        .map(|r| {
            format!(
                "{} {} {} bs {} qd {}: {} ({})",
                r.workload, r.io_mode, r.ring, r.block_size, r.queue_depth, r.status, r.note
            )
        })
        .collect();
    if !unsupported.is_empty() {
        let _ = writeln!(s, "\nCells not measured:\n");
        for u in unsupported {
            let _ = writeln!(s, "- {}", cell(&u));
        }
    }
    s.push('\n');
}

fn sweeps_section(s: &mut String, d: &RunData<'_>, dev: &DeviceLimits) {
    let _ = writeln!(s, "## Sluice sweeps (sluice-perf, acks=all)\n");
    if d.sweeps.is_empty() {
        let _ = writeln!(s, "The sweeps did not run.\n");
        return;
    }
    let rate = d
        .sweeps
        .iter()
        .find(|r| r.factor == "baseline" && r.phase == "latency")
        .map_or("?".into(), |r| r.target_rate.clone());
    let _ = writeln!(
        s,
        "Each step is a fresh broker; throughput is sluice-perf unpaced (closed loop), latency is produce (due send time to ack) open-loop at half the baseline's byte rate ({rate} msg/s of 1 KiB, scaled by record size). One factor at a time away from the baseline (Kafka's and Sluice's defaults, one shard, one partition, one producer, 1 KiB records, linger 5 ms).\n"
    );
    for factor in FACTORS {
        let pts = factor_points(d.sweeps, factor);
        if !d.sweeps.iter().any(|r| r.factor == factor) {
            continue;
        }
        let _ = writeln!(s, "### {factor}\n");
        let plot = format!("sweep-{}.svg", factor.replace('_', "-"));
        if d.plots.contains(&plot) {
            let _ = writeln!(s, "![{plot}]({plot})\n");
        }
        let _ = writeln!(
            s,
            "| {factor} | MB/s | msg/s | broker CPU | client CPU | dirty max MiB | p99 ms (open-loop) | p999 ms | limit |\n|---|---|---|---|---|---|---|---|---|"
        );
        for (label, t, l) in &pts {
            let (mb, msgs, bc, cc, dirty, lim) =
                t.map_or((0.0, 0.0, 0.0, 0.0, 0, "not measured".into()), |r| {
                    (
                        r.mb_per_sec,
                        r.msgs_per_sec,
                        r.broker_cpu_util,
                        r.client_cpu_util,
                        r.dirty_max_kib >> 10,
                        classify(r, dev),
                    )
                });
            let (p99, p999) = l.map_or((f64::NAN, f64::NAN), |r| (r.p99_ms, r.p999_ms));
            let _ = writeln!(
                s,
                "| {label} | {mb:.1} | {msgs:.0} | {:.0}% | {:.0}% | {dirty} | {p99:.2} | {p999:.2} | {lim} |",
                bc * 100.0,
                cc * 100.0
            );
        }
        s.push('\n');
    }
    let failed: Vec<&SweepRow> = d.sweeps.iter().filter(|r| r.status != "ok").collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "Steps not measured:\n");
        for r in failed {
            let _ = writeln!(
                s,
                "- {} {} {}: {} ({})",
                r.factor,
                r.label,
                r.phase,
                r.status,
                cell(&r.note)
            );
        }
        s.push('\n');
    }
}

fn sluice_best(sweeps: &[SweepRow]) -> Option<&SweepRow> {
    sweeps
        .iter()
        .filter(|r| r.status == "ok" && r.phase == "throughput")
        .max_by(|a, b| a.mb_per_sec.total_cmp(&b.mb_per_sec))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a".into()
    }
}

fn roofline_section(s: &mut String, d: &RunData<'_>, dev: &DeviceLimits) {
    let _ = writeln!(s, "## Roofline: Sluice against the device\n");
    if d.plots.iter().any(|p| p == "roofline.svg") {
        let _ = writeln!(s, "![roofline.svg](roofline.svg)\n");
    }
    let Some(b) = sluice_best(d.sweeps) else {
        let _ = writeln!(s, "No sweep step measured.\n");
        return;
    };
    let _ = writeln!(
        s,
        "Best Sluice step: {} = {} at {:.0} MB/s.\n",
        b.factor, b.label, b.mb_per_sec
    );
    let _ = writeln!(s, "| ceiling | device | Sluice / device |\n|---|---|---|");
    let _ = writeln!(
        s,
        "| sequential write, buffered (the path Sluice's appends take) | {:.0} MB/s | {} |",
        dev.seq_write_buffered,
        ratio(b.mb_per_sec, dev.seq_write_buffered)
    );
    let _ = writeln!(
        s,
        "| sequential write, O_DIRECT | {:.0} MB/s | {} |",
        dev.seq_write_direct,
        ratio(b.mb_per_sec, dev.seq_write_direct)
    );
    s.push('\n');
    if let Some(f) = d.sweeps.iter().find(|r| {
        r.factor == "flush"
            && r.flush == "flush.messages=1"
            && r.phase == "throughput"
            && r.status == "ok"
    }) {
        let syncs = if dev.fsync_load_p99_us > 0.0 {
            1e6 / dev.fsync_load_p99_us
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "With flush.messages=1 Sluice acknowledged {:.0} msg/s ({:.0} MB/s, {} of its best); the device completes about {syncs:.0} fdatasyncs/s at its p99 under load, so each sync covers many records (one per produce request).\n",
            f.msgs_per_sec,
            f.mb_per_sec,
            ratio(f.mb_per_sec, b.mb_per_sec)
        );
    }
}

fn limits_section(s: &mut String, d: &RunData<'_>, dev: &DeviceLimits) {
    let _ = writeln!(s, "## Limits each figure hits\n");
    for p in d.plots {
        let _ = writeln!(s, "- `{p}`: {}", figure_limit(p, d, dev));
    }
    if d.plots.is_empty() {
        let _ = writeln!(s, "- no figures were drawn");
    }
    s.push('\n');
}

fn figure_limit(plot: &str, d: &RunData<'_>, dev: &DeviceLimits) -> String {
    match plot {
        "probe-block-size.svg" => block_size_limit(d.probe),
        "probe-queue-depth.svg" => queue_depth_limit(d.probe),
        "roofline.svg" => match sluice_best(d.sweeps) {
            Some(b) => format!(
                "Sluice's best step reaches {} of the device's buffered write rate and {} of O_DIRECT; it is limited by {}",
                ratio(b.mb_per_sec, dev.seq_write_buffered),
                ratio(b.mb_per_sec, dev.seq_write_direct),
                classify(b, dev)
            ),
            None => "no Sluice step measured".into(),
        },
        p => {
            let factor = p
                .trim_start_matches("sweep-")
                .trim_end_matches(".svg")
                .replace('-', "_");
            let pts = factor_points(d.sweeps, &factor);
            let best = pts
                .iter()
                .filter_map(|p| p.1)
                .max_by(|a, b| a.mb_per_sec.total_cmp(&b.mb_per_sec));
            match best {
                Some(b) => format!(
                    "best at {} = {} ({:.0} MB/s), limited by {}",
                    factor,
                    crate::plot::factor_value(b, &factor).1,
                    b.mb_per_sec,
                    classify(b, dev)
                ),
                None => "not measured".into(),
            }
        }
    }
}

fn block_size_limit(probe: &[ProbeRow]) -> String {
    let rows: Vec<&ProbeRow> = probe
        .iter()
        .filter(|r| {
            r.sweep == "block_size"
                && r.status == "ok"
                && r.io_mode == "direct"
                && r.workload == "seq_write"
        })
        .collect();
    let (Some(small), Some(large)) = (
        rows.iter().min_by_key(|r| r.block_size),
        rows.iter().max_by_key(|r| r.block_size),
    ) else {
        return "not measured".into();
    };
    let peak = rows.iter().map(|r| r.mb_per_sec).fold(0.0, f64::max);
    let plateau = large.mb_per_sec >= 0.9 * peak;
    format!(
        "small blocks are bound by per-operation cost ({} at {:.0} IOPS); large blocks {} ({:.0} MB/s at {})",
        bytes_label(small.block_size),
        small.iops,
        if plateau {
            "reach the device's bandwidth"
        } else {
            "fall off the peak (device write cache or throttling)"
        },
        large.mb_per_sec,
        bytes_label(large.block_size)
    )
}

fn queue_depth_limit(probe: &[ProbeRow]) -> String {
    let mut rows: Vec<&ProbeRow> = probe
        .iter()
        .filter(|r| r.sweep == "queue_depth" && r.status == "ok" && r.workload == "rand_read")
        .collect();
    rows.sort_by_key(|r| r.queue_depth);
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return "not measured".into();
    };
    let prev = rows.iter().rev().nth(1).copied().unwrap_or(first);
    let still_scaling = last.iops > 1.1 * prev.iops;
    format!(
        "4 KiB random reads go from {:.0} IOPS at qd {} to {:.0} at qd {}: {}",
        first.iops,
        first.queue_depth,
        last.iops,
        last.queue_depth,
        if still_scaling {
            "still scaling, the device has parallelism left"
        } else {
            "saturated: the device's internal parallelism is used up"
        }
    )
}

/// How far below the best throughput a value may be and still win on its lower p99: 3%
/// (noise on a shared machine) for throughput knobs; 10% for early writeback, whose point is
/// the tail rather than the rate.
fn tolerance(factor: &str) -> f64 {
    if factor == "writeback_bytes" {
        0.90
    } else {
        0.97
    }
}

/// The value of `factor` with the lowest open-loop p99 among those within `tolerance` of the
/// highest MB/s.
fn pick<'a>(sweeps: &'a [SweepRow], factor: &str) -> Option<(String, &'a SweepRow)> {
    let pts = factor_points(sweeps, factor);
    let best = pts
        .iter()
        .filter_map(|p| p.1)
        .map(|r| r.mb_per_sec)
        .fold(0.0, f64::max);
    pts.iter()
        .filter_map(|(l, t, lat)| t.map(|t| (l, t, lat.map_or(f64::MAX, |r| r.p99_ms))))
        .filter(|(_, t, _)| t.mb_per_sec >= tolerance(factor) * best)
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(l, t, _)| (l.clone(), t))
}

fn properties_section(s: &mut String, sweeps: &[SweepRow]) {
    let _ = writeln!(s, "## Recommended server.properties\n");
    let _ = writeln!(
        s,
        "Each value is the swept one with the lowest open-loop p99 among those within 3% of the highest unpaced throughput (within 10% for `sluice.log.writeback.bytes`, which is there for the tail); unswept keys keep their defaults. One run on one machine: repeat before trusting a small difference.\n"
    );
    let _ = writeln!(s, "```properties");
    for line in properties_lines(sweeps) {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "```");
}

/// The snippet's lines: `# why` comments and `key=value` lines.
pub fn properties_lines(sweeps: &[SweepRow]) -> Vec<String> {
    let mut out = Vec::new();
    let mut key =
        |factor: &str, key: &str, value: &dyn Fn(&SweepRow) -> String, default: &str| match pick(
            sweeps, factor,
        ) {
            Some((label, r)) => {
                out.push(format!(
                    "# {factor}: {label}, {}",
                    figures(sweeps, factor, r)
                ));
                out.push(format!("{key}={}", value(r)));
            }
            None => {
                out.push(format!("# {factor}: not measured, default kept"));
                out.push(format!("{key}={default}"));
            }
        };
    key(
        "segment_bytes",
        "log.segment.bytes",
        &|r| r.segment_bytes.to_string(),
        "1073741824",
    );
    key(
        "writeback_bytes",
        "sluice.log.writeback.bytes",
        &|r| r.writeback_bytes.to_string(),
        "1048576",
    );
    key("shards", "sluice.cores", &|r| r.shards.to_string(), "1");
    // Partitions were swept per shard on one shard; the topic default spreads that many over
    // every recommended shard.
    let cores = pick(sweeps, "shards").map_or(1, |(_, r)| r.shards);
    key(
        "partitions_per_shard",
        "num.partitions",
        &|r| (r.partitions / r.shards.max(1) * cores).to_string(),
        "1",
    );
    out.extend(log_io_lines(sweeps));
    out.push(flush_comment(sweeps));
    out.extend(client_comments(sweeps));
    out
}

/// `sluice.log.io`: direct only when, without a flush policy, it beats the page cache by
/// more than the noise (3%) on throughput with no worse p99; the page cache stays otherwise.
/// The sweeps produce only, so the line says what they cannot show: consumers behind the
/// tail cache read from the disk in direct mode.
fn log_io_lines(sweeps: &[SweepRow]) -> Vec<String> {
    let row = |label: &str, phase: &str| {
        factor_points(sweeps, "log_io")
            .into_iter()
            .find(|p| p.0 == label)
            .and_then(|p| if phase == "throughput" { p.1 } else { p.2 })
    };
    let (Some(page), Some(direct)) = (row("page-cache", "throughput"), row("direct", "throughput"))
    else {
        return vec![
            "# log_io: not measured, page-cache kept".into(),
            "sluice.log.io=page-cache".into(),
        ];
    };
    let p99 = |label| row(label, "latency").map_or(f64::MAX, |r| r.p99_ms);
    let direct_wins =
        direct.mb_per_sec > 1.03 * page.mb_per_sec && p99("direct") <= p99("page-cache");
    vec![
        format!(
            "# log_io: direct ran at {} of the page cache's throughput ({:.0} vs {:.0} MB/s), p99 {:.2} vs {:.2} ms open-loop: {}",
            ratio(direct.mb_per_sec, page.mb_per_sec),
            direct.mb_per_sec,
            page.mb_per_sec,
            p99("direct"),
            p99("page-cache"),
            if direct_wins {
                "direct pays here for producers; the sweeps do not consume, and in direct mode a consumer behind the tail cache (sluice.log.direct.cache.bytes) reads from the disk instead of the page cache (measure with perf/ab.sh before choosing it)"
            } else {
                "the page cache stays"
            }
        ),
        format!(
            "sluice.log.io={}",
            if direct_wins { "direct" } else { "page-cache" }
        ),
    ]
}

/// "N MB/s unpaced, p99 M ms open-loop" for the chosen row.
fn figures(sweeps: &[SweepRow], factor: &str, t: &SweepRow) -> String {
    let label = crate::plot::factor_value(t, factor).1;
    let p99 = factor_points(sweeps, factor)
        .into_iter()
        .find(|p| p.0 == label)
        .and_then(|p| p.2)
        .map_or("not measured".into(), |r| format!("{:.1} ms", r.p99_ms));
    format!("{:.0} MB/s unpaced, p99 {p99} open-loop", t.mb_per_sec)
}

fn flush_comment(sweeps: &[SweepRow]) -> String {
    let t = |f: &str| {
        sweeps.iter().find(|r| {
            r.flush == f
                && r.phase == "throughput"
                && r.status == "ok"
                && (r.factor == "flush" || r.factor == "baseline")
        })
    };
    match (t("none"), t("flush.messages=1")) {
        (Some(none), Some(every)) => format!(
            "# flush: none (the default; durability through acks and replication). flush.messages=1 ran at {} of that ({:.0} vs {:.0} MB/s): set log.flush.interval.messages=1 only where a lost page cache must not lose acknowledged records",
            ratio(every.mb_per_sec, none.mb_per_sec),
            every.mb_per_sec,
            none.mb_per_sec
        ),
        _ => "# flush: none (the default); flush policies not measured".into(),
    }
}

fn client_comments(sweeps: &[SweepRow]) -> Vec<String> {
    let mut out = Vec::new();
    for (factor, name) in [
        ("linger_ms", "linger.ms"),
        ("producers", "producers"),
        ("record_size", "record size"),
    ] {
        if let Some((label, r)) = pick(sweeps, factor) {
            let f = figures(sweeps, factor, r);
            out.push(format!(
                "# client side (not a broker key): {name} {label}, {f}"
            ));
        }
    }
    out
}
