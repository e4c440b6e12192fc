//! Data generators, the model they produce, and the full dump that compares
//! a live server with it: the one place every persistence suite (the
//! in-process ones in `tests/tests/persistence_*.rs` and the process-level
//! campaigns in `cargo xtask test-persistence`) gets its data from.
//!
//! - [`Dataset`] is the model: every key of every database with its typed
//!   value and absolute expiry (unix ms).
//! - [`Spec::generate`] builds a seeded dataset of every type (strings,
//!   lists, hashes, sets, sorted sets), several databases, TTLs, binary and
//!   empty keys and values, and collections above the snapshot chunk size.
//! - [`populate`] writes a dataset to a server; [`dump`] reads everything
//!   back over TCP (SCAN per database, TYPE, the value by type, PTTL), so
//!   "compare everything" is [`Dataset::diff`] of the two.
//! - [`Mutator`] makes seeded random changes, applied to the server and to
//!   the model alike, for the restart and kill campaigns.
//!
//! Everything here is synchronous (the redis crate's blocking client), so
//! xtask can use it as is; async tests call it from `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value as Rv;

/// Databases a cairn (and Redis) server has by default.
pub const DATABASES: u16 = 16;

/// The snapshot codec's chunk size (`cairn_snapshot::DEFAULT_CHUNK_BYTES`):
/// "large" collections are generated above it so they are chunked.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A typed value, as the model keeps it.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A string (integers are strings on the wire too).
    Str(Vec<u8>),
    /// A list, head first.
    List(Vec<Vec<u8>>),
    /// A hash.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// A set.
    Set(BTreeSet<Vec<u8>>),
    /// A sorted set: member to score.
    ZSet(BTreeMap<Vec<u8>, f64>),
    /// A stream with its consumer groups.
    Stream(StreamVal),
}

impl Val {
    /// The name `TYPE` answers for it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::Hash(_) => "hash",
            Val::Set(_) => "set",
            Val::ZSet(_) => "zset",
            Val::Stream(_) => "stream",
        }
    }

    /// Elements (1 for a string): collections with none do not exist in
    /// Redis, so the model deletes them as the server does.
    pub fn len(&self) -> usize {
        match self {
            Val::Str(_) => 1,
            Val::List(v) => v.len(),
            Val::Hash(v) => v.len(),
            Val::Set(v) => v.len(),
            Val::ZSet(v) => v.len(),
            Val::Stream(s) => s.entries.len(),
        }
    }

    /// Whether it is an empty collection (which Redis never stores; a
    /// stream without entries is a value like any other).
    pub fn is_empty(&self) -> bool {
        !matches!(self, Val::Stream(_)) && self.len() == 0
    }

    /// Roughly the bytes of payload it holds.
    pub fn payload_bytes(&self) -> usize {
        match self {
            Val::Str(v) => v.len(),
            Val::List(v) => v.iter().map(Vec::len).sum(),
            Val::Hash(v) => v.iter().map(|(k, v)| k.len() + v.len()).sum(),
            Val::Set(v) => v.iter().map(Vec::len).sum(),
            Val::ZSet(v) => v.keys().map(|k| k.len() + 8).sum(),
            Val::Stream(s) => s
                .entries
                .values()
                .flatten()
                .map(|(f, v)| f.len() + v.len())
                .sum(),
        }
    }
}

/// One key's value and absolute expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The value.
    pub value: Val,
    /// Absolute expiry in unix ms, if any.
    pub expire_at_ms: Option<i64>,
}

/// The model of a whole server: (database, key) to item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// Every key.
    pub items: BTreeMap<(u16, Vec<u8>), Item>,
}

/// Writes bytes the way `redis-cli` quotes them.
pub struct Quoted<'a>(pub &'a [u8]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0.iter().take(64) {
            match b {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        if self.0.len() > 64 {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        f.write_str("\"")
    }
}

fn describe(item: &Item) -> String {
    let ttl = match item.expire_at_ms {
        Some(at) => format!("expires in {} ms", at - now_ms()),
        None => "no ttl".into(),
    };
    match &item.value {
        Val::Str(s) => format!("string {} ({ttl})", Quoted(s)),
        v => format!("{} of {} elements ({ttl})", v.type_name(), v.len()),
    }
}

/// Where two values differ, for a readable message.
fn value_difference(want: &Val, got: &Val) -> String {
    match (want, got) {
        (Val::List(a), Val::List(b)) => match a.iter().zip(b).position(|(x, y)| x != y) {
            Some(i) => format!("element {i} differs"),
            None => format!("lengths {} vs {}", a.len(), b.len()),
        },
        (Val::Hash(a), Val::Hash(b)) => first_key_difference(a.keys(), b.keys(), a.len(), b.len())
            .unwrap_or_else(|| {
                let k = a
                    .iter()
                    .find(|(k, v)| b.get(*k) != Some(*v))
                    .map(|(k, _)| k);
                format!(
                    "field {} has another value",
                    Quoted(k.map_or(&[][..], |k| k))
                )
            }),
        (Val::Set(a), Val::Set(b)) => {
            first_key_difference(a.iter(), b.iter(), a.len(), b.len()).unwrap_or_default()
        }
        (Val::ZSet(a), Val::ZSet(b)) => first_key_difference(a.keys(), b.keys(), a.len(), b.len())
            .unwrap_or_else(|| {
                let k = a
                    .iter()
                    .find(|(k, v)| b.get(*k).is_none_or(|s| !same_score(**v, *s)));
                match k {
                    Some((k, v)) => format!("member {} score {v} vs {:?}", Quoted(k), b.get(k)),
                    None => String::new(),
                }
            }),
        (Val::Stream(a), Val::Stream(b)) => a.difference(b).unwrap_or_default(),
        _ => format!("{} vs {}", want.type_name(), got.type_name()),
    }
}

fn first_key_difference<'a>(
    a: impl Iterator<Item = &'a Vec<u8>>,
    b: impl Iterator<Item = &'a Vec<u8>>,
    la: usize,
    lb: usize,
) -> Option<String> {
    let a: BTreeSet<&Vec<u8>> = a.collect();
    let b: BTreeSet<&Vec<u8>> = b.collect();
    if let Some(k) = a.difference(&b).next() {
        return Some(format!("{} missing (sizes {la} vs {lb})", Quoted(k)));
    }
    b.difference(&a)
        .next()
        .map(|k| format!("{} unexpected (sizes {la} vs {lb})", Quoted(k)))
}

fn same_score(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn same_value(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::ZSet(x), Val::ZSet(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_score(*v, *w)))
        }
        (Val::Stream(x), Val::Stream(y)) => x.difference(y).is_none(),
        _ => a == b,
    }
}

/// When a [`dump`] ran, in unix ms: each key was read at some instant in
/// between, so a key whose expiry falls inside may or may not be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpWindow {
    /// Just before the first command of the dump.
    pub started_ms: i64,
    /// Just after its last reply.
    pub finished_ms: i64,
}

/// How one key of the model (`want`) compares with what a dump read
/// (`got`), judged at the time of the dump: a key whose expiry is at or
/// before the dump's start must be absent; one without expiry, or expiring
/// more than `ttl_tolerance_ms` after its end, must be present with the
/// same type and value and an expiry within `ttl_tolerance_ms`; in between
/// it may be either (if present, it must still be right). `None` when they
/// agree, else why not.
pub fn item_difference_at(
    want: Option<&Item>,
    got: Option<&Item>,
    window: DumpWindow,
    ttl_tolerance_ms: i64,
) -> Option<String> {
    let (want, got) = match (want, got) {
        (None, None) => return None,
        (None, Some(g)) => return Some(format!("unexpected: {}", describe(g))),
        (Some(w), got) => (w, got),
    };
    let must_be_absent = want.expire_at_ms.is_some_and(|e| e <= window.started_ms);
    let must_be_present = want
        .expire_at_ms
        .is_none_or(|e| e > window.finished_ms + ttl_tolerance_ms);
    match got {
        None if must_be_present => Some(format!("missing: want {}", describe(want))),
        None => None,
        Some(g) if must_be_absent => Some(format!(
            "present although it expired {} ms before the dump: {}",
            window.started_ms - want.expire_at_ms.unwrap_or_default(),
            describe(g)
        )),
        Some(g) if !same_value(&want.value, &g.value) => Some(format!(
            "want {}, got {}: {}",
            describe(want),
            describe(g),
            value_difference(&want.value, &g.value)
        )),
        Some(g) => {
            let ttl_ok = match (want.expire_at_ms, g.expire_at_ms) {
                (None, None) => true,
                (Some(a), Some(b)) => (a - b).abs() <= ttl_tolerance_ms,
                _ => false,
            };
            (!ttl_ok).then(|| {
                format!(
                    "expiry: want {:?}, got {:?} (tolerance {ttl_tolerance_ms} ms)",
                    want.expire_at_ms, g.expire_at_ms
                )
            })
        }
    }
}

/// The differences between an expected and an actual dataset.
#[derive(Debug, Default)]
pub struct Diff {
    /// Keys expected but absent.
    pub missing: Vec<(u16, Vec<u8>)>,
    /// Keys present but not expected.
    pub unexpected: Vec<(u16, Vec<u8>)>,
    /// Keys whose value or TTL differs, with a description.
    pub changed: Vec<(u16, Vec<u8>, String)>,
}

