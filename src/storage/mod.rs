//! Storage: partition logs in Kafka's on-disk layout (`<topic>-<partition>/` with `.log`,
//! `.index`, `.timeindex` per segment), recovery, and the data-directory lock. Each partition
//! log is owned by exactly one shard.

pub mod cleaner;
pub mod fd_budget;
pub mod file_cache;
pub mod index;
pub mod lock;
pub mod log;
pub mod producer_state;
pub mod segment;
pub mod txn_index;
pub mod writeback;
