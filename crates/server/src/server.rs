//! Composition: a keyspace, the connection server, the background tasks, and
//! (when enabled) persistence, started and stopped as one [`ServerHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_keyspace::{AllocatorStats, Keyspace};
use cairn_resp::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use cairn_persist::{
    OnCorrupt, Persistence, PersistenceStatus, RestoreError, SavePoint, SnapshotError,
    SnapshotEvents, SnapshotInfo, SnapshotTrigger,
};

use crate::config::{Config, ProtectedAction};
use crate::shutdown::{
    ShutdownCommand, ShutdownError, ShutdownOptions, ShutdownRequest, ShutdownState, Signal,
    SignalAction, Supervisor,
};

/// How often the instantaneous metrics are sampled (Redis' 100 ms
/// `run_with_period` in its cron); the expiry cycle runs `hz` times a
/// second (`Keyspace::cron_hz`).
const METRICS_PERIOD: Duration = Duration::from_millis(100);

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
    /// The open-file limit cannot even hold the reserved descriptors
    /// (Redis exits with the same complaint).
    #[error(
        "Your current 'ulimit -n' of {have} is not enough for the server to start. Please increase your open file limit to at least {need}."
    )]
    OpenFiles {
        /// The soft `RLIMIT_NOFILE` found.
        have: u64,
        /// What `maxclients` needs (`maxclients` + 32).
        need: u64,
    },
    /// The Unix socket could not be created (or its mode set).
    #[error("cannot listen on the Unix socket {path}: {source}")]
    BindUnix {
        /// The socket's path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
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
    allocator: Allocator,
    log_level: LogHook,
}

/// The program's `CONFIG SET loglevel` hook, if it has one.
#[derive(Clone, Default)]
struct LogHook(Option<crate::LogLevelHook>);

impl std::fmt::Debug for LogHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LogHook({})",
            if self.0.is_some() { "set" } else { "none" }
        )
    }
}

/// The allocator statistics handed to the keyspace, if the program has any.
#[derive(Clone, Default)]
struct Allocator(Option<Arc<dyn AllocatorStats>>);

