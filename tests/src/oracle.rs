//! A real `redis-server` (the behaviour oracle) started for one test.
//!
//! The server runs in its own temporary directory with persistence off
//! (`--save '' --appendonly no`) on a port picked from the free ones, and
//! is killed when the [`RedisOracle`] is dropped. Tests that need it call
//! [`RedisOracle::start_or_skip`]: when `redis-server` is not installed the
//! test prints a `skipped:` line and passes, unless `CAIRN_REQUIRE_REDIS=1`
//! (set by `cargo xtask ci`), where a missing oracle is a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// The binary started as the oracle; `CAIRN_REDIS_SERVER` overrides it.
fn redis_binary() -> String {
    std::env::var("CAIRN_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// Whether a missing oracle must fail the test instead of skipping it.
pub fn redis_required() -> bool {
    std::env::var("CAIRN_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// The version `redis-server --version` reports (`v=7.0.15`).
fn binary_version() -> anyhow::Result<String> {
    let out = Command::new(redis_binary()).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or("unknown")
        .to_owned())
}

/// How long a starting server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`, killed on drop.
pub struct RedisOracle {
    child: Child,
    addr: SocketAddr,
    version: String,
    _dir: tempfile::TempDir,
}

impl RedisOracle {
    /// Starts the oracle, or returns `None` after printing why the calling
    /// test is skipped when `redis-server` is not installed.
    ///
    /// # Errors
    /// The server is installed but does not start, or it is missing while
    /// `CAIRN_REQUIRE_REDIS=1`.
    pub fn start_or_skip(suite: &str) -> anyhow::Result<Option<RedisOracle>> {
        let bin = redis_binary();
        match Command::new(&bin)
            .arg("--version")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => {}
            result => {
                let why = match result {
                    Ok(out) => format!("`{bin} --version` exited with {}", out.status),
                    Err(e) => format!("`{bin}`: {e}"),
                };
                if redis_required() {
                    bail!(
                        "{suite}: redis-server is required (CAIRN_REQUIRE_REDIS=1) but not usable: {why}"
                    );
                }
                println!(
                    "skipped: redis-server not installed ({suite}: {why}; apt-get install redis-server)"
                );
                return Ok(None);
            }
        }
        RedisOracle::start().map(Some)
    }

    /// Starts `redis-server` and waits until it answers `PING`.
    ///
    /// # Errors
    /// The binary is missing or the server does not become ready.
    pub fn start() -> anyhow::Result<RedisOracle> {
        // The port is found by binding port 0 and releasing it, so another
        // process can take it in between: a failed start is retried on a
        // new port rather than reported at once.
        let mut last_err = None;
        for _ in 0..5 {
            match RedisOracle::start_once() {
                Ok(oracle) => return Ok(oracle),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    fn start_once() -> anyhow::Result<RedisOracle> {
        let dir = tempfile::tempdir().context("temporary directory for redis-server")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(redis_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // DEBUG is refused by default since 7.0; cairn has it, and the
            // suites compare what it does, not the default policy.
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--logfile", "", "--loglevel", "notice"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning redis-server")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stdout = child.stdout.take().context("redis-server stdout")?;
        // The log line is the readiness event; a reader thread forwards it
        // so the wait below has a timeout instead of blocking on a pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            let mut last = String::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if !sent && line.contains("Ready to accept connections") {
                    let _ = tx.send(Ok(()));
                    sent = true;
                } else if !sent {
                    // Kept so an early exit can say why (e.g. port in use).
                    last = line;
                }
                // Keep draining so the server never blocks on a full pipe.
            }
            if !sent {
                let _ = tx.send(Err(format!(
                    "exited before it was ready; last log line: {last}"
                )));
            }
        });
        let mut oracle = RedisOracle {
            child,
            addr,
            version: String::new(),
            _dir: dir,
        };
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(line)) => bail!("redis-server on port {port} did not start: {line}"),
            Err(_) => bail!("redis-server on port {port} not ready within {READY_TIMEOUT:?}"),
        }
        oracle.ping()?;
        oracle.version = binary_version()?;
        Ok(oracle)
    }

    /// Confirms the server answers `PING` on a fresh connection.
    fn ping(&self) -> anyhow::Result<()> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(READY_TIMEOUT))?;
        stream.write_all(b"PING\r\n")?;
        let mut got = [0u8; 7];
        stream.read_exact(&mut got)?;
        if &got != b"+PONG\r\n" {
            bail!(
                "redis-server answered PING with {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        Ok(())
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The oracle's `redis_version`, e.g. `7.0.15`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Drop for RedisOracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
