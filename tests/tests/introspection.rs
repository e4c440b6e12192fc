//! Introspection and statistics compared with a real Redis 7.0: the same
//! commands sent to cairn and to `redis-server` over raw RESP, then the
//! deterministic parts of `INFO` compared (counts, not timings):
//! `commandstats` calls / rejected / failed per command and subcommand,
//! `errorstats`, keyspace hits and misses, commands processed, error
//! replies, network bytes, the `latencystats` lines and their
//! percentiles' labels, and `CONFIG RESETSTAT`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cairn_tests::cairn::CairnServer;
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};

fn info_text(r: &Reply) -> anyhow::Result<String> {
    match r {
        Reply::Bulk(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Reply::Verbatim(_, b) => Ok(String::from_utf8_lossy(b).into_owned()),
        other => bail!("INFO answered {other:?}"),
    }
}

async fn info(conn: &mut Conn, section: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let text = info_text(&conn.call(&["INFO", section]).await?)?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// `cmdstat_x:calls=1,usec=5,...` without the timings.
fn counts_only(stats: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    stats
        .iter()
        .map(|(k, v)| {
            let kept: Vec<&str> = v.split(',').filter(|f| !f.starts_with("usec")).collect();
            (k.clone(), kept.join(","))
        })
        .collect()
}

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// Commands whose statistics are compared: reads that hit and miss on
/// every type, writes (no hits or misses), errors of every origin
/// (arity, unknown command and subcommand, wrong type, not an integer),
/// a transaction (its commands counted when EXEC runs them) and an
/// aborted one.
fn workload() -> Vec<Vec<String>> {
    let mut w = vec![
        cmd(&["SET", "s", "v"]),
        cmd(&["SET", "n", "10"]),
        cmd(&["RPUSH", "l", "a", "b"]),
        cmd(&["HSET", "h", "f", "v"]),
        cmd(&["SADD", "set", "m"]),
        cmd(&["ZADD", "z", "1", "m"]),
        cmd(&["GET", "s"]),
        cmd(&["GET", "missing"]),
        cmd(&["MGET", "s", "n", "missing", "l"]),
        cmd(&["EXISTS", "s", "missing", "h"]),
        cmd(&["TYPE", "l"]),
        cmd(&["TYPE", "missing"]),
        cmd(&["STRLEN", "s"]),
        cmd(&["GETRANGE", "s", "0", "-1"]),
        cmd(&["TTL", "s"]),
        cmd(&["PTTL", "missing"]),
        cmd(&["LRANGE", "l", "0", "-1"]),
        cmd(&["LLEN", "missing"]),
        cmd(&["LINDEX", "l", "0"]),
        cmd(&["HGET", "h", "f"]),
        cmd(&["HGET", "missing", "f"]),
        cmd(&["HGETALL", "h"]),
        cmd(&["HEXISTS", "h", "g"]),
        cmd(&["SMEMBERS", "set"]),
        cmd(&["SISMEMBER", "missing", "m"]),
        cmd(&["SCARD", "set"]),
        cmd(&["ZSCORE", "z", "m"]),
        cmd(&["ZRANGE", "z", "0", "-1"]),
        cmd(&["ZCARD", "missing"]),
        cmd(&["OBJECT", "ENCODING", "s"]),
        cmd(&["OBJECT", "ENCODING", "missing"]),
        cmd(&["DBSIZE"]),
        cmd(&["INCR", "n"]),
        cmd(&["INCR", "s"]),
        cmd(&["LPUSH", "s", "x"]),
        cmd(&["GET", "l"]),
        cmd(&["GET"]),
        cmd(&["NOSUCHCOMMAND", "x"]),
        cmd(&["CONFIG", "NOSUCH"]),
        cmd(&["CONFIG", "GET"]),
        cmd(&["CONFIG", "GET", "maxmemory"]),
        cmd(&["OBJECT", "HELP"]),
        cmd(&["DEL", "missing", "s"]),
        cmd(&["MULTI"]),
        cmd(&["GET", "h"]),
        cmd(&["INCR", "n"]),
        cmd(&["EXEC"]),
        cmd(&["MULTI"]),
        cmd(&["GET", "a", "b"]),
        cmd(&["EXEC"]),
        cmd(&["SELECT", "99"]),
        cmd(&["PING"]),
        cmd(&["ECHO", "x"]),
    ];
    for i in 0..5 {
        w.push(cmd(&["SET", &format!("k{i}"), "v"]));
        w.push(cmd(&["GET", &format!("k{}", i * 2)]));
    }
    w
}

async fn compare_info(
    r: &mut Conn,
    c: &mut Conn,
    section: &str,
    filter: impl Fn(&str) -> bool,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let want = info(r, section).await?;
    let got = info(c, section).await?;
    let keys: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    for key in keys {
        if !filter(key) {
            continue;
        }
        let (w, g) = (want.get(key), got.get(key));
        if w != g {
            diffs.push(format!("INFO {section} {key}: redis {w:?}, cairn {g:?}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_statistics_count_as_redis_does() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut r = Conn::connect(oracle.addr()).await?;
    let mut c = Conn::connect(cairn.addr()).await?;
    let mut diffs = Vec::new();
    let mut n = 0usize;
    for conn in [&mut r, &mut c] {
        conn.call(&["FLUSHALL"]).await?;
        conn.call(&["CONFIG", "RESETSTAT"]).await?;
    }
    for command in workload() {
        n += 1;
        let want = r.call(&command).await?;
        let got = c.call(&command).await?;
        if want != got {
            diffs.push(format!("{command:?}: redis {want}, cairn {got}"));
        }
    }
    // Counts only: the times differ by nature.
    let want = counts_only(&info(&mut r, "commandstats").await?);
    let got = counts_only(&info(&mut c, "commandstats").await?);
    if want != got {
        diffs.push(format!("commandstats:\n  redis {want:?}\n  cairn {got:?}"));
    }
    compare_info(&mut r, &mut c, "errorstats", |_| true, &mut diffs).await?;
    compare_info(
        &mut r,
        &mut c,
        "stats",
        |k| {
            [
                "keyspace_hits",
                "keyspace_misses",
                "total_commands_processed",
                "total_error_replies",
                // Output bytes differ: the INFO replies above hold timings.
                "total_net_input_bytes",
            ]
            .contains(&k)
        },
        &mut diffs,
    )
    .await?;
    // The same commands have latency lines, with the configured labels.
    let labels = |m: &BTreeMap<String, String>| -> BTreeMap<String, Vec<String>> {
        m.iter()
            .map(|(k, v)| {
                let l = v
                    .split(',')
                    .filter_map(|f| f.split_once('=').map(|(a, _)| a.to_owned()))
                    .collect();
                (k.clone(), l)
            })
            .collect()
    };
    for conn in [&mut r, &mut c] {
        let ok = conn
            .call(&[
                "CONFIG",
                "SET",
                "latency-tracking-info-percentiles",
                "1.5 99.999 50",
            ])
            .await?;
        if ok.is_error() {
            bail!("CONFIG SET latency-tracking-info-percentiles: {ok}");
        }
    }
    let want = info(&mut r, "latencystats").await?;
    let got = info(&mut c, "latencystats").await?;
    if labels(&want) != labels(&got) {
        diffs.push(format!("latencystats:\n  redis {want:?}\n  cairn {got:?}"));
    }
    for (k, v) in &got {
        for field in v.split(',') {
            let value = field.split_once('=').map(|(_, v)| v).unwrap_or("");
            if value.parse::<f64>().is_err() || value.split('.').nth(1).map(str::len) != Some(3) {
                diffs.push(format!("latencystats {k}: value {field:?} is not %.3f"));
            }
        }
    }
    for args in [
        ["CONFIG", "GET", "latency-tracking-info-percentiles", ""],
        [
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "50 abc",
        ],
        ["CONFIG", "SET", "latency-tracking-info-percentiles", "101"],
    ] {
        let args: Vec<&str> = args.iter().copied().filter(|a| !a.is_empty()).collect();
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if want != got {
            diffs.push(format!("{args:?}: redis {want}, cairn {got}"));
        }
    }
    // latency-tracking off: no new histograms.
    for conn in [&mut r, &mut c] {
        conn.call(&["CONFIG", "RESETSTAT"]).await?;
        conn.call(&["CONFIG", "SET", "latency-tracking", "no"])
            .await?;
        conn.call(&["SET", "a", "b"]).await?;
    }
    let want = info(&mut r, "latencystats").await?;
    let got = info(&mut c, "latencystats").await?;
    if labels(&want) != labels(&got) {
        diffs.push(format!(
            "latencystats off:\n  redis {want:?}\n  cairn {got:?}"
        ));
    }
    // RESETSTAT then exact network byte counts on one connection.
    for conn in [&mut r, &mut c] {
        conn.call(&["CONFIG", "SET", "latency-tracking", "yes"])
            .await?;
        conn.call(&["CONFIG", "RESETSTAT"]).await?;
        conn.call(&["PING"]).await?;
        conn.call(&["SET", "key", "a-longer-value"]).await?;
    }
    compare_info(
        &mut r,
        &mut c,
        "stats",
        |k| k.starts_with("total_net_") || k == "total_commands_processed",
        &mut diffs,
    )
    .await?;
    let want = counts_only(&info(&mut r, "commandstats").await?);
    let got = counts_only(&info(&mut c, "commandstats").await?);
    if want != got {
        diffs.push(format!(
            "commandstats after RESETSTAT:\n  redis {want:?}\n  cairn {got:?}"
        ));
    }
    println!("introspection: {n} commands, {} differences", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    cairn.shutdown().await?;
    if !diffs.is_empty() {
        bail!("{} differences from Redis", diffs.len());
    }
    Ok(())
}

/// `instantaneous_ops_per_sec` and the bandwidth rates follow the load
/// within the 1.6 s the 16 samples of 100 ms cover, and fall back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instantaneous_metrics_follow_the_load() -> anyhow::Result<()> {
    let cairn = CairnServer::start().await?;
    let mut c = Conn::connect(cairn.addr()).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let rate = |m: &BTreeMap<String, String>, k: &str| -> f64 {
        m.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    loop {
        for _ in 0..200 {
            c.call(&["SET", "k", "some value"]).await?;
        }
        let stats = info(&mut c, "stats").await?;
        if rate(&stats, "instantaneous_ops_per_sec") > 0.0
            && rate(&stats, "instantaneous_input_kbps") > 0.0
            && rate(&stats, "instantaneous_output_kbps") > 0.0
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("rates still 0 under load: {stats:?}");
        }
    }
    // Idle (one INFO per poll): the mean of the samples falls to a few ops.
    let mut idle = Conn::connect(cairn.addr()).await?;
    loop {
        let stats = info(&mut idle, "stats").await?;
        let ops = rate(&stats, "instantaneous_ops_per_sec");
        if ops < 50.0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("ops/s never fell: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cairn.shutdown().await.context("shutdown")
}

/// A slow log entry without what differs by nature (id, time, duration,
/// client port): the arguments and the client name.
fn slowlog_shape(r: &Reply) -> Vec<Reply> {
    r.elements()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let f = e.elements().unwrap_or_default();
            Reply::Array(vec![
                f.get(3).cloned().unwrap_or(Reply::Null),
                f.get(5).cloned().unwrap_or(Reply::Null),
            ])
        })
        .collect()
}

/// SLOWLOG and LATENCY compared with Redis: entries (arguments truncated
/// to 32 / 128 bytes, passwords redacted, EXEC left out), lengths, limits,
/// errors and help; latency events from a DEBUG SLEEP that holds the
/// server, as in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_and_latency_as_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut r = Conn::connect(oracle.addr()).await?;
    let mut c = Conn::connect(cairn.addr()).await?;
    let mut diffs = Vec::new();
    let long = "x".repeat(200);
    let mut many = vec!["RPUSH".to_owned(), "l".to_owned()];
    many.extend((1..=40).map(|i| i.to_string()));
    let setup: Vec<Vec<String>> = vec![
        cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        cmd(&["SLOWLOG", "RESET"]),
        cmd(&["CLIENT", "SETNAME", "nm"]),
        cmd(&["SET", "k", &long]),
        many,
        cmd(&["AUTH", "secret"]),
        cmd(&["AUTH", "user", "secret"]),
        cmd(&["HELLO", "2", "AUTH", "default", "pw"]),
        cmd(&["CONFIG", "SET", "requirepass", ""]),
        cmd(&["MULTI"]),
        cmd(&["INCR", "n"]),
        cmd(&["EXEC"]),
    ];
    let checks: Vec<Vec<String>> = vec![
        cmd(&["SLOWLOG", "LEN"]),
        cmd(&["SLOWLOG", "GET", "-2"]),
        cmd(&["SLOWLOG", "GET", "abc"]),
        cmd(&["SLOWLOG", "GET", "0"]),
        cmd(&["SLOWLOG", "GET", "1", "2"]),
        cmd(&["SLOWLOG", "HELP"]),
        cmd(&["SLOWLOG", "NOSUCH"]),
        cmd(&["SLOWLOG"]),
        cmd(&["LATENCY", "HELP"]),
        cmd(&["LATENCY", "DOCTOR"]),
        cmd(&["LATENCY", "LATEST"]),
        cmd(&["LATENCY", "HISTORY", "command"]),
        cmd(&["LATENCY", "RESET"]),
        cmd(&["LATENCY", "RESET", "nosuch"]),
        cmd(&["LATENCY", "HISTOGRAM", "nosuch"]),
        cmd(&["LATENCY", "HISTORY"]),
        cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]),
        cmd(&["SLOWLOG", "RESET"]),
        cmd(&["SET", "after", "reset"]),
        cmd(&["SLOWLOG", "LEN"]),
    ];
    for command in &setup {
        let want = r.call(command).await?;
        let got = c.call(command).await?;
        // HELLO's reply holds the client id, which differs.
        if want != got && command[0] != "HELLO" {
            diffs.push(format!("{command:?}: redis {want}, cairn {got}"));
        }
    }
    let want = r.call(&["SLOWLOG", "GET", "-1"]).await?;
    let got = c.call(&["SLOWLOG", "GET", "-1"]).await?;
    if slowlog_shape(&want) != slowlog_shape(&got) {
        diffs.push(format!("SLOWLOG GET -1:\n  redis {want}\n  cairn {got}"));
    }
    // Ids count down from the newest by one; the peer is the client's.
    let ids: Vec<i64> = got
        .elements()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.elements()?.first()?.as_int())
        .collect();
    if ids.windows(2).any(|w| w[0] != w[1] + 1) {
        diffs.push(format!("slowlog ids {ids:?}"));
    }
    for command in &checks {
        let want = r.call(command).await?;
        let got = c.call(command).await?;
        if want != got {
            diffs.push(format!("{command:?}: redis {want}, cairn {got}"));
        }
    }
    // slowlog-max-len trims at the next entry.
    for conn in [&mut r, &mut c] {
        conn.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])
            .await?;
        conn.call(&["CONFIG", "SET", "slowlog-max-len", "2"])
            .await?;
        conn.call(&["PING"]).await?;
    }
    let want = r.call(&["SLOWLOG", "GET"]).await?;
    let got = c.call(&["SLOWLOG", "GET"]).await?;
    if slowlog_shape(&want) != slowlog_shape(&got) {
        diffs.push(format!("max-len 2:\n  redis {want}\n  cairn {got}"));
    }
    // A 20 ms DEBUG SLEEP is a `command` latency event past a 10 ms
    // threshold on both; events have the same names and fields.
    for conn in [&mut r, &mut c] {
        conn.call(&["CONFIG", "SET", "latency-monitor-threshold", "10"])
            .await?;
        conn.call(&["LATENCY", "RESET"]).await?;
        conn.call(&["DEBUG", "SLEEP", "0.02"]).await?;
    }
    let shape = |r: &Reply| -> Vec<(Option<Vec<u8>>, bool)> {
        r.elements()
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let f = e.elements().unwrap_or_default();
                let name = f.first().and_then(Reply::as_bytes).map(<[u8]>::to_vec);
                let ok =
                    f.len() == 4 && f.get(2).and_then(Reply::as_int).is_some_and(|ms| ms >= 10);
                (name, ok)
            })
            .collect()
    };
    let want = r.call(&["LATENCY", "LATEST"]).await?;
    let got = c.call(&["LATENCY", "LATEST"]).await?;
    if shape(&want) != shape(&got) || shape(&got).is_empty() {
        diffs.push(format!("LATENCY LATEST:\n  redis {want}\n  cairn {got}"));
    }
    let hist = c.call(&["LATENCY", "HISTORY", "command"]).await?;
    if hist.elements().map(<[Reply]>::len) != Some(1) {
        diffs.push(format!("LATENCY HISTORY command: {hist}"));
    }
    // LATENCY GRAPH: Redis' sparkline of the one sample, byte for byte
    // once the milliseconds and the seconds-ago label (timings) are
    // masked; an event without samples is an error on both.
    let masked = |r: &Reply| -> String {
        let text = info_text(r).unwrap_or_else(|_| format!("{r}"));
        text.chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect::<String>()
            .replace("99", "9")
            .replace("99", "9")
    };
    for event in ["command", "nosuch"] {
        let args = ["LATENCY", "GRAPH", event];
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if masked(&want) != masked(&got) {
            diffs.push(format!("{args:?}:\n  redis {want}\n  cairn {got}"));
        }
    }
    for args in [vec!["LATENCY", "GRAPH"], vec!["LATENCY", "GRAPH", "a", "b"]] {
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if want != got {
            diffs.push(format!("{args:?}: redis {want}, cairn {got}"));
        }
    }
    let doctor_start = |r: &Reply| -> String {
        let text = info_text(r).unwrap_or_default();
        text.split(" (average")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let want = r.call(&["LATENCY", "DOCTOR"]).await?;
    let got = c.call(&["LATENCY", "DOCTOR"]).await?;
    if doctor_start(&want) != doctor_start(&got) {
        diffs.push(format!("LATENCY DOCTOR:\n  redis {want}\n  cairn {got}"));
    }
    // LATENCY HISTOGRAM: the same commands and call counts.
    for conn in [&mut r, &mut c] {
        conn.call(&["CONFIG", "RESETSTAT"]).await?;
        for _ in 0..3 {
            conn.call(&["SET", "a", "b"]).await?;
        }
        conn.call(&["GET", "a"]).await?;
    }
    let calls = |r: &Reply| -> Vec<(Reply, Option<Reply>)> {
        let items = r.elements().unwrap_or_default();
        items
            .chunks(2)
            .map(|p| {
                let body = p.get(1).and_then(Reply::elements).unwrap_or_default();
                (p[0].clone(), body.get(1).cloned())
            })
            .collect()
    };
    let args = ["LATENCY", "HISTOGRAM", "set", "get", "config"];
    let want = r.call(&args).await?;
    let got = c.call(&args).await?;
    if calls(&want) != calls(&got) {
        diffs.push(format!("LATENCY HISTOGRAM:\n  redis {want}\n  cairn {got}"));
    }
    println!("slowlog/latency: {} differences", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    cairn.shutdown().await?;
    if !diffs.is_empty() {
        bail!("{} differences from Redis", diffs.len());
    }
    Ok(())
}

/// Whether a reply arrives within `within` (false: still waiting).
async fn replies_within(conn: &mut Conn, within: Duration) -> anyhow::Result<Option<Reply>> {
    match tokio::time::timeout(within, conn.read_reply()).await {
        Ok(r) => Ok(Some(r?)),
        Err(_) => Ok(None),
    }
}

/// CLIENT PAUSE WRITE holds writes and PUBLISH (Redis' may-replicate
/// commands) but not reads; ALL holds everything; CLIENT UNPAUSE and the
/// deadline release the held commands in order; errors as Redis'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_holds_commands_as_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut diffs = Vec::new();
    for args in [
        vec!["CLIENT", "PAUSE", "abc"],
        vec!["CLIENT", "PAUSE", "-1"],
        vec!["CLIENT", "PAUSE", "10", "bad"],
        vec!["CLIENT", "PAUSE", "abc", "bad"],
        vec!["CLIENT", "PAUSE", "10", "write", "extra"],
        vec!["CLIENT", "PAUSE"],
        vec!["CLIENT", "UNPAUSE", "x"],
        vec!["CLIENT", "PAUSE", "0"],
        vec!["CLIENT", "UNPAUSE"],
    ] {
        let mut r = Conn::connect(oracle.addr()).await?;
        let mut c = Conn::connect(cairn.addr()).await?;
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if want != got {
            diffs.push(format!("{args:?}: redis {want}, cairn {got}"));
        }
    }
    let quiet = Duration::from_millis(300);
    for addr in [oracle.addr(), cairn.addr()] {
        let who = if addr == cairn.addr() {
            "cairn"
        } else {
            "redis"
        };
        let mut admin = Conn::connect(addr).await?;
        let mut writer = Conn::connect(addr).await?;
        let mut reader = Conn::connect(addr).await?;
        admin.call(&["SET", "k", "v0"]).await?;
        admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).await?;
        writer.send(&["SET", "k", "v1"]).await?;
        writer.send(&["PUBLISH", "ch", "m"]).await?;
        if let Some(r) = replies_within(&mut writer, quiet).await? {
            diffs.push(format!("{who}: a write ran while paused: {r}"));
        }
        // Reads go on, and see the value from before the held write.
        let got = reader.call(&["GET", "k"]).await?;
        if got != Reply::Bulk(b"v0".to_vec()) {
            diffs.push(format!("{who}: GET while paused: {got}"));
        }
        admin.call(&["CLIENT", "UNPAUSE"]).await?;
        let set = writer.read_reply().await?;
        let publish = writer.read_reply().await?;
        if set != Reply::Simple("OK".into()) || publish != Reply::Integer(0) {
            diffs.push(format!("{who}: after UNPAUSE: {set} {publish}"));
        }
        // ALL holds reads too, until the deadline.
        admin.call(&["CLIENT", "PAUSE", "500", "ALL"]).await?;
        let started = Instant::now();
        let got = reader.call(&["GET", "k"]).await?;
        if got != Reply::Bulk(b"v1".to_vec()) || started.elapsed() < Duration::from_millis(400) {
            diffs.push(format!(
                "{who}: GET under PAUSE ALL answered {got} after {:?}",
                started.elapsed()
            ));
        }
    }
    println!("client pause: {} differences", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    cairn.shutdown().await?;
    if !diffs.is_empty() {
        bail!("{} differences from Redis", diffs.len());
    }
    Ok(())
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS / HELP and WAIT compared with Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getkeys_and_wait_as_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut r = Conn::connect(oracle.addr()).await?;
    let mut c = Conn::connect(cairn.addr()).await?;
    let calls: &[&[&str]] = &[
        &["get", "k"],
        &["set", "k", "v"],
        &["set", "k", "v", "EX", "10"],
        &["set", "k", "v", "get"],
        &["bitfield", "k", "GET", "u8", "0"],
        &["bitfield", "k", "GET", "u8", "0", "SET", "u8", "0", "1"],
        &["bitfield", "k", "OVERFLOW", "SAT", "GET", "u8", "0"],
        &["mset", "a", "1", "b", "2"],
        &["mset", "a", "1", "b"],
        &["mget", "a", "b", "c"],
        &["del", "a", "b"],
        &["lmove", "s", "d", "LEFT", "RIGHT"],
        &["blpop", "a", "b", "0"],
        &["zunionstore", "d", "2", "a", "b"],
        &["zunionstore", "d", "5", "a", "b"],
        &["zunionstore", "d", "x", "a", "b"],
        &["zunion", "2", "a", "b"],
        &["eval", "return 1", "0"],
        &["eval", "return 1", "2", "a", "b", "c"],
        &["eval", "return 1", "abc"],
        &["fcall", "f", "1", "k"],
        &["lmpop", "2", "a", "b", "LEFT"],
        &["zmpop", "1", "a", "MIN"],
        &["bitop", "AND", "d", "a", "b"],
        &["rename", "a", "b"],
        &["object", "encoding", "k"],
        &["pfmerge", "d", "a", "b"],
        &["config", "get", "x"],
        &["config", "nosuch", "x"],
        &["ping", "x"],
        &["nosuch", "x"],
        &["get", "a", "b"],
        &["set", "a"],
        &["smove", "a", "b", "m"],
        &["hset", "h", "f", "v"],
        &["getex", "k", "PERSIST"],
        &["getdel", "k"],
        &["lcs", "a", "b"],
        &["copy", "a", "b", "DB", "1"],
        // Movable keys: what the key specs cannot say, Redis asks the
        // command's own key finder (`sortGetKeys`, `genericGetKeys`, ...).
        &["sort", "k"],
        &["sort", "k", "STORE", "d"],
        &["sort", "k", "STORE", "a", "STORE", "b"],
        &[
            "sort", "k", "BY", "w_*", "GET", "#", "GET", "h_*->f", "STORE", "d",
        ],
        &[
            "sort", "k", "BY", "store", "GET", "store", "LIMIT", "store", "store",
        ],
        &["sort", "k", "ALPHA", "STORE"],
        &["sort", "k", "LIMIT", "0", "1", "STORE", "d"],
        &["sort", "k", "STORE"],
        &["sort_ro", "k", "BY", "x", "GET", "y"],
        &["sort_ro", "k", "STORE", "d"],
        &["georadius", "k", "0", "0", "1", "km"],
        &["georadius", "k", "0", "0", "1", "km", "STORE", "a"],
        &[
            "georadius",
            "k",
            "0",
            "0",
            "1",
            "km",
            "STORE",
            "a",
            "STOREDIST",
            "b",
        ],
        &[
            "georadius",
            "k",
            "0",
            "0",
            "1",
            "km",
            "STOREDIST",
            "b",
            "STORE",
            "a",
        ],
        &["georadius", "k", "0", "0", "1", "STORE", "a"],
        &["georadius", "k", "0", "0", "1", "km", "STORE"],
        &[
            "georadius",
            "k",
            "0",
            "0",
            "1",
            "km",
            "ASC",
            "COUNT",
            "3",
            "STORE",
            "d",
        ],
        &["georadiusbymember", "k", "m", "1", "km", "STORE", "d"],
        &["georadiusbymember", "k", "m", "1", "km", "STORE"],
        &["georadius_ro", "k", "0", "0", "1", "km", "STORE", "a"],
        &["zunionstore", "d", "0", "a"],
        &["zunionstore", "d", "-1", "a"],
        &["zunionstore", "d", "2x", "a", "b"],
        &["zunionstore", "d", " 1", "a"],
        &["zinterstore", "d", "1", "a", "WEIGHTS", "2"],
        &["zdiffstore", "d", "2", "a", "b"],
        &["zunion", "0", "a"],
        &["zunion", "3", "a", "b"],
        &["zunion", "1.5", "a", "b"],
        &["zinter", "1", "a"],
        &["zdiff", "5", "a", "b"],
        &["zintercard", "2", "a", "b", "LIMIT", "1"],
        &["zintercard", "0", "a"],
        &["eval", "s", "3", "a"],
        &["eval", "s", "-1"],
        &["eval", "s", "1z", "a", "b"],
        &["evalsha", "s", "1", "a"],
        &["eval_ro", "s", "1", "a", "b"],
        &["evalsha_ro", "s", "2", "a", "b"],
        &["fcall", "f", "2", "a", "b", "c"],
        &["fcall", "f", "0"],
        &["fcall", "f", "3", "a"],
        &["fcall_ro", "f", "1", "a"],
        &["fcall_ro", "f", "1y", "a"],
        &["xread", "STREAMS", "a", "b", "0", "0"],
        &["xread", "COUNT", "1", "STREAMS", "a", "0"],
        &["xread", "STREAMS", "a", "b", "0"],
        &["xread", "BLOCK", "0", "STREAMS", "a", "0"],
        &["xread", "count", "1", "streams", "a", "0"],
        &["xread", "COUNT", "1", "STREAMS", "a"],
        &["xread", "COUNT", "STREAMS", "a"],
        &["xread", "a", "b", "c"],
        &["xread", "STREAMS", "STREAMS", "0"],
        &["xreadgroup", "GROUP", "g", "c", "STREAMS", "a", "0"],
        &[
            "xreadgroup",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "1",
            "NOACK",
            "STREAMS",
            "a",
            "b",
            "0",
            "0",
        ],
        &["xreadgroup", "GROUP", "streams", "c", "STREAMS", "a", "0"],
        &["lmpop", "0", "a", "LEFT"],
        &["lmpop", "3", "a", "LEFT"],
        &["lmpop", "1a", "a", "LEFT"],
        &["blmpop", "0", "2", "a", "b", "LEFT"],
        &["blmpop", "0", "0", "a", "LEFT"],
        &["blmpop", "0", "1 ", "a", "LEFT"],
        &["zmpop", "2", "a", "MIN"],
        &["bzmpop", "1", "1", "a", "MIN"],
        &["bzmpop", "1", "+1", "a", "MIN"],
        &["sintercard", "2", "a", "b"],
        &["sintercard", "0", "a"],
        &["sintercard", "3", "a", "b"],
        &["sintercard", "1", "a", "LIMIT", "3"],
        &["sintercard", "01x", "a"],
    ];
    let mut diffs = Vec::new();
    let mut n = 0;
    for with_flags in ["GETKEYS", "GETKEYSANDFLAGS"] {
        for call in calls {
            let mut args = vec!["COMMAND", with_flags];
            args.extend_from_slice(call);
            n += 1;
            let want = r.call(&args).await?;
            let got = c.call(&args).await?;
            if want != got {
                diffs.push(format!("{args:?}: redis {want}, cairn {got}"));
            }
        }
    }
    for args in [
        vec!["COMMAND", "GETKEYS"],
        vec!["COMMAND", "GETKEYS", "get"],
        vec!["COMMAND", "HELP"],
        vec!["COMMAND", "HELP", "x"],
        vec!["WAIT"],
        vec!["WAIT", "0", "0"],
        vec!["WAIT", "x", "0"],
        vec!["WAIT", "1", "-1"],
        vec!["WAIT", "1", "x"],
        vec!["WAIT", "-5", "x"],
        vec!["WAIT", "2", "10"],
        vec!["WAIT", "0", "100000"],
        vec!["LOLWUT"],
        vec!["LOLWUT", "VERSION", "7"],
        vec!["LOLWUT", "VERSION", "1", "2"],
        vec!["LOLWUT", "VERSION", "x"],
        vec!["CLIENT", "HELP"],
        vec!["CLIENT", "HELP", "x"],
        // Schotter (version 5) is random below its second row of squares:
        // one and two rows are Redis' bytes exactly.
        vec!["LOLWUT", "VERSION", "5", "10", "1", "2"],
        vec!["LOLWUT", "VERSION", "5", "66", "8", "2"],
        vec!["LOLWUT", "VERSION", "5", "40", "3", "1"],
        vec!["LOLWUT", "VERSION", "5", "1"],
        vec!["LOLWUT", "VERSION", "5", "2", "1", "1"],
        vec!["LOLWUT", "VERSION", "5", "3", "0", "-3"],
        vec!["LOLWUT", "VERSION", "5", "5000", "300", "1"],
        vec!["LOLWUT", "VERSION", "5", "x"],
        vec!["LOLWUT", "VERSION", "5", "9", "y"],
        vec!["LOLWUT", "VERSION", "4294967301", "12", "2", "2"],
        vec!["LOLWUT", "VERSION", "59"],
        vec!["LOLWUT", "foo"],
        // The skyline (version 6) is random except on a single row, where
        // no building has height.
        vec!["LOLWUT", "VERSION", "6", "10", "1"],
        vec!["LOLWUT", "VERSION", "6", "5000", "-4"],
        vec!["LOLWUT", "VERSION", "6", "x"],
        vec!["LOLWUT", "VERSION", "6", "3", "y"],
    ] {
        n += 1;
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if want != got {
            diffs.push(format!("{args:?}: redis {want}, cairn {got}"));
        }
    }
    // A random skyline: the same frame of rows and cells, and the same
    // dedication, as Redis'.
    for args in [
        vec!["LOLWUT", "VERSION", "6"],
        vec!["LOLWUT", "VERSION", "6", "33", "7"],
    ] {
        n += 1;
        let shape = |reply: Reply| {
            let text = match reply {
                Reply::Bulk(b) | Reply::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
                other => other.to_string(),
            };
            let lines: Vec<usize> = text.lines().map(|l| l.matches("\x1b[0m").count()).collect();
            let tail: Vec<String> = text.lines().rev().take(2).map(str::to_owned).collect();
            (lines, tail)
        };
        let want = shape(r.call(&args).await?);
        let got = shape(c.call(&args).await?);
        if want != got {
            diffs.push(format!("{args:?}: redis {want:?}, cairn {got:?}"));
        }
    }
    // WAIT inside MULTI answers at once.
    for conn in [&mut r, &mut c] {
        conn.call(&["MULTI"]).await?;
        conn.call(&["WAIT", "3", "0"]).await?;
    }
    let want = r.call(&["EXEC"]).await?;
    let got = c.call(&["EXEC"]).await?;
    if want != got {
        diffs.push(format!("WAIT in MULTI: redis {want}, cairn {got}"));
    }
    println!("getkeys/wait: {n} commands, {} differences", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    cairn.shutdown().await?;
    if !diffs.is_empty() {
        bail!("{} differences from Redis", diffs.len());
    }
    Ok(())
}

/// A MONITOR line without its time and the client's port.
fn monitor_line(r: &Reply) -> String {
    let Reply::Simple(s) = r else {
        return format!("not a status: {r}");
    };
    let Some((time, rest)) = s.split_once(' ') else {
        return format!("no time: {s}");
    };
    let well_formed = time.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && b.len() == 6 && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    });
    if !well_formed {
        return format!("bad time: {s}");
    }
    // `[0 127.0.0.1:60866]` -> `[0 127.0.0.1]`
    match rest.split_once(']') {
        Some((origin, args)) => {
            let origin = match origin.rsplit_once(':') {
                Some((host, _)) => host,
                None => origin,
            };
            format!("{origin}]{args}")
        }
        None => rest.to_owned(),
    }
}

