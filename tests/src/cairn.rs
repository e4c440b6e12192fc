//! An in-process cairn server on a free port, for black-box suites.
//!
//! Persistence is off and the data directory is a private tempdir, so a
//! test never reads or leaves snapshots. Stop it with
//! [`CairnServer::shutdown`]; a server that is only dropped keeps running
//! until the test's tokio runtime ends, which stops every task it spawned.

use std::net::SocketAddr;

use anyhow::Context;
use cairn_server::{Server, ServerHandle, ShutdownOptions};

/// A running in-process cairn server.
pub struct CairnServer {
    handle: ServerHandle,
    _dir: tempfile::TempDir,
}

impl CairnServer {
    /// Starts cairn on `127.0.0.1` with a free port and no persistence.
    ///
    /// # Errors
    /// The server does not start.
    pub async fn start() -> anyhow::Result<CairnServer> {
        let dir = tempfile::tempdir().context("temporary data directory")?;
        let handle = Server::builder()
            // As Redis' own suite starts redis-server: the suites use DEBUG.
            .enable_debug_command(cairn_server::ProtectedAction::Yes)
            .port(0)
            .persistence(false)
            .data_dir(dir.path())
            .build()
            .start()
            .await
            .context("starting cairn")?;
        Ok(CairnServer { handle, _dir: dir })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// The server handle, for what the wire cannot reach.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Stops the server without a snapshot and waits until it has stopped.
    ///
    /// # Errors
    /// The shutdown failed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle
            .shutdown_with(ShutdownOptions::nosave())
            .await
            .context("stopping cairn")
    }
}
