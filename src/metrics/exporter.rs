//! The Prometheus text endpoint (`GET /metrics`) and `GET /health`, on a plain thread of its
//! own: scrapes read the shards' counters; they never run on a shard.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;

use kafka_protocol::messages::ApiKey;

use std::collections::HashMap;
use std::sync::Arc;

use hdrhistogram::Histogram;

use super::{CommittedOffset, ShardMetrics, all_shards, lock};

/// Starts the exporter thread; returns an error if the address cannot be bound.
pub fn serve_metrics(addr: SocketAddr) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
        })
}

fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/metrics" => ("200 OK", render()),
        "/health" => ("200 OK", "ok\n".to_string()),
        _ => ("404 Not Found", "try /metrics or /health\n".to_string()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|()| key.to_string())
}

/// Renders every shard's metrics in the Prometheus text format.
pub fn render() -> String {
    let shards = all_shards();
    let mut out = String::new();
    header(
        &mut out,
        "sluice_requests_total",
        "counter",
        "Requests served, by shard and API.",
    );
    header(
        &mut out,
        "sluice_request_errors_total",
        "counter",
        "Requests that closed their connection.",
    );
    for s in &shards {
        for (key, count) in s.requests.iter().enumerate() {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                let errors = s.errors[key].load(Ordering::Relaxed);
                let labels = format!("shard=\"{}\",api=\"{}\"", s.core, api_name(key as i16));
                let _ = writeln!(out, "sluice_requests_total{{{labels}}} {n}");
                let _ = writeln!(out, "sluice_request_errors_total{{{labels}}} {errors}");
            }
        }
    }
    render_latency(&mut out, &shards);
    render_shard_gauges(&mut out, &shards);
    render_topics(&mut out, &shards);
    render_partitions(&mut out, &shards);
    render_ring_io(&mut out, &shards);
    render_pools(&mut out, &shards);
    render_group_lag(&mut out, &shards);
    out
}

fn render_ring_io(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    let io: Vec<(usize, super::RingIo)> =
        shards.iter().map(|s| (s.core, *lock(&s.ring_io))).collect();
    let ops = |r: &super::RingIo| {
        [
            ("read", r.reads, r.read_bytes),
            ("buffered_read", r.buffered_reads, r.buffered_read_bytes),
            ("write", r.writes, r.write_bytes),
            ("buffered_write", r.buffered_writes, r.buffered_write_bytes),
        ]
    };
    header(
        out,
        "sluice_uring_file_ops_total",
        "counter",
        "File operations submitted to the shard's io_uring rings and completed (glommio's ring statistics; appends are buffered_write).",
    );
    for (core, r) in &io {
        for (op, count, _) in ops(r) {
            let _ = writeln!(
                out,
                "sluice_uring_file_ops_total{{shard=\"{core}\",op=\"{op}\"}} {count}"
            );
        }
    }
    header(
        out,
        "sluice_uring_file_bytes_total",
        "counter",
        "Bytes moved by those file operations.",
    );
    for (core, r) in &io {
        for (op, _, bytes) in ops(r) {
            let _ = writeln!(
                out,
                "sluice_uring_file_bytes_total{{shard=\"{core}\",op=\"{op}\"}} {bytes}"
            );
        }
    }
    header(
        out,
        "sluice_uring_files_open",
        "gauge",
        "Files the shard's rings have open (opened minus closed).",
    );
    for (core, r) in &io {
        let open = r.files_opened.saturating_sub(r.files_closed);
        let _ = writeln!(out, "sluice_uring_files_open{{shard=\"{core}\"}} {open}");
    }
}