/// MONITOR shows what Redis shows: the commands after they ran, scripts'
/// commands as `[db lua]`, passwords redacted, admin commands left out,
/// arguments quoted and escaped as `sdscatrepr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_lines_as_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let commands: Vec<Vec<&str>> = vec![
        vec!["SET", "k", "v"],
        vec!["GET", "k"],
        vec!["SET", "q", "a \"quoted\" \\ value\r\n\t\x01\u{ff}"],
        vec!["AUTH", "secret"],
        vec!["CONFIG", "GET", "maxmemory"],
        vec!["EVAL", "return redis.call('set', KEYS[1], '1')", "1", "x"],
        vec!["SELECT", "2"],
        vec!["INCR", "n"],
        vec!["GET"],
        vec!["PING"],
    ];
    let mut seen = Vec::new();
    for addr in [oracle.addr(), cairn.addr()] {
        let mut mon = Conn::connect(addr).await?;
        let ok = mon.call(&["MONITOR"]).await?;
        let mut other = Conn::connect(addr).await?;
        for c in &commands {
            other.call(c).await?;
        }
        // The last command's line marks the end.
        let mut lines = vec![format!("{ok}")];
        loop {
            let line = monitor_line(&mon.read_reply().await?);
            let last = line.ends_with("\"PING\"");
            lines.push(line);
            if last {
                break;
            }
        }
        seen.push(lines);
    }
    let (want, got) = (&seen[0], &seen[1]);
    println!("monitor: {} lines", got.len());
    cairn.shutdown().await?;
    if want != got {
        bail!("MONITOR differs:\n  redis {want:#?}\n  cairn {got:#?}");
    }
    Ok(())
}

