//! Composition: a keyspace, the connection server, the background tasks, and
//! (when enabled) persistence, started and stopped as one [`ServerHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_keyspace::Keyspace;
use cairn_resp::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{Config, OnCorrupt, SavePoint, format_save_points};
use crate::persistence::commands::{FlushallService, PersistenceCommands, sync_settings};
use crate::persistence::manager::{Persistence, RestoreError};
use crate::persistence::{
    self, PersistenceStatus, SnapshotError, SnapshotEvents, SnapshotInfo, SnapshotTrigger,
};

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
    /// The data directory could not be opened or restored from.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why a shutdown did not happen as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The shutdown snapshot failed; the shutdown was abandoned and the
    /// server keeps running (Redis' behaviour), unless it was asked with
    /// `force` or through [`ServerHandle::shutdown`], which stops anyway.
    #[error("the shutdown snapshot failed: {0}")]
    Snapshot(SnapshotError),
    /// `SHUTDOWN ABORT` cancelled it while the snapshot was being written.
    #[error("the shutdown was aborted (SHUTDOWN ABORT)")]
    Aborted,
    /// The server stopped, but the snapshot of the writes made while the
    /// shutdown snapshot was being written failed; those writes are lost.
    #[error("the server stopped but its final catch-up snapshot failed: {0}")]
    FinalSnapshot(SnapshotError),
    /// The connection server ended with an error.
    #[error("the connection server failed: {0}")]
    Serve(std::io::Error),
}

/// How to shut down; the defaults are what a plain `SHUTDOWN`, SIGTERM and
/// [`ServerHandle::shutdown`] do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownOptions {
    /// `Some(true)`: take a snapshot (`SHUTDOWN SAVE`); `Some(false)`: do
    /// not (`SHUTDOWN NOSAVE`); `None`: as `snapshot_on_shutdown` says.
    pub save: Option<bool>,
    /// Stop even when the snapshot fails (`SHUTDOWN FORCE`).
    pub force: bool,
}

impl ShutdownOptions {
    /// Skip the shutdown snapshot (`SHUTDOWN NOSAVE`).
    pub fn nosave() -> ShutdownOptions {
        ShutdownOptions {
            save: Some(false),
            force: false,
        }
    }

    /// Always take a shutdown snapshot (`SHUTDOWN SAVE`).
    pub fn save() -> ShutdownOptions {
        ShutdownOptions {
            save: Some(true),
            force: false,
        }
    }

    /// Stop even if the snapshot fails (`SHUTDOWN FORCE`).
    #[must_use]
    pub fn force(mut self, yes: bool) -> ShutdownOptions {
        self.force = yes;
        self
    }
}

/// A request to the task that owns the shutdown sequence.
pub(crate) struct ShutdownRequest {
    pub(crate) opts: ShutdownOptions,
    pub(crate) reply: oneshot::Sender<Result<(), ShutdownError>>,
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

    /// Redis save points (`save 3600 1 300 100`); empty disables. Default none.
    pub fn save_points(mut self, points: Vec<SavePoint>) -> Self {
        self.config.save = points;
        self
    }

    /// What to do with a damaged newest snapshot. Default fallback.
    pub fn on_corrupt(mut self, policy: OnCorrupt) -> Self {
        self.config.on_corrupt = policy;
        self
    }

    /// Refuse writes with `-MISCONF` while the last snapshot failed. Default true.
    pub fn stop_writes_on_snapshot_error(mut self, yes: bool) -> Self {
        self.config.stop_writes_on_snapshot_error = yes;
        self
    }

