//! Foundation commands over real TCP with the `redis` crate (issue #2).
//!
//! Every error text asserted here was read from a real `redis-server`
//! 7.0.15 with `redis-cli` and is hard-coded on purpose: cairn must answer
//! what Redis answers, byte for byte, because client libraries and scripts
//! match on these strings.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_server::{Config, Server, ServerHandle, ShutdownOptions};
use cairn_tests::cairn::CairnServer;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError, Value};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const OVERFLOW: &str = "ERR increment or decrement would overflow";
const SYNTAX: &str = "ERR syntax error";
const SET_EXPIRE: &str = "ERR invalid expire time in 'set' command";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// How long polled conditions (expiry) may take on a busy 2-core machine.
const POLL_LIMIT: Duration = Duration::from_secs(10);

async fn connect(addr: SocketAddr) -> MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// The server under test: cairn in process, or, to check this suite's
/// expectations against the oracle, a real Redis 7.0 named by
/// `CAIRN_FOUNDATION_REDIS=host:port` (and, for the AUTH tests, one with
/// `requirepass s3cret` named by `CAIRN_FOUNDATION_REDIS_AUTH`). Such a
/// server is shared and flushed by each test: run with
/// `--test-threads=1`.
enum Target {
    Cairn(CairnServer),
    Handle(ServerHandle, tempfile::TempDir),
    External(SocketAddr),
}

impl Target {
    fn addr(&self) -> SocketAddr {
        match self {
            Target::Cairn(s) => s.addr(),
            Target::Handle(h, _) => h.addr(),
            Target::External(a) => *a,
        }
    }

    fn is_cairn(&self) -> bool {
        !matches!(self, Target::External(_))
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        match self {
            Target::Cairn(s) => s.shutdown().await,
            Target::Handle(h, _dir) => Ok(h.shutdown_with(ShutdownOptions::nosave()).await?),
            Target::External(_) => Ok(()),
        }
    }
}

async fn external(var: &str) -> Option<Target> {
    let addr: SocketAddr = std::env::var(var).ok()?.parse().unwrap();
    println!("running against the external server {addr} from {var}");
    Some(Target::External(addr))
}

async fn start() -> (Target, MultiplexedConnection) {
    let server = match external("CAIRN_FOUNDATION_REDIS").await {
        Some(t) => t,
        None => Target::Cairn(CairnServer::start().await.unwrap()),
    };
    let mut con = connect(server.addr()).await;
    if !server.is_cairn() {
        ok::<()>(&mut con, &["FLUSHALL"]).await;
    }
    (server, con)
}

fn cmd(args: &[&str]) -> redis::Cmd {
    let (name, rest) = args.split_first().unwrap();
    let mut c = redis::cmd(name);
    for a in rest {
        c.arg(*a);
    }
    c
}

/// Runs a command that must succeed and converts its reply.
async fn ok<T: FromRedisValue>(con: &mut MultiplexedConnection, args: &[&str]) -> T {
    match cmd(args).query_async::<T>(con).await {
        Ok(v) => v,
        Err(e) => panic!("{args:?} failed: {e}"),
    }
}

/// The error as Redis wrote it, without the leading `-`.
fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_owned(),
        _ => format!("<not a server error: {e}>"),
    }
}

/// Runs a command that must fail and returns its error text.
async fn err(con: &mut MultiplexedConnection, args: &[&str]) -> String {
    match cmd(args).query_async::<Value>(con).await {
        Ok(v) => panic!("{args:?} succeeded with {v:?}, expected an error"),
        Err(e) => error_text(&e),
    }
}

async fn assert_err(con: &mut MultiplexedConnection, args: &[&str], want: &str) {
    assert_eq!(err(con, args).await, want, "error text of {args:?}");
}

