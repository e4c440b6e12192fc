//! The shared keyspace handle, its builder, and the `Service` it provides.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_resp::{ConnInfo, Event, Service};
use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::clock::{Clock, SystemClock};
use crate::cmd::{self, Extension, Table};
use crate::engine::{Engine, ExpireStats, Held, Locked};
use crate::session::{NestedClient, Session, SessionState};
use crate::view::{LoadEntry, LoadStats, View, ViewError};

/// Builds a [`Keyspace`]; options follow fjall's by-value style.
#[must_use]
pub struct KeyspaceBuilder {
    databases: usize,
    shards_per_db: usize,
    requirepass: Option<Bytes>,
    clock: Arc<dyn Clock>,
    extensions: Vec<Arc<dyn Extension>>,
    params: BTreeMap<String, String>,
    allocator: Option<Arc<dyn crate::memory::AllocatorStats>>,
}

impl Default for KeyspaceBuilder {
    fn default() -> Self {
        let mut params = BTreeMap::new();
        // Every Redis 7.0 parameter with its default, so CONFIG GET * and
        // tools that probe parameters see what they expect.
        for line in include_str!("cmd/config_defaults.tsv").lines() {
            if let Some((k, v)) = line.split_once('\t')
                && !k.starts_with('#')
            {
                params.insert(k.to_string(), v.to_string());
            }
        }
        for (k, v) in [
            ("save", ""),
            ("appendonly", "no"),
            ("maxmemory", "0"),
            ("maxmemory-policy", "noeviction"),
            ("port", "6379"),
            ("bind", "127.0.0.1"),
            ("dir", "."),
            ("maxclients", "10000"),
            ("timeout", "0"),
            ("tcp-keepalive", "300"),
            ("protected-mode", "no"),
            ("requirepass", ""),
            ("hz", "10"),
            ("loglevel", "notice"),
            ("dbfilename", "dump.rdb"),
            ("cluster-enabled", "no"),
            ("proto-max-bulk-len", "536870912"),
            ("client-query-buffer-limit", "1073741824"),
            ("lazyfree-lazy-user-flush", "no"),
        ] {
            params.insert(k.to_string(), v.to_string());
        }
        KeyspaceBuilder {
            databases: 16,
            shards_per_db: 32,
            requirepass: None,
            clock: Arc::new(SystemClock),
            extensions: Vec::new(),
            params,
            allocator: None,
        }
    }
}

impl KeyspaceBuilder {
    /// Number of databases. Default = 16.
    pub fn databases(mut self, n: usize) -> Self {
        self.databases = n.max(1);
        self
    }

    /// Shards per database, rounded up to a power of two. Default = 32.
    pub fn shards_per_db(mut self, n: usize) -> Self {
        self.shards_per_db = n.max(1);
        self
    }

    /// Requires `AUTH password` before other commands. Default = none.
    pub fn requirepass(mut self, pass: Option<impl Into<Bytes>>) -> Self {
        self.requirepass = pass.map(Into::into);
        self
    }

    /// The clock used for expiry. Default = the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds commands (and INFO sections) implemented by the embedder.
    pub fn extension(mut self, ext: Arc<dyn Extension>) -> Self {
        self.extensions.push(ext);
        self
    }

    /// Sets a parameter reported by `CONFIG GET`.
    pub fn config_param(mut self, name: &str, value: &str) -> Self {
        self.params
            .insert(name.to_ascii_lowercase(), value.to_string());
        self
    }

    /// The statistics of the allocator the program runs on, which `INFO
    /// memory` reports (`used_memory` is the resident set size without them).
    pub fn allocator_stats(mut self, stats: Arc<dyn crate::memory::AllocatorStats>) -> Self {
        self.allocator = Some(stats);
        self
    }

