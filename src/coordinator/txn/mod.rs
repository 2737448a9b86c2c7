//! The transaction coordinator: transactional ids, producer epochs, the partitions of each
//! open transaction, and the `__transaction_state` record and marker formats. Pure logic
//! (no sockets, files or async); `shard::txns` wires it to requests, storage and the
//! cross-core mailbox on the shard that owns each id's `__transaction_state` partition.

pub mod metadata;
pub mod records;
pub mod state;
#[cfg(test)]
mod tests_state;

pub use metadata::{Tv2State, TxnMetadata, TxnStatus};
pub use state::{EndedV2, InitOutcome, MarkerJob, TxnCoordinator, TxnError, TxnRecord};
