//! Server commands: COMMAND, CONFIG GET, INFO, TIME, DBSIZE, FLUSHDB,
//! FLUSHALL, SWAPDB.

use std::fmt::Write as _;

use bytes::Bytes;
use cairn_resp::Frame;

use super::subcommand;
use super::{
    Command, CommandSpec as S, Ctx, ERR_SYNTAX, Flags, TableBuilder, err, int, is, parse_int,
};
use crate::glob::glob_match;
use crate::keyspace::Keyspace;

pub(crate) fn register(t: &mut TableBuilder) {
    let g = "server";
    t.add(
        S::new("command", -1, Flags::LOADING | Flags::STALE, g)
            .doc("Get array of Redis command details", "2.8.13"),
        command,
    );
    t.add(
        S::new(
            "config",
            -2,
            Flags::ADMIN | Flags::NOSCRIPT | Flags::LOADING | Flags::STALE,
            g,
        )
        .doc("A container for server configuration commands", "2.0.0"),
        config,
    );
    t.add(
        S::new("info", -1, Flags::LOADING | Flags::STALE, g)
            .doc("Get information and statistics about the server", "1.0.0"),
        info,
    );
    t.add(
        S::new("time", 1, Flags::LOADING | Flags::STALE | Flags::FAST, g)
            .doc("Return the current server time", "2.6.0"),
        time,
    );
    t.add(
        S::new("dbsize", 1, Flags::READONLY | Flags::FAST, g).doc(
            "Return the number of keys in the selected database",
            "1.0.0",
        ),
        dbsize,
    );
    t.add(
        S::new("flushdb", -1, Flags::WRITE | Flags::EXCLUSIVE, g)
            .doc("Remove all keys from the current database", "1.0.0"),
        flush,
    );
    t.add(
        S::new("flushall", -1, Flags::WRITE | Flags::EXCLUSIVE, g)
            .doc("Remove all keys from all databases", "1.0.0"),
        flush,
    );
    t.add(
        S::new(
            "swapdb",
            3,
            Flags::WRITE | Flags::FAST | Flags::EXCLUSIVE,
            g,
        )
        .doc("Swaps two Redis databases", "4.0.0"),
        swapdb,
    );
}

fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|b| &b[..]).unwrap_or_default()
}

fn command_info(c: &Command) -> Frame {
    let s = &c.spec;
    let mut cats: Vec<Frame> = Vec::new();
    for (f, name) in [
        (Flags::WRITE, "@write"),
        (Flags::READONLY, "@read"),
        (Flags::ADMIN, "@admin"),
        (Flags::FAST, "@fast"),
    ] {
        if s.flags.contains(f) {
            cats.push(Frame::Simple(Bytes::from_static(name.as_bytes())));
        }
    }
    if !s.flags.contains(Flags::FAST) {
        cats.push(Frame::simple("@slow"));
    }
    cats.push(Frame::Simple(Bytes::from(format!("@{}", s.group))));
    Frame::Array(vec![
        Frame::bulk(s.name),
        Frame::Integer(i64::from(s.arity)),
        Frame::Set(
            s.flags
                .names()
                .map(|n| Frame::Simple(Bytes::from_static(n.as_bytes())))
                .collect(),
        ),
        Frame::Integer(i64::from(s.first_key)),
        Frame::Integer(i64::from(s.last_key)),
        Frame::Integer(i64::from(s.key_step)),
        Frame::Set(cats),
        Frame::Set(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

fn command_docs(c: &Command) -> Frame {
    let s = &c.spec;
    Frame::Map(vec![
        (Frame::bulk("summary"), Frame::bulk(s.summary)),
        (Frame::bulk("since"), Frame::bulk(s.since)),
        (Frame::bulk("group"), Frame::bulk(s.group)),
    ])
}

fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let table = &ctx.keyspace().inner.table;
    if args.len() == 1 {
        return Frame::Array(table.commands.iter().map(command_info).collect());
    }
    let subs = [("count", 2), ("info", -2), ("docs", -2), ("list", -2)];
    let names = args.get(2..).unwrap_or_default();
    match subcommand("command", args, &subs) {
        Err(e) => e,
        Ok("count") => int(table.commands.len()),
        Ok("info") if names.is_empty() => {
            Frame::Array(table.commands.iter().map(command_info).collect())
        }
        Ok("info") => Frame::Array(
            names
                .iter()
                .map(|n| {
                    table
                        .lookup(n)
                        .map(command_info)
                        .unwrap_or(Frame::NullArray)
                })
                .collect(),
        ),
        Ok("docs") => {
            let list: Vec<&Command> = if names.is_empty() {
                table.commands.iter().collect()
            } else {
                names.iter().filter_map(|n| table.lookup(n)).collect()
            };
            Frame::Map(
                list.into_iter()
                    .map(|c| (Frame::bulk(c.spec.name), command_docs(c)))
                    .collect(),
            )
        }
        Ok(_) => Frame::Array(
            table
                .commands
                .iter()
                .map(|c| Frame::bulk(c.spec.name))
                .collect(),
        ),
    }
}

fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let ks = ctx.keyspace();
    match subcommand(
        "config",
        args,
        &[("get", -3), ("set", -4), ("resetstat", 2)],
    ) {
        Err(e) => e,
        Ok("get") => {
            let params = ks.inner.params.read();
            let mut out = Vec::new();
            for (k, v) in params.iter() {
                if args
                    .iter()
                    .skip(2)
                    .any(|p| glob_match(p, k.as_bytes(), true))
                {
                    out.push((Frame::bulk(k), Frame::bulk(v)));
                }
            }
            Frame::Map(out)
        }
        Ok("set") => config_set(ks, args.get(2..).unwrap_or_default()),
        Ok(_) => Frame::ok(),
    }
}

/// CONFIG SET name value [name value ...]: all or nothing, as in Redis 7.0.
fn config_set(ks: &Keyspace, pairs: &[Bytes]) -> Frame {
    if !pairs.len().is_multiple_of(2) {
        return err("ERR wrong number of arguments for 'config|set' command");
    }
    let mut accepted = Vec::new();
    for p in pairs.chunks_exact(2) {
        let [name, value] = p else { continue };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let known = ks.inner.params.read().contains_key(&name);
        let mut verdict = None;
        for ext in &ks.inner.extensions {
            if let Some(v) = ext.config_set(ks, &name, value) {
                verdict = Some(v);
                break;
            }
        }
        match verdict {
            Some(Err(reason)) => {
                return Frame::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                ));
            }
            None if !known => {
                return Frame::error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            }
            _ => accepted.push((name, String::from_utf8_lossy(value).into_owned())),
        }
    }
    let mut params = ks.inner.params.write();
    for (k, v) in accepted {
        params.insert(k, v);
    }
    Frame::ok()
}

