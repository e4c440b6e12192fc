//! What the snapshot pipeline is told: [`PersistConfig`], Redis save points
//! ([`SavePoint`], with the one parser of their syntax) and what to do with
//! a damaged snapshot ([`OnCorrupt`]).

use std::path::PathBuf;
use std::time::Duration;

/// What to do when the newest snapshot generation fails verification at
/// start (see docs/operations.md, "Corruption").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Quarantine the damaged generation and load the newest good one;
    /// refuse to start when none is good.
    #[default]
    Fallback,
    /// Refuse to start and leave the data directory exactly as it is, at
    /// every start, until an operator starts once with `fallback` (or
    /// `empty`) to accept the older data.
    Refuse,
    /// As `fallback`, but start empty when no generation is good.
    Empty,
}

impl OnCorrupt {
    /// The name used by the flag, the TOML file and the docs.
    pub fn name(self) -> &'static str {
        match self {
            OnCorrupt::Fallback => "fallback",
            OnCorrupt::Refuse => "refuse",
            OnCorrupt::Empty => "empty",
        }
    }
}

/// A value that is not one of `fallback`, `refuse`, `empty`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid on_corrupt {0:?}: expected one of fallback, refuse, empty")]
pub struct ParseOnCorruptError(pub String);

impl std::str::FromStr for OnCorrupt {
    type Err = ParseOnCorruptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fallback" => Ok(OnCorrupt::Fallback),
            "refuse" => Ok(OnCorrupt::Refuse),
            "empty" => Ok(OnCorrupt::Empty),
            _ => Err(ParseOnCorruptError(s.to_owned())),
        }
    }
}

/// A Redis save point: snapshot when at least `changes` writes happened and
/// more than `seconds` seconds passed since the last successful snapshot
/// (`save 3600 1 300 100 60 10000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavePoint {
    /// The window, in seconds.
    pub seconds: u64,
    /// The number of changes that triggers a snapshot within the window.
    pub changes: u64,
}

/// Save points that Redis' syntax does not accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid save parameters {0:?}: expected pairs of <seconds> <changes> separated by single spaces (seconds >= 1, changes >= 0), or \"\" to disable"
)]
pub struct ParseSaveError(pub String);

/// Parses Redis' `save` syntax exactly as Redis 7.0's `CONFIG SET save`
/// does, for the flag, the TOML file and `CONFIG SET` alike: `""` disables;
/// otherwise fields separated by single spaces, each read like C's
/// `strtoll` (so an empty field reads as 0, a leading `+` or whitespace is
/// accepted, overflow saturates), seconds >= 1, changes >= 0.
///
/// # Errors
/// [`ParseSaveError`] for anything Redis would refuse.
pub fn parse_save(value: &[u8]) -> Result<Vec<SavePoint>, ParseSaveError> {
    let invalid = || ParseSaveError(String::from_utf8_lossy(value).into_owned());
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let fields: Vec<&[u8]> = value.split(|&b| b == b' ').collect();
    if !fields.len().is_multiple_of(2) {
        return Err(invalid());
    }
    fields
        .chunks_exact(2)
        .map(|pair| match pair {
            [secs, changes] => {
                let seconds = strtoll_all(secs).filter(|&v| v >= 1).ok_or_else(invalid)?;
                let changes = strtoll_all(changes)
                    .filter(|&v| v >= 0)
                    .ok_or_else(invalid)?;
                Ok(SavePoint {
                    seconds: seconds.unsigned_abs(),
                    changes: changes.unsigned_abs(),
                })
            }
            _ => Err(invalid()),
        })
        .collect()
}

/// Formats save points back into Redis' syntax (`CONFIG GET save`).
pub fn format_save(points: &[SavePoint]) -> String {
    points
        .iter()
        .map(|p| format!("{} {}", p.seconds, p.changes))
        .collect::<Vec<_>>()
        .join(" ")
}

/// C's `strtoll(s, &end, 10)` that must consume all of `s`.
fn strtoll_all(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let rest = s.trim_ascii_start();
    let (neg, digits) = match rest.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        v = v.saturating_mul(10);
        v = if neg {
            v.saturating_sub(d)
        } else {
            v.saturating_add(d)
        };
    }
    Some(v)
}

