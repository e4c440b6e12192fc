//! Composition: a keyspace, the connection server, the background tasks, and
//! (when enabled) persistence, started and stopped as one [`ServerHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_keyspace::Keyspace;
use cairn_resp::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;

/// How often the active expiry cycle runs, and its time budget per run
/// (Redis: `hz 10`, 25% of a tick).
const EXPIRE_TICK: Duration = Duration::from_millis(100);
const EXPIRE_BUDGET: Duration = Duration::from_millis(25);

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Builds a [`Server`] from a [`Config`]; every setter mirrors a flag of the
/// binary.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ServerBuilder {
    config: Config,
}

impl ServerBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The TCP port; 0 picks a free one. Default = 6379.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// The address to listen on. Default = 127.0.0.1.
    pub fn bind(mut self, addr: std::net::IpAddr) -> Self {
        self.config.bind = addr;
        self
    }

    /// The snapshot directory. Default = `./cairn-data`.
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.data_dir = dir.into();
        self
    }

    /// Whether snapshots are written and restored. Default = true.
    pub fn persistence(mut self, yes: bool) -> Self {
        self.config.persistence = yes;
        self
    }

    /// The periodic snapshot interval. Default = 60 s.
    pub fn snapshot_interval(mut self, every: Duration) -> Self {
        self.config.snapshot_interval = every;
        self
    }

    /// Snapshot on graceful shutdown. Default = true.
    pub fn snapshot_on_shutdown(mut self, yes: bool) -> Self {
        self.config.snapshot_on_shutdown = yes;
        self
    }

    /// Restore the newest good snapshot at start. Default = true.
    pub fn restore_on_startup(mut self, yes: bool) -> Self {
        self.config.restore_on_startup = yes;
        self
    }

    /// Password for `AUTH`. Default = none.
    pub fn requirepass(mut self, pass: Option<String>) -> Self {
        self.config.requirepass = pass;
        self
    }

    /// The configuration so far.
    pub fn get_config(&self) -> &Config {
        &self.config
    }

    /// Finishes the builder.
    pub fn build(self) -> Server {
        Server { config: self.config }
    }
}

/// A cairn server, not yet started.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = cairn_server::Server::builder().port(0).persistence(false).build().start().await?;
/// println!("listening on {}", handle.addr());
/// handle.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Server {
    config: Config,
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A server with this configuration.
    pub fn new(config: Config) -> Server {
        Server { config }
    }

    /// Validates the configuration, builds the keyspace, binds the listener
    /// and starts serving. Returns once clients can connect; the log line
    /// `Ready to accept connections` names the real address.
    ///
    /// # Errors
    /// An invalid configuration or a port that cannot be bound.
    pub async fn start(self) -> Result<ServerHandle, StartError> {
        let config = self.config;
        config.validate()?;
        let keyspace = Keyspace::builder()
            .databases(config.databases)
            .requirepass(config.requirepass.clone())
            .build();

        let want = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(want)
            .await
            .map_err(|source| StartError::Bind { addr: want, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: want, source })?;
        keyspace.set_config_param("port", &addr.port().to_string());
        keyspace.set_config_param("bind", &config.bind.to_string());
        keyspace.set_config_param("maxclients", &config.max_clients.to_string());
        keyspace.set_config_param("databases", &config.databases.to_string());

        let (stop_tx, stop_rx) = watch::channel(false);
        let expiry = spawn_active_expiry(keyspace.clone(), stop_rx.clone());
        let net_config = ServerConfig { max_clients: config.max_clients, ..ServerConfig::default() };
        let mut serve_stop = stop_rx.clone();
        let serve = tokio::spawn(cairn_resp::run(listener, Arc::new(keyspace.clone()), net_config, async move {
            let _ = serve_stop.wait_for(|stop| *stop).await;
        }));
        info!(%addr, "Ready to accept connections tcp on {addr}");
        Ok(ServerHandle { addr, keyspace, stop_tx, serve, expiry })
    }
}

fn spawn_active_expiry(keyspace: Keyspace, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Sampling takes shard locks briefly; keep it off the
                    // async workers' critical path only if it ever grows.
                    keyspace.active_expire_cycle(EXPIRE_BUDGET);
                }
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    })
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    keyspace: Keyspace,
    stop_tx: watch::Sender<bool>,
    serve: JoinHandle<std::io::Result<()>>,
    expiry: JoinHandle<()>,
}

impl ServerHandle {
    /// The address clients connect to (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The keyspace, for programs that embed cairn and read or write it directly.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// Stops accepting, lets in-flight commands finish, and waits for every
    /// connection and background task to end.
    ///
    /// # Errors
    /// A failure of the listener task.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop_tx.send(true);
        let served = match self.serve.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = self.expiry.await {
            warn!(error = %e, "active expiry task ended abnormally");
        }
        info!("cairn is now ready to exit, bye bye...");
        served
    }
}
