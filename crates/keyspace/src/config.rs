//! Redis 7.0.15's configuration parameters, one row each (aliases such as
//! `slaveof` included, as `CONFIG GET *` lists them): how Redis validates a
//! value, whether `CONFIG SET` may change it, and what cairn does with it.
//!
//! The rule this table enforces (issue 17): a parameter cairn accepts either
//! works as in Redis or is refused with an error that says cairn does not
//! support it. `CONFIG SET` of an [`Status::Unsupported`] or
//! [`Status::Startup`] parameter to a value other than the one in effect is
//! refused with [`unsupported_error`]; setting it to the value in effect is
//! accepted, since tools and test suites send `CONFIG SET appendonly no` and
//! the like to make sure of a state. `CONFIG GET` answers every parameter.
//! docs/compatibility.md's "Configuration parameters" table is
//! [`markdown_table`]'s output (checked by `tests/config_table.rs`).

use std::fmt::Write as _;

/// How Redis parses a value (`config.c`'s types), with its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `yes` or `no`, any case.
    Bool,
    /// An integer read by `string2ll`, within the bounds.
    Int(i128, i128),
    /// `memtoull`: digits with an optional `b`, `k`, `kb`, `m`, `mb`, `g`,
    /// `gb` unit, within the bounds; `unsigned` bounds compare the value as
    /// C's unsigned types do.
    Memory {
        /// Lowest accepted.
        min: i128,
        /// Highest accepted.
        max: i128,
        /// Whether Redis stores it in an unsigned type.
        unsigned: bool,
    },
    /// A memory value or a percentage up to 100 (`maxmemory-clients`).
    MemoryOrPercent,
    /// An octal number (`unixsocketperm`).
    Octal,
    /// One of the names, any case; CONFIG GET shows the first name of the
    /// same meaning (`relative` reads back `yes`).
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
    /// A host name: letters, digits, `-` and `.`, under 256 characters.
    Hostname,
    /// A parameter with a syntax of its own (`save`, `bind`, ...).
    Special,
}

/// Whether `CONFIG SET` may change it in Redis 7.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    /// `CONFIG SET` changes it.
    Mutable,
    /// Set at start only: `can't set immutable config`.
    Immutable,
    /// Refused unless `enable-protected-configs` allows it.
    Protected,
}

/// What cairn does with the parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Takes effect as in Redis.
    Effective,
    /// Takes effect at start (cairn's own flag); `CONFIG SET` accepts only
    /// the value in effect.
    Startup,
    /// Accepted and stored with no effect, because the feature it tunes does
    /// not exist in a single-node in-memory server and nothing a client
    /// could observe changes with it (the note says why).
    Inert,
    /// Refused unless set to the value in effect (the note says why).
    Unsupported,
}

impl Status {
    /// The word the docs' table uses.
    pub fn word(self) -> &'static str {
        match self {
            Status::Effective => "effective",
            Status::Startup => "at start",
            Status::Inert => "inert",
            Status::Unsupported => "unsupported",
        }
    }
}

/// One of Redis 7.0.15's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// The name, lowercase.
    pub name: &'static str,
    /// For an alias (`slaveof`), the parameter it names.
    pub alias_of: Option<&'static str>,
    /// How a value is parsed.
    pub kind: Kind,
    /// Whether Redis lets CONFIG SET change it.
    pub mutability: Mutability,
    /// What cairn does with it.
    pub status: Status,
    /// Why, in a few words (for the docs and the refusal).
    pub note: &'static str,
}

const fn p(
    name: &'static str,
    kind: Kind,
    mutability: Mutability,
    status: Status,
    note: &'static str,
) -> Param {
    Param {
        name,
        alias_of: None,
        kind,
        mutability,
        status,
        note,
    }
}

/// An alias row: everything but the name comes from the parameter it names.
const fn alias(name: &'static str, of: &'static str) -> Param {
    Param {
        name,
        alias_of: Some(of),
        kind: Kind::Special,
        mutability: Mutability::Mutable,
        status: Status::Effective,
        note: "",
    }
}

use Kind::{Bool, Enum, Hostname, MemoryOrPercent, Octal, Special, Str};
use Mutability::{Immutable, Mutable, Protected};
use Status::{Effective, Inert, Startup, Unsupported};

const INT_MAX: i128 = i32::MAX as i128;
const INT_MIN: i128 = i32::MIN as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

const fn int(min: i128, max: i128) -> Kind {
    Kind::Int(min, max)
}
const fn mem(min: i128, max: i128) -> Kind {
    Kind::Memory {
        min,
        max,
        unsigned: false,
    }
}
const fn umem(min: i128, max: i128) -> Kind {
    Kind::Memory {
        min,
        max,
        unsigned: true,
    }
}

const NO_AOF: &str = "no append-only file: cairn persists by checksummed snapshots only";
const NO_REPL: &str =
    "applies only with replicas attached, and cairn serves none (SYNC/PSYNC are not implemented)";
