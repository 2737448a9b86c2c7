//! Executes a sweep plan: per step a fresh broker, then a throughput phase (sluice-perf
//! unpaced) and a latency phase (sluice-perf open-loop at half the baseline's byte rate), each
//! on warmed memory with the sampler running, each turned into a `SweepRow`. Runs on the
//! lab's main thread; the broker and sluice-perf are child processes, stopped by pid.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::broker::{self, Broker, BrokerSpec};
use super::{Step, SweepRow, warm};
use crate::error::{LabError, Result};
use crate::host;
use crate::sampler::{Sample, Sampler, Summary};

/// Where the binaries are and how long each phase lasts.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// `sluice`.
    pub sluice_bin: PathBuf,
    /// `sluice-perf`.
    pub perf_bin: PathBuf,
    /// Where brokers keep their data (the directory under test).
    pub data_dir: PathBuf,
    /// Where logs and sluice-perf's JSON go.
    pub out_dir: PathBuf,
    /// Unrecorded load before each phase, s.
    pub warmup_s: u64,
    /// Measured seconds per phase.
    pub duration_s: u64,
    /// Host CPUs (decides pinning).
    pub cpus: usize,
    /// Sampling interval.
    pub sample_every: Duration,
    /// Warm memory before each phase (off only for tests that measure nothing).
    pub warm: bool,
    /// Idle seconds before a latency phase, which then runs on memory left alone instead of
    /// warmed: memory freed right before a latency run is reclaimed by the host a few
    /// seconds into it and stalls allocations for up to a second (measured: a baseline p99 of
    /// 506 ms with p50 7.7 ms). 0 warms before latency phases too (quick runs).
    pub settle_s: u64,
}

impl SweepConfig {
    /// Wall time one step is expected to take, for the budget.
    pub fn step_estimate(&self) -> Duration {
        // Two phases, each warm-up + measure + broker start, topic creation, drain and warming.
        Duration::from_secs(2 * (self.warmup_s + self.duration_s + 6) + self.settle_s)
    }
}

/// Everything the sweeps produced.
#[derive(Debug, Default)]
pub struct SweepResults {
    /// One row per phase per step.
    pub rows: Vec<SweepRow>,
    /// Every dirty/writeback sample.
    pub samples: Vec<Sample>,
}

/// Running state across steps.
struct Rates {
    /// Best throughput seen so far (sizes the memory warming), MB/s.
    seen_mbps: f64,
    /// The latency phases' byte rate, fixed after the baseline step, MB/s.
    latency_mbps: Option<f64>,
}

/// Runs `steps` in order within `budget`; steps that no longer fit are recorded as skipped.
pub fn run_all(
    cfg: &SweepConfig,
    steps: &[Step],
    budget: Duration,
    mut progress: impl FnMut(&SweepRow),
) -> Result<SweepResults> {
    std::fs::create_dir_all(cfg.out_dir.join("logs"))
        .map_err(LabError::io("creating", &cfg.out_dir))?;
    let t0 = Instant::now();
    let mut out = SweepResults::default();
    let mut rates = Rates {
        seen_mbps: 300.0,
        latency_mbps: None,
    };
    for (i, step) in steps.iter().enumerate() {
        let fits = t0.elapsed() + cfg.step_estimate() <= budget;
        let rows = if fits {
            run_step(cfg, i, step, &mut rates, &mut out.samples)
        } else {
            skipped(cfg, step, "time budget spent")
        };
        for r in rows {
            progress(&r);
            out.rows.push(r);
        }
    }
    Ok(out)
}

fn skipped(cfg: &SweepConfig, step: &Step, why: &str) -> Vec<SweepRow> {
    ["throughput", "latency"]
        .into_iter()
        .map(|phase| SweepRow {
            status: "skipped".into(),
            note: why.into(),
            ..base_row(cfg, step, phase)
        })
        .collect()
}

fn base_row(cfg: &SweepConfig, step: &Step, phase: &str) -> SweepRow {
    let k = &step.knobs;
    SweepRow {
        factor: step.factor.into(),
        label: step.label.clone(),
        phase: phase.into(),
        segment_bytes: k.segment_bytes,
        flush: k.flush_label(),
        writeback_bytes: k.writeback_bytes,
        log_io: k.log_io.into(),
        shards: k.shards as u64,
        record_size: k.record_size as u64,
        partitions: (k.partitions_per_shard * k.shards) as u64,
        producers: k.producers as u64,
        linger_ms: k.linger_ms,
        pinning: pinning(cfg, k.shards)
            .map_or("none".into(), |(b, c)| format!("broker {b}, client {c}")),
        status: "ok".into(),
        ..SweepRow::default()
    }
}

