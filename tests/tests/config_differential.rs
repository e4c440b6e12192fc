//! CONFIG SET and CONFIG GET of every Redis 7.0 parameter against a real
//! redis-server 7.0.15: for each row of `cairn_keyspace::config::PARAMS`,
//! good and bad values of its kind go to both servers and the replies are
//! compared, then CONFIG GET of the parameter after each accepted value.
//!
//! A value cairn refuses with its own "cairn does not support" / "cannot
//! change at runtime" error, on a parameter the table marks unsupported or
//! start-only, is counted and listed per parameter, not a difference (the
//! rule of issue 17). Every other mismatch fails the test. `bind` and `port`
//! are left out, with the reason printed: changing them moves the oracle's
//! listener under the test.

use cairn_keyspace::config::{Kind, PARAMS, Param, Status, lookup};
use std::sync::{Arc, Mutex};

use cairn_server::{LogLevel, Server, ShutdownOptions};
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};

/// The binary's allocator, so this in-process server counts used memory
/// (and accepts maxmemory) as `cairn-server` does.
#[global_allocator]
static GLOBAL: cairn_server::CountedSystem = cairn_server::counted_system();

/// Values to try for a parameter, good and bad, from its kind and default.
fn values(p: &Param, default: &str) -> Vec<String> {
    let mut v: Vec<String> = match p.kind {
        Kind::Bool => ["yes", "no", "YES", "No", "maybe", "", "1"]
            .map(String::from)
            .to_vec(),
        Kind::Int(min, max) => {
            let mut v = vec![
                min.to_string(),
                max.to_string(),
                (min - 1).to_string(),
                (max + 1).to_string(),
                "abc".into(),
                "+1".into(),
                "01".into(),
                "1.5".into(),
                " 1".into(),
                String::new(),
                "1k".into(),
            ];
            if let Ok(d) = default.parse::<i128>()
                && d < max
            {
                v.push((d + 1).to_string());
            }
            v
        }
        Kind::Memory { min, max, .. } => vec![
            min.to_string(),
            max.to_string(),
            (min - 1).to_string(),
            "1".into(),
            "2k".into(),
            "2kb".into(),
            "3MB".into(),
            "1gb".into(),
            "1g".into(),
            "5b".into(),
            "-1".into(),
            "1x".into(),
            "1.5mb".into(),
            "+1".into(),
            String::new(),
            "007".into(),
        ],
        Kind::MemoryOrPercent => ["5%", "100%", "101%", "-5", "abc", "1mb", "0", "%", "-5%"]
            .map(String::from)
            .to_vec(),
        Kind::Octal => ["700", "777", "800", "x"].map(String::from).to_vec(),
        Kind::Enum(names) => {
            let mut v: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            v.extend(names.first().map(|n| n.to_uppercase()));
            v.push("bogus".into());
            v.push(String::new());
            v
        }
        Kind::Str => vec!["cairn-test".into(), String::new(), "a b".into()],
        Kind::Hostname => vec![
            "ok-host.example".into(),
            "bad_host".into(),
            "x".repeat(300),
            String::new(),
        ],
        Kind::Special => match p.name {
            "notify-keyspace-events" => ["KEA", "Kx", "x", "", "AKEm", "gn"]
                .map(String::from)
                .to_vec(),
            "latency-tracking-info-percentiles" => ["50 99", "101", "a", "", "99.9 50", "0 100"]
                .map(String::from)
                .to_vec(),
            "client-output-buffer-limit" => [
                "normal 1mb 2mb 3",
                "pubsub 0 0 0",
                "replica 10 20 30",
                "master 1 2 3",
                "normal 1 2",
                "normal a 2 3",
                "normal 1 2 -1",
                "normal 0 0 0 pubsub 32mb 8mb 60",
                "bogus 1 2 3",
            ]
            .map(String::from)
            .to_vec(),
            "oom-score-adj-values" => ["0 200 800", "1 2", "a 2 3", "0 200 2001", "-1 0 1"]
                .map(String::from)
                .to_vec(),
            "save" => ["100 1", "1 2 3", "", "a b", "3600 1 300 100 60 10000"]
                .map(String::from)
                .to_vec(),
            "shutdown-on-sigterm" | "shutdown-on-sigint" => {
                ["nosave force", "save nosave", "bogus", "default", "now"]
                    .map(String::from)
                    .to_vec()
            }
            _ => vec![default.to_owned()],
        },
    };
    if p.name == "timeout" {
        // A short timeout would close the test's own idle connections.
        v.retain(|x| !matches!(x.parse::<i64>(), Ok(n) if n > 0 && n < 100));
    }
    if p.name == "maxclients" {
        v.retain(|x| !matches!(x.parse::<i64>(), Ok(n) if n > 0 && n < 100));
    }
    v.push(default.to_owned());
    v
}

