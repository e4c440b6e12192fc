//! The real `cairn-server` binary as a child process: started on a free
//! port, ready when its log says so, stopped with SIGTERM or SIGKILL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to become ready or to exit.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The release binary.
#[derive(Clone, Debug)]
pub struct Binary {
    path: PathBuf,
}

/// A running server.
pub struct Proc {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// What a start produced.
pub enum Start {
    /// It logged `Ready to accept connections`.
    Ready(Proc),
    /// It exited before that.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Everything it logged.
        log: String,
    },
}

/// A line announcing readiness, with the address.
fn ready_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("Ready to accept connections") {
        return None;
    }
    line.split(|c: char| c.is_whitespace() || c == '=' || c == ',')
        .filter_map(|w| w.parse::<SocketAddr>().ok())
        .next_back()
}

impl Binary {
    /// Builds `cairn-server` in release mode (once per run) and returns it.
    ///
    /// # Errors
    /// The build failed.
    pub fn build() -> Result<Binary> {
        crate::util::cargo(&[
            "build",
            "--release",
            "-p",
            "cairn-server",
            "--bin",
            "cairn-server",
        ])?;
        let path = crate::util::target_dir()?
            .join("release")
            .join(format!("cairn-server{}", std::env::consts::EXE_SUFFIX));
        if !path.exists() {
            bail!("{} not found after the build", path.display());
        }
        Ok(Binary { path })
    }

    /// Starts the server on `data_dir` with a free port and `args`, and
    /// waits until it is ready or has exited.
    ///
    /// # Errors
    /// It could not be spawned, or neither became ready nor exited in time.
    pub fn start(&self, data_dir: &Path, args: &[&str]) -> Result<Start> {
        let mut child = Command::new(&self.path)
            .arg("--port")
            .arg("0")
            // The campaigns use DEBUG, as Redis' own suite does.
            .args(["--enable-debug-command", "yes"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("CAIRN_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {}", self.path.display()))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        // The reader ends when the pipe closes, that is when the process
        // exits: a closed channel is the exit event.
        std::thread::Builder::new()
            .name("cairn-log".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log2.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(line.clone());
                    let _ = tx.send(line);
                }
            })?;
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = ready_addr(&line) {
                        return Ok(Start::Ready(Proc {
                            child,
                            addr,
                            lines,
                            log,
                        }));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait()?;
                    let log = log
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .join("\n");
                    return Ok(Start::Exited { status, log });
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = log
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .join("\n");
                    bail!(
                        "cairn-server neither became ready nor exited within {PROCESS_TIMEOUT:?}; log:\n{log}"
                    );
                }
            }
        }
    }

    /// Starts and requires readiness.
    ///
    /// # Errors
    /// It exited or timed out.
    pub fn start_ready(&self, data_dir: &Path, args: &[&str]) -> Result<Proc> {
        match self.start(data_dir, args)? {
            Start::Ready(p) => Ok(p),
            Start::Exited { status, log } => {
                bail!("cairn-server exited with {status} instead of starting; log:\n{log}")
            }
        }
    }
}

impl Proc {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .join("\n")
    }

    /// Waits (at most `limit`) for a log line that satisfies `wanted`,
    /// counting lines already logged; returns it.
    ///
    /// # Errors
    /// No such line in time, or the process exited first.
    pub fn wait_for_line(&self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Result<String> {
        if let Some(l) = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|l| wanted(l))
        {
            return Ok(l.clone());
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    bail!("the awaited log line did not come within {limit:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("cairn-server exited before the awaited log line")
                }
            }
        }
    }

    /// SIGKILL, then reap it.
    ///
    /// # Errors
    /// The kill failed.
    pub fn kill(mut self) -> Result<String> {
        self.child.kill().context("SIGKILL")?;
        self.child.wait()?;
        cairn_tests::fixtures::port_closed(self.addr)?;
        Ok(self.log())
    }

    /// SIGTERM, then wait (at most [`PROCESS_TIMEOUT`]) for the exit.
    ///
    /// # Errors
    /// The signal could not be sent or it did not exit in time.
    pub fn terminate(self) -> Result<(ExitStatus, String)> {
        let pid = self.child.id().to_string();
        // `kill(1)`: sending a signal from Rust needs `unsafe` libc calls.
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed");
        }
        self.wait_exit()
    }

    /// Waits for the exit after something else asked for it (SHUTDOWN).
    ///
    /// # Errors
    /// It did not exit in time.
    pub fn wait_exit(mut self) -> Result<(ExitStatus, String)> {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    bail!(
                        "cairn-server did not exit within {PROCESS_TIMEOUT:?}; log:\n{}",
                        self.log()
                    );
                }
            }
        }
        let status = self.child.wait()?;
        // A leak check: nothing may still listen on its port.
        cairn_tests::fixtures::port_closed(self.addr)?;
        Ok((status, self.log()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Never leave a server behind, whatever failed.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether a log shows a panic or an abort.
pub fn panicked(log: &str) -> bool {
    log.contains("panicked at") || log.contains("RUST_BACKTRACE") || log.contains("stack backtrace")
}

/// An exit status that came from a signal (abort, segfault) rather than
/// from the process itself.
pub fn killed_by_signal(status: &ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal()
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_the_ready_line() {
        let line = "2026-11-25T18:00:00Z  INFO cairn_server::server: Ready to accept connections tcp on 127.0.0.1:40123 addr=127.0.0.1:40123";
        assert_eq!(ready_addr(line), "127.0.0.1:40123".parse().ok());
        assert_eq!(ready_addr("snapshot committed generation=1"), None);
    }
}
