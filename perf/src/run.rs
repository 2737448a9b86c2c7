//! One run at one rate: start the clients on their own threads, tick progress, drain, report.
//!
//! Producer and consumer loops are blocking librdkafka calls, so they get dedicated OS threads
//! (librdkafka does its network I/O on its own threads anyway); tokio drives the admin API, the
//! once-a-second progress line and Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;

use crate::cli::{Args, Client, Rate, Scenario, StartAt};
use crate::consume::{self, LatencyOf};
use crate::payload::RecordMaker;
use crate::produce::{self, Schedule, SenderOutcome};
use crate::report::{Direction, RunReport, Second};
use crate::stats::{Recorder, Window, ms};

/// A consumer that has seen nothing new for this long after the producers finished is done.
const CONSUMER_IDLE_END: Duration = Duration::from_secs(3);

/// Everything a run needs that does not change between rates.
pub struct Plan {
    pub args: Args,
    /// The broker's address (the wire client talks to it alone).
    pub bootstrap: String,
    pub base: ClientConfig,
    pub topic: String,
    pub partitions: Vec<i32>,
    /// Set by Ctrl-C: end the current run early and run no more.
    pub stop: Arc<AtomicBool>,
}

/// The shared state of one run.
struct Shared {
    window: Window,
    produced: Arc<Recorder>,
    consumed: Arc<Recorder>,
    /// Tells consumers to stop.
    stop_consumers: AtomicBool,
    /// What each second of the run moved, for the report's timeline.
    timeline: std::sync::Mutex<Vec<Second>>,
}

pub async fn run_rate(plan: Arc<Plan>, rate: Rate) -> anyhow::Result<RunReport> {
    let args = &plan.args;
    let shared = Arc::new(Shared {
        window: Window::new(
            Duration::from_secs(args.warmup_secs),
            Duration::from_secs(args.duration_secs),
        ),
        produced: Arc::default(),
        consumed: Arc::default(),
        stop_consumers: AtomicBool::new(false),
        timeline: std::sync::Mutex::default(),
    });
    let ticker = tokio::spawn(progress(plan.clone(), shared.clone()));
    let work = {
        let (plan, shared) = (plan.clone(), shared.clone());
        tokio::task::spawn_blocking(move || run_clients(&plan, &shared, rate))
    };
    let outcome = work.await.context("client threads panicked")??;
    ticker.abort();
    Ok(build_report(&plan, &shared, rate, outcome))
}

/// What the client threads hand back.
struct Outcome {
    senders: SenderOutcome,
    unacked: u64,
    /// When consuming ended (all partitions at their end, or stopped).
    consume_end: Option<Instant>,
}

fn run_clients(plan: &Plan, shared: &Arc<Shared>, rate: Rate) -> anyhow::Result<Outcome> {
    let args = &plan.args;
    let producing = args.scenario != Scenario::Consume;
    let consuming = args.scenario != Scenario::Produce;
    let stop_at_eof = args.scenario == Scenario::Consume && args.from == StartAt::Start;
    std::thread::scope(|scope| {
        let consumers = if consuming && args.client == Client::Wire {
            vec![start_wire_consumer(scope, plan, shared)]
        } else if consuming {
            start_consumers(scope, plan, shared, stop_at_eof)?
        } else {
            Vec::new()
        };
        let mut outcome = Outcome {
            senders: SenderOutcome::default(),
            unacked: 0,
            consume_end: None,
        };
        if producing {
            let (senders, unacked) = run_producers(plan, shared, rate)?;
            outcome.senders = senders;
            outcome.unacked = unacked;
            if consuming {
                wait_consumers_caught_up(shared, args.drain_secs, &plan.stop);
            }
        } else {
            // Consume only: run for the window (from the tail, while someone else produces),
            // or until every consumer has reached the end of its partitions.
            while Instant::now() < shared.window.measure_until
                && !plan.stop.load(Ordering::Relaxed)
                && !consumers.iter().all(|h| h.is_finished())
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        shared.stop_consumers.store(true, Ordering::Relaxed);
        let ends: Vec<Instant> = consumers
            .into_iter()
            .map(|h| h.join().expect("consumer thread panicked"))
            .collect();
        outcome.consume_end = ends.into_iter().max();
        Ok(outcome)
    })
}

type ConsumerHandle<'s> = std::thread::ScopedJoinHandle<'s, Instant>;

fn start_consumers<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    plan: &'s Plan,
    shared: &'s Arc<Shared>,
    stop_at_eof: bool,
) -> anyhow::Result<Vec<ConsumerHandle<'s>>> {
    let args = &plan.args;
    let cfg = consume::consumer_config(&plan.base, stop_at_eof);
    let latency_of = match args.scenario {
        Scenario::E2e => LatencyOf::DueInWindow,
        _ => LatencyOf::ArrivedInWindow,
    };
    // End-to-end latency is about new records: always start at the tail, or a reused topic
    // (a sweep, a second run) would be measured as a catch-up read.
    let from = match args.scenario {
        Scenario::E2e => StartAt::Tail,
        _ => args.from,
    };
    let mut handles = Vec::new();
    for c in 0..args.consumers {
        let parts = consume::share(&plan.partitions, c, args.consumers);
        if parts.is_empty() {
            continue; // more consumers than partitions: the extra ones would only idle
        }
        let consumer = consume::create(&cfg, &format!("consumer-{c}"), &plan.topic, &parts, from)?;
        handles.push(scope.spawn(move || {
            consume::run_consumer(
                &consumer,
                parts.len(),
                &shared.consumed,
                &shared.window,
                latency_of,
                stop_at_eof,
                &shared.stop_consumers,
            )
        }));
    }
    Ok(handles)
}

