//! Suite `memory`: resident memory per key for every type, cairn beside
//! Redis in the same run (issue #14).
//!
//! Each case starts a fresh server (no persistence), reads its RSS, loads
//! the case's keys over one pipelined connection, reads the RSS again, and
//! reports the growth divided by the number of keys. Cases: 1,000,000
//! strings of 100 bytes (200,000 with `--quick`); hashes, sets of strings,
//! sets of integers, sorted sets and lists of 10 small elements (100,000
//! keys); and of 1,000 elements (1,000 keys). Elements are 8 to 16 bytes,
//! generated from the run's seed, so both servers hold the same bytes.
//!
//! The strings case then deletes every other key and sets as many new ones
//! of 50 to 150 bytes, and reports the RSS per key again (fragmentation,
//! for the allocator comparison).
//!
//! Then large values (issue #14 item 4, #18 item 3): a hash, set, sorted
//! set and list of 1,000,000 elements (200,000 with `--quick`) and a stream
//! of 1,000,000 entries, one key each: BGSAVE with one write while the
//! snapshot runs, and the peak PSS growth over the value's size (Redis pays
//! the fork's copied pages); SAVE time; restart time and the peak RSS while
//! restoring, over the restored value's RSS.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::resp::{self, Conn, Reply};
use super::servers::{self, Kind, Server, Spec};
use super::{Outcome, Plan, Table, fmt_ratio, target};

/// One case: what each key holds.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    /// The command that fills a key in one go.
    kind: Shape,
    elements: usize,
    keys: u64,
    /// The ratio the issue sets as the target.
    target: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    String,
    Hash,
    Set,
    IntSet,
    ZSet,
    List,
}

fn cases(quick: bool) -> Vec<Case> {
    let strings = if quick { 200_000 } else { 1_000_000 };
    let small = if quick { 20_000 } else { 100_000 };
    let large = if quick { 200 } else { 1_000 };
    let mut out = vec![Case {
        name: "string, 100 B value",
        kind: Shape::String,
        elements: 1,
        keys: strings,
        target: 1.0,
    }];
    for (elements, keys, target) in [(10, small, 1.0), (1000, large, 1.2)] {
        for (name, kind) in [
            ("hash", Shape::Hash),
            ("set of strings", Shape::Set),
            ("set of integers", Shape::IntSet),
            ("sorted set", Shape::ZSet),
            ("list", Shape::List),
        ] {
            out.push(Case {
                name,
                kind,
                elements,
                keys,
                target,
            });
        }
    }
    out
}

/// A small random element: 8 to 16 printable bytes.
fn element(rng: &mut StdRng) -> String {
    let len = rng.random_range(8..=16);
    (0..len)
        .map(|_| char::from(rng.random_range(b'a'..=b'z')))
        .collect()
}

/// The command filling key `i` of `case`.
fn command(case: &Case, i: u64, rng: &mut StdRng) -> Vec<Vec<u8>> {
    let key = format!("key:{i:012}");
    let mut args: Vec<Vec<u8>> = Vec::with_capacity(2 + 2 * case.elements);
    let n = case.elements;
    match case.kind {
        Shape::String => {
            let mut v = vec![0u8; 100];
            rng.fill(&mut v[..]);
            args.extend([b"SET".to_vec(), key.into_bytes(), v]);
        }
        Shape::Hash => {
            args.extend([b"HSET".to_vec(), key.into_bytes()]);
            for j in 0..n {
                args.push(format!("field:{j}").into_bytes());
                args.push(element(rng).into_bytes());
            }
        }
        Shape::Set => {
            args.extend([b"SADD".to_vec(), key.into_bytes()]);
            args.extend((0..n).map(|j| format!("{}:{j}", element(rng)).into_bytes()));
        }
        Shape::IntSet => {
            args.extend([b"SADD".to_vec(), key.into_bytes()]);
            args.extend((0..n).map(|j| {
                (j as u64 * 1000 + rng.random_range(0..1000))
                    .to_string()
                    .into_bytes()
            }));
        }
        Shape::ZSet => {
            args.extend([b"ZADD".to_vec(), key.into_bytes()]);
            for j in 0..n {
                args.push(rng.random_range(0..1_000_000u32).to_string().into_bytes());
                args.push(format!("{}:{j}", element(rng)).into_bytes());
            }
        }
        Shape::List => {
            args.extend([b"RPUSH".to_vec(), key.into_bytes()]);
            args.extend((0..n).map(|_| element(rng).into_bytes()));
        }
    }
    args
}

