//! Fixtures of the persistence suites: an isolated runtime per test with
//! leak checks, in-process servers on real data directories, seeds, INFO
//! parsing, directory fingerprints and (Linux, root) tmpfs mounts.
//!
//! Every test body runs through [`run`], which gives it a [`Ctx`] and, when
//! the body returns, fails the test on any leak: a server that was not shut
//! down, a port still accepting, a tokio task still alive, a runtime
//! thread still running, a temporary directory still on disk, and (checked
//! whenever no test of the binary is running) a fjall or store thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cairn_server::{
    Server, ServerBuilder, ServerHandle, ShutdownOptions, SnapshotEvents, SnapshotInfo,
    SnapshotOutcome,
};

use crate::data::{self, Dataset};

/// How long a leak may take to clear before it counts (a busy 2-core
/// machine, tasks that end right after their connection closes).
const LEAK_GRACE: Duration = Duration::from_secs(10);

/// The seed of a randomized test: `CAIRN_TEST_SEED` when set (replay),
/// otherwise a fresh one. Printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("CAIRN_TEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(rand::random);
    println!("{test}: seed {seed} (replay with CAIRN_TEST_SEED={seed})");
    seed
}

/// Whether `CAIRN_QUICK=1` asks for the short form of the suites.
pub fn quick() -> bool {
    std::env::var("CAIRN_QUICK").is_ok_and(|v| v == "1")
}

#[derive(Default)]
struct Registry {
    dirs: Vec<tempfile::TempDir>,
    /// Servers started and not yet shut down, by address.
    running: Vec<SocketAddr>,
}

/// What a test body gets: temporary directories and servers whose cleanup
/// [`run`] checks.
#[derive(Clone, Default)]
pub struct Ctx {
    reg: Arc<Mutex<Registry>>,
}

/// Tests of this binary in progress (guarded: the process-wide thread
/// check runs with the lock held, so no test starts during it).
static ACTIVE: Mutex<usize> = Mutex::new(0);
static RUNTIME_IDS: AtomicUsize = AtomicUsize::new(0);

/// Runs `body` on a fresh multi-threaded runtime whose threads are named
/// for this test, then checks that it leaked nothing (see the module doc).
///
/// # Errors
/// The body's error, or the first leak found.
pub fn run<F, Fut>(test: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    {
        let mut active = ACTIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *active += 1;
    }
    let outcome = run_isolated(test, body);
    let mut active = ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *active -= 1;
    let global = if *active == 0 {
        process_threads_gone()
    } else {
        Ok(())
    };
    drop(active);
    outcome.and(global)
}

fn run_isolated<F, Fut>(test: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // Thread names are cut to 15 bytes by Linux; keep the prefix short
    // and unique per runtime.
    let prefix = format!("ct{:05}-", RUNTIME_IDS.fetch_add(1, Ordering::Relaxed));
    let name = prefix.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name_fn(move || name.clone())
        .enable_all()
        .build()
        .context("building the test runtime")?;
    let ctx = Ctx::default();
    let result = rt.block_on(async {
        let r = body(ctx.clone()).await;
        // The body's own tasks (client drivers, writers) end shortly after
        // their handles are dropped: wait for that, with a deadline.
        let tasks = wait_until(LEAK_GRACE, || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                == 0
        })
        .await
        .map_err(|()| {
            anyhow::anyhow!(
                "leak: {} tokio task(s) still alive {LEAK_GRACE:?} after the test",
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
            )
        });
        r.with_context(|| format!("{test} failed")).and(tasks)
    });
    rt.shutdown_timeout(LEAK_GRACE);
    let mut reg = ctx
        .reg
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut leaks = Vec::new();
    if !reg.running.is_empty() && result.is_ok() {
        leaks.push(format!("servers never shut down: {:?}", reg.running));
    }
    let paths: Vec<PathBuf> = reg.dirs.iter().map(|d| d.path().to_path_buf()).collect();
    for dir in reg.dirs.drain(..) {
        if let Err(e) = dir.close() {
            leaks.push(format!("temporary directory not removable: {e}"));
        }
    }
    for p in paths {
        if p.exists() {
            leaks.push(format!("temporary directory still exists: {}", p.display()));
        }
    }
    drop(reg);
    if let Some(threads) = threads_named(&prefix)
        && !wait_blocking(LEAK_GRACE, || {
            threads_named(&prefix).is_none_or(|t| t.is_empty())
        })
    {
        leaks.push(format!(
            "runtime threads still running after shutdown: {threads:?}"
        ));
    }
    result?;
    if leaks.is_empty() {
        Ok(())
    } else {
        bail!("{test} leaked: {}", leaks.join("; "))
    }
}

