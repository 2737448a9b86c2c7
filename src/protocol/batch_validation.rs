//! Checks that the records inside a producer's RecordBatch v2 agree with its header, as
//! Kafka's `LogValidator` does before it accepts a batch: the header says `count` records
//! with `lastOffsetDelta == count - 1`, and the records section holds exactly that many
//! records, each one parsing to its declared length (varints, key, value, headers) with
//! offset deltas 0, 1, 2, ... Compressed sections are decompressed as a stream into a small
//! fixed buffer with a hard bound on the bytes produced, so a compression bomb costs bounded
//! CPU and no large allocation. Everything here only reads: the stored bytes stay exactly as
//! the producer sent them. Pure functions; runs on the shard that owns the partition, on the
//! produce path.

use std::io::Read;

use crate::protocol::compression::{self, CodecError};
use crate::protocol::record_batch::{BatchView, Compression};

/// Why the records of a batch disagree with its header. `Decompression` maps to Kafka's
/// CORRUPT_MESSAGE, `DecompressedTooLarge` to MESSAGE_TOO_LARGE, the rest to INVALID_RECORD
/// (what Kafka answers for each; see the produce handler).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The header's `record_count` is below 1 or not `last_offset_delta + 1` (a producer's
    /// batch is never compacted); INVALID_RECORD.
    #[error(
        "record count {count} with last offset delta {last_offset_delta}: a producer batch holds lastOffsetDelta + 1 >= 1 records"
    )]
    CountMismatch {
        /// `record_count` from the header.
        count: i32,
        /// `last_offset_delta` from the header.
        last_offset_delta: i32,
    },
    /// One record does not parse; INVALID_RECORD.
    #[error("record {index}: {problem}")]
    Malformed {
        /// Position of the record in the batch, from 0.
        index: i32,
        /// What is wrong with it.
        problem: RecordProblem,
    },
    /// The section holds more bytes after the declared records; INVALID_RECORD.
    #[error("bytes remain after the {count} records the header declares")]
    TrailingBytes {
        /// `record_count` from the header.
        count: i32,
    },
    /// The codec bits are unknown or the decompressor failed (corrupt input, bad gzip
    /// trailer); CORRUPT_MESSAGE.
    #[error("{codec} records section cannot be decompressed: {reason}")]
    Decompression {
        /// Codec name as `Compression::name` gives it, or `"unknown"`.
        codec: &'static str,
        /// The decompressor's error message.
        reason: String,
    },
    /// Decompression produced more than the bound; MESSAGE_TOO_LARGE.
    #[error("records section decompresses to more than {limit} bytes")]
    DecompressedTooLarge {
        /// The bound in bytes (see [`decompressed_limit`]).
        limit: usize,
    },
}

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    /// A varint, length or the record itself runs past the end of the section.
    #[error("runs past the end of the records section")]
    Truncated,
    /// A varint has more bytes than its type allows (5 for varint, 10 for varlong).
    #[error("varint longer than {0} bytes")]
    OverlongVarint(usize),
    /// A length or count is negative where it may not be (-1 is null only in nullable fields),
    /// or a header count is larger than the bytes left in the record.
    #[error("invalid {field} {value}")]
    BadLength {
        /// Which field, e.g. `"record length"`, `"header count"`, `"key"`.
        field: &'static str,
        /// The value read.
        value: i32,
    },
    /// A key, value or header field is longer than what is left of the record's declared
    /// length.
    #[error("{field} of {len} bytes runs past the record's declared length")]
    Overrun {
        /// Which field: `"key"`, `"value"`, `"header key"` or `"header value"`.
        field: &'static str,
        /// The field's declared length in bytes.
        len: i32,
    },
    /// The record's fields take a different number of bytes than its length varint says.
    #[error("declares {declared} bytes but its fields take {read}")]
    SizeMismatch {
        /// The record's length varint, in bytes.
        declared: i32,
        /// Bytes its fields actually took.
        read: u64,
    },
    /// The record's offset delta is not its index in the batch.
    #[error("offset delta {found}, expected {expected}")]
    OffsetDelta {
        /// The offset delta in the record.
        found: i32,
        /// The record's index, which the delta must equal.
        expected: i32,
    },
}