/// Sends `n` commands from `make(i, rng)` pipelined from a writer thread
/// while this one reads the replies; any error reply fails.
fn pipeline(
    conn: Conn,
    n: u64,
    seed: u64,
    make: impl Fn(u64, &mut StdRng) -> Vec<Vec<u8>> + Send + 'static,
) -> Result<Duration> {
    let started = Instant::now();
    let (mut reader, mut writer) = conn.split();
    let sender = std::thread::Builder::new()
        .name("memory-loader".into())
        .spawn(move || -> Result<()> {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut buf = Vec::with_capacity(1 << 20);
            for i in 0..n {
                let args = make(i, &mut rng);
                let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                resp::encode(&mut buf, &refs);
                if buf.len() >= 1 << 19 {
                    writer.write_all(&buf)?;
                    buf.clear();
                }
            }
            writer.write_all(&buf)?;
            Ok(())
        })?;
    let mut bad = None;
    for _ in 0..n {
        if let Reply::Error(e) = resp::read_reply(&mut reader)? {
            bad.get_or_insert(e);
        }
    }
    match sender.join() {
        Ok(r) => r?,
        Err(_) => bail!("the loader's writer thread panicked"),
    }
    if let Some(e) = bad {
        bail!("answered {e:?}");
    }
    Ok(started.elapsed())
}

fn load(conn: Conn, case: Case, seed: u64) -> Result<Duration> {
    pipeline(conn, case.keys, seed, move |i, rng| command(&case, i, rng))
}

/// After a string load: deletes every other key and sets as many new
/// keys with values of 50 to 150 bytes (fragmentation), in one pipeline.
fn churn(conn: Conn, keys: u64, seed: u64) -> Result<Duration> {
    pipeline(conn, keys, seed ^ 0x5eed, move |i, rng| {
        if i % 2 == 0 {
            vec![b"DEL".to_vec(), format!("key:{i:012}").into_bytes()]
        } else {
            let mut v = vec![0u8; rng.random_range(50..=150)];
            rng.fill(&mut v[..]);
            vec![b"SET".to_vec(), format!("new:{i:012}").into_bytes(), v]
        }
    })
}

/// Resident bytes of a server, after letting it settle briefly (the
/// allocator returns freed pages lazily).
fn settled_rss(server: &Server) -> Result<u64> {
    let mut c = server.conn()?;
    // A round trip: every earlier reply has been produced.
    c.cmd(&["PING"])?;
    servers::rss_bytes(server.pid()).ok_or_else(|| anyhow::anyhow!("no RSS for the server"))
}

/// RSS growth per key of one case on one server, and the encoding of one
/// key as the server reports it.
fn measure(plan: &Plan, kind: Kind, case: Case) -> Result<(f64, String)> {
    let tmp = tempfile::tempdir()?;
    let server = Server::start(
        &plan.cairn_bin,
        &Spec {
            kind,
            dir: tmp.path().to_path_buf(),
            persistence: false,
        },
    )?;
    let before = settled_rss(&server)?;
    let took = load(server.conn()?, case, plan.seed)?;
    let after = settled_rss(&server)?;
    let mut c = server.conn()?;
    let size = c.dbsize()?;
    if u64::try_from(size).ok() != Some(case.keys) {
        bail!(
            "{} holds {size} keys after loading {}",
            kind.name(),
            case.keys
        );
    }
    let mut enc = c
        .cmd(&["OBJECT", "ENCODING", "key:000000000000"])?
        .text()
        .unwrap_or_default();
    if case.kind == Shape::String {
        // Same number of live keys after the churn: RSS per key again.
        churn(server.conn()?, case.keys, plan.seed)?;
        let churned = settled_rss(&server)?;
        enc = format!(
            "{enc}; after churn {:.0} B/key",
            churned.saturating_sub(before) as f64 / case.keys as f64
        );
    }
    eprintln!(
        "bench: memory: {} x{} into {}: {took:.2?}, RSS {} -> {} ({enc})",
        case.name,
        case.elements,
        kind.name(),
        before,
        after
    );
    server.stop()?;
    Ok((after.saturating_sub(before) as f64 / case.keys as f64, enc))
}