impl Diff {
    /// Whether the datasets are equal.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} missing, {} unexpected, {} changed",
            self.missing.len(),
            self.unexpected.len(),
            self.changed.len()
        )?;
        for (db, k) in self.missing.iter().take(10) {
            writeln!(f, "  missing    db{db} {}", Quoted(k))?;
        }
        for (db, k) in self.unexpected.iter().take(10) {
            writeln!(f, "  unexpected db{db} {}", Quoted(k))?;
        }
        for (db, k, why) in self.changed.iter().take(10) {
            writeln!(f, "  changed    db{db} {}: {why}", Quoted(k))?;
        }
        Ok(())
    }
}

impl Dataset {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keys per database.
    pub fn per_db(&self) -> BTreeMap<u16, usize> {
        let mut out = BTreeMap::new();
        for (db, _) in self.items.keys() {
            *out.entry(*db).or_insert(0) += 1;
        }
        out
    }

    /// Keys per type name.
    pub fn per_type(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for item in self.items.values() {
            *out.entry(item.value.type_name()).or_insert(0) += 1;
        }
        out
    }

    /// Inserts or replaces a key.
    pub fn insert(
        &mut self,
        db: u16,
        key: impl Into<Vec<u8>>,
        value: Val,
        expire_at_ms: Option<i64>,
    ) {
        self.items.insert(
            (db, key.into()),
            Item {
                value,
                expire_at_ms,
            },
        );
    }

    /// Adds every key of `other`, replacing those that exist.
    pub fn extend(&mut self, other: &Dataset) {
        for (k, v) in &other.items {
            self.items.insert(k.clone(), v.clone());
        }
    }

