//! The statistics `INFO` reports: commands processed, keyspace hits and
//! misses, network bytes, per-command calls and time (`commandstats`),
//! error replies by prefix (`errorstats`), per-command latency histograms
//! (`latencystats`, `LATENCY HISTOGRAM`) and the instantaneous rates.
//!
//! Cheap on the hot path: no lock per command. Counters are atomics in
//! [`STRIPES`] cache-line-aligned stripes, a session always adding to the
//! stripe of its client id, so two sessions on two threads rarely touch the
//! same line; readers (INFO) sum the stripes. Per-command counters are laid
//! out stripe by stripe for the same reason. Latency histograms are
//! allocated on a command's first call. Only error replies take a lock
//! (the map of error prefixes), as they are not on the hot path.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// Number of counter stripes (a power of two).
pub(crate) const STRIPES: usize = 16;
/// Stripes of each latency histogram: fewer, since one is 24 KiB.
const HIST_STRIPES: usize = 4;
/// Redis' `ERROR_STATS_NUMBER`: distinct error prefixes tracked.
const MAX_ERROR_KINDS: usize = 128;
/// Redis' `STATS_METRIC_SAMPLES`.
const SAMPLES: usize = 16;

#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    commands: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    net_in: AtomicU64,
    net_out: AtomicU64,
    errors: AtomicU64,
}

#[derive(Default)]
struct CmdSlot {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// One command's counters summed over the stripes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CmdTotals {
    pub(crate) calls: u64,
    pub(crate) nanos: u64,
    pub(crate) rejected: u64,
    pub(crate) failed: u64,
}

/// The instantaneous metrics' ring buffers (Redis' `inst_metric`).
struct Instant3 {
    last_at: Option<Instant>,
    last: [u64; 3],
    samples: [[u64; SAMPLES]; 3],
    idx: usize,
}

/// All counters; one per keyspace.
pub(crate) struct Stats {
    stripes: Box<[Stripe]>,
    slots: usize,
    cmds: Box<[CmdSlot]>,
    hists: Box<[OnceLock<Hdr>]>,
    /// `latency-tracking`.
    pub(crate) tracking: AtomicBool,
    errors: Mutex<BTreeMap<String, u64>>,
    inst: Mutex<Instant3>,
}

impl Stats {
    /// Counters for `slots` commands and subcommands.
    pub(crate) fn new(slots: usize) -> Stats {
        Stats {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            slots,
            cmds: (0..STRIPES * slots).map(|_| CmdSlot::default()).collect(),
            hists: (0..HIST_STRIPES * slots).map(|_| OnceLock::new()).collect(),
            tracking: AtomicBool::new(true),
            errors: Mutex::new(BTreeMap::new()),
            inst: Mutex::new(Instant3 {
                last_at: None,
                last: [0; 3],
                samples: [[0; SAMPLES]; 3],
                idx: 0,
            }),
        }
    }

    fn stripe(&self, client: u64) -> &Stripe {
        let i = client as usize % STRIPES;
        &self.stripes[i]
    }

    fn slot(&self, client: u64, slot: usize) -> Option<&CmdSlot> {
        let stripe = client as usize % STRIPES;
        self.cmds.get(stripe * self.slots + slot)
    }