    /// Warn when a snapshot takes longer than this. Default 10 s.
    pub fn slow_snapshot_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_snapshot_threshold = threshold;
        self
    }

    /// Committed generations to keep (at least 1). Default 2.
    pub fn retain_generations(mut self, n: usize) -> Self {
        self.config.retain_generations = n;
        self
    }

    /// Number of databases. Default 16.
    pub fn databases(mut self, n: usize) -> Self {
        self.config.databases = n;
        self
    }

    /// The configuration so far.
    pub fn get_config(&self) -> &Config {
        &self.config
    }

    /// Finishes the builder.
    pub fn build(self) -> Server {
        Server {
            config: self.config,
        }
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

    /// Validates the configuration, opens the data directory, restores the
    /// newest good snapshot (when `restore_on_startup`), builds the
    /// keyspace, binds the listener and starts serving. Returns once clients
    /// can connect; the log line `Ready to accept connections` names the
    /// real address. Nothing is served before the restore has finished.
    ///
    /// # Errors
    /// An invalid configuration, a data directory that cannot be opened
    /// (locked by another process, unreadable), a restore refused by
    /// `on_corrupt`, or a port that cannot be bound.
    pub async fn start(self) -> Result<ServerHandle, StartError> {
        let config = self.config;
        config.validate()?;
        let persistence = Arc::new(Persistence::open(&config)?);
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let commands = PersistenceCommands {
            persistence: Arc::clone(&persistence),
            shutdown: requests.clone(),
        };
        let keyspace = Keyspace::builder()
            .databases(config.databases)
            .requirepass(config.requirepass.clone())
            .extension(Arc::new(commands))
            .config_param("save", &format_save_points(&config.save))
            .config_param("dir", &persistence.data_dir().display().to_string())
            .config_param("appendonly", "no")
            .config_param(
                "stop-writes-on-bgsave-error",
                if config.stop_writes_on_snapshot_error {
                    "yes"
                } else {
                    "no"
                },
            )
            .build();

        if config.persistence && config.restore_on_startup {
            let (p, ks, on_corrupt) = (
                Arc::clone(&persistence),
                keyspace.clone(),
                config.on_corrupt,
            );
            tokio::task::spawn_blocking(move || p.restore(&ks, on_corrupt))
                .await
                .map_err(|e| RestoreError::Load {
                    dir: config.data_dir.clone(),
                    message: e.to_string(),
                })??;
        } else {
            if config.persistence {
                info!(dir = %persistence.data_dir().display(), "restore_on_startup is false: starting empty, existing snapshots left as they are");
            } else {
                info!("persistence is disabled: nothing is restored or saved");
            }
            persistence.reset_changes(&keyspace);
        }

        let want = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(want)
            .await
            .map_err(|source| StartError::Bind { addr: want, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr: want, source })?;
        keyspace.set_config_param("port", &addr.port().to_string());
        keyspace.set_config_param("bind", &config.bind.to_string());
        keyspace.set_config_param("maxclients", &config.max_clients.to_string());
        keyspace.set_config_param("databases", &config.databases.to_string());

        let (stop_tx, stop_rx) = watch::channel(false);
        let expiry = spawn_active_expiry(keyspace.clone(), stop_rx.clone());
        let timer =
            spawn_snapshot_timer(keyspace.clone(), Arc::clone(&persistence), stop_rx.clone());
        let net_config = ServerConfig {
            max_clients: config.max_clients,
            ..ServerConfig::default()
        };
        let mut serve_stop = stop_rx.clone();
        let service = FlushallService {
            ks: keyspace.clone(),
            persistence: Arc::clone(&persistence),
        };
        let serve = tokio::spawn(cairn_resp::run(
            listener,
            Arc::new(service),
            net_config,
            async move {
                let _ = serve_stop.wait_for(|stop| *stop).await;
            },
        ));
        let (done_tx, done) = watch::channel(false);
        let supervisor = Supervisor {
            ks: keyspace.clone(),
            persistence: Arc::clone(&persistence),
            snapshot_on_shutdown: config.snapshot_on_shutdown,
            stop_tx,
            serve: Some(serve),
            tasks: vec![expiry, timer],
            done: done_tx,
        };
        let supervisor = tokio::spawn(supervisor.run(requests_rx));
        info!(%addr, "Ready to accept connections tcp on {addr}");
        Ok(ServerHandle {
            addr,
            keyspace,
            persistence,
            requests,
            done,
            supervisor: Some(supervisor),
        })
    }
}

fn spawn_active_expiry(keyspace: Keyspace, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    keyspace.active_expire_cycle(EXPIRE_BUDGET);
                }
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    })
}