    /// Drops keys whose expiry is at or before `at_ms` (what a server
    /// would no longer show).
    pub fn without_expired(&self, at_ms: i64) -> Dataset {
        Dataset {
            items: self
                .items
                .iter()
                .filter(|(_, v)| v.expire_at_ms.is_none_or(|e| e > at_ms))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Compares `self` (expected) with `actual`; absolute expiries may
    /// differ by `ttl_tolerance_ms` (a dump derives them from PTTL).
    pub fn diff(&self, actual: &Dataset, ttl_tolerance_ms: i64) -> Diff {
        let mut d = Diff::default();
        for (k, want) in &self.items {
            match actual.items.get(k) {
                None => d.missing.push(k.clone()),
                Some(got) => {
                    if !same_value(&want.value, &got.value) {
                        d.changed.push((
                            k.0,
                            k.1.clone(),
                            format!(
                                "want {}, got {}: {}",
                                describe(want),
                                describe(got),
                                value_difference(&want.value, &got.value)
                            ),
                        ));
                    } else {
                        let ttl_ok = match (want.expire_at_ms, got.expire_at_ms) {
                            (None, None) => true,
                            (Some(a), Some(b)) => (a - b).abs() <= ttl_tolerance_ms,
                            _ => false,
                        };
                        if !ttl_ok {
                            d.changed.push((
                                k.0,
                                k.1.clone(),
                                format!(
                                    "expiry: want {:?}, got {:?} (tolerance {ttl_tolerance_ms} ms)",
                                    want.expire_at_ms, got.expire_at_ms
                                ),
                            ));
                        }
                    }
                }
            }
        }
        for k in actual.items.keys() {
            if !self.items.contains_key(k) {
                d.unexpected.push(k.clone());
            }
        }
        d
    }

    /// Compares `self` (the model) with a dump read during `window`, each
    /// key judged by [`item_difference_at`]: keys that expired before the
    /// dump must be gone, keys that outlive it must be there, exactly.
    pub fn diff_at(&self, actual: &Dataset, window: DumpWindow, ttl_tolerance_ms: i64) -> Diff {
        let mut d = Diff::default();
        let keys: BTreeSet<&(u16, Vec<u8>)> =
            self.items.keys().chain(actual.items.keys()).collect();
        for k in keys {
            let (want, got) = (self.items.get(k), actual.items.get(k));
            if let Some(why) = item_difference_at(want, got, window, ttl_tolerance_ms) {
                match (want, got) {
                    (Some(_), None) => d.missing.push(k.clone()),
                    (None, Some(_)) => d.unexpected.push(k.clone()),
                    _ => d.changed.push((k.0, k.1.clone(), why)),
                }
            }
        }
        d
    }

    /// The keys of the databases in `dbs` only.
    pub fn restricted_to(&self, dbs: &[u16]) -> Dataset {
        Dataset {
            items: self
                .items
                .iter()
                .filter(|((db, _), _)| dbs.contains(db))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// `FLUSHDB` of database `db`.
    pub fn flush_db(&mut self, db: u16) {
        self.items.retain(|(d, _), _| *d != db);
    }

    /// `SWAPDB a b`.
    pub fn swap_dbs(&mut self, a: u16, b: u16) {
        let items = std::mem::take(&mut self.items);
        self.items = items
            .into_iter()
            .map(|((db, key), item)| {
                let db = if db == a {
                    b
                } else if db == b {
                    a
                } else {
                    db
                };
                ((db, key), item)
            })
            .collect();
    }

    /// `Ok` when `actual` equals `self` (expiries within the tolerance),
    /// else an error listing the first differences.
    ///
    /// # Errors
    /// The datasets differ.
    pub fn check_equal(
        &self,
        actual: &Dataset,
        ttl_tolerance_ms: i64,
        what: &str,
    ) -> anyhow::Result<()> {
        let d = self.diff(actual, ttl_tolerance_ms);
        if d.is_empty() {
            Ok(())
        } else {
            bail!(
                "{what}: data differs from the expected {} keys: {d}",
                self.len()
            )
        }
    }
}

/// The mix of types a generator produces, as relative weights.
#[derive(Clone, Copy, Debug)]
pub struct TypeMix {
    /// Strings.
    pub string: u32,
    /// Lists.
    pub list: u32,
    /// Hashes.
    pub hash: u32,
    /// Sets.
    pub set: u32,
    /// Sorted sets.
    pub zset: u32,
    /// Streams (with consumer groups).
    pub stream: u32,
}

impl TypeMix {
    /// Every type, strings most often (as in most real datasets).
    pub const ALL: TypeMix = TypeMix {
        string: 6,
        list: 1,
        hash: 1,
        set: 1,
        zset: 1,
        stream: 1,
    };
    /// Strings only.
    pub const STRINGS: TypeMix = TypeMix {
        string: 1,
        list: 0,
        hash: 0,
        set: 0,
        zset: 0,
        stream: 0,
    };

    fn pick(&self, rng: &mut StdRng) -> &'static str {
        let total = self.string + self.list + self.hash + self.set + self.zset + self.stream;
        let mut x = rng.random_range(0..total.max(1));
        for (w, name) in [
            (self.string, "string"),
            (self.list, "list"),
            (self.hash, "hash"),
            (self.set, "set"),
            (self.zset, "zset"),
            (self.stream, "stream"),
        ] {
            if x < w {
                return name;
            }
            x -= w;
        }
        "string"
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The seed: the same spec and seed give the same dataset.
    pub seed: u64,
    /// Number of keys in total.
    pub keys: usize,
    /// Databases used (0..dbs).
    pub dbs: u16,
    /// Type weights.
    pub types: TypeMix,
    /// Fraction of keys with a TTL (always hours away, so nothing expires
    /// during a test unless it asks for it).
    pub ttl_fraction: f64,
    /// Fraction of keys and values that are random binary bytes
    /// (NUL, CR, LF, 0xFF, invalid UTF-8).
    pub binary_fraction: f64,
    /// Elements of a regular collection: 1..=max.
    pub max_elements: usize,
    /// Add the edge cases: an empty key and an empty value in every
    /// database, a long key, and one collection of each type larger than
    /// the chunk size.
    pub edge_cases: bool,
    /// Prefix of every generated key (so datasets can be told apart).
    pub prefix: String,
}

impl Spec {
    /// Every type, 4 databases, 20% TTLs, 10% binary, with edge cases.
    pub fn full(seed: u64, keys: usize) -> Spec {
        Spec {
            seed,
            keys,
            dbs: 4,
            types: TypeMix::ALL,
            ttl_fraction: 0.2,
            binary_fraction: 0.1,
            max_elements: 20,
            edge_cases: true,
            prefix: String::new(),
        }
    }

    /// Like [`Spec::full`] without the big edge cases: cheap to write and
    /// snapshot many times.
    pub fn small(seed: u64, keys: usize) -> Spec {
        Spec {
            edge_cases: false,
            max_elements: 8,
            ..Spec::full(seed, keys)
        }
    }

    /// The same spec with another key prefix.
    #[must_use]
    pub fn prefixed(mut self, prefix: impl Into<String>) -> Spec {
        self.prefix = prefix.into();
        self
    }

    /// Builds the dataset.
    pub fn generate(&self) -> Dataset {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut ds = Dataset::default();
        let now = now_ms();
        let dbs = self.dbs.max(1);
        let mut i = 0usize;
        while ds.len() < self.keys {
            let db = rng.random_range(0..dbs);
            let binary = rng.random_bool(self.binary_fraction);
            let key = if binary {
                let mut k = self.prefix.as_bytes().to_vec();
                k.extend(random_bytes(&mut rng, 1, 24));
                k
            } else {
                format!("{}k:{i}", self.prefix).into_bytes()
            };
            i += 1;
            let kind = self.types.pick(&mut rng);
            let value = random_value(&mut rng, kind, self.max_elements, binary);
            let ttl = rng
                .random_bool(self.ttl_fraction)
                .then(|| now + rng.random_range(3_600_000..86_400_000));
            ds.insert(db, key, value, ttl);
        }
        if self.edge_cases {
            add_edge_cases(&mut ds, &mut rng, &self.prefix, dbs, now);
        }
        ds
    }
}

/// Random bytes of a length in `min..=max`, biased towards the bytes
/// protocols and parsers trip on.
pub fn random_bytes(rng: &mut StdRng, min: usize, max: usize) -> Vec<u8> {
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| match rng.random_range(0..8) {
            0 => 0,
            1 => b'\r',
            2 => b'\n',
            3 => 0xff,
            _ => rng.random(),
        })
        .collect()
}

fn text(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random_range(b'a'..=b'z')).collect()
}

fn element(rng: &mut StdRng, binary: bool) -> Vec<u8> {
    if binary {
        random_bytes(rng, 0, 16)
    } else {
        let n = rng.random_range(1..12);
        text(rng, n)
    }
}

/// A score that survives the round trip through text exactly.
fn random_score(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..10) {
        0 => f64::INFINITY,
        1 => f64::NEG_INFINITY,
        2 => f64::from(rng.random_range(-1000..1000)),
        _ => (rng.random::<f64>() - 0.5) * 1e6,
    }
}

/// A random value of type `kind` (a `TYPE` name) with 1..=`max_elements`
/// elements, binary ones if `binary`.
pub fn random_value(rng: &mut StdRng, kind: &str, max_elements: usize, binary: bool) -> Val {
    let n = rng.random_range(1..=max_elements.max(1));
    match kind {
        "list" => Val::List((0..n).map(|_| element(rng, binary)).collect()),
        "hash" => Val::Hash(
            (0..n)
                .map(|_| (element(rng, binary), element(rng, binary)))
                .collect(),
        ),
        "set" => Val::Set((0..n).map(|_| element(rng, binary)).collect()),
        "zset" => Val::ZSet(
            (0..n)
                .map(|_| (element(rng, binary), random_score(rng)))
                .collect(),
        ),
        "stream" => Val::Stream(StreamVal::random(rng, max_elements, binary)),
        _ => match rng.random_range(0..4) {
            0 => Val::Str(
                rng.random_range(-1_000_000i64..1_000_000)
                    .to_string()
                    .into_bytes(),
            ),
            _ if binary => Val::Str(random_bytes(rng, 0, 64)),
            _ => {
                let len = rng.random_range(1..100);
                Val::Str(text(rng, len))
            }
        },
    }
}

fn add_edge_cases(ds: &mut Dataset, rng: &mut StdRng, prefix: &str, dbs: u16, now: i64) {
    let p = prefix.as_bytes();
    for db in 0..dbs {
        let mut empty_key = p.to_vec();
        if p.is_empty() {
            ds.insert(db, Vec::new(), Val::Str(b"the empty key".to_vec()), None);
        } else {
            empty_key.extend_from_slice(b"edge:empty-key");
            ds.insert(
                db,
                empty_key,
                Val::Str(b"prefixed stand-in for the empty key".to_vec()),
                None,
            );
        }
        ds.insert(
            db,
            [p, b"edge:empty-value"].concat(),
            Val::Str(Vec::new()),
            None,
        );
    }
    ds.insert(
        0,
        [p, &[b'L'; 4096][..]].concat(),
        Val::Str(b"a 4 KiB key".to_vec()),
        None,
    );
    ds.insert(
        0,
        [p, b"edge:big-string"].concat(),
        Val::Str(random_bytes(rng, CHUNK_BYTES + 1000, CHUNK_BYTES + 1000)),
        None,
    );
    // Collections larger than one snapshot chunk (1 MiB), with and without TTL.
    let per = 100;
    let count = CHUNK_BYTES / per + 2000;
    let big = |rng: &mut StdRng, i: usize| {
        let mut v = format!("{i:08}:").into_bytes();
        v.extend(text(rng, per - 9));
        v
    };
    ds.insert(
        0,
        [p, b"edge:big-list"].concat(),
        Val::List((0..count).map(|i| big(rng, i)).collect()),
        None,
    );
    ds.insert(
        1 % dbs,
        [p, b"edge:big-hash"].concat(),
        Val::Hash(
            (0..count)
                .map(|i| (format!("f{i}").into_bytes(), big(rng, i)))
                .collect(),
        ),
        Some(now + 7_200_000),
    );
    ds.insert(
        2 % dbs,
        [p, b"edge:big-set"].concat(),
        Val::Set((0..count).map(|i| big(rng, i)).collect()),
        None,
    );
    ds.insert(
        3 % dbs,
        [p, b"edge:big-zset"].concat(),
        Val::ZSet((0..count).map(|i| (big(rng, i), i as f64 / 3.0)).collect()),
        None,
    );
    // Single-element collections: the smallest a collection can be.
    ds.insert(
        0,
        [p, b"edge:one-list"].concat(),
        Val::List(vec![Vec::new()]),
        None,
    );
    ds.insert(
        0,
        [p, b"edge:one-hash"].concat(),
        Val::Hash([(Vec::new(), Vec::new())].into()),
        None,
    );
    ds.insert(
        0,
        [p, b"edge:one-set"].concat(),
        Val::Set([Vec::new()].into()),
        None,
    );
    ds.insert(
        0,
        [p, b"edge:one-zset"].concat(),
        Val::ZSet([(Vec::new(), -0.0)].into()),
        None,
    );
    // A stream larger than one chunk, with a group that has read half of
    // it (pending entries, one consumer); and one with no entries left.
    let mut big_stream = StreamVal::default();
    for i in 0..count as u64 {
        big_stream.entries.insert(
            (1_000 + i / 3, i % 3),
            vec![(b"f".to_vec(), big(rng, i as usize))],
        );
    }
    big_stream.last_id = big_stream.entries.keys().last().copied().unwrap_or((1, 0));
    big_stream.entries_added = count as u64;
    let half: Vec<StreamId> = big_stream.entries.keys().take(count / 2).copied().collect();
    let mut group = Group {
        last_id: half.last().copied().unwrap_or((0, 0)),
        entries_read: Some(half.len() as u64),
        ..Group::default()
    };
    group.consumers.insert(b"worker".to_vec(), None);
    for id in half.iter().step_by(7) {
        group.pel.insert(
            *id,
            Pending {
                consumer: b"worker".to_vec(),
                delivered_ms: Some(PAST_MS),
                count: 1,
            },
        );
    }
    big_stream.groups.insert(b"readers".to_vec(), group);
    ds.insert(
        1 % dbs,
        [p, b"edge:big-stream"].concat(),
        Val::Stream(big_stream),
        None,
    );
    let empty_stream = StreamVal {
        last_id: (5, 5),
        max_deleted: (5, 5),
        entries_added: 3,
        groups: [(
            b"g".to_vec(),
            Group {
                last_id: (5, 5),
                entries_read: Some(3),
                ..Group::default()
            },
        )]
        .into(),
        ..StreamVal::default()
    };
    ds.insert(
        0,
        [p, b"edge:empty-stream"].concat(),
        Val::Stream(empty_stream),
        None,
    );
}

/// Text for a score that parses back to the same `f64`.
pub fn score_text(s: f64) -> String {
    if s == f64::INFINITY {
        "+inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        // Rust prints the shortest text that round-trips.
        format!("{s}")
    }
}

/// A command as its arguments.
pub type Cmd = Vec<Vec<u8>>;

fn cmd(parts: &[&[u8]]) -> Cmd {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// Elements per command when a collection is written in pieces.
const ARGS_PER_COMMAND: usize = 512;

/// The commands that create `key` with `item` (in the selected database),
/// replacing whatever was there.
pub fn write_commands(key: &[u8], item: &Item) -> Vec<Cmd> {
    let mut out = vec![cmd(&[b"DEL", key])];
    match &item.value {
        Val::Str(s) => out.push(cmd(&[b"SET", key, s])),
        Val::List(v) => {
            for part in v.chunks(ARGS_PER_COMMAND) {
                let mut c = cmd(&[b"RPUSH", key]);
                c.extend(part.iter().cloned());
                out.push(c);
            }
        }
        Val::Hash(h) => {
            let pairs: Vec<_> = h.iter().collect();
            for part in pairs.chunks(ARGS_PER_COMMAND) {
                let mut c = cmd(&[b"HSET", key]);
                for (f, v) in part {
                    c.push((*f).clone());
                    c.push((*v).clone());
                }
                out.push(c);
            }
        }
        Val::Set(s) => {
            let members: Vec<_> = s.iter().cloned().collect();
            for part in members.chunks(ARGS_PER_COMMAND) {
                let mut c = cmd(&[b"SADD", key]);
                c.extend(part.iter().cloned());
                out.push(c);
            }
        }
        Val::ZSet(z) => {
            let pairs: Vec<_> = z.iter().collect();
            for part in pairs.chunks(ARGS_PER_COMMAND) {
                let mut c = cmd(&[b"ZADD", key]);
                for (m, s) in part {
                    c.push(score_text(**s).into_bytes());
                    c.push((*m).clone());
                }
                out.push(c);
            }
        }
        Val::Stream(st) => st.write_commands(key, &mut out),
    }
    if let Some(at) = item.expire_at_ms {
        out.push(cmd(&[b"PEXPIREAT", key, at.to_string().as_bytes()]));
    }
    out
}

/// Commands per pipeline round trip.
const PIPELINE: usize = 1000;

/// Opens a blocking client connection.
///
/// # Errors
/// The server cannot be reached.
pub fn connect(addr: SocketAddr) -> anyhow::Result<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).context("redis client")?;
    let conn = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(conn)
}