fn render_pools(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    let pools: Vec<(usize, super::PoolGauge)> =
        shards.iter().map(|s| (s.core, *lock(&s.pools))).collect();
    header(
        out,
        "sluice_pool_buffers",
        "gauge",
        "Buffers kept for reuse, by shard and pool.",
    );
    for (core, p) in &pools {
        let _ = writeln!(
            out,
            "sluice_pool_buffers{{shard=\"{core}\",pool=\"fetch_copy\"}} {}",
            p.copy_buffers
        );
        let _ = writeln!(
            out,
            "sluice_pool_buffers{{shard=\"{core}\",pool=\"request_frame\"}} {}",
            p.frame_buffers
        );
    }
    header(
        out,
        "sluice_pool_bytes",
        "gauge",
        "Memory held by those buffers (capacity).",
    );
    for (core, p) in &pools {
        let _ = writeln!(
            out,
            "sluice_pool_bytes{{shard=\"{core}\",pool=\"fetch_copy\"}} {}",
            p.copy_buffer_bytes
        );
        let _ = writeln!(
            out,
            "sluice_pool_bytes{{shard=\"{core}\",pool=\"request_frame\"}} {}",
            p.frame_buffer_bytes
        );
    }
}

/// Each committed offset with its lag: the partition's high watermark (as its owning shard
/// last published it) minus the offset, never below 0. Partitions not (yet) published by
/// their shard are left out rather than reported with a made-up lag.
fn group_lag(
    committed: &[CommittedOffset],
    high_watermarks: &HashMap<(&str, i32), i64>,
) -> Vec<(CommittedOffset, i64)> {
    committed
        .iter()
        .filter_map(|c| {
            let hw = high_watermarks.get(&(c.topic.as_str(), c.partition))?;
            Some((c.clone(), (hw - c.offset).max(0)))
        })
        .collect()
}

fn render_group_lag(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    let partitions: Vec<_> = shards.iter().map(|s| lock(&s.partitions).clone()).collect();
    let high_watermarks: HashMap<(&str, i32), i64> = partitions
        .iter()
        .flatten()
        .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
        .collect();
    let committed: Vec<CommittedOffset> = shards
        .iter()
        .flat_map(|s| lock(&s.committed).clone())
        .collect();
    let lags = group_lag(&committed, &high_watermarks);
    header(
        out,
        "sluice_consumer_group_committed_offset",
        "gauge",
        "A consumer group's committed offset for a partition.",
    );
    for (c, _) in &lags {
        let _ = writeln!(
            out,
            "sluice_consumer_group_committed_offset{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
            c.group, c.topic, c.partition, c.offset
        );
    }
    header(
        out,
        "sluice_consumer_group_lag",
        "gauge",
        "High watermark minus the group's committed offset (records not yet consumed).",
    );
    for (c, lag) in &lags {
        let _ = writeln!(
            out,
            "sluice_consumer_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {lag}",
            c.group, c.topic, c.partition
        );
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_latency(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    header(
        out,
        "sluice_request_latency_seconds",
        "summary",
        "Request latency from frame read to reply written (HdrHistogram).",
    );
    for s in shards {
        for (key, h) in lock(&s.latency_us).iter() {
            let labels = format!("shard=\"{}\",api=\"{}\"", s.core, api_name(*key));
            for q in [0.5, 0.9, 0.99, 0.999] {
                let v = h.value_at_quantile(q) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "sluice_request_latency_seconds{{{labels},quantile=\"{q}\"}} {v}"
                );
            }
            let _ = writeln!(
                out,
                "sluice_request_latency_seconds_count{{{labels}}} {}",
                h.len()
            );
        }
    }
    header(
        out,
        "sluice_fsync_latency_seconds",
        "summary",
        "fdatasync latency of partition flushes.",
    );
    for s in shards {
        let count = s.fsyncs.load(Ordering::Relaxed);
        shard_summary(
            out,
            "sluice_fsync_latency_seconds",
            s.core,
            &lock(&s.fsync_us),
            None,
            count,
        );
    }
}

/// One shard's samples of a summary: its p50 and p99 in seconds (from a histogram of
/// microseconds), `max_us` as quantile 1 when given, and its count.
fn shard_summary(
    out: &mut String,
    name: &str,
    core: usize,
    h: &Histogram<u64>,
    max_us: Option<u64>,
    count: u64,
) {
    let quantiles = [0.5, 0.99].map(|q| (q, h.value_at_quantile(q)));
    for (q, us) in quantiles.into_iter().chain(max_us.map(|m| (1.0, m))) {
        let v = us as f64 / 1e6;
        let _ = writeln!(out, "{name}{{shard=\"{core}\",quantile=\"{q}\"}} {v}");
    }
    let _ = writeln!(out, "{name}_count{{shard=\"{core}\"}} {count}");
}

/// The stall probe's figures (`shard/stall_probe.rs`): wake-ups, stalls over 1 ms and over
/// 20 ms, the longest, and quantiles of the stalls themselves.
fn render_stalls(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    per_shard(
        out,
        shards,
        (
            "sluice_shard_stall_probes_total",
            "counter",
            "Wake-ups of the shard's stall probe (every 1 ms while it serves requests, every 100 ms after a second without one).",
        ),
        |s| s.stall_probes.load(Ordering::Relaxed) as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_shard_stalls_total",
            "counter",
            "Stall-probe wake-ups that ran over 1 ms late: the shard thread was held (a blocking call, a long task, or the kernel running something else on its core).",
        ),
        |s| s.stalls.load(Ordering::Relaxed) as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_shard_long_stalls_total",
            "counter",
            "Stall-probe wake-ups that ran over 20 ms late.",
        ),
        |s| s.long_stalls.load(Ordering::Relaxed) as i64,
    );
    header(
        out,
        "sluice_shard_stall_seconds",
        "summary",
        "How late the stall probe ran, over the wake-ups more than 1 ms late; max is the longest since start-up.",
    );
    for s in shards {
        let max = s.stall_max_us.load(Ordering::Relaxed);
        let count = s.stalls.load(Ordering::Relaxed);
        let h = lock(&s.stall_us);
        shard_summary(
            out,
            "sluice_shard_stall_seconds",
            s.core,
            &h,
            Some(max),
            count,
        );
    }
}

