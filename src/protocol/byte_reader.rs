//! The one bounds-checked reader over untrusted bytes held in a slice: big-endian integers,
//! Kafka's classic (i16-length) and compact (unsigned varint length + 1) strings, i32-length
//! bytes, zigzag varints and unsigned varints (through [`crate::protocol::varint`]), and
//! tagged-field sections. Every read fails with a [`ReadError`] on short input and never
//! allocates more than the bytes left: a length is checked against the input before anything
//! is copied. Callers map [`ReadError`] into their own error type with `From`.
//!
//! Used by the `__consumer_offsets` and `__transaction_state` record codecs, the consumer
//! subscription reader and the record decoder; pure, runs on every shard.

use crate::protocol::varint::{self, VarintError};

/// Why a read failed; `at` is the offset (from the start of the input) where the field began.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The input ends inside a field.
    #[error("input truncated: needed {needed} more bytes at offset {at}")]
    Short {
        /// Offset where the short read began.
        at: usize,
        /// Bytes missing past the end of the input (`usize::MAX` for a length past `usize`).
        needed: usize,
    },
    /// A varint is overlong or runs past the input.
    #[error("invalid varint at offset {at}: {error}")]
    Varint {
        /// Offset where the varint began.
        at: usize,
        /// Why `protocol::varint` refused it.
        error: VarintError,
    },
    /// A non-nullable string has a negative (or, compact, null) length.
    #[error("negative length {len} at offset {at}")]
    NegativeLength {
        /// Offset where the length began.
        at: usize,
        /// The length read (-1 for a null compact string).
        len: i64,
    },
    /// A string's bytes are not valid UTF-8.
    #[error("string at offset {at} is not UTF-8")]
    NotUtf8 {
        /// Offset of the string's first byte (after its length).
        at: usize,
    },
}

/// One of `protocol::varint`'s readers: (value, bytes used) from the start of a slice.
type VarintRead<T> = fn(&[u8]) -> Result<(T, usize), VarintError>;

