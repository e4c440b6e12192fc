//! The two servers under test as child processes: the release
//! `cairn-server` and the installed `redis-server`, started the same way,
//! timed from spawn to their `Ready to accept connections` log line.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::resp::{self, Conn};

/// How long a start (including loading 1M keys) or a stop may take.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// cairn-server.
    Cairn,
    /// redis-server.
    Redis,
}

impl Kind {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cairn => "cairn",
            Kind::Redis => "redis",
        }
    }
}

/// How to start a server: the kind, its data directory, extra flags.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Which server.
    pub kind: Kind,
    /// cairn's `--data-dir`, Redis' `--dir`.
    pub dir: PathBuf,
    /// cairn: persistence on (with a 24h interval, so only SAVE/BGSAVE
    /// write); off like Redis' `--save ''` when false.
    pub persistence: bool,
}

/// A running server.
pub struct Server {
    /// Which server.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    lines: Receiver<(Instant, String)>,
    log: Arc<Mutex<Vec<String>>>,
    /// Spawn to the readiness log line.
    pub ready_after: Duration,
    /// Spawn to the first PONG.
    pub pong_after: Duration,
}

/// What a start logged about loading data.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadLog {
    /// cairn: `restored ... ms=N`; Redis: `DB loaded from disk: X seconds`.
    pub load: Option<Duration>,
}

/// The release cairn binary, built once.
///
/// `CAIRN_BENCH_FEATURES` (e.g. `jemalloc` or `mimalloc`) builds it with
/// those cargo features, to compare allocators in the same suites.
pub fn build_cairn() -> Result<PathBuf> {
    let features = std::env::var("CAIRN_BENCH_FEATURES").unwrap_or_default();
    let mut args = vec![
        "build",
        "--release",
        "-p",
        "cairn-server",
        "--bin",
        "cairn-server",
    ];
    if !features.trim().is_empty() {
        eprintln!("bench: cairn built with features {features}");
        args.extend(["--features", features.trim()]);
    }
    crate::util::cargo(&args)?;
    let path = crate::util::target_dir()?
        .join("release")
        .join(format!("cairn-server{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        bail!("{} not found after the build", path.display());
    }
    Ok(path)
}

/// A port nobody listens on right now (Redis has no `--port 0`).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn cairn_ready_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("Ready to accept connections") {
        return None;
    }
    line.split(|c: char| c.is_whitespace() || c == '=' || c == ',')
        .filter_map(|w| w.parse::<SocketAddr>().ok())
        .next_back()
}