fn is_cairn_refusal(r: &Reply) -> bool {
    match r {
        Reply::Error(e) => {
            e.contains(" - cairn does not support '")
                || e.contains(" - cairn cannot change at runtime '")
        }
        _ => false,
    }
}

async fn get(conn: &mut Conn, name: &str) -> anyhow::Result<Reply> {
    conn.call(&["CONFIG", "GET", name]).await
}

fn first_value(r: &Reply) -> Option<Vec<u8>> {
    match r {
        Reply::Array(v) => v.get(1).and_then(|x| x.as_bytes()).map(<[u8]>::to_vec),
        Reply::Map(v) => v
            .first()
            .and_then(|(_, x)| x.as_bytes())
            .map(<[u8]>::to_vec),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_matches_redis() -> anyhow::Result<()> {
    let Some(redis) = RedisOracle::start_or_skip("config_set_matches_redis")? else {
        return Ok(());
    };
    // cairn-server's own hook reloads its tracing filter; this one records
    // what CONFIG SET loglevel asked for.
    let levels: Arc<Mutex<Vec<LogLevel>>> = Arc::default();
    let seen = Arc::clone(&levels);
    let dir = tempfile::tempdir()?;
    let cairn = Server::builder()
        .port(0)
        .persistence(false)
        .data_dir(dir.path())
        // As the binary: maxmemory is only accepted where used memory is
        // counted.
        .allocator_stats(Arc::new(cairn_server::CountedStats::new(&GLOBAL)))
        .log_level_hook(Arc::new(move |level| {
            seen.lock().map_err(|e| e.to_string())?.push(level);
            Ok(())
        }))
        .build()
        .start()
        .await?;
    let mut r = Conn::connect(redis.addr()).await?;
    let mut c = Conn::connect(cairn.addr()).await?;
    let mut differences = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut compared = 0usize;
    for p in PARAMS {
        if matches!(p.name, "bind" | "port") {
            println!(
                "skipped {}: setting it moves the listener the test talks through",
                p.name
            );
            continue;
        }
        let row = lookup(p.name).unwrap_or(p);
        let redis_before = first_value(&get(&mut r, p.name).await?).unwrap_or_default();
        let cairn_before = first_value(&get(&mut c, p.name).await?).unwrap_or_default();
        let default = String::from_utf8_lossy(&redis_before).into_owned();
        let mut refused_here = Vec::new();
        for value in values(row, &default) {
            let cmd = ["CONFIG", "SET", p.name, value.as_str()];
            let (rr, cr) = (r.call(&cmd).await?, c.call(&cmd).await?);
            compared += 1;
            if rr != cr {
                if is_cairn_refusal(&cr)
                    && matches!(row.status, Status::Unsupported | Status::Startup)
                {
                    refused_here.push(format!("{value:?}"));
                    continue;
                }
                differences.push(format!(
                    "CONFIG SET {} {value:?}\n  redis: {rr}\n  cairn: {cr}",
                    p.name
                ));
                continue;
            }
            if rr.is_error() {
                continue;
            }
            let (rg, cg) = (get(&mut r, p.name).await?, get(&mut c, p.name).await?);
            compared += 1;
            if rg != cg {
                differences.push(format!(
                    "CONFIG GET {} after {value:?}\n  redis: {rg}\n  cairn: {cg}",
                    p.name
                ));
            }
            // The alias (or the parameter an alias names) reads the same.
            if let Some(other) = PARAMS
                .iter()
                .find(|o| o.alias_of == Some(p.name) || p.alias_of == Some(o.name))
            {
                let (ro, co) = (
                    get(&mut r, other.name).await?,
                    get(&mut c, other.name).await?,
                );
                compared += 1;
                if first_value(&ro) != first_value(&co) {
                    differences.push(format!(
                        "CONFIG GET {} after {} {value:?}\n  redis: {ro}\n  cairn: {co}",
                        other.name, p.name
                    ));
                }
            }
        }
        // Back to each server's own value, so the next parameter starts
        // from the defaults.
        let restore = |v: Vec<u8>| {
            vec![
                b"CONFIG".to_vec(),
                b"SET".to_vec(),
                p.name.as_bytes().to_vec(),
                v,
            ]
        };
        let _ = r.call(&restore(redis_before)).await?;
        let _ = c.call(&restore(cairn_before)).await?;
        if !refused_here.is_empty() {
            refused.push(format!(
                "{} ({}): {}",
                p.name,
                row.status.word(),
                refused_here.join(" ")
            ));
        }
    }
    // Several pairs: every name is checked before any value, duplicates,
    // all or nothing.
    let multi: &[&[&str]] = &[
        &["CONFIG", "SET", "hz", "10", "HZ", "11"],
        &["CONFIG", "SET", "hz", "abc", "databases", "1"],
        &["CONFIG", "SET", "hz", "12", "maxmemory", "lots"],
        &["CONFIG", "SET", "hz", "12", "nosuch", "1"],
        &["CONFIG", "SET", "nosuch", "1"],
        &["CONFIG", "SET", "hz"],
        &["CONFIG", "SET", "hz", "13", "slowlog-max-len", "7"],
        &["CONFIG", "GET", "hz"],
        &["CONFIG", "GET", "slowlog-max-len"],
        &[
            "CONFIG",
            "SET",
            "Hash-Max-Ziplist-Entries",
            "9",
            "zset-max-ziplist-value",
            "1kb",
        ],
        &["CONFIG", "GET", "*-max-*"],
        &[
            "CONFIG",
            "SET",
            "hz",
            "10",
            "slowlog-max-len",
            "128",
            "hash-max-listpack-entries",
            "512",
            "zset-max-listpack-value",
            "64",
        ],
        &["CONFIG", "GET", "*-max-*"],
    ];
    for cmd in multi {
        let (rr, cr) = (r.call(cmd).await?, c.call(cmd).await?);
        compared += 1;
        let sorted = |x: &Reply| match x {
            Reply::Array(v) => {
                let mut pairs: Vec<String> = v.chunks(2).map(|p| format!("{p:?}")).collect();
                pairs.sort();
                pairs.join(",")
            }
            other => format!("{other:?}"),
        };
        if sorted(&rr) != sorted(&cr) {
            differences.push(format!("{}\n  redis: {rr}\n  cairn: {cr}", cmd.join(" ")));
        }
    }
    println!(
        "config_set_matches_redis: {compared} comparisons, {} differences; values refused by cairn as unsupported on {} parameters:",
        differences.len(),
        refused.len()
    );
    for line in &refused {
        println!("  refused {line}");
    }
    for d in &differences {
        println!("{d}");
    }
    cairn.shutdown_with(ShutdownOptions::nosave()).await?;
    anyhow::ensure!(differences.is_empty(), "{} differences", differences.len());
    let levels = levels.lock().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    anyhow::ensure!(
        levels
            == [
                LogLevel::Debug,
                LogLevel::Verbose,
                LogLevel::Notice,
                LogLevel::Warning,
                LogLevel::Debug,
                LogLevel::Notice,
                // The restore to the level in effect.
                LogLevel::Notice
            ],
        "the log hook saw {levels:?}"
    );
    Ok(())
}
