//! `maxmemory` and its policies: Redis 7.0's evict.c.
//!
//! Used memory is the allocator's count of bytes handed out and not freed
//! (`AllocatorReading::allocated`: one relaxed atomic load with the
//! counted allocator). Redis subtracts from it the memory it does not
//! count for eviction (`freeMemoryGetNotCountedMemory`: replica output
//! buffers and the AOF buffer); cairn has neither, so nothing is
//! subtracted and `mem_not_counted_for_evict` is 0. Without allocator
//! statistics there is no honest cheap figure (RSS lags frees and counts
//! pages the allocator keeps), so `maxmemory` is refused instead.
//!
//! [`perform`] is Redis' `performEvictions`: called before a command
//! flagged `denyoom` (and before any command inside MULTI), and from the
//! cron while an earlier call stopped at its time limit. While over the
//! limit it samples `maxmemory-samples` keys per database into a pool of
//! the 16 best candidates (idle time, 255 minus the LFU counter, or the
//! expiry for volatile-ttl), deletes the best through the same path as
//! DEL, and repeats until the memory measured around the deletions covers
//! the excess, or until the time `maxmemory-eviction-tenacity` allows.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;

use crate::engine::{Engine, Held};
use crate::keyspace::Keyspace;

/// Redis' `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;

/// Redis' shared `oomerr`, without its `-`.
pub(crate) const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// A `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Policy {
    NoEviction,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
}

impl Policy {
    const ALL: [Policy; 8] = [
        Policy::NoEviction,
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllkeysLru,
        Policy::AllkeysLfu,
        Policy::AllkeysRandom,
    ];

    fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "noeviction" => Policy::NoEviction,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            _ => return None,
        })
    }

    /// Samples `db->expires` rather than `db->dict`.
    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    /// Picks through the pool (LRU, LFU, TTL) rather than at random.
    fn pooled(self) -> bool {
        !matches!(
            self,
            Policy::VolatileRandom | Policy::AllkeysRandom | Policy::NoEviction
        )
    }
}

/// What [`perform`] concluded (Redis' `EVICT_OK`, `EVICT_RUNNING`,
/// `EVICT_FAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Under the limit (or eviction not applicable now).
    Ok,
    /// Still over the limit, but the time limit stopped this call; the
    /// cron continues. Commands proceed, as in Redis.
    Running,
    /// Over the limit and nothing could be freed: `-OOM` for `denyoom`.
    Fail,
}

struct PoolEntry {
    idle: u64,
    db: usize,
    key: Bytes,
}

#[derive(Default)]
struct State {
    /// Ascending by `idle`: the best candidate is last.
    pool: Vec<PoolEntry>,
    /// Redis' static `next_db` of the random policies.
    next_db: usize,
    /// The shards worth sampling, as last found (see [`Candidates`]).
    candidates: Option<Candidates>,
}

/// The eviction settings, counters and pool (one per keyspace).
#[derive(Default)]
pub(crate) struct Eviction {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicUsize,
    tenacity: AtomicU64,
    /// INFO `evicted_keys`.
    pub(crate) evicted_keys: AtomicU64,
    /// Redis' `isEvictionProcRunning`.
    running: AtomicBool,
    /// Held through a whole call: evictions run one at a time, as in
    /// Redis' single thread.
    state: Mutex<State>,
}

impl Eviction {
    pub(crate) fn new() -> Eviction {
        Eviction {
            samples: AtomicUsize::new(5),
            tenacity: AtomicU64::new(10),
            ..Eviction::default()
        }
    }

