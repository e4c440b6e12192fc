//! The `cairn-server` binary: parse the configuration, start, wait for a
//! signal (or SHUTDOWN), stop gracefully.

use anyhow::{Context, Result};
use cairn_server::{Server, ShutdownError, ShutdownOptions, config::Args};
use clap::Parser;
use tracing::{error, info, warn};

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                // fjall logs every database it creates or opens at INFO,
                // several lines per snapshot: keep them for CAIRN_LOG=debug.
                .unwrap_or_else(|_| "info,fjall=warn,lsm_tree=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = Args::parse()
        .into_config()
        .context("invalid configuration")?;
    // Before starting: a signal that arrives as soon as the server is ready
    // must already find cairn's handler, not the default (which kills).
    let mut signals = Signals::new().context("cannot install signal handlers")?;
    let handle = Server::new(config)
        .start()
        .await
        .context("cannot start cairn")?;
    loop {
        let signal = tokio::select! {
            () = handle.stopped() => break,
            signal = signals.next() => signal,
        };
        info!("received {signal}, scheduling shutdown...");
        // As Redis 7: a signal shuts down like a plain SHUTDOWN; if the
        // shutdown snapshot fails the server keeps running (a later signal
        // retries; SHUTDOWN NOSAVE or SIGKILL stop it without a snapshot).
        // A second signal while the snapshot is still being written exits
        // at once: the last committed generation is always loadable.
        let outcome = tokio::select! {
            r = handle.request_shutdown(ShutdownOptions::default()) => r,
            again = signals.next() => {
                warn!("received {again} during shutdown: you insist... exiting now without finishing the snapshot");
                std::process::exit(1);
            }
        };
        match outcome {
            Ok(()) => break,
            Err(e @ (ShutdownError::Snapshot(_) | ShutdownError::Aborted)) => {
                error!(
                    "{signal} received but errors trying to shut down the server, check the logs for more information: {e}"
                );
            }
            Err(e) => return Err(e).context("shutdown failed"),
        }
    }
    // The process is about to exit: its memory goes back to the system
    // whole, so the keys need not be freed one by one (for 1M keys that took
    // 145 ms after the final snapshot was committed, 480 ms when they had
    // been restored at start; SHUTDOWN NOSAVE now exits in under 30 ms).
    // Holding a reference past the handle and leaking it keeps the keyspace
    // from being dropped; it owns nothing but memory.
    let keyspace = handle.keyspace().clone();
    // Join the tasks; the server has already stopped.
    handle
        .shutdown_with(ShutdownOptions::nosave())
        .await
        .context("shutdown failed")?;
    std::mem::forget(keyspace);
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), registered once for the whole run.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