/// What the walk learned besides "valid".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordsSummary {
    /// Bytes of the (decompressed) records section.
    pub section_bytes: u64,
    /// Indexes (within the batch) of records with a null key, when asked for; the first
    /// [`MAX_KEYLESS`] of them (a refusal needs no more, and a bomb of tiny keyless records
    /// must not grow a list of millions).
    pub keyless: Vec<i32>,
}

/// Most keyless record indexes one walk reports.
pub const MAX_KEYLESS: usize = 1024;

/// The decompressed-size bound for a topic: 32 x `max.message.bytes` (at least 32 MiB),
/// never above what the rest of the broker decodes ([`compression::MAX_DECOMPRESSED_BYTES`]).
/// Producers compare their batch size with compressed bytes (the Java client estimates the
/// ratio), so a legitimate batch can be many times larger once decompressed.
pub fn decompressed_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .max(1 << 20)
        .saturating_mul(32)
        .min(compression::MAX_DECOMPRESSED_BYTES)
}

/// Walks every record of `view` (whose CRC and codec bits were checked already).
/// `limit` bounds the decompressed bytes; `want_keyless` collects null-key record indexes
/// (compacted topics). Control batches are walked the same way: their one record is a
/// normal record whose key and value are the marker.
pub fn check_records(
    view: &BatchView<'_>,
    limit: usize,
    want_keyless: bool,
) -> Result<RecordsSummary, RecordsError> {
    let count = view.record_count();
    let last_offset_delta = view.last_offset_delta();
    if count < 1 || i64::from(last_offset_delta) != i64::from(count) - 1 {
        return Err(RecordsError::CountMismatch {
            count,
            last_offset_delta,
        });
    }
    let codec = view
        .compression()
        .map_err(|e| RecordsError::Decompression {
            codec: "unknown",
            reason: e.to_string(),
        })?;
    let mut walk = Walk {
        count,
        want_keyless,
        keyless: Vec::new(),
    };
    let section_bytes = match codec {
        Compression::None => walk.run(&mut SliceSource::new(view.records_section()))?,
        Compression::Snappy => {
            let bytes = compression::snappy(view.records_section(), limit)
                .map_err(|e| codec_error(codec, e))?;
            walk.run(&mut SliceSource::new(&bytes))?
        }
        streamed => {
            let reader = compression::stream(streamed, view.records_section(), limit)
                .map_err(|e| codec_error(codec, e))?;
            walk.run(&mut StreamSource::new(reader, limit, streamed.name()))?
        }
    };
    Ok(RecordsSummary {
        section_bytes,
        keyless: walk.keyless,
    })
}

fn codec_error(codec: Compression, e: CodecError) -> RecordsError {
    match e {
        CodecError::TooLarge(limit) => RecordsError::DecompressedTooLarge { limit },
        CodecError::Corrupt { reason, .. } => RecordsError::Decompression {
            codec: codec.name(),
            reason,
        },
    }
}

/// Why a source could not give the next bytes.
enum SourceError {
    /// The section ended.
    End,
    /// The section's own structure (a varint) is invalid.
    Record(RecordProblem),
    /// The decompressor failed or went past the bound: the whole batch is refused.
    Batch(RecordsError),
}

/// The records section as the walk sees it: plain bytes or a decompressing stream.
trait Source {
    fn byte(&mut self) -> Result<u8, SourceError>;
    /// Skips `n` bytes that the walk does not need to look at (keys, values).
    fn skip(&mut self, n: u64) -> Result<(), SourceError>;
    /// Bytes consumed so far.
    fn position(&self) -> u64;
    /// True when nothing is left (for a stream: the decoder reached its end cleanly).
    fn at_end(&mut self) -> Result<bool, RecordsError>;
    /// Bytes known to remain, when the source knows (a slice does, a stream does not).
    fn remaining(&self) -> Option<u64>;

