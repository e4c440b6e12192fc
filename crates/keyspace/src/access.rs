//! The per-entry access field: Redis' 24-bit `lru` of every object, read
//! by `OBJECT IDLETIME`/`OBJECT FREQ` and (issue 17) sampled by eviction.
//!
//! Under an LRU (or any non-LFU) `maxmemory-policy` the field is the LRU
//! clock at the last access: unix seconds modulo 2^24 (Redis'
//! `LRU_CLOCK_RESOLUTION` of 1000 ms, wrapping every 194 days). Under an
//! LFU policy it is 16 bits of unix minutes modulo 2^16 (the last decrement
//! time) and an 8-bit logarithmic access counter, with exactly Redis'
//! evict.c arithmetic (`LFULogIncr`, `LFUDecrAndReturn`, `LFU_INIT_VAL`).
//! Switching the policy at run time reinterprets existing fields, as in
//! Redis; they adjust as keys are touched again.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Redis' `LRU_CLOCK_MAX`: the field holds 24 bits.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Redis' `LFU_INIT_VAL`: the counter of a new key, so it is not evicted
/// before it has had a chance to be accessed.
pub const LFU_INIT_VAL: u32 = 5;

/// Which interpretation of the field the current `maxmemory-policy`
/// selects, with the LFU parameters. Shared by every shard.
#[derive(Debug)]
pub(crate) struct AccessConfig {
    lfu: AtomicBool,
    /// `lfu-log-factor` (Redis: int, default 10).
    log_factor: AtomicU64,
    /// `lfu-decay-time` in minutes (Redis: int, default 1; 0 = never decay).
    decay_time: AtomicU64,
    /// xorshift state for `LFULogIncr`'s draw; a racy update between
    /// threads only mixes the stream, it never breaks it.
    rng: AtomicU32,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            lfu: AtomicBool::new(false),
            log_factor: AtomicU64::new(10),
            decay_time: AtomicU64::new(1),
            rng: AtomicU32::new(0x9e37_79b9),
        }
    }
}

impl AccessConfig {
    /// Whether an LFU policy is selected (`maxmemory-policy` *-lfu).
    pub(crate) fn is_lfu(&self) -> bool {
        self.lfu.load(Ordering::Relaxed)
    }