/// The large values of the copy-on-write and snapshot rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Large {
    Hash,
    Set,
    ZSet,
    List,
    Stream,
}

impl Large {
    const ALL: [Large; 5] = [
        Large::Hash,
        Large::Set,
        Large::ZSet,
        Large::List,
        Large::Stream,
    ];

    fn name(self) -> &'static str {
        match self {
            Large::Hash => "hash",
            Large::Set => "set",
            Large::ZSet => "sorted set",
            Large::List => "list",
            Large::Stream => "stream",
        }
    }

    /// Elements (stream entries): 1,000,000, or 200,000 with `--quick`
    /// but for the stream, whose 10^6 entries issue #18 names.
    fn elements(self, quick: bool) -> u64 {
        if quick && self != Large::Stream {
            200_000
        } else {
            1_000_000
        }
    }

    /// Elements added per command while loading.
    fn per_command(self) -> u64 {
        if self == Large::Stream { 1 } else { 1000 }
    }

    /// Command `i` of the load.
    fn command(self, i: u64, rng: &mut StdRng) -> Vec<Vec<u8>> {
        let key = b"big".to_vec();
        let from = i * self.per_command();
        let to = from + self.per_command();
        let mut args = Vec::with_capacity(2 + 2 * self.per_command() as usize);
        match self {
            Large::Hash => {
                args.extend([b"HSET".to_vec(), key]);
                for j in from..to {
                    args.push(format!("field:{j}").into_bytes());
                    args.push(element(rng).into_bytes());
                }
            }
            Large::Set => {
                args.extend([b"SADD".to_vec(), key]);
                args.extend((from..to).map(|j| format!("{}:{j}", element(rng)).into_bytes()));
            }
            Large::ZSet => {
                args.extend([b"ZADD".to_vec(), key]);
                for j in from..to {
                    args.push(rng.random_range(0..1_000_000u32).to_string().into_bytes());
                    args.push(format!("{}:{j}", element(rng)).into_bytes());
                }
            }
            Large::List => {
                args.extend([b"RPUSH".to_vec(), key]);
                args.extend((from..to).map(|_| element(rng).into_bytes()));
            }
            Large::Stream => {
                // Three small fields per entry, as issue #18's memory row.
                args.extend([b"XADD".to_vec(), key, b"*".to_vec()]);
                for f in ["a", "b", "c"] {
                    args.push(f.as_bytes().to_vec());
                    args.push(element(rng).into_bytes());
                }
            }
        }
        args
    }

    /// The one write made while the snapshot runs: in the middle of the
    /// value where that means something (LSET), else a new element.
    fn write(self, elements: u64) -> Vec<String> {
        let args: Vec<String> = match self {
            Large::Hash => vec!["HSET", "big", "field:1", "changed during the snapshot"]
                .into_iter()
                .map(String::from)
                .collect(),
            Large::Set => vec![
                "SADD".into(),
                "big".into(),
                "added during the snapshot".into(),
            ],
            Large::ZSet => vec![
                "ZADD".into(),
                "big".into(),
                "5".into(),
                "added during the snapshot".into(),
            ],
            Large::List => vec![
                "LSET".into(),
                "big".into(),
                (elements / 2).to_string(),
                "changed during the snapshot".into(),
            ],
            Large::Stream => vec![
                "XADD".into(),
                "big".into(),
                "*".into(),
                "a".into(),
                "added during the snapshot".into(),
            ],
        };
        args
    }
}