    /// A zigzag varint of at most `max_bytes` bytes, as Kafka's `ByteUtils` reads it.
    /// Its own loop rather than `protocol::varint`'s readers, which take a slice: this reads
    /// byte by byte from any source, a decompressing stream included.
    fn zigzag(&mut self, max_bytes: usize) -> Result<i64, SourceError> {
        let mut raw = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(SourceError::Record(RecordProblem::OverlongVarint(
            max_bytes,
        )))
    }
    fn varint(&mut self) -> Result<i32, SourceError> {
        // Five bytes carry 35 bits; like Kafka, the bits past 32 are dropped.
        self.zigzag(5).map(|v| v as i32)
    }
    fn varlong(&mut self) -> Result<i64, SourceError> {
        self.zigzag(10)
    }
}

struct SliceSource<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> SliceSource<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, SourceError> {
        let b = *self.bytes.get(self.at).ok_or(SourceError::End)?;
        self.at += 1;
        Ok(b)
    }
    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        if n > (self.bytes.len() - self.at) as u64 {
            return Err(SourceError::End);
        }
        self.at += n as usize;
        Ok(())
    }
    fn position(&self) -> u64 {
        self.at as u64
    }
    fn at_end(&mut self) -> Result<bool, RecordsError> {
        Ok(self.at == self.bytes.len())
    }
    fn remaining(&self) -> Option<u64> {
        Some((self.bytes.len() - self.at) as u64)
    }
}

/// Bytes of decompressed records held at a time.
const STREAM_CHUNK: usize = 16 * 1024;

/// A decompressing reader seen through a fixed buffer; counts every byte it produces
/// against `limit`.
struct StreamSource<'a> {
    reader: Box<dyn Read + 'a>,
    codec: &'static str,
    buf: Vec<u8>,
    at: usize,
    filled: usize,
    produced: u64,
    limit: u64,
}

impl<'a> StreamSource<'a> {
    fn new(reader: Box<dyn Read + 'a>, limit: usize, codec: &'static str) -> Self {
        Self {
            reader,
            codec,
            buf: vec![0; STREAM_CHUNK],
            at: 0,
            filled: 0,
            produced: 0,
            limit: limit as u64,
        }
    }

    /// Refills the buffer; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, RecordsError> {
        let n = loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(RecordsError::Decompression {
                        codec: self.codec,
                        reason: e.to_string(),
                    });
                }
            }
        };
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(RecordsError::DecompressedTooLarge {
                limit: self.limit as usize,
            });
        }
        self.at = 0;
        self.filled = n;
        Ok(n > 0)
    }
}

impl Source for StreamSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, SourceError> {
        if self.at == self.filled && !self.fill().map_err(SourceError::Batch)? {
            return Err(SourceError::End);
        }
        let b = self.buf[self.at];
        self.at += 1;
        Ok(b)
    }
    fn skip(&mut self, mut n: u64) -> Result<(), SourceError> {
        loop {
            let here = ((self.filled - self.at) as u64).min(n);
            self.at += here as usize;
            n -= here;
            if n == 0 {
                return Ok(());
            }
            if !self.fill().map_err(SourceError::Batch)? {
                return Err(SourceError::End);
            }
        }
    }
    fn position(&self) -> u64 {
        self.produced - (self.filled - self.at) as u64
    }
    fn at_end(&mut self) -> Result<bool, RecordsError> {
        // Reading to the end also makes gzip check its trailer (CRC-32 and length).
        Ok(self.at == self.filled && !self.fill()?)
    }
    fn remaining(&self) -> Option<u64> {
        None
    }
}

/// The record-by-record walk over one section.
struct Walk {
    count: i32,
    want_keyless: bool,
    keyless: Vec<i32>,
}

impl Walk {
    /// Walks `count` records and checks nothing follows them; returns the section's size.
    fn run(&mut self, src: &mut impl Source) -> Result<u64, RecordsError> {
        for index in 0..self.count {
            self.record(src, index).map_err(|e| match e {
                SourceError::End => RecordsError::Malformed {
                    index,
                    problem: RecordProblem::Truncated,
                },
                SourceError::Record(problem) => RecordsError::Malformed { index, problem },
                SourceError::Batch(e) => e,
            })?;
        }
        if !src.at_end()? {
            return Err(RecordsError::TrailingBytes { count: self.count });
        }
        Ok(src.position())
    }