const REPLICA_ONLY: &str = "applies only while the server is a replica, and cairn cannot be one";
const NO_CLUSTER: &str =
    "Redis ignores it while cluster-enabled is no (immutable), and cairn has no cluster mode";
const NO_TLS: &str = "no TLS listener in cairn (use a TLS-terminating proxy)";
const NO_DEFRAG: &str = "no active defragmentation in cairn";
const NO_LAZYFREE: &str = "cairn frees deleted values synchronously (UNLINK as DEL), so moving frees to a background thread is not available";
const EVICTION: &str = "enforced as Redis 7.0: -OOM under noeviction, sampled eviction under the other policies (operations.md, Memory limit)";
const CLIENT_LIMITS: &str = "takes effect as in Redis (operations.md: Unix socket, DEBUG and protected configs, client buffer limits)";
const ENCODING: &str = "conversion threshold of small collections, as Redis";
const PROTECTION: &[&str] = &["no", "yes", "local"];

/// Every parameter `CONFIG GET *` lists on redis-server 7.0.15, by name.
pub static PARAMS: &[Param] = &[
    p(
        "acl-pubsub-default",
        Enum(&["allchannels", "resetchannels"]),
        Mutable,
        Inert,
        "sets the channel rights of ACL users created later; cairn has only the default user, whose rights it does not change",
    ),
    p(
        "aclfile",
        Str,
        Immutable,
        Unsupported,
        "no ACL file: ACL LOAD/SAVE answer Redis' \"not configured\" error",
    ),
    p(
        "acllog-max-len",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        "length of ACL LOG",
    ),
    p(
        "active-defrag-cycle-max",
        int(1, 99),
        Mutable,
        Unsupported,
        NO_DEFRAG,
    ),
    p(
        "active-defrag-cycle-min",
        int(1, 99),
        Mutable,
        Unsupported,
        NO_DEFRAG,
    ),
    p(
        "active-defrag-ignore-bytes",
        umem(1, LONG_MAX),
        Mutable,
        Unsupported,
        NO_DEFRAG,
    ),
    p(
        "active-defrag-max-scan-fields",
        int(1, LONG_MAX),
        Mutable,
        Unsupported,
        NO_DEFRAG,
    ),
    p(
        "active-defrag-threshold-lower",
        int(0, 1000),
        Mutable,
        Unsupported,
        NO_DEFRAG,
    ),
    p(
        "active-defrag-threshold-upper",
        int(0, 1000),
        Mutable,
        Unsupported,
        NO_DEFRAG,
    ),
    p(
        "active-expire-effort",
        int(1, 10),
        Mutable,
        Effective,
        "share of each expiry cycle's time, 25% + 2% per step above 1, as Redis",
    ),
    p("activedefrag", Bool, Mutable, Unsupported, NO_DEFRAG),
    p(
        "activerehashing",
        Bool,
        Mutable,
        Inert,
        "cairn's tables grow at insert time; there is no incremental rehash for a background task to finish",
    ),
    p(
        "always-show-logo",
        Bool,
        Immutable,
        Inert,
        "cairn prints no logo",
    ),
    p("aof-disable-auto-gc", Bool, Mutable, Unsupported, NO_AOF),
    p("aof-load-truncated", Bool, Mutable, Unsupported, NO_AOF),
    p(
        "aof-rewrite-incremental-fsync",
        Bool,
        Mutable,
        Unsupported,
        NO_AOF,
    ),
    p("aof-timestamp-enabled", Bool, Mutable, Unsupported, NO_AOF),
    p("aof-use-rdb-preamble", Bool, Mutable, Unsupported, NO_AOF),
    p(
        "aof_rewrite_cpulist",
        Str,
        Immutable,
        Unsupported,
        "no CPU pinning in cairn",
    ),
    p("appenddirname", Str, Immutable, Unsupported, NO_AOF),
    p("appendfilename", Str, Immutable, Unsupported, NO_AOF),
    p(
        "appendfsync",
        Enum(&["everysec", "always", "no"]),
        Mutable,
        Unsupported,
        NO_AOF,
    ),
    p("appendonly", Bool, Mutable, Unsupported, NO_AOF),
    p(
        "auto-aof-rewrite-min-size",
        mem(0, LONG_MAX),
        Mutable,
        Unsupported,
        NO_AOF,
    ),
    p(
        "auto-aof-rewrite-percentage",
        int(0, INT_MAX),
        Mutable,
        Unsupported,
        NO_AOF,
    ),
    p(
        "bgsave_cpulist",
        Str,
        Immutable,
        Unsupported,
        "no CPU pinning in cairn",
    ),
    p(
        "bind",
        Special,
        Mutable,
        Startup,
        "--bind at start; the listener is not moved at runtime",
    ),
    p(
        "bind-source-addr",
        Str,
        Mutable,
        Inert,
        "source address of outgoing replication and cluster links, which cairn never opens",
    ),
    p(
        "bio_cpulist",
        Str,
        Immutable,
        Unsupported,
        "no CPU pinning in cairn",
    ),
    p(
        "busy-reply-threshold",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        "BUSY replies after this long in a script",
    ),
    p(
        "client-output-buffer-limit",
        Special,
        Mutable,
        Effective,
        CLIENT_LIMITS,
    ),
    p(
        "client-query-buffer-limit",
        umem(1 << 20, LONG_MAX),
        Mutable,
        Effective,
        CLIENT_LIMITS,
    ),
    p(
        "cluster-allow-pubsubshard-when-down",
        Bool,
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-allow-reads-when-down",
        Bool,
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-allow-replica-migration",
        Bool,
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-announce-bus-port",
        int(0, 65535),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-announce-hostname",
        Hostname,
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p("cluster-announce-ip", Str, Mutable, Inert, NO_CLUSTER),
    p(
        "cluster-announce-port",
        int(0, 65535),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-announce-tls-port",
        int(0, 65535),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p("cluster-config-file", Str, Immutable, Inert, NO_CLUSTER),
    p(
        "cluster-enabled",
        Bool,
        Immutable,
        Unsupported,
        "no cluster mode in cairn",
    ),
    p(
        "cluster-link-sendbuf-limit",
        umem(0, ULLONG_MAX),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-migration-barrier",
        int(0, INT_MAX),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-node-timeout",
        int(0, LONG_MAX),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p("cluster-port", int(0, 65535), Immutable, Inert, NO_CLUSTER),
    p(
        "cluster-preferred-endpoint-type",
        Enum(&["ip", "hostname", "unknown-endpoint"]),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-replica-no-failover",
        Bool,
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-replica-validity-factor",
        int(0, INT_MAX),
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    p(
        "cluster-require-full-coverage",
        Bool,
        Mutable,
        Inert,
        NO_CLUSTER,
    ),
    alias("cluster-slave-no-failover", "cluster-replica-no-failover"),
    alias(
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
    ),
    p(
        "crash-log-enabled",
        Bool,
        Mutable,
        Inert,
        "Redis' crash report comes from its SIGSEGV handler; cairn has none (a Rust panic logs its message either way)",
    ),
    p(
        "crash-memcheck-enabled",
        Bool,
        Mutable,
        Inert,
        "part of Redis' crash report, which cairn has not",
    ),
    p(
        "daemonize",
        Bool,
        Immutable,
        Unsupported,
        "cairn runs in the foreground (use a service manager)",
    ),
    p(
        "databases",
        int(1, INT_MAX),
        Immutable,
        Effective,
        "--databases at start",
    ),
    p(
        "dbfilename",
        Str,
        Protected,
        Unsupported,
        "snapshots are generations in a directory, not one file",
    ),
    p(
        "dir",
        Special,
        Protected,
        Startup,
        "--data-dir at start: where the snapshot generations live",
    ),
    p(
        "disable-thp",
        Bool,
        Immutable,
        Unsupported,
        "cairn does not change transparent huge pages",
    ),
    p(
        "dynamic-hz",
        Bool,
        Mutable,
        Effective,
        "the cron frequency doubles per 200 clients per tick, up to 500, as Redis",
    ),
    p(
        "enable-debug-command",
        Enum(PROTECTION),
        Immutable,
        Effective,
        CLIENT_LIMITS,
    ),
    p(
        "enable-module-command",
        Enum(PROTECTION),
        Immutable,
        Effective,
        CLIENT_LIMITS,
    ),
    p(
        "enable-protected-configs",
        Enum(PROTECTION),
        Immutable,
        Effective,
        CLIENT_LIMITS,
    ),
    p(
        "hash-max-listpack-entries",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        ENCODING,
    ),
    p(
        "hash-max-listpack-value",
        umem(0, LONG_MAX),
        Mutable,
        Effective,
        ENCODING,
    ),
    alias("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    alias("hash-max-ziplist-value", "hash-max-listpack-value"),
    p(
        "hll-sparse-max-bytes",
        umem(0, LONG_MAX),
        Mutable,
        Effective,
        "sparse HyperLogLog promotion",
    ),
    p(
        "hz",
        int(0, INT_MAX),
        Mutable,
        Effective,
        "frequency of the expiry cycle, kept within 1..500 as Redis",
    ),
    p(
        "ignore-warnings",
        Str,
        Mutable,
        Inert,
        "silences Redis' start-up warnings about kernel bugs, which cairn does not check",
    ),
    p(
        "io-threads",
        int(1, 128),
        Immutable,
        Inert,
        "cairn's I/O always runs on the runtime's worker threads",
    ),
    p(
        "io-threads-do-reads",
        Bool,
        Immutable,
        Inert,
        "cairn's I/O always runs on the runtime's worker threads",
    ),
    p(
        "jemalloc-bg-thread",
        Bool,
        Mutable,
        Inert,
        "allocator-internal purging thread; no reply or key changes with it",
    ),
    p(
        "latency-monitor-threshold",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        "LATENCY events",
    ),
    p(
        "latency-tracking",
        Bool,
        Mutable,
        Effective,
        "INFO latencystats",
    ),
    p(
        "latency-tracking-info-percentiles",
        Special,
        Mutable,
        Effective,
        "INFO latencystats",
    ),
    p(
        "lazyfree-lazy-eviction",
        Bool,
        Mutable,
        Unsupported,
        NO_LAZYFREE,
    ),
    p(
        "lazyfree-lazy-expire",
        Bool,
        Mutable,
        Unsupported,
        NO_LAZYFREE,
    ),
    p(
        "lazyfree-lazy-server-del",
        Bool,
        Mutable,
        Unsupported,
        NO_LAZYFREE,
    ),
    p(
        "lazyfree-lazy-user-del",
        Bool,
        Mutable,
        Unsupported,
        NO_LAZYFREE,
    ),
    p(
        "lazyfree-lazy-user-flush",
        Bool,
        Mutable,
        Unsupported,
        NO_LAZYFREE,
    ),
    p(
        "lfu-decay-time",
        int(0, INT_MAX),
        Mutable,
        Effective,
        "OBJECT FREQ and LFU eviction",
    ),
    p(
        "lfu-log-factor",
        int(0, INT_MAX),
        Mutable,
        Effective,
        "OBJECT FREQ and LFU eviction",
    ),
    p(
        "list-compress-depth",
        int(0, INT_MAX),
        Mutable,
        Unsupported,
        "cairn's list nodes are never LZF-compressed",
    ),
    p(
        "list-max-listpack-size",
        int(INT_MIN, INT_MAX),
        Mutable,
        Effective,
        "size of list nodes, as Redis",
    ),
    alias("list-max-ziplist-size", "list-max-listpack-size"),
    p(
        "logfile",
        Str,
        Immutable,
        Unsupported,
        "cairn logs to standard error (redirect it)",
    ),
    p(
        "loglevel",
        Enum(&["debug", "verbose", "notice", "warning"]),
        Mutable,
        Effective,
        "cairn-server's log filter (debug: trace, verbose: debug, notice: info, warning: warn); CAIRN_LOG sets it at start",
    ),
    alias("lua-time-limit", "busy-reply-threshold"),
    p("masterauth", Str, Mutable, Inert, REPLICA_ONLY),
    p("masteruser", Str, Mutable, Inert, REPLICA_ONLY),
    p(
        "maxclients",
        int(1, UINT_MAX),
        Mutable,
        Effective,
        "new connections beyond it are refused; checked against the open-file limit at start and on CONFIG SET, as Redis' adjustOpenFilesLimit",
    ),
    p(
        "maxmemory",
        umem(0, ULLONG_MAX),
        Mutable,
        Effective,
        EVICTION,
    ),
    p(
        "maxmemory-clients",
        MemoryOrPercent,
        Mutable,
        Unsupported,
        "no client eviction in cairn",
    ),
    p(
        "maxmemory-eviction-tenacity",
        int(0, 100),
        Mutable,
        Effective,
        EVICTION,
    ),
    p(
        "maxmemory-policy",
        Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        Mutable,
        Effective,
        EVICTION,
    ),
    p(
        "maxmemory-samples",
        int(1, INT_MAX),
        Mutable,
        Effective,
        EVICTION,
    ),
    p(
        "min-replicas-max-lag",
        int(0, INT_MAX),
        Mutable,
        Inert,
        "used only with min-replicas-to-write, which cairn refuses",
    ),
    p(
        "min-replicas-to-write",
        int(0, INT_MAX),
        Mutable,
        Unsupported,
        "no replication: writes would always be refused",
    ),
    alias("min-slaves-max-lag", "min-replicas-max-lag"),
    alias("min-slaves-to-write", "min-replicas-to-write"),
    p(
        "no-appendfsync-on-rewrite",
        Bool,
        Mutable,
        Unsupported,
        NO_AOF,
    ),
    p(
        "notify-keyspace-events",
        Special,
        Mutable,
        Effective,
        "keyspace notifications",
    ),
    p(
        "oom-score-adj",
        Enum(&["no", "yes", "relative", "absolute"]),
        Mutable,
        Unsupported,
        "cairn does not write its OOM score",
    ),
    p(
        "oom-score-adj-values",
        Special,
        Mutable,
        Unsupported,
        "cairn does not write its OOM score",
    ),
    p(
        "pidfile",
        Str,
        Immutable,
        Unsupported,
        "cairn writes no pid file",
    ),
    p(
        "port",
        int(0, 65535),
        Mutable,
        Startup,
        "--port at start; the listener is not moved at runtime",
    ),
    p(
        "proc-title-template",
        Str,
        Mutable,
        Unsupported,
        "cairn does not change its process title",
    ),
    p(
        "propagation-error-behavior",
        Enum(&["ignore", "panic", "panic-on-replicas"]),
        Mutable,
        Inert,
        "concerns commands received from a master or an AOF, which cairn never replays",
    ),
    p(
        "protected-mode",
        Bool,
        Mutable,
        Effective,
        "loopback-only without a password",
    ),
    p(
        "proto-max-bulk-len",
        mem(1 << 20, LONG_MAX),
        Mutable,
        Effective,
        "largest bulk string accepted",
    ),
    p(
        "rdb-del-sync-files",
        Bool,
        Mutable,
        Inert,
        "deletes RDB files made for replicas, which cairn never makes",
    ),
    p(
        "rdb-save-incremental-fsync",
        Bool,
        Mutable,
        Unsupported,
        "snapshot writes are synced by the store, not every 32 MB",
    ),
    p(
        "rdbchecksum",
        Bool,
        Immutable,
        Effective,
        "snapshots are always checksummed (yes)",
    ),
    p(
        "rdbcompression",
        Bool,
        Mutable,
        Effective,
        "LZF in FUNCTION DUMP payloads; cairn's snapshots are not RDB files",
    ),
    p(
        "repl-backlog-size",
        mem(1, LONG_MAX),
        Mutable,
        Inert,
        NO_REPL,
    ),
    p(
        "repl-backlog-ttl",
        int(0, LONG_MAX),
        Mutable,
        Inert,
        NO_REPL,
    ),
    p("repl-disable-tcp-nodelay", Bool, Mutable, Inert, NO_REPL),
    p(
        "repl-diskless-load",
        Enum(&["disabled", "on-empty-db", "swapdb"]),
        Mutable,
        Inert,
        REPLICA_ONLY,
    ),
    p("repl-diskless-sync", Bool, Mutable, Inert, NO_REPL),
    p(
        "repl-diskless-sync-delay",
        int(0, INT_MAX),
        Mutable,
        Inert,
        NO_REPL,
    ),
    p(
        "repl-diskless-sync-max-replicas",
        int(0, INT_MAX),
        Mutable,
        Inert,
        NO_REPL,
    ),
    p(
        "repl-ping-replica-period",
        int(1, INT_MAX),
        Mutable,
        Inert,
        NO_REPL,
    ),
    alias("repl-ping-slave-period", "repl-ping-replica-period"),
    p("repl-timeout", int(1, INT_MAX), Mutable, Inert, NO_REPL),
    p("replica-announce-ip", Str, Mutable, Inert, REPLICA_ONLY),
    p(
        "replica-announce-port",
        int(0, 65535),
        Mutable,
        Inert,
        REPLICA_ONLY,
    ),
    p("replica-announced", Bool, Mutable, Inert, REPLICA_ONLY),
    p(
        "replica-ignore-disk-write-errors",
        Bool,
        Mutable,
        Inert,
        REPLICA_ONLY,
    ),
    p(
        "replica-ignore-maxmemory",
        Bool,
        Mutable,
        Inert,
        REPLICA_ONLY,
    ),
    p("replica-lazy-flush", Bool, Mutable, Inert, REPLICA_ONLY),
    p(
        "replica-priority",
        int(0, INT_MAX),
        Mutable,
        Inert,
        REPLICA_ONLY,
    ),
    p("replica-read-only", Bool, Mutable, Inert, REPLICA_ONLY),
    p(
        "replica-serve-stale-data",
        Bool,
        Mutable,
        Inert,
        REPLICA_ONLY,
    ),
    p(
        "replicaof",
        Special,
        Immutable,
        Unsupported,
        "no replication in cairn",
    ),
    p(
        "requirepass",
        Str,
        Mutable,
        Effective,
        "AUTH of the default user",
    ),
    p(
        "sanitize-dump-payload",
        Enum(&["no", "yes", "clients"]),
        Mutable,
        Inert,
        "checks RESTORE payloads, and cairn has no RESTORE",
    ),
    p("save", Special, Mutable, Effective, "snapshot save points"),
    p(
        "server_cpulist",
        Str,
        Immutable,
        Unsupported,
        "no CPU pinning in cairn",
    ),
    p(
        "set-max-intset-entries",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        ENCODING,
    ),
    p(
        "set-proc-title",
        Bool,
        Immutable,
        Unsupported,
        "cairn does not change its process title",
    ),
    p(
        "shutdown-on-sigint",
        Special,
        Mutable,
        Effective,
        "what SIGINT does",
    ),
    p(
        "shutdown-on-sigterm",
        Special,
        Mutable,
        Effective,
        "what SIGTERM does",
    ),
    p(
        "shutdown-timeout",
        int(0, INT_MAX),
        Mutable,
        Inert,
        "how long SHUTDOWN waits for lagging replicas; cairn has none to wait for",
    ),
    alias("slave-announce-ip", "replica-announce-ip"),
    alias("slave-announce-port", "replica-announce-port"),
    alias("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    alias("slave-lazy-flush", "replica-lazy-flush"),
    alias("slave-priority", "replica-priority"),
    alias("slave-read-only", "replica-read-only"),
    alias("slave-serve-stale-data", "replica-serve-stale-data"),
    alias("slaveof", "replicaof"),
    p(
        "slowlog-log-slower-than",
        int(-1, LONG_MAX),
        Mutable,
        Effective,
        "SLOWLOG",
    ),
    p(
        "slowlog-max-len",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        "SLOWLOG",
    ),
    p(
        "socket-mark-id",
        int(0, UINT_MAX),
        Immutable,
        Unsupported,
        "cairn does not mark its sockets",
    ),
    p(
        "stop-writes-on-bgsave-error",
        Bool,
        Mutable,
        Effective,
        "MISCONF after a failed snapshot",
    ),
    p(
        "stream-node-max-bytes",
        umem(0, LONG_MAX),
        Mutable,
        Effective,
        "size of stream nodes, as Redis",
    ),
    p(
        "stream-node-max-entries",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        "size of stream nodes, as Redis",
    ),
    p(
        "supervised",
        Enum(&["upstart", "systemd", "auto", "no"]),
        Immutable,
        Unsupported,
        "cairn does not notify a supervisor",
    ),
    p(
        "syslog-enabled",
        Bool,
        Immutable,
        Unsupported,
        "cairn logs to standard error only",
    ),
    p(
        "syslog-facility",
        Enum(&[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
        Immutable,
        Unsupported,
        "cairn logs to standard error only",
    ),
    p(
        "syslog-ident",
        Str,
        Immutable,
        Unsupported,
        "cairn logs to standard error only",
    ),
    p(
        "tcp-backlog",
        int(0, INT_MAX),
        Immutable,
        Unsupported,
        "the listen backlog is the runtime's",
    ),
    p(
        "tcp-keepalive",
        int(0, INT_MAX),
        Mutable,
        Effective,
        "keepalive of client sockets",
    ),
    p(
        "timeout",
        int(0, INT_MAX),
        Mutable,
        Effective,
        "idle clients closed",
    ),
    p(
        "tls-auth-clients",
        Enum(&["no", "yes", "optional"]),
        Mutable,
        Unsupported,
        NO_TLS,
    ),
    p("tls-ca-cert-dir", Str, Mutable, Unsupported, NO_TLS),
    p("tls-ca-cert-file", Str, Mutable, Unsupported, NO_TLS),
    p("tls-cert-file", Str, Mutable, Unsupported, NO_TLS),
    p("tls-ciphers", Str, Mutable, Unsupported, NO_TLS),
    p("tls-ciphersuites", Str, Mutable, Unsupported, NO_TLS),
    p("tls-client-cert-file", Str, Mutable, Unsupported, NO_TLS),
    p("tls-client-key-file", Str, Mutable, Unsupported, NO_TLS),
    p(
        "tls-client-key-file-pass",
        Str,
        Mutable,
        Unsupported,
        NO_TLS,
    ),
    p("tls-cluster", Bool, Mutable, Unsupported, NO_TLS),
    p("tls-dh-params-file", Str, Mutable, Unsupported, NO_TLS),
    p("tls-key-file", Str, Mutable, Unsupported, NO_TLS),
    p("tls-key-file-pass", Str, Mutable, Unsupported, NO_TLS),
    p("tls-port", int(0, 65535), Mutable, Unsupported, NO_TLS),
    p(
        "tls-prefer-server-ciphers",
        Bool,
        Mutable,
        Unsupported,
        NO_TLS,
    ),
    p("tls-protocols", Str, Mutable, Unsupported, NO_TLS),
    p("tls-replication", Bool, Mutable, Unsupported, NO_TLS),
    p(
        "tls-session-cache-size",
        int(0, INT_MAX),
        Mutable,
        Unsupported,
        NO_TLS,
    ),
    p(
        "tls-session-cache-timeout",
        int(0, INT_MAX),
        Mutable,
        Unsupported,
        NO_TLS,
    ),
    p("tls-session-caching", Bool, Mutable, Unsupported, NO_TLS),
    p(
        "tracking-table-max-keys",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        "client-side caching's table",
    ),
    p("unixsocket", Str, Immutable, Effective, CLIENT_LIMITS),
    p("unixsocketperm", Octal, Immutable, Effective, CLIENT_LIMITS),
    p(
        "zset-max-listpack-entries",
        int(0, LONG_MAX),
        Mutable,
        Effective,
        ENCODING,
    ),
    p(
        "zset-max-listpack-value",
        umem(0, LONG_MAX),
        Mutable,
        Effective,
        ENCODING,
    ),
    alias("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    alias("zset-max-ziplist-value", "zset-max-listpack-value"),
];

/// The row of `name` (any case), aliases resolved to their parameter's row
/// (whose `name` is then the canonical one).
pub fn lookup(name: &str) -> Option<&'static Param> {
    let row = PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name))?;
    match row.alias_of {
        Some(of) => PARAMS.iter().find(|p| p.name == of),
        None => Some(row),
    }
}

/// The other names of the same parameter (an alias and its target).
pub fn other_names(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    let canonical = lookup(name).map(|p| p.name);
    PARAMS
        .iter()
        .filter(move |p| {
            !p.name.eq_ignore_ascii_case(name)
                && canonical.is_some_and(|c| p.name == c || p.alias_of == Some(c))
        })
        .map(|p| p.name)
}

/// The refusal of a value cairn cannot honour, with Redis' prefix so that
/// clients that parse `CONFIG SET failed (possibly related to argument ...)`
/// find the parameter.
pub fn unsupported_error(given: &str, p: &Param) -> String {
    let what = match p.status {
        Status::Startup => "cannot change at runtime",
        _ => "does not support",
    };
    format!(
        "ERR CONFIG SET failed (possibly related to argument '{given}') - cairn {what} '{}': {} (see docs/compatibility.md, Configuration parameters)",
        p.name, p.note
    )
}

/// Redis' `memtoull`: digits and an optional unit, no sign. Overflow is not
/// detected, as in Redis (strtoull saturates, the unit's product wraps).
pub(crate) fn memtoull(v: &[u8]) -> Option<u64> {
    if v.first() == Some(&b'-') {
        return None;
    }
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let (num, unit) = v.split_at(digits);
    let unit = String::from_utf8_lossy(unit).to_ascii_lowercase();
    let mul: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    if digits >= 128 {
        return None;
    }
    let mut n: u64 = 0;
    for d in num {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX);
    }
    Some(n.wrapping_mul(mul))
}

fn between(min: i128, max: i128) -> String {
    format!("argument must be between {min} and {max} inclusive")
}

impl Param {
    /// Checks `value` as Redis 7.0's CONFIG SET does and returns the form
    /// CONFIG GET then shows (`current` is the value in effect, which
    /// `client-output-buffer-limit` amends). The error is Redis' text.
    ///
    /// `save`, `shutdown-on-*` and the listener's `bind` are checked by the
    /// extensions that own them and come back unchanged here.
    pub fn parse(&self, value: &[u8], current: &str) -> Result<String, String> {
        let text = || String::from_utf8_lossy(value).into_owned();
        match self.kind {
            Kind::Bool => match text().to_ascii_lowercase().as_str() {
                v @ ("yes" | "no") => Ok(v.to_owned()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Int(min, max) => {
                let n = crate::num::string2ll(value)
                    .ok_or("argument couldn't be parsed into an integer")?;
                if !(min..=max).contains(&i128::from(n)) {
                    return Err(between(min, max));
                }
                if self.name == "hz" {
                    // Redis' `updateHZ` keeps the value within 1..500, and
                    // CONFIG GET shows what it kept.
                    return Ok(n.clamp(1, 500).to_string());
                }
                Ok(n.to_string())
            }
            Kind::Memory { min, max, unsigned } => {
                let mut n = memtoull(value).ok_or("argument must be a memory value")?;
                // Stored in a `long long` first, then compared as the C
                // type would.
                let seen = if unsigned {
                    i128::from(n)
                } else {
                    i128::from(n as i64)
                };
                if !(min..=max).contains(&seen) {
                    return Err(between(min, max));
                }
                if self.name == "repl-backlog-size" {
                    // Redis' `resizeReplicationBacklog` raises it to
                    // `CONFIG_REPL_BACKLOG_MIN_SIZE`, and CONFIG GET shows
                    // the raised value.
                    n = n.max(16 * 1024);
                }
                Ok(n.to_string())
            }
            Kind::MemoryOrPercent => {
                if let Some(n) = memtoull(value) {
                    let ll = n as i64;
                    if ll < -100 {
                        return Err("percentage argument must be less or equal to 100".into());
                    }
                    return Ok(n.to_string());
                }
                let pct = value
                    .strip_suffix(b"%")
                    .filter(|d| !d.is_empty())
                    .and_then(crate::num::string2ll)
                    .filter(|n| *n >= 0)
                    .ok_or("argument must be a memory or percent value")?;
                if pct > 100 {
                    return Err("percentage argument must be less or equal to 100".into());
                }
                Ok(format!("{pct}%"))
            }
            Kind::Octal => {
                let n = i64::from_str_radix(&text(), 8)
                    .map_err(|_| "argument couldn't be parsed as an octal number")?;
                if !(0..=0o777).contains(&n) {
                    return Err("argument must be between 0 and 777 inclusive".into());
                }
                Ok(format!("{n:o}"))
            }
            Kind::Enum(names) => {
                let v = text().to_ascii_lowercase();
                if !names.contains(&v.as_str()) {
                    return Err(format!(
                        "argument(s) must be one of the following: {}",
                        names.join(", ")
                    ));
                }
                // `relative` is `yes` under another name.
                Ok(if self.name == "oom-score-adj" && v == "relative" {
                    "yes".to_owned()
                } else {
                    v
                })
            }
            Kind::Str => Ok(text()),
            Kind::Hostname => {
                let v = text();
                if v.len() >= 256 {
                    return Err("Hostnames must be less than 256 characters".into());
                }
                if !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(
                        "Hostnames may only contain alphanumeric characters, hyphens or dots"
                            .into(),
                    );
                }
                Ok(v)
            }
            Kind::Special => self.parse_special(value, current),
        }
    }

    fn parse_special(&self, value: &[u8], current: &str) -> Result<String, String> {
        let text = String::from_utf8_lossy(value).into_owned();
        match self.name {
            "notify-keyspace-events" => crate::notify::parse_classes(value)
                .map(crate::notify::classes_to_string)
                .ok_or_else(|| crate::notify::BAD_CLASS.to_owned()),
            "latency-tracking-info-percentiles" => parse_percentiles(&text)
                .map(|ps| {
                    ps.iter()
                        .map(|p| trim_double(*p))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .map_err(str::to_owned),
            "client-output-buffer-limit" => output_limits(&text, current),
            "oom-score-adj-values" => {
                let words: Vec<&str> = text.split(' ').collect();
                if words.len() != 3 {
                    return Err("wrong number of arguments".into());
                }
                let mut out = Vec::new();
                for w in words {
                    match crate::num::string2ll(w.as_bytes()) {
                        Some(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
                        _ => {
                            return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into());
                        }
                    }
                }
                Ok(out.join(" "))
            }
            "bind" => {
                if text.split(' ').count() > 16 {
                    return Err("Too many bind addresses specified.".into());
                }
                Ok(text)
            }
            _ => Ok(text),
        }
    }
}

/// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>` groups,
/// all checked before any is kept, merged into the value in effect.
fn output_limits(text: &str, current: &str) -> Result<String, String> {
    // Redis' `sdssplitlen`: no words at all in an empty value (a no-op),
    // an empty word between two spaces.
    let words: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(' ').collect()
    };
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes: Vec<(String, [u64; 3])> = ["normal", "slave", "pubsub"]
        .iter()
        .map(|c| ((*c).to_owned(), [0u64; 3]))
        .collect();
    let cur: Vec<&str> = current.split(' ').collect();
    for group in cur.chunks_exact(4) {
        if let Some(slot) = classes.iter_mut().find(|(c, _)| c == group[0]) {
            for (i, w) in group[1..].iter().enumerate() {
                slot.1[i] = w.parse().unwrap_or(0);
            }
        }
    }
    let mut updates = Vec::new();
    for group in words.chunks_exact(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into());
            }
        };
        let hard = memtoull(group[1].as_bytes());
        let soft = memtoull(group[2].as_bytes());
        let secs = crate::num::string2ll(group[3].as_bytes())
            .or_else(|| (group[3].is_empty()).then_some(0))
            .filter(|s| *s >= 0);
        let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            );
        };
        // C's `int` seconds.
        updates.push((class, [hard, soft, secs as i32 as u64]));
    }
    for (class, v) in updates {
        if let Some(slot) = classes.iter_mut().find(|(c, _)| c == class) {
            slot.1 = v;
        }
    }
    Ok(classes
        .iter()
        .map(|(c, v)| format!("{c} {} {} {}", v[0], v[1], v[2]))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `latency-tracking-info-percentiles`: numbers between 0 and 100
/// separated by spaces, with Redis' errors.
pub(crate) fn parse_percentiles(v: &str) -> Result<Vec<f64>, &'static str> {
    v.split_ascii_whitespace()
        .map(|w| {
            let p = crate::num::parse_float(w.as_bytes())
                .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
            if (0.0..=100.0).contains(&p) {
                Ok(p)
            } else {
                Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
            }
        })
        .collect()
}

/// Redis' `%f` then `trimDoubleString`: `50`, `99.9`, `1.5`.
pub(crate) fn trim_double(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_owned()
}

/// Counts of parameters (aliases left out) by status.
pub fn counts() -> [(Status, usize); 4] {
    [Effective, Startup, Inert, Unsupported].map(|s| {
        (
            s,
            PARAMS
                .iter()
                .filter(|p| p.alias_of.is_none() && p.status == s)
                .count(),
        )
    })
}

/// docs/compatibility.md's "Configuration parameters" table.
pub fn markdown_table() -> String {
    let mut out = String::new();
    let c = counts();
    let _ = writeln!(
        out,
        "{} parameters ({} aliases besides): {} effective, {} effective at start only, {} inert, {} unsupported.\n",
        c.iter().map(|(_, n)| n).sum::<usize>(),
        PARAMS.iter().filter(|p| p.alias_of.is_some()).count(),
        c[0].1,
        c[1].1,
        c[2].1,
        c[3].1,
    );
    out.push_str("| parameter | cairn | note |\n|---|---|---|\n");
    for row in PARAMS {
        let (status, note) = match row.alias_of {
            Some(of) => {
                let target = lookup(of).map_or(Status::Unsupported, |p| p.status);
                (target.word(), format!("alias of `{of}`"))
            }
            None => {
                let mut note = row.note.to_owned();
                match row.mutability {
                    Mutability::Immutable => note.push_str(" (immutable in Redis)"),
                    Mutability::Protected => note.push_str(" (protected config in Redis)"),
                    Mutability::Mutable => {}
                }
                (row.status.word(), note)
            }
        };
        let _ = writeln!(out, "| `{}` | {status} | {note} |", row.name);
    }
    out
}
