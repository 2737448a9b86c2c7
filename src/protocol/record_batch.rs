//! A zero-copy view of Kafka's RecordBatch v2 header, its validation, and the in-place
//! patches the broker makes when it appends (base offset, LogAppendTime).
//!
//! Pure functions over byte slices: no I/O, used on every shard's produce path, by start-up
//! recovery and by `dump-log`.
//!
//! Layout (big-endian), from Kafka's message format documentation:
//! ```text
//! 0  base_offset i64      8  batch_length i32    12 partition_leader_epoch i32
//! 16 magic i8             17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16       23 last_offset_delta i32
//! 27 base_timestamp i64   35 max_timestamp i64
//! 43 producer_id i64      51 producer_epoch i16  53 base_sequence i32
//! 57 record_count i32     61 records...
//! ```

/// Bytes before the `batch_length` field ends: base offset and the length itself.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header.
pub const HEADER_LEN: usize = 61;
/// Offset where the CRC-covered region starts.
const CRC_START: usize = 21;

const OFF_BATCH_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

/// Attribute bit: timestamps are LogAppendTime rather than CreateTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
/// Attribute bit: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: the batch is a control batch (transaction marker).
pub const ATTR_CONTROL: i16 = 1 << 5;
/// Mask of the compression codec bits.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// Why a byte range is not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer ends before the batch does (a partial batch at a log's tail, or a short
    /// request); `needed` is the byte count the batch declares or the header requires.
    #[error("truncated batch: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch (or its fixed header) needs.
        needed: usize,
        /// Bytes the buffer holds.
        available: usize,
    },
    /// `batch_length` declares fewer than the 49 bytes of header that follow it.
    #[error("batch length {0} is smaller than the v2 header")]
    LengthTooSmall(i32),
    /// The magic byte is not 2; message sets v0/v1 are refused, not converted.
    #[error("unsupported magic {0}: only RecordBatch v2 is accepted")]
    UnsupportedMagic(i8),
    /// The stored CRC-32C does not match the one computed over bytes 21..end.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC read from the header (bytes 17..21).
        stored: u32,
        /// CRC-32C computed over bytes 21..end.
        computed: u32,
    },
    /// `record_count` is negative or exceeds `last_offset_delta + 1` (or the delta is negative).
    #[error("record count {count} does not fit last_offset_delta {last_offset_delta}")]
    BadRecordCount {
        /// `record_count` from the header.
        count: i32,
        /// `last_offset_delta` from the header.
        last_offset_delta: i32,
    },
    /// Attribute bits 0..2 hold a codec other than 0..=4.
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
}

/// Compression codec of a batch (attribute bits 0..2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Codec 0: records stored as is.
    None,
    /// Codec 1.
    Gzip,
    /// Codec 2: raw snappy blocks or xerial framing (the Java client's).
    Snappy,
    /// Codec 3 (LZ4 frame format).
    Lz4,
    /// Codec 4.
    Zstd,
}

impl Compression {
    /// Decodes the codec from a batch's attribute bits 0..2; `UnknownCompression` for 5..=7.
    pub fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & ATTR_COMPRESSION_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// Kafka's name for the codec (`compression.type`), e.g. `"lz4"`; used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8-byte slice"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4-byte slice"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2-byte slice"))
}

/// Reads the total size (header + body) of the batch starting at `buf[0]`, from the first
/// 12 bytes only. Used to walk a log without validating every batch.
pub fn total_size(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        });
    }
    let batch_length = be_i32(buf, OFF_BATCH_LENGTH);
    if i64::from(batch_length) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
        return Err(BatchError::LengthTooSmall(batch_length));
    }
    Ok(LOG_OVERHEAD + batch_length as usize)
}

/// The fixed header fields of a batch, read without needing the batch body.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader {
    /// Offset of the batch's first record, as assigned by the log on append.
    pub base_offset: i64,
    /// Bytes of the whole batch, the 12-byte log overhead included (`batch_length + 12`).
    pub total_size: usize,
    /// Last record's offset minus `base_offset`; never negative in a valid batch.
    pub last_offset_delta: i32,
    /// Idempotent/transactional producer id; -1 when the producer has none.
    pub producer_id: i64,
    /// Producer epoch that goes with `producer_id`; -1 when there is none.
    pub producer_epoch: i16,
    /// Sequence number of the first record for idempotence; -1 when not idempotent.
    pub base_sequence: i32,
    /// Raw attribute bits: codec, timestamp type, transactional, control (see `ATTR_*`).
    pub attributes: i16,
    /// Largest record timestamp in the batch, in ms since the epoch (LogAppendTime when stamped).
    pub max_timestamp: i64,
    /// Leader epoch of the leader that appended the batch (-1 when none stamped it).
    pub partition_leader_epoch: i32,
}

