//! A fixed amount of cron work — 20,000 parses and next times over six
//! expression forms in Europe/Paris — for counting instructions with
//! callgrind, which are the same from run to run on a noisy machine. Used
//! to measure what the release profile's overflow checks cost the core
//! (docs/BENCHMARKS.md, "Overflow checks"):
//!
//! ```text
//! cargo build --release -p jobd-core --example next_times
//! cargo build --release -p jobd-core --example next_times --target-dir /tmp/no-ovf \
//!     --config 'profile.release.package.jobd-core.overflow-checks=false'
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null $TARGET/release/examples/next_times
//! ```

use chrono::{TimeZone, Utc};
use jobd_core::cron::Schedule;

fn main() {
    let exprs = ["*/5 * * * *", "0 0/5 * * * ? *", "0 15 10 L * ?", "0 0 12 ? * MON#2", "@every 90s", "30 2 * * 1-5"];
    let mut t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid instant");
    let mut sum = 0i64;
    for i in 0..20_000 {
        let s = Schedule::parse(exprs[i % exprs.len()]).expect("a valid expression");
        t = s.next_after(t, chrono_tz::Europe::Paris).expect("a next time");
        sum = sum.wrapping_add(t.timestamp() % 7);
    }
    println!("{sum} {t}");
}
