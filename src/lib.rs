//! # Sluice: a Kafka-compatible, thread-per-core broker
//!
//! One process per machine (a *node*) runs one glommio executor per CPU core. Each executor
//! is a *shard* that owns a set of partitions outright and presents itself to Kafka clients as
//! a broker of its own (`node_id * 1000 + core`, its own port), so produce and fetch never
//! cross cores. The design and its reasons: `docs/architecture.md` in the repository.
//!
//! Module map:
//! - [`config`]: broker and topic configuration (Kafka key names), properties files,
//!   listener security (SASL users).
//! - [`protocol`]: wire formats with no I/O (RecordBatch v2 and its record validation,
//!   records, codecs, fetch framing, the bounds check in front of the request decoders).
//! - [`storage`]: partition logs in Kafka's on-disk layout, indexes, recovery, dir lock,
//!   early writeback, the descriptor budget and the per-shard cache of closed segments' files.
//! - [`metadata`]: topics, ids and placement (each shard reads its own copy); the cluster's
//!   metadata log records, the image they build, and the controller quorum (openraft).
//! - [`cluster_start`] and [`membership`]: a node joining a multi-node cluster (controller,
//!   registration, heartbeats, fencing, mirroring the quorum's image), off the shard threads.
//! - [`shard`]: per-core state, node start-up and shutdown, the cross-core mailbox (the only
//!   cross-core traffic: coordinator requests such as transaction markers), and in a cluster
//!   the replication of the shard's partitions (`shard::replication`: followers fetching from
//!   leaders, ISR and high watermark, the acks=all wait) and requests to other nodes' shards
//!   (`shard::broker_link`: replica fetches, transaction markers).
//! - [`server`]: listeners, node-wide connection limits, connections, request frames (size,
//!   time and memory limits), SASL authentication, the request-memory budget, dispatch,
//!   zero-copy sends.
//! - [`handlers`]: one module per Kafka API, with the versions each implements, and the
//!   registry that generates dispatch and ApiVersions from one list.
//! - [`logging`]: the stderr writer that never fails (a log line must not kill a shard) and
//!   last-words output for fatal exits.
//! - [`error_codes`]: the one mapping from typed errors to Kafka error codes.
//! - [`metrics`]: per-shard counters and histograms, Prometheus exporter.
//! - [`coordinator`]: consumer-group and transaction state machines, `__consumer_offsets`
//!   and `__transaction_state` records, transaction markers.
//! - [`client`]: a small synchronous Kafka client for the tools (any Kafka-compatible broker).
//! - `fuzzing`: entry points for the fuzz targets in `fuzz/` and the hostile-input tests.
//! - [`cli`]: the Kafka-tool-like subcommands (topics, produce, consume, groups, configs,
//!   cluster, dump-log) and their table/JSON output.

pub mod acl;
pub mod cli;
pub mod client;
pub mod cluster_start;
pub mod config;
pub mod coordinator;
pub mod error_codes;
pub mod event;
pub mod file_region;
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
pub mod logging;
pub mod membership;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod quota;
pub mod server;
pub mod shard;
pub mod share;
pub mod storage;

/// Wall-clock milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