/// One sample per shard of a metric read by `value`, under its HELP/TYPE header.
fn per_shard(
    out: &mut String,
    shards: &[Arc<ShardMetrics>],
    (name, kind, help): (&str, &str, &str),
    value: impl Fn(&ShardMetrics) -> i64,
) {
    header(out, name, kind, help);
    for s in shards {
        let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.core, value(s));
    }
}

fn render_shard_gauges(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    per_shard(
        out,
        shards,
        ("sluice_connections", "gauge", "Open client connections."),
        |s| s.connections.load(Ordering::Relaxed),
    );
    per_shard(
        out,
        shards,
        (
            "sluice_partitions",
            "gauge",
            "Partitions (all led by their shard) per shard.",
        ),
        |s| lock(&s.partitions).len() as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_connections_refused_total",
            "counter",
            "Connections closed at accept for exceeding max.connections, max.connections.per.ip or the shard's cap.",
        ),
        |s| s.connections_refused.load(Ordering::Relaxed) as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_connections_timed_out_total",
            "counter",
            "Connections closed after connections.max.idle.ms idle or a frame slower than sluice.request.read.timeout.ms.",
        ),
        |s| s.connections_timed_out.load(Ordering::Relaxed) as i64,
    );
    render_stalls(out, shards);
    per_shard(
        out,
        shards,
        (
            "sluice_fetch_wakeups_total",
            "counter",
            "Long-polling fetches woken before max_wait_ms to read again: new data or a high-watermark move in a partition they read, or shutdown.",
        ),
        |s| s.fetch_wakeups.load(Ordering::Relaxed) as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_sasl_authentication_failures_total",
            "counter",
            "Connections closed for bad SASL credentials.",
        ),
        |s| s.sasl_failures.load(Ordering::Relaxed) as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_tls_handshake_failures_total",
            "counter",
            "TLS connections refused: failed handshake or no principal for the certificate.",
        ),
        |s| s.tls_failures.load(Ordering::Relaxed) as i64,
    );
    per_shard(
        out,
        shards,
        (
            "sluice_request_memory_free_bytes",
            "gauge",
            "Bytes left in the shard's queued.max.request.bytes share (-1: unbounded).",
        ),
        |s| s.request_memory_free.load(Ordering::Relaxed),
    );
    per_shard(
        out,
        shards,
        (
            "sluice_partitions_offline",
            "gauge",
            "Partitions of the shard that failed to open (clients get KAFKA_STORAGE_ERROR).",
        ),
        |s| s.partitions_offline.load(Ordering::Relaxed),
    );
    render_segment_files(out, shards);
}

