//! Client limits read by every connection (`client-output-buffer-limit`,
//! `client-query-buffer-limit`, `proto-max-bulk-len`) and the
//! `enable-*-command` / `enable-protected-configs` policies, kept next to
//! the parsing of their CONFIG values.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use cairn_resp::{ConnInfo, OutputLimit};

/// Redis 7.0's default `client-output-buffer-limit`.
pub(crate) const DEFAULT_OUTPUT_LIMITS: &str =
    "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

/// The classes of `client-output-buffer-limit`, in Redis' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientClass {
    Normal = 0,
    /// Accepted and shown as Redis does; cairn has no replicas yet, so no
    /// client is ever of this class.
    Replica = 1,
    Pubsub = 2,
}

impl ClientClass {
    /// Redis' `getClientTypeByName`.
    fn by_name(name: &str) -> Option<ClientClass> {
        match name.to_ascii_lowercase().as_str() {
            "normal" => Some(ClientClass::Normal),
            "slave" | "replica" => Some(ClientClass::Replica),
            "pubsub" => Some(ClientClass::Pubsub),
            _ => None,
        }
    }
}

/// The limits of each class, as last set.
#[derive(Debug, Default)]
pub(crate) struct OutputLimits {
    /// hard, soft, soft seconds for each class.
    classes: [[AtomicU64; 3]; 3],
}

impl OutputLimits {
    pub(crate) fn new(value: &str) -> OutputLimits {
        let l = OutputLimits::default();
        l.apply(DEFAULT_OUTPUT_LIMITS);
        l.apply(value);
        l
    }

    /// Stores a value CONFIG SET accepted (every class given, as the
    /// parameter table normalizes it).
    pub(crate) fn apply(&self, value: &str) {
        let words: Vec<&str> = value.split_ascii_whitespace().collect();
        for w in words.chunks_exact(4) {
            let [class, hard, soft, secs] = w else {
                continue;
            };
            let Some(class) = ClientClass::by_name(class) else {
                continue;
            };
            let slot = &self.classes[class as usize];
            for (a, v) in slot.iter().zip([hard, soft, secs]) {
                if let Some(n) = parse_memory(v) {
                    a.store(n, Ordering::Relaxed);
                }
            }
        }
    }

    pub(crate) fn get(&self, class: ClientClass) -> OutputLimit {
        let [h, s, secs] = &self.classes[class as usize];
        OutputLimit {
            hard: usize::try_from(h.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            soft: usize::try_from(s.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            soft_seconds: secs.load(Ordering::Relaxed),
        }
    }
}

/// Redis' `memtoull` (`1k` is 1000, `1kb` 1024).
fn parse_memory(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// `client-query-buffer-limit` and `proto-max-bulk-len` as last set.
#[derive(Debug)]
pub(crate) struct InputLimits {
    pub(crate) query_buffer: AtomicUsize,
    pub(crate) bulk_len: AtomicUsize,
}

impl InputLimits {
    pub(crate) fn new(query_buffer: Option<&String>, bulk_len: Option<&String>) -> InputLimits {
        let read = |v: Option<&String>, d: usize| v.and_then(|v| v.parse().ok()).unwrap_or(d);
        InputLimits {
            query_buffer: AtomicUsize::new(read(query_buffer, 1 << 30)),
            bulk_len: AtomicUsize::new(read(bulk_len, 512 << 20)),
        }
    }
}

/// Redis 7.0's `enable-debug-command`, `enable-module-command` and
/// `enable-protected-configs`: `no`, `yes`, or `local` (loopback and Unix
/// socket clients only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protected {
    No,
    Yes,
    Local,
}

impl Protected {
    pub(crate) fn parse(v: &str) -> Option<Protected> {
        match v.to_ascii_lowercase().as_str() {
            "no" => Some(Protected::No),
            "yes" => Some(Protected::Yes),
            "local" => Some(Protected::Local),
            _ => None,
        }
    }

    /// Redis' `allowProtectedAction`. A session without a connection is
    /// the embedding program itself (tests, the in-process API), which has
    /// no remote peer to guard against: it is allowed.
    pub(crate) fn allows(self, conn: Option<&ConnInfo>) -> bool {
        match (self, conn) {
            (Protected::Yes, _) | (_, None) => true,
            (Protected::Local, Some(c)) => c.is_local(),
            (Protected::No, Some(_)) => false,
        }
    }
}

/// Draws `n` random picks (repetitions allowed) in batches, stopping early
/// once they add up to `budget` bytes: the client is closed at its output
/// limit anyway, so `SRANDMEMBER k -16777216` on large members costs the
/// limit, not the count, in memory.
pub(crate) fn bounded_draws<T>(
    n: usize,
    budget: Option<usize>,
    size: impl Fn(&T) -> usize,
    mut draw: impl FnMut(usize) -> Vec<T>,
) -> Vec<T> {
    let Some(budget) = budget else {
        return draw(n);
    };
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while out.len() < n && bytes < budget {
        let batch = draw((n - out.len()).min(1024));
        if batch.is_empty() {
            break;
        }
        // The wire form of each pick has a header on top of its bytes.
        bytes = batch
            .iter()
            .fold(bytes, |b, x| b.saturating_add(size(x).saturating_add(8)));
        out.extend(batch);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn output_limits_parse_as_redis() {
        // CONFIG SET's parser (the parameter table), whose form this
        // module stores.
        let normalize_output_limits = |current: &str, value: &str| {
            crate::config::lookup("client-output-buffer-limit")
                .unwrap()
                .parse(value.as_bytes(), current)
        };
        let d = DEFAULT_OUTPUT_LIMITS;
        assert_eq!(
            normalize_output_limits(d, "normal 1mb 2mb 3").unwrap(),
            "normal 1048576 2097152 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(
            normalize_output_limits(d, "replica 1k 2k 10 pubsub 4 5 6").unwrap(),
            "normal 0 0 0 slave 1000 2000 10 pubsub 4 5 6"
        );
        assert_eq!(normalize_output_limits(d, "").unwrap(), d);
        assert_eq!(
            normalize_output_limits(d, "pubsub 1 2"),
            Err("Wrong number of arguments in buffer limit configuration.".to_owned())
        );
        assert_eq!(
            normalize_output_limits(d, "foo 1 2 3"),
            Err("Invalid client class specified in buffer limit configuration.".to_owned())
        );
        for bad in ["normal x 2 3", "normal -1 2 3", "normal 1 2 -3"] {
            assert_eq!(
                normalize_output_limits(d, bad),
                Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .to_owned()
                ),
                "{bad}"
            );
        }
        let l = OutputLimits::new("pubsub 10 5 2");
        assert_eq!(
            l.get(ClientClass::Pubsub),
            OutputLimit {
                hard: 10,
                soft: 5,
                soft_seconds: 2
            }
        );
        assert!(l.get(ClientClass::Normal).is_none());
    }
}
