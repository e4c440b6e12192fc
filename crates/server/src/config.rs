//! Configuration: command-line flags, `CAIRN_*` environment variables, a TOML
//! file and defaults, merged with the precedence flag > env > file > default.
//!
//! clap reads a flag or, when the flag is absent, its environment variable; the
//! TOML file only fills what neither gave. Every value is validated here, once,
//! so the rest of the server can trust its [`Config`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_persist::PersistConfig;
use clap::Parser;
use serde::Deserialize;

pub use cairn_persist::{OnCorrupt, SavePoint};

pub use crate::shutdown::SignalAction;

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
    /// Redis' `protected-mode`: while no password is set, serve only
    /// loopback peers. Default on.
    pub protected_mode: bool,
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
    /// How many quarantined (damaged) generations to keep; older ones are
    /// deleted. Default 4.
    pub quarantine_retain: usize,
    /// Refuse writes with `-MISCONF` while the last snapshot failed. Default true.
    pub stop_writes_on_snapshot_error: bool,
    /// Log a warning when a snapshot takes longer than this. Default 10 s.
    pub slow_snapshot_threshold: Duration,
    /// What SIGTERM does (`shutdown-on-sigterm`). Default `default`.
    pub shutdown_on_sigterm: SignalAction,
    /// What SIGINT does (`shutdown-on-sigint`). Default `default`.
    pub shutdown_on_sigint: SignalAction,
    /// Redis' `unixsocket`: also listen on a Unix socket at this path
    /// (a stale file there is replaced; removed at shutdown). Default none.
    pub unixsocket: Option<PathBuf>,
    /// Redis' `unixsocketperm`: the socket file's mode (octal, e.g. `0o700`);
    /// 0 leaves it as the umask makes it. Default 0.
    pub unixsocketperm: u32,
    /// Redis' `enable-debug-command`: who may run DEBUG. Default `no`.
    pub enable_debug_command: ProtectedAction,
    /// Redis' `enable-protected-configs`: who may `CONFIG SET` `dir` and
    /// `dbfilename`. Default `no`.
    pub enable_protected_configs: ProtectedAction,
}

/// Who may use a protected action (Redis 7.0's `enable-debug-command`,
/// `enable-protected-configs`, `enable-module-command`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProtectedAction {
    /// Nobody (over a connection).
    #[default]
    No,
    /// Every client.
    Yes,
    /// Clients on loopback (`127.0.0.1`, `::1`) or the Unix socket.
    Local,
}

impl ProtectedAction {
    /// The CONFIG GET form.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectedAction::No => "no",
            ProtectedAction::Yes => "yes",
            ProtectedAction::Local => "local",
        }
    }
}

impl std::str::FromStr for ProtectedAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "no" | "false" => Ok(ProtectedAction::No),
            "yes" | "true" => Ok(ProtectedAction::Yes),
            "local" => Ok(ProtectedAction::Local),
            _ => Err(format!("{s:?}: expected yes, no or local")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 6379,
            requirepass: None,
            protected_mode: true,
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
            quarantine_retain: cairn_persist::PersistConfig::default().quarantine_retain,
            stop_writes_on_snapshot_error: true,
            slow_snapshot_threshold: Duration::from_secs(10),
            shutdown_on_sigterm: SignalAction::default(),
            shutdown_on_sigint: SignalAction::default(),
            unixsocket: None,
            unixsocketperm: 0,
            enable_debug_command: ProtectedAction::No,
            enable_protected_configs: ProtectedAction::No,
        }
    }
}

