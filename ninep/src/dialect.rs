//! The three dialects and Tversion negotiation.

/// Which protocol a session speaks; it decides how some messages are laid
/// out (the .u fields) and which errors are sent (Rerror or Rlerror).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Plain 9P2000.
    P2000,
    /// 9P2000.u: Unix extensions (numeric ids, errno in Rerror).
    P2000U,
    /// 9P2000.L: Linux extensions (Rlerror, Tgetattr, Treaddir, ...).
    P2000L,
}

impl Dialect {
    pub fn version_string(self) -> &'static str {
        match self {
            Dialect::P2000 => "9P2000",
            Dialect::P2000U => "9P2000.u",
            Dialect::P2000L => "9P2000.L",
        }
    }

    /// Whether stat, Tattach and Tcreate carry the .u fields (.L builds on .u).
    pub fn dotu_fields(self) -> bool {
        self != Dialect::P2000
    }

    /// The dialect to answer a Tversion with, or `None` ("unknown") for a
    /// string that is not 9P2000 at all. Any `9P2000*` suffix we do not know
    /// falls back to plain 9P2000, never "unknown": the Linux kernel asks for
    /// 9P2000.L by default and gives up on "unknown".
    pub fn negotiate(requested: &str) -> Option<Dialect> {
        let rest = requested.strip_prefix("9P2000")?;
        Some(match rest {
            ".L" => Dialect::P2000L,
            ".u" => Dialect::P2000U,
            _ => Dialect::P2000,
        })
    }
}

/// The smallest msize a session may use.
pub const MIN_MSIZE: u32 = 4096;

/// `min(client, server max)`, at least [`MIN_MSIZE`].
pub fn negotiate_msize(client: u32, server_max: u32) -> u32 {
    client.min(server_max).max(MIN_MSIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        assert_eq!(Dialect::negotiate("9P2000.L"), Some(Dialect::P2000L));
        assert_eq!(Dialect::negotiate("9P2000.u"), Some(Dialect::P2000U));
        assert_eq!(Dialect::negotiate("9P2000"), Some(Dialect::P2000));
        assert_eq!(Dialect::negotiate("9P2000.X"), Some(Dialect::P2000));
        assert_eq!(Dialect::negotiate("9P2000.ufoo"), Some(Dialect::P2000));
        assert_eq!(Dialect::negotiate("9P1"), None);
        assert_eq!(Dialect::negotiate(""), None);
    }

    #[test]
    fn msize_rule() {
        assert_eq!(negotiate_msize(8192, 1 << 20), 8192);
        assert_eq!(negotiate_msize(1 << 24, 1 << 20), 1 << 20);
        assert_eq!(negotiate_msize(100, 1 << 20), MIN_MSIZE);
    }
}