    /// One record: length, attributes, timestamp delta, offset delta, key, value, headers,
    /// consuming exactly the declared length (Kafka's `DefaultRecord.readFrom`).
    fn record(&mut self, src: &mut impl Source, index: i32) -> Result<(), SourceError> {
        let length = src.varint()?;
        if length < 0 {
            return Err(bad("record length", length));
        }
        if src.remaining().is_some_and(|left| length as u64 > left) {
            return Err(SourceError::Record(RecordProblem::Truncated));
        }
        let start = src.position();
        let end = start + length as u64;
        src.byte()?; // attributes: unused in v2
        src.varlong()?; // timestamp delta: any value
        let offset_delta = src.varint()?;
        if offset_delta != index {
            return Err(SourceError::Record(RecordProblem::OffsetDelta {
                found: offset_delta,
                expected: index,
            }));
        }
        if !skip_bytes(src, end, "key", true)?
            && self.want_keyless
            && self.keyless.len() < MAX_KEYLESS
        {
            self.keyless.push(index);
        }
        skip_bytes(src, end, "value", true)?;
        let headers = src.varint()?;
        if headers < 0 || headers as u64 > end.saturating_sub(src.position()) {
            return Err(bad("header count", headers));
        }
        for _ in 0..headers {
            skip_bytes(src, end, "header key", false)?;
            skip_bytes(src, end, "header value", true)?;
        }
        let read = src.position() - start;
        if read != length as u64 {
            return Err(SourceError::Record(RecordProblem::SizeMismatch {
                declared: length,
                read,
            }));
        }
        Ok(())
    }
}

/// Skips a length-prefixed byte field that must end by `end`; -1 (null) only when
/// `nullable`. Returns whether the field was present (not null).
fn skip_bytes(
    src: &mut impl Source,
    end: u64,
    field: &'static str,
    nullable: bool,
) -> Result<bool, SourceError> {
    let len = src.varint()?;
    if len == -1 && nullable {
        return Ok(false);
    }
    if len < 0 {
        return Err(bad(field, len));
    }
    if src.position() + len as u64 > end {
        return Err(SourceError::Record(RecordProblem::Overrun { field, len }));
    }
    src.skip(len as u64)?;
    Ok(true)
}