    /// Applies a validated `maxmemory*` parameter.
    pub(crate) fn apply(&self, name: &str, value: &str) {
        match name {
            "maxmemory" => {
                if let Ok(n) = value.parse() {
                    self.maxmemory.store(n, Ordering::Relaxed);
                }
            }
            "maxmemory-policy" => {
                if let Some(p) = Policy::parse(value) {
                    self.policy.store(p as u8, Ordering::Relaxed);
                }
            }
            "maxmemory-samples" => {
                if let Ok(n) = value.parse::<usize>() {
                    self.samples.store(n.max(1), Ordering::Relaxed);
                }
            }
            "maxmemory-eviction-tenacity" => {
                if let Ok(n) = value.parse::<u64>() {
                    self.tenacity.store(n.min(100), Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// `maxmemory` in bytes (0: no limit).
    #[inline]
    pub(crate) fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }

    fn policy(&self) -> Policy {
        let p = self.policy.load(Ordering::Relaxed);
        Policy::ALL
            .get(usize::from(p))
            .copied()
            .unwrap_or(Policy::NoEviction)
    }

    /// Whether an earlier call stopped at its time limit.
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Redis' `evictionTimeLimitUs`: 50 µs per step up to tenacity 10
    /// (500 µs by default), then 15% more per step, none at 100.
    fn time_limit(&self) -> Option<Duration> {
        let t = self.tenacity.load(Ordering::Relaxed);
        if t <= 10 {
            Some(Duration::from_micros(50 * t))
        } else if t < 100 {
            Some(Duration::from_micros(
                (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
            ))
        } else {
            None
        }
    }
}

/// Used memory as eviction counts it, if the allocator keeps a count.
#[inline]
pub(crate) fn used(ks: &Keyspace) -> Option<u64> {
    ks.inner
        .allocator
        .as_ref()
        .and_then(|a| a.read())
        .map(|r| r.allocated)
}

/// Whether `maxmemory` is set and used memory is above it (one atomic
/// load when no limit is set).
#[inline]
pub(crate) fn over_limit(ks: &Keyspace) -> bool {
    let max = ks.inner.evict.maxmemory();
    max != 0 && used(ks).is_some_and(|u| u > max)
}

/// Redis' `performEvictions`.
pub(crate) fn perform(ks: &Keyspace) -> Verdict {
    let ev = &ks.inner.evict;
    let max = ev.maxmemory();
    if max == 0 {
        return Verdict::Ok;
    }
    // Redis' `isSafeToPerformEvictions`: not while a busy script holds the
    // keyspace, nor while clients are paused (the dataset must stay
    // static); neither case refuses the command.
    if ks.is_busy() || ks.inner.pause.current().is_some() {
        return Verdict::Ok;
    }
    if used(ks).is_none_or(|u| u <= max) {
        ev.running.store(false, Ordering::Relaxed);
        return Verdict::Ok;
    }
    let policy = ev.policy();
    if policy == Policy::NoEviction {
        return Verdict::Fail;
    }
    // The gate before the pool's mutex, the order every caller keeps (a
    // CONFIG SET maxmemory inside EXEC arrives holding the gate).
    let engine = ks.engine();
    let Ok(_gate) = engine.enter_unless(Held::Read, || ks.is_busy()) else {
        return Verdict::Ok;
    };
    let mut state = ev.state.lock();
    // Another caller may have freed enough while this one waited.
    let Some(used_now) = used(ks).filter(|u| *u > max) else {
        ev.running.store(false, Ordering::Relaxed);
        return Verdict::Ok;
    };
    let to_free = i64::try_from(used_now - max).unwrap_or(i64::MAX);
    let started = Instant::now();
    let limit = ev.time_limit();
    let volatile = policy.volatile();
    let mut rng = rand::rng();
    let mut candidates = match state.candidates.take() {
        Some(c) if c.volatile == volatile && c.found.elapsed() < CANDIDATES_TTL => c,
        _ => Candidates::find(engine, volatile),
    };
    let mut freed: i64 = 0;
    let mut keys_freed: u64 = 0;
    let mut nothing_left = false;
    let mut sample = Vec::new();
    while freed < to_free {
        let now = engine.clock.now_ms();
        let before = used(ks).unwrap_or(0);
        let mut evicted = false;
        for fresh in [false, true] {
            if fresh {
                if candidates.found.elapsed() < Duration::from_millis(1) {
                    break;
                }
                // Nothing found in the shards known to have keys: look
                // again before concluding that nothing can be freed.
                candidates = Candidates::find(engine, volatile);
            }
            evicted = if policy.pooled() {
                evict_from_pool(
                    engine,
                    &mut state,
                    &candidates,
                    policy,
                    ev.samples.load(Ordering::Relaxed),
                    now,
                    &mut rng,
                    &mut sample,
                )
            } else {
                evict_random(engine, &mut state, &candidates, volatile, now, &mut rng)
            };
            if evicted {
                break;
            }
        }
        if !evicted {
            nothing_left = true;
            break;
        }
        freed += i64::try_from(before).unwrap_or(i64::MAX)
            - i64::try_from(used(ks).unwrap_or(0)).unwrap_or(i64::MAX);
        ev.evicted_keys.fetch_add(1, Ordering::Relaxed);
        keys_freed += 1;
        if keys_freed.is_multiple_of(16) && limit.is_some_and(|l| started.elapsed() > l) {
            ev.running.store(true, Ordering::Relaxed);
            break;
        }
    }
    // Redis: `cant_free` keeps EVICT_FAIL; otherwise RUNNING while the
    // timer proc is on, else OK.
    let verdict = if nothing_left {
        Verdict::Fail
    } else if ev.running() {
        Verdict::Running
    } else {
        Verdict::Ok
    };
    state.candidates = Some(candidates);
    if keys_freed > 0 {
        // An evicted stream releases the XREADGROUP clients blocked on it;
        // BCAST invalidations go out now, as Redis'
        // `trackingHandlePendingKeyInvalidations` after evicting.
        if engine.counters.blocking.has_ready() {
            ks.serve_blocked();
        }
        engine.counters.notify.after_command();
    }
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    ks.inner.latency.add_if_needed("eviction-cycle", ms);
    verdict
}

/// How long a list of [`Candidates`] is reused: finding them locks every
/// shard of every database (512 by default), too much to do before each
/// command while over the limit. A shard that emptied meanwhile yields no
/// sample; one that filled is seen at the next look, or at once when
/// nothing else can be evicted.
const CANDIDATES_TTL: Duration = Duration::from_millis(100);

/// The shards worth sampling, per database: those with keys (with keys
/// with an expiry for volatile-*).
struct Candidates {
    by_db: Vec<Vec<usize>>,
    volatile: bool,
    found: Instant,
}

impl Candidates {
    fn find(engine: &Engine, volatile: bool) -> Candidates {
        let now = engine.clock.now_ms();
        let by_db = (0..engine.databases())
            .map(|db| {
                engine
                    .db_shards(db)
                    .filter(|&idx| {
                        let s = engine.lock_index(idx, now);
                        if volatile {
                            s.volatile_len() > 0
                        } else {
                            !s.is_empty()
                        }
                    })
                    .collect()
            })
            .collect();
        Candidates {
            by_db,
            volatile,
            found: Instant::now(),
        }
    }
}

/// The candidate's score: the larger, the better to evict.
fn score(policy: Policy, engine: &Engine, access: u32, expires: Option<i64>, now: i64) -> u64 {
    match policy {
        Policy::VolatileTtl => {
            u64::MAX - u64::try_from(expires.unwrap_or(i64::MAX)).unwrap_or(u64::MAX)
        }
        Policy::AllkeysLfu | Policy::VolatileLfu => {
            255 - u64::from(engine.counters.access.decayed(access, now))
        }
        _ => crate::access::idle_ms(access, now),
    }
}

/// Redis' `evictionPoolPopulate`'s insertion: keeps the 16 best, sorted
/// ascending; a candidate worse than all of a full pool is dropped, else
/// the worst entry makes room.
fn pool_insert(pool: &mut Vec<PoolEntry>, e: PoolEntry) {
    if pool.iter().any(|p| p.db == e.db && p.key == e.key) {
        // Redis may hold a key twice; one copy (with the fresh score) is
        // enough.
        pool.retain(|p| !(p.db == e.db && p.key == e.key));
    }
    let k = pool.partition_point(|p| p.idle < e.idle);
    if pool.len() < POOL_SIZE {
        pool.insert(k, e);
    } else if k > 0 {
        pool.remove(0);
        pool.insert(k - 1, e);
    }
}

/// One round of the pooled policies: populate from every database, then
/// evict the best candidate that still exists. Returns whether a key was
/// evicted.
#[allow(clippy::too_many_arguments)]
fn evict_from_pool(
    engine: &Engine,
    state: &mut State,
    candidates: &Candidates,
    policy: Policy,
    samples: usize,
    now: i64,
    rng: &mut impl Rng,
    sample: &mut Vec<(Bytes, u32, Option<i64>)>,
) -> bool {
    let volatile = policy.volatile();
    loop {
        let mut sampled = false;
        for (db, shards) in candidates.by_db.iter().enumerate() {
            if shards.is_empty() {
                continue;
            }
            sample.clear();
            sample_db(engine, shards, samples, volatile, now, rng, sample);
            for (key, access, expires) in sample.drain(..) {
                sampled = true;
                let idle = score(policy, engine, access, expires, now);
                pool_insert(&mut state.pool, PoolEntry { idle, db, key });
            }
        }
        if !sampled && state.pool.is_empty() {
            return false;
        }
        // From the best down; ghosts (deleted meanwhile, or no longer
        // volatile) are dropped.
        while let Some(best) = state.pool.pop() {
            if evict_key(engine, best.db, &best.key, volatile, now) {
                return true;
            }
        }
        if !sampled {
            return false;
        }
    }
}

/// `samples` keys of one database: from a random shard on, as many as
/// each holds in `10 samples` buckets after a random one (Redis'
/// `dictGetSomeKeys`); if that finds nothing (a few keys left in sparse
/// tables), whole tables are walked, so a database with keys always
/// yields one.
fn sample_db(
    engine: &Engine,
    shards: &[usize],
    samples: usize,
    volatile: bool,
    now: i64,
    rng: &mut impl Rng,
    out: &mut Vec<(Bytes, u32, Option<i64>)>,
) -> usize {
    if shards.is_empty() {
        return 0;
    }
    let mut got = 0;
    for max_steps in [samples.saturating_mul(10), usize::MAX] {
        let first = rng.random_range(0..shards.len());
        for step in 0..shards.len() {
            if got >= samples {
                return got;
            }
            let idx = shards[(first + step) % shards.len()];
            got += engine.lock_index(idx, now).evict_sample(
                samples - got,
                max_steps,
                volatile,
                rng,
                out,
            );
        }
        if got > 0 {
            break;
        }
    }
    got
}

/// One eviction under allkeys-random or volatile-random: the next
/// database with keys, a random key of it.
fn evict_random(
    engine: &Engine,
    state: &mut State,
    candidates: &Candidates,
    volatile: bool,
    now: i64,
    rng: &mut impl Rng,
) -> bool {
    let dbs = candidates.by_db.len();
    let mut sample = Vec::with_capacity(1);
    for _ in 0..dbs {
        state.next_db = (state.next_db + 1) % dbs.max(1);
        let Some(shards) = candidates.by_db.get(state.next_db) else {
            continue;
        };
        if shards.is_empty() {
            continue;
        }
        sample.clear();
        sample_db(engine, shards, 1, volatile, now, rng, &mut sample);
        if let Some((key, _, _)) = sample.pop()
            && evict_key(engine, state.next_db, &key, volatile, now)
        {
            return true;
        }
    }
    false
}

/// Deletes `key` as DEL does (watchers touched, tracking invalidated,
/// blocked stream readers released, the old version kept for a running
/// snapshot) and publishes `evicted`. False for a ghost.
fn evict_key(engine: &Engine, db: usize, key: &[u8], volatile: bool, now: i64) -> bool {
    let mut shard = engine.lock(db, key, now);
    let live = shard
        .peek(key)
        .is_some_and(|e| !volatile || e.expires_at_ms().is_some());
    if !live {
        return false;
    }
    // An expired key is deleted as expired (and counted so), not evicted;
    // its memory is freed all the same.
    let Some(entry) = shard.remove(key) else {
        return false;
    };
    drop(entry);
    shard.notify(crate::notify::Class::Evicted, "evicted", key);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(idle: u64, key: &'static str) -> PoolEntry {
        PoolEntry {
            idle,
            db: 0,
            key: Bytes::from_static(key.as_bytes()),
        }
    }

    #[test]
    fn the_pool_keeps_the_sixteen_best_in_order() {
        let mut pool = Vec::new();
        for i in 0..40u64 {
            // 0, 7, 14, ... mod 40: every score once, out of order.
            let idle = (i * 7) % 40;
            pool_insert(
                &mut pool,
                PoolEntry {
                    idle,
                    db: 0,
                    key: Bytes::from(format!("k{idle}")),
                },
            );
        }
        let idles: Vec<u64> = pool.iter().map(|p| p.idle).collect();
        assert_eq!(idles, (24..40).collect::<Vec<_>>());
        // A candidate worse than the whole full pool is dropped.
        pool_insert(&mut pool, e(3, "worse"));
        assert_eq!(pool.len(), POOL_SIZE);
        assert!(pool.iter().all(|p| p.key != "worse"));
        // A key sampled again keeps one entry, with its new score.
        pool_insert(&mut pool, e(100, "k30"));
        assert_eq!(pool.iter().filter(|p| p.key == "k30").count(), 1);
        assert_eq!(pool.last().map(|p| p.idle), Some(100));
    }

    #[test]
    fn time_limits_follow_redis_tenacity_steps() {
        let ev = Eviction::new();
        assert_eq!(ev.time_limit(), Some(Duration::from_micros(500)));
        ev.apply("maxmemory-eviction-tenacity", "0");
        assert_eq!(ev.time_limit(), Some(Duration::ZERO));
        ev.apply("maxmemory-eviction-tenacity", "11");
        assert_eq!(ev.time_limit(), Some(Duration::from_micros(575)));
        ev.apply("maxmemory-eviction-tenacity", "100");
        assert_eq!(ev.time_limit(), None);
    }

    #[test]
    fn policies_parse_and_classify() {
        for p in Policy::ALL {
            assert_eq!(Policy::ALL[p as usize], p);
        }
        assert_eq!(Policy::parse("volatile-ttl"), Some(Policy::VolatileTtl));
        assert!(Policy::VolatileTtl.pooled() && Policy::VolatileTtl.volatile());
        assert!(!Policy::AllkeysRandom.pooled() && !Policy::AllkeysRandom.volatile());
        assert_eq!(Policy::parse("lru"), None);
    }
}
