//! The byte format of a snapshot: every key and value of the state machine
//! column family, each as `len[4] bytes` (big-endian length), in key order.

use std::fmt;

#[derive(Debug)]
pub struct Malformed(&'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed snapshot: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

pub fn decode(mut data: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Malformed> {
    fn take<'a>(data: &mut &'a [u8]) -> Result<&'a [u8], Malformed> {
        if data.len() < 4 {
            return Err(Malformed("truncated length"));
        }
        let (len, rest) = data.split_at(4);
        let len = u32::from_be_bytes(len.try_into().map_err(|_| Malformed("length"))?) as usize;
        if rest.len() < len {
            return Err(Malformed("truncated record"));
        }
        let (part, rest) = rest.split_at(len);
        *data = rest;
        Ok(part)
    }
    let mut pairs = Vec::new();
    while !data.is_empty() {
        let k = take(&mut data)?.to_vec();
        let v = take(&mut data)?.to_vec();
        pairs.push((k, v));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"job/x", b""), (b"", b"zz")];
        let bytes = encode(pairs.iter().copied());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect::<Vec<_>>(), pairs);
        for cut in 1..bytes.len() {
            if let Ok(p) = decode(&bytes[..cut]) {
                // Only cuts that fall between whole records decode.
                assert!(p.len() < pairs.len());
            }
        }
    }
}
