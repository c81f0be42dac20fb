//! Any bytes written to `clone`, a job's `ctl` or `/ctl`: each parser
//! answers a value or one line of error and never panics; a clone string
//! that parses has a schedule that parses again.
#![no_main]

use jobd_core::cron::Schedule;
use jobd_core::input::{parse_clone, parse_cluster_ctl, parse_ctl};
use libfuzzer_sys::fuzz_target;

fn one_line(e: &str) -> bool {
    !e.is_empty() && !e.contains('\n')
}

fuzz_target!(|data: &[u8]| {
    match parse_clone(data) {
        Ok(r) => assert!(Schedule::parse_new(&r.schedule).is_ok(), "{data:?}: {:?}", r.schedule),
        Err(e) => assert!(one_line(&e), "{data:?}: {e:?}"),
    }
    if let Err(e) = parse_ctl(data) {
        assert!(one_line(&e), "{data:?}: {e:?}");
    }
    if let Err(e) = parse_cluster_ctl(data) {
        assert!(one_line(&e), "{data:?}: {e:?}");
    }
});
