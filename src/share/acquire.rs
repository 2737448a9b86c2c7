//! Handing a partition's records to one member of a share group: find where to read (the
//! first available record, else the first never delivered), read the batches from the log,
//! acquire what they hold under a lock, and keep the bytes of every batch with a record
//! acquired. The client gets whole batches and keeps only the offsets of its acquired ranges.
//!
//! Runs on the partition's shard; the log's bytes come through `FileRegion::to_bytes` (tail
//! inline from the page cache, older ranges on the blocking pool).

use std::io;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use super::partition_state::{AcquiredRange, Acquirer, BatchSpan, Limits};
use super::{PersistError, SharePartition, StateLink};
use crate::storage::log::Partition;

/// Byte offset of a batch's length field, and the size of what precedes the length's end.
const LENGTH_AT: usize = 8;
const LOG_OVERHEAD: usize = 12;
/// Byte offsets of a v2 batch's attributes and last offset delta.
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
/// Attribute bit of a control batch.
const CONTROL_BIT: i16 = 0x20;
/// Smallest v2 batch header.
const BATCH_HEADER: usize = 61;
/// Bytes read from the log at a time (always at least one whole batch).
const READ_CHUNK: u64 = 256 << 10;

/// What a member got from one partition.
#[derive(Debug, Default)]
pub struct Acquired {
    /// The batches holding acquired records, back to back.
    pub records: Bytes,
    /// The acquired offsets.
    pub ranges: Vec<AcquiredRange>,
}

/// The request-wide budgets acquisition spends.
pub struct Budget {
    /// Records still to hand out (`max_records`).
    pub records: usize,
    /// Bytes still to send (`max_bytes`); one batch is always allowed, as in Fetch.
    pub bytes: u64,
}

/// Why nothing could be acquired.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Read(#[from] io::Error),
    /// Expired locks or a moved start could not be stored.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// Acquires records of `log` for `member`. Expired locks are let go first and records gone
/// from the log are dropped from the window.
pub async fn acquire(
    (share, link): (&SharePartition, &impl StateLink),
    log: &Partition,
    member: &Rc<str>,
    limits: Limits,
    now_ms: i64,
    budget: &mut Budget,
) -> Result<Acquired, AcquireError> {
    let watermarks = log.watermarks();
    let (from, moved) = {
        let mut state = share.state.borrow_mut();
        let before = state.version();
        state.expire_locks(now_ms, limits);
        state.advance_to(watermarks.log_start_offset);
        let moved = state.version() != before;
        (
            state.next_candidate(watermarks.high_watermark, limits),
            moved,
        )
    };
    if moved {
        // Locks ran out (some records archived at the delivery limit) or retention moved the
        // start: a restart must see it.
        share.persist(link).await?;
    }
    let Some(mut from) = from else {
        return Ok(Acquired::default());
    };
    let mut out = BytesMut::new();
    let mut ranges = Vec::new();
    // The log is read a chunk at a time: a fetch asks for megabytes (its max_bytes) but
    // acquires a few hundred records, so reading all it allows would copy mostly bytes that
    // go nowhere.
    while budget.records > 0 && budget.bytes > 0 && from < watermarks.high_watermark {
        let want = budget.bytes.min(READ_CHUNK);
        let region = log.with_log(|l| l.read_upto(from, want, watermarks.high_watermark));
        let Some(region) = region.map_err(|e| io::Error::other(e.to_string()))? else {
            break;
        };
        let bytes = region.to_bytes().await?;
        let mut state = share.state.borrow_mut();
        let acquirer = Acquirer {
            member,
            from,
            now_ms,
            limits,
        };
        let mut next = from;
        for (span, batch) in batches(&bytes) {
            if budget.records == 0 {
                break;
            }
            if state.acquire_batch(span, &acquirer, &mut budget.records, &mut ranges) {
                out.extend_from_slice(batch);
                budget.bytes = budget.bytes.saturating_sub(batch.len() as u64);
            }
            next = span.last + 1;
        }
        if next == from
            || state
                .next_candidate(watermarks.high_watermark, limits)
                .is_none()
        {
            break;
        }
        from = next;
    }
    Ok(Acquired {
        records: out.freeze(),
        ranges,
    })
}

/// The whole batches of a log range with their spans; a cut last batch is left out.
pub fn batches(bytes: &[u8]) -> impl Iterator<Item = (BatchSpan, &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.len() < BATCH_HEADER {
            return None;
        }
        let base = i64::from_be_bytes(rest[..8].try_into().ok()?);
        let length = i32::from_be_bytes(rest[LENGTH_AT..LENGTH_AT + 4].try_into().ok()?);
        let total = LOG_OVERHEAD + usize::try_from(length).ok()?;
        if total < BATCH_HEADER || rest.len() < total {
            return None;
        }
        let attributes =
            i16::from_be_bytes(rest[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].try_into().ok()?);
        let delta = i32::from_be_bytes(
            rest[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                .try_into()
                .ok()?,
        );
        let (batch, tail) = rest.split_at(total);
        rest = tail;
        Some((
            BatchSpan {
                base,
                // Saturating: a corrupt range may name a base near i64::MAX (found by the
                // share_state fuzz target).
                last: base.saturating_add(i64::from(delta.max(0))),
                control: attributes & CONTROL_BIT != 0,
            },
            batch,
        ))
    })
}
