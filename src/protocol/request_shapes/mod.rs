//! The bounds check in front of the generated request decoders.
//!
//! `kafka-protocol`'s decoders trust the element count of every array: they call
//! `Vec::with_capacity(count)` before reading one element, so a 19-byte frame announcing
//! 2^31 topics makes the allocator fail, and Rust aborts the whole process (an allocation
//! failure is not a panic the connection's guard can catch). Before any decoder runs, the
//! body is walked here against the request's shape (from Kafka's message schemas,
//! `table.rs`, written by `generate.py`), and refused unless every array, string and bytes
//! length fits in the bytes left in the frame, as Kafka's own generated readers refuse it.
//! After a successful walk, no count the decoders read can exceed the bytes actually present,
//! so what they allocate is bounded by the frame (itself bounded by
//! `socket.request.max.bytes` and the request-memory budget).
//!
//! Pure function over a byte slice; runs on the shard that received the request.

#[rustfmt::skip]
mod table;

pub use table::shape_of;

use crate::protocol::varint::read_unsigned_varint;

/// A request's fields, in wire order, with the version from which it uses the flexible
/// (compact, tagged) encoding.
pub struct Shape {
    /// First request version that uses the flexible encoding (KIP-482); 32767 if none does.
    pub flexible_from: i16,
    /// Top-level fields in schema order, tagged ones included (walked in the tag section).
    pub fields: &'static [Field],
}

/// One field: its kind and the (inclusive) versions it is present and nullable in. An empty
/// range is `(1, 0)`. A field with a tag lives in the tagged-field section.
pub struct Field {
    /// What the field holds on the wire.
    pub kind: Kind,
    /// Inclusive range of request versions that carry the field (`(n, 32767)` for "n+").
    pub versions: (i16, i16),
    /// Inclusive range of versions in which the field may be null; `(1, 0)` when never.
    pub nullable: (i16, i16),
    /// Tag number in the tagged-field section (flexible versions); `None` for a regular field.
    pub tag: Option<u32>,
}

/// The wire kinds that matter for bounds: fixed-size scalars, length-prefixed strings and
/// bytes (records are bytes), nested structs and arrays.
pub enum Kind {
    /// A fixed-size scalar of this many bytes (int8..int64, float64, uuid as 16).
    Fixed(usize),
    /// A string: i16 length (-1 null) before the flexible versions, compact length after.
    String,
    /// Bytes or records: i32 length (-1 null) before the flexible versions, compact after.
    Bytes,
    /// A nested struct with these fields; when nullable, a presence byte comes first.
    Struct(&'static [Field]),
    /// An array of this element kind: i32 count (-1 null), or compact count when flexible.
    Array(&'static Kind),
}

/// Most elements an array may declare when its elements take no bytes on the wire (a struct
/// whose fields all belong to other versions): the bytes left cannot bound such a count.
const MAX_EMPTY_ELEMENTS: u64 = 1024;

/// Why a request body does not fit its shape.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The table has no shape for this API key (an API Sluice does not serve).
    #[error("API key {0} has no request shape")]
    UnknownApi(i16),
    /// A length or count is larger than the bytes left in the frame, or the frame ends
    /// inside a field.
    #[error("{what} at byte {at} needs {needed} bytes but {left} are left in the frame")]
    Short {
        /// What was being read, e.g. `"string"` or `"array elements"`.
        what: &'static str,
        /// Offset of the length prefix (or field) in the body; inside a known tagged field,
        /// relative to the start of that field's value.
        at: usize,
        /// Bytes (or, for an array, elements) the length or count claims.
        needed: u64,
        /// Bytes left in the body at that point.
        left: usize,
    },
    /// A classic (i16 or i32) length or count below -1; compact lengths cannot be negative.
    #[error("{what} at byte {at} has a negative length {len}")]
    NegativeLength {
        /// What was being read: `"string"`, `"bytes"` or `"array"`.
        what: &'static str,
        /// Offset of the length prefix in the body.
        at: usize,
        /// The length read.
        len: i64,
    },
    /// A null (length -1, or compact 0) where this version's schema does not allow one.
    #[error("null {what} at byte {at}, which this version does not allow")]
    NotNullable {
        /// What was being read: `"string"`, `"bytes"` or `"array"`.
        what: &'static str,
        /// Offset of the length prefix in the body.
        at: usize,
    },
    /// An unsigned varint is overlong or runs past the frame; carries its offset in the body.
    #[error("unsigned varint at byte {0} is malformed")]
    Varint(usize),
    /// An array of more than 1024 elements whose elements take no bytes in this version.
    #[error("array at byte {at} declares {count} elements that take no bytes")]
    EmptyElements {
        /// Offset of the array's count in the body.
        at: usize,
        /// The count the array declares.
        count: u64,
    },
    /// A known tagged field's value takes fewer bytes than its declared size.
    #[error("tagged field {tag} at byte {at} does not fill its declared {size} bytes")]
    TaggedSize {
        /// The field's tag number.
        tag: u32,
        /// Offset of the field's value in the body.
        at: usize,
        /// The size the tagged field declares, in bytes.
        size: u32,
    },
}

/// Checks that `body` (the request after its header) fits API `key` at `version`.
pub fn check(key: i16, version: i16, body: &[u8]) -> Result<(), ShapeError> {
    let shape = shape_of(key).ok_or(ShapeError::UnknownApi(key))?;
    let mut walker = Walker {
        buf: body,
        pos: 0,
        version,
        flexible: version >= shape.flexible_from,
    };
    walker.structure(shape.fields)
}

fn contains(range: (i16, i16), version: i16) -> bool {
    range.0 <= version && version <= range.1
}

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
}