/// Runs commands in pipelined batches; any error reply fails.
///
/// # Errors
/// I/O errors or an error reply (which names the command).
pub fn run_pipelined(conn: &mut redis::Connection, cmds: &[Cmd]) -> anyhow::Result<Vec<Rv>> {
    run_pipelined_with(conn, cmds, |_| false)
}

/// [`run_pipelined`], returning the error replies of the commands
/// `may_fail` accepts instead of failing.
fn run_pipelined_with(
    conn: &mut redis::Connection,
    cmds: &[Cmd],
    may_fail: impl Fn(&Cmd) -> bool,
) -> anyhow::Result<Vec<Rv>> {
    let mut out = Vec::with_capacity(cmds.len());
    for batch in cmds.chunks(PIPELINE) {
        let mut pipe = redis::pipe();
        // Error replies come back as values, checked below: without this
        // the client fails the whole pipeline on the first one.
        pipe.ignore_errors();
        for c in batch {
            let mut rc = redis::Cmd::new();
            for a in c {
                rc.arg(a.as_slice());
            }
            pipe.add_command(rc);
        }
        let replies: Vec<Rv> = pipe.query(conn).map_err(|e| {
            // The client quotes the arguments, which can be megabytes of
            // binary: keep the message readable.
            let text: String = e.to_string().chars().take(300).collect();
            let first = batch
                .first()
                .and_then(|c| c.first())
                .map(|a| String::from_utf8_lossy(a).into_owned());
            anyhow::anyhow!("pipeline starting with {first:?}: {}", text.escape_debug())
        })?;
        for (c, r) in batch.iter().zip(&replies) {
            if let Rv::ServerError(e) = r
                && !may_fail(c)
            {
                bail!(
                    "{} failed: {e:?}",
                    String::from_utf8_lossy(c.first().map_or(&[][..], |a| a))
                );
            }
        }
        out.extend(replies);
    }
    Ok(out)
}

/// Writes every key of `ds` (replacing what is there under those keys).
///
/// # Errors
/// I/O errors or an error reply.
pub fn populate(conn: &mut redis::Connection, ds: &Dataset) -> anyhow::Result<()> {
    let mut by_db: BTreeMap<u16, Vec<Cmd>> = BTreeMap::new();
    for ((db, key), item) in &ds.items {
        by_db
            .entry(*db)
            .or_default()
            .extend(write_commands(key, item));
    }
    for (db, cmds) in by_db {
        redis::cmd("SELECT")
            .arg(db)
            .query::<()>(conn)
            .with_context(|| format!("SELECT {db}"))?;
        run_pipelined(conn, &cmds)?;
    }
    redis::cmd("SELECT").arg(0).query::<()>(conn)?;
    Ok(())
}

/// [`populate`] over a new connection to `addr`.
///
/// # Errors
/// As [`populate`].
pub fn populate_addr(addr: SocketAddr, ds: &Dataset) -> anyhow::Result<()> {
    populate(&mut connect(addr)?, ds)
}

fn bytes_of(v: &Rv) -> anyhow::Result<Vec<u8>> {
    match v {
        Rv::BulkString(b) => Ok(b.clone()),
        Rv::SimpleString(s) => Ok(s.clone().into_bytes()),
        Rv::Okay => Ok(b"OK".to_vec()),
        Rv::Int(n) => Ok(n.to_string().into_bytes()),
        Rv::VerbatimString { text, .. } => Ok(text.clone().into_bytes()),
        other => bail!("expected a string, got {other:?}"),
    }
}

fn array_of(v: &Rv) -> anyhow::Result<&[Rv]> {
    match v {
        Rv::Array(a) | Rv::Set(a) => Ok(a),
        other => bail!("expected an array, got {other:?}"),
    }
}

fn parse_score(b: &[u8]) -> anyhow::Result<f64> {
    let s = std::str::from_utf8(b).context("score is not text")?;
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().with_context(|| format!("bad score {s:?}")),
    }
}

fn value_of(kind: &str, v: &Rv) -> anyhow::Result<Option<Val>> {
    Ok(Some(match kind {
        "string" => match v {
            Rv::Nil => return Ok(None),
            v => Val::Str(bytes_of(v)?),
        },
        "list" => Val::List(
            array_of(v)?
                .iter()
                .map(bytes_of)
                .collect::<anyhow::Result<_>>()?,
        ),
        "set" => Val::Set(
            array_of(v)?
                .iter()
                .map(bytes_of)
                .collect::<anyhow::Result<_>>()?,
        ),
        "hash" => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = match v {
                Rv::Map(m) => m
                    .iter()
                    .map(|(k, v)| Ok((bytes_of(k)?, bytes_of(v)?)))
                    .collect::<anyhow::Result<_>>()?,
                v => {
                    let flat = array_of(v)?;
                    flat.chunks(2)
                        .map(|p| match p {
                            [k, v] => Ok((bytes_of(k)?, bytes_of(v)?)),
                            _ => bail!("HGETALL returned an odd number of elements"),
                        })
                        .collect::<anyhow::Result<_>>()?
                }
            };
            Val::Hash(pairs.into_iter().collect())
        }
        "zset" => {
            let flat = array_of(v)?;
            let mut z = BTreeMap::new();
            for p in flat.chunks(2) {
                match p {
                    [m, s] => {
                        let score = match s {
                            Rv::Double(d) => *d,
                            s => parse_score(&bytes_of(s)?)?,
                        };
                        z.insert(bytes_of(m)?, score);
                    }
                    _ => bail!("ZRANGE WITHSCORES returned an odd number of elements"),
                }
            }
            Val::ZSet(z)
        }
        "stream" => match v {
            // Gone (expired) between TYPE and XINFO.
            Rv::ServerError(_) => return Ok(None),
            v => Val::Stream(StreamVal::from_full(v)?),
        },
        "none" => return Ok(None),
        other => bail!("unsupported type {other:?} in dump"),
    }))
}

fn read_command(kind: &str, key: &[u8]) -> anyhow::Result<Cmd> {
    Ok(match kind {
        "string" => cmd(&[b"GET", key]),
        "list" => cmd(&[b"LRANGE", key, b"0", b"-1"]),
        "hash" => cmd(&[b"HGETALL", key]),
        "set" => cmd(&[b"SMEMBERS", key]),
        "zset" => cmd(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]),
        "stream" => cmd(&[b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"0"]),
        other => bail!("unsupported type {other:?} in dump"),
    })
}

/// Reads every key of every database: SCAN, TYPE, the value by type and
/// PTTL (turned into an absolute expiry). Keys that expire or vanish while
/// the dump runs are left out.
///
/// # Errors
/// I/O errors or replies of an unexpected shape.
pub fn dump(conn: &mut redis::Connection, databases: u16) -> anyhow::Result<Dataset> {
    let mut ds = Dataset::default();
    for db in 0..databases {
        redis::cmd("SELECT")
            .arg(db)
            .query::<()>(conn)
            .with_context(|| format!("SELECT {db}"))?;
        let mut cursor: u64 = 0;
        let mut keys: BTreeSet<Vec<u8>> = BTreeSet::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query(conn)
                .context("SCAN")?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let keys: Vec<Vec<u8>> = keys.into_iter().collect();
        for part in keys.chunks(PIPELINE) {
            let types: Vec<Cmd> = part.iter().map(|k| cmd(&[b"TYPE", k])).collect();
            let types = run_pipelined(conn, &types)?;
            let mut reads = Vec::with_capacity(part.len() * 2);
            let mut kinds = Vec::with_capacity(part.len());
            for (k, t) in part.iter().zip(&types) {
                let kind = String::from_utf8(bytes_of(t)?).context("TYPE reply")?;
                if kind == "none" {
                    continue;
                }
                reads.push(read_command(&kind, k)?);
                reads.push(cmd(&[b"PTTL", k]));
                kinds.push((k, kind));
            }
            let now = now_ms();
            // XINFO of a stream that expired after TYPE answers an error:
            // the key is left out as any other that vanished.
            let replies =
                run_pipelined_with(conn, &reads, |c| c.first().is_some_and(|n| n == b"XINFO"))?;
            for ((k, kind), pair) in kinds.into_iter().zip(replies.chunks(2)) {
                let [v, ttl] = pair else {
                    bail!("short pipeline reply")
                };
                let Some(value) = value_of(&kind, v)? else {
                    continue;
                };
                let ttl = match ttl {
                    Rv::Int(n) => *n,
                    other => bail!("PTTL returned {other:?}"),
                };
                let expire_at_ms = match ttl {
                    -1 => None,
                    -2 => continue,
                    n if n >= 0 => Some(now + n),
                    n => bail!("PTTL returned {n}"),
                };
                ds.insert(db, k.clone(), value, expire_at_ms);
            }
        }
    }
    redis::cmd("SELECT").arg(0).query::<()>(conn)?;
    Ok(ds)
}

/// Reads one key of database `db` as [`dump`] reads it (`None` when it
/// does not exist); leaves the connection on database `db`.
///
/// # Errors
/// I/O errors or replies of an unexpected shape.
pub fn read_key(conn: &mut redis::Connection, db: u16, key: &[u8]) -> anyhow::Result<Option<Item>> {
    redis::cmd("SELECT")
        .arg(db)
        .query::<()>(conn)
        .with_context(|| format!("SELECT {db}"))?;
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).context("TYPE")?;
    if kind == "none" {
        return Ok(None);
    }
    let reads = [read_command(&kind, key)?, cmd(&[b"PTTL", key])];
    let now = now_ms();
    let replies = run_pipelined_with(conn, &reads, |c| c.first().is_some_and(|n| n == b"XINFO"))?;
    let [v, ttl] = replies.as_slice() else {
        bail!("short pipeline reply")
    };
    let Some(value) = value_of(&kind, v)? else {
        return Ok(None);
    };
    let expire_at_ms = match ttl {
        Rv::Int(-1) => None,
        Rv::Int(-2) => return Ok(None),
        Rv::Int(n) if *n >= 0 => Some(now + n),
        other => bail!("PTTL returned {other:?}"),
    };
    Ok(Some(Item {
        value,
        expire_at_ms,
    }))
}