    /// A command ran for `nanos` (its handler's time); `failed` when it
    /// answered an error.
    pub(crate) fn executed(&self, client: u64, slot: Option<usize>, nanos: u64, failed: bool) {
        let st = self.stripe(client);
        st.commands.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = slot else { return };
        if let Some(c) = self.slot(client, slot) {
            c.calls.fetch_add(1, Ordering::Relaxed);
            c.nanos.fetch_add(nanos, Ordering::Relaxed);
            if failed {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.tracking.load(Ordering::Relaxed) {
            let h = client as usize % HIST_STRIPES;
            if let Some(cell) = self.hists.get(slot * HIST_STRIPES + h) {
                cell.get_or_init(Hdr::new).record(nanos);
            }
        }
    }

    /// A known command was refused before running (arity, NOAUTH, ...).
    pub(crate) fn rejected(&self, client: u64, slot: usize) {
        if let Some(c) = self.slot(client, slot) {
            c.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An error reply went out (Redis' `afterErrorReply`): counted under
    /// its prefix, the text up to the first space within 32 bytes, else
    /// `ERR`.
    pub(crate) fn error_reply(&self, client: u64, text: &[u8]) {
        self.stripe(client).errors.fetch_add(1, Ordering::Relaxed);
        let head = text.get(..text.len().min(32)).unwrap_or_default();
        let prefix = match head.iter().position(|&b| b == b' ') {
            Some(p) => String::from_utf8_lossy(head.get(..p).unwrap_or_default()).into_owned(),
            None => "ERR".to_owned(),
        };
        let mut errors = self.errors.lock();
        if let Some(n) = errors.get_mut(&prefix) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_KINDS {
            errors.insert(prefix, 1);
        }
    }

    /// Adds the keyspace hits and misses a command's read lookups made.
    pub(crate) fn lookups(&self, client: u64, hits: u64, misses: u64) {
        let st = self.stripe(client);
        if hits > 0 {
            st.hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            st.misses.fetch_add(misses, Ordering::Relaxed);
        }
    }

    /// Bytes read from and written to a client's socket.
    pub(crate) fn net(&self, client: u64, input: u64, output: u64) {
        let st = self.stripe(client);
        if input > 0 {
            st.net_in.fetch_add(input, Ordering::Relaxed);
        }
        if output > 0 {
            st.net_out.fetch_add(output, Ordering::Relaxed);
        }
    }

    fn sum(&self, f: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn commands(&self) -> u64 {
        self.sum(|s| &s.commands)
    }
    pub(crate) fn hits(&self) -> u64 {
        self.sum(|s| &s.hits)
    }
    pub(crate) fn misses(&self) -> u64 {
        self.sum(|s| &s.misses)
    }
    pub(crate) fn net_in(&self) -> u64 {
        self.sum(|s| &s.net_in)
    }
    pub(crate) fn net_out(&self) -> u64 {
        self.sum(|s| &s.net_out)
    }
    pub(crate) fn error_replies(&self) -> u64 {
        self.sum(|s| &s.errors)
    }

    /// A command's counters summed over the stripes.
    pub(crate) fn command(&self, slot: usize) -> CmdTotals {
        let mut t = CmdTotals::default();
        for stripe in 0..STRIPES {
            if let Some(c) = self.cmds.get(stripe * self.slots + slot) {
                t.calls += c.calls.load(Ordering::Relaxed);
                t.nanos += c.nanos.load(Ordering::Relaxed);
                t.rejected += c.rejected.load(Ordering::Relaxed);
                t.failed += c.failed.load(Ordering::Relaxed);
            }
        }
        t
    }

    /// A command's latency histogram (its stripes merged), `None` if it
    /// recorded nothing since the last reset.
    pub(crate) fn histogram(&self, slot: usize) -> Option<HdrCounts> {
        let mut merged: Option<HdrCounts> = None;
        for h in 0..HIST_STRIPES {
            if let Some(hist) = self
                .hists
                .get(slot * HIST_STRIPES + h)
                .and_then(OnceLock::get)
            {
                let m = merged.get_or_insert_with(|| HdrCounts(vec![0; COUNTS_LEN]));
                for (d, s) in m.0.iter_mut().zip(hist.counts.iter()) {
                    *d += s.load(Ordering::Relaxed);
                }
            }
        }
        merged.filter(|m| m.total() > 0)
    }

    /// Error prefixes and their counts, in Redis' (sorted) order.
    pub(crate) fn errors(&self) -> Vec<(String, u64)> {
        self.errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// `CONFIG RESETSTAT`.
    pub(crate) fn reset(&self) {
        for s in self.stripes.iter() {
            for a in [
                &s.commands,
                &s.hits,
                &s.misses,
                &s.net_in,
                &s.net_out,
                &s.errors,
            ] {
                a.store(0, Ordering::Relaxed);
            }
        }
        for c in self.cmds.iter() {
            for a in [&c.calls, &c.nanos, &c.rejected, &c.failed] {
                a.store(0, Ordering::Relaxed);
            }
        }
        for h in self.hists.iter() {
            if let Some(h) = h.get() {
                h.reset();
            }
        }
        self.errors.lock().clear();
        let mut inst = self.inst.lock();
        inst.samples = [[0; SAMPLES]; 3];
        inst.last = [self.commands(), self.net_in(), self.net_out()];
    }

    /// Redis' `trackInstantaneousMetric` for ops, input and output bytes:
    /// call it every 100 ms.
    pub(crate) fn sample(&self) {
        let now = Instant::now();
        let current = [self.commands(), self.net_in(), self.net_out()];
        let mut inst = self.inst.lock();
        let idx = inst.idx;
        if let Some(at) = inst.last_at {
            let ms = now.duration_since(at).as_millis() as u64;
            for (i, cur) in current.iter().enumerate() {
                let delta = cur.saturating_sub(inst.last[i]);
                inst.samples[i][idx] = (delta * 1000).checked_div(ms).unwrap_or(0);
            }
            inst.idx = (idx + 1) % SAMPLES;
        }
        inst.last_at = Some(now);
        inst.last = current;
    }

    /// The mean of a metric's 16 samples (0: ops/s, 1: input bytes/s,
    /// 2: output bytes/s).
    pub(crate) fn instantaneous(&self, metric: usize) -> u64 {
        let inst = self.inst.lock();
        inst.samples
            .get(metric)
            .map_or(0, |s| s.iter().sum::<u64>() / SAMPLES as u64)
    }
}

thread_local! {
    /// (counting, hits, misses) of the command running on this thread.
    static LOOKUPS: Cell<(bool, u64, u64)> = const { Cell::new((false, 0, 0)) };
}

/// Starts counting the key lookups of a command on this thread (a
/// read-only command's lookups are Redis' `lookupKeyRead`); returns what
/// was being counted, for [`end_lookups`] (nested commands).
pub(crate) fn begin_lookups(counting: bool) -> (bool, u64, u64) {
    LOOKUPS.with(|c| c.replace((counting, 0, 0)))
}

/// Ends counting: the hits and misses since [`begin_lookups`], restoring
/// the outer command's state.
pub(crate) fn end_lookups(outer: (bool, u64, u64)) -> (u64, u64) {
    let (_, h, m) = LOOKUPS.with(|c| c.replace(outer));
    (h, m)
}

/// A key lookup; counted when the running command reads. Returns whether
/// it was counted: a counted miss is also Redis' `keymiss` event.
pub(crate) fn lookup(hit: bool) -> bool {
    LOOKUPS.with(|c| {
        let (on, h, m) = c.get();
        if on {
            c.set(if hit { (on, h + 1, m) } else { (on, h, m + 1) });
        }
        on
    })
}

/// Makes the lookups of the running command count as reads (`true`, Redis'
/// `lookupKeyRead`: hits, misses and `keymiss`) or not (`false`: its
/// `lookupKeyWrite`, or a lookup flagged `NOSTATS|NONOTIFY`) until the
/// guard drops. Most commands need none: a read-only command's lookups
/// count, a write command's do not. This is for the exceptions, where
/// Redis reads with the other kind (SET GET, SORT's source and patterns,
/// OBJECT, MEMORY USAGE, ...).
pub(crate) fn reads(counting: bool) -> ReadsGuard {
    let prev = LOOKUPS.with(|c| {
        let (on, h, m) = c.get();
        c.set((counting, h, m));
        on
    });
    ReadsGuard { prev }
}

thread_local! {
    /// Misses publish no `keymiss` (Redis' `LOOKUP_NONOTIFY`).
    static NO_KEYMISS: Cell<bool> = const { Cell::new(false) };
}

/// Until the guard drops, lookups still count as hits and misses but a
/// miss publishes no `keymiss` (Redis' `LOOKUP_NONOTIFY`, used by OBJECT).
pub(crate) fn no_keymiss() -> NoKeymissGuard {
    NoKeymissGuard {
        prev: NO_KEYMISS.with(|c| c.replace(true)),
    }
}

/// Whether a counted miss publishes `keymiss` now.
pub(crate) fn keymiss_wanted() -> bool {
    !NO_KEYMISS.with(Cell::get)
}

/// Restores what [`no_keymiss`] replaced.
pub(crate) struct NoKeymissGuard {
    prev: bool,
}

impl Drop for NoKeymissGuard {
    fn drop(&mut self) {
        NO_KEYMISS.with(|c| c.set(self.prev));
    }
}

/// Restores the counting mode [`reads`] replaced.
pub(crate) struct ReadsGuard {
    prev: bool,
}

impl Drop for ReadsGuard {
    fn drop(&mut self) {
        LOOKUPS.with(|c| {
            let (_, h, m) = c.get();
            c.set((self.prev, h, m));
        });
    }
}

// HdrHistogram as Redis 7.0 configures it: values 1 ns to 1 s, 2
// significant figures. The bucket arithmetic is HdrHistogram_c's, so
// the percentiles and the LATENCY HISTOGRAM buckets are Redis' values.
const LOWEST: u64 = 1;
const HIGHEST: u64 = 1_000_000_000;
/// `sub_bucket_half_count_magnitude` for 2 significant figures.
const HALF_MAG: u32 = 7;
const HALF_COUNT: u64 = 1 << HALF_MAG;
const SUB_MASK: u64 = (2 * HALF_COUNT) - 1;
/// `bucket_count` for a highest trackable value of 10^9.
const BUCKETS: usize = 23;
const COUNTS_LEN: usize = (BUCKETS + 1) * HALF_COUNT as usize;

/// A latency histogram with atomic counts.
pub(crate) struct Hdr {
    counts: Box<[AtomicU64]>,
}

impl Hdr {
    fn new() -> Hdr {
        Hdr {
            counts: (0..COUNTS_LEN).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, nanos: u64) {
        let v = nanos.clamp(LOWEST, HIGHEST);
        if let Some(c) = self.counts.get(counts_index(v)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

fn bucket_index(v: u64) -> u32 {
    let pow2ceiling = 64 - (v | SUB_MASK).leading_zeros();
    pow2ceiling - (HALF_MAG + 1)
}

fn counts_index(v: u64) -> usize {
    let b = bucket_index(v);
    let sub = v >> b;
    (((u64::from(b) + 1) << HALF_MAG) + sub - HALF_COUNT) as usize
}

fn value_at_index(i: usize) -> u64 {
    let i = i as u64;
    let mut bucket = (i >> HALF_MAG) as i64 - 1;
    let mut sub = (i & (HALF_COUNT - 1)) + HALF_COUNT;
    if bucket < 0 {
        sub -= HALF_COUNT;
        bucket = 0;
    }
    sub << bucket
}

fn lowest_equivalent(v: u64) -> u64 {
    let b = bucket_index(v);
    (v >> b) << b
}

fn highest_equivalent(v: u64) -> u64 {
    let b = bucket_index(v);
    let sub = v >> b;
    let adjusted = if sub >= 2 * HALF_COUNT { b + 1 } else { b };
    lowest_equivalent(v) + (1u64 << adjusted) - 1
}

/// A snapshot of a histogram's counts.
pub(crate) struct HdrCounts(Vec<u64>);

impl HdrCounts {
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `hdr_value_at_percentile` (nanoseconds).
    pub(crate) fn percentile(&self, p: f64) -> u64 {
        let total = self.total();
        let requested = p.min(100.0);
        let want = (((requested / 100.0) * total as f64) + 0.5) as u64;
        let want = want.max(1);
        let mut seen = 0;
        for (i, c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= want {
                let v = value_at_index(i);
                return if p == 0.0 {
                    lowest_equivalent(v)
                } else {
                    highest_equivalent(v)
                };
            }
        }
        0
    }

    /// `LATENCY HISTOGRAM`'s buckets, as HdrHistogram's logarithmic
    /// iterator from 1024 ns by powers of 2 gives them to Redis: at each
    /// level, the counts up to and including the level's own sub-bucket,
    /// reported as (that sub-bucket's highest value in µs, cumulative
    /// count) where the count grew.
    pub(crate) fn log_buckets(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let total = self.total();
        let mut level: u64 = 1024;
        let mut cumulative = 0u64;
        let mut previous = 0u64;
        let mut i = 0usize;
        while cumulative < total {
            let low = lowest_equivalent(level.min(HIGHEST));
            let mut reached = None;
            while let Some(c) = self.0.get(i) {
                cumulative += c;
                let v = value_at_index(i);
                i += 1;
                if v >= low {
                    reached = Some(v);
                    break;
                }
            }
            let Some(v) = reached else { break };
            if cumulative > previous {
                out.push((highest_equivalent(v) / 1000, cumulative));
            }
            previous = cumulative;
            level = level.saturating_mul(2);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdr_values_match_redis() {
        // Redis 7.0 reports 5.023 µs for one 5 µs call and 9.023 for 9 µs.
        let mut h = HdrCounts(vec![0; COUNTS_LEN]);
        if let Some(c) = h.0.get_mut(counts_index(5000)) {
            *c += 1;
        }
        assert_eq!(h.percentile(50.0), 5023);
        let mut h = HdrCounts(vec![0; COUNTS_LEN]);
        if let Some(c) = h.0.get_mut(counts_index(9000)) {
            *c += 1;
        }
        assert_eq!(h.percentile(99.9), 9023);
        assert!(counts_index(HIGHEST) < COUNTS_LEN);
        assert_eq!(highest_equivalent(1), 1);
        assert_eq!(highest_equivalent(255), 255);
        assert_eq!(highest_equivalent(256), 257);
    }

    #[test]
    fn error_prefixes() {
        let s = Stats::new(1);
        s.error_reply(1, b"ERR syntax error");
        s.error_reply(2, b"WRONGTYPE Operation");
        s.error_reply(3, b"NOSPACEATALLINTHISVERYLONGERRORTEXTXX x");
        s.error_reply(3, b"ERR x");
        assert_eq!(
            s.errors(),
            vec![("ERR".to_owned(), 3), ("WRONGTYPE".to_owned(), 1)]
        );
        assert_eq!(s.error_replies(), 4);
    }
}