fn time(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    Frame::Array(vec![
        Frame::Bulk(Bytes::from((us / 1_000_000).to_string())),
        Frame::Bulk(Bytes::from((us % 1_000_000).to_string())),
    ])
}

fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    int(ctx.keyspace().dbsize(ctx.db()))
}

fn flush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match args.get(1) {
        None => {}
        Some(m) if args.len() == 2 && (is(m, "async") || is(m, "sync")) => {}
        Some(_) => return err(ERR_SYNTAX),
    }
    let e = ctx.keyspace().engine();
    let dbs = if ctx.command() == "flushall" {
        0..e.databases()
    } else {
        ctx.db()..ctx.db() + 1
    };
    // The gate is already held for write (EXCLUSIVE): atomic across dbs.
    for db in dbs.clone() {
        touch_watched(ctx, db, None);
    }
    e.flush_dbs(dbs);
    // Redis counts the flush itself too, so even an empty FLUSHALL makes
    // the dataset "changed" (and triggers save points).
    e.counters.dirty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Frame::ok()
}

/// Touches the keys watched in `db` that exist there or, for SWAPDB, in
/// the database swapped with it (Redis' `touchAllWatchedKeysInDb`).
fn touch_watched(ctx: &Ctx<'_>, db: usize, other: Option<usize>) {
    let e = ctx.keyspace().engine();
    let watches = &e.counters.watches;
    for key in watches.watched_in(db as u32) {
        let here = e.lock(db, &key, ctx.now_ms()).contains(&key);
        let there = other.is_some_and(|o| e.lock(o, &key, ctx.now_ms()).contains(&key));
        if here || there {
            watches.touch(db as u32, &key);
        }
    }
}

fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let n = ctx.keyspace().databases() as i64;
    let parse = |a: &[u8], what: &'static str| match parse_int(a) {
        Ok(i) if (0..n).contains(&i) => Ok(i as usize),
        Ok(_) => Err(err("ERR DB index is out of range")),
        Err(_) => Err(err(what)),
    };
    let a = match parse(arg(args, 1), "ERR invalid first DB index") {
        Ok(a) => a,
        Err(e) => return e,
    };
    let b = match parse(arg(args, 2), "ERR invalid second DB index") {
        Ok(b) => b,
        Err(e) => return e,
    };
    if a != b {
        touch_watched(ctx, a, Some(b));
        touch_watched(ctx, b, Some(a));
    }
    let ks = ctx.keyspace();
    ks.engine().swap_dbs(a, b);
    // Clients blocked on keys in either database may be servable now.
    ks.signal_db_ready(a);
    ks.signal_db_ready(b);
    Frame::ok()
}

/// Builds the `INFO` text for the requested sections.
pub(crate) fn info_text(ks: &Keyspace, sections: &[String]) -> String {
    let all = sections.is_empty()
        || sections
            .iter()
            .any(|s| s == "all" || s == "everything" || s == "default");
    let want = |name: &str| all || sections.iter().any(|s| s == name);
    let mut out = String::new();
    if want("server") {
        let up = ks.uptime().as_secs();
        let port = ks.config_param("port").unwrap_or_else(|| "6379".into());
        let _ = write!(
            out,
            "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\ncairn_version:{}\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nexecutable:cairn-server\r\n\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            ks.inner.run_id,
            port,
            up,
            up / 86400,
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nblocked_clients:0\r\nmaxclients:{}\r\n\r\n",
            ks.connected_clients(),
            ks.config_param("maxclients")
                .unwrap_or_else(|| "10000".into()),
        );
    }
    if want("replication") {
        out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
    }
    if want("stats") {
        let _ = write!(out, "# Stats\r\nexpired_keys:{}\r\n\r\n", ks.expired_keys());
    }
    for ext in &ks.inner.extensions {
        for sec in ext.info_sections() {
            if want(sec)
                && let Some(body) = ext.info(ks, sec)
            {
                let mut title = sec.to_string();
                if let Some(f) = title.get_mut(0..1) {
                    f.make_ascii_uppercase();
                }
                let _ = write!(out, "# {title}\r\n{body}\r\n");
            }
        }
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        let now = ks.now_ms();
        for db in 0..ks.databases() {
            let (keys, expires) = ks.engine().db_counts(db);
            if keys == 0 {
                continue;
            }
            let (sum, n) = ks.engine().db_ttl_sum(db, now);
            let avg = if n == 0 { 0 } else { (sum / n as i128) as i64 };
            let _ = write!(
                out,
                "db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n"
            );
        }
        out.push_str("\r\n");
    }
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sections: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let text = info_text(ctx.keyspace(), &sections);
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}