/// [`dump`], with the window of time it read in (for
/// [`Dataset::diff_at`]).
///
/// # Errors
/// As [`dump`].
pub fn dump_timed(
    conn: &mut redis::Connection,
    databases: u16,
) -> anyhow::Result<(Dataset, DumpWindow)> {
    let started_ms = now_ms();
    let ds = dump(conn, databases)?;
    Ok((
        ds,
        DumpWindow {
            started_ms,
            finished_ms: now_ms(),
        },
    ))
}

/// [`dump`] of all 16 databases over a new connection to `addr`.
///
/// # Errors
/// As [`dump`].
pub fn dump_addr(addr: SocketAddr) -> anyhow::Result<Dataset> {
    dump(&mut connect(addr)?, DATABASES)
}

/// One random change, applied to the server and to the model alike.
#[derive(Clone, Debug)]
pub enum Op {
    /// Create or replace a key.
    Put {
        /// Database.
        db: u16,
        /// Key.
        key: Vec<u8>,
        /// The new item.
        item: Item,
    },
    /// Delete a key.
    Del {
        /// Database.
        db: u16,
        /// Key.
        key: Vec<u8>,
    },
    /// Append to a list (creating it).
    Push {
        /// Database.
        db: u16,
        /// Key.
        key: Vec<u8>,
        /// Elements.
        elements: Vec<Vec<u8>>,
    },
    /// Set or clear an expiry.
    Expire {
        /// Database.
        db: u16,
        /// Key.
        key: Vec<u8>,
        /// New absolute expiry, or none (PERSIST).
        at_ms: Option<i64>,
    },
    /// A change to a stream.
    Stream {
        /// Database.
        db: u16,
        /// Key.
        key: Vec<u8>,
        /// The change.
        op: StreamOp,
    },
    /// Remove one element from a set, deleting the key if it was the last.
    SRem {
        /// Database.
        db: u16,
        /// Key.
        key: Vec<u8>,
        /// Member.
        member: Vec<u8>,
    },
}

impl Op {
    /// The commands, each prefixed by a SELECT.
    pub fn commands(&self) -> Vec<Cmd> {
        let select = |db: u16| cmd(&[b"SELECT", db.to_string().as_bytes()]);
        match self {
            Op::Put { db, key, item } => {
                let mut v = vec![select(*db)];
                v.extend(write_commands(key, item));
                v
            }
            Op::Del { db, key } => vec![select(*db), cmd(&[b"DEL", key])],
            Op::Push { db, key, elements } => {
                let mut c = cmd(&[b"RPUSH", key]);
                c.extend(elements.iter().cloned());
                vec![select(*db), c]
            }
            Op::Expire {
                db,
                key,
                at_ms: Some(at),
            } => {
                vec![
                    select(*db),
                    cmd(&[b"PEXPIREAT", key, at.to_string().as_bytes()]),
                ]
            }
            Op::Expire {
                db,
                key,
                at_ms: None,
            } => vec![select(*db), cmd(&[b"PERSIST", key])],
            Op::SRem { db, key, member } => vec![select(*db), cmd(&[b"SREM", key, member])],
            Op::Stream { db, key, op } => vec![select(*db), op.command(key)],
        }
    }

    /// What the op does to the model (as the server does it).
    pub fn apply(&self, ds: &mut Dataset) {
        match self {
            Op::Put { db, key, item } => {
                ds.items.insert((*db, key.clone()), item.clone());
            }
            Op::Del { db, key } => {
                ds.items.remove(&(*db, key.clone()));
            }
            Op::Push { db, key, elements } => {
                let entry = ds.items.entry((*db, key.clone())).or_insert(Item {
                    value: Val::List(Vec::new()),
                    expire_at_ms: None,
                });
                if let Val::List(l) = &mut entry.value {
                    l.extend(elements.iter().cloned());
                }
            }
            Op::Expire { db, key, at_ms } => {
                if let Some(item) = ds.items.get_mut(&(*db, key.clone())) {
                    item.expire_at_ms = *at_ms;
                }
            }
            Op::Stream { db, key, op } => {
                let entry = ds.items.entry((*db, key.clone())).or_insert(Item {
                    value: Val::Stream(StreamVal::default()),
                    expire_at_ms: None,
                });
                if let Val::Stream(s) = &mut entry.value {
                    op.apply(s);
                }
            }
            Op::SRem { db, key, member } => {
                let k = (*db, key.clone());
                if let Some(Item {
                    value: Val::Set(s), ..
                }) = ds.items.get_mut(&k)
                {
                    s.remove(member);
                    if s.is_empty() {
                        ds.items.remove(&k);
                    }
                }
            }
        }
    }
}

/// Seeded random changes against a model.
pub struct Mutator {
    rng: StdRng,
    spec: Spec,
    next: u64,
}

impl Mutator {
    /// A mutator generating values like `spec` (its seed seeds the changes).
    pub fn new(spec: Spec) -> Mutator {
        Mutator {
            rng: StdRng::seed_from_u64(spec.seed ^ 0x005e_ed0f_c4a1_u64),
            spec,
            next: 0,
        }
    }

    /// The random generator, for callers that draw their own decisions
    /// from the same seed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// The next change, valid against `ds` (it touches existing keys half
    /// of the time).
    pub fn next_op(&mut self, ds: &Dataset) -> Op {
        let rng = &mut self.rng;
        let existing = if ds.is_empty() || rng.random_bool(0.5) {
            None
        } else {
            // Pick a random existing key without materialising the key list.
            let n = rng.random_range(0..ds.len());
            ds.items.iter().nth(n).map(|(k, v)| (k.clone(), v.clone()))
        };
        let dbs = self.spec.dbs.max(1);
        match existing {
            None => {
                self.next += 1;
                let key =
                    format!("{}m:{}:{}", self.spec.prefix, self.spec.seed, self.next).into_bytes();
                let kind = self.spec.types.pick(rng);
                let binary = rng.random_bool(self.spec.binary_fraction);
                let value = random_value(rng, kind, self.spec.max_elements, binary);
                let ttl = rng
                    .random_bool(self.spec.ttl_fraction)
                    .then(|| now_ms() + rng.random_range(3_600_000..86_400_000));
                Op::Put {
                    db: rng.random_range(0..dbs),
                    key,
                    item: Item {
                        value,
                        expire_at_ms: ttl,
                    },
                }
            }
            Some(((db, key), item)) => match (rng.random_range(0..5), &item.value) {
                (0, _) => Op::Del { db, key },
                (1, Val::List(_)) => {
                    let elements = (0..rng.random_range(1..4))
                        .map(|_| element(rng, false))
                        .collect();
                    Op::Push { db, key, elements }
                }
                (1 | 2, Val::Stream(s)) => Op::Stream {
                    db,
                    key,
                    op: StreamOp::random(rng, s, now_ms()),
                },
                (2, Val::Set(s)) => {
                    let n = rng.random_range(0..s.len());
                    let member = s.iter().nth(n).cloned().unwrap_or_default();
                    Op::SRem { db, key, member }
                }
                (3, _) => {
                    let at_ms = rng
                        .random_bool(0.5)
                        .then(|| now_ms() + rng.random_range(3_600_000..86_400_000));
                    Op::Expire { db, key, at_ms }
                }
                _ => {
                    let kind = self.spec.types.pick(rng);
                    let value = random_value(rng, kind, self.spec.max_elements, false);
                    Op::Put {
                        db,
                        key,
                        item: Item {
                            value,
                            expire_at_ms: None,
                        },
                    }
                }
            },
        }
    }

    /// Makes `n` changes on the server and in `ds`.
    ///
    /// # Errors
    /// I/O errors or an error reply.
    pub fn apply_n(
        &mut self,
        conn: &mut redis::Connection,
        ds: &mut Dataset,
        n: usize,
    ) -> anyhow::Result<()> {
        let mut cmds = Vec::new();
        for _ in 0..n {
            let op = self.next_op(ds);
            op.apply(ds);
            cmds.extend(op.commands());
        }
        cmds.push(cmd(&[b"SELECT", b"0"]));
        run_pipelined(conn, &cmds)?;
        Ok(())
    }
}

/// A stream ID: (milliseconds, sequence).
pub type StreamId = (u64, u64);

/// A stream entry's (field, value) pairs, in their order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// `<ms>-<seq>`.
pub fn id_text(id: StreamId) -> String {
    format!("{}-{}", id.0, id.1)
}

fn parse_id(b: &[u8]) -> anyhow::Result<StreamId> {
    let s = std::str::from_utf8(b).context("stream ID is not text")?;
    let (ms, seq) = s
        .split_once('-')
        .with_context(|| format!("bad stream ID {s:?}"))?;
    Ok((ms.parse()?, seq.parse()?))
}

/// A delivery time in the past (2020-09-13) for generated pending entries.
const PAST_MS: i64 = 1_600_000_000_000;

