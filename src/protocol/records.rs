//! Records inside a RecordBatch v2: decoding (after decompression) and encoding. The broker
//! never needs this on the produce or fetch path; it serves timestamp lookups, dump-log,
//! compaction, the CLI producer and tests. Pure functions.

use crate::protocol::byte_reader::{ByteReader, ReadError};
use crate::protocol::compression::{self, CodecError};
use crate::protocol::record_batch::{BatchView, Compression};
use crate::protocol::varint::{self, VarintError};

/// Why a batch's records could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    /// A varint is overlong or runs past the section.
    Varint(#[from] VarintError),
    #[error(transparent)]
    /// The records section could not be decompressed.
    Codec(#[from] CodecError),
    #[error("record field runs past the end of the record")]
    /// A record, or a field inside one, runs past the bytes its length prefix gives.
    Truncated,
    #[error("negative length {0}")]
    /// A record length, key/value/header length (other than -1, null) or header count is negative.
    NegativeLength(i32),
    #[error("unknown compression codec")]
    /// The batch's attribute bits name a codec other than 0..=4.
    UnknownCodec,
    /// No field of a record is read as UTF-8 (header names decode lossily); here so that
    /// every [`ReadError`] has its place.
    #[error("string is not UTF-8")]
    NotUtf8,
}

/// One decoded record; byte fields are owned copies of the decompressed section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record attributes byte; unused in RecordBatch v2 (0 on the wire).
    pub attributes: i8,
    /// Record timestamp minus the batch's `base_timestamp`, in ms.
    pub timestamp_delta: i64,
    /// Record offset minus the batch's `base_offset`.
    pub offset_delta: i32,
    /// Record key; `None` is a null key (length -1), which compacted topics refuse.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` is a null value (length -1), a tombstone in a compacted topic.
    pub value: Option<Vec<u8>>,
    /// Headers as (key, value); keys are decoded lossily as UTF-8, a null key as `""`.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl From<ReadError> for RecordError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Short { .. } => RecordError::Truncated,
            ReadError::Varint { error, .. } => RecordError::Varint(error),
            ReadError::NegativeLength { len, .. } => {
                RecordError::NegativeLength(i32::try_from(len).unwrap_or(i32::MIN))
            }
            ReadError::NotUtf8 { .. } => RecordError::NotUtf8,
        }
    }
}

/// Varint-length bytes: -1 is null, other negative lengths are errors.
fn nullable_bytes(r: &mut ByteReader<'_>) -> Result<Option<Vec<u8>>, RecordError> {
    let len = r.varint()?;
    match len {
        -1 => Ok(None),
        n if n < 0 => Err(RecordError::NegativeLength(n)),
        n => Ok(Some(r.take(n as usize)?.to_vec())),
    }
}

fn decode_one(body: &[u8]) -> Result<Record, RecordError> {
    let mut c = ByteReader::new(body);
    let attributes = c.i8()?;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = nullable_bytes(&mut c)?;
    let value = nullable_bytes(&mut c)?;
    let header_count = c.varint()?;
    if header_count < 0 {
        return Err(RecordError::NegativeLength(header_count));
    }
    let mut headers = Vec::with_capacity(header_count.min(64) as usize);
    for _ in 0..header_count {
        let name = nullable_bytes(&mut c)?.unwrap_or_default();
        headers.push((
            String::from_utf8_lossy(&name).into_owned(),
            nullable_bytes(&mut c)?,
        ));
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// Decodes every record of a batch, decompressing first when needed.
pub fn decode_records(view: &BatchView<'_>) -> Result<Vec<Record>, RecordError> {
    let codec = view.compression().map_err(|_| RecordError::UnknownCodec)?;
    let section = match codec {
        Compression::None => std::borrow::Cow::Borrowed(view.records_section()),
        other => std::borrow::Cow::Owned(compression::decompress(other, view.records_section())?),
    };
    decode_section(&section, view.record_count())
}

/// Decodes `count` length-prefixed records from an uncompressed records section.
pub fn decode_section(section: &[u8], count: i32) -> Result<Vec<Record>, RecordError> {
    let mut c = ByteReader::new(section);
    let mut out = Vec::with_capacity(count.clamp(0, 4096) as usize);
    for _ in 0..count.max(0) {
        let len = c.varint()?;
        if len < 0 {
            return Err(RecordError::NegativeLength(len));
        }
        out.push(decode_one(c.take(len as usize)?)?);
    }
    Ok(out)
}

/// Appends one length-prefixed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, record: &Record) {
    let mut body = Vec::with_capacity(32);
    body.push(record.attributes as u8);
    varint::write_varlong(&mut body, record.timestamp_delta);
    varint::write_varint(&mut body, record.offset_delta);
    write_nullable(&mut body, record.key.as_deref());
    write_nullable(&mut body, record.value.as_deref());
    varint::write_varint(&mut body, record.headers.len() as i32);
    for (name, value) in &record.headers {
        write_nullable(&mut body, Some(name.as_bytes()));
        write_nullable(&mut body, value.as_deref());
    }
    varint::write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => varint::write_varint(out, -1),
        Some(b) => {
            varint::write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::BatchBuilder;

    fn sample_records() -> Vec<Record> {
        (0..3)
            .map(|i| Record {
                attributes: 0,
                timestamp_delta: i64::from(i) * 10,
                offset_delta: i,
                key: (i != 1).then(|| format!("k{i}").into_bytes()),
                value: Some(vec![i as u8; 5]),
                headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
            })
            .collect()
    }

    #[test]
    fn records_round_trip_through_every_codec() {
        let records = sample_records();
        let mut section = Vec::new();
        records.iter().for_each(|r| encode_record(&mut section, r));
        for (attr, codec) in [
            (0, Compression::None),
            (1, Compression::Gzip),
            (2, Compression::Snappy),
            (3, Compression::Lz4),
            (4, Compression::Zstd),
        ] {
            let packed = compression::compress(codec, &section);
            let batch = BatchBuilder {
                attributes: attr,
                last_offset_delta: 2,
                record_count: 3,
                ..Default::default()
            }
            .build(&packed);
            let view = BatchView::parse_validated(&batch).unwrap();
            assert_eq!(decode_records(&view).unwrap(), records, "{codec:?}");
        }
    }

    #[test]
    fn truncated_sections_are_errors() {
        let mut section = Vec::new();
        sample_records()
            .iter()
            .for_each(|r| encode_record(&mut section, r));
        for cut in 0..section.len() {
            assert!(decode_section(&section[..cut], 3).is_err(), "cut {cut}");
        }
    }
}