/// Starts background snapshots when a save point or the interval is due.
fn spawn_snapshot_timer(
    keyspace: Keyspace,
    persistence: Arc<Persistence>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !persistence.enabled() {
            return;
        }
        let mut tick = tokio::time::interval(persistence::manager::TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // CONFIG SET save / stop-writes-on-bgsave-error land in
                    // the keyspace's parameters; apply them before deciding.
                    sync_settings(&keyspace, &persistence);
                    if let Some(trigger) = persistence.due(&keyspace) {
                        // InProgress only means another one got there first.
                        let _ = persistence.start_background(&keyspace, trigger);
                    }
                }
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    })
}

/// Owns the shutdown sequence, so that a SHUTDOWN command, a signal and
/// [`ServerHandle::shutdown`] all stop the server the same way, one at a
/// time.
struct Supervisor {
    ks: Keyspace,
    persistence: Arc<Persistence>,
    snapshot_on_shutdown: bool,
    stop_tx: watch::Sender<bool>,
    serve: Option<JoinHandle<std::io::Result<()>>>,
    tasks: Vec<JoinHandle<()>>,
    done: watch::Sender<bool>,
}

impl Supervisor {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<ShutdownRequest>) {
        // The keyspace (held here) holds a sender, so this never ends by
        // itself: only a successful shutdown breaks the loop.
        while let Some(req) = requests.recv().await {
            match self.try_stop(req.opts).await {
                Ok(result) => {
                    let _ = req.reply.send(result);
                    break;
                }
                Err(e) => {
                    let _ = req.reply.send(Err(e));
                }
            }
        }
        // Later requests (a second SHUTDOWN racing the first) see the
        // server already stopped.
        requests.close();
        while let Ok(req) = requests.try_recv() {
            let _ = req.reply.send(Ok(()));
        }
    }

    /// `Err`: the server keeps running. `Ok(r)`: it stopped, and `r` says
    /// whether everything went well.
    async fn try_stop(
        &mut self,
        opts: ShutdownOptions,
    ) -> Result<Result<(), ShutdownError>, ShutdownError> {
        let p = Arc::clone(&self.persistence);
        p.begin_shutdown();
        let want_save = opts
            .save
            .unwrap_or(self.snapshot_on_shutdown && p.enabled());
        let mut saved = false;
        if want_save {
            if p.enabled() {
                info!("User requested shutdown... Saving the final snapshot before exiting.");
            }
            match p
                .snapshot_after_running(&self.ks, SnapshotTrigger::Shutdown)
                .await
            {
                Ok(_) => saved = true,
                Err(e) if opts.force => {
                    warn!(error = %e, "shutdown snapshot failed; stopping anyway (FORCE)");
                }
                Err(e) => {
                    error!(error = %e, "Error trying to save the DB, can't exit.");
                    p.end_shutdown();
                    return Err(ShutdownError::Snapshot(e));
                }
            }
        }
        if p.shutdown_aborted() {
            p.end_shutdown();
            warn!("shutdown aborted by SHUTDOWN ABORT; the server keeps running");
            return Err(ShutdownError::Aborted);
        }
        // Stop serving: no new commands after this, in-flight ones finish.
        let _ = self.stop_tx.send(true);
        let mut result = Ok(());
        if let Some(serve) = self.serve.take() {
            match serve.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(ShutdownError::Serve(e)),
                Err(e) => result = Err(ShutdownError::Serve(std::io::Error::other(e))),
            }
        }
        for t in self.tasks.drain(..) {
            if let Err(e) = t.await {
                warn!(error = %e, "background task ended abnormally");
            }
        }
        // Clients kept writing while the shutdown snapshot was written; save
        // those writes too, now that nothing can change any more.
        if saved && self.ks.changes() > p.changes_base() {
            info!("saving the writes made during the shutdown snapshot");
            if let Err(e) = p
                .snapshot_after_running(&self.ks, SnapshotTrigger::Shutdown)
                .await
            {
                error!(error = %e, "final catch-up snapshot failed; writes since the shutdown snapshot are lost");
                result = Err(ShutdownError::FinalSnapshot(e));
            }
        }
        p.close().await;
        info!("cairn is now ready to exit, bye bye...");
        let _ = self.done.send(true);
        Ok(result)
    }
}

/// A running server.
///
/// Dropping the handle leaves the server running in the background (it
/// can still be stopped with the SHUTDOWN command).
pub struct ServerHandle {
    addr: SocketAddr,
    keyspace: Keyspace,
    persistence: Arc<Persistence>,
    requests: mpsc::UnboundedSender<ShutdownRequest>,
    done: watch::Receiver<bool>,
    supervisor: Option<JoinHandle<()>>,
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