impl Config {
    /// The snapshot pipeline's part of the configuration.
    pub fn persist_config(&self) -> PersistConfig {
        let mut p = PersistConfig::default();
        p.enabled = self.persistence;
        p.data_dir = self.data_dir.clone();
        p.snapshot_interval = self.snapshot_interval;
        p.save = self.save.clone();
        p.on_corrupt = self.on_corrupt;
        p.retain_generations = self.retain_generations;
        p.quarantine_retain = self.quarantine_retain;
        p.stop_writes_on_snapshot_error = self.stop_writes_on_snapshot_error;
        p.slow_snapshot_threshold = self.slow_snapshot_threshold;
        p
    }

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
        if self.quarantine_retain == 0 {
            return Err(ConfigError::Invalid {
                option: "quarantine_retain",
                value: "0".into(),
                expected: "at least 1 (the newest damaged generation is kept for inspection)",
            });
        }
        if self.unixsocketperm > 0o7777 {
            return Err(ConfigError::Invalid {
                option: "unixsocketperm",
                value: format!("{:o}", self.unixsocketperm),
                expected: "an octal mode of at most 7777",
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
    /// Without a password, refuse clients that are not on loopback [default: true].
    #[arg(long, env = "CAIRN_PROTECTED_MODE", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub protected_mode: Option<bool>,
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
    /// Damaged generations kept in quarantine/ (oldest deleted beyond it) [default: 4].
    #[arg(long, env = "CAIRN_QUARANTINE_RETAIN", value_name = "N")]
    pub quarantine_retain: Option<usize>,
    /// Refuse writes with MISCONF while the last snapshot failed [default: true].
    #[arg(long, env = "CAIRN_STOP_WRITES_ON_SNAPSHOT_ERROR", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub stop_writes_on_snapshot_error: Option<bool>,
    /// Warn when a snapshot takes longer than this [default: 10s].
    #[arg(long, env = "CAIRN_SLOW_SNAPSHOT_THRESHOLD", value_name = "DURATION", value_parser = parse_duration)]
    pub slow_snapshot_threshold: Option<Duration>,
    /// What SIGTERM does: default, save, nosave, now, force, or several, e.g. "nosave force" [default: default].
    #[arg(long, env = "CAIRN_SHUTDOWN_ON_SIGTERM", value_name = "ACTION")]
    pub shutdown_on_sigterm: Option<SignalAction>,
    /// What SIGINT does, as --shutdown-on-sigterm [default: default].
    #[arg(long, env = "CAIRN_SHUTDOWN_ON_SIGINT", value_name = "ACTION")]
    pub shutdown_on_sigint: Option<SignalAction>,
    /// Also listen on a Unix socket at this path (Unix only) [default: none].
    #[arg(long, env = "CAIRN_UNIXSOCKET", value_name = "PATH")]
    pub unixsocket: Option<PathBuf>,
    /// Mode of the Unix socket file, in octal, e.g. 700 [default: umask's].
    #[arg(long, env = "CAIRN_UNIXSOCKETPERM", value_name = "OCTAL", value_parser = parse_octal)]
    pub unixsocketperm: Option<u32>,
    /// Who may run DEBUG: no, yes or local (loopback and Unix socket) [default: no].
    #[arg(long, env = "CAIRN_ENABLE_DEBUG_COMMAND", value_name = "WHO")]
    pub enable_debug_command: Option<ProtectedAction>,
    /// Who may CONFIG SET dir and dbfilename: no, yes or local [default: no].
    #[arg(long, env = "CAIRN_ENABLE_PROTECTED_CONFIGS", value_name = "WHO")]
    pub enable_protected_configs: Option<ProtectedAction>,
}

/// Redis reads `unixsocketperm` with `strtol(.., 8)`.
fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("{s:?} is not an octal mode such as 700"))
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
    protected_mode: Option<bool>,
    #[serde(alias = "max_clients")]
    maxclients: Option<usize>,
    databases: Option<usize>,
    shutdown_on_sigterm: Option<String>,
    shutdown_on_sigint: Option<String>,
    unixsocket: Option<PathBuf>,
    /// Octal, as a string ("700") so that it reads as Redis writes it.
    unixsocketperm: Option<String>,
    enable_debug_command: Option<String>,
    enable_protected_configs: Option<String>,
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
    on_corrupt: Option<String>,
    retain_generations: Option<usize>,
    quarantine_retain: Option<usize>,
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
            Some(text) => cairn_persist::parse_save(text.as_bytes()).map_err(|_| {
                ConfigError::Invalid {
                    option: "save",
                    value: text.clone(),
                    expected: "pairs of <seconds> <changes> separated by single spaces, or \"\" to disable",
                }
            })?,
            None => d.save,
        };
        let file_on_corrupt = p
            .on_corrupt
            .map(|text| {
                text.parse::<OnCorrupt>().map_err(|_| ConfigError::Invalid {
                    option: "on_corrupt",
                    value: text.clone(),
                    expected: "one of fallback, refuse, empty",
                })
            })
            .transpose()?;
        let file_signal = |v: Option<String>, option: &'static str| {
            v.map(|text| {
                text.parse::<SignalAction>()
                    .map_err(|_| ConfigError::Invalid {
                        option,
                        value: text.clone(),
                        expected: "default, save, nosave, now or force (several separated by spaces)",
                    })
            })
            .transpose()
        };
        let file_sigterm = file_signal(s.shutdown_on_sigterm, "shutdown_on_sigterm")?;
        let file_sigint = file_signal(s.shutdown_on_sigint, "shutdown_on_sigint")?;
        let file_perm = s
            .unixsocketperm
            .map(|text| {
                parse_octal(&text).map_err(|_| ConfigError::Invalid {
                    option: "unixsocketperm",
                    value: text.clone(),
                    expected: "an octal mode such as 700",
                })
            })
            .transpose()?;
        let file_protected = |v: Option<String>, option: &'static str| {
            v.map(|text| {
                text.parse::<ProtectedAction>()
                    .map_err(|_| ConfigError::Invalid {
                        option,
                        value: text.clone(),
                        expected: "yes, no or local",
                    })
            })
            .transpose()
        };
        let file_debug = file_protected(s.enable_debug_command, "enable_debug_command")?;
        let file_configs = file_protected(s.enable_protected_configs, "enable_protected_configs")?;
        let config = Config {
            bind: self.bind.or(s.bind).unwrap_or(d.bind),
            port: self.port.or(s.port).unwrap_or(d.port),
            requirepass: self.requirepass.or(s.requirepass).filter(|p| !p.is_empty()),
            protected_mode: self
                .protected_mode
                .or(s.protected_mode)
                .unwrap_or(d.protected_mode),
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
            on_corrupt: self.on_corrupt.or(file_on_corrupt).unwrap_or(d.on_corrupt),
            retain_generations: self
                .retain_generations
                .or(p.retain_generations)
                .unwrap_or(d.retain_generations),
            quarantine_retain: self
                .quarantine_retain
                .or(p.quarantine_retain)
                .unwrap_or(d.quarantine_retain),
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
            shutdown_on_sigterm: self
                .shutdown_on_sigterm
                .or(file_sigterm)
                .unwrap_or(d.shutdown_on_sigterm),
            shutdown_on_sigint: self
                .shutdown_on_sigint
                .or(file_sigint)
                .unwrap_or(d.shutdown_on_sigint),
            unixsocket: self
                .unixsocket
                .or(s.unixsocket)
                .filter(|p| !p.as_os_str().is_empty()),
            unixsocketperm: self
                .unixsocketperm
                .or(file_perm)
                .unwrap_or(d.unixsocketperm),
            enable_debug_command: self
                .enable_debug_command
                .or(file_debug)
                .unwrap_or(d.enable_debug_command),
            enable_protected_configs: self
                .enable_protected_configs
                .or(file_configs)
                .unwrap_or(d.enable_protected_configs),
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
        message: redis_parameter_hint(e.to_string()),
    })
}

