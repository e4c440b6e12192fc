//! Differential tests: cairn and a real Redis 7.0 side by side.
//!
//! Every command goes to both servers over raw RESP (see
//! `cairn_tests::wire`) and the two replies are compared as values: types,
//! bytes and double formatting exactly; replies Redis does not order
//! (SMEMBERS, HGETALL, KEYS, ...) as multisets; TTLs within a tolerance;
//! randomized replies (RANDOMKEY, SPOP, SRANDMEMBER, ...) by property.
//!
//! The randomized run draws commands over a small key space so they
//! collide (wrong types, missing and existing keys), half of them on RESP2
//! and half on RESP3 connections, and compares the whole database every
//! few hundred steps. It prints `seed=N`; `CAIRN_DIFF_SEED=N` replays a run
//! and `CAIRN_DIFF_STEPS=N` changes its length. Families cairn does not
//! implement yet (`COMMAND INFO name` is nil) are skipped with a printed
//! line; `CAIRN_DIFF_REQUIRE_ALL=1` makes a missing command a failure.
//!
//! Beside the randomized run: hand-picked edge cases and raw (inline,
//! malformed) requests, lazy and active expiry, blocking commands served
//! by another client, pub/sub in both protocols, and the command table.
//! `CAIRN_DIFF_SELFCHECK=1` puts a second Redis where cairn would be:
//! Redis against Redis must never differ, which keeps the generator and
//! the comparison honest (no reply compared exactly that depends on time
//! or chance).
//!
//! What is not compared byte for byte (server-specific output such as INFO
//! or OBJECT ENCODING) is listed in [`NOT_COMPARED`], and differences the
//! project has accepted in [`KNOWN_DIFFERENCES`]; both are documented in
//! docs/compatibility.md.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use cairn_tests::cairn::CairnServer;
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------
// Allowlists (documented in docs/compatibility.md)

/// Commands whose replies are server-specific and never compared byte for
/// byte: the randomized run does not generate them, and the fixed cases
/// only check that both servers answer with the same kind of reply (an
/// error on both or neither, a bulk string on both, ...).
const NOT_COMPARED: &[(&[&str], &str)] = &[
    (&["INFO"], "server-specific fields and values"),
    (
        &["INFO", "persistence"],
        "cairn reports its snapshots with Redis' field names",
    ),
    (
        &["CONFIG", "GET", "save"],
        "cairn exposes a subset of parameters",
    ),
    (
        &["OBJECT", "ENCODING", "nc"],
        "cairn's internal encodings are not Redis'",
    ),
    (&["OBJECT", "IDLETIME", "nc"], "depends on timing"),
    (&["MEMORY", "USAGE", "nc"], "allocator-specific"),
    (&["CLIENT", "LIST"], "connection ids, addresses, ages"),
    (&["CLIENT", "INFO"], "connection ids, addresses, ages"),
    (&["CLIENT", "ID"], "connection ids"),
    (&["TIME"], "clock values"),
    (&["LASTSAVE"], "clock values"),
    (&["HELLO", "3"], "server name, version and client id fields"),
    (&["DEBUG", "SLEEP", "0"], "Redis internals"),
];

/// Differences the project decided to accept: a mismatch whose command
/// starts with `command` and whose Redis reply contains `redis_reply` is
/// reported as known instead of failing the run. Empty until the
/// coordinator accepts one; every entry must have a section in
/// docs/compatibility.md.
const KNOWN_DIFFERENCES: &[KnownDifference] = &[];

/// One accepted difference.
struct KnownDifference {
    /// Upper-case command prefix, e.g. `"OBJECT ENCODING"`.
    command: &'static str,
    /// A substring of Redis' rendered reply that identifies the case.
    redis_reply: &'static str,
    /// The section of docs/compatibility.md that describes it.
    doc: &'static str,
}

fn known_difference(cmd: &[String], redis: &Reply) -> Option<&'static KnownDifference> {
    let line = cmd.join(" ").to_uppercase();
    let rendered = redis.to_string();
    KNOWN_DIFFERENCES
        .iter()
        .find(|k| line.starts_with(k.command) && rendered.contains(k.redis_reply))
}

// ---------------------------------------------------------------------------
// Configuration

const DEFAULT_STEPS: usize = 20_000;
/// The run stops early (and says so) past this budget, so a slow machine
/// cannot push CI over its limit.
const TIME_BUDGET: Duration = Duration::from_secs(40);
/// Full-database comparison every this many steps.
const STATE_CHECK_EVERY: usize = 250;
/// Every this many steps, home keys taken over by another type (RENAME,
/// SET, a store command) are deleted, so each family keeps finding its
/// own type: without it most of their commands end in WRONGTYPE.
const REHOME_EVERY: usize = 50;
/// TTL tolerance in seconds and milliseconds: the two servers receive the
/// same command a few milliseconds apart.
const TTL_TOLERANCE_S: i64 = 2;
const TTL_TOLERANCE_MS: i64 = 2000;
/// Mismatches printed in full before the rest are only counted.
const MAX_PRINTED: usize = 60;

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

macro_rules! v {
    ($($x:expr),* $(,)?) => { Vec::<String>::from([$(String::from($x)),*]) };
}

// ---------------------------------------------------------------------------
// Comparison modes and normalization

/// How a reply is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    /// Exactly, including order and RESP types.
    Exact,
    /// The top-level aggregate as a multiset (Redis does not order it).
    Unordered,
    /// Field/value pairs as a multiset: a RESP3 map or a flat RESP2 array.
    Pairs,
    /// A TTL in seconds (TTL, EXPIRETIME): non-negative values within a tolerance.
    TtlSecs,
    /// A TTL in milliseconds (PTTL, PEXPIRETIME).
    TtlMillis,
    /// A random sample: checked by property against the key's contents.
    Sample(SampleKind),
    /// SPOP: a random sample that also removes; cairn is resynchronised.
    Spop,
    /// RANDOMKEY: nil on both or an existing key on each.
    RandomKey,
    /// A full SCAN-family iteration, compared as a set.
    Scan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SampleKind {
    Set,
    Hash,
    Zset,
}

fn sort_pairs(items: &[Reply]) -> Option<Vec<Reply>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut pairs: Vec<(Reply, Reply)> = items
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    pairs.sort();
    Some(pairs.into_iter().flat_map(|(a, b)| [a, b]).collect())
}

/// Puts a reply in the canonical form its comparison mode allows.
fn normalize(reply: &Reply, cmp: Cmp) -> Reply {
    match (cmp, reply) {
        (Cmp::Unordered, Reply::Array(v)) => {
            let mut v = v.clone();
            v.sort();
            Reply::Array(v)
        }
        (Cmp::Unordered, Reply::Set(v)) => {
            let mut v = v.clone();
            v.sort();
            Reply::Set(v)
        }
        (Cmp::Pairs, Reply::Map(pairs)) => {
            let mut pairs = pairs.clone();
            pairs.sort();
            Reply::Map(pairs)
        }
        (Cmp::Pairs, Reply::Array(v)) => sort_pairs(v)
            .map(Reply::Array)
            .unwrap_or_else(|| reply.clone()),
        _ => reply.clone(),
    }
}

/// Compares two replies under `cmp` for the modes that need no server
/// access; `None` means equal.
fn plain_diff(redis: &Reply, cairn: &Reply, cmp: Cmp) -> Option<String> {
    match cmp {
        Cmp::TtlSecs | Cmp::TtlMillis => {
            let tol = if cmp == Cmp::TtlSecs {
                TTL_TOLERANCE_S
            } else {
                TTL_TOLERANCE_MS
            };
            match (redis, cairn) {
                (Reply::Integer(r), Reply::Integer(c)) if *r >= 0 && *c >= 0 => {
                    ((r - c).abs() > tol).then(|| format!("TTLs differ by more than {tol}"))
                }
                _ => (redis != cairn).then(|| "replies differ".to_owned()),
            }
        }
        _ => (normalize(redis, cmp) != normalize(cairn, cmp)).then(|| "replies differ".to_owned()),
    }
}

/// The structure of a reply without its leaf values, to compare samples.
fn shape(r: &Reply) -> String {
    match r {
        Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => {
            let kind = match r {
                Reply::Set(_) => "~",
                Reply::Push(_) => ">",
                _ => "*",
            };
            // Samples of one command have a uniform element shape.
            format!(
                "{kind}{}[{}]",
                v.len(),
                v.first().map(shape).unwrap_or_default()
            )
        }
        Reply::Map(p) => format!("%{}", p.len()),
        Reply::Bulk(_) => "$".into(),
        Reply::Double(_) => ",".into(),
        other => other.to_string(),
    }
}

fn leaf_text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Double(d) => Some(d.clone()),
        Reply::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flatten_leaves(r: &Reply, out: &mut Vec<String>) {
    match r {
        Reply::Array(v) | Reply::Set(v) => v.iter().for_each(|x| flatten_leaves(x, out)),
        other => out.extend(leaf_text(other)),
    }
}

// ---------------------------------------------------------------------------
// The generator

/// The command families, each detected separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Family {
    Strings,
    Keys,
    Hashes,
    Sets,
    SortedSets,
    Lists,
    Transactions,
    Errors,
    Bitmaps,
    Hll,
}

/// The run's key space: every family draws from all of it (so types
/// collide), but mostly from its own two keys, so values grow big enough
/// for ranges, pops and set operations to return something.
const KEYS: &[&str] = &[
    "k0", "k1", "h0", "h1", "s0", "s1", "z0", "z1", "l0", "l1", "b0", "b1", "p0", "p1",
];

fn home(f: Family) -> &'static [&'static str] {
    match f {
        Family::Strings => &["k0", "k1"],
        Family::Hashes => &["h0", "h1"],
        Family::Sets => &["s0", "s1"],
        Family::SortedSets => &["z0", "z1"],
        Family::Lists => &["l0", "l1"],
        Family::Bitmaps => &["b0", "b1"],
        Family::Hll => &["p0", "p1"],
        Family::Keys | Family::Transactions | Family::Errors => KEYS,
    }
}
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "7",
    "42",
    "-100",
    "3.5",
    "-0.25",
    "1e3",
    "abc",
    "hello world",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "\u{0}bin\u{1}",
    " 12",
    "12 ",
    "0x10",
    "+5",
    "007",
    "inf",
    "é",
    "10.50",
];
const INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "5",
    "-7",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "abc",
    "1.5",
    "",
    " 1",
];
const FLOATS: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.1",
    "1.5",
    "-2.25",
    "3e2",
    "1e-5",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "abc",
    "5.0e3",
    "0.3",
    "10",
    "17",
    "1.7976931348623157e308",
    "-0",
    "2.5",
];
const FIELDS: &[&str] = &["f0", "f1", "f2", "f3", "1", "10"];
const MEMBERS: &[&str] = &["m0", "m1", "m2", "m3", "a", "b", "1", "2", "10", "-3"];
const INDEXES: &[&str] = &["-100", "-3", "-2", "-1", "0", "1", "2", "3", "100", "x"];
const COUNTS: &[&str] = &["-5", "-1", "0", "1", "2", "3", "10", "x"];
const PATTERNS: &[&str] = &[
    "*", "k*", "k[0-2]", "k?", "*3", "k[^1]", "nomatch*", "k\\1", "[a-z]*", "k[1-",
];
const SCORE_BOUNDS: &[&str] = &[
    "-inf", "+inf", "inf", "0", "(0", "1", "(1", "2.5", "(2.5", "10", "abc", "(", "-1",
];
const LEX_BOUNDS: &[&str] = &["-", "+", "[m1", "(m1", "[a", "(b", "[", "m1", "[10", "(2"];

/// The random source plus the clock values the run's TTLs are built from.
struct G {
    rng: StdRng,
    step: i64,
    t0_ms: i64,
    /// The keys the current command's family prefers.
    home: &'static [&'static str],
}

impl G {
    fn pick(&mut self, xs: &[&str]) -> String {
        xs.choose(&mut self.rng)
            .copied()
            .unwrap_or_default()
            .to_owned()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }
    fn n(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.random_range(lo..=hi)
    }
    fn key(&mut self) -> String {
        if self.chance(0.9) {
            let home = self.home;
            self.pick(home)
        } else {
            self.pick(KEYS)
        }
    }
    fn keys(&mut self, lo: usize, hi: usize) -> Vec<String> {
        let n = self.n(lo, hi);
        (0..n).map(|_| self.key()).collect()
    }
    fn val(&mut self) -> String {
        self.pick(VALUES)
    }
    fn int(&mut self) -> String {
        self.pick(INTS)
    }
    fn float(&mut self) -> String {
        self.pick(FLOATS)
    }
    fn field(&mut self) -> String {
        self.pick(FIELDS)
    }
    fn member(&mut self) -> String {
        self.pick(MEMBERS)
    }
    fn idx(&mut self) -> String {
        self.pick(INDEXES)
    }
    fn count(&mut self) -> String {
        self.pick(COUNTS)
    }
    /// A relative TTL in seconds. Valid ones are unique per step and far
    /// from the absolute ones, so GT/LT/NX/XX decisions never depend on
    /// which millisecond each server received the command in.
    fn secs(&mut self) -> String {
        match self.n(0, 9) {
            0 => self.pick(&["0", "-1", "abc", "9223372036854775807", "1.5"]),
            1..=5 => (100_000 + self.step).to_string(),
            _ => (1_000_000 + self.step).to_string(),
        }
    }
    fn millis(&mut self) -> String {
        match self.n(0, 9) {
            0 => self.pick(&["0", "-5", "x", "9223372036854775807"]),
            1..=5 => ((100_000 + self.step) * 1000).to_string(),
            _ => ((1_000_000 + self.step) * 1000).to_string(),
        }
    }
    fn unix_secs(&mut self) -> String {
        let base = self.t0_ms / 1000;
        match self.n(0, 9) {
            0 => self.pick(&["1", "-3", "x"]),
            1..=5 => (base + 200_000).to_string(),
            _ => (base + 2_000_000).to_string(),
        }
    }
    fn unix_millis(&mut self) -> String {
        match self.n(0, 9) {
            0 => self.pick(&["1", "-3", "x"]),
            1..=5 => (self.t0_ms + 200_000_000).to_string(),
            _ => (self.t0_ms + 2_000_000_000).to_string(),
        }
    }
    fn pattern(&mut self) -> String {
        self.pick(PATTERNS)
    }
    fn score_bound(&mut self) -> String {
        self.pick(SCORE_BOUNDS)
    }
    fn lex_bound(&mut self) -> String {
        self.pick(LEX_BOUNDS)
    }
    /// A bit offset: mostly within the first few hundred bits, sometimes
    /// an invalid or out-of-range one. `write` leaves out offsets near the
    /// 512 MB limit that would make both servers allocate it.
    fn bit_offset(&mut self, write: bool) -> String {
        match self.n(0, 19) {
            0 => self.pick(&["-1", "x", "4294967296", "9223372036854775807", "1.5", ""]),
            1 if !write => self.pick(&["4294967295", "4294967288", "536870911"]),
            2..=4 => self.n(0, 16).to_string(),
            _ => self.n(0, 400).to_string(),
        }
    }
    /// A BITCOUNT/BITPOS index: bytes or bits, negative from the end.
    fn bit_idx(&mut self) -> String {
        if self.chance(0.5) {
            self.pick(&[
                "-1000", "-17", "-9", "-8", "-7", "-1", "0", "1", "7", "8", "9", "15", "16",
                "1000", "x",
            ])
        } else {
            let n = self.n(0, 420) as i64 - 100;
            n.to_string()
        }
    }
    /// A BITFIELD type, now and then an invalid one.
    fn bitfield_type(&mut self) -> String {
        match self.n(0, 20) {
            0 => self.pick(&["u64", "i65", "i0", "u0", "I8", "x8", "u", "i-1", "u08"]),
            1..=3 => self.pick(&["i64", "u63", "i63", "i1", "u1"]),
            _ => {
                let signed = self.chance(0.5);
                let bits = self.n(1, if signed { 64 } else { 63 });
                format!("{}{bits}", if signed { 'i' } else { 'u' })
            }
        }
    }
    /// A BITFIELD offset: plain, `#n` (in units of the type), or invalid.
    fn bitfield_offset(&mut self) -> String {
        match self.n(0, 12) {
            0 => self.pick(&["-1", "#-1", "x", "#x", "4294967296", "#9223372036854775807"]),
            1..=4 => format!("#{}", self.n(0, 12)),
            _ => self.n(0, 300).to_string(),
        }
    }
    /// A BITFIELD value or increment.
    fn bitfield_value(&mut self) -> String {
        match self.n(0, 6) {
            0 => self.pick(&[
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775808",
                "x",
                "1.5",
            ]),
            1 => self.int(),
            _ => {
                let bits = self.n(1, 64) as u32;
                let span = 1i128 << bits;
                let v = self.rng.random_range(-span..span);
                v.clamp(i128::from(i64::MIN), i128::from(i64::MAX))
                    .to_string()
            }
        }
    }
    /// An HLL element from a space large enough to fill many registers.
    fn hll_element(&mut self) -> String {
        if self.chance(0.1) {
            self.val()
        } else {
            format!("e{}", self.n(0, 200_000))
        }
    }
    /// Field/value or score/member pairs, sometimes one short (an arity error).
    fn pairs(&mut self, a: fn(&mut G) -> String, b: fn(&mut G) -> String) -> Vec<String> {
        let n = self.n(1, 3);
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(a(self));
            out.push(b(self));
        }
        if self.chance(0.05) {
            out.pop();
        }
        out
    }
}

/// One command template.
struct Tpl {
    /// The command name as `COMMAND INFO` knows it.
    name: &'static str,
    family: Family,
    cmp: Cmp,
    /// Whether it may appear inside MULTI (deterministic replies only).
    in_multi: bool,
    generate: fn(&mut G) -> Vec<String>,
}

fn tpl(name: &'static str, family: Family, cmp: Cmp, generate: fn(&mut G) -> Vec<String>) -> Tpl {
    let in_multi = matches!(cmp, Cmp::Exact | Cmp::Unordered | Cmp::Pairs);
    Tpl {
        name,
        family,
        cmp,
        in_multi,
        generate,
    }
}

fn with(mut base: Vec<String>, more: Vec<String>) -> Vec<String> {
    base.extend(more);
    base
}

fn set_options(g: &mut G) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..g.n(0, 3) {
        match g.n(0, 8) {
            0 => out.push("NX".into()),
            1 => out.push("XX".into()),
            2 => out.push("GET".into()),
            3 => out.extend(v!["EX", g.secs()]),
            4 => out.extend(v!["PX", g.millis()]),
            5 => out.extend(v!["EXAT", g.unix_secs()]),
            6 => out.extend(v!["PXAT", g.unix_millis()]),
            7 => out.push("KEEPTTL".into()),
            _ => out.push(g.pick(&["ex", "BOGUS", "EX"])),
        }
    }
    out
}

fn expire_option(g: &mut G) -> Vec<String> {
    if g.chance(0.5) {
        Vec::new()
    } else {
        v![g.pick(&["NX", "XX", "GT", "LT", "nx", "gt", "BAD"])]
    }
}

fn zrange_options(g: &mut G) -> Vec<String> {
    let mut out = Vec::new();
    if g.chance(0.2) {
        out.push("REV".into());
    }
    if g.chance(0.3) {
        out.extend(v!["LIMIT", g.idx(), g.count()]);
    }
    if g.chance(0.5) {
        out.push("WITHSCORES".into());
    }
    out
}

fn store_options(g: &mut G, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    if g.chance(0.3) {
        out.push("WEIGHTS".into());
        for _ in 0..n {
            out.push(g.pick(&["1", "2", "0", "-1", "0.5", "inf", "x"]));
        }
    }
    if g.chance(0.3) {
        out.extend(v!["AGGREGATE", g.pick(&["SUM", "MIN", "MAX", "avg"])]);
    }
    out
}

fn numkeys(g: &mut G) -> (String, Vec<String>) {
    let keys = g.keys(1, 3);
    let n = if g.chance(0.05) {
        g.pick(&["0", "-1", "5", "x"])
    } else {
        keys.len().to_string()
    };
    (n, keys)
}

fn scan_options(g: &mut G, with_type: bool) -> Vec<String> {
    let mut out = Vec::new();
    if g.chance(0.5) {
        out.extend(v![
            "MATCH",
            g.pick(&["*", "k*", "m*", "f?", "k[0-3]", "*1*", "1*"])
        ]);
    }
    if g.chance(0.5) {
        out.extend(v!["COUNT", g.pick(&["1", "2", "10", "1000", "0", "x"])]);
    }
    if with_type && g.chance(0.3) {
        out.extend(v![
            "TYPE",
            g.pick(&["string", "hash", "set", "zset", "list", "nosuch"])
        ]);
    }
    out
}

#[allow(clippy::too_many_lines)]
/// BITFIELD's operations; BITFIELD_RO (`ro`) mostly GETs.
fn bitfield_ops(g: &mut G, ro: bool) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..g.n(0, 4) {
        match g.n(0, 9) {
            0 => out.extend(v![
                "OVERFLOW",
                g.pick(&["WRAP", "SAT", "FAIL", "sat", "fail", "BOGUS"])
            ]),
            1 | 2 if !ro || g.chance(0.1) => {
                out.extend(v![
                    g.pick(&["SET", "set"]),
                    g.bitfield_type(),
                    g.bitfield_offset(),
                    g.bitfield_value()
                ]);
            }
            3 | 4 if !ro || g.chance(0.1) => {
                out.extend(v![
                    g.pick(&["INCRBY", "incrby"]),
                    g.bitfield_type(),
                    g.bitfield_offset(),
                    g.bitfield_value()
                ]);
            }
            5 if g.chance(0.2) => out.push(g.pick(&["GET", "BOGUS", "SET"])),
            _ => out.extend(v![
                g.pick(&["GET", "get"]),
                g.bitfield_type(),
                g.bitfield_offset()
            ]),
        }
    }
    out
}

const GEO_LONS: &[&str] = &[
    "0",
    "13.361389",
    "-180",
    "180",
    "180.0001",
    "-73.98",
    "abc",
    "1e3",
    "-0",
    "179.99",
];
const GEO_LATS: &[&str] = &[
    "0",
    "38.115556",
    "85.05112878",
    "-85.05112878",
    "85.06",
    "40.75",
    "x",
    "-0",
    "51.5",
];
const GEO_RADII: &[&str] = &["0", "1", "150", "5000", "20000", "-1", "abc", "1e5"];
const GEO_UNITS: &[&str] = &["m", "km", "ft", "mi", "KM", "parsec"];

/// Reply, order and COUNT options of a geo search.
fn geo_search_options(g: &mut G, with_reply: bool) -> Vec<String> {
    let mut c = Vec::new();
    if with_reply {
        for w in ["WITHDIST", "WITHHASH", "WITHCOORD"] {
            if g.chance(0.3) {
                c.push(w.to_owned());
            }
        }
    }
    if g.chance(0.4) {
        c.push(g.pick(&["ASC", "DESC"]));
    }
    if g.chance(0.3) {
        c.extend(v!["COUNT", g.pick(&["1", "3", "0", "-2", "x"])]);
        if g.chance(0.3) {
            c.push("ANY".to_owned());
        }
    }
    c
}

