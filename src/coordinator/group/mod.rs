//! Kafka's consumer-group coordinator as pure logic: classic groups, and KIP-848 consumer
//! groups in [`consumer`].
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition (see
//! [`records::partition_for_group`]). Nothing here does I/O or waits: callers pass `now_ms`,
//! get back [`Effects`] (records to append, then responses to deliver), and call
//! [`GroupCoordinator::tick`] at [`GroupCoordinator::next_deadline_ms`].
//!
//! - [`config`]: broker settings (Kafka names and defaults).
//! - [`types`]: version-free requests, responses, and [`Delivery`].
//! - [`member`]: one member and its parked requests.
//! - [`state`]: one group's rebalance state machine.
//! - [`committed`]: a group's committed offsets as data.
//! - [`offsets`]: commit validation, fetch, delete, expiry of committed offsets.
//! - [`records`]: the `__consumer_offsets` record format and start-up replay.
//! - [`coordinator`]: all groups of a shard; the API the handlers call.
//! - [`wire`]: conversions from and to the `kafka-protocol` request/response structs.
//! - [`consumer_protocol`]: reading topic subscriptions out of consumer metadata.
//! - [`consumer`]: KIP-848 consumer groups (ConsumerGroupHeartbeat, server-side assignors).

pub mod committed;
pub mod config;
pub mod consumer;
pub mod consumer_protocol;
pub mod coordinator;
pub mod member;
pub mod offsets;
pub mod records;
pub mod share;
pub mod state;
pub mod types;
pub mod wire;

#[cfg(test)]
mod tests_coordinator;
#[cfg(test)]
mod tests_state;
#[cfg(test)]
mod tests_state_lifecycle;

pub use config::GroupConfig;
pub use coordinator::{Effects, GroupCoordinator};
pub use state::{Group, GroupState};
pub use types::{Delivery, RequestToken, Response};