impl BatchHeader {
    /// Whether the transactional attribute bit is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    /// Whether this is a control batch (a transaction commit/abort marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
}

/// A borrowed, validated-on-demand view of one RecordBatch v2.
#[derive(Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Views the first batch in `buf`, checking only that its declared length is present.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        let size = total_size(buf)?;
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        let view = Self {
            bytes: &buf[..size],
        };
        if view.magic() != 2 {
            return Err(BatchError::UnsupportedMagic(view.magic()));
        }
        Ok(view)
    }

    /// Reads the fixed header from the first `HEADER_LEN` bytes of a batch.
    pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let total_size = total_size(buf)?;
        if buf[OFF_MAGIC] as i8 != 2 {
            return Err(BatchError::UnsupportedMagic(buf[OFF_MAGIC] as i8));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            total_size,
            last_offset_delta: be_i32(buf, OFF_LAST_OFFSET_DELTA),
            producer_id: be_i64(buf, OFF_PRODUCER_ID),
            producer_epoch: be_i16(buf, OFF_PRODUCER_EPOCH),
            base_sequence: be_i32(buf, OFF_BASE_SEQUENCE),
            attributes: be_i16(buf, OFF_ATTRIBUTES),
            max_timestamp: be_i64(buf, OFF_MAX_TIMESTAMP),
            partition_leader_epoch: be_i32(buf, OFF_LEADER_EPOCH),
        })
    }

    /// Views and fully validates the first batch: length, magic, CRC, codec, record count.
    pub fn parse_validated(buf: &'a [u8]) -> Result<Self, BatchError> {
        let view = Self::parse(buf)?;
        view.validate()?;
        Ok(view)
    }

    /// Full validation of this batch (CRC-32C over attributes..end and header sanity).
    pub fn validate(&self) -> Result<(), BatchError> {
        let computed = crc32c::crc32c(&self.bytes[CRC_START..]);
        if computed != self.crc() {
            return Err(BatchError::CrcMismatch {
                stored: self.crc(),
                computed,
            });
        }
        Compression::from_attributes(self.attributes())?;
        let count = self.record_count();
        let delta = self.last_offset_delta();
        // Compaction may remove records, so count <= delta + 1; an empty or negative count
        // is never produced by a client.
        if delta < 0 || count < 0 || i64::from(count) > i64::from(delta) + 1 {
            return Err(BatchError::BadRecordCount {
                count,
                last_offset_delta: delta,
            });
        }
        Ok(())
    }

    /// The batch's bytes, exactly `total_size()` long (from the base offset to the last record).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Bytes of the whole batch, the 12-byte log overhead included.
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }
    /// Offset of the first record, as assigned by the log (the producer's value before append).
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, 0)
    }
    /// Leader epoch the broker stamped on append (not covered by the CRC).
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, OFF_LEADER_EPOCH)
    }
    /// Format version; `parse` only returns views whose magic is 2.
    pub fn magic(&self) -> i8 {
        self.bytes[OFF_MAGIC] as i8
    }
    /// Stored CRC-32C (Castagnoli) of bytes 21..end; not checked here, see `validate`.
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, OFF_CRC) as u32
    }
    /// Raw attribute bits: codec, timestamp type, transactional, control (see `ATTR_*`).
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, OFF_ATTRIBUTES)
    }
    /// Codec from the attribute bits; `UnknownCompression` for codec 5..=7.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes())
    }
    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    /// Whether this is a control batch, i.e. a transaction marker (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// Whether timestamps are LogAppendTime (attribute bit 3) rather than CreateTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTR_LOG_APPEND_TIME != 0
    }
    /// Last record's offset minus the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, OFF_LAST_OFFSET_DELTA)
    }
    /// Offset of the batch's last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }
    /// Timestamp of the first record, in ms since the epoch; record timestamps are deltas from it.
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_TIMESTAMP)
    }
    /// Largest record timestamp in ms (the broker's append time when LogAppendTime is set).
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_MAX_TIMESTAMP)
    }
    /// Producer id; -1 for a non-idempotent producer.
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, OFF_PRODUCER_ID)
    }
    /// Producer epoch; -1 for a non-idempotent producer.
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, OFF_PRODUCER_EPOCH)
    }
    /// Sequence number of the first record; -1 for a non-idempotent producer.
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, OFF_BASE_SEQUENCE)
    }
    /// Number of records as the header declares it; may be below `last_offset_delta + 1`
    /// after compaction.
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, OFF_RECORD_COUNT)
    }
    /// The (possibly compressed) records section after the fixed header.
    pub fn records_section(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Walks consecutive batches in a buffer; stops at the first invalid or incomplete one.
pub struct BatchIter<'a> {
    rest: &'a [u8],
    validate: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over `buf` from its start; with `validate`, each batch is also CRC- and
    /// header-checked (`BatchView::parse_validated`), otherwise only its length and magic.
    pub fn new(buf: &'a [u8], validate: bool) -> Self {
        Self {
            rest: buf,
            validate,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchView<'a>, BatchError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = if self.validate {
            BatchView::parse_validated(self.rest)
        } else {
            BatchView::parse(self.rest)
        };
        match parsed {
            Ok(view) => {
                self.rest = &self.rest[view.total_size()..];
                Some(Ok(view))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Overwrites the base offset of the batch at the start of `batch`. The CRC does not cover
/// the base offset, so the batch stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps LogAppendTime: sets the timestamp-type bit and max_timestamp, then recomputes the
/// CRC, since both fields are covered by it.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, OFF_ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
    batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Builds a batch header around an already-encoded records section. Used by tests, the
/// load generator and the broker's own control records.
pub struct BatchBuilder {
    /// Offset written into the header; the log overwrites it on append.
    pub base_offset: i64,
    /// Attribute bits (codec, timestamp type, transactional, control); 0 by default.
    pub attributes: i16,
    /// Last record's offset minus `base_offset`; the caller keeps it consistent with the records.
    pub last_offset_delta: i32,
    /// First record's timestamp in ms since the epoch.
    pub base_timestamp: i64,
    /// Largest record timestamp in ms since the epoch.
    pub max_timestamp: i64,
    /// Producer id; -1 (the default) for no producer.
    pub producer_id: i64,
    /// Producer epoch; -1 (the default) for no producer.
    pub producer_epoch: i16,
    /// First record's sequence number; -1 (the default) for no idempotence.
    pub base_sequence: i32,
    /// Number of records in the records section; the caller keeps it consistent.
    pub record_count: i32,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self {
            base_offset: 0,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 0,
        }
    }
}

impl BatchBuilder {
    /// Produces the complete batch bytes with a correct CRC.
    pub fn build(&self, records_section: &[u8]) -> Vec<u8> {
        let total = HEADER_LEN + records_section.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&((total - LOG_OVERHEAD) as i32).to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
        out.push(2); // magic
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        out.extend_from_slice(&self.attributes.to_be_bytes());
        out.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.record_count.to_be_bytes());
        out.extend_from_slice(records_section);
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        BatchBuilder {
            base_offset: 0,
            last_offset_delta: 1,
            base_timestamp: 1_000,
            max_timestamp: 1_005,
            record_count: 2,
            ..Default::default()
        }
        .build(&[1, 2, 3, 4, 5])
    }

    #[test]
    fn builds_and_parses_a_valid_batch() {
        let b = sample();
        let v = BatchView::parse_validated(&b).unwrap();
        assert_eq!(v.total_size(), HEADER_LEN + 5);
        assert_eq!(v.last_offset(), 1);
        assert_eq!(v.max_timestamp(), 1_005);
        assert_eq!(v.record_count(), 2);
        assert_eq!(v.compression().unwrap(), Compression::None);
        assert_eq!(v.records_section(), &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn base_offset_patch_keeps_crc_valid() {
        let mut b = sample();
        set_base_offset(&mut b, 42);
        let v = BatchView::parse_validated(&b).unwrap();
        assert_eq!(v.base_offset(), 42);
        assert_eq!(v.last_offset(), 43);
    }

    #[test]
    fn log_append_time_patch_recomputes_crc() {
        let mut b = sample();
        set_log_append_time(&mut b, 9_999);
        let v = BatchView::parse_validated(&b).unwrap();
        assert!(v.is_log_append_time());
        assert_eq!(v.max_timestamp(), 9_999);
    }

    #[test]
    fn every_flipped_covered_byte_is_detected() {
        let b = sample();
        for i in CRC_START..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(
                BatchView::parse_validated(&c).is_err(),
                "flip at byte {i} not detected"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = sample();
        for cut in 0..b.len() {
            assert!(
                BatchView::parse(&b[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut b = sample();
        b[OFF_MAGIC] = 1;
        assert_eq!(
            BatchView::parse(&b).err(),
            Some(BatchError::UnsupportedMagic(1))
        );
    }

    #[test]
    fn iterator_stops_at_a_torn_tail() {
        let mut buf = sample();
        buf.extend_from_slice(&sample());
        let whole = buf.len();
        buf.extend_from_slice(&sample()[..30]);
        let views: Vec<_> = BatchIter::new(&buf, true).collect();
        assert_eq!(views.len(), 3);
        assert!(views[0].is_ok() && views[1].is_ok() && views[2].is_err());
        let good: usize = views.iter().flatten().map(|v| v.total_size()).sum();
        assert_eq!(good, whole);
    }
}
