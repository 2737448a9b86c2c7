//! Decompression of record sections for the five Kafka codecs. The broker stores batches as
//! the producer compressed them; it decompresses only to look inside: every compressed produce
//! batch is walked (`batch_validation`, streaming, with a bound), and timestamp lookups,
//! dump-log and compaction decode records. Pure functions; runs wherever it is called.

use std::io::Read;

use crate::protocol::record_batch::Compression;

/// Why a records section could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The input is not valid for its codec (bad framing, checksum, trailer, or trailing bytes).
    #[error("{codec} decompression failed: {reason}")]
    Corrupt {
        /// Codec name, as `Compression::name` gives it.
        codec: &'static str,
        /// The decoder's error message, or what the frame check found.
        reason: String,
    },
    /// Decompression would produce more than the limit (in bytes) the caller passed, or
    /// [`MAX_DECOMPRESSED_BYTES`].
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

fn snappy_raw(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let len = snap::raw::decompress_len(data).map_err(|e| corrupt("snappy", e))?;
    if len > limit {
        return Err(CodecError::TooLarge(limit));
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| corrupt("snappy", e))
}

/// Snappy as Kafka clients send it: raw blocks (librdkafka) or xerial framing (Java), at
/// most `limit` bytes. Each block states its decompressed length up front, so the check
/// comes before the allocation.
pub fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    if !data.starts_with(XERIAL_MAGIC) {
        return snappy_raw(data, limit);
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
        out.extend_from_slice(&snappy_raw(block, limit - out.len())?);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Decompresses a whole records section into memory, bounded by [`MAX_DECOMPRESSED_BYTES`];
/// `Compression::None` returns a copy of `data`.
pub fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Snappy => snappy(data, MAX_DECOMPRESSED_BYTES),
        streamed => read_bounded(
            stream(streamed, data, MAX_DECOMPRESSED_BYTES)?,
            streamed.name(),
        ),
    }
}

/// A streaming decoder of `data` for the codecs that have one (gzip, lz4, zstd), so a caller
/// can look at the records without holding them all. Snappy (one block, or xerial's blocks)
/// and uncompressed data have none: `None`. `limit` bounds zstd's window, the one buffer a
/// hostile frame could otherwise make large (gzip's window is 32 KiB, lz4's blocks 4 MiB).
pub fn stream<'a>(
    codec: Compression,
    data: &'a [u8],
    limit: usize,
) -> Result<Box<dyn Read + 'a>, CodecError> {
    match codec {
        // Java's GZIPInputStream reads concatenated members too; bytes after the last member
        // that are not one are an error here (stricter than Java, which drops them).
        Compression::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(data))),
        Compression::Lz4 => {
            lz4_single_frame(data)?;
            Ok(Box::new(lz4_flex::frame::FrameDecoder::new(data)))
        }
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt("zstd", e))?;
            decoder
                .window_log_max(window_log_for(limit))
                .map_err(|e| corrupt("zstd", e))?;
            Ok(Box::new(decoder))
        }
        Compression::None | Compression::Snappy => Err(corrupt(codec.name(), "no stream decoder")),
    }
}

/// LZ4 frame magic (0x184D2204, little-endian).
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Kafka's Java clients read exactly one LZ4 frame and fail without its end mark, while
/// lz4_flex also accepts a frame cut at a block boundary and further frames. This walks the
/// block structure (no decompression) and requires one frame that ends with its end mark
/// (and content checksum, when flagged) exactly at the end of `data`.
pub fn lz4_single_frame(data: &[u8]) -> Result<(), CodecError> {
    let malformed = |reason: &str| corrupt("lz4", reason);
    if data.len() < 7 || data[..4] != LZ4_MAGIC {
        return Err(malformed("not an LZ4 frame"));
    }
    let flags = data[4];
    let (block_checksum, content_size, content_checksum, dict_id) = (
        flags & 0x10 != 0,
        flags & 0x08 != 0,
        flags & 0x04 != 0,
        flags & 0x01 != 0,
    );
    // Magic, FLG, BD, optional content size and dictionary id, header checksum.
    let mut at = 6 + 8 * usize::from(content_size) + 4 * usize::from(dict_id) + 1;
    loop {
        let size: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("frame ends without its end mark"))?;
        at += 4;
        let size = (u32::from_le_bytes(size) & 0x7fff_ffff) as usize;
        if size == 0 {
            break;
        }
        at = at.saturating_add(size + 4 * usize::from(block_checksum));
    }
    at += 4 * usize::from(content_checksum);
    if at != data.len() {
        return Err(malformed("bytes after the frame's end mark"));
    }
    Ok(())
}

