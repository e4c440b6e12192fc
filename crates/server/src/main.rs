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
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = Args::parse()
        .into_config()
        .context("invalid configuration")?;
    let handle = Server::new(config)
        .start()
        .await
        .context("cannot start cairn")?;
    loop {
        let signal = tokio::select! {
            () = handle.stopped() => break,
            signal = shutdown_signal() => signal,
        };
        info!("received {signal}, scheduling shutdown...");
        // As Redis 7: a signal shuts down like a plain SHUTDOWN; if the
        // shutdown snapshot fails the server keeps running (a later signal
        // retries; SHUTDOWN NOSAVE or SIGKILL stop it without a snapshot).
        // A second signal while the snapshot is still being written exits
        // at once: the last committed generation is always loadable.
        let outcome = tokio::select! {
            r = handle.request_shutdown(ShutdownOptions::default()) => r,
            again = shutdown_signal() => {
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
    // Join the tasks; the server has already stopped.
    handle
        .shutdown_with(ShutdownOptions::nosave())
        .await
        .context("shutdown failed")?;
    Ok(())
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere) and names it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
