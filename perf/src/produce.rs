//! Open-loop producers.
//!
//! Each producer thread walks its share of a global send schedule: message `n` of the run is due
//! at `start + n / rate`, and producer `k` of `P` sends `n = k, k + P, k + 2P, ...`. A message is
//! sent when due (never early); if the client or broker is slow the thread falls behind and
//! sends the backlog as fast as it can, and the latency of every message is still measured from
//! its due time. That is what keeps a slow broker from hiding its queueing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::cli::{Args, Rate};
use crate::client::Reporting;
use crate::payload::RecordMaker;
use crate::stats::{Recorder, Window};

/// Delivery reports land here (on librdkafka's polling thread): latency is now minus the due
/// time carried as the message's opaque value.
pub struct DeliveryCtx {
    report: Reporting,
    rec: Arc<Recorder>,
    window: Window,
}

impl ClientContext for DeliveryCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        self.report.log(level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.report.error(error, reason);
    }
}

impl ProducerContext for DeliveryCtx {
    /// Due time of the message, as nanoseconds since the run started.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, due_ns: usize) {
        match result {
            Ok(msg) => {
                let now = Instant::now();
                let due = self.window.start + Duration::from_nanos(due_ns as u64);
                let latency = self.window.contains(due).then(|| now - due);
                self.rec
                    .record(msg.payload_len(), self.window.contains(now), latency);
            }
            Err((err, _)) => {
                self.rec.error();
                self.report.error(err.clone(), "delivery failed");
            }
        }
    }
}

/// What one producer thread did.
#[derive(Default, Debug, Clone, Copy)]
pub struct SenderOutcome {
    pub sent: u64,
    /// Messages due before the end that were never sent because the drain time ran out.
    pub unsent: u64,
    /// Messages the client refused to enqueue for a reason other than a full queue.
    pub rejected: u64,
}

/// Producer client settings from the flags.
pub fn producer_config(base: &ClientConfig, args: &Args) -> ClientConfig {
    let mut cfg = base.clone();
    cfg.set("acks", args.acks.as_config())
        .set("compression.type", &args.compression)
        .set("batch.size", args.batch_size.to_string())
        .set("linger.ms", args.linger_ms.to_string())
        .set("message.timeout.ms", "120000");
    // Paced: room for a deep backlog, so overload shows up as latency rather than send errors.
    // Unpaced: librdkafka's default queue bounds how far the sender runs ahead of the broker.
    if args.rates().iter().any(|r| matches!(r, Rate::PerSec(_))) {
        cfg.set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576");
    }
    cfg
}

pub fn create(
    cfg: &ClientConfig,
    name: &str,
    rec: Arc<Recorder>,
    window: Window,
) -> anyhow::Result<ThreadedProducer<DeliveryCtx>> {
    let ctx = DeliveryCtx {
        report: Reporting::new(name),
        rec,
        window,
    };
    cfg.create_with_context(ctx).context("creating producer")
}

/// The schedule of one producer thread.
pub struct Schedule {
    pub index: u64,
    pub of: u64,
    pub rate: Rate,
    pub drain: Duration,
}

impl Schedule {
    /// Due time of this thread's `i`-th message; `None` when unpaced.
    pub(crate) fn due(&self, window: &Window, i: u64) -> Option<Instant> {
        match self.rate {
            Rate::Max => None,
            Rate::PerSec(r) => {
                let n = self.index + i * self.of;
                Some(window.start + Duration::from_secs_f64(n as f64 / r))
            }
        }
    }

    /// Messages of this thread due in `[from_i, end)`.
    pub(crate) fn remaining(&self, window: &Window, from_i: u64) -> u64 {
        match self.rate {
            Rate::Max => 0,
            Rate::PerSec(r) => {
                let total = (window.measure_until - window.start).as_secs_f64() * r;
                let mine = ((total - self.index as f64) / self.of as f64)
                    .ceil()
                    .max(0.0) as u64;
                mine.saturating_sub(from_i)
            }
        }
    }
}

/// Sends this thread's share of the schedule until the end of the measured window.
pub fn run_sender(
    producer: &ThreadedProducer<DeliveryCtx>,
    topic: &str,
    mut maker: RecordMaker,
    sched: &Schedule,
    window: &Window,
    stop: &AtomicBool,
) -> SenderOutcome {
    let mut out = SenderOutcome::default();
    let give_up = window.measure_until + sched.drain;
    let mut i = 0u64;
    loop {
        let now = Instant::now();
        let due = sched.due(window, i).unwrap_or(now);
        if due >= window.measure_until || stop.load(Ordering::Relaxed) {
            break;
        }
        if now >= give_up {
            out.unsent = sched.remaining(window, i);
            break;
        }
        wait_until(due);
        let due_ns = (due - window.start).as_nanos() as usize;
        let (key, value) = maker.next(window.unix_ns(due));
        let mut record = BaseRecord::with_opaque_to(topic, due_ns).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        match send_blocking(producer, record) {
            Ok(()) => out.sent += 1,
            Err(e) => {
                out.rejected += 1;
                if out.rejected == 1 {
                    eprintln!("producer {}: send refused: {e}", sched.index);
                }
            }
        }
        i += 1;
    }
    out
}

/// Enqueues a record, waiting while librdkafka's queue is full (that wait is part of the
/// measured latency, since the due time is fixed).
fn send_blocking(
    producer: &ThreadedProducer<DeliveryCtx>,
    mut record: BaseRecord<'_, [u8], [u8], usize>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Sleeps until `due`. Never spins: the generator shares its core with librdkafka's own
/// threads, and a spinning sender would steal their time. Waking up late by the timer slack
/// (~50-100 us) is measured honestly, since latency counts from `due`; at high rates the
/// messages that fell due meanwhile go out as a small burst.
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Waits for outstanding deliveries; returns how many were still in flight at the deadline.
pub fn drain(producer: &ThreadedProducer<DeliveryCtx>, wait: Duration) -> i32 {
    let _ = producer.flush(wait);
    producer.in_flight_count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_interleaves_producers_and_counts_remaining() {
        let w = Window::new(Duration::from_secs(1), Duration::from_secs(1));
        let s = Schedule {
            index: 1,
            of: 2,
            rate: Rate::PerSec(10.0),
            drain: Duration::ZERO,
        };
        // Global messages 1, 3, 5, ... at 10/s: 0.1 s, 0.3 s, ...
        assert_eq!(s.due(&w, 0).unwrap() - w.start, Duration::from_millis(100));
        assert_eq!(s.due(&w, 2).unwrap() - w.start, Duration::from_millis(500));
        // 20 messages due in 2 s; this thread owns the 10 odd ones.
        assert_eq!(s.remaining(&w, 0), 10);
        assert_eq!(s.remaining(&w, 7), 3);
    }
}
