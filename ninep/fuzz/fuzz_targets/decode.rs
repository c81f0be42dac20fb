//! Any bytes at all, as a frame body of any type in any dialect: decoding
//! returns a value or an error and never panics; what decodes re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ninep::{Dialect, Rmsg, Tmsg};

fuzz_target!(|data: &[u8]| {
    let Some((&ty, body)) = data.split_first() else { return };
    for d in [Dialect::P2000, Dialect::P2000U, Dialect::P2000L] {
        if let Ok(m) = Tmsg::decode(ty, body, d) {
            let _ = m.encode(1, d);
        }
        if let Ok(m) = Rmsg::decode(ty, body, d) {
            let _ = m.encode(1, d);
        }
    }
});
