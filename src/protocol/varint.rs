//! Kafka's variable-length integers: zigzag varint/varlong inside records and unsigned
//! varints in flexible message versions. Pure functions, used on every shard.

use bytes::BufMut;

/// Why a varint could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The buffer ends before a byte without the continuation bit.
    #[error("varint runs past the end of the buffer")]
    Truncated,
    /// All of the first N bytes (the field: 5 for 32 bits, 10 for 64) carry the continuation bit.
    #[error("varint is longer than {0} bytes")]
    TooLong(usize),
}

/// Reads an unsigned LEB128 varint of at most `max_bytes`; returns (value, bytes read).
fn read_unsigned(buf: &[u8], max_bytes: usize) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate() {
        if i >= max_bytes {
            return Err(VarintError::TooLong(max_bytes));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= max_bytes {
        Err(VarintError::TooLong(max_bytes))
    } else {
        Err(VarintError::Truncated)
    }
}

/// An unsigned varint of at most 5 bytes (flexible versions' lengths and tag numbers);
/// bits past 32 in the fifth byte are dropped. Returns (value, bytes read).
pub fn read_unsigned_varint(buf: &[u8]) -> Result<(u32, usize), VarintError> {
    read_unsigned(buf, 5).map(|(v, n)| (v as u32, n))
}

/// An unsigned varint of at most 10 bytes (64 bits).
pub fn read_unsigned_varlong(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    read_unsigned(buf, 10)
}

/// Zigzag-decoded signed 32-bit varint.
pub fn read_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, n) = read_unsigned(buf, 5)?;
    let raw = raw as u32;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), n))
}

/// Zigzag-decoded signed 64-bit varlong.
pub fn read_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, n) = read_unsigned(buf, 10)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), n))
}

/// Writers take any [`BufMut`]: a `Vec<u8>` or the `BytesMut` of a response.
pub fn write_unsigned_varint(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Appends `value` as a zigzag varint (1 to 5 bytes), as record fields are encoded.
pub fn write_varint(out: &mut impl BufMut, value: i32) {
    write_unsigned_varint(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Appends `value` as a zigzag varlong (1 to 10 bytes), as record timestamps are encoded.
pub fn write_varlong(out: &mut impl BufMut, value: i64) {
    write_unsigned_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN, 300, -300] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(read_varint(&out).unwrap(), (v, out.len()));
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            assert_eq!(read_varlong(&out).unwrap(), (v, out.len()));
        }
    }

    #[test]
    fn known_encodings_from_the_spec() {
        // Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, 150 -> 300 = 0xac 0x02.
        let mut out = Vec::new();
        write_varint(&mut out, 150);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(read_varint(&[0x01]).unwrap(), (-1, 1));
    }

    #[test]
    fn truncated_and_overlong_are_errors() {
        assert_eq!(read_varint(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0xff; 6]), Err(VarintError::TooLong(5)));
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
    }
}