/// CLIENT UNBLOCK: a client blocked in BLPOP / BZPOPMIN answers its timeout
/// reply (TIMEOUT, the default) or `-UNBLOCKED ...` (ERROR), as in Redis;
/// 1 when a client was unblocked, 0 otherwise; errors as Redis'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_as_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut diffs = Vec::new();
    for args in [
        vec!["CLIENT", "UNBLOCK", "x"],
        vec!["CLIENT", "UNBLOCK", "x", "bad"],
        vec!["CLIENT", "UNBLOCK", "1", "bad"],
        vec!["CLIENT", "UNBLOCK", "1", "timeout", "x"],
        vec!["CLIENT", "UNBLOCK", "99999"],
        vec!["CLIENT", "UNBLOCK", "99999", "ERROR"],
    ] {
        let mut r = Conn::connect(oracle.addr()).await?;
        let mut c = Conn::connect(cairn.addr()).await?;
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if want != got {
            diffs.push(format!("{args:?}: redis {want}, cairn {got}"));
        }
    }
    let mut seen = Vec::new();
    for addr in [oracle.addr(), cairn.addr()] {
        let mut admin = Conn::connect(addr).await?;
        let mut out = Vec::new();
        for (block, how) in [
            (vec!["BLPOP", "l", "0"], None),
            (vec!["BLPOP", "l", "0"], Some("ERROR")),
            (vec!["BZPOPMIN", "z", "0"], Some("TIMEOUT")),
        ] {
            let mut b = Conn::connect(addr).await?;
            let id = b
                .call(&["CLIENT", "ID"])
                .await?
                .as_int()
                .context("client id")?;
            b.send(&block).await?;
            // Wait until the server counts it blocked.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let clients = info(&mut admin, "clients").await?;
                if clients.get("blocked_clients").map(String::as_str) == Some("1") {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("client never blocked: {clients:?}");
                }
                tokio::task::yield_now().await;
            }
            let id = id.to_string();
            let mut args = vec!["CLIENT", "UNBLOCK", id.as_str()];
            args.extend(how);
            out.push(admin.call(&args).await?);
            out.push(b.read_reply().await?);
            out.push(admin.call(&args).await?);
        }
        seen.push(out);
    }
    if seen[0] != seen[1] {
        diffs.push(format!(
            "unblock:\n  redis {:?}\n  cairn {:?}",
            seen[0], seen[1]
        ));
    }
    println!("client unblock: {} differences", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    cairn.shutdown().await?;
    if !diffs.is_empty() {
        bail!("{} differences from Redis", diffs.len());
    }
    Ok(())
}