    /// Takes a snapshot and waits until it is committed. If one is already
    /// being written, waits for it and then takes a new one, so everything
    /// written before this call is in the result.
    ///
    /// # Errors
    /// [`SnapshotError::Disabled`] without persistence, or why the snapshot
    /// failed (it is also logged, counted in INFO and sent to
    /// [`subscribe_snapshots`](Self::subscribe_snapshots) subscribers).
    pub async fn snapshot_now(&self) -> Result<SnapshotInfo, SnapshotError> {
        let (p, ks) = (Arc::clone(&self.persistence), self.keyspace.clone());
        // Its own task: dropping this future must not cancel a snapshot
        // half-way and leave the slot claimed.
        tokio::spawn(async move { p.snapshot_after_running(&ks, SnapshotTrigger::Api).await })
            .await
            .map_err(|e| SnapshotError::Task(e.to_string()))?
    }

    /// Subscribes to the outcome of every snapshot completed from now on,
    /// whatever triggered it. For deterministic tests: subscribe, trigger,
    /// then await [`SnapshotEvents::next`].
    pub fn subscribe_snapshots(&self) -> SnapshotEvents {
        self.persistence.subscribe()
    }

    /// The numbers `INFO persistence` reports.
    pub fn persistence_status(&self) -> PersistenceStatus {
        self.persistence.status(&self.keyspace)
    }

    /// Whether the server has stopped (after a SHUTDOWN command, say).
    pub fn is_stopped(&self) -> bool {
        *self.done.borrow()
    }

    /// Resolves once the server has stopped, whoever stopped it (usually
    /// the SHUTDOWN command). The binary selects on it and on signals.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut done = self.done.clone();
        async move {
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Waits until the server has stopped; see [`stopped`](Self::stopped).
    pub async fn wait(&mut self) {
        self.stopped().await;
    }

    /// Asks the server to shut down as the SHUTDOWN command does: take the
    /// shutdown snapshot (per `opts`), stop accepting, let in-flight
    /// commands finish, and release the data directory.
    ///
    /// # Errors
    /// [`ShutdownError::Snapshot`] when the shutdown snapshot failed
    /// without `force` (or [`ShutdownError::Aborted`]): the server then keeps
    /// running, as Redis does. Other errors are reported after stopping.
    pub async fn request_shutdown(&self, opts: ShutdownOptions) -> Result<(), ShutdownError> {
        if self.is_stopped() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        if self.requests.send(ShutdownRequest { opts, reply }).is_err() {
            return Ok(());
        }
        // A dropped reply means another request stopped the server first.
        rx.await.unwrap_or(Ok(()))
    }

    /// Stops the server gracefully, taking the shutdown snapshot when
    /// `snapshot_on_shutdown` is set, and waits for every task to end.
    ///
    /// Unlike [`request_shutdown`](Self::request_shutdown), this always
    /// stops: the handle is gone afterwards. If the snapshot fails the
    /// server stops without it and the error says so; the last committed
    /// snapshot stays on disk.
    ///
    /// # Errors
    /// The snapshot's failure ([`ShutdownError::Snapshot`]) or a later one.
    pub async fn shutdown(self) -> Result<(), ShutdownError> {
        self.shutdown_with(ShutdownOptions::default()).await
    }

    /// [`shutdown`](Self::shutdown) with explicit options, e.g.
    /// [`ShutdownOptions::nosave`] to skip the snapshot.
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    pub async fn shutdown_with(mut self, opts: ShutdownOptions) -> Result<(), ShutdownError> {
        let mut result = self.request_shutdown(opts).await;
        if matches!(
            result,
            Err(ShutdownError::Snapshot(_) | ShutdownError::Aborted)
        ) {
            // The caller gives up the handle, so the server must stop.
            let again = self.request_shutdown(ShutdownOptions::nosave()).await;
            if again.is_err() {
                result = again;
            }
        }
        if let Some(sup) = self.supervisor.take()
            && let Err(e) = sup.await
        {
            warn!(error = %e, "shutdown task ended abnormally");
        }
        result
    }
}