/// The process's threads whose name starts with `prefix` (Linux only:
/// `None` elsewhere).
pub fn threads_named(prefix: &str) -> Option<Vec<String>> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut names = Vec::new();
    for t in tasks.flatten() {
        if let Ok(comm) = std::fs::read_to_string(t.path().join("comm")) {
            let comm = comm.trim_end().to_owned();
            if comm.starts_with(prefix) {
                names.push(comm);
            }
        }
    }
    Some(names)
}

/// With no test running: no fjall worker and no store writer thread may be
/// left in the process.
fn process_threads_gone() -> anyhow::Result<()> {
    let storage = || {
        let mut all = threads_named("fjall").unwrap_or_default();
        all.extend(threads_named("cairn-store").unwrap_or_default());
        all
    };
    if wait_blocking(LEAK_GRACE, || storage().is_empty()) {
        Ok(())
    } else {
        bail!(
            "leak: storage threads still running with no test active: {:?}",
            storage()
        )
    }
}

fn wait_blocking(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Polls `done` until it holds or `limit` passes (`Err(())`). Only for
/// conditions no event reports (a task count, a thread list).
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Waits for the next snapshot outcome, failing after `limit`.
///
/// # Errors
/// No snapshot completed in time.
pub async fn next_snapshot(
    events: &mut SnapshotEvents,
    limit: Duration,
) -> anyhow::Result<SnapshotOutcome> {
    tokio::time::timeout(limit, events.next())
        .await
        .with_context(|| format!("no snapshot completed within {limit:?}"))
}

impl Ctx {
    /// A temporary directory removed (and checked to be gone) after the test.
    ///
    /// # Errors
    /// It cannot be created.
    pub fn tempdir(&self) -> anyhow::Result<PathBuf> {
        let dir = tempfile::Builder::new()
            .prefix("cairn-test-")
            .tempdir()
            .context("tempdir")?;
        let path = dir.path().to_path_buf();
        self.reg
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .dirs
            .push(dir);
        Ok(path)
    }

    /// A builder for a server on `data_dir`, on a free port, with
    /// persistence on and periodic snapshots far away (tests trigger the
    /// snapshots they need, or set an interval themselves).
    pub fn builder(&self, data_dir: &Path) -> ServerBuilder {
        Server::builder()
            // As Redis' own suite starts redis-server: the suites use DEBUG.
            .enable_debug_command(cairn_server::ProtectedAction::Yes)
            .port(0)
            .data_dir(data_dir)
            .persistence(true)
            .snapshot_interval(Duration::from_secs(3600))
    }

    /// Starts a server; it must be stopped with [`Node::shutdown`] (or a
    /// sibling) before the test ends.
    ///
    /// # Errors
    /// The server did not start.
    pub async fn start(&self, builder: ServerBuilder) -> anyhow::Result<Node> {
        let data_dir = builder.get_config().data_dir.clone();
        let handle = builder.build().start().await.context("starting cairn")?;
        let addr = handle.addr();
        self.reg
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .running
            .push(addr);
        Ok(Node {
            handle,
            addr,
            data_dir,
            ctx: self.clone(),
        })
    }
}

/// A running in-process server on a real data directory.
pub struct Node {
    handle: ServerHandle,
    addr: SocketAddr,
    data_dir: PathBuf,
    ctx: Ctx,
}

impl Node {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server handle.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// A blocking client connection (use it from `spawn_blocking` or a
    /// thread).
    ///
    /// # Errors
    /// The server cannot be reached.
    pub fn conn(&self) -> anyhow::Result<redis::Connection> {
        data::connect(self.addr)
    }

    /// Writes `ds` over TCP.
    ///
    /// # Errors
    /// I/O errors or an error reply.
    pub async fn populate(&self, ds: &Dataset) -> anyhow::Result<()> {
        let (addr, ds) = (self.addr, ds.clone());
        tokio::task::spawn_blocking(move || data::populate_addr(addr, &ds)).await?
    }

    /// Everything the server holds, read over TCP.
    ///
    /// # Errors
    /// I/O errors or unexpected replies.
    pub async fn dump(&self) -> anyhow::Result<Dataset> {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || data::dump_addr(addr)).await?
    }

    /// Fails unless the server holds exactly `want` (expiries within
    /// [`data::TTL_TOLERANCE_MS`]).
    ///
    /// # Errors
    /// The data differs, or the dump failed.
    pub async fn check(&self, want: &Dataset, what: &str) -> anyhow::Result<()> {
        let got = self.dump().await?;
        want.without_expired(data::now_ms())
            .check_equal(&got, data::TTL_TOLERANCE_MS, what)
    }

    /// Runs one command over a new connection.
    ///
    /// # Errors
    /// I/O errors or an error reply.
    pub async fn call<T: redis::FromRedisValue + Send + 'static>(
        &self,
        args: &[&str],
    ) -> anyhow::Result<T> {
        let addr = self.addr;
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let mut conn = data::connect(addr)?;
            let mut c = redis::Cmd::new();
            for a in &args {
                c.arg(a.as_str());
            }
            c.query::<T>(&mut conn).with_context(|| format!("{args:?}"))
        })
        .await?
    }

    /// `INFO <section>` as a map of its fields.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn info(&self, section: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let text: String = self.call(&["INFO", section]).await?;
        Ok(parse_info(&text))
    }

    /// Takes a snapshot and waits for its commit.
    ///
    /// # Errors
    /// The snapshot failed.
    pub async fn snapshot(&self) -> anyhow::Result<SnapshotInfo> {
        self.handle.snapshot_now().await.context("snapshot_now")
    }

    /// Stops the server with the configured shutdown snapshot, then checks
    /// its port is closed.
    ///
    /// # Errors
    /// The shutdown failed or the port still accepts connections.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown_with(ShutdownOptions::default()).await
    }

    /// Stops the server without a snapshot.
    ///
    /// # Errors
    /// As [`Node::shutdown`].
    pub async fn shutdown_nosave(self) -> anyhow::Result<()> {
        self.shutdown_with(ShutdownOptions::nosave()).await
    }

    /// Waits (at most `limit`) until something else, such as the
    /// `SHUTDOWN` command, stopped the server; then releases it and checks
    /// its port is closed.
    ///
    /// # Errors
    /// It did not stop in time, or the port still accepts connections.
    pub async fn wait_stopped(self, limit: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, self.handle.stopped())
            .await
            .with_context(|| format!("the server did not stop within {limit:?}"))?;
        // Already stopped: this only joins the server's tasks.
        self.shutdown_with(ShutdownOptions::nosave()).await
    }

    /// Stops the server with `opts`.
    ///
    /// # Errors
    /// As [`Node::shutdown`].
    pub async fn shutdown_with(self, opts: ShutdownOptions) -> anyhow::Result<()> {
        let Node {
            handle, addr, ctx, ..
        } = self;
        let result = handle.shutdown_with(opts).await.context("shutdown");
        ctx.reg
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .running
            .retain(|a| *a != addr);
        result?;
        port_closed(addr)
    }
}

