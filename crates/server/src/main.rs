//! The `cairn-server` binary: parse the configuration, start, wait for a
//! signal (or SHUTDOWN), stop gracefully.

use anyhow::{Context, Result};
use cairn_server::{Server, ShutdownError, ShutdownOptions, Signal, config::Args};
use clap::Parser;
use tracing::{error, info, warn};

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The default: the system allocator, which measured the least memory per
/// key (docs/architecture.md, "Allocator"), counted for INFO memory.
#[cfg(not(any(
    all(feature = "jemalloc", not(target_env = "msvc")),
    feature = "mimalloc"
)))]
#[global_allocator]
static GLOBAL: cairn_server::CountedSystem = cairn_server::counted_system();

#[tokio::main]
async fn main() -> Result<()> {
    use tracing_subscriber::prelude::*;
    // fjall logs every database it creates or opens at INFO, several lines
    // per snapshot: keep them for CAIRN_LOG=debug.
    let quiet_store = ",fjall=warn,lsm_tree=warn";
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| format!("info{quiet_store}").into());
    // Reloadable, so that `CONFIG SET loglevel` takes effect.
    let (filter, reload) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let log_level: cairn_server::LogLevelHook = std::sync::Arc::new(move |level| {
        let directive = format!("{}{quiet_store}", level.tracing_level()).to_lowercase();
        reload
            .reload(tracing_subscriber::EnvFilter::new(directive))
            .map_err(|e| e.to_string())
    });
    let config = Args::parse()
        .into_config()
        .context("invalid configuration")?;
    // Before starting: a signal that arrives as soon as the server is ready
    // must already find cairn's handler, not the default (which kills).
    let mut signals = Signals::new().context("cannot install signal handlers")?;
    let builder = Server::builder().config(config).log_level_hook(log_level);
    // INFO memory's used_memory from jemalloc's own count, as Redis reports it.
    #[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
    let builder = builder.allocator_stats(std::sync::Arc::new(cairn_server::JemallocStats));
    #[cfg(not(any(
        all(feature = "jemalloc", not(target_env = "msvc")),
        feature = "mimalloc"
    )))]
    let builder = builder.allocator_stats(std::sync::Arc::new(cairn_server::CountedStats::new(
        &GLOBAL,
    )));
    let handle = builder
        .build()
        .start()
        .await
        .context("cannot start cairn")?;
    loop {
        let signal = tokio::select! {
            () = handle.stopped() => break,
            signal = signals.next() => signal,
        };
        info!("Received {} scheduling shutdown...", signal.name());
        // As Redis 7.0: `shutdown-on-sigterm` / `shutdown-on-sigint` say
        // what the signal does; with `default` it shuts down like a plain
        // SHUTDOWN, and if the shutdown snapshot fails the server keeps
        // running (a later signal retries; `force` or `nosave` in the
        // setting, SHUTDOWN NOSAVE or SIGKILL stop it). A second SIGINT while
        // the snapshot is being written exits at once, as Redis does: the
        // last committed generation is always loadable.
        let outcome = loop {
            tokio::select! {
                r = handle.signal(signal) => break r,
                again = signals.next() => {
                    if again == Signal::Int {
                        warn!("Received SIGINT during shutdown: you insist... exiting now without finishing the snapshot");
                        std::process::exit(1);
                    }
                    info!("Received {} while shutting down; the shutdown goes on", again.name());
                }
            }
        };
        match outcome {
            Ok(()) => break,
            Err(e @ (ShutdownError::Snapshot(_) | ShutdownError::Aborted)) => {
                error!(
                    "{} received but errors trying to shut down the server, check the logs for more information: {e}",
                    signal.name()
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

/// SIGINT and SIGTERM (Ctrl-C elsewhere), registered once for the whole run;
/// SIGHUP is caught and ignored, as Redis ignores it (a closed terminal
/// must not kill the server without its shutdown snapshot).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the next signal.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            loop {
                tokio::select! {
                    _ = self.term.recv() => return Signal::Term,
                    _ = self.int.recv() => return Signal::Int,
                    _ = self.hup.recv() => info!("Received SIGHUP, ignored"),
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Int
        }
    }
}
