//! Broker-side compression (`compression.type` other than `producer`): a produced batch whose
//! codec is not the topic's is rewritten with the topic's codec before it is appended, as
//! Kafka's `LogValidator` does. The header is kept (offsets, timestamps, producer id, epoch
//! and sequence, the transactional bit); only the codec bits, the records section, the length
//! and the CRC change. Control batches are never rewritten. Runs on the shard that owns the
//! partition, only for topics configured so: `producer` (the default) costs nothing.

use crate::protocol::batch_validation::RecordsError;
use crate::protocol::compression::{Levels, compress_at, decompress};
use crate::protocol::record_batch::{ATTR_COMPRESSION_MASK, BatchBuilder, BatchIter, Compression};
use crate::storage::log::AppendError;

/// The batches of `records` (already validated) with every data batch in `codec`, compressed
/// at the topic's `levels`; `None` when every batch already is in `codec`, so the caller keeps
/// its buffer (a batch already in the codec is kept whatever level it was written at, as Kafka
/// keeps it).
///
/// # Errors
/// A records section that does not decompress (the validation that ran before makes this
/// unlikely): CORRUPT_MESSAGE, as for any undecodable batch.
pub fn recompress(
    records: &[u8],
    codec: Compression,
    levels: Levels,
) -> Result<Option<Vec<u8>>, AppendError> {
    let mut out = Vec::with_capacity(records.len());
    let mut changed = false;
    for view in BatchIter::new(records, false) {
        let view = view?;
        let current = view.compression()?;
        if view.is_control() || current == codec {
            out.extend_from_slice(view.bytes());
            continue;
        }
        let plain = decompress(current, view.records_section()).map_err(|e| {
            RecordsError::Decompression {
                codec: current.name(),
                reason: e.to_string(),
            }
        })?;
        let codec_bits = match codec {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        };
        let builder = BatchBuilder {
            base_offset: view.base_offset(),
            attributes: (view.attributes() & !ATTR_COMPRESSION_MASK) | codec_bits,
            last_offset_delta: view.last_offset_delta(),
            base_timestamp: view.base_timestamp(),
            max_timestamp: view.max_timestamp(),
            producer_id: view.producer_id(),
            producer_epoch: view.producer_epoch(),
            base_sequence: view.base_sequence(),
            record_count: view.record_count(),
        };
        out.extend_from_slice(&builder.build(&compress_at(codec, &plain, levels)));
        changed = true;
    }
    Ok(changed.then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::compression::compress;
    use crate::protocol::record_batch::BatchView;
    use crate::protocol::records::{Record, decode_records, encode_record};

    fn batch(codec: Compression, producer_id: i64) -> Vec<u8> {
        let mut section = Vec::new();
        for i in 0..3 {
            let record = Record {
                attributes: 0,
                timestamp_delta: i64::from(i),
                offset_delta: i,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'v'; 100]),
                headers: Vec::new(),
            };
            encode_record(&mut section, &record);
        }
        BatchBuilder {
            attributes: match codec {
                Compression::None => 0,
                Compression::Gzip => 1,
                Compression::Snappy => 2,
                Compression::Lz4 => 3,
                Compression::Zstd => 4,
            },
            last_offset_delta: 2,
            base_timestamp: 1000,
            max_timestamp: 1002,
            producer_id,
            producer_epoch: 3,
            base_sequence: 7,
            record_count: 3,
            ..BatchBuilder::default()
        }
        .build(&compress(codec, &section))
    }

    #[test]
    fn batches_in_another_codec_are_rewritten_keeping_the_header_and_records() {
        let mut input = batch(Compression::Gzip, 42);
        input.extend(batch(Compression::Lz4, 42));
        let out = recompress(&input, Compression::Lz4, Levels::default())
            .unwrap()
            .expect("rewritten");
        let views: Vec<BatchView<'_>> = BatchIter::new(&out, true).map(Result::unwrap).collect();
        assert_eq!(views.len(), 2);
        for v in &views {
            assert_eq!(v.compression().unwrap(), Compression::Lz4);
            assert_eq!(
                (v.producer_id(), v.producer_epoch(), v.base_sequence()),
                (42, 3, 7)
            );
            assert_eq!((v.base_timestamp(), v.max_timestamp()), (1000, 1002));
            let records = decode_records(v).unwrap();
            assert_eq!(records.len(), 3);
            assert_eq!(records[2].key.as_deref(), Some(&b"k2"[..]));
        }
    }

    #[test]
    fn batches_already_in_the_codec_are_left_alone() {
        let input = batch(Compression::Zstd, -1);
        assert!(
            recompress(&input, Compression::Zstd, Levels::default())
                .unwrap()
                .is_none()
        );
        let out = recompress(&input, Compression::None, Levels::default())
            .unwrap()
            .expect("rewritten");
        let v = BatchView::parse_validated(&out).unwrap();
        assert_eq!(v.compression().unwrap(), Compression::None);
    }

    #[test]
    fn the_topics_levels_are_used() {
        // Text that compresses better the harder the codec works.
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("record {} of {} ", i % 997, i % 13).into_bytes())
            .collect();
        let plain = BatchBuilder {
            last_offset_delta: 0,
            record_count: 1,
            ..BatchBuilder::default()
        }
        .build(&{
            let mut section = Vec::new();
            let record = Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: 0,
                key: None,
                value: Some(text),
                headers: Vec::new(),
            };
            encode_record(&mut section, &record);
            section
        });
        let size = |codec, levels| {
            recompress(&plain, codec, levels)
                .unwrap()
                .expect("rewritten")
                .len()
        };
        let fast = Levels { gzip: 1, zstd: 1 };
        let best = Levels { gzip: 9, zstd: 19 };
        assert!(size(Compression::Gzip, best) < size(Compression::Gzip, fast));
        assert!(size(Compression::Zstd, best) < size(Compression::Zstd, fast));
        // -1 is zlib's default level, not a refusal.
        let default = size(Compression::Gzip, Levels::default());
        assert!(default <= size(Compression::Gzip, fast));
    }
}
