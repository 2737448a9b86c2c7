//! Transaction state of one partition, as readers need it: the first offset of every
//! producer's open transaction (which bounds the last stable offset, LSO) and the aborted
//! transactions (producer id, first offset, marker offset) a read_committed fetch must list
//! so the client drops their records. Kept in memory, rebuilt at open by scanning batch
//! headers (control batches are decoded for their marker type). Each aborted transaction is
//! also appended to its marker's segment's `.txnindex` file in Kafka's format, so operators'
//! tools can read it; the scan stays the source of truth, and the active segment's file is
//! rewritten from it at open (an append a crash lost is restored). Lives in the partition
//! log, on the shard that owns the partition.

use std::collections::HashMap;

/// One aborted transaction of this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The transactional producer that aborted.
    pub producer_id: i64,
    /// Offset of the transaction's first record in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's LSO right after the marker (Kafka stores it in `.txnindex`).
    pub last_stable_offset: i64,
}

/// Size of one `.txnindex` entry: version, producer id, first, last and last stable offset.
pub const ENTRY_BYTES: usize = 34;
const ENTRY_VERSION: i16 = 0;

impl AbortedTxn {
    /// Kafka's `AbortedTxn` entry layout (big-endian, version 0).
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Decodes whole entries of version 0; a torn tail or another version ends the list.
    pub fn decode_all(bytes: &[u8]) -> Vec<Self> {
        let field = |e: &[u8], at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&e[at..at + 8]);
            i64::from_be_bytes(b)
        };
        bytes
            .chunks_exact(ENTRY_BYTES)
            .take_while(|e| e[0..2] == ENTRY_VERSION.to_be_bytes())
            .map(|e| Self {
                producer_id: field(e, 2),
                first_offset: field(e, 10),
                last_offset: field(e, 18),
                last_stable_offset: field(e, 26),
            })
            .collect()
    }
}

/// What the index needs to know of each appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnBatch {
    /// Producer id from the batch header; -1 for a non-idempotent producer.
    pub producer_id: i64,
    /// Offset of the batch's first record (for a marker, the marker's offset).
    pub base_offset: i64,
    /// Whether the batch's transactional attribute bit is set; other batches are ignored.
    pub transactional: bool,
    /// `Some(commit)` for a transaction marker, `None` for data (or other control records).
    pub marker: Option<bool>,
}

/// The transaction state of one partition log (see the module doc).
#[derive(Debug, Default)]
pub struct TxnIndex {
    /// Producer id → first offset of its open transaction here.
    ongoing: HashMap<i64, i64>,
    /// Ordered by `last_offset` (markers are appended in offset order).
    aborted: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// Applies one appended (or recovered) batch; returns the transaction an ABORT marker
    /// ended, for the segment's `.txnindex`.
    pub fn note(&mut self, batch: &TxnBatch) -> Option<AbortedTxn> {
        if !batch.transactional {
            return None;
        }
        match batch.marker {
            None => {
                self.ongoing
                    .entry(batch.producer_id)
                    .or_insert(batch.base_offset);
                None
            }
            Some(commit) => {
                // A marker for a producer with no open transaction here (a retried marker
                // write, or a transaction that wrote nothing to this partition) ends nothing.
                let first_offset = self.ongoing.remove(&batch.producer_id)?;
                if commit {
                    return None;
                }
                let aborted = AbortedTxn {
                    producer_id: batch.producer_id,
                    first_offset,
                    last_offset: batch.base_offset,
                    last_stable_offset: self.last_stable_offset(batch.base_offset + 1),
                };
                self.aborted.push(aborted);
                Some(aborted)
            }
        }
    }

    /// The last stable offset: nothing at or past the first offset of an open transaction
    /// is visible to read_committed readers.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Aborted transactions overlapping offsets `[from, to)`, as Fetch lists them.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Forgets aborted transactions wholly below the log start (deleted by retention).
    pub fn prune_below(&mut self, log_start_offset: i64) {
        let keep_from = self
            .aborted
            .partition_point(|a| a.last_offset < log_start_offset);
        self.aborted.drain(..keep_from);
    }

