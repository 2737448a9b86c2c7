//! # Sluice: a Kafka-compatible, thread-per-core broker
//!
//! One process per machine (a *node*) runs one glommio executor per CPU core. Each executor
//! is a *shard* that owns a set of partitions outright and presents itself to Kafka clients as
//! a broker of its own (`node_id * 1000 + core`, its own port), so produce and fetch never
//! cross cores. See `../shared/ARCHITECTURE.md` and the README for the reasons.
//!
//! Module map:
//! - [`protocol`]: wire formats with no I/O (framing, RecordBatch v2, codecs).

pub mod coordinator;
pub mod protocol;
