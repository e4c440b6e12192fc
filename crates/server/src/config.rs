//! Configuration: command-line flags, `CAIRN_*` environment variables, a TOML
//! file and defaults, merged with the precedence flag > env > file > default.
//!
//! clap reads a flag or, when the flag is absent, its environment variable; the
//! TOML file only fills what neither gave. Every value is validated here, once,
//! so the rest of the server can trust its [`Config`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// What to do when the newest snapshot generation fails verification at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnCorrupt {
    /// Quarantine the bad generation and load the previous good one.
    #[default]
    Fallback,
    /// Quarantine the bad generation and refuse to start.
    Refuse,
    /// Quarantine every bad generation and start with an empty keyspace.
    Empty,
}

impl std::str::FromStr for OnCorrupt {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fallback" => Ok(OnCorrupt::Fallback),
            "refuse" => Ok(OnCorrupt::Refuse),
            "empty" => Ok(OnCorrupt::Empty),
            _ => Err(ConfigError::Invalid {
                option: "on_corrupt",
                value: s.to_owned(),
                expected: "one of fallback, refuse, empty",
            }),
        }
    }
}

/// A Redis save point: snapshot when at least `changes` writes happened in
/// the last `seconds` seconds (`save 3600 1 300 100 60 10000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavePoint {
    /// The window, in seconds.
    pub seconds: u64,
    /// The number of changes that triggers a snapshot within the window.
    pub changes: u64,
}

/// Parses Redis' `save` syntax: pairs of `seconds changes`; an empty string
/// disables save points.
///
/// # Errors
/// An odd number of fields or a field that is not a non-negative integer.
pub fn parse_save_points(s: &str) -> Result<Vec<SavePoint>, ConfigError> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    let invalid = || ConfigError::Invalid {
        option: "save",
        value: s.to_owned(),
        expected: "pairs of <seconds> <changes>, or \"\" to disable",
    };
    if !fields.len().is_multiple_of(2) {
        return Err(invalid());
    }
    fields
        .chunks(2)
        .map(|pair| match pair {
            [secs, changes] => Ok(SavePoint {
                seconds: secs.parse().map_err(|_| invalid())?,
                changes: changes.parse().map_err(|_| invalid())?,
            }),
            _ => Err(invalid()),
        })
        .collect()
}

/// Formats save points back into Redis' syntax (for `CONFIG GET save`).
pub fn format_save_points(points: &[SavePoint]) -> String {
    points
        .iter()
        .map(|p| format!("{} {}", p.seconds, p.changes))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An option has a value outside what it accepts.
    #[error("invalid value {value:?} for {option}: expected {expected}")]
    Invalid {
        /// The option's name as in the TOML file.
        option: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML file is not valid for cairn.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml or serde said, with the line.
        message: String,
    },
}

/// The whole, validated configuration of a cairn server.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1`.
    pub bind: IpAddr,
    /// TCP port; 0 picks a free one. Default 6379.
    pub port: u16,
    /// Password clients must give with `AUTH`; none by default.
    pub requirepass: Option<String>,
    /// Most simultaneous clients (`maxclients`). Default 10000.
    pub max_clients: usize,
    /// Number of databases. Default 16.
    pub databases: usize,
    /// Whether snapshots are written and restored at all. Default true.
    pub persistence: bool,
    /// Where snapshot generations live. Default `./cairn-data`.
    pub data_dir: PathBuf,
    /// Periodic snapshot interval, taken only when something changed. Default 60 s.
    pub snapshot_interval: Duration,
    /// Redis-style save points, in addition to the interval. Default none.
    pub save: Vec<SavePoint>,
    /// Take a snapshot on graceful shutdown. Default true.
    pub snapshot_on_shutdown: bool,
    /// Load the newest good snapshot at start. Default true.
    pub restore_on_startup: bool,
    /// What to do when the newest snapshot is damaged. Default fallback.
    pub on_corrupt: OnCorrupt,
    /// How many committed generations to keep. Default 2.
    pub retain_generations: usize,
    /// Refuse writes with `-MISCONF` while the last snapshot failed. Default true.
    pub stop_writes_on_snapshot_error: bool,
    /// Log a warning when a snapshot takes longer than this. Default 10 s.
    pub slow_snapshot_threshold: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 6379,
            requirepass: None,
            max_clients: 10_000,
            databases: 16,
            persistence: true,
            data_dir: PathBuf::from("./cairn-data"),
            snapshot_interval: Duration::from_secs(60),
            save: Vec::new(),
            snapshot_on_shutdown: true,
            restore_on_startup: true,
            on_corrupt: OnCorrupt::Fallback,
            retain_generations: 2,
            stop_writes_on_snapshot_error: true,
            slow_snapshot_threshold: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Checks relations between options that each parse fine alone.
    ///
    /// # Errors
    /// The first option found invalid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_clients == 0 {
            return Err(ConfigError::Invalid {
                option: "maxclients",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if self.databases == 0 || self.databases > 1024 {
            return Err(ConfigError::Invalid {
                option: "databases",
                value: self.databases.to_string(),
                expected: "1 to 1024",
            });
        }
        if self.retain_generations == 0 {
            return Err(ConfigError::Invalid {
                option: "retain_generations",
                value: "0".into(),
                expected: "at least 1 (the last good generation is always kept)",
            });
        }
        if self.persistence && self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                option: "data_dir",
                value: String::new(),
                expected: "a directory path",
            });
        }
        Ok(())
    }
}