    /// Aborted transactions whose marker is at or after `offset` (one segment's entries).
    pub fn aborted_from(&self, offset: i64) -> &[AbortedTxn] {
        let start = self.aborted.partition_point(|a| a.last_offset < offset);
        &self.aborted[start..]
    }

    /// Whether `producer_id` has an open transaction on this partition.
    pub fn is_open(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }

    /// Producer ids with an open transaction here, with its first offset.
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(p, o)| (*p, *o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pid: i64, offset: i64) -> TxnBatch {
        TxnBatch {
            producer_id: pid,
            base_offset: offset,
            transactional: true,
            marker: None,
        }
    }
    fn marker(pid: i64, offset: i64, commit: bool) -> TxnBatch {
        TxnBatch {
            marker: Some(commit),
            ..data(pid, offset)
        }
    }

    #[test]
    fn lso_stops_at_the_oldest_open_transaction() {
        let mut idx = TxnIndex::default();
        assert_eq!(idx.last_stable_offset(10), 10);
        idx.note(&data(1, 10));
        idx.note(&data(2, 12));
        idx.note(&data(1, 14)); // same transaction: first offset stays 10
        assert_eq!(idx.last_stable_offset(20), 10);
        idx.note(&marker(1, 20, true));
        assert_eq!(idx.last_stable_offset(21), 12);
        idx.note(&marker(2, 21, false));
        assert_eq!(idx.last_stable_offset(22), 22);
        // Non-transactional batches never hold the LSO back.
        idx.note(&TxnBatch {
            transactional: false,
            ..data(3, 22)
        });
        assert_eq!(idx.last_stable_offset(23), 23);
    }

    #[test]
    fn txnindex_entries_round_trip_in_kafkas_layout() {
        let mut idx = TxnIndex::default();
        idx.note(&data(1, 0));
        idx.note(&data(2, 3));
        let aborted = idx
            .note(&marker(1, 5, false))
            .expect("an abort ends a transaction");
        assert_eq!(
            aborted.last_stable_offset, 3,
            "producer 2 still holds the LSO"
        );
        let bytes = aborted.encode();
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &1i64.to_be_bytes());
        let mut file = bytes.to_vec();
        file.extend_from_slice(&bytes[..20]); // a torn second entry
        assert_eq!(AbortedTxn::decode_all(&file), vec![aborted]);
        assert_eq!(
            idx.note(&marker(2, 6, true)),
            None,
            "commits are not indexed"
        );
        assert_eq!(idx.aborted_from(5).len(), 1);
        assert!(idx.aborted_from(6).is_empty());
    }

    #[test]
    fn aborted_transactions_are_listed_by_overlap() {
        let mut idx = TxnIndex::default();
        idx.note(&data(1, 0));
        idx.note(&marker(1, 5, false));
        idx.note(&data(2, 6));
        idx.note(&marker(2, 8, true));
        idx.note(&data(3, 9));
        idx.note(&marker(3, 12, false));
        assert_eq!(idx.aborted_between(0, 13), vec![(1, 0), (3, 9)]);
        assert_eq!(idx.aborted_between(6, 9), Vec::<(i64, i64)>::new());
        assert_eq!(idx.aborted_between(10, 11), vec![(3, 9)]);
        assert_eq!(idx.aborted_between(5, 6), vec![(1, 0)]);
        idx.prune_below(6);
        assert_eq!(idx.aborted_between(0, 13), vec![(3, 9)]);
        // A marker with nothing open is ignored.
        assert_eq!(idx.note(&marker(9, 13, false)), None);
        assert_eq!(idx.aborted_between(0, 14), vec![(3, 9)]);
    }
}