/// One large value on one server: its size, what a write during BGSAVE
/// cost, SAVE and restart times, and the peak while restoring.
struct LargeRow {
    /// PSS the value added.
    value_pss: f64,
    /// Peak PSS growth (server and forks) during BGSAVE with one write.
    cow: f64,
    save: Duration,
    /// Spawn to first PONG on the restart, the value loaded.
    restart: Duration,
    /// What the server logged as its load time.
    load: Option<Duration>,
    /// RSS the restored value holds (after the restart, over a fresh
    /// server's).
    restored_rss: f64,
    /// Peak RSS of the restarting process (VmHWM) over a fresh server's.
    restore_peak: f64,
}

/// Loads one large value, BGSAVE with one write during it (peak PSS
/// growth), SAVE (timed), then a restart from that snapshot (timed, with
/// the peak RSS while restoring).
fn large(plan: &Plan, kind: Kind, what: Large) -> Result<LargeRow> {
    let elements = what.elements(plan.quick);
    let tmp = tempfile::tempdir()?;
    let spec = Spec {
        kind,
        dir: tmp.path().to_path_buf(),
        persistence: true,
    };
    let server = Server::start(&plan.cairn_bin, &spec)?;
    let pss = |s: &Server| servers::pss_bytes(s.pid()).unwrap_or(0);
    let fresh_rss = settled_rss(&server)?;
    let before = pss(&server);
    pipeline(
        server.conn()?,
        elements / what.per_command(),
        plan.seed,
        move |i, rng| what.command(i, rng),
    )?;
    let mut c = server.conn()?;
    c.cmd(&["PING"])?;
    let loaded = pss(&server);
    let value_pss = loaded.saturating_sub(before);
    if let Reply::Error(e) = c.cmd(&["BGSAVE"])? {
        bail!("{}: BGSAVE answered {e}", kind.name());
    }
    let write = what.write(elements);
    let refs: Vec<&str> = write.iter().map(String::as_str).collect();
    if let Reply::Error(e) = c.cmd(&refs)? {
        bail!("{}: {} answered {e}", kind.name(), write.join(" "));
    }
    // Sample the peak (the server's and, for Redis, its fork's) until the
    // snapshot is over.
    let mut peak = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let own = pss(&server);
        let forks: u64 = servers::children(server.pid())
            .into_iter()
            .filter_map(servers::pss_bytes)
            .sum();
        peak = peak.max(own + forks);
        let info = c.cmd(&["INFO", "persistence"])?.text().unwrap_or_default();
        if resp::info_field(&info, "rdb_bgsave_in_progress").as_deref() == Some("0") {
            break;
        }
        if Instant::now() > deadline {
            bail!("{}: BGSAVE did not finish", kind.name());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    if let Reply::Error(e) = c.cmd(&["SAVE"])? {
        bail!("{}: SAVE answered {e}", kind.name());
    }
    let save = started.elapsed();
    drop(c);
    server.stop()?;
    let again = Server::start(&plan.cairn_bin, &spec)?;
    let restart = again.pong_after;
    let load = again.load_log().load;
    let restored = settled_rss(&again)?;
    let hwm = servers::hwm_bytes(again.pid()).unwrap_or(0);
    let mut c = again.conn()?;
    let info = c.cmd(&["DBSIZE"])?;
    if !matches!(info, Reply::Int(1)) {
        bail!("{}: {info:?} keys after the restart, not 1", kind.name());
    }
    drop(c);
    again.stop()?;
    eprintln!(
        "bench: memory: large {} x{elements} on {}: value PSS {value_pss}, BGSAVE peak {}, SAVE \
         {save:.2?}, restart {restart:.2?}, restored RSS {}, restore peak {}",
        what.name(),
        kind.name(),
        peak.saturating_sub(loaded),
        restored.saturating_sub(fresh_rss),
        hwm.saturating_sub(fresh_rss),
    );
    Ok(LargeRow {
        value_pss: value_pss as f64,
        cow: peak.saturating_sub(loaded) as f64,
        save,
        restart,
        load,
        restored_rss: restored.saturating_sub(fresh_rss) as f64,
        restore_peak: hwm.saturating_sub(fresh_rss) as f64,
    })
}

/// Runs the suite.
///
/// # Errors
/// A server failed or answered an error.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let mut table = Table::new(
        "Memory: RSS growth per key".into(),
        &[
            "value",
            "elements",
            "keys",
            "cairn B/key",
            "redis B/key",
            "cairn/redis",
            "target",
            "encodings (cairn / redis)",
        ],
    );
    let mut summary = Vec::new();
    let mut missed = 0;
    for case in cases(plan.quick) {
        let (c, ce) = measure(plan, Kind::Cairn, case)?;
        let (r, re) = measure(plan, Kind::Redis, case)?;
        let ratio = (r > 0.0).then(|| c / r);
        if ratio.is_none_or(|x| x > case.target) {
            missed += 1;
        }
        table.row(vec![
            case.name.into(),
            case.elements.to_string(),
            case.keys.to_string(),
            format!("{c:.0}"),
            format!("{r:.0}"),
            ratio.map_or("—".into(), fmt_ratio),
            target(ratio, case.target),
            format!("{ce} / {re}"),
        ]);
    }
    table.note(
        "RSS growth while loading over TCP, divided by the keys; each case on a fresh server. \
         Keys are 16 bytes (`key:` and 12 digits); elements 8 to 16 bytes. For strings, \
         \"after churn\": every other key deleted and as many new ones set (50 to 150 bytes), \
         the same number of live keys (fragmentation)."
            .into(),
    );
    summary.push(format!(
        "memory: {missed} of {} cases above their target",
        table.rows.len()
    ));
    let mut cow_table = Table::new(
        "Memory: one element written in a large value during BGSAVE; SAVE and restart".into(),
        &[
            "value",
            "elements",
            "server",
            "value PSS",
            "peak growth during BGSAVE",
            "share of the value",
            "SAVE",
            "restart to PONG (load logged)",
            "restore peak / restored RSS",
        ],
    );
    for what in Large::ALL {
        for kind in [Kind::Cairn, Kind::Redis] {
            let r = large(plan, kind, what)?;
            cow_table.row(vec![
                what.name().into(),
                what.elements(plan.quick).to_string(),
                kind.name().into(),
                super::fmt_bytes(r.value_pss),
                super::fmt_bytes(r.cow),
                format!("{:.1}%", 100.0 * r.cow / r.value_pss.max(1.0)),
                format!("{:.2} s", r.save.as_secs_f64()),
                format!(
                    "{:.2} s ({})",
                    r.restart.as_secs_f64(),
                    r.load
                        .map_or("—".into(), |d| format!("{:.2} s", d.as_secs_f64()))
                ),
                format!(
                    "{} / {} = {:.2}x",
                    super::fmt_bytes(r.restore_peak),
                    super::fmt_bytes(r.restored_rss),
                    r.restore_peak / r.restored_rss.max(1.0)
                ),
            ]);
        }
    }
    cow_table.note(
        "One key per value, elements 8 to 16 bytes (stream entries: three such fields). Peak of \
         the server's PSS plus its forks' PSS while a BGSAVE runs with one write made during it \
         (HSET of an existing field, SADD, ZADD, LSET in the middle of the list, XADD), over the \
         PSS after loading: what the write costs (cairn: the parts of the value copied for the \
         snapshot's view, and the snapshot's own buffers; Redis: pages the fork copies, plus the \
         child's own work). Then SAVE, timed from the command to its reply, and a restart from \
         that snapshot: spawn to the first PONG, with the load time the server logged. Restore \
         peak: the restarted process' VmHWM over a fresh server's RSS, beside the RSS the \
         restored value holds; 1.0x means the value was never held twice."
            .into(),
    );
    Ok(Outcome {
        tables: vec![table, cow_table],
        failures: Vec::new(),
        summary,
    })
}