/// A cursor over `buf`. After an error the position is unspecified: callers stop reading.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A reader positioned at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte from the start of the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, borrowed from the input.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let left = self.remaining();
        if n > left {
            return Err(ReadError::Short {
                at: self.pos,
                needed: n - left,
            });
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }

    /// One signed byte.
    pub fn i8(&mut self) -> Result<i8, ReadError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    /// A big-endian i16 (2 bytes).
    pub fn i16(&mut self) -> Result<i16, ReadError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// A big-endian i32 (4 bytes).
    pub fn i32(&mut self) -> Result<i32, ReadError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A big-endian i64 (8 bytes).
    pub fn i64(&mut self) -> Result<i64, ReadError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Runs one of `protocol::varint`'s readers on the rest of the input.
    fn with_varint<T>(&mut self, read: VarintRead<T>) -> Result<T, ReadError> {
        let (value, used) = read(&self.buf[self.pos..]).map_err(|error| ReadError::Varint {
            at: self.pos,
            error,
        })?;
        self.pos += used;
        Ok(value)
    }

    /// A zigzag varint (at most 5 bytes), as inside records.
    pub fn varint(&mut self) -> Result<i32, ReadError> {
        self.with_varint(varint::read_varint)
    }

    /// A zigzag varlong (at most 10 bytes), as inside records.
    pub fn varlong(&mut self) -> Result<i64, ReadError> {
        self.with_varint(varint::read_varlong)
    }

    /// An unsigned varint of at most 5 bytes (flexible versions' lengths and tags).
    pub fn unsigned_varint(&mut self) -> Result<u32, ReadError> {
        self.with_varint(varint::read_unsigned_varint)
    }

    /// An unsigned varint of at most 10 bytes.
    pub fn unsigned_varlong(&mut self) -> Result<u64, ReadError> {
        self.with_varint(varint::read_unsigned_varlong)
    }

    /// UTF-8 text of `len` bytes.
    fn utf8(&mut self, len: usize) -> Result<String, ReadError> {
        let at = self.pos;
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| ReadError::NotUtf8 { at })
    }

    /// A classic nullable string: i16 length, any negative length is null.
    pub fn nullable_string(&mut self) -> Result<Option<String>, ReadError> {
        let len = self.i16()?;
        match usize::try_from(len) {
            Ok(len) => self.utf8(len).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A classic string: i16 length, which must not be negative.
    pub fn string(&mut self) -> Result<String, ReadError> {
        let at = self.pos;
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| ReadError::NegativeLength {
            at,
            len: len.into(),
        })?;
        self.utf8(len)
    }

    /// Classic nullable bytes: i32 length, any negative length is null.
    pub fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        let len = self.i32()?;
        match usize::try_from(len) {
            Ok(len) => self.take(len).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A compact (flexible-version) length: an unsigned varint holding length + 1, so 0 is
    /// null. Read as up to 10 bytes, as the transaction log reader always has; a length
    /// Kafka writes takes at most 5, where this agrees with [`Self::unsigned_varint`].
    pub fn compact_len(&mut self) -> Result<Option<usize>, ReadError> {
        let at = self.pos;
        match self.unsigned_varlong()? {
            0 => Ok(None),
            // A length past usize cannot fit in the input either.
            n => usize::try_from(n - 1)
                .map(Some)
                .map_err(|_| ReadError::Short {
                    at,
                    needed: usize::MAX,
                }),
        }
    }

    /// A compact string, which must not be null.
    pub fn compact_string(&mut self) -> Result<String, ReadError> {
        let at = self.pos;
        let len = self
            .compact_len()?
            .ok_or(ReadError::NegativeLength { at, len: -1 })?;
        self.utf8(len)
    }

    /// Skips a tagged-field section: a count, then (tag, size, bytes) for each.
    pub fn skip_tagged_fields(&mut self) -> Result<(), ReadError> {
        for _ in 0..self.unsigned_varlong()? {
            let _tag = self.unsigned_varlong()?;
            let at = self.pos;
            let size = usize::try_from(self.unsigned_varlong()?).map_err(|_| ReadError::Short {
                at,
                needed: usize::MAX,
            })?;
            self.take(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_ints_and_positions() {
        let mut r = ByteReader::new(&[1, 0, 2, 0, 0, 0, 3, 0xff]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.i16(), Ok(2));
        assert_eq!(r.i32(), Ok(3));
        assert_eq!(r.position(), 7);
        assert_eq!(r.i8(), Ok(-1));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn short_input_is_an_error_and_does_not_advance() {
        let mut r = ByteReader::new(&[0, 0, 0]);
        assert_eq!(r.i64(), Err(ReadError::Short { at: 0, needed: 5 }));
        assert_eq!(r.position(), 0);
        assert_eq!(r.i16(), Ok(0));
        assert_eq!(r.i16(), Err(ReadError::Short { at: 2, needed: 1 }));
    }

    #[test]
    fn strings_check_length_before_copying() {
        let mut r = ByteReader::new(&[0, 2, b'h', b'i', 0xff, 0xff, 0x7f, 0xff, b'x']);
        assert_eq!(r.string().as_deref(), Ok("hi"));
        assert_eq!(r.nullable_string(), Ok(None));
        assert_eq!(
            r.string(),
            Err(ReadError::Short {
                at: 8,
                needed: 0x7fff - 1
            })
        );
        let mut r = ByteReader::new(&[0xff, 0xfe]);
        assert_eq!(
            r.string(),
            Err(ReadError::NegativeLength { at: 0, len: -2 })
        );
        let mut r = ByteReader::new(&[0, 1, 0xff]);
        assert_eq!(r.string(), Err(ReadError::NotUtf8 { at: 2 }));
    }

    #[test]
    fn bytes_and_compact_fields() {
        let mut r = ByteReader::new(&[0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.nullable_bytes(), Ok(Some(&[7u8][..])));
        assert_eq!(r.nullable_bytes(), Ok(None));
        // "ab" (len + 1), null, a tagged section with one field of 2 bytes.
        let mut r = ByteReader::new(&[3, b'a', b'b', 0, 1, 5, 2, 9, 9]);
        assert_eq!(r.compact_string().as_deref(), Ok("ab"));
        assert_eq!(
            r.compact_string(),
            Err(ReadError::NegativeLength { at: 3, len: -1 })
        );
        assert_eq!(r.skip_tagged_fields(), Ok(()));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn varints_go_through_the_varint_module() {
        let mut r = ByteReader::new(&[0x01, 0xac, 0x02, 0x80]);
        assert_eq!(r.varint(), Ok(-1));
        assert_eq!(r.unsigned_varint(), Ok(300));
        assert_eq!(
            r.varlong(),
            Err(ReadError::Varint {
                at: 3,
                error: VarintError::Truncated
            })
        );
        let mut r = ByteReader::new(&[0xff; 11]);
        assert_eq!(
            r.unsigned_varlong(),
            Err(ReadError::Varint {
                at: 0,
                error: VarintError::TooLong(10)
            })
        );
    }
}