/// A pending entry of a consumer group.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// The consumer it was delivered to.
    pub consumer: Vec<u8>,
    /// Last delivery, unix ms; `None` when the server's clock set it (the
    /// model does not know it to the ms): any value matches.
    pub delivered_ms: Option<i64>,
    /// Deliveries.
    pub count: u64,
}

/// A consumer group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    /// Last-delivered ID.
    pub last_id: StreamId,
    /// Entries read (`None`: unknown, Redis' -1 / nil).
    pub entries_read: Option<u64>,
    /// The pending entries list.
    pub pel: BTreeMap<StreamId, Pending>,
    /// Consumers with their seen-time (unix ms; `None` when set by the
    /// server's clock).
    pub consumers: BTreeMap<Vec<u8>, Option<i64>>,
}

/// A stream: everything a snapshot keeps of one, as the server shows it
/// (`XINFO STREAM FULL`). Derived figures (length, recorded first ID,
/// lag, per-consumer pending counts) are not kept twice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamVal {
    /// Live entries: ID to (field, value) pairs in their order.
    pub entries: BTreeMap<StreamId, Fields>,
    /// Last-generated ID.
    pub last_id: StreamId,
    /// Max-deleted-entry ID.
    pub max_deleted: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Vec<u8>, Group>,
    /// Radix tree nodes holding the entries (XINFO `radix-tree-keys`), as
    /// a dump read it; `None` once the model changed the stream (the block
    /// layout follows Redis' node limits, which the model does not
    /// follow). A restore must give back the blocks it saved.
    pub blocks: Option<u64>,
}