    /// Builds the keyspace.
    pub fn build(self) -> Keyspace {
        let mut table = cmd::builtin_table();
        for ext in &self.extensions {
            for spec in ext.commands() {
                table.add_ext(spec, ext.clone());
            }
        }
        let mut params = self.params;
        params.insert("databases".into(), self.databases.to_string());
        // As CONFIG SET refuses it: without the allocator's count there is
        // no used memory to hold to the limit, and it is not pretended.
        if self.allocator.is_none()
            && params
                .get("maxmemory")
                .is_some_and(|v| v.parse::<u64>() != Ok(0))
        {
            tracing::error!(
                "maxmemory not applied: {}",
                cmd::server::MAXMEMORY_WITHOUT_STATS
            );
            params.insert("maxmemory".into(), "0".into());
        }
        if let Some(p) = &self.requirepass {
            params.insert(
                "requirepass".into(),
                String::from_utf8_lossy(p).into_owned(),
            );
        }
        let limits = crate::encoding::SharedLimits::default();
        for (name, value) in &params {
            if crate::encoding::SharedLimits::controls(name)
                && let Ok(n) = value.parse::<i64>()
            {
                limits.set(name, n);
            }
        }
        let pubsub: Arc<crate::pubsub::PubSub> = Arc::default();
        let clients: Arc<crate::pubsub::Clients> = Arc::default();
        let notify = Arc::new(crate::notify::Notifier::new(
            pubsub.clone(),
            clients.clone(),
        ));
        for (name, value) in &params {
            apply_notify_param(&notify, name, value);
        }
        let engine = Arc::new(Engine::new(
            self.databases,
            self.shards_per_db,
            self.clock,
            notify,
        ));
        let table = table.build();
        let stats = crate::stats::Stats::new(table.stat_names.len());
        let ks = Keyspace {
            inner: Arc::new(Inner {
                engine,
                table,
                auth: crate::auth::Auth::new(params.get("requirepass").map(|p| p.as_bytes())),
                idle_timeout: tokio::sync::watch::Sender::new(std::time::Duration::from_secs(
                    params
                        .get("timeout")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                )),
                max_clients: AtomicUsize::new(
                    params
                        .get("maxclients")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                ),
                tcp_keepalive: AtomicU64::new(
                    params
                        .get("tcp-keepalive")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(300),
                ),
                protected_mode: AtomicBool::new(
                    params.get("protected-mode").is_none_or(|v| v == "yes"),
                ),
                output_limits: crate::limits::OutputLimits::new(
                    params
                        .get("client-output-buffer-limit")
                        .map_or("", String::as_str),
                ),
                input_limits: crate::limits::InputLimits::new(
                    params.get("client-query-buffer-limit"),
                    params.get("proto-max-bulk-len"),
                ),
                extensions: self.extensions,
                params: RwLock::new(params),
                config_set_serial: parking_lot::Mutex::new(()),
                started: Instant::now(),
                next_client_id: AtomicU64::new(1),
                connected: AtomicUsize::new(0),
                run_id: run_id(),
                pubsub,
                clients,
                stats,
                slowlog: Default::default(),
                pause: Default::default(),
                monitors: Default::default(),
                latency: Default::default(),
                active_expire: std::sync::atomic::AtomicBool::new(true),
                limits,
                payloads: Default::default(),
                busy: Default::default(),
                busy_changed: tokio::sync::Notify::new(),
                memory: crate::memory::Tracker::new(self.allocator.as_ref()),
                allocator: self.allocator,
                evict: crate::evict::Eviction::new(),
            }),
        };
        let params: Vec<(String, String)> = ks
            .inner
            .params
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &params {
            ks.param_changed(k, v);
        }
        ks
    }
}

/// Applies `notify-keyspace-events` and `tracking-table-max-keys` (already
/// validated) to the event path.
pub(crate) fn apply_notify_param(n: &crate::notify::Notifier, name: &str, value: &str) {
    match name {
        "notify-keyspace-events" => {
            n.set_classes(crate::notify::parse_classes(value.as_bytes()).unwrap_or(0));
        }
        "tracking-table-max-keys" => n.set_max_keys(value.parse().unwrap_or(0)),
        _ => {}
    }
}

/// Redis' `CONFIG_MAX_HZ`.
const MAX_HZ: u32 = 500;

fn run_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

