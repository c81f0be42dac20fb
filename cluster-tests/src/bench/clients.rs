//! One create at a time through the leader of three jobd nodes, from four
//! clients: jobd's own client as it sends a small write (walk, open, write
//! and clunk together, one round trip), the same client one request at a
//! time (four round trips, as most clients do), sminez's independent 9P2000
//! client, and the Linux kernel's v9fs mount (`echo > clone` under QEMU's
//! software emulation, so its figure is the emulated machine's, for before
//! and after comparisons only). Rounds alternate the clients' order.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ninep::client::{Client, Options};
use ninep::fcall::omode;
use tokio::process::Command;

use super::{figure, median_range, quantile};
use crate::cluster::Cluster;
use crate::v9fs::Vm;

/// Creates per client and round.
const CREATES: usize = 300;
/// The kernel's creates per round (each costs milliseconds of emulation).
const KERNEL_CREATES: usize = 100;

pub async fn run(rounds: usize) -> Result<()> {
    println!("create-clients: one create at a time through the leader, {CREATES} per client and round ({KERNEL_CREATES} for the kernel), {rounds} rounds");
    let sminez = sminez().await?;
    let vm = Vm::prepare().await?;
    let c = Cluster::start(3).await?;
    let leader = c.wait_leader().await?;
    let addr = c.nodes[leader].fs_addr;
    let names = ["jobd pipelined", "jobd stepwise", "sminez", "kernel v9fs"];
    let mut p50s: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        for k in 0..4 {
            let which = (k + round) % 4;
            let prefix = format!("r{round}k{which}n");
            let mut lat = match which {
                // A server before fid ordering may answer a pipelined
                // request on a fid its walk has not made yet: said, not fatal.
                0 => match own(addr, &prefix, true).await {
                    Ok(lat) => lat,
                    Err(e) => {
                        println!("round {} {:<15} failed: {e}", round + 1, names[which]);
                        continue;
                    }
                },
                1 => own(addr, &prefix, false).await?,
                2 => {
                    let out = Command::new(&sminez).args(["creates", &addr.to_string(), &CREATES.to_string(), &prefix]).output().await?;
                    if !out.status.success() {
                        bail!("sminez: {}", String::from_utf8_lossy(&out.stderr));
                    }
                    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().parse::<f64>()).collect::<Result<Vec<_>, _>>()?
                }
                _ => kernel(&vm, addr.port(), &prefix).await?,
            };
            lat.sort_by(|a, b| a.total_cmp(b));
            let mean = lat.iter().sum::<f64>() / lat.len() as f64;
            println!("round {} {:<15} p50 {:>7.3} ms  mean {mean:>7.3}  p99 {:>7.3}", round + 1, names[which], quantile(&lat, 0.5), quantile(&lat, 0.99));
            p50s[which].push(if which == 3 { mean } else { quantile(&lat, 0.5) });
        }
    }
    for (k, v) in p50s.iter_mut().enumerate() {
        let (m, lo, hi) = median_range(v);
        let what = if k == 3 { "mean" } else { "p50" };
        println!("median {:<15} {what} {m:.3} ms ({lo:.3}–{hi:.3})", names[k]);
        figure(&format!("create_clients.{}_ms", names[k].replace(' ', "_")), m, "ms");
    }
    drop(c);
    Ok(())
}

/// jobd's client: `write` (pipelined), or its four requests one at a time.
async fn own(addr: std::net::SocketAddr, prefix: &str, pipelined: bool) -> Result<Vec<f64>> {
    let client = Client::connect(addr, Options::default()).await?;
    let mut lat = vec![];
    for i in 0..CREATES {
        let text = format!("{prefix}{i}:@yearly:true");
        let t = Instant::now();
        if pipelined {
            client.write("clone", text.as_bytes()).await?;
        } else {
            let fid = client.walk("clone").await?;
            client.open(fid, omode::OWRITE).await?;
            client.write_at(fid, 0, text.as_bytes()).await?;
            client.clunk(fid).await?;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(lat)
}

/// The kernel's creates, timed by the guest's uptime (10 ms resolution)
/// over the whole loop: one figure, the mean.
async fn kernel(vm: &Vm, port: u16, prefix: &str) -> Result<Vec<f64>> {
    let script = format!(
        "read a _ < /proc/uptime\ni=0\nwhile [ $i -lt {KERNEL_CREATES} ]; do echo -n '{prefix}'$i':@yearly:true' > clone || exit 1; i=$((i+1)); done\nread b _ < /proc/uptime\necho \"uptime $a $b\"\n"
    );
    let run = vm.run(port, "9p2000.L", &script).await?;
    if run.exit != 0 {
        bail!("the kernel's creates failed:\n{}", run.console);
    }
    let line = run.output.lines().find_map(|l| l.strip_prefix("uptime ")).context("no timing from the guest")?;
    let (a, b) = line.split_once(' ').context("two uptimes")?;
    let secs = b.trim().parse::<f64>()? - a.trim().parse::<f64>()?;
    Ok(vec![secs * 1000.0 / KERNEL_CREATES as f64])
}

/// sminez's client, built in release mode in its own target directory.
async fn sminez() -> Result<PathBuf> {
    let manifest = crate::crate_dir().join("../ninep/tests/sminez/Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| crate::crate_dir().join("../target")).join("sminez-interop");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .await?;
    let bin = target.join("release/sminez-interop");
    if !status.success() || !bin.exists() {
        bail!("cannot build sminez's client from {manifest:?}");
    }
    Ok(bin)
}