/// (broker CPUs, client CPUs) when the host has a CPU left for the client.
fn pinning(cfg: &SweepConfig, shards: usize) -> Option<(String, String)> {
    (cfg.cpus > shards).then(|| {
        let broker = format!("0-{}", shards - 1);
        let client = format!("{}-{}", shards, cfg.cpus - 1);
        (broker, client)
    })
}

fn run_step(
    cfg: &SweepConfig,
    i: usize,
    step: &Step,
    rates: &mut Rates,
    samples: &mut Vec<Sample>,
) -> Vec<SweepRow> {
    let pins = pinning(cfg, step.knobs.shards);
    let spec = BrokerSpec {
        bin: &cfg.sluice_bin,
        parent: &cfg.data_dir,
        properties: &step.knobs.properties(),
        cores: step.knobs.shards,
        cpus: pins.as_ref().map(|p| p.0.clone()),
        log: cfg.out_dir.join(format!("logs/step{i:02}-broker.log")),
    };
    warm::sync_all();
    let broker = match Broker::start(&spec) {
        Ok(b) => b,
        Err(e) => return skipped_as_error(cfg, step, &e),
    };
    let mut rows = Vec::new();
    for phase in ["throughput", "latency"] {
        let row = run_phase(cfg, i, step, phase, &broker, rates, samples);
        let row = row.unwrap_or_else(|e| SweepRow {
            status: "error".into(),
            note: e.to_string(),
            ..base_row(cfg, step, phase)
        });
        if phase == "throughput" && row.status == "ok" {
            rates.seen_mbps = rates.seen_mbps.max(row.mb_per_sec);
            if rates.latency_mbps.is_none() && step.factor == "baseline" {
                rates.latency_mbps = Some((row.mb_per_sec / 2.0).max(0.1));
            }
        }
        rows.push(row);
    }
    rows
}

fn skipped_as_error(cfg: &SweepConfig, step: &Step, e: &LabError) -> Vec<SweepRow> {
    skipped(cfg, step, &e.to_string())
        .into_iter()
        .map(|r| SweepRow {
            status: "error".into(),
            ..r
        })
        .collect()
}

fn run_phase(
    cfg: &SweepConfig,
    i: usize,
    step: &Step,
    phase: &str,
    broker: &Broker,
    rates: &Rates,
    samples: &mut Vec<Sample>,
) -> Result<SweepRow> {
    let k = &step.knobs;
    let rate = match phase {
        "throughput" => None,
        _ => {
            let mbps = rates.latency_mbps.unwrap_or(rates.seen_mbps / 2.0);
            Some(((mbps * 1e6 / k.record_size as f64) as u64).max(1))
        }
    };
    let expected_mbps = rate.map_or(rates.seen_mbps * 1.5, |r| {
        r as f64 * k.record_size as f64 / 1e6
    });
    let expected = (expected_mbps * 1e6 * (cfg.warmup_s + cfg.duration_s) as f64) as u64;
    let mem_state = if rate.is_some() && cfg.settle_s > 0 {
        warm::sync_all();
        std::thread::sleep(Duration::from_secs(cfg.settle_s));
        format!(
            "settled: {} s idle after sync, not warmed (a latency phase on memory just freed stalls)",
            cfg.settle_s
        )
    } else if cfg.warm {
        warm::warm(&cfg.data_dir, warm::warm_size(expected, &cfg.data_dir))?
    } else {
        warm::sync_all();
        "cold: not warmed (--no-warm)".into()
    };
    let mem_free_mib = host::memory_counters().mem_free_kib >> 10;
    let tag = format!("step{i:02}-{phase}");
    let json = cfg.out_dir.join(format!("logs/{tag}.json"));
    let mut child = perf_command(cfg, step, rate, &tag, broker.port, &json)?;
    let sampler = Sampler::start(&tag, cfg.sample_every, vec![broker.pid(), child.id()]);
    let status = wait_bounded(
        &mut child,
        Duration::from_secs(cfg.warmup_s + cfg.duration_s + 90),
    );
    let (mut s, summary) = sampler.stop();
    samples.append(&mut s);
    if !status {
        return Err(child_failed(&cfg.out_dir.join(format!("logs/{tag}.txt"))));
    }
    let report = read_perf_json(&json)?;
    let mut row = base_row(cfg, step, phase);
    row.target_rate = rate.map_or("max".into(), |r| r.to_string());
    fill_from_perf(&mut row, &report)?;
    fill_from_sampler(&mut row, &summary, cfg);
    row.mem_state = mem_state;
    row.mem_free_mib = mem_free_mib;
    Ok(row)
}

