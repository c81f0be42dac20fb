//! A peer can send anything: nothing it sends panics the server or affects
//! another connection. Frames that cannot be sized close that connection;
//! frames that can be sized but not parsed get an error for their tag.

mod common;

use common::{error_of, ramfs, Raw};
use ninep::{Dialect, Rmsg, Tmsg};
use proptest::prelude::*;

fn frame(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut f = ((7 + body.len()) as u32).to_le_bytes().to_vec();
    f.push(ty);
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(body);
    f
}

async fn still_serves(addr: std::net::SocketAddr) {
    let mut c = Raw::session(addr, Dialect::P2000).await;
    assert!(matches!(c.rpc(2, Tmsg::Stat { fid: 0 }).await, Rmsg::Stat { .. }));
}

#[tokio::test]
async fn unsizeable_frames_close_only_that_connection() {
    let srv = ramfs().await;
    let mut bystander = Raw::session(srv.addr, Dialect::P2000).await;
    for bad in [vec![3, 0, 0, 0, 0, 0, 0], vec![0, 0, 0, 0], (9000u32).to_le_bytes().to_vec()] {
        let mut c = Raw::session(srv.addr, Dialect::P2000).await;
        c.send_bytes(&bad).await;
        assert!(c.closed().await, "frame {bad:?} closes the connection");
    }
    assert!(matches!(bystander.rpc(2, Tmsg::Stat { fid: 0 }).await, Rmsg::Stat { .. }));
}

#[tokio::test]
async fn unparseable_bodies_get_an_error_and_the_session_goes_on() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000U).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Twalk cut off inside its fids.
        (frame(110, 3, &[0, 0]), "message too short"),
        // Tstat with no fid.
        (frame(124, 3, &[]), "message too short"),
        // Twalk with a name that is not UTF-8.
        (frame(110, 3, &[0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0xff]), "not valid UTF-8"),
        // Twalk with a NUL in a name.
        (frame(110, 3, &[0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 2, 0, b'a', 0]), "NUL"),
        // Twrite whose count runs past the frame.
        (frame(118, 3, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 1]), "does not match"),
        // A message type that does not exist, and an R-message sent as a request.
        (frame(250, 3, &[]), "unknown message type 250"),
        (frame(125, 3, &[]), "unknown message type 125"),
        // A 9P2000.L message in a 9P2000.u session.
        (frame(24, 3, &[0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0]), "unknown message type 24"),
    ];
    for (bytes, want) in cases {
        c.send_bytes(&bytes).await;
        let (tag, r) = c.recv().await;
        assert_eq!(tag, 3);
        let (reason, _) = error_of(&r).unwrap_or_else(|| panic!("error for {bytes:?}, got {r:?}"));
        assert!(reason.contains(want), "{reason:?} should mention {want:?}");
    }
    assert!(matches!(c.rpc(2, Tmsg::Stat { fid: 0 }).await, Rmsg::Stat { .. }));
}

#[tokio::test]
async fn errors_in_dotl_are_rlerror_with_an_errno() {
    let srv = ramfs().await;
    let mut c = Raw::session(srv.addr, Dialect::P2000L).await;
    c.send_bytes(&frame(250, 3, &[])).await;
    assert_eq!(c.recv().await, (3, Rmsg::Lerror { ecode: 95 }));
    c.send_bytes(&frame(110, 4, &[0])).await;
    assert_eq!(c.recv().await, (4, Rmsg::Lerror { ecode: 22 }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random well-sized frames of any type after a valid session: the
    /// server answers or closes, and keeps serving other connections.
    #[test]
    fn random_frames_never_take_the_server_down(frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)), 1..8)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let srv = ramfs().await;
            let mut c = Raw::session(srv.addr, Dialect::P2000L).await;
            for (ty, body) in &frames {
                c.send_bytes(&frame(*ty, 7, body)).await;
            }
            drop(c);
            still_serves(srv.addr).await;
        });
    }
}
