//! Decompression of record sections for the five Kafka codecs. The broker stores batches as
//! the producer compressed them; it decompresses only to look inside (timestamp lookups,
//! dump-log, compaction). Pure functions; runs wherever it is called.

use std::io::Read;

use crate::protocol::record_batch::Compression;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{codec} decompression failed: {reason}")]
    Corrupt { codec: &'static str, reason: String },
    #[error("decompressed size exceeds the {0}-byte limit")]
    TooLarge(usize),
}

/// Largest decompressed records section accepted: bounds memory for hostile input.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

fn corrupt(codec: &'static str, e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt {
        codec,
        reason: e.to_string(),
    }
}

fn read_bounded(mut reader: impl Read, codec: &'static str) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    reader
        .by_ref()
        .take(MAX_DECOMPRESSED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(CodecError::TooLarge(MAX_DECOMPRESSED_BYTES));
    }
    Ok(out)
}

/// Magic of the xerial snappy framing the Java client writes.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

fn snappy_raw(data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let len = snap::raw::decompress_len(data).map_err(|e| corrupt("snappy", e))?;
    if len > MAX_DECOMPRESSED_BYTES {
        return Err(CodecError::TooLarge(MAX_DECOMPRESSED_BYTES));
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| corrupt("snappy", e))
}

/// Snappy as Kafka clients send it: raw blocks (librdkafka) or xerial framing (Java).
fn snappy(data: &[u8]) -> Result<Vec<u8>, CodecError> {
    if !data.starts_with(XERIAL_MAGIC) {
        return snappy_raw(data);
    }
    let mut rest = data
        .get(16..)
        .ok_or_else(|| corrupt("snappy", "short xerial header"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("snappy", "short block"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let block = rest
            .get(4..4 + len)
            .ok_or_else(|| corrupt("snappy", "short block"))?;
        out.extend_from_slice(&snappy_raw(block)?);
        if out.len() > MAX_DECOMPRESSED_BYTES {
            return Err(CodecError::TooLarge(MAX_DECOMPRESSED_BYTES));
        }
        rest = &rest[4 + len..];
    }
    Ok(out)
}

pub fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(data), "gzip"),
        Compression::Snappy => snappy(data),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), "lz4"),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| corrupt("zstd", e))?;
            read_bounded(decoder, "zstd")
        }
    }
}

/// Compression for tests, the load generator and the CLI producer.
pub fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).expect("writing to a Vec cannot fail");
            enc.finish().expect("writing to a Vec cannot fail")
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .expect("snappy accepts any input size"),
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data).expect("writing to a Vec cannot fail");
            enc.finish().expect("writing to a Vec cannot fail")
        }
        Compression::Zstd => zstd::bulk::compress(data, 1).expect("zstd accepts any input"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data);
            assert_eq!(decompress(codec, &packed).unwrap(), data, "{codec:?}");
        }
    }

    #[test]
    fn xerial_snappy_is_read() {
        let data = b"hello hello hello hello".to_vec();
        let block = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
        framed.extend_from_slice(&block);
        assert_eq!(decompress(Compression::Snappy, &framed).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                decompress(codec, &[1, 2, 3, 4, 5, 6, 7, 8]).is_err(),
                "{codec:?}"
            );
        }
    }
}
