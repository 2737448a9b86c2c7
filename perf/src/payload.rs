//! Record contents: value sizes, keys, and the timestamp header that end-to-end latency reads.
//!
//! Values are filled from a pre-generated random pool so they do not compress (a broker or codec
//! must move real bytes) and so building a record costs a copy, not a random-number loop.

use crate::cli::{HEADER_LEN, KeyDist, SizeDist};

/// Marks payloads written by this tool, so a consumer can tell our stamp from foreign bytes.
const MAGIC: [u8; 8] = *b"SLPERF01";

/// splitmix64: small, fast and good enough to pick sizes and keys; not for cryptography.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Builds one record after another into reusable buffers.
pub struct RecordMaker {
    rng: Rng,
    pool: Vec<u8>,
    value: Vec<u8>,
    key: [u8; 8],
    fixed_size: usize,
    sizes: SizeDist,
    keys: KeyDist,
}

impl RecordMaker {
    pub fn new(seed: u64, fixed_size: usize, sizes: SizeDist, keys: KeyDist) -> Self {
        let mut rng = Rng::new(seed);
        // Twice the largest value so each record can start at a different offset of the pool.
        let pool_len = 2 * sizes.max(fixed_size).max(64);
        let pool = (0..pool_len).map(|_| rng.next_u64() as u8).collect();
        Self {
            rng,
            pool,
            value: Vec::new(),
            key: [0; 8],
            fixed_size,
            sizes,
            keys,
        }
    }

    /// The next record's key and value; the value carries `stamp_unix_ns` when it has room.
    pub fn next(&mut self, stamp_unix_ns: u64) -> (Option<&[u8]>, &[u8]) {
        let size = self.next_size();
        let start = self.rng.range(0, (self.pool.len() - size) as u64) as usize;
        self.value.clear();
        self.value
            .extend_from_slice(&self.pool[start..start + size]);
        if size >= HEADER_LEN {
            write_header(&mut self.value[..HEADER_LEN], stamp_unix_ns);
        }
        let key = match self.keys {
            KeyDist::None => None,
            KeyDist::Random => {
                self.key = self.rng.next_u64().to_be_bytes();
                Some(&self.key[..])
            }
            KeyDist::Hot(n) => {
                self.key = (self.rng.next_u64() % n).to_be_bytes();
                Some(&self.key[..])
            }
        };
        (key, &self.value)
    }

    fn next_size(&mut self) -> usize {
        match self.sizes {
            SizeDist::Fixed => self.fixed_size,
            SizeDist::Uniform { min, max } => self.rng.range(min as u64, max as u64) as usize,
        }
    }
}

fn write_header(buf: &mut [u8], stamp_unix_ns: u64) {
    buf[..8].copy_from_slice(&MAGIC);
    buf[8..16].copy_from_slice(&stamp_unix_ns.to_be_bytes());
}

/// The intended send time stamped by `RecordMaker`, if this payload has one.
pub fn read_stamp(payload: &[u8]) -> Option<u64> {
    if payload.len() < HEADER_LEN || payload[..8] != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(payload[8..16].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_sizes_stay_in_range() {
        let mut m = RecordMaker::new(
            7,
            0,
            SizeDist::Uniform { min: 16, max: 40 },
            KeyDist::Hot(3),
        );
        for i in 0..1000 {
            let (key, value) = m.next(i);
            assert!((16..=40).contains(&value.len()));
            assert_eq!(read_stamp(value), Some(i));
            let k = u64::from_be_bytes(key.unwrap().try_into().unwrap());
            assert!(k < 3);
        }
    }

    #[test]
    fn short_or_foreign_payloads_have_no_stamp() {
        assert_eq!(read_stamp(b"hello"), None);
        assert_eq!(read_stamp(&[0u8; 32]), None);
        let mut m = RecordMaker::new(1, 8, SizeDist::Fixed, KeyDist::None);
        let (key, value) = m.next(5);
        assert!(key.is_none());
        assert_eq!(value.len(), 8);
    }
}
