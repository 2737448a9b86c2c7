//! The Prometheus text endpoint (`GET /metrics`) and `GET /health`, on a plain thread of its
//! own: scrapes read the shards' counters; they never run on a shard.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;

use kafka_protocol::messages::ApiKey;

use super::{ShardMetrics, all_shards, lock};

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
        .unwrap_or_else(|_| key.to_string())
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
    out
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
        let h = lock(&s.fsync_us);
        for q in [0.5, 0.99] {
            let v = h.value_at_quantile(q) as f64 / 1e6;
            let _ = writeln!(
                out,
                "sluice_fsync_latency_seconds{{shard=\"{}\",quantile=\"{q}\"}} {v}",
                s.core
            );
        }
        let _ = writeln!(
            out,
            "sluice_fsync_latency_seconds_count{{shard=\"{}\"}} {}",
            s.core,
            s.fsyncs.load(Ordering::Relaxed)
        );
    }
}

fn render_shard_gauges(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    header(
        out,
        "sluice_connections",
        "gauge",
        "Open client connections.",
    );
    header(
        out,
        "sluice_partitions",
        "gauge",
        "Partitions (all led by their shard) per shard.",
    );
    for s in shards {
        let _ = writeln!(
            out,
            "sluice_connections{{shard=\"{}\"}} {}",
            s.core,
            s.connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "sluice_partitions{{shard=\"{}\"}} {}",
            s.core,
            lock(&s.partitions).len()
        );
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