/// The snapshot pipeline's configuration. The server builds it from its
/// own flags; every field has the server's default.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PersistConfig {
    /// Whether snapshots are written and restored at all. Default true.
    pub enabled: bool,
    /// Where snapshot generations live. Default `./cairn-data`.
    pub data_dir: PathBuf,
    /// Periodic snapshot interval, taken only when something changed;
    /// zero disables it. Default 60 s.
    pub snapshot_interval: Duration,
    /// Redis save points, in addition to the interval. Default none.
    pub save: Vec<SavePoint>,
    /// What to do when the newest snapshot is damaged. Default fallback.
    pub on_corrupt: OnCorrupt,
    /// Committed generations to keep (at least 1). Default 2.
    pub retain_generations: usize,
    /// Quarantined entries to keep (at least 1); older ones are deleted.
    /// Default [`cairn_store::DEFAULT_QUARANTINE_RETAIN`].
    pub quarantine_retain: usize,
    /// Refuse writes with `-MISCONF` while the last snapshot failed.
    /// Default true.
    pub stop_writes_on_snapshot_error: bool,
    /// Log a warning when a snapshot takes longer than this. Default 10 s.
    pub slow_snapshot_threshold: Duration,
}

impl PersistConfig {
    /// The defaults, with snapshots in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> PersistConfig {
        PersistConfig {
            data_dir: data_dir.into(),
            ..PersistConfig::default()
        }
    }
}

impl Default for PersistConfig {
    fn default() -> Self {
        PersistConfig {
            enabled: true,
            data_dir: PathBuf::from("./cairn-data"),
            snapshot_interval: Duration::from_secs(60),
            save: Vec::new(),
            on_corrupt: OnCorrupt::Fallback,
            retain_generations: 2,
            quarantine_retain: cairn_store::DEFAULT_QUARANTINE_RETAIN,
            stop_writes_on_snapshot_error: true,
            slow_snapshot_threshold: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn points(v: &str) -> Option<Vec<(u64, u64)>> {
        parse_save(v.as_bytes())
            .ok()
            .map(|p| p.iter().map(|p| (p.seconds, p.changes)).collect())
    }

    #[test]
    fn save_syntax_matches_redis_7_0() {
        // Each case checked against redis-server 7.0.15 (CONFIG SET, GET).
        assert_eq!(points(""), Some(vec![]));
        assert_eq!(points("3600 1 300 100"), Some(vec![(3600, 1), (300, 100)]));
        assert_eq!(points("+5 07"), Some(vec![(5, 7)]));
        assert_eq!(points("\t5 7"), Some(vec![(5, 7)]));
        assert_eq!(points("1 1 2 "), Some(vec![(1, 1), (2, 0)]));
        assert_eq!(points("5 0"), Some(vec![(5, 0)]));
        assert_eq!(
            points("99999999999999999999 1"),
            Some(vec![(i64::MAX as u64, 1)])
        );
        for bad in [
            "0 3", "5", "5  7", "-1 5", "5 -1", "x 1", " ", "5 7 ", "5 +", "5\t7",
        ] {
            assert_eq!(points(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn save_points_round_trip() {
        let p = parse_save(b"3600 1 300 100 60 10000").unwrap();
        assert_eq!(format_save(&p), "3600 1 300 100 60 10000");
        assert!(parse_save(b"").unwrap().is_empty());
        let e = parse_save(b"1 x").unwrap_err();
        assert!(e.to_string().contains("1 x"), "{e}");
    }

    #[test]
    fn on_corrupt_parses_its_three_names() {
        for p in [OnCorrupt::Fallback, OnCorrupt::Refuse, OnCorrupt::Empty] {
            assert_eq!(p.name().parse::<OnCorrupt>(), Ok(p));
        }
        assert_eq!("REFUSE".parse::<OnCorrupt>(), Ok(OnCorrupt::Refuse));
        assert!("maybe".parse::<OnCorrupt>().is_err());
    }
}
