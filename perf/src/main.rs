//! `sluice-perf`: open-loop load generator for Kafka-compatible brokers. See perf/README.md.
//!
//! Module map:
//! - `cli`: flags and their value types
//! - `payload`: record sizes, keys and the timestamp header
//! - `produce` / `consume`: the client loops
//! - `run`: one run at one rate (threads, progress line, drain)
//! - `stats`: counters and histograms shared by the threads
//! - `report`: summary, JSON and .hgrm output
//! - `embedded`: the `sluice serve` started when no broker is given

mod cli;
mod client;
mod consume;
mod embedded;
mod payload;
mod produce;
mod report;
mod run;
mod stats;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

use crate::cli::{Args, Rate};
use crate::report::RunReport;
use crate::run::Plan;

/// The JSON record of a whole invocation.
#[derive(Serialize)]
struct Record<'a> {
    tool: &'static str,
    version: &'static str,
    command: Vec<String>,
    broker: String,
    topic: &'a str,
    partitions: usize,
    args: &'a Args,
    runs: &'a [RunReport],
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.validate()?;
    let embedded = match &args.bootstrap_server {
        Some(_) => None,
        None => Some(embedded::Embedded::start(
            args.sluice_bin.as_deref(),
            args.sluice_cores,
        )?),
    };
    let (bootstrap, broker) = match (&args.bootstrap_server, &embedded) {
        (Some(b), _) => (b.clone(), b.clone()),
        (None, Some(e)) => (e.bootstrap.clone(), format!("embedded: {}", e.command)),
        (None, None) => unreachable!("embedded broker starts when no bootstrap server is given"),
    };
    eprintln!("broker: {broker}");
    let plan = Arc::new(prepare(args, &bootstrap).await?);
    if plan.args.create_only {
        return Ok(());
    }
    watch_ctrl_c(plan.stop.clone());
    let mut runs = Vec::new();
    for rate in plan.args.rates() {
        if plan.stop.load(Ordering::Relaxed) {
            break;
        }
        let report = run::run_rate(plan.clone(), rate).await?;
        println!("{}", report.summary());
        write_hgrms(&plan.args, &report)?;
        runs.push(report);
    }
    write_json(&plan, &broker, &runs)?;
    drop(embedded);
    Ok(())
}

/// Creates the topic (if needed) and learns its partitions.
async fn prepare(args: Args, bootstrap: &str) -> anyhow::Result<Plan> {
    let base = client::base_config(bootstrap, &args.client_props()?);
    let topic = args.topic.clone().unwrap_or_else(fresh_topic_name);
    client::ensure_topic(&base, &topic, args.partitions)
        .await
        .with_context(|| format!("creating topic {topic}"))?;
    let partitions = {
        let (base, topic) = (base.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            client::topic_partitions(&base, &topic, Duration::from_secs(30))
        })
        .await??
    };
    eprintln!("topic: {topic} ({} partitions)", partitions.len());
    Ok(Plan {
        args,
        bootstrap: bootstrap.to_string(),
        base,
        topic,
        partitions,
        stop: Arc::new(AtomicBool::new(false)),
    })
}

fn fresh_topic_name() -> String {
    format!(
        "sluice-perf-{}-{}",
        std::process::id(),
        stats::unix_now_ns() / 1_000_000
    )
}

/// First Ctrl-C ends the current run early (results are still reported); the second exits.
fn watch_ctrl_c(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing this run early (Ctrl-C again to abort)");
            stop.store(true, Ordering::Relaxed);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

fn rate_label(rate: &str) -> String {
    rate.parse::<Rate>()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| rate.to_string())
}

fn write_hgrms(args: &Args, report: &RunReport) -> anyhow::Result<()> {
    let Some(dir) = &args.hgrm_dir else {
        return Ok(());
    };
    let base = format!("{}-{}", report.scenario, rate_label(&report.target_rate));
    for (name, d) in [("produce", &report.produce), ("consume", &report.consume)] {
        if let Some(d) = d {
            report::write_hgrm(dir, &format!("{base}-{name}"), &d.histogram)?;
        }
    }
    Ok(())
}

fn write_json(plan: &Plan, broker: &str, runs: &[RunReport]) -> anyhow::Result<()> {
    let Some(path) = &plan.args.json else {
        return Ok(());
    };
    let record = Record {
        tool: "sluice-perf",
        version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect(),
        broker: broker.to_string(),
        topic: &plan.topic,
        partitions: plan.partitions.len(),
        args: &plan.args,
        runs,
    };
    let text = serde_json::to_string_pretty(&record)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