/// The `cairn-server` command line. Every flag also reads `CAIRN_<NAME>`.
#[derive(Debug, Default, Parser)]
#[command(
    name = "cairn-server",
    version,
    about = "A Redis-compatible in-memory server whose data survives restarts"
)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, env = "CAIRN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "CAIRN_BIND")]
    pub bind: Option<IpAddr>,
    /// TCP port; 0 picks a free port [default: 6379].
    #[arg(long, env = "CAIRN_PORT")]
    pub port: Option<u16>,
    /// Password required by AUTH.
    #[arg(long, env = "CAIRN_REQUIREPASS")]
    pub requirepass: Option<String>,
    /// Maximum number of simultaneous clients [default: 10000].
    #[arg(long, env = "CAIRN_MAXCLIENTS")]
    pub maxclients: Option<usize>,
    /// Number of databases [default: 16].
    #[arg(long, env = "CAIRN_DATABASES")]
    pub databases: Option<usize>,
    /// Write and restore snapshots [default: true].
    #[arg(long, env = "CAIRN_PERSISTENCE", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub persistence: Option<bool>,
    /// Directory of snapshot generations [default: ./cairn-data].
    #[arg(long, env = "CAIRN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Periodic snapshot interval, e.g. 60s or 5m; taken only when something changed [default: 60s].
    #[arg(long, env = "CAIRN_SNAPSHOT_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub snapshot_interval: Option<Duration>,
    /// Redis save points, e.g. "3600 1 300 100"; "" disables [default: ""].
    #[arg(long, env = "CAIRN_SAVE", value_name = "POINTS")]
    pub save: Option<String>,
    /// Snapshot on graceful shutdown [default: true].
    #[arg(long, env = "CAIRN_SNAPSHOT_ON_SHUTDOWN", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub snapshot_on_shutdown: Option<bool>,
    /// Restore the newest good snapshot at start [default: true].
    #[arg(long, env = "CAIRN_RESTORE_ON_STARTUP", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub restore_on_startup: Option<bool>,
    /// What to do with a damaged newest snapshot: fallback, refuse or empty [default: fallback].
    #[arg(long, env = "CAIRN_ON_CORRUPT", value_name = "POLICY")]
    pub on_corrupt: Option<OnCorrupt>,
    /// Committed generations to keep [default: 2].
    #[arg(long, env = "CAIRN_RETAIN_GENERATIONS", value_name = "N")]
    pub retain_generations: Option<usize>,
    /// Refuse writes with MISCONF while the last snapshot failed [default: true].
    #[arg(long, env = "CAIRN_STOP_WRITES_ON_SNAPSHOT_ERROR", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub stop_writes_on_snapshot_error: Option<bool>,
    /// Warn when a snapshot takes longer than this [default: 10s].
    #[arg(long, env = "CAIRN_SLOW_SNAPSHOT_THRESHOLD", value_name = "DURATION", value_parser = parse_duration)]
    pub slow_snapshot_threshold: Option<Duration>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 60s, 5m, 1h30m)"))
}

/// The TOML file: `[server]` and `[persistence]` tables with the flags' names
/// (dashes or underscores).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    persistence: PersistenceSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    bind: Option<IpAddr>,
    port: Option<u16>,
    requirepass: Option<String>,
    #[serde(alias = "max_clients")]
    maxclients: Option<usize>,
    databases: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct PersistenceSection {
    #[serde(alias = "enabled")]
    persistence: Option<bool>,
    data_dir: Option<PathBuf>,
    snapshot_interval: Option<String>,
    save: Option<String>,
    snapshot_on_shutdown: Option<bool>,
    restore_on_startup: Option<bool>,
    on_corrupt: Option<OnCorrupt>,
    retain_generations: Option<usize>,
    stop_writes_on_snapshot_error: Option<bool>,
    slow_snapshot_threshold: Option<String>,
}