/// Name, type, help and value of one closed-segment cache series.
type CacheGauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&super::CacheStats) -> u64,
);

/// The closed-segment descriptor cache of each shard.
fn render_segment_files(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    let stats: Vec<_> = shards.iter().map(|s| *lock(&s.segment_files)).collect();
    let gauges: [CacheGauge; 4] = [
        (
            "sluice_segment_files_open",
            "gauge",
            "Closed-segment log files the shard's descriptor cache holds open.",
            |c| c.open as u64,
        ),
        (
            "sluice_segment_files_limit",
            "gauge",
            "Most closed-segment log files the shard keeps open.",
            |c| c.limit as u64,
        ),
        (
            "sluice_segment_file_opens_total",
            "counter",
            "Closed-segment log files opened by reads (cache misses).",
            |c| c.opened,
        ),
        (
            "sluice_segment_file_evictions_total",
            "counter",
            "Closed-segment log files closed to stay within the limit.",
            |c| c.evicted,
        ),
    ];
    for (name, kind, help, value) in gauges {
        header(out, name, kind, help);
        for (s, c) in shards.iter().zip(&stats) {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.core, value(c));
        }
    }
}

fn render_topics(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    header(
        out,
        "sluice_topic_bytes_in_total",
        "counter",
        "Record bytes produced, by topic.",
    );
    header(
        out,
        "sluice_topic_messages_in_total",
        "counter",
        "Records produced, by topic.",
    );
    header(
        out,
        "sluice_topic_bytes_out_total",
        "counter",
        "Record bytes fetched, by topic.",
    );
    for s in shards {
        for (topic, t) in lock(&s.topics).iter() {
            let labels = format!("shard=\"{}\",topic=\"{topic}\"", s.core);
            let _ = writeln!(
                out,
                "sluice_topic_bytes_in_total{{{labels}}} {}",
                t.bytes_in
            );
            let _ = writeln!(
                out,
                "sluice_topic_messages_in_total{{{labels}}} {}",
                t.messages_in
            );
            let _ = writeln!(
                out,
                "sluice_topic_bytes_out_total{{{labels}}} {}",
                t.bytes_out
            );
        }
    }
}

fn render_partitions(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    header(
        out,
        "sluice_log_size_bytes",
        "gauge",
        "Bytes of a partition's log on disk.",
    );
    header(
        out,
        "sluice_log_segments",
        "gauge",
        "Segments of a partition's log.",
    );
    header(
        out,
        "sluice_log_end_offset",
        "gauge",
        "High watermark (log end offset on one node).",
    );
    header(
        out,
        "sluice_log_start_offset",
        "gauge",
        "First offset still in the log.",
    );
    for s in shards {
        for p in lock(&s.partitions).iter() {
            let labels = format!(
                "shard=\"{}\",topic=\"{}\",partition=\"{}\"",
                s.core, p.topic, p.partition
            );
            let _ = writeln!(out, "sluice_log_size_bytes{{{labels}}} {}", p.size_bytes);
            let _ = writeln!(out, "sluice_log_segments{{{labels}}} {}", p.segments);
            let _ = writeln!(
                out,
                "sluice_log_end_offset{{{labels}}} {}",
                p.high_watermark
            );
            let _ = writeln!(
                out,
                "sluice_log_start_offset{{{labels}}} {}",
                p.log_start_offset
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(group: &str, topic: &str, partition: i32, offset: i64) -> CommittedOffset {
        CommittedOffset {
            group: group.into(),
            topic: topic.into(),
            partition,
            offset,
        }
    }

    #[test]
    fn lag_is_the_high_watermark_minus_the_committed_offset() {
        let hw = HashMap::from([(("t", 0), 10), (("t", 1), 5)]);
        let lags = group_lag(
            &[
                committed("g", "t", 0, 4),
                committed("g", "t", 1, 7),
                committed("g", "gone", 0, 1),
            ],
            &hw,
        );
        assert_eq!(
            lags,
            vec![
                (committed("g", "t", 0, 4), 6),
                (committed("g", "t", 1, 7), 0)
            ]
        );
    }
}
