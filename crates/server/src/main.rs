//! The `cairn-server` binary: parse the configuration, start, wait for a
//! signal (or SHUTDOWN), stop gracefully.

use anyhow::{Context, Result};
use cairn_server::{Server, config::Args};
use clap::Parser;
use tracing::info;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = Args::parse().into_config().context("invalid configuration")?;
    let handle = Server::new(config).start().await.context("cannot start cairn")?;
    let signal = shutdown_signal().await;
    info!("received {signal}, scheduling shutdown...");
    handle.shutdown().await.context("shutdown failed")?;
    Ok(())
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere) and names it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
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