impl Args {
    /// Merges flags (and their environment variables, which clap has already
    /// read), the TOML file named by `--config`, and the defaults.
    ///
    /// # Errors
    /// An unreadable or invalid file, or an invalid value anywhere.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let (s, p) = (file.server, file.persistence);
        let file_duration =
            |v: Option<String>, option: &'static str| -> Result<Option<Duration>, ConfigError> {
                v.map(|text| {
                    humantime::parse_duration(&text).map_err(|_| ConfigError::Invalid {
                        option,
                        value: text.clone(),
                        expected: "a duration such as 60s, 5m or 1h",
                    })
                })
                .transpose()
            };
        let save = match self.save.or(p.save) {
            Some(text) => parse_save_points(&text)?,
            None => d.save,
        };
        let config = Config {
            bind: self.bind.or(s.bind).unwrap_or(d.bind),
            port: self.port.or(s.port).unwrap_or(d.port),
            requirepass: self.requirepass.or(s.requirepass).filter(|p| !p.is_empty()),
            max_clients: self.maxclients.or(s.maxclients).unwrap_or(d.max_clients),
            databases: self.databases.or(s.databases).unwrap_or(d.databases),
            persistence: self.persistence.or(p.persistence).unwrap_or(d.persistence),
            data_dir: self.data_dir.or(p.data_dir).unwrap_or(d.data_dir),
            snapshot_interval: self
                .snapshot_interval
                .or(file_duration(p.snapshot_interval, "snapshot_interval")?)
                .unwrap_or(d.snapshot_interval),
            save,
            snapshot_on_shutdown: self
                .snapshot_on_shutdown
                .or(p.snapshot_on_shutdown)
                .unwrap_or(d.snapshot_on_shutdown),
            restore_on_startup: self
                .restore_on_startup
                .or(p.restore_on_startup)
                .unwrap_or(d.restore_on_startup),
            on_corrupt: self.on_corrupt.or(p.on_corrupt).unwrap_or(d.on_corrupt),
            retain_generations: self
                .retain_generations
                .or(p.retain_generations)
                .unwrap_or(d.retain_generations),
            stop_writes_on_snapshot_error: self
                .stop_writes_on_snapshot_error
                .or(p.stop_writes_on_snapshot_error)
                .unwrap_or(d.stop_writes_on_snapshot_error),
            slow_snapshot_threshold: self
                .slow_snapshot_threshold
                .or(file_duration(
                    p.slow_snapshot_threshold,
                    "slow_snapshot_threshold",
                )?)
                .unwrap_or(d.slow_snapshot_threshold),
        };
        config.validate()?;
        Ok(config)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let mut all = vec!["cairn-server"];
        all.extend_from_slice(list);
        Args::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Args::default().into_config().unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.port, 6379);
        assert_eq!(c.data_dir, PathBuf::from("./cairn-data"));
        assert!(c.persistence && c.snapshot_on_shutdown && c.restore_on_startup);
        assert_eq!(c.snapshot_interval, Duration::from_secs(60));
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cairn.toml");
        std::fs::write(
            &file,
            "[server]\nport = 7000\nbind = \"0.0.0.0\"\n[persistence]\ndata_dir = \"/from/file\"\nsnapshot_interval = \"5m\"\nsave = \"900 1\"\non_corrupt = \"refuse\"\n",
        )
        .unwrap();
        let c = args(&["--config", file.to_str().unwrap(), "--port", "7001"])
            .into_config()
            .unwrap();
        assert_eq!(c.port, 7001, "flag wins over file");
        assert_eq!(c.bind, IpAddr::from([0, 0, 0, 0]), "file wins over default");
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.snapshot_interval, Duration::from_secs(300));
        assert_eq!(
            c.save,
            vec![SavePoint {
                seconds: 900,
                changes: 1
            }]
        );
        assert_eq!(c.on_corrupt, OnCorrupt::Refuse);
    }

    #[test]
    fn bad_values_are_refused_with_the_option_named() {
        assert!(Args::try_parse_from(["cairn-server", "--persistence", "maybe"]).is_err());
        assert!(Args::try_parse_from(["cairn-server", "--snapshot-interval", "soon"]).is_err());
        let err = args(&["--save", "60"]).into_config().unwrap_err();
        assert!(err.to_string().contains("save"), "{err}");
        let err = args(&["--retain-generations", "0"])
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("retain_generations"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[persistence]\ndata_dri = \"x\"\n").unwrap();
        let err = args(&["--config", file.to_str().unwrap()])
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("data_dri"), "{err}");
    }

    #[test]
    fn save_points_round_trip_and_empty_disables() {
        let points = parse_save_points("3600 1 300 100 60 10000").unwrap();
        assert_eq!(points.len(), 3);
        assert_eq!(format_save_points(&points), "3600 1 300 100 60 10000");
        assert!(parse_save_points("").unwrap().is_empty());
        assert!(parse_save_points("1 x").is_err());
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        let c = args(&["--persistence", "false", "--snapshot-on-shutdown", "no"])
            .into_config()
            .unwrap();
        assert!(!c.persistence);
        assert!(!c.snapshot_on_shutdown);
    }
}
