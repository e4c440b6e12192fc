//! The slow log (`SLOWLOG`) and the latency monitor (`LATENCY`), as Redis
//! 7.0's `slowlog.c` and `latency.c` keep them.
//!
//! Both are checked after every command against thresholds cached in
//! atomics (`slowlog-log-slower-than`, `latency-monitor-threshold`), so a
//! command below them costs two loads and compares; only a logged command
//! takes the lock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Redis' `SLOWLOG_ENTRY_MAX_ARGC`.
const MAX_ARGC: usize = 32;
/// Redis' `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_STRING: usize = 128;
/// Redis' `LATENCY_TS_LEN`: samples kept per event.
pub(crate) const TS_LEN: usize = 160;

/// One slow log entry.
#[derive(Clone, Debug)]
pub(crate) struct SlowEntry {
    pub(crate) id: u64,
    pub(crate) time: i64,
    pub(crate) micros: u64,
    pub(crate) args: Vec<Bytes>,
    pub(crate) peer: String,
    pub(crate) name: Bytes,
}

#[derive(Default)]
struct Entries {
    next_id: u64,
    list: VecDeque<SlowEntry>,
}

/// The slow log.
pub(crate) struct SlowLog {
    /// `slowlog-log-slower-than` in µs; negative disables it.
    pub(crate) slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub(crate) max_len: AtomicUsize,
    entries: Mutex<Entries>,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            slower_than: AtomicI64::new(10_000),
            max_len: AtomicUsize::new(128),
            entries: Mutex::new(Entries::default()),
        }
    }
}

impl SlowLog {
    /// Whether a command that took `micros` goes to the log.
    pub(crate) fn wants(&self, micros: u64) -> bool {
        let t = self.slower_than.load(Ordering::Relaxed);
        t >= 0 && micros >= t.unsigned_abs()
    }

    /// Logs a command (Redis' `slowlogPushEntryIfNeeded`): at most 32
    /// arguments, the last standing for the rest, each at most 128 bytes.
    pub(crate) fn push(&self, args: &[Bytes], micros: u64, peer: String, name: Bytes) {
        let argc = args.len().min(MAX_ARGC);
        let mut kept = Vec::with_capacity(argc);
        for (j, a) in args.iter().take(argc).enumerate() {
            if argc != args.len() && j == argc - 1 {
                kept.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - argc + 1
                )));
            } else if a.len() > MAX_STRING {
                let mut s = a.slice(..MAX_STRING).to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                kept.push(Bytes::from(s));
            } else {
                // A copy: the argument is a slice of the connection's
                // read buffer, which it would pin.
                kept.push(Bytes::copy_from_slice(a));
            }
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let max = self.max_len.load(Ordering::Relaxed);
        let mut e = self.entries.lock();
        let id = e.next_id;
        e.next_id += 1;
        e.list.push_front(SlowEntry {
            id,
            time,
            micros,
            args: kept,
            peer,
            name,
        });
        e.list.truncate(max);
    }

    /// The newest `count` entries (all for `None`).
    pub(crate) fn get(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let e = self.entries.lock();
        let n = count.unwrap_or(usize::MAX);
        e.list.iter().take(n).cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.lock().list.len()
    }

    pub(crate) fn reset(&self) {
        self.entries.lock().list.clear();
    }
}

/// One latency sample: unix seconds and milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    pub(crate) time: i64,
    pub(crate) latency: u64,
}

/// An event's time series (Redis' `latencyTimeSeries`).
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub(crate) idx: usize,
    pub(crate) max: u64,
    pub(crate) samples: [Sample; TS_LEN],
}

impl Series {
    /// The samples, oldest first.
    pub(crate) fn history(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..TS_LEN)
            .filter_map(move |j| self.samples.get((self.idx + j) % TS_LEN))
            .filter(|s| s.time != 0)
            .copied()
    }

    /// The latest sample.
    pub(crate) fn last(&self) -> Sample {
        self.samples
            .get((self.idx + TS_LEN - 1) % TS_LEN)
            .copied()
            .unwrap_or_default()
    }
}