impl Walker<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Skips `n` bytes, refusing a length the frame cannot hold.
    fn skip(&mut self, n: u64, what: &'static str) -> Result<(), ShapeError> {
        if n > self.left() as u64 {
            return Err(ShapeError::Short {
                what,
                at: self.pos,
                needed: n,
                left: self.left(),
            });
        }
        self.pos += n as usize;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ShapeError> {
        let at = self.pos;
        self.skip(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[at..at + N]);
        Ok(out)
    }

    fn unsigned_varint(&mut self) -> Result<u32, ShapeError> {
        let (value, used) = read_unsigned_varint(&self.buf[self.pos..])
            .map_err(|_| ShapeError::Varint(self.pos))?;
        self.pos += used;
        Ok(value)
    }

    /// A length prefix: `None` for null. Classic encodings use a signed int of `width` bytes
    /// (-1 = null); flexible ones an unsigned varint holding length + 1 (0 = null).
    fn length(
        &mut self,
        width: usize,
        nullable: bool,
        what: &'static str,
    ) -> Result<Option<u64>, ShapeError> {
        let at = self.pos;
        let len: i64 = if self.flexible {
            i64::from(self.unsigned_varint()?) - 1
        } else if width == 2 {
            i64::from(i16::from_be_bytes(self.fixed::<2>(what)?))
        } else {
            i64::from(i32::from_be_bytes(self.fixed::<4>(what)?))
        };
        match len {
            -1 if nullable => Ok(None),
            -1 => Err(ShapeError::NotNullable { what, at }),
            len if len < 0 => Err(ShapeError::NegativeLength { what, at, len }),
            len => Ok(Some(len as u64)),
        }
    }

    /// The fields of a struct present in this version, then (flexible versions) its tagged
    /// fields.
    fn structure(&mut self, fields: &'static [Field]) -> Result<(), ShapeError> {
        let version = self.version;
        for field in fields
            .iter()
            .filter(|f| f.tag.is_none() && contains(f.versions, version))
        {
            self.value(&field.kind, contains(field.nullable, version))?;
        }
        if self.flexible {
            self.tagged_fields(fields)?;
        }
        Ok(())
    }

    fn value(&mut self, kind: &'static Kind, nullable: bool) -> Result<(), ShapeError> {
        match kind {
            Kind::Fixed(n) => self.skip(*n as u64, "fixed-size field"),
            Kind::String => match self.length(2, nullable, "string")? {
                Some(len) => self.skip(len, "string"),
                None => Ok(()),
            },
            Kind::Bytes => match self.length(4, nullable, "bytes")? {
                Some(len) => self.skip(len, "bytes"),
                None => Ok(()),
            },
            // A nullable struct carries a presence byte: 1 when present (as the decoders read it).
            Kind::Struct(fields) if nullable => {
                if self.fixed::<1>("struct presence")?[0] != 1 {
                    return Ok(());
                }
                self.structure(fields)
            }
            Kind::Struct(fields) => self.structure(fields),
            Kind::Array(element) => self.array(element, nullable),
        }
    }

    fn array(&mut self, element: &'static Kind, nullable: bool) -> Result<(), ShapeError> {
        let at = self.pos;
        let Some(count) = self.length(4, nullable, "array")? else {
            return Ok(());
        };
        // Every element takes at least one byte, except in the rare shapes checked below.
        if count > self.left() as u64 {
            return Err(ShapeError::Short {
                what: "array elements",
                at,
                needed: count,
                left: self.left(),
            });
        }
        for _ in 0..count {
            let start = self.pos;
            self.value(element, false)?;
            if self.pos == start && count > MAX_EMPTY_ELEMENTS {
                return Err(ShapeError::EmptyElements { at, count });
            }
        }
        Ok(())
    }

    /// The tagged-field section: each (tag, size, bytes); a tag this shape knows is walked as
    /// its field and must fill exactly its size, others are skipped.
    fn tagged_fields(&mut self, fields: &'static [Field]) -> Result<(), ShapeError> {
        let count = self.unsigned_varint()?;
        if u64::from(count) > self.left() as u64 {
            return Err(ShapeError::Short {
                what: "tagged fields",
                at: self.pos,
                needed: u64::from(count),
                left: self.left(),
            });
        }
        for _ in 0..count {
            let tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            let at = self.pos;
            self.skip(u64::from(size), "tagged field")?;
            let known = fields
                .iter()
                .find(|f| f.tag == Some(tag) && contains(f.versions, self.version));
            if let Some(field) = known {
                let mut inner = Walker {
                    buf: &self.buf[at..at + size as usize],
                    pos: 0,
                    version: self.version,
                    flexible: true,
                };
                inner.value(&field.kind, contains(field.nullable, self.version))?;
                if inner.pos != size as usize {
                    return Err(ShapeError::TaggedSize { tag, at, size });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