fn templates() -> Vec<Tpl> {
    use Cmp::{Exact, Pairs, TtlMillis, TtlSecs, Unordered};
    use Family::{Bitmaps, Hashes, Hll, Keys, Lists, Sets, SortedSets, Strings};
    vec![
        // ---- bitmaps
        tpl("setbit", Bitmaps, Exact, |g| {
            let bit = g.pick(&["0", "1", "1", "0", "1", "2", "-1", "x"]);
            v!["SETBIT", g.key(), g.bit_offset(true), bit]
        }),
        tpl("getbit", Bitmaps, Exact, |g| {
            v!["GETBIT", g.key(), g.bit_offset(false)]
        }),
        tpl("bitcount", Bitmaps, Exact, |g| {
            let mut c = v!["BITCOUNT", g.key()];
            match g.n(0, 5) {
                0 => {}
                1 => c.extend(v![g.bit_idx(), g.bit_idx()]),
                2 | 3 => c.extend(v![
                    g.bit_idx(),
                    g.bit_idx(),
                    g.pick(&["BIT", "BYTE", "bit", "byte", "BITS"])
                ]),
                4 => c.push(g.bit_idx()),
                _ => c.extend(v![g.bit_idx(), g.bit_idx(), "BIT", "x"]),
            }
            c
        }),
        tpl("bitpos", Bitmaps, Exact, |g| {
            let bit = g.pick(&["0", "1", "0", "1", "2", "-1", "x"]);
            let mut c = v!["BITPOS", g.key(), bit];
            match g.n(0, 5) {
                0 => {}
                1 => c.push(g.bit_idx()),
                2 => c.extend(v![g.bit_idx(), g.bit_idx()]),
                3 | 4 => c.extend(v![
                    g.bit_idx(),
                    g.bit_idx(),
                    g.pick(&["BIT", "BYTE", "bit", "BYTES"])
                ]),
                _ => c.extend(v![g.bit_idx(), g.bit_idx(), "BYTE", "x"]),
            }
            c
        }),
        tpl("bitop", Bitmaps, Exact, |g| {
            let op = g.pick(&["AND", "OR", "XOR", "NOT", "and", "xor", "NAND"]);
            let n = if op == "NOT" && g.chance(0.8) {
                1
            } else {
                g.n(1, 3)
            };
            let dest = g.key();
            with(v!["BITOP", op, dest], g.keys(n, n))
        }),
        tpl("bitfield", Bitmaps, Exact, |g| {
            with(v!["BITFIELD", g.key()], bitfield_ops(g, false))
        }),
        tpl("bitfield_ro", Bitmaps, Exact, |g| {
            with(v!["BITFIELD_RO", g.key()], bitfield_ops(g, true))
        }),
        // ---- HyperLogLog
        tpl("pfadd", Hll, Exact, |g| {
            let n = if g.chance(0.1) { 300 } else { g.n(0, 5) };
            let elements: Vec<String> = (0..n).map(|_| g.hll_element()).collect();
            with(v!["PFADD", g.key()], elements)
        }),
        tpl("pfcount", Hll, Exact, |g| with(v!["PFCOUNT"], g.keys(1, 3))),
        tpl("pfmerge", Hll, Exact, |g| {
            with(v!["PFMERGE", g.key()], g.keys(0, 3))
        }),
        tpl("pfdebug", Hll, Exact, |g| {
            let sub = g.pick(&["ENCODING", "DECODE", "TODENSE", "GETREG", "decode", "BOGUS"]);
            let mut c = v!["PFDEBUG", sub, g.key()];
            if g.chance(0.05) {
                c.push("extra".into());
            }
            c
        }),
        // ---- strings
        tpl("get", Strings, Exact, |g| v!["GET", g.key()]),
        tpl("set", Strings, Exact, |g| {
            with(v!["SET", g.key(), g.val()], set_options(g))
        }),
        tpl("setnx", Strings, Exact, |g| v!["SETNX", g.key(), g.val()]),
        tpl("setex", Strings, Exact, |g| {
            v!["SETEX", g.key(), g.secs(), g.val()]
        }),
        tpl("psetex", Strings, Exact, |g| {
            v!["PSETEX", g.key(), g.millis(), g.val()]
        }),
        tpl("getset", Strings, Exact, |g| v!["GETSET", g.key(), g.val()]),
        tpl("getdel", Strings, Exact, |g| v!["GETDEL", g.key()]),
        tpl("getex", Strings, Exact, |g| {
            let mut c = v!["GETEX", g.key()];
            match g.n(0, 6) {
                0 => c.extend(v!["EX", g.secs()]),
                1 => c.extend(v!["PX", g.millis()]),
                2 => c.extend(v!["EXAT", g.unix_secs()]),
                3 => c.extend(v!["PXAT", g.unix_millis()]),
                4 => c.push("PERSIST".into()),
                5 => c.push(g.pick(&["EX", "KEEPTTL", "BOGUS"])),
                _ => {}
            }
            c
        }),
        tpl("mget", Strings, Exact, |g| with(v!["MGET"], g.keys(1, 4))),
        tpl("mset", Strings, Exact, |g| {
            with(v!["MSET"], g.pairs(G::key, G::val))
        }),
        tpl("msetnx", Strings, Exact, |g| {
            with(v!["MSETNX"], g.pairs(G::key, G::val))
        }),
        tpl("incr", Strings, Exact, |g| v!["INCR", g.key()]),
        tpl("decr", Strings, Exact, |g| v!["DECR", g.key()]),
        tpl("incrby", Strings, Exact, |g| v!["INCRBY", g.key(), g.int()]),
        tpl("decrby", Strings, Exact, |g| v!["DECRBY", g.key(), g.int()]),
        tpl("incrbyfloat", Strings, Exact, |g| {
            v!["INCRBYFLOAT", g.key(), g.float()]
        }),
        tpl("append", Strings, Exact, |g| v!["APPEND", g.key(), g.val()]),
        tpl("strlen", Strings, Exact, |g| v!["STRLEN", g.key()]),
        tpl("getrange", Strings, Exact, |g| {
            v!["GETRANGE", g.key(), g.idx(), g.idx()]
        }),
        tpl("substr", Strings, Exact, |g| {
            v!["SUBSTR", g.key(), g.idx(), g.idx()]
        }),
        tpl("setrange", Strings, Exact, |g| {
            let off = g.pick(&["0", "1", "3", "10", "-1", "x", "536870912"]);
            v!["SETRANGE", g.key(), off, g.val()]
        }),
        tpl("lcs", Strings, Exact, |g| {
            let mut c = v!["LCS", g.key(), g.key()];
            match g.n(0, 4) {
                0 => c.push("LEN".into()),
                1 => c.push("IDX".into()),
                2 => c.extend(v!["IDX", "MINMATCHLEN", g.pick(&["0", "1", "2", "x"])]),
                3 => c.extend(v!["IDX", "WITHMATCHLEN"]),
                _ => {}
            }
            c
        }),
        // ---- keys
        tpl("del", Keys, Exact, |g| with(v!["DEL"], g.keys(1, 3))),
        tpl("unlink", Keys, Exact, |g| with(v!["UNLINK"], g.keys(1, 3))),
        tpl("exists", Keys, Exact, |g| with(v!["EXISTS"], g.keys(1, 4))),
        tpl("touch", Keys, Exact, |g| with(v!["TOUCH"], g.keys(1, 3))),
        tpl("expire", Keys, Exact, |g| {
            with(v!["EXPIRE", g.key(), g.secs()], expire_option(g))
        }),
        tpl("pexpire", Keys, Exact, |g| {
            with(v!["PEXPIRE", g.key(), g.millis()], expire_option(g))
        }),
        tpl("expireat", Keys, Exact, |g| {
            with(v!["EXPIREAT", g.key(), g.unix_secs()], expire_option(g))
        }),
        tpl("pexpireat", Keys, Exact, |g| {
            with(v!["PEXPIREAT", g.key(), g.unix_millis()], expire_option(g))
        }),
        tpl("ttl", Keys, TtlSecs, |g| v!["TTL", g.key()]),
        tpl("pttl", Keys, TtlMillis, |g| v!["PTTL", g.key()]),
        tpl("expiretime", Keys, TtlSecs, |g| v!["EXPIRETIME", g.key()]),
        tpl("pexpiretime", Keys, TtlMillis, |g| {
            v!["PEXPIRETIME", g.key()]
        }),
        tpl("persist", Keys, Exact, |g| v!["PERSIST", g.key()]),
        tpl("type", Keys, Exact, |g| v!["TYPE", g.key()]),
        tpl("rename", Keys, Exact, |g| v!["RENAME", g.key(), g.key()]),
        tpl("renamenx", Keys, Exact, |g| {
            v!["RENAMENX", g.key(), g.key()]
        }),
        tpl("copy", Keys, Exact, |g| {
            let mut c = v!["COPY", g.key(), g.key()];
            if g.chance(0.3) {
                c.push("REPLACE".into());
            }
            if g.chance(0.1) {
                c.extend(v!["DB", g.pick(&["0", "1", "1", "x", "-1", "99"])]);
            }
            c
        }),
        tpl("move", Keys, Exact, |g| {
            v!["MOVE", g.key(), g.pick(&["1", "1", "0", "99", "x"])]
        }),
        tpl("swapdb", Keys, Exact, |g| match g.n(0, 3) {
            0 => v!["SWAPDB", "1", "0"],
            1 => v!["SWAPDB", "0", g.pick(&["0", "16", "x", "-1"])],
            _ => v!["SWAPDB", "0", "1"],
        }),
        tpl("keys", Keys, Unordered, |g| v!["KEYS", g.pattern()]),
        tpl("dbsize", Keys, Exact, |_| v!["DBSIZE"]),
        tpl("randomkey", Keys, Cmp::RandomKey, |_| v!["RANDOMKEY"]),
        tpl("scan", Keys, Cmp::Scan, |g| {
            with(v!["SCAN", "0"], scan_options(g, true))
        }),
        // ---- hashes
        tpl("hset", Hashes, Exact, |g| {
            with(v!["HSET", g.key()], g.pairs(G::field, G::val))
        }),
        tpl("hmset", Hashes, Exact, |g| {
            with(v!["HMSET", g.key()], g.pairs(G::field, G::val))
        }),
        tpl("hsetnx", Hashes, Exact, |g| {
            v!["HSETNX", g.key(), g.field(), g.val()]
        }),
        tpl("hget", Hashes, Exact, |g| v!["HGET", g.key(), g.field()]),
        tpl("hmget", Hashes, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["HMGET", g.key()];
            c.extend((0..n).map(|_| g.field()));
            c
        }),
        tpl("hdel", Hashes, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["HDEL", g.key()];
            c.extend((0..n).map(|_| g.field()));
            c
        }),
        tpl("hlen", Hashes, Exact, |g| v!["HLEN", g.key()]),
        tpl("hstrlen", Hashes, Exact, |g| {
            v!["HSTRLEN", g.key(), g.field()]
        }),
        tpl("hexists", Hashes, Exact, |g| {
            v!["HEXISTS", g.key(), g.field()]
        }),
        tpl("hkeys", Hashes, Unordered, |g| v!["HKEYS", g.key()]),
        tpl("hvals", Hashes, Unordered, |g| v!["HVALS", g.key()]),
        tpl("hgetall", Hashes, Pairs, |g| v!["HGETALL", g.key()]),
        tpl("hincrby", Hashes, Exact, |g| {
            v!["HINCRBY", g.key(), g.field(), g.int()]
        }),
        tpl("hincrbyfloat", Hashes, Exact, |g| {
            v!["HINCRBYFLOAT", g.key(), g.field(), g.float()]
        }),
        tpl("hrandfield", Hashes, Cmp::Sample(SampleKind::Hash), |g| {
            let mut c = v!["HRANDFIELD", g.key()];
            if g.chance(0.7) {
                c.push(g.count());
                if g.chance(0.5) {
                    c.push("WITHVALUES".into());
                }
            }
            c
        }),
        tpl("hscan", Hashes, Cmp::Scan, |g| {
            with(v!["HSCAN", g.key(), "0"], scan_options(g, false))
        }),
        // ---- sets
        tpl("sadd", Sets, Exact, |g| {
            let n = g.n(1, 4);
            let mut c = v!["SADD", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        tpl("srem", Sets, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["SREM", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        tpl("smembers", Sets, Unordered, |g| v!["SMEMBERS", g.key()]),
        tpl("sismember", Sets, Exact, |g| {
            v!["SISMEMBER", g.key(), g.member()]
        }),
        tpl("smismember", Sets, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["SMISMEMBER", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        tpl("scard", Sets, Exact, |g| v!["SCARD", g.key()]),
        tpl("spop", Sets, Cmp::Spop, |g| {
            let mut c = v!["SPOP", g.key()];
            if g.chance(0.6) {
                c.push(g.pick(&["0", "1", "2", "3", "10", "-1", "x"]));
            }
            c
        }),
        tpl("srandmember", Sets, Cmp::Sample(SampleKind::Set), |g| {
            let mut c = v!["SRANDMEMBER", g.key()];
            if g.chance(0.7) {
                c.push(g.count());
            }
            c
        }),
        tpl("smove", Sets, Exact, |g| {
            v!["SMOVE", g.key(), g.key(), g.member()]
        }),
        tpl("sinter", Sets, Unordered, |g| {
            with(v!["SINTER"], g.keys(1, 3))
        }),
        tpl("sunion", Sets, Unordered, |g| {
            with(v!["SUNION"], g.keys(1, 3))
        }),
        tpl("sdiff", Sets, Unordered, |g| {
            with(v!["SDIFF"], g.keys(1, 3))
        }),
        tpl("sinterstore", Sets, Exact, |g| {
            with(v!["SINTERSTORE", g.key()], g.keys(1, 3))
        }),
        tpl("sunionstore", Sets, Exact, |g| {
            with(v!["SUNIONSTORE", g.key()], g.keys(1, 3))
        }),
        tpl("sdiffstore", Sets, Exact, |g| {
            with(v!["SDIFFSTORE", g.key()], g.keys(1, 3))
        }),
        tpl("sintercard", Sets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let mut c = with(v!["SINTERCARD", n], keys);
            if g.chance(0.3) {
                c.extend(v!["LIMIT", g.pick(&["0", "1", "2", "-1", "x"])]);
            }
            c
        }),
        tpl("sscan", Sets, Cmp::Scan, |g| {
            with(v!["SSCAN", g.key(), "0"], scan_options(g, false))
        }),
        // ---- sorted sets
        tpl("zadd", SortedSets, Exact, |g| {
            let mut c = v!["ZADD", g.key()];
            for opt in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                if g.chance(0.12) {
                    c.push(opt.into());
                }
            }
            let incr = c.iter().any(|a| a == "INCR");
            if incr && g.chance(0.8) {
                c.extend(v![g.float(), g.member()]);
            } else {
                c.extend(g.pairs(G::float, G::member));
            }
            c
        }),
        tpl("zincrby", SortedSets, Exact, |g| {
            v!["ZINCRBY", g.key(), g.float(), g.member()]
        }),
        tpl("zscore", SortedSets, Exact, |g| {
            v!["ZSCORE", g.key(), g.member()]
        }),
        tpl("zmscore", SortedSets, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["ZMSCORE", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        // Geo commands on the sorted sets: GEOADD adds geohash scores
        // beside arbitrary ones, which the reads then decode.
        tpl("geoadd", SortedSets, Exact, |g| {
            let mut c = v!["GEOADD", g.key()];
            for opt in ["NX", "XX", "CH"] {
                if g.chance(0.15) {
                    c.push(opt.to_owned());
                }
            }
            for _ in 0..g.n(1, 3) {
                c.extend(v![g.pick(GEO_LONS), g.pick(GEO_LATS), g.member()]);
            }
            c
        }),
        tpl("geopos", SortedSets, Exact, |g| {
            v!["GEOPOS", g.key(), g.member(), g.member()]
        }),
        tpl("geohash", SortedSets, Exact, |g| {
            v!["GEOHASH", g.key(), g.member(), g.member()]
        }),
        tpl("geodist", SortedSets, Exact, |g| {
            let mut c = v!["GEODIST", g.key(), g.member(), g.member()];
            if g.chance(0.6) {
                c.push(g.pick(GEO_UNITS));
            }
            c
        }),
        tpl("geosearch", SortedSets, Exact, |g| {
            let mut c = v!["GEOSEARCH", g.key()];
            if g.chance(0.5) {
                c.extend(v!["FROMMEMBER", g.member()]);
            } else {
                c.extend(v!["FROMLONLAT", g.pick(GEO_LONS), g.pick(GEO_LATS)]);
            }
            if g.chance(0.5) {
                c.extend(v!["BYRADIUS", g.pick(GEO_RADII), g.pick(GEO_UNITS)]);
            } else {
                c.extend(v![
                    "BYBOX",
                    g.pick(GEO_RADII),
                    g.pick(GEO_RADII),
                    g.pick(GEO_UNITS)
                ]);
            }
            with(c, geo_search_options(g, true))
        }),
        tpl("geosearchstore", SortedSets, Exact, |g| {
            let mut c = v!["GEOSEARCHSTORE", g.key(), g.key()];
            c.extend(v!["FROMLONLAT", g.pick(GEO_LONS), g.pick(GEO_LATS)]);
            c.extend(v!["BYRADIUS", g.pick(GEO_RADII), g.pick(GEO_UNITS)]);
            if g.chance(0.5) {
                c.push("STOREDIST".to_owned());
            }
            with(c, geo_search_options(g, false))
        }),
        tpl("georadius", SortedSets, Exact, |g| {
            let mut c = if g.chance(0.5) {
                v![
                    "GEORADIUS",
                    g.key(),
                    g.pick(GEO_LONS),
                    g.pick(GEO_LATS),
                    g.pick(GEO_RADII),
                    g.pick(GEO_UNITS)
                ]
            } else {
                v![
                    "GEORADIUSBYMEMBER",
                    g.key(),
                    g.member(),
                    g.pick(GEO_RADII),
                    g.pick(GEO_UNITS)
                ]
            };
            let store = g.chance(0.3);
            c = with(c, geo_search_options(g, !store));
            if store {
                c.extend(v![g.pick(&["STORE", "STOREDIST"]), g.key()]);
            }
            c
        }),
        tpl("zcard", SortedSets, Exact, |g| v!["ZCARD", g.key()]),
        tpl("zcount", SortedSets, Exact, |g| {
            v!["ZCOUNT", g.key(), g.score_bound(), g.score_bound()]
        }),
        tpl("zlexcount", SortedSets, Exact, |g| {
            v!["ZLEXCOUNT", g.key(), g.lex_bound(), g.lex_bound()]
        }),
        tpl("zrange", SortedSets, Exact, |g| match g.n(0, 2) {
            0 => with(v!["ZRANGE", g.key(), g.idx(), g.idx()], zrange_options(g)),
            1 => with(
                v![
                    "ZRANGE",
                    g.key(),
                    g.score_bound(),
                    g.score_bound(),
                    "BYSCORE"
                ],
                zrange_options(g),
            ),
            _ => with(
                v!["ZRANGE", g.key(), g.lex_bound(), g.lex_bound(), "BYLEX"],
                zrange_options(g),
            ),
        }),
        tpl("zrangestore", SortedSets, Exact, |g| match g.n(0, 1) {
            0 => v!["ZRANGESTORE", g.key(), g.key(), g.idx(), g.idx()],
            _ => v![
                "ZRANGESTORE",
                g.key(),
                g.key(),
                g.score_bound(),
                g.score_bound(),
                "BYSCORE"
            ],
        }),
        tpl("zrevrange", SortedSets, Exact, |g| {
            let mut c = v!["ZREVRANGE", g.key(), g.idx(), g.idx()];
            if g.chance(0.5) {
                c.push("WITHSCORES".into());
            }
            c
        }),
        tpl("zrangebyscore", SortedSets, Exact, |g| {
            let mut c = v!["ZRANGEBYSCORE", g.key(), g.score_bound(), g.score_bound()];
            if g.chance(0.5) {
                c.push("WITHSCORES".into());
            }
            if g.chance(0.3) {
                c.extend(v!["LIMIT", g.idx(), g.count()]);
            }
            c
        }),
        tpl("zrevrangebyscore", SortedSets, Exact, |g| {
            let mut c = v![
                "ZREVRANGEBYSCORE",
                g.key(),
                g.score_bound(),
                g.score_bound()
            ];
            if g.chance(0.5) {
                c.push("WITHSCORES".into());
            }
            c
        }),
        tpl("zrangebylex", SortedSets, Exact, |g| {
            let mut c = v!["ZRANGEBYLEX", g.key(), g.lex_bound(), g.lex_bound()];
            if g.chance(0.3) {
                c.extend(v!["LIMIT", g.idx(), g.count()]);
            }
            c
        }),
        tpl("zrevrangebylex", SortedSets, Exact, |g| {
            v!["ZREVRANGEBYLEX", g.key(), g.lex_bound(), g.lex_bound()]
        }),
        tpl("zrank", SortedSets, Exact, |g| {
            v!["ZRANK", g.key(), g.member()]
        }),
        tpl("zrevrank", SortedSets, Exact, |g| {
            v!["ZREVRANK", g.key(), g.member()]
        }),
        tpl("zrem", SortedSets, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["ZREM", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        tpl("zremrangebyrank", SortedSets, Exact, |g| {
            v!["ZREMRANGEBYRANK", g.key(), g.idx(), g.idx()]
        }),
        tpl("zremrangebyscore", SortedSets, Exact, |g| {
            v![
                "ZREMRANGEBYSCORE",
                g.key(),
                g.score_bound(),
                g.score_bound()
            ]
        }),
        tpl("zremrangebylex", SortedSets, Exact, |g| {
            v!["ZREMRANGEBYLEX", g.key(), g.lex_bound(), g.lex_bound()]
        }),
        tpl("zpopmin", SortedSets, Exact, |g| {
            let mut c = v!["ZPOPMIN", g.key()];
            if g.chance(0.5) {
                c.push(g.count());
            }
            c
        }),
        tpl("zpopmax", SortedSets, Exact, |g| {
            let mut c = v!["ZPOPMAX", g.key()];
            if g.chance(0.5) {
                c.push(g.count());
            }
            c
        }),
        tpl("zmpop", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let mut c = with(v!["ZMPOP", n], keys);
            c.push(g.pick(&["MIN", "MAX", "min", "MIDDLE"]));
            if g.chance(0.5) {
                c.extend(v!["COUNT", g.count()]);
            }
            c
        }),
        tpl("zunionstore", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let len = keys.len();
            with(
                with(v!["ZUNIONSTORE", g.key(), n], keys),
                store_options(g, len),
            )
        }),
        tpl("zinterstore", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let len = keys.len();
            with(
                with(v!["ZINTERSTORE", g.key(), n], keys),
                store_options(g, len),
            )
        }),
        tpl("zdiffstore", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            with(v!["ZDIFFSTORE", g.key(), n], keys)
        }),
        tpl("zunion", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let len = keys.len();
            let mut c = with(with(v!["ZUNION", n], keys), store_options(g, len));
            if g.chance(0.5) {
                c.push("WITHSCORES".into());
            }
            c
        }),
        tpl("zinter", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let len = keys.len();
            let mut c = with(with(v!["ZINTER", n], keys), store_options(g, len));
            if g.chance(0.5) {
                c.push("WITHSCORES".into());
            }
            c
        }),
        tpl("zdiff", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            let mut c = with(v!["ZDIFF", n], keys);
            if g.chance(0.5) {
                c.push("WITHSCORES".into());
            }
            c
        }),
        tpl("zintercard", SortedSets, Exact, |g| {
            let (n, keys) = numkeys(g);
            with(v!["ZINTERCARD", n], keys)
        }),
        tpl(
            "zrandmember",
            SortedSets,
            Cmp::Sample(SampleKind::Zset),
            |g| {
                let mut c = v!["ZRANDMEMBER", g.key()];
                if g.chance(0.7) {
                    c.push(g.count());
                    if g.chance(0.5) {
                        c.push("WITHSCORES".into());
                    }
                }
                c
            },
        ),
        tpl("zscan", SortedSets, Cmp::Scan, |g| {
            with(v!["ZSCAN", g.key(), "0"], scan_options(g, false))
        }),
        // ---- lists (non-blocking)
        tpl("lpush", Lists, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["LPUSH", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        tpl("rpush", Lists, Exact, |g| {
            let n = g.n(1, 3);
            let mut c = v!["RPUSH", g.key()];
            c.extend((0..n).map(|_| g.member()));
            c
        }),
        tpl("lpushx", Lists, Exact, |g| {
            v!["LPUSHX", g.key(), g.member()]
        }),
        tpl("rpushx", Lists, Exact, |g| {
            v!["RPUSHX", g.key(), g.member()]
        }),
        tpl("lpop", Lists, Exact, |g| {
            let mut c = v!["LPOP", g.key()];
            if g.chance(0.4) {
                c.push(g.count());
            }
            c
        }),
        tpl("rpop", Lists, Exact, |g| {
            let mut c = v!["RPOP", g.key()];
            if g.chance(0.4) {
                c.push(g.count());
            }
            c
        }),
        tpl("llen", Lists, Exact, |g| v!["LLEN", g.key()]),
        tpl("lrange", Lists, Exact, |g| {
            v!["LRANGE", g.key(), g.idx(), g.idx()]
        }),
        tpl("lindex", Lists, Exact, |g| v!["LINDEX", g.key(), g.idx()]),
        tpl("lset", Lists, Exact, |g| {
            v!["LSET", g.key(), g.idx(), g.member()]
        }),
        tpl("linsert", Lists, Exact, |g| {
            v![
                "LINSERT",
                g.key(),
                g.pick(&["BEFORE", "AFTER", "after", "MIDDLE"]),
                g.member(),
                g.member()
            ]
        }),
        tpl("lrem", Lists, Exact, |g| {
            v!["LREM", g.key(), g.idx(), g.member()]
        }),
        tpl("ltrim", Lists, Exact, |g| {
            v!["LTRIM", g.key(), g.idx(), g.idx()]
        }),
        tpl("rpoplpush", Lists, Exact, |g| {
            v!["RPOPLPUSH", g.key(), g.key()]
        }),
        tpl("lmove", Lists, Exact, |g| {
            let a = g.pick(&["LEFT", "RIGHT", "left", "UP"]);
            let b = g.pick(&["LEFT", "RIGHT"]);
            v!["LMOVE", g.key(), g.key(), a, b]
        }),
        tpl("lpos", Lists, Exact, |g| {
            let mut c = v!["LPOS", g.key(), g.member()];
            if g.chance(0.3) {
                c.extend(v!["RANK", g.pick(&["1", "2", "-1", "-2", "0", "x"])]);
            }
            if g.chance(0.3) {
                c.extend(v!["COUNT", g.pick(&["0", "1", "2", "-1"])]);
            }
            if g.chance(0.2) {
                c.extend(v!["MAXLEN", g.pick(&["0", "1", "3", "-1"])]);
            }
            c
        }),
        tpl("lmpop", Lists, Exact, |g| {
            let (n, keys) = numkeys(g);
            let mut c = with(v!["LMPOP", n], keys);
            c.push(g.pick(&["LEFT", "RIGHT", "right", "DOWN"]));
            if g.chance(0.5) {
                c.extend(v!["COUNT", g.count()]);
            }
            c
        }),
    ]
}

/// The command family names print in, and the command whose presence
/// means the family is implemented.
fn family_probe(f: Family) -> &'static str {
    match f {
        Family::Strings => "set",
        Family::Keys => "del",
        Family::Hashes => "hset",
        Family::Sets => "sadd",
        Family::SortedSets => "zadd",
        Family::Lists => "lpush",
        Family::Transactions => "multi",
        Family::Errors => "get",
        Family::Bitmaps => "setbit",
        Family::Hll => "pfadd",
    }
}

// ---------------------------------------------------------------------------
// The two servers

/// One server's connections: RESP2, RESP3, and a second client for WATCH.
struct Side {
    resp2: Conn,
    resp3: Conn,
    other: Conn,
}

impl Side {
    async fn open(addr: std::net::SocketAddr) -> anyhow::Result<Side> {
        Ok(Side {
            resp2: Conn::connect(addr).await?,
            resp3: Conn::connect_resp3(addr).await?,
            other: Conn::connect(addr).await?,
        })
    }

    fn conn(&mut self, resp3: bool) -> &mut Conn {
        if resp3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        }
    }
}

/// One recorded mismatch.
struct Mismatch {
    step: usize,
    proto: u8,
    cmd: Vec<String>,
    redis: String,
    cairn: String,
    why: String,
    history: Vec<String>,
}

/// Both servers plus the run's log.
struct Duo {
    redis: Side,
    cairn: Side,
    seed: u64,
    history: VecDeque<(usize, u8, Vec<String>, String)>,
    mismatches: Vec<Mismatch>,
    known: Vec<String>,
    commands_sent: usize,
    /// Redis' reply to the last checked command.
    last_redis: Option<Reply>,
    /// `CAIRN_DIFF_TRACE=1`: print every command and Redis' reply.
    trace: bool,
    /// Whether a mismatch deletes the keys involved (the random run);
    /// scripted cases keep their state, which the next cases rely on.
    resync_on_mismatch: bool,
}

/// The arguments of `cmd` that name keys of the run's key space, or all
/// its arguments when a mutation put other names in key positions.
fn key_args(cmd: &[String]) -> Vec<String> {
    let named: Vec<String> = cmd
        .iter()
        .filter(|a| KEYS.contains(&a.as_str()))
        .cloned()
        .collect();
    if named.is_empty() {
        cmd.iter().skip(1).cloned().collect()
    } else {
        named
    }
}

fn render(cmd: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in cmd.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            out.push_str(a);
        } else {
            out.push_str(&Reply::Bulk(a.as_bytes().to_vec()).to_string());
        }
    }
    out
}

impl Duo {
    async fn open(
        redis: std::net::SocketAddr,
        cairn: std::net::SocketAddr,
        seed: u64,
    ) -> anyhow::Result<Duo> {
        Ok(Duo {
            redis: Side::open(redis).await?,
            cairn: Side::open(cairn).await?,
            seed,
            history: VecDeque::new(),
            mismatches: Vec::new(),
            known: Vec::new(),
            commands_sent: 0,
            last_redis: None,
            trace: std::env::var("CAIRN_DIFF_TRACE").is_ok_and(|v| v == "1"),
            resync_on_mismatch: true,
        })
    }

    /// Sends `cmd` to both servers on the chosen protocol.
    async fn both(&mut self, resp3: bool, cmd: &[String]) -> anyhow::Result<(Reply, Reply)> {
        let r = self
            .redis
            .conn(resp3)
            .call(cmd)
            .await
            .with_context(|| format!("redis: {}", render(cmd)))?;
        let c = self
            .cairn
            .conn(resp3)
            .call(cmd)
            .await
            .with_context(|| format!("cairn: {}", render(cmd)))?;
        self.commands_sent += 1;
        Ok((r, c))
    }

    /// Sends `cmd` to both servers' second client (RESP2).
    async fn both_other(&mut self, cmd: &[String]) -> anyhow::Result<(Reply, Reply)> {
        let r = self.redis.other.call(cmd).await?;
        let c = self.cairn.other.call(cmd).await?;
        self.commands_sent += 1;
        Ok((r, c))
    }

    fn log(&mut self, step: usize, resp3: bool, cmd: &[String], redis: &Reply) {
        if self.trace {
            println!(
                "step {step} RESP{}: {} -> {redis}",
                if resp3 { 3 } else { 2 },
                render(cmd)
            );
        }
        if self.history.len() >= 4000 {
            self.history.pop_front();
        }
        self.history.push_back((
            step,
            if resp3 { 3 } else { 2 },
            cmd.to_vec(),
            redis.to_string(),
        ));
    }

    /// The logged commands that touched any key `cmd` names.
    fn history_for(&self, cmd: &[String]) -> Vec<String> {
        let keys = key_args(cmd);
        let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let mut lines: Vec<String> = self
            .history
            .iter()
            .rev()
            .filter(|(_, _, c, _)| keys.is_empty() || c.iter().any(|a| keys.contains(a.as_str())))
            .take(15)
            .map(|(s, p, c, r)| format!("    step {s} RESP{p}: {}  -> redis {r}", render(c)))
            .collect();
        lines.reverse();
        lines
    }

    fn record(
        &mut self,
        step: usize,
        resp3: bool,
        cmd: &[String],
        redis: &Reply,
        cairn: &Reply,
        why: &str,
    ) {
        if let Some(known) = known_difference(cmd, redis) {
            self.known.push(format!("{} ({})", render(cmd), known.doc));
            return;
        }
        let m = Mismatch {
            step,
            proto: if resp3 { 3 } else { 2 },
            cmd: cmd.to_vec(),
            redis: redis.to_string(),
            cairn: cairn.to_string(),
            why: why.to_owned(),
            history: self.history_for(cmd),
        };
        if self.mismatches.len() < MAX_PRINTED {
            println!(
                "MISMATCH seed={} step={} RESP{}: {}\n  redis: {}\n  cairn: {}\n  ({})\n  preceding commands on these keys:\n{}",
                self.seed,
                m.step,
                m.proto,
                render(&m.cmd),
                m.redis,
                m.cairn,
                m.why,
                m.history.join("\n")
            );
        }
        self.mismatches.push(m);
    }

    /// After a mismatch the two databases may differ in the keys the
    /// command named: deleting them on both keeps later steps meaningful.
    async fn resync(&mut self, cmd: &[String]) -> anyhow::Result<()> {
        if !self.resync_on_mismatch {
            return Ok(());
        }
        // Mutated commands can name keys outside KEYS, so every argument
        // is deleted: both servers do the same, harmless for non-keys.
        let mut keys: Vec<String> = cmd.iter().skip(1).cloned().collect();
        keys.extend(
            KEYS.iter()
                .filter(|_| cmd.len() < 2)
                .map(|k| (*k).to_owned()),
        );
        self.both(false, &with(v!["DEL"], keys)).await?;
        Ok(())
    }