/// The latency monitor.
pub(crate) struct LatencyMonitor {
    /// `latency-monitor-threshold` in ms; 0 disables it.
    pub(crate) threshold: AtomicI64,
    events: Mutex<BTreeMap<String, Series>>,
}

impl Default for LatencyMonitor {
    fn default() -> Self {
        LatencyMonitor {
            threshold: AtomicI64::new(0),
            events: Mutex::new(BTreeMap::new()),
        }
    }
}

impl LatencyMonitor {
    /// Redis' `latencyAddSampleIfNeeded`: records `ms` for `event` when
    /// the monitor is on and `ms` reaches its threshold.
    pub(crate) fn add_if_needed(&self, event: &str, ms: u64) {
        let t = self.threshold.load(Ordering::Relaxed);
        if t > 0 && ms >= t.unsigned_abs() {
            self.add(event, ms);
        }
    }

    /// Redis' `latencyAddSample`: one sample per second, the highest.
    pub(crate) fn add(&self, event: &str, ms: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut events = self.events.lock();
        let ts = events.entry(event.to_owned()).or_insert_with(|| Series {
            idx: 0,
            max: 0,
            samples: [Sample::default(); TS_LEN],
        });
        ts.max = ts.max.max(ms);
        let prev = (ts.idx + TS_LEN - 1) % TS_LEN;
        if let Some(p) = ts.samples.get_mut(prev)
            && p.time == now
        {
            p.latency = p.latency.max(ms);
            return;
        }
        if let Some(s) = ts.samples.get_mut(ts.idx) {
            *s = Sample {
                time: now,
                latency: ms,
            };
        }
        ts.idx = (ts.idx + 1) % TS_LEN;
    }

    /// Every event's series, by name.
    pub(crate) fn events(&self) -> Vec<(String, Series)> {
        self.events
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Forgets the named events (all for an empty list); the number of
    /// events forgotten.
    pub(crate) fn reset(&self, names: &[String]) -> usize {
        let mut events = self.events.lock();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        names
            .iter()
            .filter(|n| events.remove(n.as_str()).is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_truncated_as_redis_does() {
        let log = SlowLog::default();
        let args: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        log.push(&args, 5, "p".into(), Bytes::new());
        let long = vec![Bytes::from("set"), Bytes::from(vec![b'x'; 200])];
        log.push(&long, 7, "p".into(), Bytes::new());
        let got = log.get(None);
        assert_eq!(got.len(), 2);
        let newest = &got[0];
        assert_eq!(newest.id, 1);
        assert_eq!(newest.args[1].len(), 128 + "... (72 more bytes)".len());
        assert!(newest.args[1].ends_with(b"... (72 more bytes)"));
        let oldest = &got[1];
        assert_eq!(oldest.args.len(), 32);
        assert_eq!(&oldest.args[31][..], b"... (9 more arguments)");
        log.max_len.store(1, Ordering::Relaxed);
        log.push(&long, 7, "p".into(), Bytes::new());
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn one_latency_sample_per_second_keeps_the_highest() {
        let m = LatencyMonitor::default();
        m.add_if_needed("command", 100);
        assert!(m.events().is_empty(), "monitor off by default");
        m.threshold.store(10, Ordering::Relaxed);
        m.add_if_needed("command", 5);
        assert!(m.events().is_empty());
        m.add_if_needed("command", 20);
        m.add_if_needed("command", 50);
        m.add_if_needed("command", 30);
        let ev = m.events();
        let (name, s) = &ev[0];
        assert_eq!(name, "command");
        let h: Vec<u64> = s.history().map(|x| x.latency).collect();
        // The three may straddle a second boundary: the highest per second.
        assert!(h == [50] || h == [20, 50] || h == [50, 30], "{h:?}");
        assert_eq!(s.max, 50);
        assert_eq!(m.reset(&["nosuch".into()]), 0);
        assert_eq!(m.reset(&[]), 1);
    }
}