/// An unknown key that is a Redis parameter gets what cairn does with it:
/// the start stops there rather than ignoring a setting the operator relies
/// on (a Redis parameter cairn honours has a flag of its own; see
/// `cairn-server --help` and docs/compatibility.md).
fn redis_parameter_hint(message: String) -> String {
    let Some(key) = message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
    else {
        return message;
    };
    let Some(p) = cairn_keyspace::config::lookup(&key.replace('_', "-")) else {
        return message;
    };
    let what = match p.status {
        cairn_keyspace::config::Status::Unsupported => "cairn does not support it",
        _ => "cairn's configuration file has no such key",
    };
    format!(
        "{message}\n`{key}` is Redis' `{}` parameter: {what} ({}; see docs/compatibility.md, Configuration parameters)",
        p.name, p.note
    )
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
        std::fs::write(&file, "[persistence]\nappendfsync = \"always\"\n").unwrap();
        let err = args(&["--config", file.to_str().unwrap()])
            .into_config()
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "`appendfsync` is Redis' `appendfsync` parameter: cairn does not support it (no append-only file"
            ),
            "{err}"
        );
    }

    #[test]
    fn signal_actions_come_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cairn.toml");
        std::fs::write(&file, "[server]\nshutdown_on_sigint = \"nosave\"\n").unwrap();
        let c = args(&[
            "--config",
            file.to_str().unwrap(),
            "--shutdown-on-sigterm",
            "force nosave",
        ])
        .into_config()
        .unwrap();
        assert_eq!(c.shutdown_on_sigterm.to_string(), "nosave force");
        assert_eq!(c.shutdown_on_sigint.to_string(), "nosave");
        assert!(
            Args::try_parse_from(["cairn-server", "--shutdown-on-sigterm", "save nosave"]).is_err()
        );
    }

    #[test]
    fn unix_socket_and_protected_actions_come_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cairn.toml");
        std::fs::write(
            &file,
            "[server]\nunixsocket = \"/run/c.sock\"\nunixsocketperm = \"770\"\nenable_debug_command = \"local\"\n",
        )
        .unwrap();
        let c = args(&[
            "--config",
            file.to_str().unwrap(),
            "--enable-protected-configs",
            "yes",
        ])
        .into_config()
        .unwrap();
        assert_eq!(c.unixsocket, Some(PathBuf::from("/run/c.sock")));
        assert_eq!(c.unixsocketperm, 0o770);
        assert_eq!(c.enable_debug_command, ProtectedAction::Local);
        assert_eq!(c.enable_protected_configs, ProtectedAction::Yes);
        let c = args(&["--unixsocketperm", "700", "--enable-debug-command", "no"])
            .into_config()
            .unwrap();
        assert_eq!(c.unixsocketperm, 0o700);
        assert_eq!(c.enable_debug_command, ProtectedAction::No);
        assert!(Args::try_parse_from(["cairn-server", "--unixsocketperm", "9"]).is_err());
        assert!(Args::try_parse_from(["cairn-server", "--enable-debug-command", "maybe"]).is_err());
        assert!(args(&["--unixsocketperm", "17777"]).into_config().is_err());
        let d = Config::default();
        assert_eq!(d.enable_debug_command, ProtectedAction::No);
        assert_eq!(d.unixsocket, None);
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