fn perf_command(
    cfg: &SweepConfig,
    step: &Step,
    rate: Option<u64>,
    tag: &str,
    port: u16,
    json: &Path,
) -> Result<std::process::Child> {
    let k = &step.knobs;
    let log_path = cfg.out_dir.join(format!("logs/{tag}.txt"));
    let log = std::fs::File::create(&log_path).map_err(LabError::io("creating", &log_path))?;
    let err = log
        .try_clone()
        .map_err(LabError::io("creating", &log_path))?;
    let client_cpus = pinning(cfg, k.shards).map(|p| p.1);
    let mut cmd = broker::pinned(client_cpus.as_deref(), &cfg.perf_bin);
    cmd.args([
        "--bootstrap-server",
        &format!("127.0.0.1:{port}"),
        "--scenario",
        "produce",
    ])
    .args(["--rate", &rate.map_or("max".into(), |r| r.to_string())])
    .args(["--message-size", &k.record_size.to_string()])
    .args([
        "--partitions",
        &(k.partitions_per_shard * k.shards).to_string(),
    ])
    .args(["--producers", &k.producers.to_string()])
    .args(["--linger-ms", &k.linger_ms.to_string(), "--acks", "all"])
    .args(["--warmup-secs", &cfg.warmup_s.to_string()])
    .args([
        "--duration-secs",
        &cfg.duration_s.to_string(),
        "--drain-secs",
        "20",
    ])
    .args(["--topic", &format!("lab-{tag}"), "--quiet", "--json"])
    .arg(json)
    .stdout(Stdio::from(log))
    .stderr(Stdio::from(err));
    cmd.spawn().map_err(LabError::io("starting", &cfg.perf_bin))
}

/// Waits for the child; kills it (by its pid) past `limit`. True when it exited 0.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return s.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn child_failed(log: &Path) -> LabError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    LabError::Child {
        what: "sluice-perf".into(),
        detail: tail.join(" | "),
    }
}

/// The parts of sluice-perf's JSON record the lab reads.
#[derive(Debug, Deserialize)]
pub struct PerfRecord {
    /// One entry per rate.
    pub runs: Vec<PerfRun>,
}

/// One rate's result.
#[derive(Debug, Deserialize)]
pub struct PerfRun {
    /// Due but never sent.
    pub unsent: u64,
    /// Produce direction.
    pub produce: Option<PerfDirection>,
}

/// Counts and latency of one direction.
#[derive(Debug, Deserialize)]
pub struct PerfDirection {
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// 10^6 bytes per second.
    pub mb_per_sec: f64,
    /// Errors.
    pub errors: u64,
    /// Percentiles.
    pub latency: PerfLatency,
}

/// Percentiles in ms.
#[derive(Debug, Deserialize)]
pub struct PerfLatency {
    /// p50.
    pub p50_ms: f64,
    /// p90.
    pub p90_ms: f64,
    /// p99.
    pub p99_ms: f64,
    /// p99.9.
    pub p999_ms: f64,
    /// max.
    pub max_ms: f64,
}

/// Parses sluice-perf's `--json` file.
pub fn read_perf_json(path: &Path) -> Result<PerfRecord> {
    let text = std::fs::read_to_string(path).map_err(LabError::io("reading", path))?;
    serde_json::from_str(&text).map_err(|source| LabError::Json {
        path: path.into(),
        source,
    })
}

fn fill_from_perf(row: &mut SweepRow, rec: &PerfRecord) -> Result<()> {
    let run = rec.runs.first();
    let Some(p) = run.and_then(|r| r.produce.as_ref()) else {
        return Err(LabError::Child {
            what: "sluice-perf".into(),
            detail: "no produce result in its JSON".into(),
        });
    };
    row.msgs_per_sec = p.msgs_per_sec;
    row.mb_per_sec = p.mb_per_sec;
    row.p50_ms = p.latency.p50_ms;
    row.p90_ms = p.latency.p90_ms;
    row.p99_ms = p.latency.p99_ms;
    row.p999_ms = p.latency.p999_ms;
    row.max_ms = p.latency.max_ms;
    row.errors = p.errors;
    row.unsent = run.map_or(0, |r| r.unsent);
    Ok(())
}

fn fill_from_sampler(row: &mut SweepRow, s: &Summary, cfg: &SweepConfig) {
    let shards = row.shards.max(1) as f64;
    let client_cores = if cfg.cpus as f64 > shards {
        cfg.cpus as f64 - shards
    } else {
        cfg.cpus as f64
    };
    let busy = |i: usize| s.cpu_busy.get(i).copied().unwrap_or(0.0);
    row.broker_cpu_util = busy(0) / shards;
    row.client_cpu_util = busy(1) / client_cores.max(1.0);
    row.dirty_max_kib = s.dirty_max_kib;
    row.dirty_mean_kib = s.dirty_mean_kib;
    row.writeback_max_kib = s.writeback_max_kib;
}
