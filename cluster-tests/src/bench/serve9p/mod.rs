//! 5. 9P serving: walk+open+read+clunk of a small file, and the read
//! throughput of a 64 MiB file, from one 9P2000.L client connection with 1
//! and 16 requests in flight. Servers: Debian's `diod` (the peer) exporting
//! a directory, the ninep library's RAM file server (`ramfs` example; the
//! same library jobd serves with) holding equal files, and jobd itself for
//! the small file (a job's `cmd`, generated from the replicated state).
//! All at the msize diod grants, so requests are the same size; ninep's
//! big reads are also shown at 1 MiB. Then one request in flight again,
//! with client and servers placed on chosen CPUs (`placed.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ninep::client::{Client, Options};
use tokio::process::{Child, Command};

use crate::bench::{drive, figure, median_range, Load};
use crate::jobd::{free_addr, Jobd};

mod pin;
mod placed;

const SMALL: &[u8] = b"echo a small file of sixty-four bytes, like a job's command....\n";
const BIG_MIB: usize = 64;

/// A server process ended (killed) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    aname: String,
}

/// Attaches asking for `msize` (the server may grant less).
async fn connect(s: &Server, msize: u32) -> Result<Client> {
    attach(s.addr, &s.aname, msize).await
}

async fn attach(addr: SocketAddr, aname: &str, msize: u32) -> Result<Client> {
    let opts = Options { aname: aname.into(), uname: "root".into(), msize, ..Options::default() };
    let start = Instant::now();
    loop {
        match Client::connect(addr, opts.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) if start.elapsed() > Duration::from_secs(20) => bail!("cannot attach to {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn diod(dir: &Path) -> Result<Server> {
    let addr = free_addr()?;
    let child = Command::new(crate::tools::find_tool("diod").map_err(anyhow::Error::msg)?)
        // Foreground, no authentication, every user squashed to root (this
        // process's user), logs discarded.
        .args(["-f", "-n", "-S", "-U", "root", "-L", "/dev/null"])
        .args(["-l", &addr.to_string(), "-e"])
        .arg(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("serve9p needs Debian's diod (apt-get install diod)")?;
    Ok(Server { child, addr, aname: dir.display().to_string() })
}

/// The ramfs example, built beside this program (cargo builds it on
/// demand: `cargo build --release -p ninep --example ramfs`).
async fn ramfs() -> Result<Server> {
    let exe = std::env::current_exe()?;
    let bin: PathBuf = exe.parent().context("no directory")?.join("examples/ramfs");
    if !bin.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "ninep", "--example", "ramfs"])
            .status()
            .await?;
        if !status.success() || !bin.exists() {
            bail!("cannot build the ramfs example at {bin:?}");
        }
    }
    let addr = free_addr()?;
    let child = Command::new(bin)
        .args(["--addr", &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    Ok(Server { child, addr, aname: String::new() })
}

/// walk + open + read + clunk of `path`, `conc` at a time on one connection.
async fn small_reads(c: &Client, path: &'static str, conc: usize, secs: u64) -> Load {
    let c = c.clone();
    drive(conc, secs, move |_, _| {
        let c = c.clone();
        async move { c.read(path).await.is_ok_and(|d| d.len() == SMALL.len()) }
    })
    .await
}

/// Reads the whole big file `passes` times with `conc` reads in flight
/// (each taking the next iounit-sized block); MiB/s.
async fn big_reads(c: &Client, conc: usize, passes: u64) -> Result<f64> {
    let fid = c.walk("big").await?;
    let iounit = c.open(fid, 0).await? as u64;
    let size = (BIG_MIB << 20) as u64;
    let blocks = size.div_ceil(iounit);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (c, next) = (c.clone(), next.clone());
            tokio::spawn(async move {
                let mut bytes = 0u64;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= blocks * passes {
                        return Ok::<u64, ninep::client::ClientError>(bytes);
                    }
                    let data = c.read_at(fid, (b % blocks) * iounit, iounit as u32).await?;
                    bytes += data.len() as u64;
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    c.clunk(fid).await?;
    if total != size * passes {
        bail!("read {total} bytes, expected {}", size * passes);
    }
    Ok(total as f64 / (1 << 20) as f64 / secs)
}

pub async fn run(seconds: u64, rounds: usize) -> Result<()> {
    println!("serve9p: one 9P2000.L connection, 1 and 16 requests in flight; ninep (ramfs example, and jobd) vs diod");
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("small"), SMALL)?;
    let big: Vec<u8> = (0..BIG_MIB << 20).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.path().join("big"), &big)?;
    let diod = diod(dir.path())?;
    let ramfs = ramfs().await?;
    let jobd = Jobd::single().await?;
    // Every connection asks for 1 MiB; diod grants at most 64 KiB, and the
    // comparison runs at the size it grants: the request size, and so the
    // bytes in flight, must be equal (16 requests of 1 MiB hold 16 MiB in
    // flight, past the caches, where 16 of 64 KiB hold 1 MiB). ninep at
    // 1 MiB (`r1m`) is printed beside it.
    let d = connect(&diod, 1 << 20).await?;
    let msize = d.msize();
    let (r, r1m) = (connect(&ramfs, msize).await?, connect(&ramfs, 1 << 20).await?);
    let j = Client::connect(jobd.fs_addr, Options { msize, ..Options::default() }).await?;
    r.create("small", 0o644).await?;
    r.write("small", SMALL).await?;
    r.create("big", 0o644).await?;
    r.write("big", &big).await?;
    j.write("clone", format!("small:@yearly:{}", SMALL.strip_suffix(b"\n").map(String::from_utf8_lossy).unwrap_or_default()).as_bytes()).await?;
    if d.read("big").await? != big || r.read("big").await? != big || j.read("jobs/small/cmd").await? != SMALL {
        bail!("the servers do not hold equal files");
    }
    drop(big);

    println!("small reads, {rounds} rounds, the servers' order turned each round; each ratio against diod's rate in the same round");
    println!("{:>5} {:>6} {:>10} {:>11} {:>11} {:>11} {:>9}", "conc", "round", "server", "ops/s", "p50 ms", "p99 ms", "vs diod");
    let servers: [(&str, &Client, &str); 3] = [("diod", &d, "small"), ("ninep", &r, "small"), ("jobd", &j, "jobs/small/cmd")];
    for conc in [1usize, 16] {
        let mut rates: [Vec<f64>; 3] = Default::default();
        let mut p99s: [Vec<f64>; 3] = Default::default();
        let mut ratios: [Vec<f64>; 3] = Default::default();
        for round in 0..rounds {
            let mut loads: [Option<Load>; 3] = Default::default();
            for k in 0..3 {
                let s = (k + round) % 3;
                let (_, client, path) = servers[s];
                loads[s] = Some(small_reads(client, path, conc, seconds).await);
            }
            let diod_rate = loads[0].as_ref().map_or(f64::NAN, Load::rate);
            for (s, l) in loads.iter().enumerate() {
                let Some(l) = l else { continue };
                let ratio = l.rate() / diod_rate;
                let errors = if l.errors > 0 { format!(" {} errors", l.errors) } else { String::new() };
                println!("{conc:>5} {:>6} {:>10} {:>11.0} {:>11.3} {:>11.3} {ratio:>8.2}x{errors}", round + 1, servers[s].0, l.rate(), l.pct(0.5), l.pct(0.99));
                rates[s].push(l.rate());
                p99s[s].push(l.pct(0.99));
                ratios[s].push(ratio);
            }
        }
        for s in 0..3 {
            let name = servers[s].0;
            let (rate, p99) = (median_range(&mut rates[s]).0, median_range(&mut p99s[s]).0);
            figure(&format!("serve9p.small.c{conc}.{name}_per_s"), rate, "1/s");
            figure(&format!("serve9p.small.c{conc}.{name}_p99"), p99, "ms");
            if s > 0 {
                let (m, lo, hi) = median_range(&mut ratios[s]);
                println!("{conc:>5} median {name:>10} {rate:>11.0} ops/s, p99 {p99:.3} ms, {m:.2}x diod ({lo:.2}–{hi:.2})");
                figure(&format!("serve9p.small.c{conc}.{name}_ratio_vs_diod"), m, "x");
                figure(&format!("serve9p.small.c{conc}.{name}_ratio_vs_diod_min"), lo, "x");
                figure(&format!("serve9p.small.c{conc}.{name}_ratio_vs_diod_max"), hi, "x");
            }
        }
    }
    println!("{:>5} {:>10} {:>8} {:>11} {:>11}", "conc", "server", "msize", "MiB/s", "vs diod");
    for conc in [1usize, 16] {
        // Alternate, round by round, and keep the median.
        let (mut ds, mut rs, mut r1s) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            ds.push(big_reads(&d, conc, 2).await?);
            rs.push(big_reads(&r, conc, 2).await?);
            r1s.push(big_reads(&r1m, conc, 2).await?);
        }
        // Each round's ratio against diod's in the same round.
        let ratios = |v: &[f64]| -> (f64, f64, f64) { median_range(&mut v.iter().zip(&ds).map(|(x, d)| x / d).collect::<Vec<_>>()) };
        let ((rr, rlo, rhi), (r1r, r1lo, r1hi)) = (ratios(&rs), ratios(&r1s));
        let (dm, rm, r1) = (median_range(&mut ds).0, median_range(&mut rs).0, median_range(&mut r1s).0);
        println!("{conc:>5} {:>10} {msize:>8} {dm:>11.0}", "diod");
        println!("{conc:>5} {:>10} {msize:>8} {rm:>11.0} {rr:>10.2}x ({rlo:.2}–{rhi:.2})", "ninep");
        println!("{conc:>5} {:>10} {:>8} {r1:>11.0} {r1r:>10.2}x ({r1lo:.2}–{r1hi:.2})", "ninep", r1m.msize());
        figure(&format!("serve9p.big.c{conc}.diod_mib_per_s"), dm, "MiB/s");
        figure(&format!("serve9p.big.c{conc}.ninep_mib_per_s"), rm, "MiB/s");
        figure(&format!("serve9p.big.c{conc}.ninep_ratio_vs_diod"), rr, "x");
        figure(&format!("serve9p.big.c{conc}.ninep_1m_mib_per_s"), r1, "MiB/s");
        figure(&format!("serve9p.big.c{conc}.ninep_1m_ratio_vs_diod"), r1r, "x");
    }
    let pid = |c: &Child| c.id().context("a server exited during the benchmark");
    let servers = vec![
        placed::Placed { name: "diod", addr: diod.addr, aname: diod.aname.clone(), pid: pid(&diod.child)?, small: "small", big: true },
        placed::Placed { name: "ninep", addr: ramfs.addr, aname: ramfs.aname.clone(), pid: pid(&ramfs.child)?, small: "small", big: true },
        placed::Placed { name: "jobd", addr: jobd.fs_addr, aname: String::new(), pid: pid(&jobd.child)?, small: "jobs/small/cmd", big: false },
    ];
    placed::run(servers, msize, seconds).await?;
    drop(jobd);
    Ok(())
}
