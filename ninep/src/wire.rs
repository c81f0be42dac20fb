//! Primitive 9P field encoding: little-endian integers, `s` strings (u16
//! length + UTF-8 bytes), and `qid`s. The message codec is built from these.
//!
//! Decoding never panics on any input: every read checks what is left and
//! returns a [`DecodeError`] instead.

use crate::qid::Qid;

/// Why a frame body could not be decoded. The frame itself was well sized,
/// so the server can still answer its tag with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message too short")]
    Truncated,
    #[error("string is not valid UTF-8")]
    NotUtf8,
    #[error("string contains a NUL byte")]
    Nul,
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("too many names in walk ({0}, at most 16)")]
    TooManyWalkNames(u16),
    #[error("count {count} does not match the {left} bytes that follow")]
    BadCount { count: u32, left: usize },
}

/// A cursor over one frame's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u16()? as usize;
        let b = self.bytes(n)?;
        let s = std::str::from_utf8(b).map_err(|_| DecodeError::NotUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::Nul);
        }
        Ok(s.to_owned())
    }

    pub fn qid(&mut self) -> Result<Qid, DecodeError> {
        Ok(Qid { ty: self.u8()?, version: self.u32()?, path: self.u64()? })
    }

    /// A `count[4] data[count]` field.
    pub fn data(&mut self) -> Result<Vec<u8>, DecodeError> {
        let count = self.u32()?;
        let left = self.remaining();
        if count as usize > left {
            return Err(DecodeError::BadCount { count, left });
        }
        Ok(self.bytes(count as usize)?.to_vec())
    }
}

/// Appends fields to a frame under construction.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Strings longer than 65535 bytes cannot be sent; they are cut at a
    /// character boundary so the frame stays well formed.
    pub fn string(&mut self, s: &str) {
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.buf.extend_from_slice(&s.as_bytes()[..end]);
    }
    pub fn qid(&mut self, q: &Qid) {
        self.u8(q.ty);
        self.u32(q.version);
        self.u64(q.path);
    }
    pub fn data(&mut self, d: &[u8]) {
        self.u32(d.len() as u32);
        self.buf.extend_from_slice(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_checked() {
        assert_eq!(Reader::new(&[2, 0, b'a']).string(), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&[1, 0, 0xff]).string(), Err(DecodeError::NotUtf8));
        assert_eq!(Reader::new(&[2, 0, b'a', 0]).string(), Err(DecodeError::Nul));
        assert_eq!(Reader::new(&[2, 0, b'h', b'i']).string().as_deref(), Ok("hi"));
    }

    #[test]
    fn data_count_must_fit() {
        let mut r = Reader::new(&[5, 0, 0, 0, 1, 2]);
        assert_eq!(r.data(), Err(DecodeError::BadCount { count: 5, left: 2 }));
    }
}
