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
//! Then the copy-on-write cost of a large collection under a snapshot:
//! a hash of 1,000,000 fields (200,000 with `--quick`), BGSAVE, one HSET
//! while the snapshot runs, and the peak RSS growth over the hash's
//! resident size (Redis pays the fork's copied pages).

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

/// Peak RSS growth while one field of a large hash is written during a
/// BGSAVE, over the RSS the hash itself added.
fn cow(plan: &Plan, kind: Kind) -> Result<(f64, f64)> {
    let fields: u64 = if plan.quick { 200_000 } else { 1_000_000 };
    let tmp = tempfile::tempdir()?;
    let server = Server::start(
        &plan.cairn_bin,
        &Spec {
            kind,
            dir: tmp.path().to_path_buf(),
            persistence: true,
        },
    )?;
    let pss = |s: &Server| servers::pss_bytes(s.pid()).unwrap_or(0);
    let before = pss(&server);
    let mut c = server.conn()?;
    let batch = 1000;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    for start in (0..fields).step_by(batch) {
        let mut args = vec!["HSET".to_owned(), "big".to_owned()];
        for j in start..(start + batch as u64).min(fields) {
            args.push(format!("field:{j}"));
            args.push(element(&mut rng));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        c.cmd(&refs)?;
    }
    c.cmd(&["PING"])?;
    let loaded = pss(&server);
    let hash = loaded.saturating_sub(before);
    if let Reply::Error(e) = c.cmd(&["BGSAVE"])? {
        bail!("{}: BGSAVE answered {e}", kind.name());
    }
    c.cmd(&["HSET", "big", "field:1", "changed during the snapshot"])?;
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
    server.stop()?;
    Ok((hash as f64, peak.saturating_sub(loaded) as f64))
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
        "Memory: one field written in a large hash during BGSAVE".into(),
        &[
            "server",
            "hash PSS",
            "peak growth during BGSAVE",
            "share of the hash",
        ],
    );
    for kind in [Kind::Cairn, Kind::Redis] {
        let (hash, growth) = cow(plan, kind)?;
        cow_table.row(vec![
            kind.name().into(),
            super::fmt_bytes(hash),
            super::fmt_bytes(growth),
            format!("{:.0}%", 100.0 * growth / hash.max(1.0)),
        ]);
    }
    cow_table.note(
        "Peak of the server's PSS plus its forks' PSS while the snapshot runs, over the RSS after \
         loading: what the written field costs (cairn: the collection copied for the snapshot's \
         view; Redis: pages the fork copies, plus the child's own work)."
            .into(),
    );
    Ok(Outcome {
        tables: vec![table, cow_table],
        failures: Vec::new(),
        summary,
    })
}