impl std::fmt::Debug for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(stats) => write!(f, "Allocator({})", stats.name()),
            None => f.write_str("Allocator(system, no statistics)"),
        }
    }
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

    /// Redis' `protected-mode` (default on): while the default user has no
    /// password, only loopback peers are served.
    pub fn protected_mode(mut self, on: bool) -> Self {
        self.config.protected_mode = on;
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

    /// Damaged generations kept in `quarantine/` (at least 1). Default 4.
    pub fn quarantine_retain(mut self, n: usize) -> Self {
        self.config.quarantine_retain = n;
        self
    }

    /// Number of databases. Default 16.
    pub fn databases(mut self, n: usize) -> Self {
        self.config.databases = n;
        self
    }

    /// Redis' `unixsocket`: also serve on a Unix socket at this path (Unix
    /// only). Default none.
    pub fn unixsocket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.unixsocket = Some(path.into());
        self
    }

    /// Redis' `unixsocketperm`: the socket file's mode, e.g. `0o700`.
    /// Default 0 (as the umask leaves it).
    pub fn unixsocketperm(mut self, mode: u32) -> Self {
        self.config.unixsocketperm = mode;
        self
    }

    /// Redis' `enable-debug-command`. Default [`ProtectedAction::No`];
    /// test suites that use DEBUG enable it, as Redis' own does.
    pub fn enable_debug_command(mut self, who: ProtectedAction) -> Self {
        self.config.enable_debug_command = who;
        self
    }

    /// Redis' `enable-protected-configs` (`CONFIG SET dir`, `dbfilename`).
    /// Default [`ProtectedAction::No`].
    pub fn enable_protected_configs(mut self, who: ProtectedAction) -> Self {
        self.config.enable_protected_configs = who;
        self
    }

    /// The configuration so far.
    pub fn get_config(&self) -> &Config {
        &self.config
    }

    /// The statistics of the program's global allocator, which `INFO
    /// memory` then reports (`used_memory` is the resident set size
    /// without them). The `cairn-server` binary passes jemalloc's.
    pub fn allocator_stats(mut self, stats: Arc<dyn AllocatorStats>) -> Self {
        self.allocator = Allocator(Some(stats));
        self
    }

    /// What `CONFIG SET loglevel` calls to change the program's log
    /// filter (the `cairn-server` binary reloads its `tracing` filter).
    /// Without one, `CONFIG SET loglevel` accepts only the level in effect.
    pub fn log_level_hook(mut self, hook: crate::LogLevelHook) -> Self {
        self.log_level = LogHook(Some(hook));
        self
    }

    /// Finishes the builder.
    pub fn build(self) -> Server {
        Server {
            config: self.config,
            allocator: self.allocator,
            log_level: self.log_level,
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
    allocator: Allocator,
    log_level: LogHook,
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A server with this configuration.
    pub fn new(config: Config) -> Server {
        Server {
            config,
            allocator: Allocator::default(),
            log_level: LogHook::default(),
        }
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
        let mut config = self.config;
        config.validate()?;
        // Redis' adjustOpenFilesLimit, before anything opens files.
        match crate::fdlimit::adjust(config.max_clients) {
            crate::fdlimit::Adjusted::Fits => {}
            crate::fdlimit::Adjusted::Lowered(n) => config.max_clients = n,
            crate::fdlimit::Adjusted::TooLow { have, need } => {
                return Err(StartError::OpenFiles { have, need });
            }
        }
        let persistence = Persistence::open(&config.persist_config())?;
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let shutdown_state = Arc::new(ShutdownState::default());
        let shutdown = ShutdownCommand {
            requests: requests.clone(),
            state: Arc::clone(&shutdown_state),
        };
        let scripting = Arc::new(cairn_script::Scripting::new());
        let mut builder = Keyspace::builder()
            .databases(config.databases)
            .requirepass(config.requirepass.clone())
            .config_param(
                "protected-mode",
                if config.protected_mode { "yes" } else { "no" },
            )
            .extension(persistence.extension())
            .extension(Arc::new(shutdown))
            .extension(Arc::new(crate::fdlimit::MaxClients))
            .extension(scripting.clone())
            .extension(Arc::new(crate::loglevel::LogLevelConfig {
                hook: self.log_level.0.clone(),
            }))
            .config_param("enable-debug-command", config.enable_debug_command.as_str())
            .config_param(
                "enable-protected-configs",
                config.enable_protected_configs.as_str(),
            )
            .config_param(
                Signal::Term.parameter(),
                &config.shutdown_on_sigterm.to_string(),
            )
            .config_param(
                Signal::Int.parameter(),
                &config.shutdown_on_sigint.to_string(),
            );
        for (name, value) in persistence.config_params() {
            builder = builder.config_param(name, &value);
        }
        if let Some(stats) = self.allocator.0 {
            builder = builder.allocator_stats(stats);
        }
        let keyspace = builder.build();

        if config.persistence && config.restore_on_startup {
            let (p, ks) = (Arc::clone(&persistence), keyspace.clone());
            tokio::task::spawn_blocking(move || p.restore(&ks))
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
        let mut listeners = vec![cairn_resp::Listener::Tcp(listener)];
        let unix_path = match &config.unixsocket {
            Some(path) => {
                listeners.push(bind_unix(path, config.unixsocketperm)?);
                keyspace.set_config_param("unixsocket", &path.to_string_lossy());
                keyspace
                    .set_config_param("unixsocketperm", &format!("{:o}", config.unixsocketperm));
                Some(path.clone())
            }
            None => None,
        };

        let (stop_tx, stop_rx) = watch::channel(false);
        let expiry = spawn_active_expiry(keyspace.clone(), stop_rx.clone());
        let mut timer_stop = stop_rx.clone();
        let timer = tokio::spawn(Arc::clone(&persistence).run_timer(
            keyspace.clone(),
            async move {
                let _ = timer_stop.wait_for(|stop| *stop).await;
            },
        ));
        let net_config = ServerConfig {
            max_clients: config.max_clients,
            ..ServerConfig::default()
        };
        let mut serve_stop = stop_rx.clone();
        let serve = tokio::spawn(cairn_resp::run_listeners(
            listeners,
            Arc::new(keyspace.clone()),
            net_config,
            async move {
                let _ = serve_stop.wait_for(|stop| *stop).await;
            },
        ));
        let (done_tx, done) = watch::channel(false);
        let supervisor = Supervisor {
            ks: keyspace.clone(),
            persistence: Arc::clone(&persistence),
            state: shutdown_state,
            snapshot_on_shutdown: config.snapshot_on_shutdown,
            stop_tx,
            serve: Some(serve),
            tasks: vec![expiry, timer],
            done: done_tx,
            scripting,
            unix_socket: unix_path.clone(),
        };
        let supervisor = tokio::spawn(supervisor.run(requests_rx));
        info!(%addr, "Ready to accept connections tcp on {addr}");
        if let Some(path) = &unix_path {
            info!(
                "The server is now ready to accept connections at {}",
                path.display()
            );
        }
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

/// Redis' `unixsocket` listener: whatever is at `path` is removed first
/// (a stale socket left by a crash), as Redis unlinks it before binding;
/// then the mode is set when `perm` is not 0.
#[cfg(unix)]
fn bind_unix(path: &std::path::Path, perm: u32) -> Result<cairn_resp::Listener, StartError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |source| StartError::BindUnix {
        path: path.to_owned(),
        source,
    };
    // Its failure (nothing there) does not matter: binding reports a real problem.
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(fail)?;
    if perm != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm)).map_err(fail)?;
    }
    let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    Ok(cairn_resp::Listener::Unix(listener, name))
}