impl Server {
    /// Starts a server and waits until it answers PING.
    ///
    /// # Errors
    /// It could not start, exited, or was not ready in time.
    pub fn start(cairn_bin: &Path, spec: &Spec) -> Result<Server> {
        std::fs::create_dir_all(&spec.dir)?;
        let mut cmd;
        let redis_port;
        match spec.kind {
            Kind::Cairn => {
                redis_port = 0;
                cmd = Command::new(cairn_bin);
                cmd.arg("--port")
                    .arg("0")
                    .args(["--enable-debug-command", "yes"])
                    .arg("--data-dir")
                    .arg(&spec.dir)
                    .args([
                        "--snapshot-on-shutdown",
                        "false",
                        "--snapshot-interval",
                        "24h",
                    ])
                    .args([
                        "--persistence",
                        if spec.persistence { "true" } else { "false" },
                    ])
                    .env("CAIRN_LOG", "info,fjall=warn,lsm_tree=warn")
                    .env("NO_COLOR", "1")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
            }
            Kind::Redis => {
                redis_port = free_port()?;
                cmd = Command::new("redis-server");
                cmd.args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .args(["--dbfilename", "dump.rdb", "--logfile", ""])
                    .args(["--enable-debug-command", "yes"])
                    .arg("--dir")
                    .arg(&spec.dir)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
            }
        }
        let spawned = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        let pipe: Box<dyn Read + Send> = match spec.kind {
            Kind::Cairn => Box::new(child.stderr.take().context("no stderr pipe")?),
            Kind::Redis => Box::new(child.stdout.take().context("no stdout pipe")?),
        };
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        // Stamped on arrival, so the readiness time does not include how
        // long this thread took to look at the line.
        std::thread::Builder::new()
            .name(format!("{}-log", spec.kind.name()))
            .spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let now = Instant::now();
                    log2.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line.clone());
                    let _ = tx.send((now, line));
                }
            })?;
        let deadline = spawned + TIMEOUT;
        let (addr, ready_at) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok((at, line)) => match spec.kind {
                    Kind::Cairn => {
                        if let Some(a) = cairn_ready_addr(&line) {
                            break (a, at);
                        }
                    }
                    Kind::Redis => {
                        if line.contains("Ready to accept connections") {
                            break (SocketAddr::from(([127, 0, 0, 1], redis_port)), at);
                        }
                    }
                },
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait()?;
                    bail!(
                        "{} exited with {status} before it was ready:\n{}",
                        spec.kind.name(),
                        joined(&log)
                    );
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "{} not ready within {TIMEOUT:?}:\n{}",
                        spec.kind.name(),
                        joined(&log)
                    );
                }
            }
        };
        let pong_at = resp::wait_pong(addr, TIMEOUT)?;
        Ok(Server {
            kind: spec.kind,
            addr,
            child,
            lines,
            log,
            ready_after: ready_at - spawned,
            pong_after: pong_at - spawned,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection.
    ///
    /// # Errors
    /// It refused.
    pub fn conn(&self) -> Result<Conn> {
        Conn::connect(self.addr)
    }

    /// What its start-up log said about loading data.
    pub fn load_log(&self) -> LoadLog {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = LoadLog::default();
        for line in log.iter() {
            match self.kind {
                // `restored generation=G keys=N expired=E` with `ms=M` as a field.
                Kind::Cairn if line.contains("restored generation") => {
                    out.load = field_after(line, " ms=")
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_millis);
                }
                Kind::Redis if line.contains("DB loaded from disk:") => {
                    out.load = line
                        .split("DB loaded from disk:")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|v| v.parse::<f64>().ok())
                        .map(Duration::from_secs_f64);
                }
                _ => {}
            }
        }
        out
    }

    /// Stops it with SIGTERM (neither saves: cairn runs with
    /// `--snapshot-on-shutdown false`, Redis with `--save ''`) and waits.
    ///
    /// # Errors
    /// It did not exit in time or exited with a failure.
    pub fn stop(mut self) -> Result<()> {
        let status = self.terminate()?;
        // Drain whatever it logged at the end, for the error message.
        while self.lines.try_recv().is_ok() {}
        if !status.success() {
            bail!(
                "{} exited with {status}:\n{}",
                self.kind.name(),
                joined(&self.log)
            );
        }
        Ok(())
    }

    fn terminate(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // std has no SIGTERM and the workspace forbids `unsafe` (libc::kill).
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!(
                    "{} did not exit within {TIMEOUT:?} of SIGTERM",
                    self.kind.name()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn joined(log: &Mutex<Vec<String>>) -> String {
    let log = log.lock().unwrap_or_else(PoisonError::into_inner);
    let start = log.len().saturating_sub(30);
    log.get(start..).unwrap_or_default().join("\n")
}

fn field_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.split(key).nth(1)?;
    rest.split(|c: char| c.is_whitespace() || c == ',').next()
}

/// VmRSS of `pid` in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmRSS:").map(|kb| kb * 1024)
}

/// VmHWM of `pid` in bytes: the process' peak resident memory so far.
pub fn hwm_bytes(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmHWM:").map(|kb| kb * 1024)
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

/// PSS of `pid` in bytes (`/proc/PID/smaps_rollup`): shared pages split
/// between the processes that map them, so a forked parent and child sum
/// to the physical memory they really use.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find_map(|l| {
            l.strip_prefix("Pss:")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// Direct children of `pid` (Redis' BGSAVE child, forked by its main
/// thread): the kernel's cheap per-thread list where it exists, else a
/// scan of `/proc`.
pub fn children(pid: u32) -> Vec<u32> {
    if let Ok(list) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let child: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // The command name in parentheses may contain spaces: parse after it.
        let after = stat.rsplit_once(')')?.1;
        let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == pid).then_some(child)
    })
    .collect()
}

/// Apparent size in bytes of everything under `path` (as `du -sb`).
pub fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(dir) = std::fs::read_dir(path) else {
        return 0;
    };
    meta.len()
        + dir
            .filter_map(|e| e.ok())
            .map(|e| tree_bytes(&e.path()))
            .sum::<u64>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_fields() {
        let l = "2026-11-25T18:18:16Z  INFO cairn_server::server: Ready to accept connections tcp on 127.0.0.1:23456 addr=127.0.0.1:23456";
        assert_eq!(
            cairn_ready_addr(l),
            Some("127.0.0.1:23456".parse().unwrap())
        );
        assert_eq!(cairn_ready_addr("no"), None);
        let r = "INFO m: restored generation=3 keys=10 expired=0 generation=3 keys=10 expired=0 skipped_bad_db=0 ms=412";
        assert_eq!(field_after(r, " ms="), Some("412"));
    }

    #[test]
    fn measures_own_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 1000]).unwrap();
        assert!(tree_bytes(dir.path()) >= 1000);
    }
}
