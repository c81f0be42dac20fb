//! `jobd 9p`: a client in the spirit of plan9port's `9p`, for machines
//! with no 9P mount (no kernel module, macOS, containers).
//!
//! ```text
//! jobd 9p write /clone 'hello:*/5 * * * * *:echo hello'
//! jobd 9p read /jobs/hello/log
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use ninep::client::{Client, Options};
use ninep::{Dialect, DMDIR};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Op {
    Ls,
    Read,
    Write,
    Stat,
    Rm,
}

#[derive(Debug, Args)]
pub struct NinePArgs {
    /// The node to talk to.
    #[arg(long, env = "JOBD_9P_ADDR", default_value = "127.0.0.1:5640")]
    pub addr: String,
    /// The dialect: 9P2000.u (default) carries the server's error text; 9P2000.L only its errno.
    #[arg(long, default_value = "9P2000.u")]
    pub dialect: String,
    /// How long the whole operation may take before the command gives up
    /// (`30s`, `2m`; `0` waits forever). A read of a job's `wait` is not
    /// bounded: it waits for a run to end. A node that is cut off from its
    /// cluster answers a write within its own write timeout, so this only
    /// fires for a node (or network) that does not answer at all.
    #[arg(long, env = "JOBD_9P_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Timeout,
    pub op: Op,
    pub path: String,
    /// For write: the text (without it, standard input).
    pub text: Option<String>,
}

/// `--timeout`: none, or a bound on the whole operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

impl Timeout {
    fn filter(self, keep: impl FnOnce(&Duration) -> bool) -> Timeout {
        Timeout(self.0.filter(keep))
    }
}

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if s == "0" {
        return Ok(Timeout(None));
    }
    let ms = crate::cron::parse_duration_ms(s).map_err(|e| format!("{e}; or 0 to wait forever"))?;
    Ok(Timeout(Some(Duration::from_millis(ms as u64))))
}

/// Runs one operation; the error is what to print.
pub async fn run(a: NinePArgs) -> Result<(), String> {
    // A read of a job's `wait` blocks until one of its runs ends, as
    // long as that takes: it is the one operation not bounded.
    let waits = matches!(a.op, Op::Read) && a.path.trim_end_matches('/').ends_with("/wait");
    let Timeout(Some(limit)) = a.timeout.filter(|_| !waits) else {
        return run_op(a).await;
    };
    let addr = a.addr.clone();
    match tokio::time::timeout(limit, run_op(a)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{addr}: no answer within {}s; is the node up and reachable? (--timeout 0 waits forever)",
            limit.as_secs_f64()
        )),
    }
}

async fn run_op(a: NinePArgs) -> Result<(), String> {
    let dialect = match a.dialect.as_str() {
        "9P2000" => Dialect::P2000,
        "9P2000.u" => Dialect::P2000U,
        "9P2000.L" => Dialect::P2000L,
        d => return Err(format!("unknown dialect {d:?}; use 9P2000, 9P2000.u or 9P2000.L")),
    };
    let opts = Options { dialect, uname: std::env::var("USER").unwrap_or_else(|_| "none".into()), ..Options::default() };
    let c = Client::connect(&a.addr, opts).await.map_err(|e| format!("{}: {e}", a.addr))?;
    let path = a.path.as_str();
    let fail = |e: ninep::client::ClientError| format!("{path}: {e}");
    let mut out = std::io::stdout().lock();
    match a.op {
        Op::Ls => {
            let mut entries = c.readdir(path).await.map_err(fail)?;
            entries.sort_by(|x, y| x.name.cmp(&y.name));
            for e in entries {
                let slash = if e.qid.is_dir() { "/" } else { "" };
                let _ = writeln!(out, "{}{slash}", e.name);
            }
        }
        Op::Read => {
            let data = c.read(path).await.map_err(fail)?;
            let _ = out.write_all(&data);
        }
        Op::Write => {
            let data = match a.text {
                Some(t) => t.into_bytes(),
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("stdin: {e}"))?;
                    buf
                }
            };
            c.write(path, &data).await.map_err(fail)?;
        }
        Op::Stat => {
            let s = c.stat(path).await.map_err(fail)?;
            let kind = if s.mode & DMDIR != 0 { 'd' } else { '-' };
            let _ = writeln!(out, "{kind}{:o} {} {} {}", s.mode & 0o777, s.length, s.mtime, s.name);
        }
        Op::Rm => c.remove(path).await.map_err(fail)?,
    }
    Ok(())
}