fn wrong_arity(cmd: &str) -> String {
    format!("ERR wrong number of arguments for '{cmd}' command")
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Polls `cond` every few milliseconds until it holds or [`POLL_LIMIT`]
/// passes; returns when it first held.
async fn poll_until<F, Fut>(what: &str, mut cond: F) -> Instant
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return Instant::now();
        }
        assert!(
            start.elapsed() < POLL_LIMIT,
            "{what}: not within {POLL_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start_with(config: Config) -> Target {
    if let Some(t) = external("CAIRN_FOUNDATION_REDIS_AUTH").await {
        return t;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        port: 0,
        persistence: false,
        data_dir: dir.path().to_path_buf(),
        ..config
    };
    let handle = Server::builder()
        .config(config)
        .enable_debug_command(cairn_server::ProtectedAction::Yes)
        .build()
        .start()
        .await
        .unwrap();
    Target::Handle(handle, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command_and_wrong_arity() {
    let (server, mut con) = start().await;
    assert_err(
        &mut con,
        &["FOO", "bar", "baz"],
        "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ",
    )
    .await;
    assert_err(
        &mut con,
        &["foo"],
        "ERR unknown command 'foo', with args beginning with: ",
    )
    .await;
    for args in [
        &["GET"][..],
        &["GET", "a", "b"],
        &["SET", "a"],
        &["MGET"],
        &["MSET"],
        &["MSET", "a"],
        &["MSET", "a", "1", "b"],
        &["INCR"],
        &["DECRBY", "a"],
        &["APPEND", "a"],
        &["STRLEN"],
        &["DEL"],
        &["EXISTS"],
        &["EXPIRE", "a"],
        &["TTL"],
        &["PERSIST"],
        &["TYPE"],
        &["DBSIZE", "x"],
        &["PING", "a", "b"],
        &["ECHO"],
        &["ECHO", "a", "b"],
        &["SELECT"],
        &["TIME", "x"],
    ] {
        assert_err(&mut con, args, &wrong_arity(&args[0].to_lowercase())).await;
    }
    // Subcommand arity names the container and the subcommand.
    assert_err(&mut con, &["CONFIG", "GET"], &wrong_arity("config|get")).await;
    assert_err(
        &mut con,
        &["CLIENT", "GETNAME", "x"],
        &wrong_arity("client|getname"),
    )
    .await;
    assert_err(
        &mut con,
        &["CLIENT", "FOO"],
        "ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
    )
    .await;
    assert_err(
        &mut con,
        &["CONFIG", "FOO"],
        "ERR unknown subcommand 'FOO'. Try CONFIG HELP.",
    )
    .await;
    // The connection survives every error.
    assert_eq!(ok::<String>(&mut con, &["PING"]).await, "PONG");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_databases() {
    let (server, mut con) = start().await;
    ok::<()>(&mut con, &["SET", "k", "db0"]).await;
    assert_eq!(ok::<String>(&mut con, &["SELECT", "15"]).await, "OK");
    assert_eq!(ok::<Option<String>>(&mut con, &["GET", "k"]).await, None);
    ok::<()>(&mut con, &["SET", "k", "db15"]).await;
    assert_eq!(ok::<String>(&mut con, &["SELECT", "0"]).await, "OK");
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "db0");
    assert_err(&mut con, &["SELECT", "16"], "ERR DB index is out of range").await;
    assert_err(&mut con, &["SELECT", "-1"], "ERR DB index is out of range").await;
    assert_err(&mut con, &["SELECT", "x"], NOT_INT).await;
    // A failed SELECT leaves the current database alone.
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "db0");
    // Each connection has its own current database.
    let mut other = connect(server.addr()).await;
    ok::<()>(&mut other, &["SELECT", "15"]).await;
    assert_eq!(ok::<String>(&mut other, &["GET", "k"]).await, "db15");
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "db0");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_set_and_options() {
    let (server, mut con) = start().await;
    assert_eq!(
        ok::<Option<String>>(&mut con, &["GET", "missing"]).await,
        None
    );
    assert_eq!(ok::<String>(&mut con, &["SET", "k", "v"]).await, "OK");
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "v");
    assert_eq!(ok::<i64>(&mut con, &["TTL", "k"]).await, -1);

    // NX / XX: a refused condition answers nil and changes nothing.
    assert_eq!(
        ok::<Option<String>>(&mut con, &["SET", "k", "v2", "NX"]).await,
        None
    );
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "v");
    assert_eq!(
        ok::<Option<String>>(&mut con, &["SET", "new", "v", "XX"]).await,
        None
    );
    assert_eq!(ok::<i64>(&mut con, &["EXISTS", "new"]).await, 0);
    assert_eq!(
        ok::<String>(&mut con, &["SET", "k", "v2", "XX"]).await,
        "OK"
    );
    assert_eq!(ok::<String>(&mut con, &["SET", "n", "1", "nx"]).await, "OK");

    // EX / PX / EXAT / PXAT set a deadline.
    ok::<()>(&mut con, &["SET", "k", "v", "EX", "100"]).await;
    let ttl = ok::<i64>(&mut con, &["TTL", "k"]).await;
    assert!((99..=100).contains(&ttl), "TTL after EX 100: {ttl}");
    ok::<()>(&mut con, &["SET", "k", "v", "PX", "100000"]).await;
    let pttl = ok::<i64>(&mut con, &["PTTL", "k"]).await;
    assert!(
        (98_000..=100_000).contains(&pttl),
        "PTTL after PX 100000: {pttl}"
    );
    let at = now_ms() / 1000 + 200;
    ok::<()>(&mut con, &["SET", "k", "v", "EXAT", &at.to_string()]).await;
    let ttl = ok::<i64>(&mut con, &["TTL", "k"]).await;
    assert!((198..=200).contains(&ttl), "TTL after EXAT now+200: {ttl}");
    let at = now_ms() + 300_000;
    ok::<()>(&mut con, &["SET", "k", "v", "PXAT", &at.to_string()]).await;
    let pttl = ok::<i64>(&mut con, &["PTTL", "k"]).await;
    assert!(
        (298_000..=300_000).contains(&pttl),
        "PTTL after PXAT now+300000: {pttl}"
    );

    // KEEPTTL keeps the deadline; a plain SET drops it.
    ok::<()>(&mut con, &["SET", "k", "kept", "KEEPTTL"]).await;
    assert!(ok::<i64>(&mut con, &["PTTL", "k"]).await > 290_000);
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "kept");
    ok::<()>(&mut con, &["SET", "k", "plain"]).await;
    assert_eq!(ok::<i64>(&mut con, &["PTTL", "k"]).await, -1);

    // GET returns the old value (nil when there was none), also with NX/XX.
    assert_eq!(
        ok::<Option<String>>(&mut con, &["SET", "k", "new", "GET"])
            .await
            .as_deref(),
        Some("plain")
    );
    assert_eq!(
        ok::<Option<String>>(&mut con, &["SET", "g", "1", "GET"]).await,
        None
    );
    assert_eq!(ok::<String>(&mut con, &["GET", "g"]).await, "1");
    assert_eq!(
        ok::<Option<String>>(&mut con, &["SET", "g", "2", "NX", "GET"])
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(ok::<String>(&mut con, &["GET", "g"]).await, "1");

    // Error cases.
    ok::<()>(&mut con, &["LPUSH", "list", "a"]).await;
    assert_err(&mut con, &["GET", "list"], WRONGTYPE).await;
    assert_err(&mut con, &["SET", "list", "v", "GET"], WRONGTYPE).await;
    // SET ... GET on the wrong type must not have overwritten the list.
    assert_eq!(ok::<String>(&mut con, &["TYPE", "list"]).await, "list");
    for bad in [
        &["SET", "k", "v", "EX", "0"][..],
        &["SET", "k", "v", "EX", "-1"],
        &["SET", "k", "v", "PX", "0"],
        &["SET", "k", "v", "EXAT", "0"],
        &["SET", "k", "v", "PXAT", "0"],
        &["SET", "k", "v", "EX", "99999999999999999"],
        &["SET", "k", "v", "PX", "9223372036854775807"],
        &["SET", "k", "v", "EXAT", "9223372036854775807"],
    ] {
        assert_err(&mut con, bad, SET_EXPIRE).await;
    }
    assert_err(&mut con, &["SET", "k", "v", "EX", "x"], NOT_INT).await;
    assert_err(&mut con, &["SET", "k", "v", "PX", "1.5"], NOT_INT).await;
    for bad in [
        &["SET", "k", "v", "NX", "XX"][..],
        &["SET", "k", "v", "EX", "10", "PX", "10"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "FOO"],
    ] {
        assert_err(&mut con, bad, SYNTAX).await;
    }
    // No failed SET changed the key.
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "new");
    assert_eq!(ok::<i64>(&mut con, &["TTL", "k"]).await, -1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mget_mset_append_strlen() {
    let (server, mut con) = start().await;
    assert_eq!(
        ok::<String>(&mut con, &["MSET", "a", "1", "b", "2", "a", "3"]).await,
        "OK"
    );
    ok::<()>(&mut con, &["LPUSH", "list", "x"]).await;
    // MGET answers nil for missing keys and for keys of another type.
    assert_eq!(
        ok::<Vec<Option<String>>>(&mut con, &["MGET", "a", "b", "missing", "list"]).await,
        vec![Some("3".into()), Some("2".into()), None, None]
    );
    assert_eq!(ok::<i64>(&mut con, &["APPEND", "s", "hello"]).await, 5);
    assert_eq!(ok::<i64>(&mut con, &["APPEND", "s", " world"]).await, 11);
    assert_eq!(ok::<String>(&mut con, &["GET", "s"]).await, "hello world");
    assert_eq!(ok::<i64>(&mut con, &["STRLEN", "s"]).await, 11);
    assert_eq!(ok::<i64>(&mut con, &["STRLEN", "missing"]).await, 0);
    assert_err(&mut con, &["APPEND", "list", "x"], WRONGTYPE).await;
    assert_err(&mut con, &["STRLEN", "list"], WRONGTYPE).await;
    // Binary-safe values survive the round trip.
    let bin: Vec<u8> = (0..=255u8).collect();
    redis::cmd("SET")
        .arg("bin")
        .arg(&bin)
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET")
        .arg("bin")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(got, bin);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters() {
    let (server, mut con) = start().await;
    assert_eq!(ok::<i64>(&mut con, &["INCR", "c"]).await, 1);
    assert_eq!(ok::<i64>(&mut con, &["INCRBY", "c", "41"]).await, 42);
    assert_eq!(ok::<i64>(&mut con, &["DECR", "c"]).await, 41);
    assert_eq!(ok::<i64>(&mut con, &["DECRBY", "c", "-9"]).await, 50);
    assert_eq!(ok::<i64>(&mut con, &["DECRBY", "fresh", "5"]).await, -5);
    assert_eq!(ok::<String>(&mut con, &["GET", "c"]).await, "50");

    ok::<()>(&mut con, &["SET", "s", "abc"]).await;
    ok::<()>(&mut con, &["SET", "sp", " 1"]).await;
    ok::<()>(&mut con, &["SET", "f", "1.5"]).await;
    ok::<()>(&mut con, &["LPUSH", "list", "1"]).await;
    for args in [
        &["INCR", "s"][..],
        &["INCR", "sp"],
        &["INCR", "f"],
        &["DECR", "s"],
        &["INCRBY", "c", "x"],
        &["INCRBY", "c", "1.0"],
        &["DECRBY", "c", "99999999999999999999"],
        &["INCRBY", "s", "1"],
    ] {
        assert_err(&mut con, args, NOT_INT).await;
    }
    assert_err(&mut con, &["INCR", "list"], WRONGTYPE).await;
    assert_err(&mut con, &["DECRBY", "list", "1"], WRONGTYPE).await;

    ok::<()>(&mut con, &["SET", "max", "9223372036854775807"]).await;
    ok::<()>(&mut con, &["SET", "min", "-9223372036854775808"]).await;
    assert_err(&mut con, &["INCR", "max"], OVERFLOW).await;
    assert_err(&mut con, &["INCRBY", "max", "1"], OVERFLOW).await;
    assert_err(&mut con, &["DECR", "min"], OVERFLOW).await;
    assert_err(&mut con, &["DECRBY", "min", "1"], OVERFLOW).await;
    assert_err(&mut con, &["INCRBY", "min", "-1"], OVERFLOW).await;
    // An overflow leaves the value alone.
    assert_eq!(
        ok::<String>(&mut con, &["GET", "max"]).await,
        "9223372036854775807"
    );
    assert_eq!(ok::<i64>(&mut con, &["DECR", "max"]).await, i64::MAX - 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_del_exists_type_dbsize_flush() {
    let (server, mut con) = start().await;
    ok::<()>(&mut con, &["MSET", "a", "1", "b", "2", "c", "3"]).await;
    ok::<()>(&mut con, &["LPUSH", "l", "x"]).await;
    ok::<()>(&mut con, &["HSET", "h", "f", "v"]).await;
    ok::<()>(&mut con, &["SADD", "st", "m"]).await;
    ok::<()>(&mut con, &["ZADD", "z", "1", "m"]).await;
    for (key, ty) in [
        ("a", "string"),
        ("l", "list"),
        ("h", "hash"),
        ("st", "set"),
        ("z", "zset"),
        ("nokey", "none"),
    ] {
        assert_eq!(
            ok::<String>(&mut con, &["TYPE", key]).await,
            ty,
            "TYPE {key}"
        );
    }
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 7);
    // EXISTS counts repeats; DEL counts what it removed.
    assert_eq!(
        ok::<i64>(&mut con, &["EXISTS", "a", "a", "nokey", "l"]).await,
        3
    );
    assert_eq!(
        ok::<i64>(&mut con, &["DEL", "a", "b", "nokey", "a"]).await,
        2
    );
    assert_eq!(ok::<i64>(&mut con, &["EXISTS", "a", "b"]).await, 0);
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 5);

    ok::<()>(&mut con, &["SELECT", "1"]).await;
    ok::<()>(&mut con, &["SET", "one", "1"]).await;
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 1);
    assert_eq!(ok::<String>(&mut con, &["FLUSHDB"]).await, "OK");
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 0);
    // FLUSHDB touched only database 1.
    ok::<()>(&mut con, &["SELECT", "0"]).await;
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 5);
    ok::<()>(&mut con, &["SELECT", "2"]).await;
    ok::<()>(&mut con, &["SET", "two", "2"]).await;
    assert_err(&mut con, &["FLUSHDB", "x"], SYNTAX).await;
    assert_err(&mut con, &["FLUSHALL", "x"], SYNTAX).await;
    assert_eq!(ok::<String>(&mut con, &["FLUSHALL", "SYNC"]).await, "OK");
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 0);
    ok::<()>(&mut con, &["SELECT", "0"]).await;
    assert_eq!(ok::<i64>(&mut con, &["DBSIZE"]).await, 0);
    assert_eq!(ok::<String>(&mut con, &["FLUSHDB", "ASYNC"]).await, "OK");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_ttl_persist() {
    let (server, mut con) = start().await;
    assert_eq!(ok::<i64>(&mut con, &["TTL", "nokey"]).await, -2);
    assert_eq!(ok::<i64>(&mut con, &["PTTL", "nokey"]).await, -2);
    assert_eq!(ok::<i64>(&mut con, &["EXPIRE", "nokey", "10"]).await, 0);
    assert_eq!(ok::<i64>(&mut con, &["PERSIST", "nokey"]).await, 0);
    ok::<()>(&mut con, &["SET", "k", "v"]).await;
    assert_eq!(ok::<i64>(&mut con, &["TTL", "k"]).await, -1);
    assert_eq!(ok::<i64>(&mut con, &["PTTL", "k"]).await, -1);
    assert_eq!(ok::<i64>(&mut con, &["PERSIST", "k"]).await, 0);
    assert_eq!(ok::<i64>(&mut con, &["EXPIRE", "k", "100"]).await, 1);
    let ttl = ok::<i64>(&mut con, &["TTL", "k"]).await;
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    assert_eq!(ok::<i64>(&mut con, &["PEXPIRE", "k", "50000"]).await, 1);
    let pttl = ok::<i64>(&mut con, &["PTTL", "k"]).await;
    assert!((48_000..=50_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(ok::<i64>(&mut con, &["PERSIST", "k"]).await, 1);
    assert_eq!(ok::<i64>(&mut con, &["TTL", "k"]).await, -1);
    // A deadline in the past deletes at once.
    assert_eq!(ok::<i64>(&mut con, &["EXPIRE", "k", "-1"]).await, 1);
    assert_eq!(ok::<i64>(&mut con, &["EXISTS", "k"]).await, 0);
    ok::<()>(&mut con, &["SET", "k", "v"]).await;
    assert_eq!(ok::<i64>(&mut con, &["PEXPIRE", "k", "0"]).await, 1);
    assert_eq!(ok::<i64>(&mut con, &["EXISTS", "k"]).await, 0);

    ok::<()>(&mut con, &["SET", "k", "v"]).await;
    assert_err(&mut con, &["EXPIRE", "k", "x"], NOT_INT).await;
    assert_err(&mut con, &["PEXPIRE", "k", "1.5"], NOT_INT).await;
    assert_err(
        &mut con,
        &["EXPIRE", "k", "10", "foo"],
        "ERR Unsupported option foo",
    )
    .await;
    assert_err(
        &mut con,
        &["EXPIRE", "k", "9999999999999999"],
        "ERR invalid expire time in 'expire' command",
    )
    .await;
    assert_err(
        &mut con,
        &["PEXPIRE", "k", "9223372036854775807"],
        "ERR invalid expire time in 'pexpire' command",
    )
    .await;
    assert_eq!(ok::<i64>(&mut con, &["TTL", "k"]).await, -1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_conditions() {
    let (server, mut con) = start().await;
    ok::<()>(&mut con, &["SET", "k", "v"]).await;
    // (command, reply, TTL after): a key without a TTL counts as an
    // infinite one for GT/LT.
    for (args, reply, ttl) in [
        (&["EXPIRE", "k", "100", "XX"][..], 0, -1),
        (&["EXPIRE", "k", "100", "NX"], 1, 100),
        (&["EXPIRE", "k", "50", "NX"], 0, 100),
        (&["EXPIRE", "k", "200", "GT"], 1, 200),
        (&["EXPIRE", "k", "100", "GT"], 0, 200),
        (&["EXPIRE", "k", "50", "LT"], 1, 50),
        (&["PEXPIRE", "k", "5000", "XX", "GT"], 0, 50),
        (&["PERSIST", "k"], 1, -1),
        (&["EXPIRE", "k", "10", "GT"], 0, -1),
        (&["EXPIRE", "k", "10", "LT"], 1, 10),
    ] {
        assert_eq!(ok::<i64>(&mut con, args).await, reply, "{args:?}");
        let got = ok::<i64>(&mut con, &["TTL", "k"]).await;
        assert!(
            got == ttl || (ttl > 0 && got == ttl - 1),
            "TTL after {args:?}: {got}, want {ttl}"
        );
    }
    let nx_xx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_err(&mut con, &["EXPIRE", "k", "10", "NX", "XX"], nx_xx).await;
    assert_err(&mut con, &["EXPIRE", "k", "10", "NX", "GT"], nx_xx).await;
    assert_err(
        &mut con,
        &["PEXPIRE", "k", "10", "GT", "LT"],
        "ERR GT and LT options at the same time are not compatible",
    )
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_expiry_on_access() {
    let (server, mut con) = start().await;
    let sent = Instant::now();
    ok::<()>(&mut con, &["SET", "k", "v", "PX", "50"]).await;
    // The key cannot have expired before its deadline, measured from
    // before the SET was sent. Deadlines are whole Unix milliseconds (as in
    // Redis), so the server's "now" may lag ours by up to 1 ms.
    let gone_at = poll_until("key with PX 50 gone on GET", || {
        let mut con = con.clone();
        async move {
            ok::<Option<String>>(&mut con, &["GET", "k"])
                .await
                .is_none()
        }
    })
    .await;
    assert!(
        gone_at.duration_since(sent) >= Duration::from_millis(49),
        "expired after {:?}, before its 50 ms deadline",
        gone_at.duration_since(sent)
    );
    assert_eq!(ok::<i64>(&mut con, &["EXISTS", "k"]).await, 0);
    assert_eq!(ok::<i64>(&mut con, &["PTTL", "k"]).await, -2);
    assert_eq!(ok::<String>(&mut con, &["TYPE", "k"]).await, "none");
    // Commands that write treat an expired key as absent.
    ok::<()>(&mut con, &["SET", "c", "10", "PX", "50"]).await;
    let sent = Instant::now();
    poll_until("counter with PX 50 gone", || {
        let mut con = con.clone();
        async move { ok::<i64>(&mut con, &["PTTL", "c"]).await == -2 }
    })
    .await;
    assert!(sent.elapsed() < POLL_LIMIT);
    assert_eq!(ok::<i64>(&mut con, &["INCR", "c"]).await, 1);
    assert_eq!(ok::<i64>(&mut con, &["TTL", "c"]).await, -1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_expiry_without_access() {
    let (server, mut con) = start().await;
    for i in 0..200 {
        let key = format!("short:{i}");
        ok::<()>(&mut con, &["SET", &key, "v", "PX", "100"]).await;
    }
    for i in 0..20 {
        let key = format!("kept:{i}");
        ok::<()>(&mut con, &["SET", &key, "v"]).await;
    }
    ok::<()>(&mut con, &["SET", "later", "v", "EX", "1000"]).await;
    // DBSIZE counts keys without checking their deadlines (as in Redis), so
    // it only drops if the server removes expired keys on its own.
    poll_until("expired keys removed without being read", || {
        let mut con = con.clone();
        async move { ok::<i64>(&mut con, &["DBSIZE"]).await == 21 }
    })
    .await;
    assert_eq!(
        ok::<i64>(&mut con, &["EXISTS", "later", "kept:0", "kept:19"]).await,
        3
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_echo_time() {
    let (server, mut con) = start().await;
    assert_eq!(ok::<String>(&mut con, &["PING"]).await, "PONG");
    assert_eq!(
        ok::<String>(&mut con, &["PING", "hello world"]).await,
        "hello world"
    );
    assert_eq!(
        ok::<String>(&mut con, &["ECHO", "x y\r\nz"]).await,
        "x y\r\nz"
    );
    let before = now_ms() / 1000;
    let (secs, micros): (String, String) = ok(&mut con, &["TIME"]).await;
    let after = now_ms() / 1000;
    let secs: u64 = secs.parse().unwrap();
    let micros: u64 = micros.parse().unwrap();
    assert!(
        (before..=after).contains(&secs),
        "TIME {secs} outside {before}..={after}"
    );
    assert!(micros < 1_000_000, "microseconds {micros}");
    server.shutdown().await.unwrap();
}

fn map_get<'a>(pairs: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    pairs.iter().find_map(|(k, v)| {
        let name = match k {
            Value::BulkString(b) => std::str::from_utf8(b).ok()?,
            Value::SimpleString(s) => s.as_str(),
            _ => return None,
        };
        (name == key).then_some(v)
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_protocols_and_setname() {
    let (server, mut con) = start().await;
    let id: i64 = ok(&mut con, &["CLIENT", "ID"]).await;

    // RESP2: a flat array of field/value pairs.
    let Value::Array(flat) = ok::<Value>(&mut con, &["HELLO", "2"]).await else {
        panic!("HELLO 2 is not an array");
    };
    let names: Vec<String> = flat.iter().step_by(2).map(text).collect();
    assert_eq!(
        names,
        [
            "server", "version", "proto", "id", "mode", "role", "modules"
        ]
    );
    assert_eq!(flat[5], Value::Int(2));
    assert_eq!(flat[7], Value::Int(id));

    // RESP3 with SETNAME: a map, and the name is set.
    let hello = ok::<Value>(&mut con, &["HELLO", "3", "SETNAME", "conn-a"]).await;
    let Value::Map(pairs) = hello else {
        panic!("HELLO 3 is not a RESP3 map: {hello:?}");
    };
    assert_eq!(
        map_get(&pairs, "server").map(text).as_deref(),
        Some("redis")
    );
    assert_eq!(
        map_get(&pairs, "version").map(text).as_deref(),
        Some("7.0.15")
    );
    assert_eq!(map_get(&pairs, "proto"), Some(&Value::Int(3)));
    assert_eq!(map_get(&pairs, "id"), Some(&Value::Int(id)));
    assert_eq!(
        map_get(&pairs, "mode").map(text).as_deref(),
        Some("standalone")
    );
    assert_eq!(map_get(&pairs, "role").map(text).as_deref(), Some("master"));
    assert!(matches!(map_get(&pairs, "modules"), Some(Value::Array(m)) if m.is_empty()));
    assert_eq!(
        ok::<String>(&mut con, &["CLIENT", "GETNAME"]).await,
        "conn-a"
    );
    // RESP3 replies of ordinary commands: a null is `_`, not `$-1`.
    assert_eq!(ok::<Value>(&mut con, &["GET", "missing"]).await, Value::Nil);

    assert_err(
        &mut con,
        &["HELLO", "4"],
        "NOPROTO unsupported protocol version",
    )
    .await;
    assert_err(
        &mut con,
        &["HELLO", "1"],
        "NOPROTO unsupported protocol version",
    )
    .await;
    assert_err(
        &mut con,
        &["HELLO", "x"],
        "ERR Protocol version is not an integer or out of range",
    )
    .await;
    assert_err(
        &mut con,
        &["HELLO", "2", "SETNAME", "a b"],
        "ERR Client names cannot contain spaces, newlines or special characters.",
    )
    .await;
    // With no password configured only an unknown user fails to log in.
    assert_err(
        &mut con,
        &["HELLO", "3", "AUTH", "nobody", "nope"],
        WRONGPASS,
    )
    .await;
    // Failed HELLOs changed nothing: still RESP3, same name.
    assert!(matches!(
        ok::<Value>(&mut con, &["HELLO"]).await,
        Value::Map(_)
    ));
    assert_eq!(
        ok::<String>(&mut con, &["CLIENT", "GETNAME"]).await,
        "conn-a"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_setname_getname_id() {
    let (server, mut con) = start().await;
    let mut other = connect(server.addr()).await;
    assert_eq!(
        ok::<Option<String>>(&mut con, &["CLIENT", "GETNAME"]).await,
        None
    );
    assert_eq!(
        ok::<String>(&mut con, &["CLIENT", "SETNAME", "first"]).await,
        "OK"
    );
    assert_eq!(
        ok::<String>(&mut con, &["CLIENT", "GETNAME"]).await,
        "first"
    );
    // Names are per connection.
    assert_eq!(
        ok::<Option<String>>(&mut other, &["CLIENT", "GETNAME"]).await,
        None
    );
    assert_err(
        &mut con,
        &["CLIENT", "SETNAME", "a b"],
        "ERR Client names cannot contain spaces, newlines or special characters.",
    )
    .await;
    assert_eq!(
        ok::<String>(&mut con, &["CLIENT", "GETNAME"]).await,
        "first"
    );
    // An empty name clears it.
    ok::<()>(&mut con, &["CLIENT", "SETNAME", ""]).await;
    assert_eq!(
        ok::<Option<String>>(&mut con, &["CLIENT", "GETNAME"]).await,
        None
    );
    let a: i64 = ok(&mut con, &["CLIENT", "ID"]).await;
    let b: i64 = ok(&mut other, &["CLIENT", "ID"]).await;
    assert!(a > 0 && b > 0 && a != b, "ids {a} and {b}");
    assert_eq!(ok::<i64>(&mut con, &["CLIENT", "ID"]).await, a);
    // A later connection gets a larger id.
    let mut third = connect(server.addr()).await;
    assert!(ok::<i64>(&mut third, &["CLIENT", "ID"]).await > a.max(b));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_closes_the_connection() {
    let (server, mut con) = start().await;
    let mut other = connect(server.addr()).await;
    assert_eq!(ok::<String>(&mut con, &["QUIT"]).await, "OK");
    let after = cmd(&["PING"]).query_async::<String>(&mut con).await;
    assert!(after.is_err(), "PING after QUIT answered {after:?}");
    assert_eq!(ok::<String>(&mut other, &["PING"]).await, "PONG");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_count_and_docs() {
    let (server, mut con) = start().await;
    let count: i64 = ok(&mut con, &["COMMAND", "COUNT"]).await;
    let Value::Array(all) = ok::<Value>(&mut con, &["COMMAND"]).await else {
        panic!("COMMAND is not an array");
    };
    assert_eq!(usize::try_from(count).unwrap(), all.len());
    // Every foundation command is in the table.
    let names: Vec<String> = all
        .iter()
        .map(|c| match c {
            Value::Array(fields) => text(&fields[0]),
            other => panic!("COMMAND entry {other:?}"),
        })
        .collect();
    for want in [
        "select", "get", "set", "mget", "mset", "incr", "decr", "incrby", "decrby", "append",
        "strlen", "del", "exists", "expire", "pexpire", "ttl", "pttl", "persist", "type", "dbsize",
        "flushdb", "flushall", "ping", "echo", "hello", "quit", "command", "client", "config",
        "info", "time", "auth",
    ] {
        assert!(names.iter().any(|n| n == want), "COMMAND lacks {want}");
    }
    // COMMAND INFO get: name, arity 2, first/last/step key 1.
    let Value::Array(info) = ok::<Value>(&mut con, &["COMMAND", "INFO", "get"]).await else {
        panic!("COMMAND INFO is not an array");
    };
    let Value::Array(get) = &info[0] else {
        panic!("COMMAND INFO get: {info:?}")
    };
    assert_eq!(text(&get[0]), "get");
    assert_eq!(get[1], Value::Int(2));
    assert_eq!(&get[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)]);

    // COMMAND DOCS get: a name followed by its documentation map.
    let fields = command_docs_of_get(&mut con).await;
    assert_eq!(
        map_get(&fields, "summary").map(text).as_deref(),
        Some("Get the value of a key")
    );
    assert_eq!(
        map_get(&fields, "since").map(text).as_deref(),
        Some("1.0.0")
    );
    assert_eq!(
        map_get(&fields, "group").map(text).as_deref(),
        Some("string")
    );
    // Unknown names are left out, as in Redis.
    assert_eq!(
        ok::<Value>(&mut con, &["COMMAND", "DOCS", "nosuchcmd"]).await,
        Value::Array(vec![])
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_get_patterns() {
    let (server, mut con) = start().await;
    let pairs: Vec<String> = ok(&mut con, &["CONFIG", "GET", "maxclients"]).await;
    assert_eq!(pairs, ["maxclients", "10000"]);
    let pairs: Vec<String> = ok(&mut con, &["CONFIG", "GET", "databases"]).await;
    assert_eq!(pairs, ["databases", "16"]);
    // Glob patterns match several parameters; every name matches.
    let pairs: Vec<String> = ok(&mut con, &["CONFIG", "GET", "max*"]).await;
    let names: Vec<&String> = pairs.iter().step_by(2).collect();
    assert!(
        names.iter().any(|n| *n == "maxclients"),
        "max* gave {pairs:?}"
    );
    assert!(
        names.iter().all(|n| n.starts_with("max")),
        "max* gave {pairs:?}"
    );
    // Several patterns in one call (Redis 7).
    let pairs: Vec<String> = ok(&mut con, &["CONFIG", "GET", "maxclients", "databases"]).await;
    assert_eq!(pairs.len(), 4, "{pairs:?}");
    let pairs: Vec<String> = ok(&mut con, &["CONFIG", "GET", "no-such-parameter"]).await;
    assert!(pairs.is_empty());
    let pairs: Vec<String> = ok(&mut con, &["CONFIG", "GET", "d?tabases"]).await;
    assert_eq!(pairs, ["databases", "16"]);
    server.shutdown().await.unwrap();
}

fn info_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim_end().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("INFO lacks {name}: {fields:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_sections() {
    let (server, mut con) = start().await;
    let port = server.addr().port().to_string();
    let text: String = ok(&mut con, &["INFO", "server"]).await;
    assert!(text.starts_with("# Server\r\n"), "{text:?}");
    let f = info_fields(&text);
    assert_eq!(field(&f, "redis_version"), "7.0.15");
    assert_eq!(field(&f, "redis_mode"), "standalone");
    assert_eq!(field(&f, "tcp_port"), port);
    if server.is_cairn() {
        assert_eq!(field(&f, "process_id"), std::process::id().to_string());
    }
    for name in [
        "os",
        "arch_bits",
        "run_id",
        "uptime_in_seconds",
        "uptime_in_days",
        "hz",
    ] {
        field(&f, name);
    }
    assert!(
        !text.contains("# Clients"),
        "INFO server returned more sections"
    );

    let _second = connect(server.addr()).await;
    let text: String = ok(&mut con, &["INFO", "clients"]).await;
    assert!(text.starts_with("# Clients\r\n"), "{text:?}");
    let f = info_fields(&text);
    assert_eq!(field(&f, "connected_clients"), "2");
    assert_eq!(field(&f, "maxclients"), "10000");
    assert_eq!(field(&f, "blocked_clients"), "0");

    ok::<()>(&mut con, &["SET", "a", "1"]).await;
    ok::<()>(&mut con, &["SET", "b", "1", "EX", "1000"]).await;
    ok::<()>(&mut con, &["SELECT", "3"]).await;
    ok::<()>(&mut con, &["SET", "c", "1"]).await;
    let text: String = ok(&mut con, &["INFO", "keyspace"]).await;
    assert!(text.starts_with("# Keyspace\r\n"), "{text:?}");
    let f = info_fields(&text);
    let db0 = field(&f, "db0");
    assert!(db0.starts_with("keys=2,expires=1,avg_ttl="), "db0:{db0}");
    assert_eq!(field(&f, "db3"), "keys=1,expires=0,avg_ttl=0");
    // Empty databases are not listed.
    assert!(f.iter().all(|(k, _)| k != "db1"), "{f:?}");

    // Plain INFO has all three sections.
    let text: String = ok(&mut con, &["INFO"]).await;
    for section in ["# Server", "# Clients", "# Keyspace"] {
        assert!(text.contains(section), "INFO lacks {section}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_requirepass() {
    let server = start_with(Config {
        requirepass: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let addr = server.addr();
    let mut con = connect(addr).await;
    assert_err(&mut con, &["GET", "k"], "NOAUTH Authentication required.").await;
    assert_err(&mut con, &["PING"], "NOAUTH Authentication required.").await;
    assert_err(
        &mut con,
        &["SET", "k", "v"],
        "NOAUTH Authentication required.",
    )
    .await;
    assert_err(&mut con, &["AUTH", "wrong"], WRONGPASS).await;
    assert_err(&mut con, &["AUTH", "default", "wrong"], WRONGPASS).await;
    assert_err(&mut con, &["AUTH", "a", "b", "c"], SYNTAX).await;
    assert_eq!(ok::<String>(&mut con, &["AUTH", "s3cret"]).await, "OK");
    ok::<()>(&mut con, &["SET", "k", "v"]).await;
    assert_eq!(ok::<String>(&mut con, &["GET", "k"]).await, "v");

    // AUTH user pass, and HELLO AUTH authenticate too.
    let mut two = connect(addr).await;
    assert_eq!(
        ok::<String>(&mut two, &["AUTH", "default", "s3cret"]).await,
        "OK"
    );
    assert_eq!(ok::<String>(&mut two, &["GET", "k"]).await, "v");
    let mut three = connect(addr).await;
    let hello = ok::<Value>(
        &mut three,
        &["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "x"],
    )
    .await;
    assert!(matches!(hello, Value::Map(_)), "{hello:?}");
    assert_eq!(ok::<String>(&mut three, &["CLIENT", "GETNAME"]).await, "x");
    let mut four = connect(addr).await;
    assert_err(
        &mut four,
        &["HELLO", "2", "AUTH", "default", "nope"],
        WRONGPASS,
    )
    .await;
    assert_err(&mut four, &["GET", "k"], "NOAUTH Authentication required.").await;

    // The redis crate logs in from the URL.
    let client = redis::Client::open(format!("redis://:s3cret@{addr}/")).unwrap();
    let mut url = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(ok::<String>(&mut url, &["GET", "k"]).await, "v");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_without_requirepass() {
    let (server, mut con) = start().await;
    assert_err(
        &mut con,
        &["AUTH", "x"],
        "ERR AUTH <password> called without any password configured for the default user. Are you \
         sure your configuration is correct?",
    )
    .await;
    assert_err(&mut con, &["AUTH", "a", "b"], WRONGPASS).await;
    // The default user has no password: any password logs it in.
    assert_eq!(
        ok::<String>(&mut con, &["AUTH", "default", "anything"]).await,
        "OK"
    );
    assert_eq!(ok::<String>(&mut con, &["PING"]).await, "PONG");
    server.shutdown().await.unwrap();
}

/// `COMMAND DOCS get` as field/value pairs (RESP2 flat array or RESP3 map).
async fn command_docs_of_get(con: &mut MultiplexedConnection) -> Vec<(Value, Value)> {
    let docs = ok::<Value>(con, &["COMMAND", "DOCS", "get"]).await;
    let doc = match &docs {
        Value::Array(v) if v.len() == 2 => {
            assert_eq!(text(&v[0]), "get");
            v[1].clone()
        }
        Value::Map(pairs) if pairs.len() == 1 => {
            assert_eq!(text(&pairs[0].0), "get");
            pairs[0].1.clone()
        }
        other => panic!("COMMAND DOCS get: {other:?}"),
    };
    match doc {
        Value::Array(flat) => flat
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        Value::Map(pairs) => pairs,
        other => panic!("docs of get: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_docs_lists_arguments() {
    let (server, mut con) = start().await;
    let fields = command_docs_of_get(&mut con).await;
    assert_eq!(
        map_get(&fields, "complexity").map(text).as_deref(),
        Some("O(1)")
    );
    // Redis 7.0.15: arguments => [[name key, type key, key_spec_index 0]].
    let Some(Value::Array(args)) = map_get(&fields, "arguments") else {
        panic!("no arguments in {fields:?}");
    };
    assert_eq!(args.len(), 1, "{args:?}");
    let arg: Vec<(Value, Value)> = match &args[0] {
        Value::Array(flat) => flat
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        Value::Map(pairs) => pairs.clone(),
        other => panic!("argument {other:?}"),
    };
    assert_eq!(map_get(&arg, "name").map(text).as_deref(), Some("key"));
    assert_eq!(map_get(&arg, "type").map(text).as_deref(), Some("key"));
    assert_eq!(map_get(&arg, "key_spec_index"), Some(&Value::Int(0)));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_before_auth_noauth_text() {
    let server = start_with(Config {
        requirepass: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let mut con = connect(server.addr()).await;
    assert_err(
        &mut con,
        &["HELLO", "3"],
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO \
         AUTH <user> <pass> option can be used to authenticate the client and select the RESP \
         protocol version at the same time",
    )
    .await;
    server.shutdown().await.unwrap();
}