pub(crate) struct Inner {
    engine: Arc<Engine>,
    pub(crate) table: Table,
    pub(crate) auth: crate::auth::Auth,
    /// `timeout`: idle clients are closed after this long (zero: never).
    pub(crate) idle_timeout: tokio::sync::watch::Sender<std::time::Duration>,
    /// `maxclients` as last set (0: the connection server's own limit).
    pub(crate) max_clients: AtomicUsize,
    /// `tcp-keepalive` in seconds, for connections accepted from now on.
    pub(crate) tcp_keepalive: AtomicU64,
    /// `protected-mode`: refuse non-loopback peers while the default user
    /// has no password.
    pub(crate) protected_mode: AtomicBool,
    /// `client-output-buffer-limit`, asked whenever a connection's output grows.
    pub(crate) output_limits: crate::limits::OutputLimits,
    /// `client-query-buffer-limit` and `proto-max-bulk-len`, asked on every read.
    pub(crate) input_limits: crate::limits::InputLimits,
    pub(crate) extensions: Vec<Arc<dyn Extension>>,
    pub(crate) params: RwLock<BTreeMap<String, String>>,
    /// Held through a whole `CONFIG SET`, notifications to the extensions
    /// included.
    pub(crate) config_set_serial: parking_lot::Mutex<()>,
    pub(crate) started: Instant,
    pub(crate) next_client_id: AtomicU64,
    pub(crate) connected: AtomicUsize,
    pub(crate) run_id: String,
    pub(crate) pubsub: Arc<crate::pubsub::PubSub>,
    pub(crate) clients: Arc<crate::pubsub::Clients>,
    /// INFO's counters and histograms.
    pub(crate) stats: crate::stats::Stats,
    /// `MONITOR` clients.
    pub(crate) monitors: crate::monitor::Monitors,
    /// `CLIENT PAUSE`.
    pub(crate) pause: crate::pause::Pause,
    /// `SLOWLOG`.
    pub(crate) slowlog: crate::slowlog::SlowLog,
    /// `LATENCY`.
    pub(crate) latency: crate::slowlog::LatencyMonitor,
    /// `DEBUG SET-ACTIVE-EXPIRE`.
    pub(crate) active_expire: std::sync::atomic::AtomicBool,
    /// When small collections convert to their large form (CONFIG SET).
    pub(crate) limits: crate::encoding::SharedLimits,
    /// Extension payloads ([`Keyspace::set_payload`]).
    pub(crate) payloads: parking_lot::Mutex<Payloads>,
    /// A busy exclusive operation ([`Keyspace::set_busy`]).
    pub(crate) busy: parking_lot::Mutex<Option<Busy>>,
    pub(crate) busy_changed: tokio::sync::Notify,
    /// MEMORY STATS' startup and peak readings.
    pub(crate) memory: crate::memory::Tracker,
    /// Where `INFO memory` reads the allocator's counters.
    pub(crate) allocator: Option<Arc<dyn crate::memory::AllocatorStats>>,
    /// `maxmemory`, its policy and the eviction pool.
    pub(crate) evict: crate::evict::Eviction,
}

/// A long exclusive operation in progress (see [`Keyspace::set_busy`]).
#[derive(Clone, Debug)]
pub struct Busy {
    /// When it started.
    pub since: Instant,
    /// How long other clients wait before being answered `reply`.
    pub threshold: Duration,
    /// The answer past the threshold (`-BUSY ...`).
    pub reply: cairn_resp::Frame,
}

/// Named extension blobs and their change counter.
#[derive(Default)]
pub(crate) struct Payloads {
    pub(crate) version: u64,
    pub(crate) map: BTreeMap<String, Bytes>,
}

/// The shared keyspace: all databases, the command table and the sessions'
/// common state. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Keyspace {
    pub(crate) inner: Arc<Inner>,
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace::builder().build()
    }
}

impl Keyspace {
    /// A builder with the defaults (16 databases, system clock).
    pub fn builder() -> KeyspaceBuilder {
        KeyspaceBuilder::default()
    }