    /// Applies a (validated) `maxmemory-policy`, `lfu-log-factor` or
    /// `lfu-decay-time` value.
    pub(crate) fn apply(&self, name: &str, value: &str) {
        match name {
            // Redis' MAXMEMORY_FLAG_LFU: volatile-lfu and allkeys-lfu.
            "maxmemory-policy" => self.lfu.store(value.ends_with("-lfu"), Ordering::Relaxed),
            "lfu-log-factor" => {
                if let Ok(n) = value.parse::<u64>() {
                    self.log_factor.store(n, Ordering::Relaxed);
                }
            }
            "lfu-decay-time" => {
                if let Ok(n) = value.parse::<u64>() {
                    self.decay_time.store(n, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// The field of a key created at `now_ms` (Redis' `createObject`).
    pub(crate) fn new_field(&self, now_ms: i64) -> u32 {
        if self.is_lfu() {
            (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now_ms)
        }
    }

    /// The field after an access at `now_ms` (Redis' `lookupKey`: the LRU
    /// clock, or `updateLFU`).
    pub(crate) fn touched(&self, field: u32, now_ms: i64) -> u32 {
        if self.is_lfu() {
            let counter = self.decayed(field, now_ms);
            let counter = self.log_incr(counter);
            (lfu_minutes(now_ms) << 8) | counter
        } else {
            lru_clock(now_ms)
        }
    }

    /// Redis' `LFUDecrAndReturn`: the counter decremented by one per
    /// `lfu-decay-time` minutes elapsed since the field's time; the field
    /// itself is not changed (OBJECT FREQ reads it).
    pub(crate) fn decayed(&self, field: u32, now_ms: i64) -> u32 {
        let ldt = field >> 8;
        let counter = field & 255;
        let decay = self.decay_time.load(Ordering::Relaxed);
        // lfu-decay-time 0: never decay.
        let periods = u64::from(lfu_elapsed(ldt, now_ms))
            .checked_div(decay)
            .unwrap_or(0);
        if periods == 0 {
            counter
        } else if periods > u64::from(counter) {
            0
        } else {
            counter - periods as u32
        }
    }

    /// Redis' `LFULogIncr`: increments with probability
    /// `1 / ((counter - LFU_INIT_VAL) * lfu-log-factor + 1)`, saturating
    /// at 255.
    fn log_incr(&self, counter: u32) -> u32 {
        if counter >= 255 {
            return 255;
        }
        let r = self.draw();
        let baseval = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (baseval * self.log_factor.load(Ordering::Relaxed) as f64 + 1.0);
        if r < p { counter + 1 } else { counter }
    }

    /// A uniform draw in [0, 1): xorshift32 on a shared state, as cheap as
    /// Redis' `rand()` and lock-free.
    fn draw(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.store(x, Ordering::Relaxed);
        f64::from(x) / (f64::from(u32::MAX) + 1.0)
    }
}

/// Redis' `getLRUClock`: unix seconds modulo 2^24.
pub(crate) fn lru_clock(now_ms: i64) -> u32 {
    ((now_ms.max(0) / 1000) as u64 & u64::from(LRU_CLOCK_MAX)) as u32
}

/// Redis' `estimateObjectIdleTime`, in milliseconds: the clock distance
/// from the field to now, across one wrap of the 24-bit clock.
pub(crate) fn idle_ms(field: u32, now_ms: i64) -> u64 {
    let clock = lru_clock(now_ms);
    let lru = field & LRU_CLOCK_MAX;
    let secs = if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_CLOCK_MAX - lru)
    };
    u64::from(secs) * 1000
}

/// Redis' `LFUGetTimeInMinutes`: unix minutes modulo 2^16.
fn lfu_minutes(now_ms: i64) -> u32 {
    ((now_ms.max(0) / 1000 / 60) as u64 & 65535) as u32
}

/// Redis' `LFUTimeElapsed`, in minutes, across one wrap.
fn lfu_elapsed(ldt: u32, now_ms: i64) -> u32 {
    let now = lfu_minutes(now_ms);
    if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    }
}

/// Packs a field into the three bytes an entry keeps for it.
pub(crate) fn pack(field: u32) -> [u8; 3] {
    let [a, b, c, _] = field.to_le_bytes();
    [a, b, c]
}

/// The field from its three bytes.
pub(crate) fn unpack(bytes: [u8; 3]) -> u32 {
    let [a, b, c] = bytes;
    u32::from_le_bytes([a, b, c, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_765_000_000_000;

    #[test]
    fn lru_idle_time_counts_seconds_across_the_wrap() {
        let f = lru_clock(T);
        assert_eq!(idle_ms(f, T + 999), 0);
        assert_eq!(idle_ms(f, T + 61_000), 61_000);
        // A field stamped just before the 24-bit clock wraps.
        let wrap_ms = (i64::from(LRU_CLOCK_MAX) + 1) * 1000 * 100;
        let before = lru_clock(wrap_ms - 3000);
        assert_eq!(before, LRU_CLOCK_MAX - 2);
        // Redis' formula: clock + (LRU_CLOCK_MAX - lru) seconds.
        assert_eq!(idle_ms(before, wrap_ms + 2000), (2 + 2) * 1000);
    }

    #[test]
    fn lfu_counter_starts_at_init_and_the_first_access_always_counts() {
        let c = AccessConfig::default();
        c.apply("maxmemory-policy", "allkeys-lfu");
        let f = c.new_field(T);
        assert_eq!(c.decayed(f, T), LFU_INIT_VAL);
        // At or below LFU_INIT_VAL the probability is 1.
        let f = c.touched(f, T);
        assert_eq!(c.decayed(f, T), LFU_INIT_VAL + 1);
        // Decay: one per lfu-decay-time minutes since the field's minute.
        assert_eq!(c.decayed(f, T + 3 * 60_000), LFU_INIT_VAL - 2);
        assert_eq!(c.decayed(f, T + 3600 * 1000), 0);
        c.apply("lfu-decay-time", "0");
        assert_eq!(c.decayed(f, T + 3600 * 1000), LFU_INIT_VAL + 1);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_saturates() {
        let c = AccessConfig::default();
        c.apply("maxmemory-policy", "volatile-lfu");
        c.apply("lfu-decay-time", "0");
        let mut f = c.new_field(T);
        for _ in 0..1000 {
            f = c.touched(f, T);
        }
        // Redis' table (lfu-log-factor 10): 1K hits reach about 18.
        let n = c.decayed(f, T);
        assert!((10..=30).contains(&n), "{n}");
        c.apply("lfu-log-factor", "0");
        for _ in 0..300 {
            f = c.touched(f, T);
        }
        assert_eq!(c.decayed(f, T), 255);
    }

    #[test]
    fn fields_pack_into_three_bytes() {
        for f in [0, 1, 0x00ab_cdef, LRU_CLOCK_MAX] {
            assert_eq!(unpack(pack(f)), f);
        }
    }
}