fn wire_target(plan: &Plan) -> crate::wire::Target<'_> {
    crate::wire::Target {
        bootstrap: &plan.bootstrap,
        topic: &plan.topic,
        partitions: &plan.partitions,
    }
}

/// The wire client's one consumer thread (all partitions, from their ends). A failure ends
/// it early; it is counted as an error and printed, so the report shows it.
fn start_wire_consumer<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    plan: &'s Plan,
    shared: &'s Arc<Shared>,
) -> ConsumerHandle<'s> {
    scope.spawn(move || {
        crate::wire::run_consumer(
            wire_target(plan),
            &shared.consumed,
            &shared.window,
            &shared.stop_consumers,
        )
        .unwrap_or_else(|e| {
            shared.consumed.error();
            eprintln!("wire consumer: {e:#}");
            Instant::now()
        })
    })
}

/// Runs all producers to the end of the window, then drains them. Returns the summed sender
/// outcome and the deliveries still outstanding at the end of the drain.
fn run_producers(
    plan: &Plan,
    shared: &Arc<Shared>,
    rate: Rate,
) -> anyhow::Result<(SenderOutcome, u64)> {
    let args = &plan.args;
    let drain = Duration::from_secs(args.drain_secs);
    if args.client == Client::Wire {
        let schedules = (0..args.producers)
            .map(|k| Schedule {
                index: k as u64,
                of: args.producers as u64,
                rate,
                drain,
            })
            .collect();
        return crate::wire::run_producers(
            args,
            wire_target(plan),
            &shared.produced,
            &shared.window,
            schedules,
            &plan.stop,
        );
    }
    let cfg = produce::producer_config(&plan.base, args);
    let mut producers = Vec::new();
    for k in 0..args.producers {
        producers.push(produce::create(
            &cfg,
            &format!("producer-{k}"),
            shared.produced.clone(),
            shared.window,
        )?);
    }
    let total = std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(k, producer)| {
                let sched = Schedule {
                    index: k as u64,
                    of: args.producers as u64,
                    rate,
                    drain,
                };
                let maker = RecordMaker::new(
                    0x5eed + k as u64,
                    args.message_size,
                    args.size_dist,
                    args.keys,
                );
                let stop = &plan.stop;
                scope.spawn(move || {
                    produce::run_sender(producer, &plan.topic, maker, &sched, &shared.window, stop)
                })
            })
            .collect();
        let mut total = SenderOutcome::default();
        for h in handles {
            let o = h.join().expect("producer thread panicked");
            total.sent += o.sent;
            total.unsent += o.unsent;
            total.rejected += o.rejected;
        }
        total
    });
    let unacked = producers
        .iter()
        .map(|p| produce::drain(p, drain).max(0) as u64)
        .sum();
    Ok((total, unacked))
}