/// Fails if something still accepts connections on `addr`.
///
/// # Errors
/// The port is open.
pub fn port_closed(addr: SocketAddr) -> anyhow::Result<()> {
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(_) => bail!("leak: {addr} still accepts connections after shutdown"),
        Err(_) => Ok(()),
    }
}

/// Parses `INFO` text into its `field:value` pairs.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Every entry below `dir` (relative path) with its size and a hash of its
/// bytes, except `LOCK`: two equal fingerprints mean nothing in the
/// directory changed.
///
/// # Errors
/// I/O errors.
pub fn fingerprint(dir: &Path) -> anyhow::Result<BTreeMap<PathBuf, (u64, u64)>> {
    use std::hash::{Hash, Hasher};
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<PathBuf, (u64, u64)>,
    ) -> anyhow::Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let p = e.path();
            let rel = p.strip_prefix(root)?.to_path_buf();
            if e.file_type()?.is_dir() {
                out.insert(rel.join(""), (0, 0));
                walk(root, &p, out)?;
            } else if rel != Path::new("LOCK") {
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                // SipHash with fixed keys: stable within the process.
                let mut h = std::hash::DefaultHasher::new();
                bytes.hash(&mut h);
                out.insert(rel, (bytes.len() as u64, h.finish()));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Names of the entries of `dir` (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Sealed generation directories (`gen-<20 digits>`) in `dir`, oldest first.
pub fn generations(dir: &Path) -> Vec<PathBuf> {
    entries(dir)
        .into_iter()
        .filter(|n| {
            n.len() == 24 && n.starts_with("gen-") && n[4..].bytes().all(|b| b.is_ascii_digit())
        })
        .map(|n| dir.join(n))
        .collect()
}

/// Every regular file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(t) if t.is_file() => out.push(e.path()),
                    _ => {}
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether this process runs as root (`id -u`: the workspace forbids the
/// `unsafe` a direct `geteuid` call needs).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether suites that need root must run rather than skip
/// (`CAIRN_REQUIRE_ROOT_TESTS=1`, set by `cargo xtask ci` as root on Linux).
pub fn root_tests_required() -> bool {
    std::env::var("CAIRN_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1")
}

/// `Ok(true)` when a root-only test can run; otherwise prints
/// `skipped: <reason>` and returns `Ok(false)`, or fails when root tests
/// are required.
///
/// # Errors
/// Not root (or not Linux) while `CAIRN_REQUIRE_ROOT_TESTS=1`.
pub fn root_or_skip(test: &str) -> anyhow::Result<bool> {
    let why = if !cfg!(target_os = "linux") {
        Some("needs Linux tmpfs mounts")
    } else if !is_root() {
        Some("needs root to mount a tmpfs")
    } else {
        None
    };
    match why {
        None => Ok(true),
        Some(why) if root_tests_required() => {
            bail!("{test}: {why}, and CAIRN_REQUIRE_ROOT_TESTS=1")
        }
        Some(why) => {
            println!("skipped: {test}: {why}");
            Ok(false)
        }
    }
}

/// A small tmpfs mounted on a fresh directory, unmounted on drop (lazily if
/// something still holds it, so a failing test never leaves a mount).
pub struct Tmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

fn sh(args: &[&str]) -> anyhow::Result<()> {
    let (prog, rest) = args.split_first().context("empty command")?;
    let out = std::process::Command::new(prog)
        .args(rest)
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if out.status.success() {
        Ok(())
    } else {
        bail!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"16m"`).
    ///
    /// # Errors
    /// `mount` failed.
    pub fn mount(size: &str) -> anyhow::Result<Tmpfs> {
        let parent = tempfile::Builder::new().prefix("cairn-tmpfs-").tempdir()?;
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path)?;
        let p = path.to_str().context("non-UTF-8 temp path")?;
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
            p,
        ])?;
        Ok(Tmpfs {
            path,
            _parent: parent,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remounts read-only (`true`) or read-write.
    ///
    /// # Errors
    /// `mount -o remount` failed.
    pub fn set_read_only(&self, yes: bool) -> anyhow::Result<()> {
        let p = self.path.to_str().context("non-UTF-8 temp path")?;
        sh(&[
            "mount",
            "-o",
            if yes { "remount,ro" } else { "remount,rw" },
            p,
        ])
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let p = self.path.to_string_lossy().into_owned();
        if let Err(e) = sh(&["umount", &p]) {
            eprintln!("umount {p}: {e}; detaching lazily");
            if let Err(e) = sh(&["umount", "-l", &p]) {
                eprintln!("umount -l {p}: {e}");
            }
        }
    }
}

/// Copies `src` into `dst` recursively (files and directories only).
///
/// # Errors
/// I/O errors.
pub fn copy_tree(src: &Path, dst: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        let kind = e.file_type()?;
        if kind.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else if kind.is_file() {
            std::fs::copy(e.path(), &to)
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Collects records as the store streams them.
struct Records(Vec<cairn_snapshot::Record>);

impl cairn_store::LoadSink for Records {
    fn record(&mut self, r: cairn_snapshot::Record) -> Result<(), cairn_store::SinkError> {
        self.0.push(r);
        Ok(())
    }

    fn abort(&mut self, _generation: u64, _reason: &cairn_store::Damage) {
        self.0.clear();
    }
}

/// Every record of one committed generation directory (`gen-<N>`), read
/// through the store with full verification from a private copy in
/// `scratch` (so a running or stopped server's directory is never
/// touched). Fails if that generation does not verify.
///
/// # Errors
/// I/O errors, or the generation did not load as itself.
pub fn read_generation(
    gen_dir: &Path,
    scratch: &Path,
) -> anyhow::Result<Vec<cairn_snapshot::Record>> {
    let name = gen_dir.file_name().context("generation directory name")?;
    let want: u64 = name
        .to_string_lossy()
        .trim_start_matches("gen-")
        .parse()
        .context("generation number")?;
    copy_tree(gen_dir, &scratch.join(name))?;
    // Without CURRENT the store considers every sealed generation, and this
    // copy has only one. `Fallback`, because `Refuse` refuses a directory
    // whose CURRENT is missing; a damaged copy still fails (nothing else to
    // fall back to).
    let store = cairn_store::Store::open(scratch).context("opening the copy")?;
    let mut sink = Records(Vec::new());
    let report = store
        .load(&mut sink, cairn_store::LoadPolicy::Fallback)
        .context("loading the copy")?;
    anyhow::ensure!(
        report.generation == Some(want),
        "loaded {:?} instead of generation {want}",
        report.generation
    );
    Ok(sink.0)
}