#[cfg(not(unix))]
fn bind_unix(path: &std::path::Path, _perm: u32) -> Result<cairn_resp::Listener, StartError> {
    Err(StartError::BindUnix {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "Unix sockets are not available on this platform",
        ),
    })
}

fn spawn_active_expiry(keyspace: Keyspace, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hz = keyspace.cron_hz();
        let mut tick = cron_interval(hz);
        let mut sampled = tokio::time::Instant::now();
        loop {
            tokio::select! {
                now = tick.tick() => {
                    // Redis samples its instantaneous metrics every 100 ms
                    // (every tick when hz is below 10).
                    if now.duration_since(sampled) + Duration::from_millis(1) >= METRICS_PERIOD {
                        sampled = now;
                        keyspace.sample_metrics();
                    }
                    keyspace.active_expire_cycle(keyspace.expire_cycle_budget(hz));
                    // `CONFIG SET hz`, `dynamic-hz` and the number of
                    // clients take effect from the next tick.
                    let now_hz = keyspace.cron_hz();
                    if now_hz != hz {
                        hz = now_hz;
                        tick = cron_interval(hz);
                    }
                }
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    })
}

fn cron_interval(hz: u32) -> tokio::time::Interval {
    let period = Duration::from_secs(1) / hz.max(1);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
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

    /// Shuts down as `signal` says: the current `shutdown-on-sigterm` or
    /// `shutdown-on-sigint` setting (which `CONFIG SET` may have changed)
    /// picks the options, as in Redis 7.0. The binary calls this for
    /// SIGTERM and SIGINT.
    ///
    /// # Errors
    /// As [`request_shutdown`](Self::request_shutdown): with `default`,
    /// a failed shutdown snapshot keeps the server running.
    pub async fn signal(&self, signal: Signal) -> Result<(), ShutdownError> {
        let action = self
            .keyspace
            .config_param(signal.parameter())
            .and_then(|v| v.parse::<SignalAction>().ok())
            .unwrap_or_default();
        self.request_shutdown(action.into()).await
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