/// Times the model knows must match to the ms (a restore keeps them
/// exactly); those the server's clock set match anything.
fn same_time(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl StreamVal {
    /// The first difference from `other` (`self` expected); `None` when
    /// equal.
    pub fn difference(&self, other: &StreamVal) -> Option<String> {
        if self.entries != other.entries {
            let k = self
                .entries
                .iter()
                .find(|(k, v)| other.entries.get(*k) != Some(*v))
                .map(|(k, _)| *k)
                .or_else(|| {
                    other
                        .entries
                        .keys()
                        .find(|k| !self.entries.contains_key(*k))
                        .copied()
                });
            return Some(format!(
                "entries differ ({} vs {}) first at {}",
                self.entries.len(),
                other.entries.len(),
                k.map(id_text).unwrap_or_default()
            ));
        }
        if (self.last_id, self.max_deleted, self.entries_added)
            != (other.last_id, other.max_deleted, other.entries_added)
        {
            return Some(format!(
                "last-generated-id / max-deleted-entry-id / entries-added {} {} {} vs {} {} {}",
                id_text(self.last_id),
                id_text(self.max_deleted),
                self.entries_added,
                id_text(other.last_id),
                id_text(other.max_deleted),
                other.entries_added
            ));
        }
        if let (Some(a), Some(b)) = (self.blocks, other.blocks)
            && a != b
        {
            return Some(format!("radix-tree-keys {a} vs {b}"));
        }
        let names = |s: &StreamVal| s.groups.keys().cloned().collect::<Vec<_>>();
        if names(self) != names(other) {
            return Some("groups differ".into());
        }
        for (name, g) in &self.groups {
            let h = other.groups.get(name)?;
            let q = Quoted(name);
            if (g.last_id, g.entries_read) != (h.last_id, h.entries_read) {
                return Some(format!(
                    "group {q}: last-delivered-id / entries-read {} {:?} vs {} {:?}",
                    id_text(g.last_id),
                    g.entries_read,
                    id_text(h.last_id),
                    h.entries_read
                ));
            }
            if g.consumers.keys().ne(h.consumers.keys()) {
                return Some(format!("group {q}: consumers differ"));
            }
            for (c, seen) in &g.consumers {
                if !same_time(*seen, h.consumers.get(c).copied().flatten()) {
                    return Some(format!(
                        "group {q} consumer {}: seen-time {seen:?} vs {:?}",
                        Quoted(c),
                        h.consumers.get(c)
                    ));
                }
            }
            if g.pel.keys().ne(h.pel.keys()) {
                return Some(format!(
                    "group {q}: pending IDs differ ({} vs {})",
                    g.pel.len(),
                    h.pel.len()
                ));
            }
            for (id, p) in &g.pel {
                let o = h.pel.get(id)?;
                if p.consumer != o.consumer
                    || p.count != o.count
                    || !same_time(p.delivered_ms, o.delivered_ms)
                {
                    return Some(format!(
                        "group {q}: pending {} is {p:?} vs {o:?}",
                        id_text(*id)
                    ));
                }
            }
        }
        None
    }

    /// The commands that create `key` with this stream (the key deleted
    /// before): every entry ever in a pending list is added in ID order
    /// (those gone from the stream deleted again once claimed), the groups
    /// created, their consumers and pending entries made with XCLAIM
    /// (delivery time and count exact), then XSETID sets the metadata.
    fn write_commands(&self, key: &[u8], out: &mut Vec<Cmd>) {
        let mut ids: BTreeMap<StreamId, Option<&Fields>> =
            self.entries.iter().map(|(id, f)| (*id, Some(f))).collect();
        for g in self.groups.values() {
            for id in g.pel.keys() {
                ids.entry(*id).or_insert(None);
            }
        }
        let temp_group: &[u8] = b"\0populate";
        if ids.is_empty() {
            out.push(cmd(&[
                b"XGROUP",
                b"CREATE",
                key,
                temp_group,
                b"0",
                b"MKSTREAM",
            ]));
            out.push(cmd(&[b"XGROUP", b"DESTROY", key, temp_group]));
        }
        for (id, fields) in &ids {
            let id = id_text(*id);
            let mut c = cmd(&[b"XADD", key, id.as_bytes()]);
            match fields {
                Some(f) => {
                    for (k, v) in *f {
                        c.push(k.clone());
                        c.push(v.clone());
                    }
                }
                None => {
                    c.push(b"gone".to_vec());
                    c.push(Vec::new());
                }
            }
            out.push(c);
        }
        for (name, g) in &self.groups {
            let read = g.entries_read.map_or(-1, |n| n as i64).to_string();
            out.push(cmd(&[
                b"XGROUP",
                b"CREATE",
                key,
                name,
                id_text(g.last_id).as_bytes(),
                b"ENTRIESREAD",
                read.as_bytes(),
            ]));
            for c in g.consumers.keys() {
                out.push(cmd(&[b"XGROUP", b"CREATECONSUMER", key, name, c]));
            }
            for (id, p) in &g.pel {
                let at = p.delivered_ms.unwrap_or_else(now_ms).to_string();
                out.push(cmd(&[
                    b"XCLAIM",
                    key,
                    name,
                    &p.consumer,
                    b"0",
                    id_text(*id).as_bytes(),
                    b"TIME",
                    at.as_bytes(),
                    b"RETRYCOUNT",
                    p.count.to_string().as_bytes(),
                    b"FORCE",
                    b"JUSTID",
                ]));
            }
        }
        let gone: Vec<StreamId> = ids
            .iter()
            .filter(|(_, f)| f.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !gone.is_empty() {
            let mut c = cmd(&[b"XDEL", key]);
            c.extend(gone.iter().map(|id| id_text(*id).into_bytes()));
            out.push(c);
        }
        out.push(cmd(&[
            b"XSETID",
            key,
            id_text(self.last_id).as_bytes(),
            b"ENTRIESADDED",
            self.entries_added.to_string().as_bytes(),
            b"MAXDELETEDID",
            id_text(self.max_deleted).as_bytes(),
        ]));
    }

    /// A seeded stream: entries with 1-3 fields, some deleted, groups with
    /// consumers and pending entries (some of deleted entries).
    fn random(rng: &mut StdRng, max_elements: usize, binary: bool) -> StreamVal {
        let mut s = StreamVal::default();
        let n = rng.random_range(0..=max_elements.max(1));
        let mut ms: u64 = rng.random_range(1..1_000_000_000_000);
        let mut all = Vec::new();
        for _ in 0..n {
            ms += rng.random_range(0..3);
            let seq = if all.last().is_some_and(|(m, _)| *m == ms) {
                all.last().map_or(0, |(_, q)| q + 1)
            } else {
                rng.random_range(0..3)
            };
            let id = (ms, seq);
            all.push(id);
            let fields = (0..rng.random_range(1..=3))
                .map(|_| (element(rng, binary), element(rng, binary)))
                .collect();
            s.entries.insert(id, fields);
        }
        if all.is_empty() {
            // Added and deleted again: an empty stream with history.
            all.push((ms, 0));
        }
        let mut deleted = Vec::new();
        for id in &all {
            if s.entries.len() > 1 && rng.random_bool(0.1) {
                s.entries.remove(id);
                deleted.push(*id);
            }
        }
        if s.entries.is_empty() {
            deleted.clone_from(&all);
        }
        let top = all.last().copied().unwrap_or((1, 0));
        s.last_id = if rng.random_bool(0.2) {
            (top.0 + rng.random_range(1..100), 0)
        } else {
            top
        };
        s.max_deleted = deleted.last().copied().unwrap_or((0, 0));
        s.entries_added = all.len() as u64 + rng.random_range(0..3);
        for gi in 0..rng.random_range(0..=2) {
            let mut g = Group {
                last_id: all[rng.random_range(0..all.len())],
                entries_read: rng
                    .random_bool(0.7)
                    .then(|| rng.random_range(0..=s.entries_added)),
                ..Group::default()
            };
            let consumers: Vec<Vec<u8>> = (0..rng.random_range(0..=3))
                .map(|ci| format!("c{ci}").into_bytes())
                .collect();
            for c in &consumers {
                g.consumers.insert(c.clone(), None);
            }
            if !consumers.is_empty() {
                for id in &all {
                    if rng.random_bool(0.4) {
                        g.pel.insert(
                            *id,
                            Pending {
                                consumer: consumers[rng.random_range(0..consumers.len())].clone(),
                                // Fixed past times: the same seed gives
                                // the same dataset.
                                delivered_ms: Some(PAST_MS + rng.random_range(0..10_000_000)),
                                count: rng.random_range(0..5),
                            },
                        );
                    }
                }
            }
            let name = if binary && gi == 1 {
                random_bytes(rng, 1, 8)
            } else {
                format!("g{gi}").into_bytes()
            };
            s.groups.insert(name, g);
        }
        s
    }

    /// Reads `XINFO STREAM key FULL COUNT 0` (RESP2 or RESP3).
    fn from_full(v: &Rv) -> anyhow::Result<StreamVal> {
        let f = fields_of(v)?;
        let get = |name: &str| {
            f.get(name)
                .with_context(|| format!("XINFO STREAM FULL lacks {name}"))
        };
        let mut s = StreamVal {
            last_id: parse_id(&bytes_of(get("last-generated-id")?)?)?,
            max_deleted: parse_id(&bytes_of(get("max-deleted-entry-id")?)?)?,
            entries_added: int_of(get("entries-added")?)? as u64,
            blocks: Some(int_of(get("radix-tree-keys")?)? as u64),
            ..StreamVal::default()
        };
        for e in array_of(get("entries")?)? {
            let [id, fv] = array_of(e)? else {
                bail!("an entry of XINFO STREAM FULL is not [id, fields]");
            };
            let flat = array_of(fv)?;
            let pairs = flat
                .chunks(2)
                .map(|p| match p {
                    [k, v] => Ok((bytes_of(k)?, bytes_of(v)?)),
                    _ => bail!("odd field list"),
                })
                .collect::<anyhow::Result<_>>()?;
            s.entries.insert(parse_id(&bytes_of(id)?)?, pairs);
        }
        for g in array_of(get("groups")?)? {
            let gf = fields_of(g)?;
            let gget = |name: &str| {
                gf.get(name)
                    .with_context(|| format!("a group lacks {name}"))
            };
            let mut group = Group {
                last_id: parse_id(&bytes_of(gget("last-delivered-id")?)?)?,
                entries_read: match gget("entries-read")? {
                    Rv::Nil => None,
                    v => Some(int_of(v)? as u64),
                },
                ..Group::default()
            };
            for p in array_of(gget("pending")?)? {
                let [id, consumer, at, count] = array_of(p)? else {
                    bail!("a pending entry is not [id, consumer, time, count]");
                };
                group.pel.insert(
                    parse_id(&bytes_of(id)?)?,
                    Pending {
                        consumer: bytes_of(consumer)?,
                        delivered_ms: Some(int_of(at)?),
                        count: int_of(count)? as u64,
                    },
                );
            }
            for c in array_of(gget("consumers")?)? {
                let cf = fields_of(c)?;
                let name = bytes_of(cf.get("name").context("a consumer lacks its name")?)?;
                let seen = int_of(cf.get("seen-time").context("a consumer lacks seen-time")?)?;
                group.consumers.insert(name, Some(seen));
            }
            s.groups.insert(bytes_of(gget("name")?)?, group);
        }
        Ok(s)
    }
}

fn int_of(v: &Rv) -> anyhow::Result<i64> {
    match v {
        Rv::Int(n) => Ok(*n),
        v => Ok(std::str::from_utf8(&bytes_of(v)?)?.parse()?),
    }
}

/// A RESP2 flat array of name/value pairs or a RESP3 map, by name.
fn fields_of(v: &Rv) -> anyhow::Result<BTreeMap<String, &Rv>> {
    let pairs: Vec<(&Rv, &Rv)> = match v {
        Rv::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        v => array_of(v)?
            .chunks(2)
            .filter_map(|p| match p {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
    };
    pairs
        .into_iter()
        .map(|(k, v)| Ok((String::from_utf8(bytes_of(k)?)?, v)))
        .collect()
}

/// One change to a stream (the key without TTL or with one far away), as
/// the persistence campaigns make them: each is one command whose effect
/// the model knows without a clock (times set by the server's clock
/// become unknown, `None`).
#[derive(Clone, Debug)]
pub enum StreamOp {
    /// `XADD key [MAXLEN n] id f v ...` (the ID above the last).
    Add {
        /// Explicit ID.
        id: StreamId,
        /// Fields.
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        /// Exact trimming.
        maxlen: Option<usize>,
    },
    /// `XDEL key id ...`.
    Del(Vec<StreamId>),
    /// `XTRIM key MAXLEN n`.
    Trim(usize),
    /// `XACK key group id ...`.
    Ack(Vec<u8>, Vec<StreamId>),
    /// `XGROUP CREATE key group id ENTRIESREAD n` (a new group).
    CreateGroup(Vec<u8>, StreamId, Option<u64>),
    /// `XGROUP SETID key group id ENTRIESREAD n`.
    SetId(Vec<u8>, StreamId, Option<u64>),
    /// `XGROUP DESTROY key group`.
    DestroyGroup(Vec<u8>),
    /// `XGROUP CREATECONSUMER key group consumer`.
    CreateConsumer(Vec<u8>, Vec<u8>),
    /// `XGROUP DELCONSUMER key group consumer`.
    DelConsumer(Vec<u8>, Vec<u8>),
    /// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID`.
    Claim {
        /// Group.
        group: Vec<u8>,
        /// New owner.
        consumer: Vec<u8>,
        /// Entry.
        id: StreamId,
        /// Delivery time (in the past).
        at_ms: i64,
        /// Delivery count.
        count: u64,
    },
}

impl StreamOp {
    /// The command on `key`.
    pub fn command(&self, key: &[u8]) -> Cmd {
        let ids = |v: &[StreamId]| {
            v.iter()
                .map(|id| id_text(*id).into_bytes())
                .collect::<Vec<_>>()
        };
        let read = |n: &Option<u64>| n.map_or(-1, |n| n as i64).to_string().into_bytes();
        match self {
            StreamOp::Add { id, fields, maxlen } => {
                let mut c = cmd(&[b"XADD", key]);
                if let Some(n) = maxlen {
                    c.push(b"MAXLEN".to_vec());
                    c.push(n.to_string().into_bytes());
                }
                c.push(id_text(*id).into_bytes());
                for (f, v) in fields {
                    c.push(f.clone());
                    c.push(v.clone());
                }
                c
            }
            StreamOp::Del(v) => {
                let mut c = cmd(&[b"XDEL", key]);
                c.extend(ids(v));
                c
            }
            StreamOp::Trim(n) => cmd(&[b"XTRIM", key, b"MAXLEN", n.to_string().as_bytes()]),
            StreamOp::Ack(g, v) => {
                let mut c = cmd(&[b"XACK", key, g]);
                c.extend(ids(v));
                c
            }
            StreamOp::CreateGroup(g, id, r) => cmd(&[
                b"XGROUP",
                b"CREATE",
                key,
                g,
                id_text(*id).as_bytes(),
                b"ENTRIESREAD",
                &read(r),
            ]),
            StreamOp::SetId(g, id, r) => cmd(&[
                b"XGROUP",
                b"SETID",
                key,
                g,
                id_text(*id).as_bytes(),
                b"ENTRIESREAD",
                &read(r),
            ]),
            StreamOp::DestroyGroup(g) => cmd(&[b"XGROUP", b"DESTROY", key, g]),
            StreamOp::CreateConsumer(g, c) => cmd(&[b"XGROUP", b"CREATECONSUMER", key, g, c]),
            StreamOp::DelConsumer(g, c) => cmd(&[b"XGROUP", b"DELCONSUMER", key, g, c]),
            StreamOp::Claim {
                group,
                consumer,
                id,
                at_ms,
                count,
            } => cmd(&[
                b"XCLAIM",
                key,
                group,
                consumer,
                b"0",
                id_text(*id).as_bytes(),
                b"TIME",
                at_ms.to_string().as_bytes(),
                b"RETRYCOUNT",
                count.to_string().as_bytes(),
                b"FORCE",
                b"JUSTID",
            ]),
        }
    }

    /// What it does to `s`, as Redis 7.0 does it.
    pub fn apply(&self, s: &mut StreamVal) {
        s.blocks = None;
        match self {
            StreamOp::Add { id, fields, maxlen } => {
                s.entries.insert(*id, fields.clone());
                s.last_id = *id;
                s.entries_added += 1;
                if let Some(n) = maxlen {
                    trim(s, *n);
                }
            }
            StreamOp::Del(ids) => {
                for id in ids {
                    if s.entries.remove(id).is_some() && *id > s.max_deleted {
                        s.max_deleted = *id;
                    }
                }
            }
            StreamOp::Trim(n) => trim(s, *n),
            StreamOp::Ack(g, ids) => {
                if let Some(g) = s.groups.get_mut(g) {
                    for id in ids {
                        g.pel.remove(id);
                    }
                }
            }
            StreamOp::CreateGroup(g, id, r) | StreamOp::SetId(g, id, r) => {
                let grp = s.groups.entry(g.clone()).or_default();
                grp.last_id = *id;
                grp.entries_read = *r;
            }
            StreamOp::DestroyGroup(g) => {
                s.groups.remove(g);
            }
            StreamOp::CreateConsumer(g, c) => {
                if let Some(g) = s.groups.get_mut(g) {
                    g.consumers.entry(c.clone()).or_insert(None);
                }
            }
            StreamOp::DelConsumer(g, c) => {
                if let Some(g) = s.groups.get_mut(g) {
                    g.consumers.remove(c);
                    g.pel.retain(|_, p| p.consumer != *c);
                }
            }
            StreamOp::Claim {
                group,
                consumer,
                id,
                at_ms,
                count,
            } => {
                let live = s.entries.contains_key(id);
                if let Some(g) = s.groups.get_mut(group) {
                    if live {
                        // The claimer is created if missing (only when it
                        // claims something) and its seen-time set by the
                        // server's clock.
                        g.consumers.insert(consumer.clone(), None);
                        g.pel.insert(
                            *id,
                            Pending {
                                consumer: consumer.clone(),
                                delivered_ms: Some(*at_ms),
                                count: *count,
                            },
                        );
                    } else {
                        // Redis 7.0 drops a pending entry whose entry is
                        // gone when it is claimed.
                        g.pel.remove(id);
                    }
                }
            }
        }
    }

    /// A random change valid against `s` (every command succeeds).
    pub fn random(rng: &mut StdRng, s: &StreamVal, now: i64) -> StreamOp {
        let ids: Vec<StreamId> = s.entries.keys().copied().collect();
        let pick_id = |rng: &mut StdRng| -> StreamId {
            if ids.is_empty() || rng.random_bool(0.1) {
                (s.last_id.0, s.last_id.1.wrapping_add(7))
            } else {
                ids[rng.random_range(0..ids.len())]
            }
        };
        let groups: Vec<&Vec<u8>> = s.groups.keys().collect();
        let group = groups
            .get(rng.random_range(0..groups.len().max(1)))
            .map(|g| (*g).clone());
        match (rng.random_range(0..12), group) {
            (0..4, _) | (_, None) if rng.random_bool(0.8) || s.groups.len() >= 4 => {
                let id = if rng.random_bool(0.5) {
                    (s.last_id.0, s.last_id.1 + 1)
                } else {
                    (s.last_id.0 + rng.random_range(1..1000), 0)
                };
                let fields = (0..rng.random_range(1..=3))
                    .map(|_| (element(rng, false), element(rng, false)))
                    .collect();
                let maxlen = rng
                    .random_bool(0.1)
                    .then(|| rng.random_range(0..=ids.len() + 1));
                StreamOp::Add { id, fields, maxlen }
            }
            (_, None) => {
                // A name no group has (XGROUP CREATE of an existing one
                // fails with BUSYGROUP).
                let name = (0..)
                    .map(|i| format!("g{i}").into_bytes())
                    .find(|n| !s.groups.contains_key(n))
                    .unwrap_or_default();
                let read = rng
                    .random_bool(0.8)
                    .then(|| rng.random_range(0..=s.entries_added));
                StreamOp::CreateGroup(name, pick_id(rng), read)
            }
            (4, _) => StreamOp::Del((0..rng.random_range(1..3)).map(|_| pick_id(rng)).collect()),
            (5, _) => StreamOp::Trim(rng.random_range(ids.len() / 2..=ids.len() + 1)),
            (6, Some(g)) => {
                let pending: Vec<StreamId> = s.groups[&g].pel.keys().copied().collect();
                let mut v: Vec<StreamId> = pending
                    .iter()
                    .filter(|_| rng.random_bool(0.5))
                    .copied()
                    .collect();
                v.push(pick_id(rng));
                StreamOp::Ack(g, v)
            }
            (7, Some(g)) => StreamOp::SetId(
                g,
                pick_id(rng),
                rng.random_bool(0.8)
                    .then(|| rng.random_range(0..=s.entries_added)),
            ),
            (8, Some(g)) if rng.random_bool(0.3) => StreamOp::DestroyGroup(g),
            (8, Some(g)) => {
                StreamOp::CreateConsumer(g, format!("c{}", rng.random_range(0..5)).into_bytes())
            }
            (9, Some(g)) => {
                let c = s.groups[&g]
                    .consumers
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| b"c0".to_vec());
                StreamOp::DelConsumer(g, c)
            }
            (_, Some(g)) => StreamOp::Claim {
                group: g,
                consumer: format!("c{}", rng.random_range(0..5)).into_bytes(),
                id: pick_id(rng),
                at_ms: now - rng.random_range(1..1_000_000),
                count: rng.random_range(0..10),
            },
        }
    }
}

/// Exact MAXLEN trimming: the oldest entries go; Redis 7.0 leaves
/// max-deleted-entry-id alone.
fn trim(s: &mut StreamVal, n: usize) {
    while s.entries.len() > n {
        let Some(first) = s.entries.keys().next().copied() else {
            break;
        };
        s.entries.remove(&first);
    }
}

/// Tolerance for comparing expiries derived from PTTL (dumps, restarts
/// and a busy 2-core machine all take time).
pub const TTL_TOLERANCE_MS: i64 = 5_000;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_covers_every_type() {
        let a = Spec::full(7, 500).generate();
        let b = Spec::full(7, 500).generate();
        // Expiries are relative to the clock at generation time.
        let d = a.diff(&b, 60_000);
        assert!(d.is_empty(), "{d}");
        assert!(!a.diff(&Spec::full(8, 500).generate(), 60_000).is_empty());
        let types = a.per_type();
        for t in ["string", "list", "hash", "set", "zset", "stream"] {
            assert!(
                types.get(t).copied().unwrap_or(0) > 0,
                "no {t} in {types:?}"
            );
        }
        assert!(a.per_db().len() >= 4);
        assert!(a.items.values().any(|i| i.expire_at_ms.is_some()));
        assert!(
            a.items
                .values()
                .any(|i| i.value.payload_bytes() > CHUNK_BYTES)
        );
        assert!(a.items.contains_key(&(0, Vec::new())));
    }

    #[test]
    fn diff_reports_each_kind_of_difference() {
        let a = Spec::small(1, 50).generate();
        assert!(a.diff(&a, 0).is_empty());
        let mut b = a.clone();
        let first = b.items.keys().next().cloned().unwrap();
        b.items.remove(&first);
        b.insert(9, "extra", Val::Str(b"x".to_vec()), None);
        let d = a.diff(&b, 0);
        assert_eq!(
            (d.missing.len(), d.unexpected.len(), d.changed.len()),
            (1, 1, 0),
            "{d}"
        );
        let mut c = a.clone();
        let (k, item) = c.items.iter_mut().next().unwrap();
        let k = k.clone();
        item.expire_at_ms = Some(now_ms() + 100_000);
        let d = a.diff(&c, 1000);
        assert_eq!(d.changed.len(), 1, "{d}");
        assert_eq!(d.changed[0].1, k.1);
    }

    #[test]
    fn diff_at_judges_expiry_at_the_time_of_the_dump() {
        let window = DumpWindow {
            started_ms: 10_000,
            finished_ms: 10_100,
        };
        let item = |at: Option<i64>| Item {
            value: Val::Str(b"v".to_vec()),
            expire_at_ms: at,
        };
        let mut model = Dataset::default();
        model.insert(0, "expired", item(Some(9_000)).value, Some(9_000));
        model.insert(0, "either", item(Some(10_500)).value, Some(10_500));
        model.insert(0, "later", item(Some(60_000)).value, Some(60_000));
        model.insert(0, "forever", item(None).value, None);
        // Exactly what a server shows: the expired key gone, the others there.
        let mut got = model.clone();
        got.items.remove(&(0, b"expired".to_vec()));
        assert!(model.diff_at(&got, window, 1000).is_empty());
        // A key in the window may be gone.
        got.items.remove(&(0, b"either".to_vec()));
        assert!(model.diff_at(&got, window, 1000).is_empty());
        // An expired key still served, a live one missing, a wrong TTL.
        let mut bad = got.clone();
        bad.insert(0, "expired", item(None).value, Some(9_000));
        bad.items.remove(&(0, b"forever".to_vec()));
        bad.insert(0, "later", item(None).value, Some(62_000));
        let d = model.diff_at(&bad, window, 1000);
        assert_eq!(
            (d.missing.len(), d.unexpected.len(), d.changed.len()),
            (1, 0, 2),
            "{d}"
        );
    }

    #[test]
    fn flush_and_swap_move_whole_databases() {
        let mut ds = Dataset::default();
        ds.insert(1, "a", Val::Str(b"1".to_vec()), None);
        ds.insert(2, "b", Val::Str(b"2".to_vec()), None);
        ds.insert(3, "c", Val::Str(b"3".to_vec()), None);
        ds.swap_dbs(1, 2);
        assert!(ds.items.contains_key(&(2, b"a".to_vec())));
        assert!(ds.items.contains_key(&(1, b"b".to_vec())));
        ds.flush_db(1);
        assert_eq!(ds.per_db(), [(2, 1), (3, 1)].into());
        assert_eq!(ds.restricted_to(&[3]).len(), 1);
    }

    #[test]
    fn ops_keep_the_model_consistent() {
        let mut ds = Spec::small(3, 100).generate();
        let mut m = Mutator::new(Spec::small(3, 100));
        for _ in 0..1000 {
            let op = m.next_op(&ds);
            op.apply(&mut ds);
            assert!(!op.commands().is_empty());
        }
        assert!(
            ds.items.values().all(|i| !i.value.is_empty()),
            "empty collections must be deleted"
        );
    }

    #[test]
    fn scores_survive_text() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..1000 {
            let s = random_score(&mut rng);
            assert_eq!(parse_score(score_text(s).as_bytes()).unwrap(), s);
        }
    }
}