fn bad(field: &'static str, value: i32) -> SourceError {
    SourceError::Record(RecordProblem::BadLength { field, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::BatchBuilder;
    use crate::protocol::records::{Record, encode_record};
    use crate::protocol::varint::{write_varint, write_varlong};

    const LIMIT: usize = 1 << 20;

    fn record(i: i32, key: Option<&[u8]>) -> Record {
        Record {
            attributes: 0,
            timestamp_delta: i64::from(i),
            offset_delta: i,
            key: key.map(<[u8]>::to_vec),
            value: Some(vec![i as u8; 20]),
            headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
        }
    }

    fn section(n: i32) -> Vec<u8> {
        let mut out = Vec::new();
        (0..n).for_each(|i| encode_record(&mut out, &record(i, Some(b"k"))));
        out
    }

    fn batch_with(codec: Compression, count: i32, last_offset_delta: i32, raw: &[u8]) -> Vec<u8> {
        BatchBuilder {
            attributes: codec_attr(codec),
            last_offset_delta,
            record_count: count,
            ..Default::default()
        }
        .build(&compression::compress(codec, raw))
    }

    fn codec_attr(codec: Compression) -> i16 {
        match codec {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn check(batch: &[u8]) -> Result<RecordsSummary, RecordsError> {
        check_records(&BatchView::parse(batch).unwrap(), LIMIT, true)
    }

    fn malformed(batch: &[u8]) -> (i32, RecordProblem) {
        match check(batch) {
            Err(RecordsError::Malformed { index, problem }) => (index, problem),
            other => panic!("expected a malformed record, got {other:?}"),
        }
    }

    /// One record's body from raw parts, length-prefixed with `length` (None: the true one).
    fn raw_record(length: Option<i32>, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, length.unwrap_or(body.len() as i32));
        out.extend_from_slice(body);
        out
    }

    /// attributes, timestamp delta 0, offset delta, then the rest as given.
    fn body(offset_delta: i32, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8];
        write_varlong(&mut out, 0);
        write_varint(&mut out, offset_delta);
        out.extend_from_slice(rest);
        out
    }

    fn varints(values: &[i32]) -> Vec<u8> {
        let mut out = Vec::new();
        values.iter().for_each(|v| write_varint(&mut out, *v));
        out
    }

    #[test]
    fn well_formed_batches_pass_in_every_codec_and_report_null_keys() {
        let mut raw = Vec::new();
        encode_record(&mut raw, &record(0, Some(b"k")));
        encode_record(&mut raw, &record(1, None));
        encode_record(&mut raw, &record(2, Some(b"")));
        for codec in CODECS {
            let summary = check(&batch_with(codec, 3, 2, &raw)).unwrap();
            assert_eq!(summary.keyless, vec![1], "{codec:?}");
            assert_eq!(summary.section_bytes, raw.len() as u64, "{codec:?}");
        }
    }

    #[test]
    fn a_count_that_disagrees_with_the_records_is_refused_in_every_codec() {
        for codec in CODECS {
            // Header count 1 holding 3 records: bytes remain after the first.
            assert_eq!(
                check(&batch_with(codec, 1, 0, &section(3))),
                Err(RecordsError::TrailingBytes { count: 1 }),
                "{codec:?}"
            );
            // Header count 3 holding 1 record: the second is missing.
            assert_eq!(
                malformed(&batch_with(codec, 3, 2, &section(1))),
                (1, RecordProblem::Truncated),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn count_and_last_offset_delta_must_agree() {
        for (count, delta) in [(1, i32::MAX), (0, -1), (0, 0), (2, 0), (-1, 3), (3, 1)] {
            assert_eq!(
                check(&batch_with(Compression::None, count, delta, &section(1))),
                Err(RecordsError::CountMismatch {
                    count,
                    last_offset_delta: delta
                }),
                "count {count} delta {delta}"
            );
        }
    }

    #[test]
    fn negative_and_oversized_record_lengths_are_refused() {
        let mut raw = varints(&[-7]);
        raw.extend_from_slice(&section(1)[1..]);
        let b = batch_with(Compression::None, 1, 0, &raw);
        let expected = RecordProblem::BadLength {
            field: "record length",
            value: -7,
        };
        assert_eq!(malformed(&b), (0, expected.clone()));
        assert_eq!(
            malformed(&batch_with(Compression::Gzip, 1, 0, &raw)),
            (0, expected)
        );
        let long = raw_record(Some(1000), &body(0, &varints(&[-1, -1, 0])));
        assert_eq!(
            malformed(&batch_with(Compression::None, 1, 0, &long)),
            (0, RecordProblem::Truncated)
        );
    }

    #[test]
    fn a_record_must_take_exactly_its_declared_length() {
        let fields = body(0, &varints(&[-1, -1, 0]));
        let mut padded = raw_record(Some(fields.len() as i32 + 2), &fields);
        padded.extend_from_slice(&[0, 0]);
        assert_eq!(
            malformed(&batch_with(Compression::None, 1, 0, &padded)),
            (
                0,
                RecordProblem::SizeMismatch {
                    declared: fields.len() as i32 + 2,
                    read: fields.len() as u64
                }
            )
        );
        // A key longer than the record: caught before skipping past the record's end.
        let mut key = body(0, &varints(&[50]));
        key.extend_from_slice(&[1; 50]);
        key.extend_from_slice(&varints(&[-1, 0]));
        let short = raw_record(Some(10), &key);
        assert_eq!(
            malformed(&batch_with(Compression::None, 1, 0, &short)),
            (
                0,
                RecordProblem::Overrun {
                    field: "key",
                    len: 50
                }
            )
        );
    }

    #[test]
    fn overlong_varints_are_refused() {
        let mut fields = vec![0u8, 0];
        fields.extend_from_slice(&[0xff; 6]); // offset delta: six continuation bytes
        fields.extend_from_slice(&varints(&[-1, -1, 0]));
        let b = batch_with(Compression::None, 1, 0, &raw_record(None, &fields));
        assert_eq!(malformed(&b), (0, RecordProblem::OverlongVarint(5)));
        // A timestamp delta of eleven bytes (varlongs take at most ten).
        let mut fields = vec![0u8];
        fields.extend_from_slice(&[0x80; 10]);
        fields.push(0);
        let b = batch_with(Compression::Lz4, 1, 0, &raw_record(None, &fields));
        assert_eq!(malformed(&b), (0, RecordProblem::OverlongVarint(10)));
    }

    #[test]
    fn truncated_sections_are_refused_at_every_cut() {
        let raw = section(2);
        for cut in 0..raw.len() {
            let b = batch_with(Compression::None, 2, 1, &raw[..cut]);
            assert!(
                matches!(check(&b), Err(RecordsError::Malformed { .. })),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn bad_key_value_and_header_lengths_are_refused() {
        let cases: [(&[i32], RecordProblem); 5] = [
            (&[-2, -1, 0], bad_length("key", -2)),
            (&[-1, -3, 0], bad_length("value", -3)),
            (&[-1, -1, -1], bad_length("header count", -1)),
            (&[-1, -1, 1_000_000], bad_length("header count", 1_000_000)),
            // Header keys are not nullable.
            (&[-1, -1, 1, -1, -1], bad_length("header key", -1)),
        ];
        for (fields, expected) in cases {
            let raw = raw_record(None, &body(0, &varints(fields)));
            let b = batch_with(Compression::None, 1, 0, &raw);
            assert_eq!(malformed(&b), (0, expected), "{fields:?}");
        }
        let ok = raw_record(None, &body(0, &varints(&[-1, -1, 1, 0, -1])));
        assert!(check(&batch_with(Compression::None, 1, 0, &ok)).is_ok());
    }

    fn bad_length(field: &'static str, value: i32) -> RecordProblem {
        RecordProblem::BadLength { field, value }
    }

    #[test]
    fn offset_deltas_must_count_from_zero() {
        let mut raw = Vec::new();
        for delta in [0, 0, 1] {
            raw.extend_from_slice(&raw_record(None, &body(delta, &varints(&[-1, -1, 0]))));
        }
        assert_eq!(
            malformed(&batch_with(Compression::Zstd, 3, 2, &raw)),
            (
                1,
                RecordProblem::OffsetDelta {
                    found: 0,
                    expected: 1
                }
            )
        );
    }

    #[test]
    fn undecodable_compressed_sections_are_refused() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = BatchBuilder {
                attributes: codec_attr(codec),
                record_count: 1,
                ..Default::default()
            }
            .build(&section(1));
            assert!(
                matches!(check(&b), Err(RecordsError::Decompression { .. })),
                "{codec:?} flag on plain bytes: {:?}",
                check(&b)
            );
            // A stream cut short: the decoder fails or the records run out.
            let packed = compression::compress(codec, &section(3));
            let cut = BatchBuilder {
                attributes: codec_attr(codec),
                record_count: 3,
                last_offset_delta: 2,
                ..Default::default()
            }
            .build(&packed[..packed.len() - 4]);
            assert!(check(&cut).is_err(), "{codec:?} cut");
        }
    }

    #[test]
    fn compression_bombs_stop_at_the_bound() {
        // 64 MiB of one record's zeros packs into a few KiB; the walk stops at 1 MiB.
        let mut fields = body(0, &varints(&[-1, 64 << 20]));
        fields.resize(fields.len() + (64 << 20), 0);
        fields.push(0);
        let raw = raw_record(None, &fields);
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch_with(codec, 1, 0, &raw);
            assert!(b.len() < 4 << 20, "{codec:?} packs small");
            assert_eq!(
                check(&b),
                Err(RecordsError::DecompressedTooLarge { limit: LIMIT }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn the_bound_follows_max_message_bytes_within_limits() {
        assert_eq!(decompressed_limit(1), 32 << 20);
        assert_eq!(decompressed_limit(2 << 20), 64 << 20);
        assert_eq!(
            decompressed_limit(usize::MAX),
            compression::MAX_DECOMPRESSED_BYTES
        );
    }
}