    /// Runs one command on both servers and compares the replies.
    async fn check(
        &mut self,
        step: usize,
        resp3: bool,
        cmd: &[String],
        cmp: Cmp,
    ) -> anyhow::Result<bool> {
        let (r, c) = self.both(resp3, cmd).await?;
        self.log(step, resp3, cmd, &r);
        self.last_redis = Some(r.clone());
        let diff = match cmp {
            Cmp::Sample(kind) => self.sample_diff(cmd, kind, &r, &c).await?,
            Cmp::Spop => self.spop_diff(cmd, &r, &c).await?,
            Cmp::RandomKey => self.randomkey_diff(&r, &c).await?,
            Cmp::Scan => {
                if r.is_error() || c.is_error() {
                    (r != c).then(|| "replies differ".to_owned())
                } else {
                    self.scan_diff(resp3, cmd).await?
                }
            }
            _ => plain_diff(&r, &c, cmp),
        };
        if let Some(why) = diff {
            self.record(step, resp3, cmd, &r, &c, &why);
            self.resync(cmd).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// The contents of a key on one server, as name -> value text (a set
    /// maps each member to ""), read over RESP2.
    async fn population(
        conn: &mut Conn,
        kind: SampleKind,
        key: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let cmd = match kind {
            SampleKind::Set => v!["SMEMBERS", key],
            SampleKind::Hash => v!["HGETALL", key],
            SampleKind::Zset => v!["ZRANGE", key, "0", "-1", "WITHSCORES"],
        };
        let reply = conn.call(&cmd).await?;
        let mut leaves = Vec::new();
        flatten_leaves(&reply, &mut leaves);
        Ok(match kind {
            SampleKind::Set => leaves.into_iter().map(|m| (m, String::new())).collect(),
            _ => leaves
                .chunks(2)
                .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
                .collect(),
        })
    }

    /// SRANDMEMBER / HRANDFIELD / ZRANDMEMBER: same shape on both servers,
    /// and every element of cairn's sample taken from the key (with its
    /// value when asked), distinct when the count is positive.
    async fn sample_diff(
        &mut self,
        cmd: &[String],
        kind: SampleKind,
        r: &Reply,
        c: &Reply,
    ) -> anyhow::Result<Option<String>> {
        if r.is_error()
            || c.is_error()
            || !matches!(r, Reply::Array(_) | Reply::Bulk(_) | Reply::Set(_))
        {
            return Ok((r != c).then(|| "replies differ".to_owned()));
        }
        if shape(r) != shape(c) {
            return Ok(Some(format!(
                "sample shapes differ: {} vs {}",
                shape(r),
                shape(c)
            )));
        }
        let key = cmd.get(1).cloned().unwrap_or_default();
        let pop = Duo::population(&mut self.cairn.resp2, kind, &key).await?;
        let with_values = cmd
            .iter()
            .any(|a| a.eq_ignore_ascii_case("WITHVALUES") || a.eq_ignore_ascii_case("WITHSCORES"));
        let mut leaves = Vec::new();
        flatten_leaves(c, &mut leaves);
        let names: Vec<String> = if with_values {
            for pair in leaves.chunks(2) {
                let (name, value) = (&pair[0], pair.get(1).cloned().unwrap_or_default());
                match pop.get(name) {
                    Some(v) if *v == value => {}
                    Some(v) => {
                        return Ok(Some(format!(
                            "sampled {name} with value {value}, the key holds {v}"
                        )));
                    }
                    None => {
                        return Ok(Some(format!("sampled {name}, which the key does not hold")));
                    }
                }
            }
            leaves.chunks(2).map(|p| p[0].clone()).collect()
        } else {
            leaves
        };
        if let Some(bad) = names.iter().find(|n| !pop.contains_key(*n)) {
            return Ok(Some(format!("sampled {bad}, which the key does not hold")));
        }
        let positive = cmd
            .get(2)
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|n| n > 0);
        if positive && names.iter().collect::<BTreeSet<_>>().len() != names.len() {
            return Ok(Some("a positive count returned repeated elements".into()));
        }
        Ok(None)
    }

    /// SPOP: same shape, popped members come from the set (checked on
    /// Redis' side, which still has cairn's state before this command),
    /// then cairn is made to hold exactly what Redis holds.
    async fn spop_diff(
        &mut self,
        cmd: &[String],
        r: &Reply,
        c: &Reply,
    ) -> anyhow::Result<Option<String>> {
        if r.is_error()
            || c.is_error()
            || !matches!(r, Reply::Array(_) | Reply::Bulk(_) | Reply::Set(_))
        {
            return Ok((r != c).then(|| "replies differ".to_owned()));
        }
        if shape(r) != shape(c) {
            return Ok(Some(format!(
                "SPOP shapes differ: {} vs {}",
                shape(r),
                shape(c)
            )));
        }
        let (mut rl, mut cl) = (Vec::new(), Vec::new());
        flatten_leaves(r, &mut rl);
        flatten_leaves(c, &mut cl);
        if cl.iter().collect::<BTreeSet<_>>().len() != cl.len() {
            return Ok(Some("SPOP returned a member twice".into()));
        }
        let key = cmd.get(1).cloned().unwrap_or_default();
        // Before the pop both sets were equal: cairn's popped members must
        // be in Redis' remaining set or among Redis' popped ones.
        let redis_left = Duo::population(&mut self.redis.resp2, SampleKind::Set, &key).await?;
        if let Some(bad) = cl
            .iter()
            .find(|m| !redis_left.contains_key(*m) && !rl.contains(m))
        {
            return Ok(Some(format!(
                "SPOP returned {bad}, which was not in the set"
            )));
        }
        let only_cairn: Vec<String> = cl.iter().filter(|m| !rl.contains(m)).cloned().collect();
        let only_redis: Vec<String> = rl.iter().filter(|m| !cl.contains(m)).cloned().collect();
        if !only_cairn.is_empty() {
            self.cairn
                .resp2
                .call(&with(v!["SADD", key.clone()], only_cairn))
                .await?;
        }
        if !only_redis.is_empty() {
            self.cairn
                .resp2
                .call(&with(v!["SREM", key], only_redis))
                .await?;
        }
        Ok(None)
    }

    async fn randomkey_diff(&mut self, r: &Reply, c: &Reply) -> anyhow::Result<Option<String>> {
        match (r, c) {
            (Reply::Bulk(_), Reply::Bulk(key)) => {
                let key = String::from_utf8_lossy(key).into_owned();
                let exists = self.cairn.resp2.call(&v!["EXISTS", key.clone()]).await?;
                let in_redis = self.redis.resp2.call(&v!["EXISTS", key.clone()]).await?;
                Ok(
                    (exists != Reply::Integer(1) || in_redis != Reply::Integer(1)).then(|| {
                        format!("RANDOMKEY returned {key}, which does not exist on both servers")
                    }),
                )
            }
            _ => Ok((r != c).then(|| "replies differ".to_owned())),
        }
    }

    /// Runs the SCAN-family command in `cmd` to completion on both servers
    /// and compares what they returned as sets.
    async fn scan_diff(&mut self, resp3: bool, cmd: &[String]) -> anyhow::Result<Option<String>> {
        let r = scan_all(self.redis.conn(resp3), cmd).await?;
        let c = scan_all(self.cairn.conn(resp3), cmd).await?;
        Ok(match (r, c) {
            (Ok(r), Ok(c)) if r == c => None,
            (Ok(r), Ok(c)) => Some(format!(
                "full iterations differ: redis {:?} cairn {:?}",
                r.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                c.iter().map(|x| x.to_string()).collect::<Vec<_>>()
            )),
            (r, c) => Some(format!("iteration failed: redis {r:?} cairn {c:?}")),
        })
    }

    /// Deletes, on both servers, the home keys that hold another family's
    /// type (compared like any command).
    async fn rehome(&mut self, step: usize) -> anyhow::Result<()> {
        let homes = [
            (Family::Strings, "string"),
            (Family::Hashes, "hash"),
            (Family::Sets, "set"),
            (Family::SortedSets, "zset"),
            (Family::Lists, "list"),
        ];
        for (family, wanted) in homes {
            for key in home(family) {
                let ty = self.redis.resp2.call(&["TYPE", key]).await?;
                if ty
                    .as_bytes()
                    .is_some_and(|t| t != wanted.as_bytes() && t != b"none")
                {
                    self.check(step, false, &v!["DEL", *key], Cmp::Exact)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Compares databases 1 and 0 (MOVE, COPY ... DB and SWAPDB fill 1),
    /// leaving the RESP2 connections in database 0 as the run expects.
    async fn compare_state(&mut self, step: usize) -> anyhow::Result<()> {
        for db in ["1", "0"] {
            let select = v!["SELECT", db];
            let (r, c) = self.both(false, &select).await?;
            if r != c {
                self.record(step, false, &select, &r, &c, "state check: SELECT failed");
                continue;
            }
            self.compare_db(step).await?;
        }
        Ok(())
    }

    /// Compares the selected database: keys, types, values and TTLs.
    async fn compare_db(&mut self, step: usize) -> anyhow::Result<()> {
        let all = v!["KEYS", "*"];
        let (r, c) = self.both(false, &all).await?;
        if normalize(&r, Cmp::Unordered) != normalize(&c, Cmp::Unordered) {
            self.record(step, false, &all, &r, &c, "state check: key sets differ");
            self.resync(&all).await?;
            return Ok(());
        }
        let mut keys = Vec::new();
        flatten_leaves(&r, &mut keys);
        for key in keys {
            let (rt, ct) = self.both(false, &v!["TYPE", key.clone()]).await?;
            if rt != ct {
                self.record(
                    step,
                    false,
                    &v!["TYPE", key.clone()],
                    &rt,
                    &ct,
                    "state check: types differ",
                );
                self.resync(&v!["DEL", key]).await?;
                continue;
            }
            // Collections report Redis 7.0's encodings (issue 14), and
            // the small ones answer in Redis' order: a listpack hash in
            // insertion order, an intset in numeric order.
            let mut small = false;
            if rt.as_bytes() != Some(b"string") {
                let cmd = v!["OBJECT", "ENCODING", key.clone()];
                let (r, c) = self.both(false, &cmd).await?;
                if let Some(why) = plain_diff(&r, &c, Cmp::Exact) {
                    self.record(step, false, &cmd, &r, &c, &format!("state check: {why}"));
                    self.resync(&v!["DEL", key.clone()]).await?;
                    continue;
                }
                small = matches!(r.as_bytes(), Some(b"listpack" | b"intset"));
            }
            let (dump, cmp) = match rt.as_bytes() {
                Some(b"string") => (v!["GET", key.clone()], Cmp::Exact),
                Some(b"hash") if small => (v!["HGETALL", key.clone()], Cmp::Exact),
                Some(b"hash") => (v!["HGETALL", key.clone()], Cmp::Pairs),
                Some(b"set") if small => (v!["SMEMBERS", key.clone()], Cmp::Exact),
                Some(b"set") => (v!["SMEMBERS", key.clone()], Cmp::Unordered),
                Some(b"zset") => (
                    v!["ZRANGE", key.clone(), "0", "-1", "WITHSCORES"],
                    Cmp::Exact,
                ),
                Some(b"list") => (v!["LRANGE", key.clone(), "0", "-1"], Cmp::Exact),
                _ => continue,
            };
            for (cmd, cmp) in [(dump, cmp), (v!["PTTL", key.clone()], Cmp::TtlMillis)] {
                let (r, c) = self.both(false, &cmd).await?;
                if let Some(why) = plain_diff(&r, &c, cmp) {
                    self.record(step, false, &cmd, &r, &c, &format!("state check: {why}"));
                    self.resync(&v!["DEL", key.clone()]).await?;
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Iterates a SCAN-family command from cursor 0 to the end, collecting
/// keys (or members, or field/value pairs) as a set.
async fn scan_all(
    conn: &mut Conn,
    cmd: &[String],
) -> anyhow::Result<Result<BTreeSet<Reply>, String>> {
    let cursor_at = if cmd.first().is_some_and(|c| c.eq_ignore_ascii_case("SCAN")) {
        1
    } else {
        2
    };
    let pairs = cmd
        .first()
        .is_some_and(|c| c.eq_ignore_ascii_case("HSCAN") || c.eq_ignore_ascii_case("ZSCAN"));
    let mut cmd = cmd.to_vec();
    let mut seen = BTreeSet::new();
    for _ in 0..10_000 {
        let reply = conn.call(&cmd).await?;
        let Some([Reply::Bulk(cursor), Reply::Array(items)]) = reply.elements() else {
            return Ok(Err(format!("unexpected page {reply}")));
        };
        if pairs {
            for p in items.chunks(2) {
                seen.insert(Reply::Array(p.to_vec()));
            }
        } else {
            seen.extend(items.iter().cloned());
        }
        if cursor.as_slice() == b"0" {
            return Ok(Ok(seen));
        }
        if let Some(slot) = cmd.get_mut(cursor_at) {
            *slot = String::from_utf8_lossy(cursor).into_owned();
        }
    }
    Ok(Err("the iteration did not end after 10000 pages".into()))
}

// ---------------------------------------------------------------------------
// Detection

/// Whether `name` is in cairn's command table (`COMMAND INFO` is not nil).
async fn implemented(conn: &mut Conn, name: &str) -> anyhow::Result<bool> {
    let reply = conn.call(&["COMMAND", "INFO", name]).await?;
    Ok(matches!(reply.elements(), Some([Reply::Array(_)])))
}

// ---------------------------------------------------------------------------
// The randomized run

/// Mutates a valid command into a probable error: a missing or extra
/// argument, or a number replaced by garbage.
fn mutate(g: &mut G, mut cmd: Vec<String>) -> Vec<String> {
    match g.n(0, 3) {
        0 if cmd.len() > 1 => {
            cmd.pop();
        }
        1 => cmd.push(g.pick(&["BOGUS", "1", "WITHSCORES", "NX"])),
        2 => {
            let at = g.n(1, cmd.len().saturating_sub(1).max(1));
            if let Some(slot) = cmd.get_mut(at) {
                *slot = g.pick(&["notanumber", "", "-", "99999999999999999999"]);
            }
        }
        _ => {
            let n = g.n(0, 3);
            cmd = vec![g.pick(&["NOSUCHCMD", "gett", "S E T", "x"])];
            for _ in 0..n {
                let arg = g.pick(&[
                    "a",
                    "b c",
                    "",
                    "looooooooooooooooooooooooooooooooooooooooooooooooooong",
                ]);
                cmd.push(arg.repeat(g.n(1, 4)));
            }
        }
    }
    cmd
}

struct Run {
    g: G,
    tpls: Vec<Tpl>,
    families: Vec<Family>,
    /// Per family: commands, error replies, empty replies (from Redis).
    stats: BTreeMap<Family, [usize; 3]>,
    /// Per family and error text (from Redis): how often.
    errors: BTreeMap<(Family, String), usize>,
}

impl Run {
    fn pick_tpl(&mut self, family: Family) -> Option<&Tpl> {
        // Commands that add elements are drawn more often: pops, removals
        // and stores empty keys faster than one adder in thirty fills them.
        let idx: Vec<usize> = (0..self.tpls.len())
            .filter(|&i| self.tpls[i].family == family)
            .flat_map(|i| {
                let adds = ["sadd", "zadd", "hset", "rpush", "lpush"].contains(&self.tpls[i].name);
                std::iter::repeat_n(i, if adds { 4 } else { 1 })
            })
            .collect();
        let at = idx.choose(&mut self.g.rng).copied()?;
        self.tpls.get(at)
    }

    fn pick_any(&mut self, multi_only: bool) -> Option<(Vec<String>, Cmp)> {
        let idx: Vec<usize> = (0..self.tpls.len())
            .filter(|&i| !multi_only || self.tpls[i].in_multi)
            .collect();
        let at = idx.choose(&mut self.g.rng).copied()?;
        let t = self.tpls.get(at)?;
        let (generate, cmp) = (t.generate, t.cmp);
        self.g.home = home(t.family);
        Some((generate(&mut self.g), cmp))
    }

    async fn step(&mut self, duo: &mut Duo, step: usize) -> anyhow::Result<()> {
        self.g.step = step as i64;
        let resp3 = self.g.chance(0.5);
        let Some(&family) = self.families.choose(&mut self.g.rng) else {
            return Ok(());
        };
        match family {
            Family::Transactions => self.transaction(duo, step, resp3).await,
            Family::Errors => {
                let Some((cmd, cmp)) = self.pick_any(false) else {
                    return Ok(());
                };
                let cmd = mutate(&mut self.g, cmd);
                duo.check(step, resp3, &cmd, cmp).await.map(|_| ())
            }
            f => {
                let Some(t) = self.pick_tpl(f) else {
                    return Ok(());
                };
                let (generate, cmp) = (t.generate, t.cmp);
                self.g.home = home(f);
                let cmd = generate(&mut self.g);
                duo.check(step, resp3, &cmd, cmp).await?;
                // How often a family's commands did real work, so a run
                // that only ever met wrong types and empty keys shows.
                let entry = self.stats.entry(f).or_default();
                entry[0] += 1;
                match &duo.last_redis {
                    Some(r) if r.is_error() => {
                        entry[1] += 1;
                        let text: String = r.to_string().chars().take(40).collect();
                        *self.errors.entry((f, text)).or_default() += 1;
                    }
                    Some(Reply::NilBulk | Reply::Null | Reply::NilArray | Reply::Integer(0)) => {
                        entry[2] += 1
                    }
                    Some(r) if r.elements().is_some_and(<[Reply]>::is_empty) => entry[2] += 1,
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// A MULTI block, optionally under WATCH with a second client touching
    /// (or not) a watched key, ending in EXEC or DISCARD; or one of the
    /// transaction error cases.
    async fn transaction(&mut self, duo: &mut Duo, step: usize, resp3: bool) -> anyhow::Result<()> {
        let g = &mut self.g;
        let mut script: Vec<(Vec<String>, Cmp)> = Vec::new();
        match g.n(0, 9) {
            0 => script.push((v![g.pick(&["EXEC", "DISCARD", "UNWATCH"])], Cmp::Exact)),
            1 => {
                script.push((v!["MULTI"], Cmp::Exact));
                script.push((v![g.pick(&["MULTI", "WATCH", "WATCH k1"])], Cmp::Exact));
                script.push((v![g.pick(&["WATCH", "EXEC", "DISCARD"]), "k1"], Cmp::Exact));
                script.push((v!["DISCARD"], Cmp::Exact));
            }
            _ => {}
        }
        if !script.is_empty() {
            for (cmd, cmp) in script {
                duo.check(step, resp3, &cmd, cmp).await?;
            }
            return Ok(());
        }
        let watch = self.g.chance(0.5);
        if watch {
            let keys = self.g.keys(1, 2);
            duo.check(step, resp3, &with(v!["WATCH"], keys.clone()), Cmp::Exact)
                .await?;
            let touch = match self.g.n(0, 4) {
                0 => Some(v!["SET", keys[0].clone(), "touched"]),
                1 => Some(v!["DEL", keys[0].clone()]),
                2 => Some(v!["GET", keys[0].clone()]),
                3 => Some(v!["SET", self.g.key(), "elsewhere"]),
                _ => None,
            };
            if let Some(t) = touch {
                let (r, c) = duo.both_other(&t).await?;
                duo.log(step, false, &t, &r);
                if r != c {
                    duo.record(step, false, &t, &r, &c, "second client's reply differs");
                }
            }
            if self.g.chance(0.1) {
                duo.check(step, resp3, &v!["UNWATCH"], Cmp::Exact).await?;
            }
        }
        duo.check(step, resp3, &v!["MULTI"], Cmp::Exact).await?;
        let n = self.g.n(0, 5);
        let mut cmps = Vec::new();
        for _ in 0..n {
            let Some((mut cmd, cmp)) = self.pick_any(true) else {
                break;
            };
            if self.g.chance(0.05) {
                cmd = mutate(&mut self.g, cmd);
            }
            cmps.push(cmp);
            duo.check(step, resp3, &cmd, Cmp::Exact).await?;
        }
        let end = if self.g.chance(0.15) {
            "DISCARD"
        } else {
            "EXEC"
        };
        let cmd = v![end];
        let (r, c) = duo.both(resp3, &cmd).await?;
        duo.log(step, resp3, &cmd, &r);
        let same = match (r.elements(), c.elements()) {
            (Some(re), Some(ce)) if re.len() == ce.len() && re.len() == cmps.len() => re
                .iter()
                .zip(ce)
                .zip(&cmps)
                .all(|((a, b), cmp)| normalize(a, *cmp) == normalize(b, *cmp)),
            _ => r == c,
        };
        if !same {
            duo.record(step, resp3, &cmd, &r, &c, "transaction results differ");
            duo.resync(&v!["DEL"]).await?;
        }
        Ok(())
    }
}

/// The server under test: cairn, or, with `CAIRN_DIFF_SELFCHECK=1`, a
/// second Redis. Redis against Redis must never differ, so the self-check
/// proves the generator and the comparison free of false alarms
/// (replies that depend on timing or chance and are compared exactly).
enum Target {
    Cairn(CairnServer),
    Redis(RedisOracle),
}

impl Target {
    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Target::Cairn(c) => c.addr(),
            Target::Redis(r) => r.addr(),
        }
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        match self {
            Target::Cairn(c) => c.shutdown().await,
            Target::Redis(r) => {
                drop(r);
                Ok(())
            }
        }
    }
}

async fn start_pair(suite: &str) -> anyhow::Result<Option<(RedisOracle, Target)>> {
    let Some(redis) = RedisOracle::start_or_skip(suite)? else {
        return Ok(None);
    };
    let target = if std::env::var("CAIRN_DIFF_SELFCHECK").is_ok_and(|v| v == "1") {
        println!("{suite}: self-check, comparing Redis with Redis");
        Target::Redis(RedisOracle::start()?)
    } else {
        Target::Cairn(CairnServer::start().await?)
    };
    println!(
        "{suite}: redis {} at {}, server under test at {}",
        redis.version(),
        redis.addr(),
        target.addr()
    );
    Ok(Some((redis, target)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_commands_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("randomized_commands_match_redis").await? else {
        return Ok(());
    };
    let seed: u64 = env_parse("CAIRN_DIFF_SEED").unwrap_or_else(rand::random);
    let steps: usize = env_parse("CAIRN_DIFF_STEPS").unwrap_or(DEFAULT_STEPS);
    println!("seed={seed} steps={steps} (replay with CAIRN_DIFF_SEED={seed})");
    let mut duo = Duo::open(redis.addr(), cairn.addr(), seed).await?;

    // Detection: a template runs only if cairn has its command.
    let mut missing = Vec::new();
    let mut tpls = Vec::new();
    for t in templates() {
        if implemented(&mut duo.cairn.resp2, t.name).await? {
            tpls.push(t);
        } else {
            missing.push(t.name);
        }
    }
    let mut families = Vec::new();
    for f in [
        Family::Strings,
        Family::Keys,
        Family::Hashes,
        Family::Sets,
        Family::SortedSets,
        Family::Lists,
        Family::Transactions,
        Family::Errors,
        Family::Bitmaps,
        Family::Hll,
    ] {
        let probe = family_probe(f);
        let has = implemented(&mut duo.cairn.resp2, probe).await?;
        let count = tpls.iter().filter(|t| t.family == f).count();
        if has && matches!(f, Family::Transactions | Family::Errors) {
            println!("family {f:?}: built from the other families' commands");
            families.push(f);
        } else if has {
            println!("family {f:?}: {count} commands");
            families.push(f);
        } else {
            println!("family {f:?}: skipped, cairn has no {probe} yet");
        }
    }
    tpls.retain(|t| families.contains(&t.family));
    if !missing.is_empty() {
        println!("commands not in cairn yet (skipped): {}", missing.join(" "));
        if std::env::var("CAIRN_DIFF_REQUIRE_ALL").is_ok_and(|v| v == "1") {
            bail!(
                "CAIRN_DIFF_REQUIRE_ALL=1 and cairn lacks: {}",
                missing.join(" ")
            );
        }
    }

    for side in [&mut duo.redis.resp2, &mut duo.cairn.resp2] {
        side.call(&["FLUSHALL"]).await?;
    }
    let mut run = Run {
        g: G {
            rng: StdRng::seed_from_u64(seed),
            step: 0,
            t0_ms: now_ms(),
            home: KEYS,
        },
        tpls,
        families,
        stats: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut done = 0;
    for step in 0..steps {
        if started.elapsed() > TIME_BUDGET {
            println!("time budget {TIME_BUDGET:?} reached after {step} steps");
            break;
        }
        run.step(&mut duo, step).await?;
        if step % STATE_CHECK_EVERY == STATE_CHECK_EVERY - 1 {
            duo.compare_state(step).await?;
        }
        if step % REHOME_EVERY == REHOME_EVERY - 1 {
            duo.rehome(step).await?;
        }
        done = step + 1;
    }
    duo.compare_state(done).await?;
    println!(
        "seed={seed}: {done} steps, {} commands per server in {:.1?}, {} mismatches, {} known differences",
        duo.commands_sent,
        started.elapsed(),
        duo.mismatches.len(),
        duo.known.len()
    );
    for (f, [n, errors, empty]) in &run.stats {
        println!(
            "  {f:?}: {n} commands, {}% errors, {}% empty or zero replies",
            errors * 100 / n.max(&1),
            empty * 100 / n.max(&1)
        );
        let mut top: Vec<(&String, &usize)> = run
            .errors
            .iter()
            .filter(|((g, _), _)| g == f)
            .map(|((_, e), n)| (e, n))
            .collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = top
            .iter()
            .take(3)
            .map(|(e, n)| format!("{n}x {e}"))
            .collect();
        println!("    most common errors: {}", top.join("; "));
    }
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// Summarises the mismatches by command and fails when there are any.
fn report(duo: &Duo) -> anyhow::Result<()> {
    if duo.mismatches.is_empty() {
        return Ok(());
    }
    // Grouped by command and by what kind of answer each side gave, so
    // one line stands for one difference however often the run hit it.
    let class = |r: &str| -> String {
        if r.starts_with('-') || r.starts_with('!') {
            r.chars().take(70).collect()
        } else {
            format!("{}-reply", r.chars().next().unwrap_or('?'))
        }
    };
    let mut by_kind: BTreeMap<String, (usize, &Mismatch)> = BTreeMap::new();
    for m in &duo.mismatches {
        let name = m.cmd.first().map(|c| c.to_uppercase()).unwrap_or_default();
        let kind = format!(
            "{name} [redis {} | cairn {}]",
            class(&m.redis),
            class(&m.cairn)
        );
        by_kind.entry(kind).or_insert((0, m)).0 += 1;
    }
    let mut summary = String::new();
    for (kind, (n, m)) in &by_kind {
        let _ = writeln!(
            summary,
            "  {kind}: {n}x, first at step {} RESP{}: {} -> redis {} / cairn {}",
            m.step,
            m.proto,
            render(&m.cmd),
            m.redis,
            m.cairn
        );
    }
    bail!(
        "seed={}: {} replies differ from Redis (replay with CAIRN_DIFF_SEED={}):\n{summary}",
        duo.seed,
        duo.mismatches.len(),
        duo.seed
    )
}

// ---------------------------------------------------------------------------
// Expiry

/// Keys with short TTLs expire the same way on both servers: lazily (a
/// read past the deadline sees nothing) and actively (untouched keys leave
/// DBSIZE and SCAN without being read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("expiry_matches_redis").await? else {
        return Ok(());
    };
    let seed: u64 = env_parse("CAIRN_DIFF_SEED").unwrap_or_else(rand::random);
    println!("seed={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut duo = Duo::open(redis.addr(), cairn.addr(), seed).await?;
    duo.both(false, &v!["FLUSHALL"]).await?;

    // Lazy: volatile keys read right after their deadline.
    let mut lazy = Vec::new();
    let mut deadline = Instant::now();
    for i in 0..20 {
        let key = format!("lazy{i}");
        let px: u64 = rng.random_range(50..=200);
        let cmd = match i % 4 {
            0 => v!["SET", key.clone(), "v", "PX", px.to_string()],
            1 => v!["PSETEX", key.clone(), px.to_string(), "v"],
            2 => v!["SET", key.clone(), "v"],
            _ => v![
                "SET",
                key.clone(),
                "v",
                "PXAT",
                (now_ms() + px as i64).to_string()
            ],
        };
        let (r, c) = duo.both(false, &cmd).await?;
        if let Some(why) = plain_diff(&r, &c, Cmp::Exact) {
            duo.record(0, false, &cmd, &r, &c, &why);
        }
        if i % 4 == 2 {
            let cmd = v!["PEXPIRE", key.clone(), px.to_string()];
            let (r, c) = duo.both(false, &cmd).await?;
            if let Some(why) = plain_diff(&r, &c, Cmp::Exact) {
                duo.record(0, false, &cmd, &r, &c, &why);
            }
        }
        deadline = deadline.max(Instant::now() + Duration::from_millis(px));
        lazy.push(key);
    }
    for i in 0..5 {
        duo.both(false, &v!["SET", format!("stay{i}"), "v"]).await?;
    }
    // Waiting for a known deadline, not for an event: the margin covers
    // clock granularity (Redis expires a key when now > deadline).
    tokio::time::sleep_until((deadline + Duration::from_millis(20)).into()).await;
    for (i, key) in lazy.iter().enumerate() {
        let cmd = match i % 3 {
            0 => v!["GET", key.clone()],
            1 => v!["EXISTS", key.clone()],
            _ => v!["PTTL", key.clone()],
        };
        let (r, c) = duo.both(i % 2 == 1, &cmd).await?;
        if r != c {
            duo.record(1, i % 2 == 1, &cmd, &r, &c, "lazy expiry differs");
        }
    }

    // Active: volatile keys nobody reads; both servers must drop them.
    let mut deadline = Instant::now();
    // Every type cairn has, so each value kind's expiry path is exercised.
    let mut makers: Vec<[&str; 4]> = vec![["set", "SET", "", "v"]];
    for m in [
        ["hset", "HSET", "f", "v"],
        ["sadd", "SADD", "", "m"],
        ["zadd", "ZADD", "1", "m"],
        ["rpush", "RPUSH", "", "x"],
    ] {
        if implemented(&mut duo.cairn.resp2, m[0]).await? {
            makers.push(m);
        }
    }
    for i in 0..40 {
        let px: u64 = rng.random_range(50..=200);
        let key = format!("active{i}");
        let [_, verb, extra, value] = makers[i % makers.len()];
        let mut make = v![verb, key.clone()];
        make.extend(
            [extra, value]
                .into_iter()
                .filter(|a| !a.is_empty())
                .map(String::from),
        );
        duo.check(3, false, &make, Cmp::Exact).await?;
        duo.check(3, false, &v!["PEXPIRE", key, px.to_string()], Cmp::Exact)
            .await?;
        deadline = deadline.max(Instant::now() + Duration::from_millis(px));
    }
    tokio::time::sleep_until((deadline + Duration::from_millis(20)).into()).await;
    let expected = Reply::Integer(5);
    for (name, conn) in [
        ("redis", &mut duo.redis.resp2),
        ("cairn", &mut duo.cairn.resp2),
    ] {
        // Poll DBSIZE (which does not expire keys itself) with a timeout:
        // active expiry runs on its own clock on each server.
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut last;
        loop {
            last = conn.call(&["DBSIZE"]).await?;
            if last == expected || Instant::now() > give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if last != expected {
            bail!("{name}: active expiry left DBSIZE at {last}, expected {expected} within 10 s");
        }
    }
    for (cmd, cmp) in [
        (v!["DBSIZE"], Cmp::Exact),
        (v!["KEYS", "*"], Cmp::Unordered),
        (v!["EXISTS", "active1", "active2", "stay1"], Cmp::Exact),
        (v!["SCAN", "0", "COUNT", "3"], Cmp::Scan),
        (v!["SCAN", "0", "COUNT", "1000"], Cmp::Scan),
    ] {
        duo.check(2, false, &cmd, cmp).await?;
    }
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

// ---------------------------------------------------------------------------
// Command table

/// For every command cairn implements, `COMMAND INFO` agrees with Redis on
/// arity and key positions (what client libraries and proxies use), and a
/// wrong argument count gets Redis' error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_table_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("command_table_matches_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    let list = duo.cairn.resp2.call(&["COMMAND", "LIST"]).await?;
    let mut names = Vec::new();
    flatten_leaves(&list, &mut names);
    names.sort();
    let count = duo.cairn.resp2.call(&["COMMAND", "COUNT"]).await?;
    println!(
        "cairn: COMMAND COUNT {count}, COMMAND LIST {} names",
        names.len()
    );
    // Redis counts top-level commands; COMMAND LIST also names subcommands.
    let top_level = names.iter().filter(|n| !n.contains('|')).count();
    if count.as_int() != Some(top_level as i64) {
        bail!("COMMAND COUNT {count} but COMMAND LIST has {top_level} top-level names");
    }
    let mut missing_subs = Vec::new();
    let mut flag_problems = Vec::new();
    let mut not_in_redis = Vec::new();
    let mut problems = Vec::new();
    for name in &names {
        let cmd = v!["COMMAND", "INFO", name.clone()];
        let (r, c) = duo.both(false, &cmd).await?;
        let (Some([r]), Some([c])) = (r.elements(), c.elements()) else {
            continue;
        };
        let (Some(ri), Some(ci)) = (r.elements(), c.elements()) else {
            not_in_redis.push(name.clone());
            continue;
        };
        // [name, arity, flags, first key, last key, step, ...]
        for (i, what) in [
            (0, "name"),
            (1, "arity"),
            (3, "first key"),
            (4, "last key"),
            (5, "key step"),
        ] {
            if ri.get(i) != ci.get(i) {
                problems.push(format!(
                    "COMMAND INFO {name}: {what} redis {} cairn {}",
                    ri.get(i).map(ToString::to_string).unwrap_or_default(),
                    ci.get(i).map(ToString::to_string).unwrap_or_default()
                ));
            }
        }
        // Flags and ACL categories as sets: clients route on them
        // (readonly, movablekeys, ...). Key specs only for presence.
        let as_set = |x: Option<&Reply>| -> BTreeSet<String> {
            x.and_then(Reply::elements)
                .unwrap_or_default()
                .iter()
                .filter_map(|f| {
                    f.as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                })
                .collect()
        };
        for (i, what) in [(2, "flags"), (6, "ACL categories")] {
            let (rf, cf) = (as_set(ri.get(i)), as_set(ci.get(i)));
            if rf != cf {
                let only_r: Vec<&String> = rf.difference(&cf).collect();
                let only_c: Vec<&String> = cf.difference(&rf).collect();
                flag_problems.push(format!(
                    "COMMAND INFO {name}: {what} only in redis {only_r:?}, only in cairn {only_c:?}"
                ));
            }
        }
        let specs = |x: &[Reply]| x.get(8).and_then(Reply::elements).map_or(0, <[Reply]>::len);
        if specs(ri) != specs(ci) {
            flag_problems.push(format!(
                "COMMAND INFO {name}: {} key specs in redis, {} in cairn",
                specs(ri),
                specs(ci)
            ));
        }
        // Subcommands: the ones cairn has must agree too.
        let subs = |info: &[Reply]| -> BTreeMap<String, Reply> {
            let mut out = BTreeMap::new();
            for sub in info.get(9).and_then(Reply::elements).unwrap_or_default() {
                let fields = sub.elements().unwrap_or_default();
                if let Some(n) = fields.first().and_then(leaf_text) {
                    out.insert(n, Reply::Array(fields.iter().take(6).cloned().collect()));
                }
            }
            out
        };
        let (rs, cs) = (subs(ri), subs(ci));
        for (sub, r_info) in &rs {
            match cs.get(sub) {
                None => missing_subs.push(sub.clone()),
                Some(c_info) => {
                    let (r_info, c_info) = (
                        r_info.elements().unwrap_or_default(),
                        c_info.elements().unwrap_or_default(),
                    );
                    for i in [1, 3, 4, 5] {
                        if r_info.get(i) != c_info.get(i) {
                            problems.push(format!(
                                "COMMAND INFO {sub}: field {i} redis {} cairn {}",
                                r_info.get(i).map(ToString::to_string).unwrap_or_default(),
                                c_info.get(i).map(ToString::to_string).unwrap_or_default()
                            ));
                        }
                    }
                }
            }
        }
        // A wrong argument count, from Redis' arity.
        let Some(arity) = ri.get(1).and_then(Reply::as_int) else {
            continue;
        };
        if ri
            .get(9)
            .and_then(Reply::elements)
            .is_some_and(|subs| !subs.is_empty())
        {
            continue; // container commands answer arity per subcommand
        }
        let bad_len = if arity > 0 {
            arity as usize + 1
        } else {
            (-arity) as usize - 1
        };
        if bad_len < 1
            || [
                "exec", "multi", "discard", "shutdown", "quit", "reset", "monitor", "sync", "psync",
            ]
            .contains(&name.as_str())
        {
            continue;
        }
        let mut bad = vec![name.clone()];
        bad.extend((1..bad_len).map(|i| format!("x{i}")));
        let (r, c) = duo.both(false, &bad).await?;
        if r.is_error() && r != c {
            problems.push(format!("{}: redis {r} cairn {c}", render(&bad)));
        }
    }
    if !flag_problems.is_empty() {
        println!(
            "{} COMMAND INFO flag/category/key-spec differences:",
            flag_problems.len()
        );
        for p in &flag_problems {
            println!("  {p}");
        }
        problems.push(format!(
            "{} commands differ in COMMAND INFO flags, ACL categories or key specs",
            flag_problems.len()
        ));
    }
    if !missing_subs.is_empty() {
        // COMMAND INFO of a container lists its subcommands in Redis; a
        // missing one is either not implemented or not listed.
        println!(
            "subcommands Redis lists under cairn's containers that cairn's COMMAND INFO does not: {}",
            missing_subs.join(" ")
        );
        if std::env::var("CAIRN_DIFF_REQUIRE_ALL").is_ok_and(|v| v == "1") {
            problems.push(format!("{} subcommands missing", missing_subs.len()));
        }
    }
    if !not_in_redis.is_empty() {
        println!(
            "cairn commands Redis 7.0 does not have: {}",
            not_in_redis.join(" ")
        );
    }
    print_coverage(&mut duo, &names).await?;
    let redis_count = duo.redis.resp2.call(&["COMMAND", "COUNT"]).await?;
    println!(
        "redis: COMMAND COUNT {redis_count}; {} command-table differences",
        problems.len()
    );
    for p in &problems {
        println!("  {p}");
    }
    cairn.shutdown().await?;
    drop(redis);
    if !problems.is_empty() {
        bail!("{} command-table differences from Redis", problems.len());
    }
    Ok(())
}

/// `COMMAND DOCS` of every command and subcommand cairn implements equals
/// Redis', in RESP2 and RESP3: field order, simple versus bulk strings,
/// sets, nested arguments. Redis' `subcommands` are first limited to those
/// cairn lists (the missing ones are reported by the command-table test),
/// and compared in name order on both sides: Redis lists them in the
/// order of its subcommand hash table, which changes while it rehashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_docs_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("command_docs_match_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    let list = duo.cairn.resp2.call(&["COMMAND", "LIST"]).await?;
    let mut names = Vec::new();
    flatten_leaves(&list, &mut names);
    let keep = |sub: &str| names.iter().any(|n| n == sub);
    // Several names at once: unknown ones left out, repeats repeated,
    // case-insensitive lookups answered with the lowercase full name.
    let mut probes: Vec<Vec<String>> = vec![
        v![
            "COMMAND",
            "DOCS",
            "get",
            "nosuchcmd",
            "GET",
            "Config|Get",
            "hset"
        ],
        v![
            "COMMAND",
            "DOCS",
            "config|nosuchsub",
            "get|x",
            "config|get|x"
        ],
    ];
    probes.extend(names.iter().map(|n| v!["COMMAND", "DOCS", n.clone()]));
    let mut problems = Vec::new();
    for resp3 in [false, true] {
        for cmd in &probes {
            let (r, c) = duo.both(resp3, cmd).await?;
            let (r, c) = (keep_doc_subs(&r, &keep), keep_doc_subs(&c, &|_| true));
            if r != c {
                problems.push(format!(
                    "{} ({}):\n    redis {r}\n    cairn {c}",
                    render(cmd),
                    if resp3 { "RESP3" } else { "RESP2" }
                ));
            }
        }
    }
    println!(
        "COMMAND DOCS compared for {} names in RESP2 and RESP3; {} differ",
        names.len(),
        problems.len()
    );
    for p in &problems {
        println!("  {p}");
    }
    cairn.shutdown().await?;
    drop(redis);
    if !problems.is_empty() {
        bail!("{} COMMAND DOCS replies differ from Redis", problems.len());
    }
    Ok(())
}

/// A map reply (RESP3 map or RESP2 flat array) with each pair mapped or
/// dropped by `f`, sorted by key text when `sort`; any other reply
/// unchanged.
fn map_pairs(
    r: &Reply,
    sort: bool,
    mut f: impl FnMut(&Reply, &Reply) -> Option<(Reply, Reply)>,
) -> Reply {
    let pairs: Vec<(&Reply, &Reply)> = match r {
        Reply::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Reply::Array(flat) => flat
            .chunks(2)
            .filter_map(|p| match p {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        other => return other.clone(),
    };
    let mut pairs: Vec<(Reply, Reply)> = pairs.into_iter().filter_map(|(k, v)| f(k, v)).collect();
    if sort {
        pairs.sort_by_key(|(k, _)| leaf_text(k));
    }
    match r {
        Reply::Map(_) => Reply::Map(pairs),
        _ => Reply::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
    }
}

/// A `COMMAND DOCS` reply with each command's `subcommands` limited to the
/// full names `keep` accepts, in name order.
fn keep_doc_subs(reply: &Reply, keep: &dyn Fn(&str) -> bool) -> Reply {
    map_pairs(reply, false, |name, docs| {
        let docs = map_pairs(docs, false, |field, value| {
            let value = if leaf_text(field).as_deref() == Some("subcommands") {
                map_pairs(value, true, |sub, sub_docs| {
                    leaf_text(sub)
                        .filter(|s| keep(s))
                        .map(|_| (sub.clone(), sub_docs.clone()))
                })
            } else {
                value.clone()
            };
            Some((field.clone(), value))
        });
        Some((name.clone(), docs))
    })
}

/// Prints, per Redis command group, which of Redis' commands cairn has:
/// the table in docs/compatibility.md is this output.
async fn print_coverage(duo: &mut Duo, cairn_names: &[String]) -> anyhow::Result<()> {
    let list = duo.redis.resp2.call(&["COMMAND", "LIST"]).await?;
    let mut redis_names = Vec::new();
    flatten_leaves(&list, &mut redis_names);
    redis_names.sort();
    let mut groups: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    // Subcommands (`client|list`) are left out: cairn's table lists
    // containers, and a container's subcommands are covered by its tests.
    for name in redis_names.iter().filter(|n| !n.contains('|')) {
        let docs = duo.redis.resp2.call(&["COMMAND", "DOCS", name]).await?;
        let mut leaves = Vec::new();
        flatten_leaves(&docs, &mut leaves);
        let group = leaves
            .windows(2)
            .find(|w| w[0] == "group")
            .map(|w| w[1].clone())
            .unwrap_or_default();
        let entry = groups.entry(group).or_default();
        if cairn_names.contains(name) {
            entry.0.push(name.clone());
        } else {
            entry.1.push(name.clone());
        }
    }
    println!("| group | in cairn | not in cairn |\n|---|---|---|");
    for (group, (have, lack)) in &groups {
        println!(
            "| {group} ({}/{}) | {} | {} |",
            have.len(),
            have.len() + lack.len(),
            have.join(" "),
            lack.join(" ")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Fixed cases

/// Edge cases the random run reaches rarely or not at all, in order, on a
/// fresh database, once per protocol. A case runs when cairn has its
/// command.
const FIXED: &[(&[&str], Cmp)] = &[
    // connection
    (&["PING"], Cmp::Exact),
    (&["PING", "hello"], Cmp::Exact),
    (&["PING", "a", "b"], Cmp::Exact),
    (&["ECHO", "x y"], Cmp::Exact),
    (&["ECHO"], Cmp::Exact),
    (&["HELLO", "4"], Cmp::Exact),
    (&["HELLO", "x"], Cmp::Exact),
    (&["SELECT", "16"], Cmp::Exact),
    (&["SELECT", "-1"], Cmp::Exact),
    (&["SELECT", "x"], Cmp::Exact),
    (&["NOSUCH"], Cmp::Exact),
    (&["nosuch", "arg1", "arg 2", ""], Cmp::Exact),
    (&[""], Cmp::Exact),
    // CLIENT REPLY OFF/SKIP answer nothing: client_reply_matches_redis
    (&["CLIENT", "REPLY", "ON"], Cmp::Exact),
    (&["CLIENT", "REPLY"], Cmp::Exact),
    (&["CLIENT", "REPLY", "ON", "x"], Cmp::Exact),
    (&["CLIENT", "REPLY", "maybe"], Cmp::Exact),
    // strings: numbers and their formatting
    (&["SET", "n", "10.50"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "0"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "0.1"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "-10.6"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "3.0e3"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "1e308"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "1e308"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "inf"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "nan"], Cmp::Exact),
    (&["SET", "p", "0.1"], Cmp::Exact),
    (&["INCRBYFLOAT", "p", "0.2"], Cmp::Exact),
    (&["INCRBYFLOAT", "x", "1e-18"], Cmp::Exact),
    (&["GET", "x"], Cmp::Exact),
    (&["INCRBYFLOAT", "y", "123456789.123456789"], Cmp::Exact),
    (&["SET", "n", "0x10"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "1"], Cmp::Exact),
    (&["SET", "n", " 1"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "1"], Cmp::Exact),
    (&["INCR", "n"], Cmp::Exact),
    (&["SET", "n", "9223372036854775807"], Cmp::Exact),
    (&["INCR", "n"], Cmp::Exact),
    (&["INCRBY", "n", "-1"], Cmp::Exact),
    (&["DECRBY", "n", "-9223372036854775808"], Cmp::Exact),
    (&["INCRBYFLOAT", "n", "1"], Cmp::Exact),
    (&["SET", "s", "hello"], Cmp::Exact),
    (&["GETRANGE", "s", "-100", "100"], Cmp::Exact),
    (&["GETRANGE", "s", "3", "1"], Cmp::Exact),
    (&["SETRANGE", "s", "10", "x"], Cmp::Exact),
    (&["GET", "s"], Cmp::Exact),
    (&["SETRANGE", "missing", "0", ""], Cmp::Exact),
    (&["EXISTS", "missing"], Cmp::Exact),
    (&["SETRANGE", "s", "536870912", "x"], Cmp::Exact),
    (&["APPEND", "s", ""], Cmp::Exact),
    (&["SET", "s", "v", "NX", "XX"], Cmp::Exact),
    (&["SET", "s", "v", "EX", "10", "PX", "10"], Cmp::Exact),
    (&["SET", "s", "v", "EX", "10", "KEEPTTL"], Cmp::Exact),
    (&["SET", "s", "v", "EX", "0"], Cmp::Exact),
    (&["SET", "s", "v", "EX", "-1"], Cmp::Exact),
    (&["SET", "s", "v", "PX", "9223372036854775807"], Cmp::Exact),
    (&["SET", "s", "v", "EX", "9223372036854775807"], Cmp::Exact),
    (&["SET", "s", "v", "EXAT", "9223372036854775"], Cmp::Exact),
    (&["SET", "s", "v2", "GET", "XX"], Cmp::Exact),
    (&["SET", "s", "v3", "GET", "NX"], Cmp::Exact),
    (&["GETEX", "s", "PERSIST", "EX", "10"], Cmp::Exact),
    (&["GETEX", "s", "EX", "0"], Cmp::Exact),
    (&["MSETNX", "a", "1", "a", "2"], Cmp::Exact),
    (&["MGET", "a", "nokey", "s"], Cmp::Exact),
    (&["LCS", "s", "a"], Cmp::Exact),
    (&["SET", "l1", "ohmytext"], Cmp::Exact),
    (&["SET", "l2", "mynewtext"], Cmp::Exact),
    (&["LCS", "l1", "l2"], Cmp::Exact),
    (&["LCS", "l1", "l2", "LEN"], Cmp::Exact),
    (
        &["LCS", "l1", "l2", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"],
        Cmp::Exact,
    ),
    (&["LCS", "l1", "l2", "LEN", "IDX"], Cmp::Exact),
    // keys
    (&["RENAME", "s", "s"], Cmp::Exact),
    (&["RENAME", "nokey", "x"], Cmp::Exact),
    (&["RENAMENX", "s", "s"], Cmp::Exact),
    (&["COPY", "s", "s"], Cmp::Exact),
    (&["COPY", "s", "s2", "DB", "1"], Cmp::Exact),
    (&["SET", "a*b", "1"], Cmp::Exact),
    (&["SET", "a?b", "1"], Cmp::Exact),
    (&["KEYS", "a\\*b"], Cmp::Unordered),
    (&["KEYS", "a[*?]b"], Cmp::Unordered),
    (&["KEYS", "a[!*]b"], Cmp::Unordered),
    (&["KEYS", "[^a]*"], Cmp::Unordered),
    (&["KEYS", "*[ab"], Cmp::Unordered),
    (&["EXPIRE", "s", "100", "NX", "XX"], Cmp::Exact),
    (&["EXPIRE", "s", "100", "GT", "LT"], Cmp::Exact),
    (&["EXPIRE", "s", "100", "NX", "GT"], Cmp::Exact),
    (&["EXPIRE", "s", "100", "GT"], Cmp::Exact),
    (&["EXPIRE", "s", "100", "LT"], Cmp::Exact),
    (&["TTL", "s"], Cmp::TtlSecs),
    (&["EXPIRE", "s", "50", "GT"], Cmp::Exact),
    (&["EXPIRE", "s", "9223372036854775807"], Cmp::Exact),
    (&["PEXPIRE", "s", "9223372036854775807"], Cmp::Exact),
    (&["EXPIREAT", "s", "9223372036854775807"], Cmp::Exact),
    (&["EXPIRE", "s", "-9223372036854775808"], Cmp::Exact),
    (&["PERSIST", "s"], Cmp::Exact),
    (&["TTL", "s"], Cmp::Exact),
    (&["TYPE", "s"], Cmp::Exact),
    (&["TYPE", "nokey"], Cmp::Exact),
    (&["SCAN", "x"], Cmp::Exact),
    (&["SCAN", "0", "COUNT", "0"], Cmp::Exact),
    (&["SCAN", "0", "MATCH"], Cmp::Exact),
    (&["SCAN", "18446744073709551616"], Cmp::Exact),
    (&["SCAN", "1.5"], Cmp::Exact),
    // databases
    (&["SELECT", "1"], Cmp::Exact),
    (&["SET", "indb1", "x"], Cmp::Exact),
    (&["MOVE", "indb1", "0"], Cmp::Exact),
    (&["MOVE", "indb1", "1"], Cmp::Exact),
    (&["MOVE", "indb1", "99"], Cmp::Exact),
    (&["SELECT", "0"], Cmp::Exact),
    (&["GET", "indb1"], Cmp::Exact),
    (&["SWAPDB", "0", "1"], Cmp::Exact),
    (&["DBSIZE"], Cmp::Exact),
    (&["SWAPDB", "0", "1"], Cmp::Exact),
    (&["SWAPDB", "0", "99"], Cmp::Exact),
    (&["FLUSHDB", "ASYNC"], Cmp::Exact),
    (&["FLUSHDB", "NOW"], Cmp::Exact),
    (&["DBSIZE"], Cmp::Exact),
    // hashes
    (&["HSET", "h", "f", "1.5", "g", "x"], Cmp::Exact),
    (&["HSET", "h", "f"], Cmp::Exact),
    (&["HINCRBYFLOAT", "h", "f", "0.1"], Cmp::Exact),
    (&["HINCRBYFLOAT", "h", "g", "1"], Cmp::Exact),
    (&["HINCRBY", "h", "f", "1"], Cmp::Exact),
    (&["HSET", "h", "p", "0.1"], Cmp::Exact),
    (&["HINCRBYFLOAT", "h", "p", "0.2"], Cmp::Exact),
    (&["HINCRBYFLOAT", "h", "x", "1e-18"], Cmp::Exact),
    (
        &["HINCRBYFLOAT", "h", "y", "123456789.123456789"],
        Cmp::Exact,
    ),
    (&["HINCRBYFLOAT", "h", "y", "nan"], Cmp::Exact),
    (&["HINCRBYFLOAT", "h", "y", "1e400"], Cmp::Exact),
    (&["HGETALL", "h"], Cmp::Pairs),
    (&["HGETALL", "nokey"], Cmp::Pairs),
    (&["HRANDFIELD", "nokey", "2"], Cmp::Exact),
    (&["HRANDFIELD", "h", "0"], Cmp::Exact),
    (&["HSCAN", "h", "0", "COUNT", "0"], Cmp::Exact),
    // sets
    (&["SADD", "st", "3", "1", "2"], Cmp::Exact),
    (&["SMEMBERS", "st"], Cmp::Unordered),
    (&["SMEMBERS", "nokey"], Cmp::Unordered),
    (&["SPOP", "nokey", "2"], Cmp::Exact),
    (&["SPOP", "st", "0"], Cmp::Exact),
    (&["SPOP", "st", "-1"], Cmp::Exact),
    (&["SRANDMEMBER", "nokey", "2"], Cmp::Exact),
    (&["SRANDMEMBER", "st", "0"], Cmp::Exact),
    (&["SINTERCARD", "0", "st"], Cmp::Exact),
    (&["SINTERCARD", "1", "st", "LIMIT", "-1"], Cmp::Exact),
    (&["SMOVE", "st", "st", "1"], Cmp::Exact),
    (&["SMOVE", "st", "s", "1"], Cmp::Exact),
    // sorted sets: double formatting in both protocols
    (
        &[
            "ZADD",
            "z",
            "0.1",
            "a",
            "1e-5",
            "b",
            "3e2",
            "c",
            "inf",
            "d",
            "-0",
            "e",
            "1.7976931348623157e308",
            "f",
        ],
        Cmp::Exact,
    ),
    (
        &[
            "ZADD",
            "z",
            "123456789012345678",
            "g",
            "-inf",
            "h",
            "0.30000000000000004",
            "i",
        ],
        Cmp::Exact,
    ),
    (&["ZRANGE", "z", "0", "-1", "WITHSCORES"], Cmp::Exact),
    (&["ZINCRBY", "z", "0.2", "a"], Cmp::Exact),
    (&["ZINCRBY", "z", "-inf", "d"], Cmp::Exact),
    (&["ZADD", "z", "INCR", "1", "b"], Cmp::Exact),
    (&["ZADD", "z", "NX", "INCR", "1", "b"], Cmp::Exact),
    (&["ZADD", "z", "GT", "NX", "1", "b"], Cmp::Exact),
    (&["ZADD", "z", "nan", "b"], Cmp::Exact),
    (&["ZADD", "z", "INCR", "1", "b", "2", "c"], Cmp::Exact),
    (&["ZSCORE", "z", "e"], Cmp::Exact),
    (&["ZMSCORE", "z", "a", "nope", "c"], Cmp::Exact),
    (
        &[
            "ZRANGEBYSCORE",
            "z",
            "(0",
            "+inf",
            "WITHSCORES",
            "LIMIT",
            "1",
            "2",
        ],
        Cmp::Exact,
    ),
    (&["ZRANGE", "z", "(1", "[z", "BYLEX"], Cmp::Exact),
    (
        &[
            "ZRANGE",
            "z",
            "+inf",
            "-inf",
            "BYSCORE",
            "REV",
            "WITHSCORES",
        ],
        Cmp::Exact,
    ),
    (&["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"], Cmp::Exact),
    (&["ZPOPMIN", "z", "2"], Cmp::Exact),
    (&["ZPOPMAX", "z"], Cmp::Exact),
    (&["ZPOPMIN", "nokey"], Cmp::Exact),
    (
        &["ZMPOP", "2", "nokey", "z", "MAX", "COUNT", "2"],
        Cmp::Exact,
    ),
    (
        &["ZUNIONSTORE", "zu", "2", "z", "st", "WEIGHTS", "2", "0.5"],
        Cmp::Exact,
    ),
    (&["ZRANGE", "zu", "0", "-1", "WITHSCORES"], Cmp::Exact),
    (
        &["ZINTER", "2", "z", "zu", "AGGREGATE", "MAX", "WITHSCORES"],
        Cmp::Exact,
    ),
    (&["ZRANDMEMBER", "nokey", "2"], Cmp::Exact),
    (&["ZRANDMEMBER", "z", "0", "WITHSCORES"], Cmp::Exact),
    // lists
    (&["RPUSH", "L", "a", "b", "c", "a"], Cmp::Exact),
    (&["LPOS", "L", "a", "RANK", "-1", "COUNT", "0"], Cmp::Exact),
    (&["LPOS", "L", "a", "RANK", "0"], Cmp::Exact),
    (
        &["LPOS", "L", "a", "RANK", "-9223372036854775808"],
        Cmp::Exact,
    ),
    (&["LINSERT", "L", "BEFORE", "nope", "x"], Cmp::Exact),
    (&["LINSERT", "nokey", "BEFORE", "a", "x"], Cmp::Exact),
    (&["LSET", "L", "10", "x"], Cmp::Exact),
    (&["LSET", "nokey", "0", "x"], Cmp::Exact),
    (&["LPOP", "L", "0"], Cmp::Exact),
    (&["LPOP", "nokey", "0"], Cmp::Exact),
    (&["LPOP", "nokey", "2"], Cmp::Exact),
    (&["RPOP", "L", "-1"], Cmp::Exact),
    (
        &["LMPOP", "2", "nokey", "L", "RIGHT", "COUNT", "10"],
        Cmp::Exact,
    ),
    (&["LMPOP", "1", "nokey", "LEFT"], Cmp::Exact),
    (&["LRANGE", "L", "0", "-1"], Cmp::Exact),
    // wrong types
    (&["SET", "str", "x"], Cmp::Exact),
    (&["LPUSH", "str", "x"], Cmp::Exact),
    (&["HGET", "str", "x"], Cmp::Exact),
    (&["SADD", "str", "x"], Cmp::Exact),
    (&["ZADD", "str", "1", "x"], Cmp::Exact),
    (&["INCR", "L"], Cmp::Exact),
    (&["GET", "L"], Cmp::Exact),
    (&["APPEND", "h", "x"], Cmp::Exact),
    (&["SINTERSTORE", "str", "nokey"], Cmp::Exact),
    (&["EXISTS", "str"], Cmp::Exact),
    // transactions
    (&["EXEC"], Cmp::Exact),
    (&["DISCARD"], Cmp::Exact),
    (&["MULTI"], Cmp::Exact),
    (&["SET", "t", "1"], Cmp::Exact),
    (&["INCR", "t"], Cmp::Exact),
    (&["LPUSH", "t", "x"], Cmp::Exact),
    (&["WATCH", "t"], Cmp::Exact),
    (&["MULTI"], Cmp::Exact),
    (&["EXEC"], Cmp::Exact),
    (&["MULTI"], Cmp::Exact),
    (&["GET", "t"], Cmp::Exact),
    (&["GET"], Cmp::Exact),
    (&["EXEC"], Cmp::Exact),
    (&["MULTI"], Cmp::Exact),
    (&["NOSUCH"], Cmp::Exact),
    (&["EXEC"], Cmp::Exact),
    (&["WATCH", "t"], Cmp::Exact),
    (&["UNWATCH"], Cmp::Exact),
    (&["MULTI"], Cmp::Exact),
    (&["SET", "t", "2"], Cmp::Exact),
    (&["EXEC", "extra"], Cmp::Exact),
    (&["DISCARD"], Cmp::Exact),
    (&["GET", "t"], Cmp::Exact),
    (&["MULTI"], Cmp::Exact),
    (&["DISCARD", "extra"], Cmp::Exact),
    (&["EXEC"], Cmp::Exact),
    // the examples of docs/compatibility.md "Differences found", so the
    // document stays true: option parsing order
    (&["FLUSHDB"], Cmp::Exact),
    (&["SET", "k", "v", "EX", "10", "EX", "20"], Cmp::Exact),
    (&["SET", "k", "v", "KEEPTTL", "KEEPTTL"], Cmp::Exact),
    (&["SET", "k", "v", "EX", "KEEPTTL", "EX", "100"], Cmp::Exact),
    (&["SET", "k", "v", "EX", "GET", "EX", "100"], Cmp::Exact),
    (&["SET", "k", "v", "EX", "abc", "BOGUS"], Cmp::Exact),
    (
        &["SET", "k", "v", "EX", "9223372036854775807", "BOGUS"],
        Cmp::Exact,
    ),
    (&["SET", "k", "v", "PX", "-5", "PX", "1000"], Cmp::Exact),
    (&["RPUSH", "l", "x"], Cmp::Exact),
    (
        &["SET", "l", "v", "GET", "EX", "10", "EX", "20"],
        Cmp::Exact,
    ),
    (&["GETEX", "nokey", "EX", "abc"], Cmp::Exact),
    (&["GETEX", "nokey", "EX", "0"], Cmp::Exact),
    (&["GETEX", "l", "EX", "abc"], Cmp::Exact),
    (&["GETEX", "l", "EX", "-1"], Cmp::Exact),
    (&["GETEX", "k", "PXAT", "x", "BOGUS"], Cmp::Exact),
    (&["GETEX", "k", "PXAT", "-3", "NX"], Cmp::Exact),
    // numbers
    (&["INCRBYFLOAT", "inc", "inf"], Cmp::Exact),
    (&["INCRBYFLOAT", "inc", "-inf"], Cmp::Exact),
    (&["INCRBYFLOAT", "l", "abc"], Cmp::Exact),
    (&["INCRBYFLOAT", "l", "inf"], Cmp::Exact),
    (&["SET", "inc", "1e3"], Cmp::Exact),
    (&["INCRBYFLOAT", "inc", "1e-5"], Cmp::Exact),
    (&["HINCRBYFLOAT", "l", "f", "inf"], Cmp::Exact),
    (
        &["INCRBYFLOAT", "huge", "1.7976931348623157e308"],
        Cmp::Exact,
    ),
    (
        &["INCRBYFLOAT", "huge", "1.7976931348623157e308"],
        Cmp::Exact,
    ),
    (&["SET", "huge", "1e400"], Cmp::Exact),
    (&["INCRBYFLOAT", "huge", "-1"], Cmp::Exact),
    (&["INCRBYFLOAT", "inc", "+inf"], Cmp::Exact),
    (&["SET", "notnum", "abc"], Cmp::Exact),
    (&["INCRBYFLOAT", "notnum", "+inf"], Cmp::Exact),
    (
        &["SET", "d", "1000000000000000000000000000000000000000.5"],
        Cmp::Exact,
    ),
    (&["INCRBYFLOAT", "d", "0"], Cmp::Exact),
    (
        &[
            "HSET",
            "hd",
            "f",
            "1000000000000000000000000000000000000000.5",
        ],
        Cmp::Exact,
    ),
    (&["HINCRBYFLOAT", "hd", "f", "0"], Cmp::Exact),
    // sorted sets: error precedence and texts
    (&["SET", "k", "v"], Cmp::Exact),
    (&["ZADD", "zz", "1", "m"], Cmp::Exact),
    (&["ZUNION", "2", "zz", "k", "AGGREGATE", "avg"], Cmp::Exact),
    (&["ZINTER", "2", "zz", "k", "WEIGHTS", "x", "1"], Cmp::Exact),
    (&["ZDIFF", "2", "zz", "k", "BOGUS"], Cmp::Exact),
    (
        &["ZUNIONSTORE", "d", "2", "zz", "k", "AGGREGATE", "avg"],
        Cmp::Exact,
    ),
    (&["ZINTERCARD", "2", "zz", "k", "WITHSCORES"], Cmp::Exact),
    (
        &["ZDIFFSTORE", "d", "2", "zz", "k", "WITHSCORES"],
        Cmp::Exact,
    ),
    (&["ZMPOP", "x", "zz", "MIN"], Cmp::Exact),
    (&["ZMPOP", "1", "zz", "MIN", "COUNT", "x"], Cmp::Exact),
    (&["ZSCAN", "nokey", "0", "COUNT", "x"], Cmp::Exact),
    (&["ZSCAN", "nokey", "0", "COUNT"], Cmp::Exact),
    (&["ZSCAN", "k", "0", "COUNT", "x"], Cmp::Exact),
    (&["ZSCAN", "zz", "0", "MATCH", "*", "1"], Cmp::Exact),
    (&["ZSCAN", "zz", ""], Cmp::Scan),
    (
        &["ZRANDMEMBER", "zz", "x", "WITHSCORES", "WITHSCORES"],
        Cmp::Exact,
    ),
    (&["HSCAN", "nokey", "0", "COUNT", "x"], Cmp::Exact),
    (&["SSCAN", "k", "0", "COUNT", "x"], Cmp::Exact),
    (&["SCAN", ""], Cmp::Scan),
    // bitmaps: the offset limit follows proto-max-bulk-len
    (&["GETBIT", "bm", "4294967295"], Cmp::Exact),
    (&["SETBIT", "bm", "4294967296", "1"], Cmp::Exact),
    (&["BITFIELD", "bm", "GET", "i64", "#67108864"], Cmp::Exact),
    (&["BITFIELD", "bm", "GET", "i64", "#67108863"], Cmp::Exact),
    (
        &["BITFIELD", "bm", "GET", "u8", "#9223372036854775807"],
        Cmp::Exact,
    ),
    (
        &["CONFIG", "SET", "proto-max-bulk-len", "1048576"],
        Cmp::Exact,
    ),
    (&["SETBIT", "bm", "8388607", "1"], Cmp::Exact),
    (&["SETBIT", "bm", "8388608", "1"], Cmp::Exact),
    (&["GETBIT", "bm", "8388608"], Cmp::Exact),
    (
        &["BITFIELD", "bm", "SET", "u8", "#1048575", "255"],
        Cmp::Exact,
    ),
    (
        &["BITFIELD", "bm", "SET", "u8", "#1048576", "255"],
        Cmp::Exact,
    ),
    (
        &["BITFIELD", "bm", "INCRBY", "u2", "8388606", "1"],
        Cmp::Exact,
    ),
    (
        &["BITFIELD", "bm", "INCRBY", "u2", "8388607", "1"],
        Cmp::Exact,
    ),
    (&["SETRANGE", "sr", "1048575", "a"], Cmp::Exact),
    (&["SETRANGE", "sr", "1048576", "a"], Cmp::Exact),
    (&["APPEND", "sr", "b"], Cmp::Exact),
    (&["DEL", "sr"], Cmp::Exact),
    (
        &["CONFIG", "SET", "proto-max-bulk-len", "536870912"],
        Cmp::Exact,
    ),
    (&["STRLEN", "bm"], Cmp::Exact),
    (&["BITCOUNT", "bm"], Cmp::Exact),
    (&["BITCOUNT", "bm", "-1", "-1"], Cmp::Exact),
    (&["BITCOUNT", "bm", "0", "-1", "BIT"], Cmp::Exact),
    (&["BITPOS", "bm", "1"], Cmp::Exact),
    (&["BITPOS", "bm", "0", "-1"], Cmp::Exact),
    (&["BITPOS", "bm", "1", "-1", "-1", "BIT"], Cmp::Exact),
    (&["BITOP", "NOT", "bm2", "bm"], Cmp::Exact),
    (&["BITCOUNT", "bm2"], Cmp::Exact),
    (&["BITOP", "AND", "bm3", "bm", "bm2", "nokey"], Cmp::Exact),
    (&["BITCOUNT", "bm3"], Cmp::Exact),
    (&["BITOP", "XOR", "bm3", "nokey"], Cmp::Exact),
    (&["EXISTS", "bm3"], Cmp::Exact),
    (&["SET", "ib", "12345"], Cmp::Exact),
    (&["SETBIT", "ib", "2", "1"], Cmp::Exact),
    (&["GET", "ib"], Cmp::Exact),
    (&["SET", "ib", "-7"], Cmp::Exact),
    (
        &[
            "BITFIELD", "ib", "GET", "u16", "0", "INCRBY", "i8", "8", "1",
        ],
        Cmp::Exact,
    ),
    (&["GET", "ib"], Cmp::Exact),
    (
        &[
            "BITFIELD", "nobf", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "5",
        ],
        Cmp::Exact,
    ),
    (&["EXISTS", "nobf"], Cmp::Exact),
    (&["BITFIELD", "nobf"], Cmp::Exact),
    (
        &[
            "BITFIELD_RO",
            "nobf",
            "GET",
            "u8",
            "0",
            "SET",
            "u8",
            "0",
            "1",
        ],
        Cmp::Exact,
    ),
    (&["BITFIELD_RO", "nobf", "GET", "u8"], Cmp::Exact),
    (
        &["BITFIELD", "nobf", "GET", "u8", "0", "OVERFLOW"],
        Cmp::Exact,
    ),
    (&["BITCOUNT", "bm", "-13", "-61", "BITS"], Cmp::Exact),
    (&["BITCOUNT", "bm", "-61", "-13", "BITS"], Cmp::Exact),
    (&["BITPOS", "nokey", "1", "x"], Cmp::Exact),
    (&["BITCOUNT", "nokey", "x"], Cmp::Exact),
    (&["SET", "empty", ""], Cmp::Exact),
    (&["BITPOS", "empty", "0"], Cmp::Exact),
    (&["BITCOUNT", "empty", "0", "-1"], Cmp::Exact),
    (&["BITOP", "OR", "bm4", "empty"], Cmp::Exact),
    (&["LPUSH", "bl", "a"], Cmp::Exact),
    (&["SETBIT", "bl", "0", "1"], Cmp::Exact),
    (&["BITOP", "OR", "bm4", "bm", "bl"], Cmp::Exact),
    // Sources longer than BITOP's 64 KiB chunk, of unequal lengths, with
    // an integer-encoded one and a missing one.
    (&["SETBIT", "bbig1", "1200001", "1"], Cmp::Exact),
    (
        &["SETRANGE", "bbig1", "65530", "abcdefghijklmnop"],
        Cmp::Exact,
    ),
    (&["SETRANGE", "bbig1", "131070", "qrstuvwxyz"], Cmp::Exact),
    (&["SETBIT", "bbig2", "600007", "1"], Cmp::Exact),
    (&["SETRANGE", "bbig2", "65533", "ZYXWVUTSRQ"], Cmp::Exact),
    (&["SET", "bint", "987654321"], Cmp::Exact),
    (&["BITOP", "AND", "bbig3", "bbig1", "bbig2"], Cmp::Exact),
    (&["GET", "bbig3"], Cmp::Exact),
    (
        &["BITOP", "OR", "bbig3", "bbig2", "bint", "bbig1"],
        Cmp::Exact,
    ),
    (&["GET", "bbig3"], Cmp::Exact),
    (
        &["BITOP", "XOR", "bbig3", "bint", "bbig1", "nokey", "bbig2"],
        Cmp::Exact,
    ),
    (&["GET", "bbig3"], Cmp::Exact),
    (&["BITOP", "NOT", "bbig3", "bbig1"], Cmp::Exact),
    (&["GET", "bbig3"], Cmp::Exact),
    (&["BITOP", "AND", "bbig3", "bint", "bbig2"], Cmp::Exact),
    (&["GET", "bbig3"], Cmp::Exact),
    // HyperLogLog: representation, promotion, cache, damaged values
    (&["PFADD", "hl"], Cmp::Exact),
    (&["GET", "hl"], Cmp::Exact),
    (&["PFADD", "hl", "a", "b", "c", "d", "e"], Cmp::Exact),
    (&["GET", "hl"], Cmp::Exact),
    (&["PFCOUNT", "hl"], Cmp::Exact),
    (&["GET", "hl"], Cmp::Exact),
    (&["PFADD", "hl", "a"], Cmp::Exact),
    (&["GET", "hl"], Cmp::Exact),
    (&["PFDEBUG", "DECODE", "hl"], Cmp::Exact),
    (&["PFDEBUG", "ENCODING", "hl"], Cmp::Exact),
    (&["PFDEBUG", "encoding", "hl", "x"], Cmp::Exact),
    (&["PFDEBUG", "nosuch", "hl"], Cmp::Exact),
    (&["PFDEBUG", "nosuch", "nokey"], Cmp::Exact),
    (&["PFDEBUG", "GETREG", "hl"], Cmp::Exact),
    (&["PFDEBUG", "ENCODING", "hl"], Cmp::Exact),
    (&["PFDEBUG", "TODENSE", "hl"], Cmp::Exact),
    (&["PFDEBUG", "DECODE", "hl"], Cmp::Exact),
    (&["GET", "hl"], Cmp::Exact),
    (&["PFCOUNT", "hl", "nokey"], Cmp::Exact),
    (&["PFMERGE", "hm", "nokey"], Cmp::Exact),
    (&["GET", "hm"], Cmp::Exact),
    (&["PFMERGE", "hm", "hl"], Cmp::Exact),
    (&["GET", "hm"], Cmp::Exact),
    (&["CONFIG", "SET", "hll-sparse-max-bytes", "30"], Cmp::Exact),
    (&["CONFIG", "GET", "hll-sparse-max-bytes"], Cmp::Exact),
    (
        &["PFADD", "hs", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        Cmp::Exact,
    ),
    (&["PFDEBUG", "ENCODING", "hs"], Cmp::Exact),
    (
        &[
            "PFADD", "hs", "10", "11", "12", "13", "14", "15", "16", "17",
        ],
        Cmp::Exact,
    ),
    (&["PFDEBUG", "ENCODING", "hs"], Cmp::Exact),
    (&["GET", "hs"], Cmp::Exact),
    (
        &["CONFIG", "SET", "hll-sparse-max-bytes", "1kb"],
        Cmp::Exact,
    ),
    (&["CONFIG", "GET", "hll-sparse-max-bytes"], Cmp::Exact),
    (
        &["CONFIG", "SET", "hll-sparse-max-bytes", "3000"],
        Cmp::Exact,
    ),
    (&["SET", "hx", "HYLL"], Cmp::Exact),
    (&["PFCOUNT", "hx"], Cmp::Exact),
    (&["PFADD", "hx", "a"], Cmp::Exact),
    (
        &[
            "SET",
            "hx",
            "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ],
        Cmp::Exact,
    ),
    (&["SET", "hx", "12345"], Cmp::Exact),
    (&["PFCOUNT", "hx"], Cmp::Exact),
    (&["PFMERGE", "hx", "hl"], Cmp::Exact),
    (&["LPUSH", "hlist", "a"], Cmp::Exact),
    (&["PFCOUNT", "hl", "hlist"], Cmp::Exact),
    (&["PFADD", "hlist", "a"], Cmp::Exact),
    (&["PFDEBUG", "ENCODING", "hlist"], Cmp::Exact),
    // A sparse HLL whose runs cover too few registers (APPEND keeps the
    // header valid and adds a VAL opcode; SETRANGE cuts a run short).
    (&["PFADD", "hc", "x"], Cmp::Exact),
    (&["SETRANGE", "hc", "16", "\x40"], Cmp::Exact),
    (&["PFCOUNT", "hc"], Cmp::Exact),
    (&["PFADD", "hc", "y", "z"], Cmp::Exact),
    (&["PFMERGE", "hd", "hc"], Cmp::Exact),
    (&["PFCOUNT", "hc", "hl"], Cmp::Exact),
    (&["PFDEBUG", "GETREG", "hc"], Cmp::Exact),
    (&["PFDEBUG", "DECODE", "hc"], Cmp::Exact),
    (&["PFADD", "hc2", "x"], Cmp::Exact),
    (&["APPEND", "hc2", "\u{80}"], Cmp::Exact),
    (&["PFCOUNT", "hc2"], Cmp::Exact),
    (&["PFADD", "hc2", "a", "b", "c"], Cmp::Exact),
    (&["GET", "hc2"], Cmp::Exact),
    (&["PFSELFTEST", "x"], Cmp::Exact),
];

/// HyperLogLogs fed the same random elements on both servers: PFCOUNT,
/// the raw bytes (GET), the encoding, unions and merges compared at
/// checkpoints up to 100,000 elements (10^6 in the full run,
/// `CAIRN_QUICK=0`), with the default `hll-sparse-max-bytes` and a small
/// one, half the keys over RESP3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyperloglog_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("hyperloglog_matches_redis").await? else {
        return Ok(());
    };
    if !implemented(&mut Conn::connect(cairn.addr()).await?, "pfadd").await? {
        println!("skipped: hyperloglog_matches_redis: cairn has no PFADD");
        cairn.shutdown().await?;
        return Ok(());
    }
    let seed: u64 = env_parse("CAIRN_DIFF_SEED").unwrap_or_else(rand::random);
    println!("hyperloglog_matches_redis: seed={seed} (replay with CAIRN_DIFF_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let salt: u64 = rng.random();
    let full = std::env::var("CAIRN_QUICK").is_ok_and(|v| v == "0");
    let largest: usize = if full { 1_000_000 } else { 100_000 };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), seed).await?;
    let mut compared = 0usize;
    for (round, sparse_max) in ["3000", "200"].into_iter().enumerate() {
        duo.both(
            false,
            &v!["CONFIG", "SET", "hll-sparse-max-bytes", sparse_max],
        )
        .await?;
        let resp3 = round == 1;
        let key = format!("hll{round}");
        let mut added = 0usize;
        let mut checkpoint = 1usize;
        while checkpoint <= largest {
            // Elements: mostly new, some repeated, some binary.
            while added < checkpoint {
                let n = (checkpoint - added).min(1000);
                let mut cmd = v!["PFADD", key.clone()];
                for j in 0..n {
                    let i = if added > 0 && rng.random_bool(0.05) {
                        rng.random_range(0..added)
                    } else {
                        added + j
                    };
                    cmd.push(format!("{salt:x}:{i}"));
                }
                added += n;
                let (r, c) = duo.both(resp3, &cmd).await?;
                compared += 1;
                if r != c {
                    duo.record(added, resp3, &cmd[..3], &r, &c, "PFADD reply");
                }
            }
            let other = format!("hll{}", 1 - round);
            for cmd in [
                v!["PFCOUNT", key.clone()],
                v!["GET", key.clone()],
                v!["PFDEBUG", "ENCODING", key.clone()],
                v!["PFCOUNT", key.clone(), other.clone(), "nokey"],
                v!["PFMERGE", format!("m{round}"), key.clone(), other.clone()],
                v!["GET", format!("m{round}")],
                v!["PFCOUNT", format!("m{round}")],
            ] {
                let (r, c) = duo.both(resp3, &cmd).await?;
                compared += 1;
                if r != c {
                    duo.record(checkpoint, resp3, &cmd, &r, &c, "after adding elements");
                }
            }
            checkpoint = if checkpoint < 10 {
                checkpoint + 3
            } else {
                checkpoint * 4
            };
        }
    }
    // A value Redis wrote, stored as is on cairn, counts the same.
    let (r, _) = duo.both(false, &v!["GET", "hll0"]).await?;
    if let Some(bytes) = r.as_bytes() {
        let set: Vec<Vec<u8>> = vec![b"SET".to_vec(), b"copied".to_vec(), bytes.to_vec()];
        duo.cairn.resp2.call(&set).await?;
        duo.redis.resp2.call(&set).await?;
        let (r, c) = duo.both(false, &v!["PFCOUNT", "copied", "hll1"]).await?;
        compared += 1;
        if r != c {
            duo.record(
                0,
                false,
                &v!["PFCOUNT", "copied", "hll1"],
                &r,
                &c,
                "copied value",
            );
        }
    }
    duo.both(false, &v!["CONFIG", "SET", "hll-sparse-max-bytes", "3000"])
        .await?;
    println!(
        "hyperloglog_matches_redis: {compared} comparisons up to {largest} elements, {} differences",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// Raw requests, compared with the connection's fate: a protocol error
/// gets an error reply and Redis closes the connection.
const RAW: &[&[u8]] = &[
    b"PING\r\n",
    b"SET inline \"a b\\x41\"\r\nGET inline\r\n",
    b"ECHO 'it''s'\r\n",
    b"\r\nPING\r\n",
    b"   \r\nPING\r\n",
    b"ECHO \"unbalanced\r\n",
    b"*1\r\n$abc\r\n",
    b"*abc\r\n",
    b"*1\r\n+PING\r\n",
    b"*-1\r\nPING\r\n",
    b"*0\r\nPING\r\n",
    b"*1\r\n$4\r\nPINGxx\r\n",
    b"*1\r\n$-1\r\n",
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*3000000000\r\n",
    b"*1\r\n$600000000\r\n",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_cases_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("fixed_cases_match_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    duo.resync_on_mismatch = false;
    let mut have: BTreeMap<String, bool> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    let mut ran = 0;
    for resp3 in [false, true] {
        duo.both(resp3, &v!["FLUSHALL"]).await?;
        for (i, (case, cmp)) in FIXED.iter().enumerate() {
            let name = case.first().copied().unwrap_or_default().to_lowercase();
            let known = match have.get(&name) {
                Some(k) => *k,
                None => {
                    // Unknown names are cases too: they test the error.
                    // Asked on the spare connections: the case
                    // connections may be inside MULTI, where COMMAND
                    // INFO would be queued.
                    let k = implemented(&mut duo.cairn.other, &name).await?
                        || !implemented(&mut duo.redis.other, &name).await?;
                    have.insert(name.clone(), k);
                    k
                }
            };
            if !known {
                skipped.insert(name);
                continue;
            }
            let cmd: Vec<String> = case.iter().map(|a| (*a).to_owned()).collect();
            duo.check(i, resp3, &cmd, *cmp).await?;
            ran += 1;
        }
        // A transaction left open by a failed case must not leak into the
        // next protocol's pass.
        duo.both(resp3, &v!["DISCARD"]).await?;
    }
    if !skipped.is_empty() {
        println!(
            "fixed cases skipped, cairn lacks: {}",
            skipped.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }

    // Not compared byte for byte: both answer, and with the same kind.
    for (probe, why) in NOT_COMPARED {
        let name = probe.first().copied().unwrap_or_default().to_lowercase();
        if !implemented(&mut duo.cairn.resp2, &name).await? {
            println!(
                "not compared, and not in cairn yet: {} ({why})",
                probe.join(" ")
            );
            continue;
        }
        let cmd: Vec<String> = probe.iter().map(|a| (*a).to_owned()).collect();
        duo.both(false, &v!["SET", "nc", "v"]).await?;
        let (r, c) = duo.both(false, &cmd).await?;
        let kind = |x: &Reply| std::mem::discriminant(x);
        if r.is_error() != c.is_error() || (!r.is_error() && kind(&r) != kind(&c)) {
            duo.record(
                0,
                false,
                &cmd,
                &r,
                &c,
                &format!("not compared byte for byte ({why}), but the reply kind differs"),
            );
        }
        duo.both(false, &v!["HELLO", "2"]).await?;
    }

    // HELLO's map: the same fields, and the same values where they are
    // not server-specific (server, version and id are).
    for proto in ["3", "2"] {
        let cmd = v!["HELLO", proto];
        let (r, c) = duo.both(false, &cmd).await?;
        let fields = |x: &Reply| -> Vec<(String, Reply)> {
            let pairs: Vec<(Reply, Reply)> = match x {
                Reply::Map(p) => p.clone(),
                Reply::Array(v) => v
                    .chunks(2)
                    .filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone())))
                    .collect(),
                _ => Vec::new(),
            };
            pairs
                .into_iter()
                .filter_map(|(k, v)| leaf_text(&k).map(|k| (k, v)))
                .map(|(k, v)| {
                    let keep = !matches!(k.as_str(), "server" | "version" | "id");
                    (k, if keep { v } else { Reply::Null })
                })
                .collect()
        };
        if r.is_error() || fields(&r) != fields(&c) {
            duo.record(
                0,
                false,
                &cmd,
                &r,
                &c,
                "HELLO fields differ (server, version, id not compared)",
            );
        }
        ran += 1;
    }

    for raw in RAW {
        let mut rc = Conn::connect(redis.addr()).await?;
        let mut cc = Conn::connect(cairn.addr()).await?;
        rc.send_raw(raw).await?;
        cc.send_raw(raw).await?;
        let shown = String::from_utf8_lossy(raw).into_owned();
        // Requests that produce no reply are followed by a PING above, so
        // every case expects at least one reply; a second one for the
        // two-command case.
        let expected = if raw.starts_with(b"SET inline") { 2 } else { 1 };
        for _ in 0..expected {
            let r = rc.read_reply().await?;
            let c = tokio::time::timeout(Duration::from_secs(5), cc.read_reply()).await;
            let c = match c {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => Reply::Error(format!("(client) {e}")),
                Err(_) => Reply::Error("(client) no reply within 5 s".into()),
            };
            let cmd = v![format!("raw {shown:?}")];
            if r != c {
                duo.record(0, false, &cmd, &r, &c, "raw request answered differently");
            } else if r.to_string().contains("Protocol error") {
                let r_closed = rc.closed_within(Duration::from_secs(2)).await?;
                let c_closed = cc
                    .closed_within(Duration::from_secs(2))
                    .await
                    .unwrap_or(false);
                if r_closed != c_closed {
                    duo.record(
                        0,
                        false,
                        &cmd,
                        &r,
                        &c,
                        &format!("redis closed: {r_closed}, cairn closed: {c_closed}"),
                    );
                }
            }
            ran += 1;
        }
    }
    println!(
        "fixed cases: {ran} compared, {} mismatches",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

// ---------------------------------------------------------------------------
// The comparison itself

#[cfg(test)]
mod comparison {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn unordered_ignores_order_but_not_type_or_content() {
        let a = Reply::Set(vec![bulk("a"), bulk("b")]);
        let b = Reply::Set(vec![bulk("b"), bulk("a")]);
        assert_eq!(plain_diff(&a, &b, Cmp::Unordered), None);
        assert!(plain_diff(&a, &b, Cmp::Exact).is_some());
        let arr = Reply::Array(vec![bulk("a"), bulk("b")]);
        assert!(
            plain_diff(&a, &arr, Cmp::Unordered).is_some(),
            "a RESP3 set is not an array"
        );
        let dup = Reply::Set(vec![bulk("a"), bulk("a")]);
        assert!(plain_diff(&a, &dup, Cmp::Unordered).is_some());
    }

    #[test]
    fn pairs_keep_fields_with_their_values() {
        let a = Reply::Array(vec![bulk("f"), bulk("1"), bulk("g"), bulk("2")]);
        let b = Reply::Array(vec![bulk("g"), bulk("2"), bulk("f"), bulk("1")]);
        let swapped = Reply::Array(vec![bulk("f"), bulk("2"), bulk("g"), bulk("1")]);
        assert_eq!(plain_diff(&a, &b, Cmp::Pairs), None);
        assert!(plain_diff(&a, &swapped, Cmp::Pairs).is_some());
        let m1 = Reply::Map(vec![(bulk("f"), bulk("1")), (bulk("g"), bulk("2"))]);
        let m2 = Reply::Map(vec![(bulk("g"), bulk("2")), (bulk("f"), bulk("1"))]);
        assert_eq!(plain_diff(&m1, &m2, Cmp::Pairs), None);
    }

    #[test]
    fn doubles_compare_as_written() {
        let a = Reply::Double("1.5".into());
        assert!(plain_diff(&a, &Reply::Double("1.50".into()), Cmp::Exact).is_some());
        assert!(plain_diff(&a, &bulk("1.5"), Cmp::Exact).is_some());
    }

    #[test]
    fn ttls_have_a_tolerance_but_sentinels_do_not() {
        let ttl = |n| Reply::Integer(n);
        assert_eq!(plain_diff(&ttl(100), &ttl(99), Cmp::TtlSecs), None);
        assert!(plain_diff(&ttl(100), &ttl(90), Cmp::TtlSecs).is_some());
        assert_eq!(
            plain_diff(&ttl(100_000), &ttl(99_100), Cmp::TtlMillis),
            None
        );
        assert!(plain_diff(&ttl(-1), &ttl(-2), Cmp::TtlSecs).is_some());
        assert!(plain_diff(&ttl(-1), &ttl(0), Cmp::TtlSecs).is_some());
        assert!(plain_diff(&ttl(5), &Reply::Error("ERR".into()), Cmp::TtlSecs).is_some());
    }

    #[test]
    fn sample_shapes_see_types_and_lengths() {
        let a = Reply::Array(vec![bulk("x"), bulk("y")]);
        let b = Reply::Array(vec![bulk("z"), bulk("w")]);
        assert_eq!(shape(&a), shape(&b));
        assert_ne!(shape(&a), shape(&Reply::Array(vec![bulk("x")])));
        assert_ne!(shape(&a), shape(&Reply::Set(vec![bulk("x"), bulk("y")])));
        let pairs = Reply::Array(vec![Reply::Array(vec![
            bulk("m"),
            Reply::Double("1".into()),
        ])]);
        let flat = Reply::Array(vec![bulk("m"), bulk("1")]);
        assert_ne!(shape(&pairs), shape(&flat));
    }

    #[test]
    fn known_differences_match_by_command_and_reply() {
        // The list is empty: nothing may be excused.
        assert!(known_difference(&v!["INCRBYFLOAT", "k", "1"], &bulk("x")).is_none());
    }

    #[test]
    fn the_generator_replays_from_its_seed() {
        let run = |seed| {
            let mut g = G {
                rng: StdRng::seed_from_u64(seed),
                step: 7,
                t0_ms: 1_000_000,
                home: KEYS,
            };
            templates()
                .iter()
                .map(|t| (t.generate)(&mut g))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}

// ---------------------------------------------------------------------------
// Pub/sub

/// Reads one reply, giving up after a while: a server that never sends an
/// expected message must fail the comparison, not hang the suite.
async fn reply_within(conn: &mut Conn, patience: Duration) -> Reply {
    match tokio::time::timeout(patience, conn.read_reply()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Reply::Error(format!("(client) {e}")),
        Err(_) => Reply::Error(format!("(client) no reply within {patience:?}")),
    }
}

/// How long a pub/sub message may take to arrive.
const PUBSUB_PATIENCE: Duration = Duration::from_secs(3);
/// How long a blocked client may take to be served: the longest timeout
/// in the scenarios is 100 ms, so a second means it was never woken.
const BLOCKING_PATIENCE: Duration = Duration::from_secs(1);

/// Subscriptions, messages, pattern messages, the subscribed-mode rules
/// and PUBSUB introspection, in RESP2 (arrays) and RESP3 (push frames).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("pubsub_matches_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    for name in ["subscribe", "publish", "psubscribe", "pubsub"] {
        if !implemented(&mut duo.cairn.resp2, name).await? {
            println!("pubsub_matches_redis: skipped, cairn has no {name} yet");
            cairn.shutdown().await?;
            return Ok(());
        }
    }
    // (subscriber sends?, command, replies expected on the subscriber)
    // Each UNSUBSCRIBE names one channel: with several, Redis answers in
    // its dict's order, which is not part of the contract.
    let script: &[(bool, &[&str], usize, Cmp)] = &[
        (true, &["SUBSCRIBE", "a", "b"], 2, Cmp::Exact),
        (true, &["SUBSCRIBE", "a"], 1, Cmp::Exact),
        (true, &["PSUBSCRIBE", "n*", "h?llo"], 2, Cmp::Exact),
        (false, &["PUBLISH", "a", "hello"], 0, Cmp::Exact),
        (false, &["PUBLISH", "nx", "x"], 0, Cmp::Exact),
        (false, &["PUBLISH", "zzz", "y"], 0, Cmp::Exact),
        (false, &["PUBLISH", "hello", ""], 0, Cmp::Exact),
        (true, &[], 3, Cmp::Exact),
        (false, &["PUBSUB", "CHANNELS"], 0, Cmp::Unordered),
        (false, &["PUBSUB", "CHANNELS", "a*"], 0, Cmp::Unordered),
        (false, &["PUBSUB", "NUMSUB", "a", "b", "c"], 0, Cmp::Exact),
        (false, &["PUBSUB", "NUMPAT"], 0, Cmp::Exact),
        (true, &["PING"], 1, Cmp::Exact),
        (true, &["PING", "x"], 1, Cmp::Exact),
        (true, &["GET", "k"], 1, Cmp::Exact),
        (true, &["UNSUBSCRIBE", "a"], 1, Cmp::Exact),
        (true, &["UNSUBSCRIBE", "nosuch"], 1, Cmp::Exact),
        (true, &["PUNSUBSCRIBE", "n*"], 1, Cmp::Exact),
        (true, &["UNSUBSCRIBE", "b"], 1, Cmp::Exact),
        (true, &["PUNSUBSCRIBE", "h?llo"], 1, Cmp::Exact),
        (true, &["UNSUBSCRIBE"], 1, Cmp::Exact),
        (true, &["PUNSUBSCRIBE"], 1, Cmp::Exact),
        (true, &["GET", "k"], 1, Cmp::Exact),
        (false, &["PUBLISH", "a", "nobody"], 0, Cmp::Exact),
        (true, &["SUBSCRIBE"], 1, Cmp::Exact),
    ];
    let mut compared = 0;
    for resp3 in [false, true] {
        let mut subs = Vec::new();
        for addr in [redis.addr(), cairn.addr()] {
            subs.push(if resp3 {
                Conn::connect_resp3(addr).await?
            } else {
                Conn::connect(addr).await?
            });
        }
        let [mut rs, mut cs]: [Conn; 2] = subs
            .try_into()
            .map_err(|_| anyhow::anyhow!("two connections"))?;
        for (i, (on_sub, cmd, replies, cmp)) in script.iter().enumerate() {
            let cmd: Vec<String> = cmd.iter().map(|a| (*a).to_owned()).collect();
            if !on_sub {
                let (r, c) = duo.both_other(&cmd).await?;
                if let Some(why) = plain_diff(&r, &c, *cmp) {
                    duo.record(i, false, &cmd, &r, &c, &why);
                }
                compared += 1;
                continue;
            }
            if !cmd.is_empty() {
                rs.send(&cmd).await?;
                cs.send(&cmd).await?;
            }
            for _ in 0..*replies {
                let r = reply_within(&mut rs, PUBSUB_PATIENCE).await;
                let c = reply_within(&mut cs, PUBSUB_PATIENCE).await;
                let shown = if cmd.is_empty() {
                    v!["(messages)"]
                } else {
                    cmd.clone()
                };
                if let Some(why) = plain_diff(&r, &c, *cmp) {
                    duo.record(i, resp3, &shown, &r, &c, &why);
                }
                compared += 1;
            }
        }
    }
    println!(
        "pubsub: {compared} replies compared, {} mismatches",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// CLIENT REPLY OFF/SKIP, which answer nothing: each step sends its
/// commands together on one connection (or one command on the second
/// client) and compares the replies that should come, in both protocols.
/// Every step ends with a command that must answer, so a reply that should
/// have been dropped shifts the comparison and shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("client_reply_matches_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    // (on the main connection?, commands sent together, replies expected)
    let script: &[(bool, &[&[&str]], usize)] = &[
        (true, &[&["CLIENT", "REPLY", "ON"]], 1),
        (
            true,
            &[
                &["CLIENT", "REPLY", "OFF"],
                &["SET", "cr", "v"],
                &["GET"],
                &["NOSUCH"],
                &["CLIENT", "REPLY", "FOO"],
                &["PING"],
                &["client", "reply", "oN"],
                &["GET", "cr"],
            ],
            2,
        ),
        (
            true,
            &[&["CLIENT", "REPLY", "SKIP"], &["PING", "a"], &["PING", "b"]],
            1,
        ),
        (
            true,
            &[
                &["CLIENT", "REPLY", "SKIP"],
                &["CLIENT", "REPLY", "SKIP"],
                &["PING", "c"],
                &["PING", "d"],
            ],
            1,
        ),
        (
            true,
            &[
                &["CLIENT", "REPLY", "SKIP"],
                &["CLIENT", "REPLY", "ON"],
                &["PING", "e"],
            ],
            2,
        ),
        (
            true,
            &[
                &["CLIENT", "REPLY", "SKIP"],
                &["NOSUCH"],
                &["CLIENT", "REPLY", "SKIP"],
                &["GET"],
                &["CLIENT", "REPLY", "SKIP"],
                &["CLIENT", "REPLY", "X"],
                &["PING", "f"],
            ],
            1,
        ),
        (
            true,
            &[
                &["CLIENT", "REPLY", "OFF"],
                &["CLIENT", "REPLY", "SKIP"],
                &["PING", "g"],
                &["CLIENT", "REPLY", "ON"],
                &["PING", "h"],
            ],
            2,
        ),
        (
            true,
            &[
                &["CLIENT", "REPLY", "OFF"],
                &["BLPOP", "cr:none", "0.01"],
                &["CLIENT", "REPLY", "ON"],
            ],
            1,
        ),
        // Pushes are written under OFF: confirmations and messages.
        (
            true,
            &[
                &["CLIENT", "REPLY", "OFF"],
                &["SUBSCRIBE", "cr:ch", "cr:ch2"],
            ],
            2,
        ),
        (false, &[&["PUBLISH", "cr:ch", "m"]], 1),
        (true, &[], 1),
        // RESET turns replies back on (and returns to RESP2)...
        (true, &[&["RESET"]], 1),
        (
            true,
            &[&["CLIENT", "REPLY", "OFF"], &["RESET"], &["PING", "i"]],
            2,
        ),
        // ... but a SKIP still covers it.
        (
            true,
            &[&["CLIENT", "REPLY", "SKIP"], &["RESET"], &["PING", "j"]],
            1,
        ),
    ];
    let mut compared = 0;
    for resp3 in [false, true] {
        let (mut rs, mut cs) = if resp3 {
            (
                Conn::connect_resp3(redis.addr()).await?,
                Conn::connect_resp3(cairn.addr()).await?,
            )
        } else {
            (
                Conn::connect(redis.addr()).await?,
                Conn::connect(cairn.addr()).await?,
            )
        };
        for (i, (main, cmds, replies)) in script.iter().enumerate() {
            let shown: Vec<String> = if cmds.is_empty() {
                v!["(messages)"]
            } else {
                // The commands one after the other, separated by `;`.
                let mut all = Vec::new();
                for c in cmds.iter() {
                    if !all.is_empty() {
                        all.push(";".to_owned());
                    }
                    all.extend(c.iter().map(|a| (*a).to_owned()));
                }
                all
            };
            if !main {
                for cmd in cmds.iter() {
                    let cmd: Vec<String> = cmd.iter().map(|a| (*a).to_owned()).collect();
                    let (r, c) = duo.both_other(&cmd).await?;
                    if let Some(why) = plain_diff(&r, &c, Cmp::Exact) {
                        duo.record(i, false, &cmd, &r, &c, &why);
                    }
                    compared += 1;
                }
                continue;
            }
            for cmd in cmds.iter() {
                rs.send(cmd).await?;
                cs.send(cmd).await?;
            }
            for _ in 0..*replies {
                let r = reply_within(&mut rs, PUBSUB_PATIENCE).await;
                let c = reply_within(&mut cs, PUBSUB_PATIENCE).await;
                if let Some(why) = plain_diff(&r, &c, Cmp::Exact) {
                    duo.record(i, resp3, &shown, &r, &c, &why);
                }
                compared += 1;
            }
        }
    }
    println!(
        "client reply: {compared} replies compared, {} mismatches",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

// ---------------------------------------------------------------------------
// Blocking commands

/// One step of a blocking scenario, on client 0 (the waiter) or 1.
enum B {
    /// Send without reading: the command may block.
    Send(usize, &'static [&'static str]),
    /// Send and compare the reply.
    Call(usize, &'static [&'static str]),
    /// Read and compare the reply to an earlier `Send`.
    Read(usize),
    /// Read the reply to a `Send` that must time out, no sooner than the
    /// given milliseconds on either server.
    ReadAfter(usize, u64),
}

/// Blocking pops served by a push from another client, timeouts, wrong
/// types and bad timeouts, and blocking commands inside MULTI (which do
/// not block). Each scenario reads the waiter's reply before it looks at
/// the keys again, so the result does not depend on whether the waiter
/// blocked before the push or found the element already there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("blocking_matches_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    let script: &[B] = &[
        B::Send(0, &["BLPOP", "bl1", "bl2", "0"]),
        B::Call(1, &["RPUSH", "bl2", "a", "b"]),
        B::Read(0),
        B::Call(1, &["LRANGE", "bl2", "0", "-1"]),
        B::Send(0, &["BRPOP", "bl1", "0.1"]),
        B::ReadAfter(0, 90),
        B::Send(0, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]),
        B::Call(1, &["LPUSH", "src", "x"]),
        B::Read(0),
        B::Call(1, &["LRANGE", "dst", "0", "-1"]),
        B::Call(1, &["EXISTS", "src"]),
        B::Send(0, &["BRPOPLPUSH", "src", "dst", "0"]),
        B::Call(1, &["RPUSH", "src", "y", "z"]),
        B::Read(0),
        B::Call(1, &["LRANGE", "dst", "0", "-1"]),
        B::Send(0, &["BLMPOP", "0", "2", "e1", "e2", "RIGHT", "COUNT", "2"]),
        B::Call(1, &["RPUSH", "e2", "a", "b", "c"]),
        B::Read(0),
        B::Call(1, &["LRANGE", "e2", "0", "-1"]),
        B::Send(0, &["BLMPOP", "0.1", "1", "e1", "LEFT"]),
        B::ReadAfter(0, 90),
        B::Send(0, &["BZPOPMIN", "z1", "z2", "0"]),
        B::Call(1, &["ZADD", "z2", "1.5", "m", "2.5", "n"]),
        B::Read(0),
        B::Send(0, &["BZPOPMAX", "z2", "0"]),
        B::Read(0),
        B::Send(0, &["BZMPOP", "0", "1", "z3", "MAX", "COUNT", "5"]),
        B::Call(1, &["ZADD", "z3", "2", "a", "3", "b"]),
        B::Read(0),
        B::Send(0, &["BZPOPMIN", "z4", "0.1"]),
        B::ReadAfter(0, 90),
        // Served by the stores of SORT and the geo commands.
        B::Call(1, &["RPUSH", "sortsrc", "3", "1", "2"]),
        B::Send(0, &["BLPOP", "sorted", "0"]),
        B::Call(1, &["SORT", "sortsrc", "STORE", "sorted"]),
        B::Read(0),
        B::Call(1, &["LRANGE", "sorted", "0", "-1"]),
        B::Call(
            1,
            &[
                "GEOADD",
                "geosrc",
                "13.361389",
                "38.115556",
                "a",
                "15.087269",
                "37.502669",
                "b",
            ],
        ),
        B::Send(0, &["BZPOPMIN", "near", "0"]),
        B::Call(
            1,
            &[
                "GEOSEARCHSTORE",
                "near",
                "geosrc",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "STOREDIST",
            ],
        ),
        B::Read(0),
        B::Send(0, &["BZPOPMAX", "near2", "0"]),
        B::Call(
            1,
            &[
                "GEORADIUS",
                "geosrc",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "near2",
            ],
        ),
        B::Read(0),
        B::Call(1, &["ZRANGE", "near2", "0", "-1", "WITHSCORES"]),
        B::Call(1, &["SET", "str", "v"]),
        B::Call(0, &["BLPOP", "str", "0"]),
        B::Call(0, &["BZPOPMIN", "str", "0"]),
        B::Call(0, &["BLPOP", "k", "-1"]),
        B::Call(0, &["BLPOP", "k", "abc"]),
        B::Call(0, &["BLPOP", "k", "inf"]),
        B::Call(0, &["BLMPOP", "0", "0", "k", "LEFT"]),
        B::Call(0, &["BLMPOP", "0", "1", "k", "UP"]),
        B::Call(0, &["BZMPOP", "-1", "1", "k", "MIN"]),
        B::Call(0, &["MULTI"]),
        B::Call(0, &["BLPOP", "empty", "0"]),
        B::Call(0, &["BZPOPMIN", "empty", "0"]),
        B::Call(0, &["BLMOVE", "empty", "dst", "LEFT", "LEFT", "0"]),
        B::Call(0, &["EXEC"]),
    ];
    let mut compared = 0;
    let mut missing = BTreeSet::new();
    for resp3 in [false, true] {
        duo.both(false, &v!["FLUSHALL"]).await?;
        let mut sides = Vec::new();
        for addr in [redis.addr(), cairn.addr()] {
            let waiter = if resp3 {
                Conn::connect_resp3(addr).await?
            } else {
                Conn::connect(addr).await?
            };
            sides.push([waiter, Conn::connect(addr).await?]);
        }
        let [mut rs, mut cs]: [[Conn; 2]; 2] =
            sides.try_into().map_err(|_| anyhow::anyhow!("two sides"))?;
        let mut sent: [Option<(Vec<String>, Instant)>; 2] = [None, None];
        let mut skipping_multi = false;
        for (i, step) in script.iter().enumerate() {
            let (client, cmd, read, min_ms) = match step {
                B::Send(c, cmd) => (*c, Some(*cmd), false, 0),
                B::Call(c, cmd) => (*c, Some(*cmd), true, 0),
                B::Read(c) => (*c, None, true, 0),
                B::ReadAfter(c, ms) => (*c, None, true, *ms),
            };
            let (rc, cc) = (&mut rs[client], &mut cs[client]);
            if let Some(cmd) = cmd {
                let name = cmd[0].to_lowercase();
                // Without MULTI, the commands queued in it would block.
                if skipping_multi {
                    skipping_multi = name != "exec";
                    continue;
                }
                if !implemented(&mut duo.cairn.resp2, &name).await? {
                    skipping_multi = name == "multi";
                    // Its reply, if it was only sent, is skipped with it.
                    missing.insert(name);
                    sent[client] = None;
                    continue;
                }
                let cmd: Vec<String> = cmd.iter().map(|a| (*a).to_owned()).collect();
                rc.send(&cmd).await?;
                cc.send(&cmd).await?;
                sent[client] = Some((cmd, Instant::now()));
            }
            if !read {
                continue;
            }
            let Some((shown, at)) = sent[client].take() else {
                continue;
            };
            let resp = resp3 && client == 0;
            let r = reply_within(rc, BLOCKING_PATIENCE).await;
            let r_ms = at.elapsed().as_millis() as u64;
            let c = reply_within(cc, BLOCKING_PATIENCE).await;
            let c_ms = at.elapsed().as_millis() as u64;
            duo.log(i, resp, &shown, &r);
            if c_ms > min_ms + 500 {
                println!(
                    "blocking: slow reply at step {i}: {} took {c_ms} ms (redis {r_ms} ms)",
                    render(&shown)
                );
            }
            if let Some(why) = plain_diff(&r, &c, Cmp::Exact) {
                duo.record(i, resp, &shown, &r, &c, &why);
            } else if min_ms > 0 && (r_ms < min_ms || c_ms < min_ms) {
                duo.record(
                    i,
                    resp,
                    &shown,
                    &r,
                    &c,
                    &format!(
                        "answered after {r_ms} ms (redis) / {c_ms} ms (cairn), before the timeout"
                    ),
                );
            }
            compared += 1;
            // A client still waiting for a reply would shift every later
            // one: both sides get a fresh connection instead.
            let stuck = |x: &Reply| matches!(x, Reply::Error(e) if e.starts_with("(client)"));
            if stuck(&r) || stuck(&c) {
                for (side, addr) in [(&mut rs, redis.addr()), (&mut cs, cairn.addr())] {
                    side[client] = if resp {
                        Conn::connect_resp3(addr).await?
                    } else {
                        Conn::connect(addr).await?
                    };
                }
            }
        }
    }
    if !missing.is_empty() {
        let missing: Vec<String> = missing.into_iter().collect();
        println!(
            "blocking_matches_redis: steps skipped, cairn lacks: {}",
            missing.join(" ")
        );
    }
    println!(
        "blocking: {compared} replies compared, {} mismatches",
        duo.mismatches.len()
    );
    let stopping = Instant::now();
    cairn.shutdown().await?;
    println!(
        "blocking: the server under test stopped in {:.1?}",
        stopping.elapsed()
    );
    report(&duo)?;
    drop(redis);
    Ok(())
}

// ---------------------------------------------------------------------------
// Keyspace notifications and client-side caching

/// A subscriber to every keyspace and keyevent channel plus a `sync`
/// channel: after each command the test publishes a marker on `sync` and
/// reads up to it, so each command's events are collected without a sleep.
struct EventTap {
    conn: Conn,
    marker: u64,
}

impl EventTap {
    async fn open(addr: std::net::SocketAddr) -> anyhow::Result<EventTap> {
        let mut conn = Conn::connect(addr).await?;
        conn.send(&["PSUBSCRIBE", "__key*__:*"]).await?;
        conn.read_reply().await?;
        conn.send(&["SUBSCRIBE", "sync"]).await?;
        conn.read_reply().await?;
        Ok(EventTap { conn, marker: 0 })
    }

    /// The (channel, message) pairs published since the last call, in
    /// order; `publisher` sends the marker.
    async fn drain(&mut self, publisher: &mut Conn) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.marker += 1;
        let marker = self.marker.to_string();
        publisher.call(&["PUBLISH", "sync", &marker]).await?;
        let mut out = Vec::new();
        loop {
            let r = reply_within(&mut self.conn, PUBSUB_PATIENCE).await;
            let parts: Vec<Vec<u8>> = r
                .elements()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_bytes().map(<[u8]>::to_vec))
                .collect();
            match parts.as_slice() {
                [kind, ch, msg] if kind == b"message" && ch == b"sync" => {
                    if msg == marker.as_bytes() {
                        return Ok(out);
                    }
                }
                [kind, _pat, ch, msg] if kind == b"pmessage" => out.push((ch.clone(), msg.clone())),
                _ => bail!("unexpected on the event subscriber: {r}"),
            }
        }
    }
}

fn show_events(ev: &[(Vec<u8>, Vec<u8>)]) -> Reply {
    Reply::Array(
        ev.iter()
            .map(|(c, m)| Reply::Array(vec![Reply::Bulk(c.clone()), Reply::Bulk(m.clone())]))
            .collect(),
    )
}

/// The randomized run's commands (every family, deterministic ones) on
/// both servers with `notify-keyspace-events KEAnm`, comparing each
/// command's sequence of (channel, message) byte for byte; some steps are
/// MULTI blocks. Seeded as the randomized run (`CAIRN_DIFF_SEED`,
/// `CAIRN_DIFF_STEPS`, default 1500 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_events_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("keyspace_events_match_redis").await? else {
        return Ok(());
    };
    let seed: u64 = env_parse("CAIRN_DIFF_SEED").unwrap_or_else(rand::random);
    let steps: usize = env_parse("CAIRN_DIFF_STEPS").unwrap_or(1500);
    println!("seed={seed} steps={steps} (replay with CAIRN_DIFF_SEED={seed})");
    let mut duo = Duo::open(redis.addr(), cairn.addr(), seed).await?;
    duo.both(false, &v!["FLUSHALL"]).await?;
    // A refused value makes Redis restore the CONFIG GET form, which
    // loses an `n` hidden by `A`: checked by the events of the run below
    // (`new` must be missing in both) only if KEAn came before; here the
    // last value set is KEAnm, so `new` and `keymiss` events are compared.
    for flags in ["KEA", "gx$Kmdn", "Q", "KEA?", "w", "KEAnm"] {
        let cmd = v!["CONFIG", "SET", "notify-keyspace-events", flags];
        duo.check(0, false, &cmd, Cmp::Exact).await?;
        let get = v!["CONFIG", "GET", "notify-keyspace-events"];
        duo.check(0, false, &get, Cmp::Exact).await?;
    }
    let mut taps = [
        EventTap::open(redis.addr()).await?,
        EventTap::open(cairn.addr()).await?,
    ];
    let mut tpls = Vec::new();
    for t in templates() {
        // Random picks (SPOP, SRANDMEMBER, ...) would make the two
        // datasets diverge; SCAN replies depend on the table layout.
        if matches!(
            t.cmp,
            Cmp::Exact | Cmp::Unordered | Cmp::Pairs | Cmp::TtlSecs | Cmp::TtlMillis
        ) && implemented(&mut duo.cairn.resp2, t.name).await?
        {
            tpls.push(t);
        }
    }
    let mut g = G {
        rng: StdRng::seed_from_u64(seed),
        step: 0,
        t0_ms: now_ms(),
        home: KEYS,
    };
    let mut events = 0usize;
    let mut by_event: BTreeMap<String, usize> = BTreeMap::new();
    for step in 0..steps {
        g.step = step as i64;
        let mut script = Vec::new();
        let multi = g.chance(0.08);
        if multi {
            script.push((v!["MULTI"], Cmp::Exact));
        }
        for _ in 0..if multi { g.n(1, 4) } else { 1 } {
            let pool: Vec<&Tpl> = tpls.iter().filter(|t| !multi || t.in_multi).collect();
            let Some(t) = pool.choose(&mut g.rng).copied() else {
                break;
            };
            g.home = home(t.family);
            let cmd = (t.generate)(&mut g);
            script.push((cmd, t.cmp));
        }
        if multi {
            script.push((v!["EXEC"], Cmp::Exact));
        }
        let cmps: Vec<Cmp> = script
            .iter()
            .filter(|(c, _)| c[0] != "MULTI" && c[0] != "EXEC")
            .map(|(_, c)| *c)
            .collect();
        for (cmd, cmp) in &script {
            if multi && cmd[0] == "EXEC" {
                // Element by element, each with its command's comparison.
                let (r, c) = duo.both(false, cmd).await?;
                duo.log(step, false, cmd, &r);
                let same = match (r.elements(), c.elements()) {
                    (Some(re), Some(ce)) if re.len() == ce.len() && re.len() == cmps.len() => re
                        .iter()
                        .zip(ce)
                        .zip(&cmps)
                        .all(|((a, b), cmp)| normalize(a, *cmp) == normalize(b, *cmp)),
                    _ => r == c,
                };
                if !same {
                    duo.record(step, false, cmd, &r, &c, "transaction results differ");
                }
                continue;
            }
            let cmp = if multi { Cmp::Exact } else { *cmp };
            duo.check(step, false, cmd, cmp).await?;
        }
        let [rt, ct] = &mut taps;
        let r = rt.drain(&mut duo.redis.other).await?;
        let c = ct.drain(&mut duo.cairn.other).await?;
        events += r.len();
        for (ch, _) in &r {
            if let Some(ev) = ch.strip_prefix(b"__keyevent@0__:") {
                *by_event
                    .entry(String::from_utf8_lossy(ev).into_owned())
                    .or_default() += 1;
            }
        }
        if r != c {
            let shown: Vec<String> = script.iter().flat_map(|(c, _)| c.clone()).collect();
            duo.record(
                step,
                false,
                &shown,
                &show_events(&r),
                &show_events(&c),
                "keyspace events differ",
            );
        }
    }
    println!(
        "keyspace events: {steps} steps, {} commands per server, {events} events compared, {} mismatches",
        duo.commands_sent,
        duo.mismatches.len()
    );
    println!("  events seen: {by_event:?}");
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// `expired` from lazy expiry (a read after the deadline) and from active
/// expiry (nobody reads), `new` and `del`, on both servers: the test waits
/// for the event itself, never for a fixed time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_events_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("expiry_events_match_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    duo.both(false, &v!["FLUSHALL"]).await?;
    duo.both(false, &v!["CONFIG", "SET", "notify-keyspace-events", "KEA"])
        .await?;
    let mut taps = [
        EventTap::open(redis.addr()).await?,
        EventTap::open(cairn.addr()).await?,
    ];
    let mut compared = 0;
    // Lazy: active expiry off, so only the read can expire the key.
    duo.both(false, &v!["DEBUG", "SET-ACTIVE-EXPIRE", "0"])
        .await?;
    for (i, read) in [
        v!["GET", "lazy"],
        v!["EXISTS", "lazy"],
        v!["SET", "lazy", "again"],
        v!["LPUSH", "lazy", "x"],
    ]
    .into_iter()
    .enumerate()
    {
        duo.both(false, &v!["DEL", "lazy"]).await?;
        duo.check(i, false, &v!["SET", "lazy", "v", "PX", "30"], Cmp::Exact)
            .await?;
        // Wait until the key's deadline has passed by PTTL's own clock
        // (PTTL does not expire the key): -2 means gone.
        for conn in [&mut duo.redis.resp2, &mut duo.cairn.resp2] {
            let give_up = Instant::now() + Duration::from_secs(10);
            loop {
                let r = conn.call(&["PTTL", "lazy"]).await?;
                if r.as_int().is_none_or(|n| n <= 0) || Instant::now() > give_up {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // A deadline of exactly now is not expired yet for Redis.
        tokio::time::sleep(Duration::from_millis(2)).await;
        duo.check(i, false, &read, Cmp::Exact).await?;
        let [rt, ct] = &mut taps;
        let r = rt.drain(&mut duo.redis.other).await?;
        let c = ct.drain(&mut duo.cairn.other).await?;
        compared += r.len();
        if !r.iter().any(|(_, m)| m == b"expired") {
            bail!("redis sent no expired event after {read:?}: {r:?}");
        }
        if r != c {
            duo.record(
                i,
                false,
                &read,
                &show_events(&r),
                &show_events(&c),
                "lazy expiry events differ",
            );
        }
    }
    // Active: nobody touches the keys; each side's cycle must publish.
    duo.both(false, &v!["DEBUG", "SET-ACTIVE-EXPIRE", "1"])
        .await?;
    for i in 0..5 {
        duo.both(false, &v!["SET", format!("act{i}"), "v", "PX", "20"])
            .await?;
    }
    for (name, tap) in ["redis", "cairn"].into_iter().zip(taps.iter_mut()) {
        let mut seen = BTreeSet::new();
        while seen.len() < 5 {
            let r = reply_within(&mut tap.conn, Duration::from_secs(10)).await;
            let parts: Vec<Vec<u8>> = r
                .elements()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_bytes().map(<[u8]>::to_vec))
                .collect();
            match parts.as_slice() {
                [_, _, ch, msg] if ch == b"__keyevent@0__:expired" => {
                    seen.insert(msg.clone());
                }
                [_, _, ch, msg] if ch.starts_with(b"__keyspace@0__:act") => {
                    if !["set", "expire", "expired"].contains(&&*String::from_utf8_lossy(msg)) {
                        bail!("{name}: unexpected event {r}");
                    }
                }
                [_, _, ch, _] if ch == b"__keyevent@0__:set" || ch == b"__keyevent@0__:expire" => {}
                _ => bail!("{name}: expected active expiry events, got {r}"),
            }
        }
        compared += seen.len();
    }
    println!(
        "expiry events: {compared} events compared, {} mismatches",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// Client-side caching with two (or three) connections per server: the
/// default mode in RESP3, NOLOOP, OPTIN/OPTOUT with CLIENT CACHING,
/// BCAST with prefixes, REDIRECT to a RESP2 subscriber of
/// `__redis__:invalidate` and to a RESP3 client, FLUSHALL/FLUSHDB (null),
/// MULTI/EXEC, a script, the option errors and TRACKINGINFO/GETREDIR.
/// Every step compares each connection's replies and pushes, read up to a
/// PING sent after the step (the invalidations precede its PONG).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("tracking_matches_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    if !implemented(&mut duo.cairn.resp2, "client").await? {
        return Ok(());
    }
    // Connections: a = tracking client (RESP3), b = writer (RESP2),
    // r = redirect target (RESP2 subscriber or RESP3).
    struct Three {
        a: Conn,
        b: Conn,
        r: Conn,
        r_id: i64,
    }
    async fn open(addr: std::net::SocketAddr, r3: bool) -> anyhow::Result<Three> {
        // With a RESP2 target the tracking client is RESP2 too, as real
        // RESP2 clients use redirection (Redis encodes a flush's null in
        // the tracking client's protocol, whatever the target speaks).
        let a = if r3 {
            Conn::connect_resp3(addr).await?
        } else {
            Conn::connect(addr).await?
        };
        let b = Conn::connect(addr).await?;
        let mut r = if r3 {
            Conn::connect_resp3(addr).await?
        } else {
            Conn::connect(addr).await?
        };
        let r_id = r.call(&["CLIENT", "ID"]).await?.as_int().unwrap_or(-1);
        if !r3 {
            r.call(&["SUBSCRIBE", "__redis__:invalidate"]).await?;
        }
        Ok(Three { a, b, r, r_id })
    }
    /// Everything `conn` received up to the PONG of a PING sent now.
    async fn upto_pong(conn: &mut Conn, subscribed: bool) -> anyhow::Result<Vec<Reply>> {
        conn.send(&["PING"]).await?;
        let mut out = Vec::new();
        loop {
            let r = reply_within(conn, PUBSUB_PATIENCE).await;
            let pong = match &r {
                Reply::Simple(s) => s == "PONG",
                Reply::Array(v) if subscribed => v.first() == Some(&Reply::Bulk(b"pong".to_vec())),
                Reply::Error(e) if e.starts_with("(client)") => bail!("{e}"),
                _ => false,
            };
            if pong {
                return Ok(out);
            }
            out.push(r);
        }
    }
    /// (connection, command); `$R` stands for the redirect target's id.
    type Step = (&'static str, &'static [&'static str]);
    let scenarios: &[(&str, bool, &[Step])] = &[
        (
            "default mode",
            true,
            &[
                ("a", &["CLIENT", "TRACKING", "ON"]),
                ("a", &["GET", "k1"]),
                ("a", &["MGET", "k2", "k3"]),
                ("b", &["SET", "k1", "v"]),
                ("b", &["SET", "k1", "w"]),
                ("a", &["GET", "k1"]),
                ("a", &["SET", "k1", "own"]),
                ("a", &["GET", "k1"]),
                ("b", &["MSET", "k2", "1", "k3", "2"]),
                ("a", &["HGET", "h", "f"]),
                ("b", &["HSET", "h", "f", "v"]),
                ("a", &["LRANGE", "l", "0", "-1"]),
                ("b", &["RPUSH", "l", "x"]),
                ("a", &["LRANGE", "l", "0", "-1"]),
                ("b", &["LPOP", "l"]),
                ("a", &["GET", "e"]),
                ("b", &["SET", "e", "v"]),
                ("a", &["GET", "e"]),
                ("b", &["EXPIRE", "e", "100"]),
                ("a", &["TTL", "e"]),
                ("b", &["DEL", "e"]),
                ("a", &["GET", "m1"]),
                ("b", &["MULTI"]),
                ("b", &["SET", "m1", "1"]),
                ("b", &["INCR", "m2"]),
                ("b", &["EXEC"]),
                ("a", &["GET", "s1"]),
                ("b", &["EVAL", "redis.call('set', KEYS[1], 'x')", "1", "s1"]),
                ("a", &["GET", "f1"]),
                ("b", &["FLUSHDB"]),
                ("a", &["GET", "f1"]),
                ("a", &["FLUSHALL"]),
                ("a", &["CLIENT", "TRACKINGINFO"]),
                ("a", &["CLIENT", "GETREDIR"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
                ("b", &["SET", "f1", "x"]),
                ("a", &["CLIENT", "TRACKINGINFO"]),
                ("a", &["CLIENT", "GETREDIR"]),
            ],
        ),
        (
            "noloop, optin, optout",
            true,
            &[
                ("a", &["CLIENT", "TRACKING", "ON", "NOLOOP"]),
                ("a", &["GET", "n1"]),
                ("a", &["SET", "n1", "mine"]),
                ("a", &["GET", "n1"]),
                ("b", &["SET", "n1", "theirs"]),
                ("a", &["GET", "n2"]),
                (
                    "a",
                    &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "n2"],
                ),
                ("a", &["GET", "n2"]),
                ("b", &["SET", "n2", "theirs"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
                ("a", &["CLIENT", "CACHING", "YES"]),
                ("a", &["CLIENT", "TRACKING", "ON", "OPTIN"]),
                ("a", &["CLIENT", "TRACKING", "ON", "OPTOUT"]),
                ("a", &["CLIENT", "CACHING", "NO"]),
                ("a", &["CLIENT", "CACHING", "MAYBE"]),
                ("a", &["GET", "o1"]),
                ("a", &["CLIENT", "CACHING", "YES"]),
                ("a", &["CLIENT", "TRACKINGINFO"]),
                ("a", &["GET", "o2"]),
                ("a", &["GET", "o3"]),
                ("b", &["MSET", "o1", "1", "o2", "2", "o3", "3"]),
                ("a", &["CLIENT", "CACHING", "YES"]),
                ("a", &["MULTI"]),
                ("a", &["GET", "o4"]),
                ("a", &["GET", "o5"]),
                ("a", &["EXEC"]),
                ("b", &["MSET", "o4", "1", "o5", "2"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
                ("a", &["CLIENT", "TRACKING", "ON", "OPTOUT"]),
                ("a", &["GET", "p1"]),
                ("a", &["CLIENT", "CACHING", "NO"]),
                ("a", &["GET", "p2"]),
                ("b", &["MSET", "p1", "1", "p2", "2"]),
                ("a", &["CLIENT", "TRACKING", "ON", "OPTIN"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
            ],
        ),
        (
            "bcast and prefixes",
            true,
            &[
                ("a", &["CLIENT", "TRACKING", "ON", "PREFIX", "x"]),
                ("a", &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"]),
                (
                    "a",
                    &[
                        "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a",
                    ],
                ),
                ("a", &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab"]),
                ("a", &["CLIENT", "TRACKING", "ON"]),
                ("a", &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"]),
                ("a", &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "abc"]),
                (
                    "a",
                    &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x", "NOLOOP"],
                ),
                ("b", &["MSET", "abc", "1", "x1", "2", "ab", "3", "zz", "4"]),
                ("b", &["MULTI"]),
                ("b", &["SET", "x2", "1"]),
                ("b", &["SET", "ab", "1"]),
                ("b", &["SET", "x0", "1"]),
                ("b", &["DEL", "x2"]),
                ("b", &["EXEC"]),
                ("a", &["SET", "x5", "1"]),
                ("a", &["CLIENT", "TRACKINGINFO"]),
                ("b", &["FLUSHALL"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
                ("a", &["CLIENT", "TRACKING", "ON", "BCAST"]),
                ("b", &["SET", "any", "1"]),
                ("a", &["CLIENT", "TRACKINGINFO"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
            ],
        ),
        (
            "redirect to a RESP2 subscriber",
            false,
            &[
                ("a", &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"]),
                ("a", &["CLIENT", "TRACKING", "ON", "REDIRECT", "x"]),
                (
                    "a",
                    &[
                        "CLIENT", "TRACKING", "ON", "REDIRECT", "$R", "REDIRECT", "$R",
                    ],
                ),
                (
                    "a",
                    &["CLIENT", "TRACKING", "ON", "REDIRECT", "$R", "BOGUS"],
                ),
                ("a", &["CLIENT", "TRACKING", "MAYBE"]),
                ("a", &["CLIENT", "TRACKING", "ON", "REDIRECT", "$R"]),
                ("a", &["GET", "r1"]),
                ("b", &["SET", "r1", "v"]),
                ("a", &["GET", "r1"]),
                ("a", &["SET", "r1", "own"]),
                ("b", &["FLUSHDB"]),
                ("a", &["CLIENT", "GETREDIR"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
                (
                    "a",
                    &[
                        "CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", "$R", "PREFIX", "r",
                    ],
                ),
                ("b", &["SET", "r2", "v"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
            ],
        ),
        (
            "scripts, numkeys and keyword commands, swapdb",
            true,
            &[
                ("a", &["CLIENT", "TRACKING", "ON"]),
                // A script that reads tracks the keys it declared (Redis
                // 7.0 remembers the EVAL's keys, not the ones it read).
                (
                    "a",
                    &["EVAL", "return redis.call('get', KEYS[1])", "1", "sk1"],
                ),
                ("b", &["SET", "sk1", "x"]),
                ("a", &["EVAL", "return redis.call('get', 'sk2')", "0"]),
                ("b", &["SET", "sk2", "x"]),
                (
                    "a",
                    &["EVAL", "redis.call('get', 'sk0') return 1", "1", "sk3"],
                ),
                ("b", &["SET", "sk3", "x"]),
                ("b", &["SET", "sk0", "y"]),
                (
                    "a",
                    &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "sk4"],
                ),
                ("b", &["SET", "sk4", "x"]),
                ("a", &["EVAL_RO", "return 1", "1", "sk5"]),
                ("b", &["SET", "sk5", "x"]),
                (
                    "a",
                    &["EVAL", "return redis.call('set', KEYS[1], 'y')", "1", "sk6"],
                ),
                ("b", &["SET", "sk6", "z"]),
                // Writes by scripts invalidate, declared keys or not.
                ("a", &["GET", "sk7"]),
                (
                    "b",
                    &["EVAL", "return redis.call('set', KEYS[1], 'y')", "1", "sk7"],
                ),
                ("a", &["GET", "sk8"]),
                ("b", &["EVAL", "return redis.call('del', 'sk8')", "0"]),
                ("a", &["GET", "sk9"]),
                (
                    "a",
                    &[
                        "EVAL",
                        "return redis.call('set', KEYS[1], 'own')",
                        "1",
                        "sk9",
                    ],
                ),
                (
                    "a",
                    &[
                        "FUNCTION",
                        "LOAD",
                        "#!lua name=tlib\nredis.register_function{function_name='tget', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}",
                    ],
                ),
                ("a", &["FCALL", "tget", "1", "fk1"]),
                ("b", &["SET", "fk1", "x"]),
                ("a", &["FCALL_RO", "tget", "1", "fk2"]),
                ("b", &["SET", "fk2", "x"]),
                ("a", &["FUNCTION", "FLUSH"]),
                // Keys of numkeys-style and keyword commands.
                ("a", &["SINTERCARD", "2", "n1", "n2"]),
                ("b", &["SADD", "n2", "x"]),
                ("b", &["SADD", "n1", "x"]),
                ("a", &["ZUNION", "2", "z1", "z2"]),
                ("b", &["ZADD", "z2", "1", "x"]),
                ("a", &["ZINTERCARD", "2", "z3", "z4", "LIMIT", "1"]),
                ("b", &["ZADD", "z4", "1", "x"]),
                ("a", &["ZDIFF", "2", "z5", "z6"]),
                ("b", &["ZADD", "z6", "1", "x"]),
                ("a", &["LMPOP", "2", "l1", "l2", "LEFT"]),
                ("b", &["RPUSH", "l2", "x"]),
                ("a", &["XREAD", "STREAMS", "xs1", "xs2", "0", "0"]),
                ("b", &["XADD", "xs2", "1-1", "a", "b"]),
                ("a", &["LCS", "lc1", "lc2"]),
                ("b", &["SET", "lc2", "x"]),
                ("a", &["SORT_RO", "srt"]),
                ("b", &["RPUSH", "srt", "1"]),
                ("a", &["GEORADIUS_RO", "geo", "0", "0", "1", "km"]),
                ("b", &["GEOADD", "geo", "0", "0", "m"]),
                // SWAPDB invalidates nothing in Redis 7.0; the table names
                // keys whatever their database.
                ("a", &["GET", "w1"]),
                ("b", &["SWAPDB", "0", "1"]),
                ("b", &["SWAPDB", "0", "1"]),
                ("b", &["SET", "w1", "x"]),
                ("a", &["GET", "w2"]),
                ("b", &["SELECT", "1"]),
                ("b", &["SET", "w2", "x"]),
                ("b", &["FLUSHDB"]),
                ("b", &["SELECT", "0"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
            ],
        ),
        (
            "redirect to a RESP3 client",
            true,
            &[
                ("a", &["CLIENT", "TRACKING", "ON", "REDIRECT", "$R"]),
                ("a", &["GET", "q1"]),
                ("b", &["SET", "q1", "v"]),
                ("a", &["CLIENT", "TRACKINGINFO"]),
                ("a", &["CLIENT", "TRACKING", "OFF"]),
            ],
        ),
    ];
    let mut compared = 0;
    for (si, (name, r3, steps)) in scenarios.iter().enumerate() {
        let mut sides = [
            open(redis.addr(), *r3).await?,
            open(cairn.addr(), *r3).await?,
        ];
        for side in &mut sides {
            side.b.call(&["FLUSHALL"]).await?;
            upto_pong(&mut side.a, false).await?;
        }
        for (i, (who, cmd)) in steps.iter().enumerate() {
            let mut got: Vec<[Vec<Reply>; 3]> = Vec::new();
            for side in &mut sides {
                let args: Vec<String> = cmd
                    .iter()
                    .map(|a| {
                        if *a == "$R" {
                            side.r_id.to_string()
                        } else {
                            (*a).to_owned()
                        }
                    })
                    .collect();
                let conn = match *who {
                    "a" => &mut side.a,
                    _ => &mut side.b,
                };
                let first = conn.call(&args).await?;
                let mut a = vec![];
                let mut b = vec![];
                if *who == "a" {
                    a.push(first);
                } else {
                    b.push(first);
                }
                // Inside MULTI a PING is queued: read pushes only outside.
                let queued = b
                    .last()
                    .is_some_and(|r| *r == Reply::Simple("QUEUED".into()))
                    || (cmd[0] == "MULTI" && *who == "b");
                if !queued {
                    b.extend(upto_pong(&mut side.b, false).await?);
                }
                let a_queued = a
                    .last()
                    .is_some_and(|r| *r == Reply::Simple("QUEUED".into()))
                    || (cmd[0] == "MULTI" && *who == "a");
                if !a_queued {
                    a.extend(upto_pong(&mut side.a, false).await?);
                }
                let r = upto_pong(&mut side.r, !*r3).await?;
                got.push([a, b, r]);
            }
            let [rd, cd] = [&got[0], &got[1]];
            for (k, label) in ["a", "b", "r"].iter().enumerate() {
                // CLIENT TRACKINGINFO and GETREDIR name the redirect id,
                // which differs between the servers.
                let norm = |v: &Vec<Reply>, id: i64| -> Vec<Reply> {
                    v.iter()
                        .map(|r| match r {
                            Reply::Integer(n) if *n == id && id > 0 => Reply::Integer(-7),
                            Reply::Map(m) => Reply::Map(
                                m.iter()
                                    .map(|(k, v)| match v {
                                        Reply::Integer(n) if *n == id && id > 0 => {
                                            (k.clone(), Reply::Integer(-7))
                                        }
                                        _ => (k.clone(), v.clone()),
                                    })
                                    .collect(),
                            ),
                            other => other.clone(),
                        })
                        .collect()
                };
                let r = norm(&rd[k], sides[0].r_id);
                let c = norm(&cd[k], sides[1].r_id);
                compared += r.len();
                if r != c {
                    let shown: Vec<String> = std::iter::once(format!("[{name}] {who}:"))
                        .chain(cmd.iter().map(|a| (*a).to_owned()))
                        .collect();
                    duo.record(
                        si * 100 + i,
                        true,
                        &shown,
                        &Reply::Array(r),
                        &Reply::Array(c),
                        &format!("connection {label} received different replies/pushes"),
                    );
                }
            }
        }
    }
    println!(
        "tracking: {compared} replies and pushes compared, {} mismatches",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// The tracking table's figures in INFO (`tracking_clients`,
/// `tracking_total_keys`, `_items`, `_prefixes`) at each step, and
/// `tracking-table-max-keys`: lowering it evicts keys at once, each with
/// an invalidation to its readers. Which keys go is random in Redis (a
/// random walk of its radix tree), so the evicted and the kept keys are
/// compared by number, and together they must be every key read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_table_limit_and_info_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("tracking_table_limit_and_info_match_redis").await?
    else {
        return Ok(());
    };
    /// The four figures, read on `conn`.
    async fn figures(conn: &mut Conn) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for section in ["clients", "stats"] {
            let r = conn.call(&["INFO", section]).await?;
            let text = String::from_utf8_lossy(r.as_bytes().unwrap_or_default()).into_owned();
            for line in text.lines() {
                if let Some((k, v)) = line.split_once(':')
                    && k.starts_with("tracking_")
                {
                    out.push((k.to_owned(), v.trim().to_owned()));
                }
            }
        }
        Ok(out)
    }
    /// The keys invalidated by the pushes `conn` received up to a PONG.
    async fn invalidated(conn: &mut Conn) -> anyhow::Result<Vec<Vec<u8>>> {
        conn.send(&["PING"]).await?;
        let mut keys = Vec::new();
        loop {
            match reply_within(conn, PUBSUB_PATIENCE).await {
                Reply::Simple(s) if s == "PONG" => return Ok(keys),
                Reply::Push(v)
                    if v.first() == Some(&Reply::Bulk(b"invalidate".to_vec()))
                        && v.get(1) == Some(&Reply::Null) =>
                {
                    keys.push(b"(flush)".to_vec());
                }
                Reply::Push(v) if v.first() == Some(&Reply::Bulk(b"invalidate".to_vec())) => {
                    for k in v.get(1).and_then(Reply::elements).unwrap_or_default() {
                        keys.push(k.as_bytes().unwrap_or_default().to_vec());
                    }
                }
                other => bail!("unexpected reply while reading invalidations: {other}"),
            }
        }
    }
    /// A call whose reply must not be a push: an invalidation caused by
    /// the command goes after its reply.
    async fn call_checked(conn: &mut Conn, cmd: &[&str], server: &str) -> anyhow::Result<Reply> {
        let r = conn.call(cmd).await?;
        if matches!(r, Reply::Push(_)) {
            bail!("{server}: a push came before the reply to {cmd:?}: {r}");
        }
        Ok(r)
    }
    let keys: Vec<String> = (0..10).map(|i| format!("tk{i}")).collect();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let mut seen: Vec<[Vec<Vec<u8>>; 2]> = Vec::new();
    let mut evicted_sets: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut infos: Vec<Vec<Vec<(String, String)>>> = Vec::new();
    for (server, addr) in [("redis", redis.addr()), ("cairn", cairn.addr())] {
        let mut a = Conn::connect_resp3(addr).await?;
        let mut b = Conn::connect(addr).await?;
        let mut c = Conn::connect_resp3(addr).await?;
        b.call(&["FLUSHALL"]).await?;
        b.call(&["CONFIG", "SET", "tracking-table-max-keys", "0"])
            .await?;
        let mut info = vec![figures(&mut b).await?];
        a.call(&["CLIENT", "TRACKING", "ON"]).await?;
        let mut mget = vec!["MGET".to_owned()];
        mget.extend(keys.iter().cloned());
        a.call(&mget).await?;
        a.call(&["GET", "tk0"]).await?;
        info.push(figures(&mut b).await?);
        c.call(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p1", "PREFIX", "p2",
        ])
        .await?;
        c.call(&["GET", "tk1"]).await?;
        info.push(figures(&mut b).await?);
        // Six keys over the limit: evicted now, each invalidated.
        b.call(&["CONFIG", "SET", "tracking-table-max-keys", "4"])
            .await?;
        let evicted = invalidated(&mut a).await?;
        info.push(figures(&mut b).await?);
        // Reading more keeps the table at the limit.
        call_checked(&mut a, &["GET", "tk-extra"], server).await?;
        let evicted_more = invalidated(&mut a).await?;
        info.push(figures(&mut b).await?);
        b.call(&["CONFIG", "SET", "tracking-table-max-keys", "0"])
            .await?;
        // A client that turns tracking off stays in the table until its
        // keys change.
        a.call(&["CLIENT", "TRACKING", "OFF"]).await?;
        info.push(figures(&mut b).await?);
        let mut mset = vec!["MSET".to_owned()];
        for k in keys.iter().chain(std::iter::once(&"tk-extra".to_owned())) {
            mset.push(k.clone());
            mset.push("v".to_owned());
        }
        b.call(&mset).await?;
        let after_off = invalidated(&mut a).await?;
        info.push(figures(&mut b).await?);
        a.call(&["CLIENT", "TRACKING", "ON"]).await?;
        a.call(&["GET", "tk0"]).await?;
        b.call(&["FLUSHALL"]).await?;
        info.push(figures(&mut b).await?);
        // Their flush invalidations come before these replies.
        for conn in [&mut c, &mut a] {
            conn.send(&["CLIENT", "TRACKING", "OFF"]).await?;
            while matches!(reply_within(conn, PUBSUB_PATIENCE).await, Reply::Push(_)) {}
        }
        info.push(figures(&mut b).await?);
        b.call(&["CONFIG", "SET", "tracking-table-max-keys", "1000000"])
            .await?;
        let mut all = evicted.clone();
        all.extend(evicted_more.iter().cloned());
        seen.push([all, after_off]);
        evicted_sets.push(evicted);
        infos.push(info);
    }
    for (i, (r, c)) in infos[0].iter().zip(&infos[1]).enumerate() {
        compared += 1;
        if r != c {
            mismatches.push(format!(
                "INFO at checkpoint {i}:\n  redis: {r:?}\n  cairn: {c:?}"
            ));
        }
    }
    compared += 1;
    if let [r, c] = evicted_sets.as_slice()
        && r.len() != c.len()
    {
        mismatches.push(format!(
            "evicted keys: redis invalidated {} ({r:?}), cairn {} ({c:?})",
            r.len(),
            c.len()
        ));
    }
    for (name, [gone, later]) in ["redis", "cairn"].iter().zip(&seen) {
        // Each evicted key once, and only keys that were read; a client
        // with tracking off is sent nothing, though its keys stay in the
        // table until they change.
        let mut unique = gone.clone();
        unique.sort();
        unique.dedup();
        let read = |k: &Vec<u8>| k == b"tk-extra" || keys.iter().any(|w| w.as_bytes() == &k[..]);
        compared += 1;
        if unique.len() != gone.len() || !gone.iter().all(read) || !later.is_empty() {
            mismatches.push(format!(
                "{name}: evicted {gone:?}, then invalidated {later:?} with tracking off"
            ));
        }
    }
    println!(
        "tracking table: {compared} comparisons, {} mismatches",
        mismatches.len()
    );
    for m in &mismatches {
        println!("{m}");
    }
    cairn.shutdown().await?;
    drop(redis);
    anyhow::ensure!(mismatches.is_empty(), "{} mismatches", mismatches.len());
    Ok(())
}

// ---------------------------------------------------------------------------
// Geo and SORT

/// How a geo or SORT reply is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fam {
    /// Exactly.
    Exact,
    /// As a multiset (Redis' order follows its hash tables).
    Unordered,
    /// Only the number of items (a subset Redis picks in hash order).
    Len,
}

/// Sends `cmd` to both servers and records a difference under `how`.
async fn check_fam(
    duo: &mut Duo,
    step: usize,
    resp3: bool,
    cmd: &[String],
    how: Fam,
) -> anyhow::Result<(Reply, Reply)> {
    let (r, c) = duo.both(resp3, cmd).await?;
    duo.log(step, resp3, cmd, &r);
    let same = match (how, &r, &c) {
        (Fam::Exact, _, _) => r == c,
        (Fam::Unordered, _, _) => normalize(&r, Cmp::Unordered) == normalize(&c, Cmp::Unordered),
        (Fam::Len, Reply::Array(a), Reply::Array(b)) => a.len() == b.len(),
        (Fam::Len, _, _) => r == c,
    };
    if !same {
        duo.record(step, resp3, cmd, &r, &c, "geo/sort case");
    }
    Ok((r, c))
}

/// A coordinate pair as text: anywhere, near a pole, near the
/// antimeridian, in one of a few clusters, or on a limit.
fn geo_point(rng: &mut StdRng) -> (String, String) {
    const LAT: f64 = 85.051_128_78;
    let (lon, lat): (f64, f64) = match rng.random_range(0..10) {
        0..=2 => (
            rng.random_range(-180.0..=180.0),
            rng.random_range(-LAT..=LAT),
        ),
        3 | 4 => {
            let lat = rng.random_range(78.0..=LAT);
            let lat = if rng.random_bool(0.5) { lat } else { -lat };
            (rng.random_range(-180.0..=180.0), lat)
        }
        5 | 6 => {
            let lon = rng.random_range(178.5..=180.0);
            let lon = if rng.random_bool(0.5) { lon } else { -lon };
            (lon, rng.random_range(-60.0..=60.0))
        }
        7 | 8 => {
            let centres = [
                (13.36, 38.11),
                (-0.12, 51.5),
                (139.7, 35.7),
                (-73.98, 40.75),
            ];
            let (x, y) = centres[rng.random_range(0..centres.len())];
            (
                x + rng.random_range(-0.6..0.6),
                y + rng.random_range(-0.6..0.6),
            )
        }
        _ => {
            let lons = [-180.0, 180.0, 0.0, 179.999_999];
            let lats = [-LAT, LAT, 0.0, 85.0];
            (lons[rng.random_range(0..4)], lats[rng.random_range(0..4)])
        }
    };
    let prec = rng.random_range(2..=9);
    (format!("{lon:.prec$}"), format!("{lat:.prec$}"))
}

fn geo_unit(rng: &mut StdRng) -> &'static str {
    ["m", "km", "ft", "mi", "KM", "M"][rng.random_range(0..6)]
}

/// A distance (in meters, 1 m to 6,000 km, log-uniform) in `unit`.
fn geo_distance(rng: &mut StdRng, unit: &str) -> String {
    let meters = 10f64.powf(rng.random_range(0.0..6.8));
    let per = match unit.to_ascii_lowercase().as_str() {
        "km" => 1000.0,
        "ft" => 0.3048,
        "mi" => 1609.34,
        _ => 1.0,
    };
    format!("{:.3}", meters / per)
}

/// The optional reply/ordering/COUNT options of a search, shuffled.
fn geo_options(rng: &mut StdRng, with: bool) -> Vec<String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    if with {
        for w in ["WITHDIST", "WITHHASH", "WITHCOORD"] {
            if rng.random_bool(0.4) {
                groups.push(v![w]);
            }
        }
    }
    match rng.random_range(0..3) {
        0 => groups.push(v!["ASC"]),
        1 => groups.push(v!["DESC"]),
        _ => {}
    }
    if rng.random_bool(0.4) {
        let n = rng.random_range(1..30).to_string();
        if rng.random_bool(0.3) {
            groups.push(v!["COUNT", n, "ANY"]);
        } else {
            groups.push(v!["COUNT", n]);
        }
    }
    groups.shuffle(rng);
    groups.concat()
}

/// WATCH `key` on the main RESP2 client, run `touch` on the second client,
/// then MULTI/PING/EXEC: the EXEC reply (nil when `touch` changed `key`)
/// must be Redis'.
async fn watch_case(duo: &mut Duo, key: &str, touch: &[&str]) -> anyhow::Result<usize> {
    let touch: Vec<String> = touch.iter().map(|a| (*a).to_owned()).collect();
    let mut compared = 0;
    check_fam(duo, 0, false, &v!["WATCH", key], Fam::Exact).await?;
    let (r, c) = duo.both_other(&touch).await?;
    if r != c {
        duo.record(0, false, &touch, &r, &c, "second client, under WATCH");
    }
    for cmd in [v!["MULTI"], v!["PING"], v!["EXEC"]] {
        check_fam(duo, 0, false, &cmd, Fam::Exact).await?;
        compared += 1;
    }
    Ok(compared + 1)
}

/// Geo sets filled with the same random points on both servers (a small
/// one Redis keeps as a listpack, a large one as a skiplist), then
/// searched, measured and stored with every option, half on RESP3; the
/// stored results and the sets themselves compared at the end. Error
/// paths are checked by [`GEO_ERRORS`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("geo_matches_redis").await? else {
        return Ok(());
    };
    if !implemented(&mut Conn::connect(cairn.addr()).await?, "geosearch").await? {
        println!("skipped: geo_matches_redis: cairn has no GEOSEARCH");
        cairn.shutdown().await?;
        return Ok(());
    }
    let seed: u64 = env_parse("CAIRN_DIFF_SEED").unwrap_or_else(rand::random);
    println!("geo_matches_redis: seed={seed} (replay with CAIRN_DIFF_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let steps: usize = env_parse("CAIRN_DIFF_GEO_STEPS").unwrap_or(1500);
    let mut duo = Duo::open(redis.addr(), cairn.addr(), seed).await?;
    let mut compared = 0usize;
    let keys = [("gs", 60usize), ("gb", 2500usize)];
    for (key, n) in keys {
        let mut i = 0;
        while i < n {
            let mut cmd = v!["GEOADD", key];
            for _ in 0..rng.random_range(1..50).min(n - i) {
                let (x, y) = geo_point(&mut rng);
                cmd.extend([x, y, format!("p{i}")]);
                i += 1;
            }
            check_fam(&mut duo, i, false, &cmd, Fam::Exact).await?;
            compared += 1;
        }
    }
    let member = |rng: &mut StdRng, n: usize| {
        if rng.random_bool(0.05) {
            "nosuch".to_owned()
        } else {
            format!("p{}", rng.random_range(0..n))
        }
    };
    for step in 0..steps {
        let resp3 = rng.random_bool(0.5);
        let (key, n) = keys[rng.random_range(0..keys.len())];
        let key = if rng.random_bool(0.03) { "gnone" } else { key };
        let unit = geo_unit(&mut rng);
        let mut after: Option<String> = None;
        let cmd: Vec<String> = match rng.random_range(0..12) {
            0 => {
                let mut c = v!["GEODIST", key, member(&mut rng, n), member(&mut rng, n)];
                if rng.random_bool(0.7) {
                    c.push(unit.to_owned());
                }
                c
            }
            1 => {
                let mut c = v!["GEOPOS", key];
                for _ in 0..rng.random_range(1..5) {
                    c.push(member(&mut rng, n));
                }
                c
            }
            2 => {
                let mut c = v!["GEOHASH", key];
                for _ in 0..rng.random_range(1..5) {
                    c.push(member(&mut rng, n));
                }
                c
            }
            3 => {
                let mut c = v!["GEOADD", key];
                for opt in ["NX", "XX", "CH"] {
                    if rng.random_bool(0.3) {
                        c.push(opt.to_owned());
                    }
                }
                if c.iter().any(|a| a == "NX") && c.iter().any(|a| a == "XX") {
                    c.retain(|a| a != "XX");
                }
                for _ in 0..rng.random_range(1..4) {
                    let (x, y) = geo_point(&mut rng);
                    c.extend([x, y, member(&mut rng, n + 5)]);
                }
                c
            }
            4 | 5 => {
                let name = if rng.random_bool(0.5) {
                    "GEORADIUS"
                } else {
                    "GEORADIUS_RO"
                };
                let (x, y) = geo_point(&mut rng);
                let mut c = v![name, key, x, y, geo_distance(&mut rng, unit), unit];
                c.extend(geo_options(&mut rng, true));
                c
            }
            6 => {
                let name = if rng.random_bool(0.5) {
                    "GEORADIUSBYMEMBER"
                } else {
                    "GEORADIUSBYMEMBER_RO"
                };
                let mut c = v![
                    name,
                    key,
                    member(&mut rng, n),
                    geo_distance(&mut rng, unit),
                    unit
                ];
                c.extend(geo_options(&mut rng, true));
                c
            }
            7..=9 => {
                let mut c = v!["GEOSEARCH", key];
                c.extend(geo_search_args(&mut rng, n, unit, &member));
                c.extend(geo_options(&mut rng, true));
                c
            }
            10 => {
                let dst = if rng.random_bool(0.1) {
                    key.to_owned()
                } else {
                    "gdst".to_owned()
                };
                let mut c = v!["GEOSEARCHSTORE", dst.clone(), key];
                c.extend(geo_search_args(&mut rng, n, unit, &member));
                c.extend(geo_options(&mut rng, false));
                if rng.random_bool(0.5) {
                    c.push("STOREDIST".to_owned());
                }
                after = Some(dst);
                c
            }
            _ => {
                let (x, y) = geo_point(&mut rng);
                let mut c = if rng.random_bool(0.5) {
                    v!["GEORADIUS", key, x, y, geo_distance(&mut rng, unit), unit]
                } else {
                    v![
                        "GEORADIUSBYMEMBER",
                        key,
                        member(&mut rng, n),
                        geo_distance(&mut rng, unit),
                        unit
                    ]
                };
                c.extend(geo_options(&mut rng, false));
                let dst = "gdst2".to_owned();
                c.extend(v![
                    if rng.random_bool(0.5) {
                        "STORE"
                    } else {
                        "STOREDIST"
                    },
                    dst.clone()
                ]);
                after = Some(dst);
                c
            }
        };
        check_fam(&mut duo, step, resp3, &cmd, Fam::Exact).await?;
        compared += 1;
        if let Some(dst) = after {
            for c in [
                v!["ZRANGE", dst.clone(), "0", "-1", "WITHSCORES"],
                v!["EXISTS", dst],
            ] {
                check_fam(&mut duo, step, resp3, &c, Fam::Exact).await?;
                compared += 1;
            }
        }
    }
    for cmd in GEO_ERRORS {
        let cmd: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        for resp3 in [false, true] {
            check_fam(&mut duo, 0, resp3, &cmd, Fam::Exact).await?;
            compared += 1;
        }
    }
    // Stores touch watched keys, as ZADD does; a search that finds
    // nothing deletes the destination, which WATCH sees too.
    compared += watch_case(
        &mut duo,
        "gw",
        &[
            "GEOSEARCHSTORE",
            "gw",
            "gs",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "30000",
            "km",
        ],
    )
    .await?;
    compared += watch_case(
        &mut duo,
        "gw",
        &[
            "GEOSEARCHSTORE",
            "gw",
            "gs",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "m",
        ],
    )
    .await?;
    compared += watch_case(
        &mut duo,
        "gw",
        &[
            "GEORADIUS",
            "gs",
            "0",
            "0",
            "30000",
            "km",
            "STOREDIST",
            "gw",
        ],
    )
    .await?;
    compared += watch_case(
        &mut duo,
        "gw",
        &[
            "GEORADIUS",
            "gs",
            "0",
            "0",
            "30000",
            "km",
            "COUNT",
            "0",
            "STORE",
            "gw",
        ],
    )
    .await?;
    for key in ["gs", "gb"] {
        let cmd = v!["ZRANGE", key, "0", "-1", "WITHSCORES"];
        check_fam(&mut duo, steps, false, &cmd, Fam::Exact).await?;
        compared += 1;
    }
    println!(
        "geo_matches_redis: {compared} comparisons, {} differences",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// FROMMEMBER|FROMLONLAT and BYRADIUS|BYBOX, in either order.
fn geo_search_args(
    rng: &mut StdRng,
    n: usize,
    unit: &str,
    member: &dyn Fn(&mut StdRng, usize) -> String,
) -> Vec<String> {
    let from = if rng.random_bool(0.5) {
        v!["FROMMEMBER", member(rng, n)]
    } else {
        let (x, y) = geo_point(rng);
        v!["FROMLONLAT", x, y]
    };
    let by = if rng.random_bool(0.5) {
        v!["BYRADIUS", geo_distance(rng, unit), unit]
    } else {
        v![
            "BYBOX",
            geo_distance(rng, unit),
            geo_distance(rng, unit),
            unit
        ]
    };
    if rng.random_bool(0.5) {
        [from, by].concat()
    } else {
        [by, from].concat()
    }
}

/// Geo error paths and edge cases, run on both protocols after the
/// randomized part (so `gs` exists; `gstr` is created as a string).
const GEO_ERRORS: &[&[&str]] = &[
    &["SET", "gstr", "x"],
    &["GEOADD", "gstr", "1", "1", "a"],
    &["GEOADD", "ge", "200", "100", "x"],
    &["GEOADD", "ge", "-180.0000001", "0", "x"],
    &["GEOADD", "ge", "0", "85.06", "x"],
    &["GEOADD", "ge", "abc", "1", "x"],
    &["GEOADD", "ge", "1e400", "1", "x"],
    &["GEOADD", "ge", "1", "1"],
    &["GEOADD", "ge", "1", "1", "a", "2"],
    &["GEOADD", "ge", "NX", "XX", "1", "1", "a"],
    &["GEOADD", "ge", "NX", "CH", "CH"],
    &["GEOADD", "ge", "GT", "1", "1", "a"],
    &["GEOADD", "ge", "XX", "1", "1", "a"],
    &["GEOADD", "ge", "CH", "1", "1", "a", "1", "1", "a"],
    &["GEOADD", "ge", "CH", "2", "2", "a"],
    &[
        "GEOADD",
        "ge",
        "180",
        "85.05112878",
        "n",
        "-180",
        "-85.05112878",
        "s",
    ],
    &["GEOPOS", "ge", "n", "s", "a", "zz"],
    &["GEOHASH", "ge", "n", "s", "a", "zz"],
    &["GEODIST", "ge", "n", "s"],
    &["GEODIST", "ge", "n", "s", "km"],
    &["GEODIST", "ge", "n", "s", "parsec"],
    &["GEODIST", "ge", "n", "s", "km", "x"],
    &["GEODIST", "nokey", "n", "s", "parsec"],
    &["GEODIST", "nokey", "n", "s"],
    &["GEODIST", "gstr", "n", "s"],
    &["GEOPOS", "gstr", "n"],
    &["GEOPOS", "nokey", "n", "s"],
    &["GEOHASH", "nokey", "n"],
    &["GEOHASH", "gstr", "n"],
    &[
        "ZADD",
        "gz",
        "0",
        "zero",
        "4503599627370495",
        "top",
        "-5",
        "neg",
        "1e300",
        "huge",
        "1.5",
        "frac",
    ],
    &["GEOPOS", "gz", "zero", "top", "neg", "huge", "frac"],
    &["GEOHASH", "gz", "zero", "top", "neg", "huge", "frac"],
    &["GEODIST", "gz", "zero", "top"],
    &["GEORADIUS", "ge", "0", "0", "-1", "km"],
    &["GEORADIUS", "ge", "0", "0", "abc", "km"],
    &["GEORADIUS", "ge", "0", "0", "1", "parsec"],
    &["GEORADIUS", "ge", "500", "0", "1", "km"],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "COUNT", "0"],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "COUNT", "-3"],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "COUNT", "x"],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "COUNT"],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "ANY"],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "BOGUS"],
    &[
        "GEORADIUS",
        "ge",
        "0",
        "0",
        "1",
        "km",
        "STORE",
        "d",
        "WITHDIST",
    ],
    &["GEORADIUS", "ge", "0", "0", "1", "km", "STORE"],
    &["GEORADIUS_RO", "ge", "0", "0", "1", "km", "STORE", "d"],
    &["GEORADIUS", "nokey", "0", "0", "1", "km"],
    &["GEORADIUS", "nokey", "0", "0", "1", "km", "STORE", "gs"],
    &["GEORADIUS", "gstr", "0", "0", "1", "km"],
    &[
        "GEORADIUS",
        "ge",
        "180",
        "85",
        "20000",
        "km",
        "ASC",
        "WITHCOORD",
        "WITHDIST",
        "WITHHASH",
    ],
    &["GEORADIUS", "ge", "0", "0", "0", "m"],
    &["GEORADIUSBYMEMBER", "ge", "zz", "1", "km"],
    &["GEORADIUSBYMEMBER", "nokey", "zz", "x", "parsec"],
    &["GEORADIUSBYMEMBER", "nokey", "zz", "1", "km", "BOGUS"],
    &["GEORADIUSBYMEMBER", "ge", "n", "1", "km", "WITHDIST"],
    &["GEORADIUSBYMEMBER", "gstr", "n", "1", "km"],
    &["GEOSEARCH", "ge", "BYRADIUS", "1", "km"],
    &["GEOSEARCH", "ge", "FROMLONLAT", "0", "0"],
    &[
        "GEOSEARCH",
        "ge",
        "FROMMEMBER",
        "n",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "FROMMEMBER",
        "n",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
        "BYBOX",
        "1",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYBOX",
        "1",
        "-1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYBOX",
        "x",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYBOX",
        "1",
        "x",
        "km",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYBOX",
        "1",
        "1",
        "parsec",
    ],
    &["GEOSEARCH", "ge", "FROMMEMBER", "zz", "BYRADIUS", "1", "km"],
    &[
        "GEOSEARCH",
        "nokey",
        "FROMMEMBER",
        "zz",
        "BYRADIUS",
        "1",
        "km",
    ],
    &["GEOSEARCH", "nokey", "FROMMEMBER", "zz"],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
        "STORE",
        "x",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
        "STOREDIST",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "30000",
        "km",
        "WITHCOORD",
    ],
    &[
        "GEOSEARCH",
        "ge",
        "FROMMEMBER",
        "n",
        "BYBOX",
        "40000",
        "40000",
        "km",
        "DESC",
        "WITHDIST",
    ],
    &[
        "GEOSEARCHSTORE",
        "gd",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
        "WITHDIST",
    ],
    &[
        "GEOSEARCHSTORE",
        "gd",
        "nokey",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCHSTORE",
        "gd",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "30000",
        "km",
        "STOREDIST",
    ],
    &["ZRANGE", "gd", "0", "-1", "WITHSCORES"],
    &[
        "GEOSEARCHSTORE",
        "gd",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "m",
    ],
    &["EXISTS", "gd"],
    &[
        "GEOSEARCHSTORE",
        "gstr",
        "ge",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "30000",
        "km",
        "COUNT",
        "1",
    ],
    &["TYPE", "gstr"],
    &[
        "GEOSEARCH",
        "gs",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "30000",
        "km",
        "COUNT",
        "3",
        "ANY",
    ],
    &[
        "GEOSEARCH",
        "gs",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "30000",
        "km",
        "COUNT",
        "3",
        "ANY",
        "DESC",
    ],
];

/// Lists, sets and sorted sets of numbers and words sorted on both
/// servers with random BY (none, weights, hash fields, constant, missing),
/// LIMIT, GET (`#`, strings, hash fields, missing), ASC|DESC, ALPHA and
/// STORE (the stored list compared after), half on RESP3. Where Redis'
/// order follows its hash tables (a set not sorted, ALPHA ties on a set or
/// sorted set), the reply is compared as a multiset, or by length when
/// LIMIT picks the subset. Error paths are in [`SORT_CASES`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_matches_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("sort_matches_redis").await? else {
        return Ok(());
    };
    if !implemented(&mut Conn::connect(cairn.addr()).await?, "sort").await? {
        println!("skipped: sort_matches_redis: cairn has no SORT");
        cairn.shutdown().await?;
        return Ok(());
    }
    let seed: u64 = env_parse("CAIRN_DIFF_SEED").unwrap_or_else(rand::random);
    println!("sort_matches_redis: seed={seed} (replay with CAIRN_DIFF_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let steps: usize = env_parse("CAIRN_DIFF_SORT_STEPS").unwrap_or(1500);
    let mut duo = Duo::open(redis.addr(), cairn.addr(), seed).await?;
    let mut compared = 0usize;

    // Elements: integers (an intset in Redis), decimals, words; each
    // with a unique weight string `w_<e>`, a hash `h_<e>` with a unique
    // field `f` (and sometimes `g`), and a GET target `o_<e>`.
    let mut numbers: Vec<String> = (0..40)
        .map(|_| rng.random_range(-1000i64..1000).to_string())
        .collect();
    numbers.extend((0..10).map(|_| format!("{:.3}", rng.random_range(-50.0..50.0))));
    let ints: Vec<String> = (0..30)
        .map(|_| rng.random_range(-500i64..500).to_string())
        .collect();
    let words: Vec<String> = (0..40)
        .map(|i| {
            let len = rng.random_range(1..6);
            let w: String = (0..len)
                .map(|_| char::from(rng.random_range(b'A'..=b'z')))
                .filter(char::is_ascii_alphanumeric)
                .collect();
            format!("{w}{}", i % 7)
        })
        .collect();
    let mut all: BTreeSet<String> = BTreeSet::new();
    all.extend(numbers.iter().cloned());
    all.extend(ints.iter().cloned());
    all.extend(words.iter().cloned());
    let mut setup: Vec<Vec<String>> = Vec::new();
    for (i, e) in all.iter().enumerate() {
        let w = match i % 4 {
            0 => format!("{}", rng.random_range(-100i64..100)),
            1 => format!("{:.4}", rng.random_range(-10.0..10.0)),
            2 => format!("w{i:03}"),
            _ => format!("{}.{i}", rng.random_range(0..9)),
        };
        if rng.random_bool(0.9) {
            setup.push(v!["SET", format!("w_{e}"), w]);
        }
        if rng.random_bool(0.85) {
            let f = format!("{}{i}", rng.random_range(0..50));
            setup.push(v!["HSET", format!("h_{e}"), "f", f, "g", format!("g{i}")]);
        }
        if rng.random_bool(0.8) {
            setup.push(v!["SET", format!("o_{e}"), format!("val-{e}")]);
        }
    }
    // Lists keep duplicates; sets and sorted sets do not.
    setup.push([v!["RPUSH", "sl"], numbers.clone()].concat());
    setup.push([v!["RPUSH", "sw"], words.clone()].concat());
    setup.push([v!["SADD", "ss"], ints.clone()].concat());
    setup.push([v!["SADD", "sn"], numbers.clone()].concat());
    setup.push([v!["SADD", "sx"], words.clone()].concat());
    let mut zadd = v!["ZADD", "sz"];
    for e in numbers.iter().chain(words.iter()) {
        zadd.extend([format!("{}", rng.random_range(-20..20)), e.clone()]);
    }
    setup.push(zadd);
    setup.push(v!["SET", "sstr", "x"]);
    setup.push(v!["HSET", "shash", "a", "1"]);
    setup.push(v!["RPUSH", "sempty_src", "x"]);
    setup.push(v!["LPOP", "sempty_src"]);
    for cmd in &setup {
        check_fam(&mut duo, 0, false, cmd, Fam::Exact).await?;
    }

    let sources = ["sl", "sw", "ss", "sn", "sx", "sz", "nokey", "sstr", "shash"];
    for step in 0..steps {
        let resp3 = rng.random_bool(0.5);
        let src = sources[rng.random_range(0..sources.len())];
        let ro = rng.random_bool(0.15);
        let mut groups: Vec<Vec<String>> = Vec::new();
        let by = match rng.random_range(0..7) {
            0 | 1 => None,
            2 => Some("w_*"),
            3 => Some("h_*->f"),
            4 => Some("nosort"),
            5 => Some("missing_*"),
            _ => Some("h_*->nofield"),
        };
        if let Some(b) = by {
            groups.push(v!["BY", b]);
        }
        let limit = rng.random_bool(0.4);
        if limit {
            let start = rng.random_range(-3i64..60).to_string();
            let count = rng.random_range(-2i64..30).to_string();
            groups.push(v!["LIMIT", start, count]);
        }
        let gets = if rng.random_bool(0.4) {
            rng.random_range(1..4)
        } else {
            0
        };
        for _ in 0..gets {
            let g = [
                "#", "o_*", "h_*->f", "h_*->g", "nosuch_*", "constant", "w_*",
            ][rng.random_range(0..7)];
            groups.push(v!["GET", g]);
        }
        let desc = rng.random_bool(0.4);
        if desc {
            groups.push(v!["DESC"]);
        } else if rng.random_bool(0.3) {
            groups.push(v!["ASC"]);
        }
        let alpha = rng.random_bool(0.5);
        if alpha {
            groups.push(v!["ALPHA"]);
        }
        let store = !ro && rng.random_bool(0.3);
        if store {
            groups.push(v!["STORE", "sdst"]);
        }
        groups.shuffle(&mut rng);
        let mut cmd = v![if ro { "SORT_RO" } else { "SORT" }, src];
        cmd.extend(groups.concat());
        // Where Redis walks a hash table, its order is its own.
        let is_set = matches!(src, "ss" | "sn" | "sx");
        let dontsort = by.is_some_and(|b| !b.contains('*'));
        let alpha_ties =
            alpha && matches!(by, Some("missing_*" | "h_*->nofield" | "w_*" | "h_*->f"));
        let unordered = (is_set && dontsort && !store)
            || (alpha_ties && (is_set || src == "sz") && !(dontsort))
            || (alpha_ties && limit && !dontsort);
        let how = match (unordered, limit) {
            (false, _) => Fam::Exact,
            (true, false) => Fam::Unordered,
            (true, true) => Fam::Len,
        };
        check_fam(&mut duo, step, resp3, &cmd, how).await?;
        compared += 1;
        if store {
            for c in [v!["LRANGE", "sdst", "0", "-1"], v!["EXISTS", "sdst"]] {
                check_fam(
                    &mut duo,
                    step,
                    resp3,
                    &c,
                    if unordered { how } else { Fam::Exact },
                )
                .await?;
                compared += 1;
            }
            if unordered {
                // Its order is each server's own: not compared further.
                duo.both(false, &v!["DEL", "sdst"]).await?;
            }
        }
    }
    compared += watch_case(&mut duo, "sw1", &["SORT", "sl", "STORE", "sw1"]).await?;
    compared += watch_case(&mut duo, "sw1", &["SORT", "nokey", "STORE", "sw1"]).await?;
    compared += watch_case(
        &mut duo,
        "sw1",
        &["SORT", "sl", "LIMIT", "0", "0", "STORE", "sw1"],
    )
    .await?;
    compared += watch_case(&mut duo, "sw1", &["SORT", "sw", "STORE", "sw1"]).await?;
    compared += watch_case(&mut duo, "sl", &["SORT", "sl", "LIMIT", "0", "3"]).await?;
    for cmd in SORT_CASES {
        let cmd: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        for resp3 in [false, true] {
            check_fam(&mut duo, 0, resp3, &cmd, Fam::Exact).await?;
            compared += 1;
        }
    }
    println!(
        "sort_matches_redis: {compared} comparisons, {} differences",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// SORT edge cases and errors, on both protocols.
const SORT_CASES: &[&[&str]] = &[
    &["SORT", "sstr"],
    &["SORT", "shash"],
    &["SORT", "nokey"],
    &["SORT", "nokey", "STORE", "sdst"],
    &["EXISTS", "sdst"],
    &["SORT", "sw"],
    &["SORT", "sl", "LIMIT", "1"],
    &["SORT", "sl", "LIMIT", "a", "1"],
    &["SORT", "sl", "LIMIT", "0", "b"],
    &["SORT", "sl", "BOGUS"],
    &["SORT", "sl", "BY"],
    &["SORT", "sl", "GET"],
    &["SORT", "sl", "STORE"],
    &["SORT_RO", "sl", "STORE", "x"],
    &["SORT", "sl", "LIMIT", "0", "0"],
    &["SORT", "sl", "LIMIT", "0", "0", "STORE", "sdst"],
    &["SORT", "sl", "LIMIT", "-5", "-5"],
    &["SORT", "sl", "LIMIT", "1000", "5"],
    &[
        "SORT",
        "sl",
        "LIMIT",
        "9223372036854775807",
        "9223372036854775807",
    ],
    &["SORT", "sl", "BY", "nosort", "LIMIT", "1000", "5", "DESC"],
    &["SORT", "sz", "BY", "nosort", "LIMIT", "3", "4", "DESC"],
    &["SORT", "sz", "BY", "nosort", "LIMIT", "3", "4"],
    &[
        "SORT", "sz", "BY", "nosort", "DESC", "GET", "#", "GET", "o_*",
    ],
    &["SORT", "ss", "BY", "nosort", "STORE", "sdst"],
    &["LRANGE", "sdst", "0", "-1"],
    &[
        "EVAL",
        "return redis.call('sort', KEYS[1], 'by', 'nosort')",
        "1",
        "sx",
    ],
    &[
        "EVAL",
        "return redis.call('sort', KEYS[1], 'by', 'nosort', 'limit', '2', '5')",
        "1",
        "ss",
    ],
    &[
        "RPUSH", "sodd", "1", "", " 2", "0x10", "1e2", "-inf", "+inf", "3 ",
    ],
    &["SORT", "sodd"],
    &["SORT", "sodd", "ALPHA"],
    &[
        "RPUSH", "sodd2", "1", "", " 2", "0x10", "1e2", "-inf", "+inf",
    ],
    &["SORT", "sodd2"],
    &["SORT", "sodd2", "DESC"],
    &["SET", "sstrdst", "x"],
    &["SORT", "sl", "STORE", "sstrdst"],
    &["TYPE", "sstrdst"],
    &[
        "SORT", "sl", "BY", "w_*", "GET", "#", "GET", "w_*", "STORE", "sdst",
    ],
    &["LRANGE", "sdst", "0", "-1"],
    &["SORT", "sl", "BY", "w_*->", "GET", "w_*->"],
    &[
        "SORT", "sl", "BY", "h_*->f", "GET", "h_*->f", "LIMIT", "2", "3", "DESC",
    ],
    &["SORT", "sl", "GET", "*"],
    &["SORT", "sl", "BY", "", "GET", ""],
    &[
        "SORT", "sw", "ALPHA", "BY", "w_*", "DESC", "LIMIT", "0", "3",
    ],
    &["RPUSH", "sodd5", "nan", "1"],
    &["SORT", "sodd5"],
    // Last: an overflow or underflow leaves `errno` at ERANGE in Redis,
    // and SORT tests `errno` without clearing it first, so every later
    // numeric SORT of non-integer strings fails there until some other
    // call changes `errno` (a Redis bug cairn does not reproduce).
    &["RPUSH", "sodd3", "1", "1e400"],
    &["SORT", "sodd3"],
    &["RPUSH", "sodd4", "1", "1e-400"],
    &["SORT", "sodd4"],
];

/// `ql_nodes`, `ql_avg_node` and `ql_listpack_max` of a `DEBUG OBJECT`
/// reply: a list's node layout under `list-max-listpack-size`.
fn quicklist_layout(r: &Reply) -> Reply {
    let text = r
        .as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| format!("{r}"));
    let kept: Vec<&str> = text
        .split(' ')
        .filter(|f| {
            f.starts_with("ql_nodes:")
                || f.starts_with("ql_avg_node:")
                || f.starts_with("ql_listpack_max:")
                || f.starts_with("encoding:")
        })
        .collect();
    Reply::Bulk(kept.join(" ").into_bytes())
}

/// `OBJECT ENCODING` under conversion thresholds changed at run time on
/// both servers (`hash-max-listpack-entries`/`-value`,
/// `zset-max-listpack-entries`/`-value`, `set-max-intset-entries`,
/// `list-max-listpack-size`, and their `*-ziplist-*` aliases): small
/// collections grow past each limit, shrink back (no conversion back, as
/// in Redis), a lowered limit converts on the next write, a raised one
/// leaves converted keys alone; every reply and encoding compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoding_thresholds_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("encoding_thresholds_match_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    duo.both(false, &v!["FLUSHALL"]).await?;
    let long = |n: usize| "x".repeat(n);
    let enc = |k: &str| v!["OBJECT", "ENCODING", k];
    let mut script: Vec<Vec<String>> = Vec::new();
    let mut push = |c: Vec<String>| script.push(c);
    // Hashes: entries, then value length, each through its alias too.
    for (entries, value) in [
        ("hash-max-listpack-entries", "hash-max-listpack-value"),
        ("hash-max-ziplist-entries", "hash-max-ziplist-value"),
    ] {
        push(v!["DEL", "h", "h2", "h3"]);
        push(v!["CONFIG", "SET", entries, "4", value, "8"]);
        push(v!["CONFIG", "GET", "hash-max-*"]);
        for i in 0..6 {
            push(v!["HSET", "h", format!("f{i}"), "v"]);
            push(enc("h"));
        }
        for i in 0..5 {
            push(v!["HDEL", "h", format!("f{i}")]);
            push(enc("h"));
        }
        push(v!["HSET", "h2", "f", long(8)]);
        push(enc("h2"));
        push(v!["HSET", "h2", "g", long(9)]);
        push(enc("h2"));
        push(v!["HSET", "h3", long(9), "v"]);
        push(enc("h3"));
        // Raised: converted keys stay, new ones start small.
        push(v!["CONFIG", "SET", entries, "512", value, "64"]);
        push(enc("h"));
        push(v![
            "HSET", "h4", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"
        ]);
        push(enc("h4"));
        // Lowered under a small key: the next write converts it.
        push(v!["CONFIG", "SET", entries, "2"]);
        push(enc("h4"));
        push(v!["HSET", "h4", "a", "9"]);
        push(enc("h4"));
        push(v!["HINCRBY", "h4", "b", "1"]);
        push(enc("h4"));
        push(v!["DEL", "h4"]);
        push(v!["CONFIG", "SET", entries, "512", value, "64"]);
    }
    // Sorted sets.
    for (entries, value) in [
        ("zset-max-listpack-entries", "zset-max-listpack-value"),
        ("zset-max-ziplist-entries", "zset-max-ziplist-value"),
    ] {
        push(v!["DEL", "z", "z2", "z3", "zd"]);
        push(v!["CONFIG", "SET", entries, "3", value, "5"]);
        push(v!["CONFIG", "GET", "zset-max-*"]);
        for i in 0..5 {
            push(v!["ZADD", "z", i.to_string(), format!("m{i}")]);
            push(enc("z"));
        }
        for i in 0..4 {
            push(v!["ZREM", "z", format!("m{i}")]);
            push(enc("z"));
        }
        push(v!["ZADD", "z2", "1", long(5)]);
        push(enc("z2"));
        push(v!["ZADD", "z2", "2", long(6)]);
        push(enc("z2"));
        push(v!["ZINCRBY", "z3", "1", long(6)]);
        push(enc("z3"));
        // Stored results: Redis sizes them by the result.
        push(v!["ZADD", "z4", "1", "a", "2", "b"]);
        push(v!["ZUNIONSTORE", "zd", "2", "z", "z4"]);
        push(enc("zd"));
        push(v!["ZRANGESTORE", "zd", "z2", "0", "-1"]);
        push(enc("zd"));
        push(v!["CONFIG", "SET", entries, "128", value, "64"]);
        push(enc("z"));
        push(v!["ZADD", "z5", "1", "a", "2", "b", "3", "c", "4", "d"]);
        push(enc("z5"));
        push(v!["CONFIG", "SET", entries, "2"]);
        push(v!["ZADD", "z5", "5", "a"]);
        push(enc("z5"));
        push(v!["ZADD", "z5", "6", "e"]);
        push(enc("z5"));
        push(v!["DEL", "z4", "z5"]);
        push(v!["CONFIG", "SET", entries, "128", value, "64"]);
    }
    // Sets: intsets up to the limit, a word converts at once.
    push(v!["CONFIG", "SET", "set-max-intset-entries", "4"]);
    push(v!["CONFIG", "GET", "set-max-intset-entries"]);
    for i in 0..6 {
        push(v!["SADD", "s", i.to_string()]);
        push(enc("s"));
    }
    for i in 0..5 {
        push(v!["SREM", "s", i.to_string()]);
        push(enc("s"));
    }
    push(v!["SADD", "s2", "1", "2"]);
    push(enc("s2"));
    push(v!["SADD", "s2", "w"]);
    push(enc("s2"));
    push(v!["SREM", "s2", "w"]);
    push(enc("s2"));
    push(v!["SADD", "s3", "1", "2", "3"]);
    push(v!["SINTERSTORE", "sd", "s3", "s3"]);
    push(enc("sd"));
    push(v!["CONFIG", "SET", "set-max-intset-entries", "2"]);
    push(v!["SADD", "s3", "4"]);
    push(enc("s3"));
    push(v!["CONFIG", "SET", "set-max-intset-entries", "512"]);
    push(enc("s"));
    // Lists: quicklists whose node layout follows the setting.
    for (name, size) in [
        ("list-max-listpack-size", "3"),
        ("list-max-ziplist-size", "5"),
        ("list-max-listpack-size", "1"),
        ("list-max-listpack-size", "-1"),
        ("list-max-listpack-size", "-2"),
    ] {
        push(v!["DEL", "l"]);
        push(v!["CONFIG", "SET", name, size]);
        push(v!["CONFIG", "GET", "list-max-*"]);
        push(v![
            "RPUSH", "l", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"
        ]);
        push(enc("l"));
        push(v!["DEBUG", "OBJECT", "l"]);
        push(v!["LPUSH", "l", "a", "b"]);
        push(v!["DEBUG", "OBJECT", "l"]);
        // Not compared after a removal: cairn merges a node emptied below
        // half with its neighbour, Redis 7.0 leaves it (compatibility.md).
        push(v!["LREM", "l", "0", "5"]);
        push(v!["LLEN", "l"]);
    }
    push(v!["CONFIG", "SET", "list-max-listpack-size", "-2"]);
    let n = script.len();
    for (step, cmd) in script.iter().enumerate() {
        if cmd[0] == "CONFIG" && cmd[1] == "GET" {
            // A pattern's matches come in Redis' dict order.
            duo.check(step, false, cmd, Cmp::Pairs).await?;
        } else if cmd[0] == "DEBUG" {
            let (r, c) = duo.both(false, cmd).await?;
            let (r, c) = (quicklist_layout(&r), quicklist_layout(&c));
            if r != c {
                duo.record(step, false, cmd, &r, &c, "list node layout differs");
            }
        } else {
            duo.check(step, false, cmd, Cmp::Exact).await?;
        }
    }
    println!(
        "encoding thresholds: {n} commands, {} mismatches",
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}

/// `keymiss` (class `m`) of the commands the random run's templates do not
/// reach, on both servers: SORT's source and BY/GET patterns (its STORE
/// form too), the geo searches that store, XREAD (Redis looks a stream up
/// twice) and XREADGROUP, the write commands Redis reads with
/// `lookupKeyRead` (SET GET, GETEX, GETSET, GETDEL, COPY, ZRANGESTORE,
/// BITOP, PFMERGE, BITFIELD GETs), and OBJECT, which reads without the
/// event; each command's (channel, message) list compared byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keymiss_events_match_redis() -> anyhow::Result<()> {
    let Some((redis, cairn)) = start_pair("keymiss_events_match_redis").await? else {
        return Ok(());
    };
    let mut duo = Duo::open(redis.addr(), cairn.addr(), 0).await?;
    duo.both(false, &v!["FLUSHALL"]).await?;
    duo.both(
        false,
        &v!["CONFIG", "SET", "notify-keyspace-events", "KEAm"],
    )
    .await?;
    let mut taps = [
        EventTap::open(redis.addr()).await?,
        EventTap::open(cairn.addr()).await?,
    ];
    let cases: Vec<Vec<String>> = vec![
        v!["RPUSH", "l", "3", "1", "2"],
        v!["SET", "w_1", "5"],
        v!["HSET", "h_2", "f", "x"],
        v!["SORT", "nosuch"],
        v!["SORT", "l", "BY", "w_*"],
        v![
            "SORT", "l", "BY", "w_*", "GET", "h_*->f", "GET", "#", "GET", "o_*"
        ],
        v!["SORT", "l", "BY", "nosort", "GET", "x_*"],
        v!["SORT", "l", "BY", "h_*->f", "STORE", "dst"],
        v!["SORT", "nosuch", "STORE", "dst"],
        v!["SORT_RO", "l", "BY", "q_*", "GET", "#"],
        v!["GEOADD", "g", "13.36", "38.11", "p"],
        v![
            "GEORADIUS",
            "nosuch",
            "13",
            "38",
            "100",
            "km",
            "STORE",
            "gd"
        ],
        v!["GEORADIUS", "g", "13", "38", "100", "km", "STORE", "gd"],
        v!["GEORADIUSBYMEMBER", "nosuch", "p", "100", "km"],
        v![
            "GEOSEARCHSTORE",
            "gd",
            "nosuch",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "km"
        ],
        v![
            "GEOSEARCH",
            "nosuch",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "km"
        ],
        v!["XREAD", "STREAMS", "nosuch", "0"],
        v!["XREAD", "STREAMS", "s1", "s2", "0", "0"],
        v!["XREADGROUP", "GROUP", "g", "c", "STREAMS", "nosuch", ">"],
        v!["SET", "k", "v", "GET"],
        v!["SET", "k2", "v"],
        v!["GETEX", "nosuch"],
        v!["GETSET", "new1", "v"],
        v!["GETDEL", "nosuch"],
        v!["COPY", "nosuch", "d"],
        v!["ZRANGESTORE", "zd", "nosuch", "0", "-1"],
        v!["BITOP", "OR", "bd", "nosuch", "k2"],
        v!["PFMERGE", "pd", "nosuch", "nosuch2"],
        v!["BITFIELD", "nosuch", "GET", "u8", "0"],
        v!["BITFIELD", "bf", "SET", "u8", "0", "1"],
        v!["BITFIELD_RO", "nosuch", "GET", "u8", "0"],
        v!["OBJECT", "ENCODING", "nosuch"],
        v!["OBJECT", "FREQ", "nosuch"],
        v!["TYPE", "nosuch"],
        v!["EXISTS", "nosuch", "nosuch", "k2"],
        v!["MGET", "nosuch", "k2", "nosuch"],
        v!["LCS", "nosuch", "k2"],
        v!["SINTERSTORE", "sd", "nosuch", "nosuch2"],
        v!["ZUNIONSTORE", "zd", "2", "nosuch", "g"],
        v!["PFCOUNT", "nosuch"],
        v!["PFCOUNT", "nosuch", "nosuch2"],
        v!["LMOVE", "nosuch", "d", "LEFT", "LEFT"],
        v!["INCR", "newcounter"],
        v!["TOUCH", "nosuch"],
        v!["EVAL", "return redis.call('GET', KEYS[1])", "1", "nosuch"],
    ];
    let mut events = 0;
    for (step, cmd) in cases.iter().enumerate() {
        let (r, c) = duo.both(false, cmd).await?;
        if normalize(&r, Cmp::Exact) != normalize(&c, Cmp::Exact) {
            duo.record(step, false, cmd, &r, &c, "replies differ");
        }
        let [rt, ct] = &mut taps;
        let r = rt.drain(&mut duo.redis.other).await?;
        let c = ct.drain(&mut duo.cairn.other).await?;
        events += r.len();
        if r != c {
            duo.record(
                step,
                false,
                cmd,
                &show_events(&r),
                &show_events(&c),
                "keyspace events differ",
            );
        }
    }
    println!(
        "keymiss events: {} commands, {events} events compared, {} mismatches",
        cases.len(),
        duo.mismatches.len()
    );
    report(&duo)?;
    cairn.shutdown().await?;
    drop(redis);
    Ok(())
}
