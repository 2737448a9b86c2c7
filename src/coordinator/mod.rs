//! Coordinators that live with the partitions of Kafka's internal topics.
//!
//! Each coordinator instance runs on the shard that owns the `__consumer_offsets` (or
//! `__transaction_state`) partition its keys hash to, so its state is single-threaded and needs
//! no locks. Everything here is pure logic: no sockets, no files, no async, and time is always
//! passed in as `now_ms`. The wiring layer (handlers) turns requests into calls, sends the
//! responses this code hands back, appends the records it emits to the internal topic, and calls
//! `tick` when `next_deadline_ms` says a timer is due.
//!
//! - [`group`]: the classic consumer-group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup),
//!   committed offsets, and the `__consumer_offsets` record format.
//! - [`txn`]: transactional ids, producer epochs and fencing, open transactions, timeouts,
//!   the `__transaction_state` record format and transaction markers.

pub mod group;
pub mod txn;