/// DEBUG DIGEST of the same random dataset (every type, 4 databases, TTLs,
/// binary data, small and large encodings) equals Redis', and so does
/// DEBUG DIGEST-VALUE of each key of database 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_digest_equals_redis() -> anyhow::Result<()> {
    use cairn_tests::data::{Spec, populate_addr};
    let Some(oracle) = RedisOracle::start_or_skip("introspection")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let seed: u64 = std::env::var("CAIRN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("debug digest: seed {seed} (CAIRN_SEED to replay)");
    let mut spec = Spec::full(seed, 400);
    // TTLs far enough that no key expires between the two loads.
    spec.ttl_fraction = 0.2;
    let ds = spec.generate();
    let (ra, ca) = (oracle.addr(), cairn.addr());
    let ds2 = ds.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        populate_addr(ra, &ds2)?;
        populate_addr(ca, &ds2)
    })
    .await??;
    let mut r = Conn::connect(ra).await?;
    let mut c = Conn::connect(ca).await?;
    let mut diffs = Vec::new();
    let want = r.call(&["DEBUG", "DIGEST"]).await?;
    let got = c.call(&["DEBUG", "DIGEST"]).await?;
    if want != got {
        diffs.push(format!("DEBUG DIGEST: redis {want}, cairn {got}"));
    }
    let mut keys = 0;
    for (db, key) in ds.items.keys() {
        if *db != 0 {
            continue;
        }
        keys += 1;
        let args: Vec<&[u8]> = vec![b"DEBUG", b"DIGEST-VALUE", key, b"nosuchkey"];
        let want = r.call(&args).await?;
        let got = c.call(&args).await?;
        if want != got {
            diffs.push(format!(
                "DIGEST-VALUE {}: redis {want}, cairn {got}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    for conn in [&mut r, &mut c] {
        conn.call(&["FLUSHALL"]).await?;
    }
    let want = r.call(&["DEBUG", "DIGEST"]).await?;
    let got = c.call(&["DEBUG", "DIGEST"]).await?;
    if want != got {
        diffs.push(format!("DEBUG DIGEST empty: redis {want}, cairn {got}"));
    }
    println!("debug digest: {keys} keys, {} differences", diffs.len());
    for d in diffs.iter().take(20) {
        println!("  {d}");
    }
    cairn.shutdown().await?;
    if !diffs.is_empty() {
        bail!("{} differences from Redis (seed {seed})", diffs.len());
    }
    Ok(())
}
