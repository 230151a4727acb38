//! The TLS presentation language codec with MLS variable-length vectors
//! (RFC 9420 §2.1.2): a 2-bit-prefix varint of 1, 2 or 4 bytes, minimal
//! encoding required, `0b11` reserved.
//!
//! Decoding goes through [`Reader`], which never reads past its slice and
//! names what it was decoding in its errors; [`decode_all`] refuses trailing
//! bytes.

use crate::error::{Error, Result};

/// The largest length a vector can have (30 bits).
pub const MAX_VECTOR_LEN: usize = (1 << 30) - 1;

/// A wire type with an encoder and a strict decoder.
pub trait Codec: Sized {
    /// What the type is called in errors.
    const NAME: &'static str;
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<()>;
    /// Reads one value from `r`, leaving `r` after it.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes a whole message: trailing bytes are an error.
    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        decode_all(bytes)
    }
}

/// Decodes exactly one `T` from `bytes`; anything left over is an error.
pub fn decode_all<T: Codec>(bytes: &[u8]) -> Result<T> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    if !r.is_empty() {
        return Err(Error::TrailingBytes(T::NAME));
    }
    Ok(value)
}

/// A cursor over bytes being decoded.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(Error::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a big-endian `uint16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian `uint32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads an MLS variable-length integer, refusing `0b11` and non-minimal forms.
    pub fn varint(&mut self, what: &'static str) -> Result<usize> {
        let first = self.u8(what)?;
        let (len, mut value) = match first >> 6 {
            0 => return Ok(usize::from(first)),
            1 => (2, usize::from(first & 0x3f)),
            2 => (4, usize::from(first & 0x3f)),
            _ => return Err(Error::VarintReservedPrefix),
        };
        for &b in self.take(len - 1, what)? {
            value = (value << 8) | usize::from(b);
        }
        let minimal = if len == 2 {
            value >= 64
        } else {
            value >= 16384
        };
        if !minimal {
            return Err(Error::VarintNotMinimal);
        }
        Ok(value)
    }

    /// Reads an `opaque<V>`.
    pub fn opaque(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let len = self.varint(what)?;
        self.take(len, what)
    }

    /// Reads a `T<V>`: a length in bytes, then items until exactly that many are used.
    pub fn vector<T: Codec>(&mut self) -> Result<Vec<T>> {
        let body = self.opaque(T::NAME)?;
        let mut inner = Reader::new(body);
        let mut items = Vec::new();
        while !inner.is_empty() {
            items.push(T::decode(&mut inner)?);
        }
        Ok(items)
    }
}

/// Appends an MLS variable-length integer.
pub fn put_varint(out: &mut Vec<u8>, value: usize) -> Result<()> {
    match value {
        0..=63 => out.push(value as u8),
        64..=16383 => out.extend_from_slice(&(0x4000 | value as u16).to_be_bytes()),
        16384..=MAX_VECTOR_LEN => {
            out.extend_from_slice(&(0x8000_0000 | value as u32).to_be_bytes())
        }
        _ => return Err(Error::VectorTooLong),
    }
    Ok(())
}

/// Appends an `opaque<V>`.
pub fn put_opaque(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    put_varint(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends a `T<V>`.
pub fn put_vector<T: Codec>(out: &mut Vec<u8>, items: &[T]) -> Result<()> {
    let mut body = Vec::new();
    for item in items {
        item.encode(&mut body)?;
    }
    put_opaque(out, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(bytes: &[u8]) -> Result<usize> {
        let mut r = Reader::new(bytes);
        let v = r.varint("test")?;
        assert!(r.is_empty());
        Ok(v)
    }

    fn enc(v: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v).unwrap();
        out
    }

    #[test]
    fn varint_rfc9420_examples() {
        // RFC 9420 §2.1.2 and its QUIC-derived examples.
        assert_eq!(enc(37), [0x25]);
        assert_eq!(enc(15293), [0x7b, 0xbd]);
        assert_eq!(enc(494_878_333), [0x9d, 0x7f, 0x3e, 0x7d]);
        assert_eq!(varint(&[0x25]), Ok(37));
        assert_eq!(varint(&[0x7b, 0xbd]), Ok(15293));
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Ok(494_878_333));
    }

    #[test]
    fn varint_boundaries() {
        for v in [0, 63, 64, 16383, 16384, MAX_VECTOR_LEN] {
            assert_eq!(varint(&enc(v)), Ok(v));
        }
        assert_eq!(enc(63).len(), 1);
        assert_eq!(enc(64).len(), 2);
        assert_eq!(enc(16384).len(), 4);
        let mut out = Vec::new();
        assert_eq!(
            put_varint(&mut out, MAX_VECTOR_LEN + 1),
            Err(Error::VectorTooLong)
        );
    }

    #[test]
    fn varint_rejects_reserved_prefix() {
        assert_eq!(
            varint(&[0xc0, 0, 0, 0, 0, 0, 0, 1]),
            Err(Error::VarintReservedPrefix)
        );
    }

    #[test]
    fn varint_rejects_non_minimal() {
        assert_eq!(varint(&[0x40, 0x25]), Err(Error::VarintNotMinimal));
        assert_eq!(
            varint(&[0x80, 0x00, 0x3f, 0xff]),
            Err(Error::VarintNotMinimal)
        );
    }

    #[test]
    fn varint_rejects_truncation() {
        assert_eq!(varint(&[]), Err(Error::Truncated("test")));
        assert_eq!(varint(&[0x7b]), Err(Error::Truncated("test")));
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e]), Err(Error::Truncated("test")));
    }

    #[test]
    fn opaque_rejects_length_past_end() {
        let mut r = Reader::new(&[0x05, 1, 2, 3]);
        assert_eq!(r.opaque("x"), Err(Error::Truncated("x")));
    }
}