/// The smallest zstd window log covering `limit` bytes, within zstd's own range (10..=27 is
/// what a decoder accepts by default); a window larger than the whole output is never needed.
fn window_log_for(limit: usize) -> u32 {
    let bits = usize::BITS - limit.max(1).saturating_sub(1).leading_zeros();
    bits.clamp(10, 27)
}

/// The level a topic asks a codec to compress at (`compression.gzip.level`,
/// `compression.zstd.level`; Kafka's defaults -1, meaning zlib's 6, and 3). lz4 and snappy
/// have none here: lz4_flex writes lz4's fast mode only, so `compression.lz4.level` is
/// accepted but has no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// `compression.gzip.level`: -1 (zlib's default, 6) or 1-9.
    pub gzip: i32,
    /// `compression.zstd.level`: zstd's range, negative levels included.
    pub zstd: i32,
}

impl Default for Levels {
    fn default() -> Self {
        Self { gzip: -1, zstd: 3 }
    }
}

/// Compression for the broker's recompression (`compression.type`), at the topic's levels.
pub fn compress_at(codec: Compression, data: &[u8], levels: Levels) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::Gzip => {
            let level = match levels.gzip {
                -1 => flate2::Compression::default(),
                n => flate2::Compression::new(n.clamp(0, 9) as u32),
            };
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
            enc.write_all(data).expect("writing to a Vec cannot fail");
            enc.finish().expect("writing to a Vec cannot fail")
        }
        Compression::Zstd => {
            zstd::bulk::compress(data, levels.zstd).expect("zstd accepts any input and level")
        }
        other => compress(other, data),
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
    fn lz4_needs_one_whole_frame() {
        let packed = compress(Compression::Lz4, &[7u8; 200_000]);
        assert!(lz4_single_frame(&packed).is_ok());
        assert!(
            lz4_single_frame(&packed[..packed.len() - 4]).is_err(),
            "no end mark"
        );
        let mut twice = packed.clone();
        twice.extend_from_slice(&packed);
        assert!(lz4_single_frame(&twice).is_err(), "a second frame");
        // Every optional field of the frame format, as other clients may set them.
        use std::io::Write;
        let info = lz4_flex::frame::FrameInfo::new()
            .content_size(Some(200_000))
            .block_checksums(true)
            .content_checksum(true);
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&[7u8; 200_000]).unwrap();
        let full = enc.finish().unwrap();
        assert!(
            lz4_single_frame(&full).is_ok(),
            "checksums and content size"
        );
        assert!(
            lz4_single_frame(&full[..full.len() - 4]).is_err(),
            "content checksum cut"
        );
    }

    /// gzip members may follow each other (Java's GZIPInputStream reads them all); bytes
    /// after the last member that are not one fail, where Java would drop them silently.
    #[test]
    fn gzip_streams_read_every_member_and_refuse_trailing_junk() {
        let mut two = compress(Compression::Gzip, b"first ");
        two.extend_from_slice(&compress(Compression::Gzip, b"second"));
        assert_eq!(
            decompress(Compression::Gzip, &two).unwrap(),
            b"first second"
        );
        let mut junk = compress(Compression::Gzip, b"first ");
        junk.extend_from_slice(b"not gzip at all");
        assert!(decompress(Compression::Gzip, &junk).is_err());
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