/// After producing: wait until consumers have seen as many records as were acknowledged, or
/// nothing new arrived for a while, or the drain time is up.
fn wait_consumers_caught_up(shared: &Shared, drain_secs: u64, stop: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(drain_secs);
    let mut last_count = u64::MAX;
    let mut last_change = Instant::now();
    loop {
        let consumed = shared.consumed.total_msgs.load(Ordering::Relaxed);
        let acked = shared.produced.total_msgs.load(Ordering::Relaxed);
        let now = Instant::now();
        if consumed != last_count {
            last_count = consumed;
            last_change = now;
        }
        let idle = now - last_change >= CONSUMER_IDLE_END;
        if consumed >= acked || idle || now >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn build_report(plan: &Plan, shared: &Shared, rate: Rate, outcome: Outcome) -> RunReport {
    let args = &plan.args;
    let w = &shared.window;
    let measured = w.measured().as_secs_f64();
    let produce = (args.scenario != Scenario::Consume).then(|| {
        let r = &shared.produced;
        Direction::new(
            r.measured_msgs.load(Ordering::Relaxed),
            r.measured_bytes.load(Ordering::Relaxed),
            measured,
            r.errors.load(Ordering::Relaxed) + outcome.senders.rejected,
            "due send time -> ack",
            r.run_histogram(),
        )
    });
    let consume = (args.scenario != Scenario::Produce).then(|| {
        let r = &shared.consumed;
        // Reading from the start ends at the log's end, usually before the window does.
        let end = outcome
            .consume_end
            .map_or(w.measure_until, |e| e.min(w.measure_until));
        let seconds = end.saturating_duration_since(w.measure_from).as_secs_f64();
        let kind = match args.scenario {
            Scenario::E2e => "due send time -> consumed",
            _ => "record age at consume",
        };
        Direction::new(
            r.measured_msgs.load(Ordering::Relaxed),
            r.measured_bytes.load(Ordering::Relaxed),
            seconds,
            r.errors.load(Ordering::Relaxed),
            kind,
            r.run_histogram(),
        )
    });
    let offered = match rate {
        Rate::PerSec(r) => Some(((w.measure_until - w.start).as_secs_f64() * r).ceil() as u64),
        Rate::Max => None,
    };
    RunReport {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        target_rate: rate.to_string(),
        offered: offered.filter(|_| args.scenario != Scenario::Consume),
        sent: outcome.senders.sent,
        unsent: outcome.senders.unsent,
        unacked: outcome.unacked,
        produce,
        consume,
        foreign_records: shared.consumed.foreign.load(Ordering::Relaxed),
        timeline: std::mem::take(&mut *shared.timeline.lock().expect("timeline lock poisoned")),
    }
}

/// Once a second: notes what the second moved in the timeline and (unless quiet) prints a
/// line with the phase, the rates and the latency of the last second.
async fn progress(plan: Arc<Plan>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = (0u64, 0u64, 0u64, 0u64);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let w = &shared.window;
        let phase = if now < w.measure_from {
            "warmup"
        } else if now < w.measure_until {
            "measure"
        } else {
            "drain"
        };
        let p = &shared.produced;
        let c = &shared.consumed;
        let cur = (
            p.total_msgs.load(Ordering::Relaxed),
            p.total_bytes.load(Ordering::Relaxed),
            c.total_msgs.load(Ordering::Relaxed),
            c.total_bytes.load(Ordering::Relaxed),
        );
        shared
            .timeline
            .lock()
            .expect("timeline lock poisoned")
            .push(Second {
                t_s: (now - w.start).as_secs_f64(),
                phase,
                produced_msgs: cur.0 - last.0,
                produced_bytes: cur.1 - last.1,
                consumed_msgs: cur.2 - last.2,
                consumed_bytes: cur.3 - last.3,
            });
        if plan.args.quiet {
            last = cur;
            continue;
        }
        let mut line = format!("[{:>4}s {phase:<7}]", (now - w.start).as_secs());
        if plan.args.scenario != Scenario::Consume {
            line += &interval_part("prod", cur.0 - last.0, cur.1 - last.1, p);
        }
        if plan.args.scenario != Scenario::Produce {
            line += &interval_part("cons", cur.2 - last.2, cur.3 - last.3, c);
        }
        eprintln!("{line}");
        last = cur;
    }
}

fn interval_part(name: &str, msgs: u64, bytes: u64, r: &Recorder) -> String {
    let h = r.take_interval();
    let lat = if h.is_empty() {
        "-".to_string()
    } else {
        format!(
            "p50 {:.2} p99 {:.2} max {:.2} ms",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        )
    };
    format!(
        " {name} {msgs:>8} msg/s {:>8.2} MB/s {lat} err {}",
        bytes as f64 / 1e6,
        r.errors.load(Ordering::Relaxed)
    )
}