    /// A keyspace with the defaults.
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.inner.engine.databases()
    }

    /// The current time by the keyspace's clock (unix ms).
    pub fn now_ms(&self) -> i64 {
        self.inner.engine.clock.now_ms()
    }

    /// Takes a point-in-time view of every database; see [`View`].
    ///
    /// Pauses commands for O(shards) (arming each shard), never O(keys).
    ///
    /// # Errors
    ///
    /// [`ViewError::Busy`] while another view is alive.
    pub fn view(&self) -> Result<View, ViewError> {
        View::take(self.inner.engine.clone(), || {
            let p = self.inner.payloads.lock();
            p.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        })
    }

    /// Stores (or with `None` removes) an extension payload: a named blob
    /// that is part of the dataset (Redis 7.0's function libraries) while
    /// the keyspace knows nothing of its content. Views capture the
    /// payloads at their cut, so a snapshot holds them as of the same
    /// instant as its keys; `FLUSHALL` leaves them alone. Call it from a
    /// command (the gate held) so the change falls between two views.
    pub fn set_payload(&self, name: &str, value: Option<Bytes>) {
        let mut p = self.inner.payloads.lock();
        match value {
            Some(v) => {
                p.map.insert(name.to_owned(), v);
            }
            None => {
                p.map.remove(name);
            }
        }
        p.version += 1;
    }

    /// An extension payload stored by [`set_payload`](Self::set_payload)
    /// or restored by [`load_payload`](Self::load_payload).
    pub fn payload(&self, name: &str) -> Option<Bytes> {
        self.inner.payloads.lock().map.get(name).cloned()
    }

    /// Increases with every change of any payload: an extension that keeps
    /// a derived form (compiled code) compares it to know when to rebuild.
    pub fn payload_version(&self) -> u64 {
        self.inner.payloads.lock().version
    }

    /// Restores a payload read from a snapshot (bulk load, before clients
    /// are served); same effect as [`set_payload`](Self::set_payload).
    pub fn load_payload(&self, name: &str, value: Bytes) {
        self.set_payload(name, Some(value));
    }

    /// Runs `f` holding the keyspace gate for write on the calling thread
    /// (not a tokio worker: it may wait for every running command to end),
    /// then serves clients blocked on keys `f` filled. Work an `EXCLUSIVE`
    /// command hands to a thread of its own (a script) runs here, so it is
    /// one atomic step for every other client and for views. `None` when
    /// the thread is inside a command holding the gate for read.
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let r = {
            let _g = self.engine().enter(Held::Write)?;
            f()
        };
        self.serve_blocked();
        Some(r)
    }

    /// Declares (or with `None` ends) a long exclusive operation, as Redis'
    /// busy script: while it lasts, other clients' commands wait for it
    /// without holding a worker thread, and once `threshold` has passed
    /// since `since` they are answered `reply` (`-BUSY ...`) instead,
    /// except commands flagged [`Flags::ALLOW_BUSY`](crate::Flags::ALLOW_BUSY).
    pub fn set_busy(&self, busy: Option<Busy>) {
        *self.inner.busy.lock() = busy;
        self.inner.busy_changed.notify_waiters();
    }

    /// Waits until the busy operation ends or passes its threshold.
    pub(crate) async fn busy_wait(&self) {
        loop {
            let changed = self.inner.busy_changed.notified();
            let left = match self.inner.busy.lock().as_ref() {
                None => return,
                Some(b) => b.threshold.saturating_sub(b.since.elapsed()),
            };
            if left.is_zero() {
                return;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(left) => {}
            }
        }
    }

    /// Whether a busy operation ([`set_busy`](Self::set_busy)) is running.
    pub fn is_busy(&self) -> bool {
        self.inner.busy.lock().is_some()
    }

    /// The reply for commands refused because a busy operation has passed
    /// its threshold, if one has.
    pub fn busy_reply(&self) -> Option<cairn_resp::Frame> {
        let b = self.inner.busy.lock();
        b.as_ref()
            .filter(|b| b.since.elapsed() >= b.threshold)
            .map(|b| b.reply.clone())
    }

    /// Removes every payload (a restore discarding a partly loaded
    /// generation).
    pub fn clear_payloads(&self) {
        let mut p = self.inner.payloads.lock();
        p.map.clear();
        p.version += 1;
    }

    /// A client for running commands from inside another command (a
    /// script's `redis.call`): see [`NestedClient`].
    pub fn nested_client(&self) -> NestedClient {
        let id = self.inner.next_client_id.fetch_add(1, Ordering::Relaxed);
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut state = SessionState::new(id, None, true, tx);
        state.lua = true;
        NestedClient::new(self.clone(), state)
    }

    /// The flags of a command by name (any case), `None` if unknown.
    pub fn command_flags(&self, name: &[u8]) -> Option<crate::cmd::Flags> {
        self.inner.table.lookup(name).map(|c| c.spec.flags)
    }

    /// Number of arguments a command accepts, as Redis' arity (`None` if
    /// unknown).
    pub fn command_arity(&self, name: &[u8]) -> Option<i32> {
        self.inner.table.lookup(name).map(|c| c.spec.arity)
    }

    /// The first extension's refusal of writes, if any (`-MISCONF`).
    pub fn deny_write(&self) -> Option<cairn_resp::Frame> {
        self.inner
            .extensions
            .iter()
            .find_map(|e| e.deny_write(self))
    }

    /// Number of key modifications so far (Redis' `server.dirty`); compare
    /// two readings to know whether anything changed.
    pub fn changes(&self) -> u64 {
        self.inner.engine.dirty()
    }

    /// Number of entries copied aside for views because they were written
    /// while a view had not yet read them (for tests and INFO).
    pub fn preserved_entries(&self) -> u64 {
        self.inner.engine.counters.preserved.load(Ordering::Relaxed)
    }

    /// Number of keys deleted because they expired (INFO `expired_keys`).
    pub fn expired_keys(&self) -> u64 {
        self.inner
            .engine
            .counters
            .expired_keys
            .load(Ordering::Relaxed)
    }

    /// Fills the keyspace from snapshot entries, much faster than commands:
    /// no parsing, dispatch or change counting. Entries already expired by
    /// the keyspace clock are skipped and counted; a key loaded twice keeps
    /// the later value.
    ///
    /// Entries are grouped by shard, so each shard's lock is taken once per
    /// call rather than once per entry: pass batches (thousands), not
    /// single entries.
    pub fn load_entries(&self, entries: impl IntoIterator<Item = LoadEntry>) -> LoadStats {
        /// Entries grouped per round: bounds the memory this takes for
        /// any input size.
        const ROUND: usize = 4096;
        let mut stats = LoadStats::default();
        let mut batch: Vec<(u64, LoadEntry)> = Vec::with_capacity(ROUND);
        let mut order: Vec<u64> = Vec::with_capacity(ROUND);
        let mut entries = entries.into_iter();
        loop {
            let now = self.engine().clock.now_ms();
            for e in entries.by_ref() {
                let db = e.db as usize;
                if db >= self.engine().databases() {
                    stats.bad_db_skipped += 1;
                    continue;
                }
                if e.expires_at_ms.is_some_and(|t| t <= now) {
                    stats.expired_skipped += 1;
                    continue;
                }
                let h = self.engine().key_hash(e.key.as_bytes());
                // Shard in the high half, position in the low half: sorting
                // groups by shard and keeps the input order within a shard
                // (a key loaded twice keeps the later value).
                let shard = self.engine().shard_of_hash(db, h) as u64;
                order.push((shard << 32) | batch.len() as u64);
                batch.push((h, e));
                if batch.len() == ROUND {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            order.sort_unstable();
            self.load_round(&mut batch, &order, now, &mut stats);
            batch.clear();
            order.clear();
        }
        self.serve_blocked();
        stats
    }

    /// Inserts one round of [`load_entries`](Self::load_entries), in
    /// `order`, taking each shard's lock once.
    fn load_round(
        &self,
        batch: &mut [(u64, LoadEntry)],
        order: &[u64],
        now: i64,
        stats: &mut LoadStats,
    ) {
        let engine = self.engine();
        let _g = engine.enter(Held::Read);
        let mut locked: Option<(u64, crate::engine::Shard<'_>)> = None;
        for &o in order {
            let (shard, pos) = (o >> 32, (o & 0xffff_ffff) as usize);
            let Some((h, e)) = batch.get_mut(pos) else {
                continue;
            };
            let s = match &mut locked {
                Some((i, s)) if *i == shard => s,
                _ => {
                    // Unlock the previous shard before locking the next.
                    locked = None;
                    &mut locked
                        .insert((shard, engine.lock_index(shard as usize, now)))
                        .1
                }
            };
            // Under the shard lock, as a command's push signals: a client
            // blocking on this key registers under the same lock.
            self.signal_key_ready(e.db as usize, e.key.as_bytes());
            let value = std::mem::replace(&mut e.value, crate::Value::Int(0));
            s.load(*h, std::mem::take(&mut e.key), value, e.expires_at_ms);
            stats.loaded += 1;
        }
    }

    /// Prepares for loading about `keys` keys into `db` (a hint: the tables
    /// are sized once instead of growing step by step). Call
    /// [`trim_after_load`](Self::trim_after_load) when the load is done, in
    /// case the hint was too large.
    pub fn reserve_for_load(&self, db: usize, keys: usize) {
        if db < self.databases() {
            self.engine().reserve(db, keys);
        }
    }

    /// Gives back table space reserved by
    /// [`reserve_for_load`](Self::reserve_for_load) but not used.
    pub fn trim_after_load(&self) {
        self.engine().trim();
    }

    /// One round of active expiry, as Redis' `activeExpireCycle`: visits
    /// shards in turn from where the last round stopped, samples 20 keys
    /// with a TTL, deletes the expired ones and repeats on a shard while
    /// more than 25% of the sample had expired, stopping when `budget` is
    /// used up. Run it from a timer (Redis: 10 times a second, 25 ms).
    /// Does nothing while `DEBUG SET-ACTIVE-EXPIRE 0` is in effect or a
    /// busy operation runs ([`set_busy`](Self::set_busy)).
    pub fn active_expire_cycle(&self, budget: Duration) -> ExpireStats {
        // The timer Redis samples its memory peak from (serverCron).
        self.inner.memory.observe(self.inner.allocator.as_ref());
        // Redis' `evictionTimeProc`: an eviction that stopped at its time
        // limit goes on between commands.
        if self.inner.evict.running() {
            crate::evict::perform(self);
        }
        // Nor while a busy script holds the keyspace: the cycle would wait
        // for it on the caller's (async worker) thread.
        // Nor while clients are paused: Redis pauses expiry with writes.
        if !self.inner.active_expire.load(Ordering::Relaxed)
            || self.is_busy()
            || self.inner.pause.current().is_some()
        {
            return ExpireStats::default();
        }
        let started = Instant::now();
        let stats = self.engine().active_expire_cycle(budget, || self.is_busy());
        // An expired stream releases the XREADGROUP clients blocked on it,
        // as a deletion by a command does.
        if self.engine().counters.blocking.has_ready()
            && let Ok(_gate) = self.engine().enter_unless(Held::Read, || self.is_busy())
        {
            self.serve_blocked();
        }
        // Redis' `expire-cycle` latency event.
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.latency.add_if_needed("expire-cycle", ms);
        stats
    }

    /// Keys evicted for `maxmemory` (INFO `evicted_keys`).
    pub fn evicted_keys(&self) -> u64 {
        self.inner.evict.evicted_keys.load(Ordering::Relaxed)
    }

    /// Whether `maxmemory` can be enforced: it needs the allocator's
    /// count of used memory ([`KeyspaceBuilder::allocator_stats`]).
    pub fn enforces_maxmemory(&self) -> bool {
        self.inner.allocator.is_some()
    }

    /// Number of keys in `db` (0 for a database that does not exist).
    pub fn dbsize(&self, db: usize) -> usize {
        if db >= self.databases() {
            return 0;
        }
        self.engine().db_counts(db).0
    }

    /// Removes every key of every database atomically; `None` when called
    /// from a command that is not `EXCLUSIVE` (it would deadlock). Unlike
    /// the `FLUSHALL` command it calls no [`Extension::after_flushall`].
    pub fn flush_all(&self) -> Option<usize> {
        let e = self.engine();
        let _all = e.enter(Held::Write)?;
        Some(e.flush_dbs(0..e.databases()))
    }

    /// Runs `f` with the shards holding `keys` (db, key) locked together and
    /// every view-taking held off: an atomic multi-key operation for code
    /// that embeds the keyspace (and for tests).
    pub fn atomic<'k, R>(
        &self,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
        f: impl FnOnce(&mut Locked<'_>) -> R,
    ) -> R {
        let e = self.engine();
        // Inside a command the gate is already held: nested use is a no-op.
        let _g = e.enter(Held::Read);
        let now = e.clock.now_ms();
        let idx = keys
            .into_iter()
            .map(|(db, k)| e.shard_index(db, k))
            .collect();
        let mut locked = Locked::new(e, idx, now);
        f(&mut locked)
    }

    /// Reads a `CONFIG GET` parameter.
    pub fn config_param(&self, name: &str) -> Option<String> {
        self.inner
            .params
            .read()
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// Sets a `CONFIG GET` parameter (the embedding server reports its real
    /// port, dir, save points, ...).
    pub fn set_config_param(&self, name: &str, value: &str) {
        self.inner
            .params
            .write()
            .insert(name.to_ascii_lowercase(), value.to_string());
        apply_notify_param(
            &self.inner.engine.counters.notify,
            &name.to_ascii_lowercase(),
            value,
        );
        if crate::encoding::SharedLimits::controls(name)
            && let Ok(n) = value.parse::<i64>()
        {
            self.inner.limits.set(name, n);
        }
        self.param_changed(&name.to_ascii_lowercase(), value);
    }

    /// Copies a parameter the hot path reads into its cached form (an
    /// atomic), after `CONFIG SET` or [`set_config_param`](Self::set_config_param).
    pub(crate) fn param_changed(&self, name: &str, value: &str) {
        let int = || value.parse::<i64>().ok();
        match name {
            "maxmemory-policy" | "lfu-log-factor" | "lfu-decay-time" => {
                self.inner.engine.counters.access.apply(name, value);
                self.inner.evict.apply(name, value);
            }
            "maxmemory-samples" | "maxmemory-eviction-tenacity" => {
                self.inner.evict.apply(name, value);
            }
            "maxmemory" => {
                self.inner.evict.apply(name, value);
                // Redis' `updateMaxmemory`: a limit below what is used
                // evicts at once (or leaves writes refused).
                if crate::evict::over_limit(self) {
                    tracing::warn!(
                        maxmemory = value,
                        used = crate::evict::used(self).unwrap_or(0),
                        "the new maxmemory value is smaller than the current memory usage: this will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy"
                    );
                    crate::evict::perform(self);
                }
            }
            "latency-tracking" => self
                .inner
                .stats
                .tracking
                .store(value == "yes", Ordering::Relaxed),
            "slowlog-log-slower-than" => {
                if let Some(n) = int() {
                    self.inner.slowlog.slower_than.store(n, Ordering::Relaxed);
                }
            }
            "slowlog-max-len" => {
                if let Some(n) = int() {
                    let n = usize::try_from(n).unwrap_or(0);
                    self.inner.slowlog.max_len.store(n, Ordering::Relaxed);
                }
            }
            "requirepass" => self.inner.auth.set_requirepass(value.as_bytes()),
            "acllog-max-len" => {
                if let Some(n) = int().and_then(|n| usize::try_from(n).ok()) {
                    self.inner.auth.set_log_max_len(n);
                }
            }
            "timeout" => {
                if let Some(n) = int().and_then(|n| u64::try_from(n).ok()) {
                    self.inner
                        .idle_timeout
                        .send_replace(std::time::Duration::from_secs(n));
                }
            }
            "maxclients" => {
                if let Some(n) = int().and_then(|n| usize::try_from(n).ok()) {
                    self.inner.max_clients.store(n, Ordering::Relaxed);
                }
            }
            "tcp-keepalive" => {
                if let Some(n) = int().and_then(|n| u64::try_from(n).ok()) {
                    self.inner.tcp_keepalive.store(n, Ordering::Relaxed);
                }
            }
            "protected-mode" => self
                .inner
                .protected_mode
                .store(value == "yes", Ordering::Relaxed),
            "client-output-buffer-limit" => self.inner.output_limits.apply(value),
            "client-query-buffer-limit" => {
                if let Some(n) = int().and_then(|n| usize::try_from(n).ok()) {
                    let limits = &self.inner.input_limits;
                    limits.query_buffer.store(n, Ordering::Relaxed);
                }
            }
            "proto-max-bulk-len" => {
                if let Some(n) = int().and_then(|n| usize::try_from(n).ok()) {
                    self.inner.input_limits.bulk_len.store(n, Ordering::Relaxed);
                }
            }
            "latency-monitor-threshold" => {
                if let Some(n) = int() {
                    self.inner.latency.threshold.store(n, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// `hz` as configured (Redis keeps it within 1..500).
    pub fn configured_hz(&self) -> u32 {
        self.config_param("hz")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(10)
            .clamp(1, MAX_HZ)
    }

    /// How many times a second the server's cron (the active expiry cycle)
    /// runs: `hz`, doubled while there are more than 200 clients per tick
    /// with `dynamic-hz` on, up to 500, as Redis' `serverCron`.
    pub fn cron_hz(&self) -> u32 {
        let mut hz = self.configured_hz();
        if self.config_param("dynamic-hz").as_deref() != Some("no") {
            let clients = self.connected_clients();
            while clients / hz as usize > 200 {
                hz = hz.saturating_mul(2);
                if hz >= MAX_HZ {
                    hz = MAX_HZ;
                    break;
                }
            }
        }
        hz
    }

    /// The time one active expiry cycle may take at `hz`: 25% of a tick,
    /// plus 2% per step of `active-expire-effort` above 1, as Redis'
    /// `activeExpireCycle` (slow cycle).
    pub fn expire_cycle_budget(&self, hz: u32) -> std::time::Duration {
        let effort = self
            .config_param("active-expire-effort")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 10);
        let percent = 25 + 2 * (effort - 1);
        std::time::Duration::from_secs(1) * percent / 100 / hz.max(1)
    }

    /// Takes one sample of the instantaneous metrics (INFO
    /// `instantaneous_ops_per_sec`, `instantaneous_input_kbps`, ...): call
    /// it every 100 ms, as Redis' cron does; each is the mean of the last
    /// 16 samples.
    pub fn sample_metrics(&self) {
        self.inner.stats.sample();
    }

    /// The conversion thresholds of small collections in effect (CONFIG
    /// SET changes them). Code that builds values outside a command, such
    /// as a restore's decoding threads, calls [`Limits::install`] with
    /// them so the values get the encodings commands would give them.
    pub fn encoding_limits(&self) -> crate::encoding::Limits {
        self.inner.limits.load()
    }

    /// The `INFO` text for the given lowercase section names (empty: the
    /// default sections), extensions' sections included.
    pub fn info(&self, sections: &[&str]) -> String {
        let sections: Vec<String> = sections.iter().map(|s| s.to_ascii_lowercase()).collect();
        cmd::server::info_text(self, &sections)
    }

    /// Number of open sessions.
    pub fn connected_clients(&self) -> usize {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Seconds since the keyspace was built.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Opens a session not tied to a connection (tests, embedding).
    pub fn session(&self) -> Session {
        let id = self.inner.next_client_id.fetch_add(1, Ordering::Relaxed);
        let (tx, _rx) = mpsc::unbounded_channel();
        self.open_session(id, None, tx)
    }

    fn open_session(
        &self,
        id: u64,
        conn: Option<ConnInfo>,
        tx: mpsc::UnboundedSender<Event>,
    ) -> Session {
        self.inner.connected.fetch_add(1, Ordering::Relaxed);
        // Redis' createClient: authenticated when the default user is nopass.
        let authenticated = !self.inner.auth.required();
        Session::new(self.clone(), SessionState::new(id, conn, authenticated, tx))
    }
}

/// Redis 7.0.15's refusal, byte for byte (its "Setup a an" included).
const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

impl Service for Keyspace {
    type Session = Session;

    fn open(&self, conn: ConnInfo) -> (Session, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = conn.id;
        (self.open_session(id, Some(conn), tx), rx)
    }

    /// Redis 7.0's protected mode (`clientAcceptHandler`): while it is on
    /// and the default user is `nopass`, only loopback peers are served;
    /// others get Redis' explanation and are closed.
    fn max_clients(&self) -> Option<usize> {
        match self.inner.max_clients.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    fn tcp_keepalive(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.inner.tcp_keepalive.load(Ordering::Relaxed))
    }

    fn refuse(&self, conn: &ConnInfo) -> Option<Bytes> {
        let protect = self.inner.protected_mode.load(Ordering::Relaxed) && self.inner.auth.nopass();
        let outside = match &conn.peer {
            // Unix socket clients are always local.
            cairn_resp::Addr::Unix(_) => false,
            cairn_resp::Addr::Tcp(a) => !a.ip().to_canonical().is_loopback(),
        };
        (protect && outside).then(|| Bytes::from_static(PROTECTED_MODE_DENIED))
    }
}
