//! Server commands: COMMAND, CONFIG GET, INFO, TIME, DBSIZE, FLUSHDB,
//! FLUSHALL, SWAPDB.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::subcommand;
use super::{Command, Completion, Ctx, ERR_SYNTAX, Flags, TableBuilder, err, int, is, parse_int};
use crate::glob::glob_match;
use crate::keyspace::Keyspace;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis_with("command", |s| s.subs(COMMAND_SUBS), command);
    t.redis_with("config", |s| s.subs(CONFIG_SUBS), config);
    t.redis("info", info);
    // Exclusive: DEBUG SLEEP stops the whole server as in Redis, and the
    // other subcommands are rare and administrative.
    t.redis_with("debug", |s| s.also(Flags::EXCLUSIVE), debug);
    t.redis_with("object", |s| s.subs(OBJECT_SUBS), object);
    t.redis("time", time);
    t.redis("dbsize", dbsize);
    t.redis_with("flushdb", |s| s.also(Flags::EXCLUSIVE), flush);
    t.redis_with("flushall", |s| s.also(Flags::EXCLUSIVE), flush);
    t.redis_with("swapdb", |s| s.also(Flags::EXCLUSIVE), swapdb);
}

const COMMAND_SUBS: &[(&str, i32)] = &[
    ("count", 2),
    ("info", -2),
    ("docs", -2),
    ("list", -2),
    ("getkeys", -4),
    ("getkeysandflags", -4),
    ("help", 2),
];
const CONFIG_SUBS: &[(&str, i32)] = &[
    ("get", -3),
    ("set", -4),
    ("resetstat", 2),
    ("rewrite", 2),
    ("help", 2),
];
const OBJECT_SUBS: &[(&str, i32)] = &[
    ("encoding", 3),
    ("refcount", 3),
    ("idletime", 3),
    ("freq", 3),
    ("help", 2),
];

/// `COMMAND INFO` of a command: Redis' own entry when Redis has the command
/// (subcommands limited to those cairn implements), else built from the spec.
pub(crate) fn command_info(c: &Command) -> Frame {
    let s = &c.spec;
    if let Some(info) = super::meta::redis_info(s.name) {
        return super::meta::filter_subs(info, |full| {
            let sub = full.rsplit(|&b| b == b'|').next().unwrap_or(full);
            s.subs.iter().any(|(n, _)| is(sub, n))
        });
    }
    let subs = s
        .subs
        .iter()
        .map(|&(sub, arity)| sub_info(s.name, sub, arity))
        .collect();
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
        Frame::Array(subs),
    ])
}

/// `COMMAND INFO container|sub`.
fn sub_info(container: &str, sub: &str, arity: i32) -> Frame {
    let full = format!("{container}|{sub}");
    if let Some(info) = super::meta::redis_info(&full) {
        return info.clone();
    }
    Frame::Array(vec![
        Frame::bulk(full),
        Frame::Integer(i64::from(arity)),
        Frame::Set(Vec::new()),
        Frame::Integer(0),
        Frame::Integer(0),
        Frame::Integer(0),
        Frame::Set(vec![Frame::simple("@slow")]),
        Frame::Set(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

/// `COMMAND INFO` of a name as a client gives it: `get` or `config|get`.
fn info_by_name(table: &super::Table, name: &[u8]) -> Option<Frame> {
    let Some(bar) = name.iter().position(|&b| b == b'|') else {
        return table.lookup(name).map(command_info);
    };
    let (container, sub) = (name.get(..bar)?, name.get(bar + 1..)?);
    let c = table.lookup(container)?;
    let &(sub, arity) = c.spec.subs.iter().find(|(n, _)| is(sub, n))?;
    Some(sub_info(c.spec.name, sub, arity))
}

/// `COMMAND DOCS` of a command: Redis' own docs when Redis has the command
/// (subcommands limited to those cairn implements), else the spec's
/// summary, since and group.
fn command_docs(c: &Command) -> Frame {
    let s = &c.spec;
    if let Some(docs) = super::meta::redis_docs(s.name) {
        return super::meta::filter_doc_subs(docs, |full| {
            let sub = full.rsplit(|&b| b == b'|').next().unwrap_or(full);
            s.subs.iter().any(|(n, _)| is(sub, n))
        });
    }
    Frame::Map(vec![
        (Frame::bulk("summary"), Frame::bulk(s.summary)),
        (Frame::bulk("since"), Frame::bulk(s.since)),
        (Frame::bulk("group"), Frame::bulk(s.group)),
    ])
}

/// `COMMAND DOCS` of a name as a client gives it (`get` or `config|get`):
/// the full name and its docs, or `None` for an unknown command.
fn docs_by_name(table: &super::Table, name: &[u8]) -> Option<(Frame, Frame)> {
    let Some(bar) = name.iter().position(|&b| b == b'|') else {
        let c = table.lookup(name)?;
        return Some((Frame::bulk(c.spec.name), command_docs(c)));
    };
    let (container, sub) = (name.get(..bar)?, name.get(bar + 1..)?);
    let c = table.lookup(container)?;
    let &(sub, _) = c.spec.subs.iter().find(|(n, _)| is(sub, n))?;
    let full = format!("{}|{sub}", c.spec.name);
    // A subcommand Redis lacks has no docs of its own; Redis would not
    // know the name at all, so neither does cairn.
    let docs = super::meta::redis_docs(&full)?.clone();
    Some((Frame::bulk(full), docs))
}

fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let table = &ctx.keyspace().inner.table;
    if args.len() == 1 {
        return Frame::Array(table.commands.iter().map(command_info).collect());
    }
    let names = args.get(2..).unwrap_or_default();
    match subcommand("command", args, COMMAND_SUBS) {
        Err(e) => e,
        Ok("count") => int(table.commands.len()),
        Ok("getkeys") => super::getkeys::getkeys(table, args, false),
        Ok("getkeysandflags") => super::getkeys::getkeys(table, args, true),
        Ok("help") => Frame::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        ),
        Ok("info") if names.is_empty() => {
            Frame::Array(table.commands.iter().map(command_info).collect())
        }
        Ok("info") => Frame::Array(
            names
                .iter()
                .map(|n| info_by_name(table, n).unwrap_or(Frame::NullArray))
                .collect(),
        ),
        Ok("docs") if names.is_empty() => Frame::Map(
            table
                .commands
                .iter()
                .map(|c| (Frame::bulk(c.spec.name), command_docs(c)))
                .collect(),
        ),
        // Unknown names are left out; repeated ones repeat, as in Redis.
        Ok("docs") => Frame::Map(
            names
                .iter()
                .filter_map(|n| docs_by_name(table, n))
                .collect(),
        ),
        Ok(_) => {
            // Redis lists each container's subcommands after it.
            let mut out = Vec::new();
            for c in &table.commands {
                out.push(Frame::bulk(c.spec.name));
                for (sub, _) in c.spec.subs {
                    out.push(Frame::bulk(format!("{}|{sub}", c.spec.name)));
                }
            }
            Frame::Array(out)
        }
    }
}

fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let conn = ctx.session().conn.clone();
    let ks = ctx.keyspace();
    match subcommand("config", args, CONFIG_SUBS) {
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
        Ok("set") => config_set(ks, conn.as_ref(), args.get(2..).unwrap_or_default()),
        Ok("rewrite") => err("ERR The server is running without a config file"),
        Ok("resetstat") => {
            ks.inner.stats.reset();
            ks.inner.clients.received.store(0, Ordering::Relaxed);
            ks.engine()
                .counters
                .expired_keys
                .store(0, Ordering::Relaxed);
            ks.inner.evict.evicted_keys.store(0, Ordering::Relaxed);
            Frame::ok()
        }
        Ok(_) => Frame::Array(
            [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        ),
    }
}

/// CONFIG SET name value [name value ...]: all or nothing, as in Redis 7.0;
/// then each extension's `config_applied` for every parameter set.
fn config_set(ks: &Keyspace, conn: Option<&cairn_resp::ConnInfo>, pairs: &[Bytes]) -> Frame {
    let reply = config_set_all(ks, conn, pairs);
    // A refused CONFIG SET makes Redis restore each parameter from its
    // `CONFIG GET` form, which for `notify-keyspace-events` drops an `n`
    // hidden by `A`: done here too, so the classes in effect stay Redis'.
    if reply.is_error()
        && pairs
            .chunks_exact(2)
            .any(|p| p[0].eq_ignore_ascii_case(b"notify-keyspace-events"))
        && let Some(v) = ks.config_param("notify-keyspace-events")
    {
        crate::keyspace::apply_notify_param(
            &ks.engine().counters.notify,
            "notify-keyspace-events",
            &v,
        );
    }
    reply
}

fn config_set_all(ks: &Keyspace, conn: Option<&cairn_resp::ConnInfo>, pairs: &[Bytes]) -> Frame {
    use crate::config::{Mutability, Status};
    use crate::encoding::SharedLimits;
    if !pairs.len().is_multiple_of(2) {
        return err("ERR wrong number of arguments for 'config|set' command");
    }
    // Serialised from validation to the last notification, so the
    // extensions hear of concurrent CONFIG SETs in the order they stored.
    let _serial = ks.inner.config_set_serial.lock();
    let failed = |given: &str, reason: &str| {
        Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{given}') - {reason}"
        ))
    };
    // Every name first, as Redis: an unknown, immutable, protected or
    // repeated name fails the command before any value is looked at.
    let protected_allowed = ks
        .config_param("enable-protected-configs")
        .and_then(|v| crate::limits::Protected::parse(&v))
        .unwrap_or(crate::limits::Protected::No)
        .allows(conn);
    let mut names: Vec<(String, String)> = Vec::new();
    for p in pairs.chunks_exact(2) {
        let given = String::from_utf8_lossy(&p[0]).into_owned();
        let name = given.to_ascii_lowercase();
        // A parameter an embedder registered (`KeyspaceBuilder::config_param`)
        // or an extension validates is known too (`config_set` only checks,
        // so asking it here stores nothing).
        let known = crate::config::lookup(&name).is_some()
            || ks.inner.params.read().contains_key(&name)
            || ks
                .inner
                .extensions
                .iter()
                .any(|x| x.config_set(ks, &name, &p[1]).is_some());
        if !known {
            return Frame::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{given}'"
            ));
        }
        match crate::config::lookup(&name).map(|p| p.mutability) {
            Some(Mutability::Immutable) => return failed(&given, "can't set immutable config"),
            Some(Mutability::Protected) if !protected_allowed => {
                return failed(&given, "can't set protected config");
            }
            _ => {}
        }
        if names.iter().any(|(_, n)| *n == name) {
            return failed(&given, "duplicate parameter");
        }
        names.push((given, name));
    }
    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut notify_classes = None;
    for ((given, name), p) in names.iter().zip(pairs.chunks_exact(2)) {
        let value = &p[1];
        let current = ks
            .inner
            .params
            .read()
            .get(name)
            .cloned()
            .unwrap_or_default();
        let row = crate::config::lookup(name);
        if name == "notify-keyspace-events" {
            // The flags, not their display form: with `A`, an `n` is not
            // shown but stays on, as in Redis.
            notify_classes = crate::notify::parse_classes(value);
        }
        let value = match row.map(|r| r.parse(value, &current)) {
            Some(Err(reason)) => return failed(given, &reason),
            Some(Ok(v)) => Bytes::from(v),
            None => value.clone(),
        };
        if name == "maxmemory" && &value[..] != b"0" && !ks.enforces_maxmemory() {
            return failed(given, MAXMEMORY_WITHOUT_STATS);
        }
        if let Some(r) = row
            && matches!(r.status, Status::Unsupported | Status::Startup)
            && value != current.as_bytes()
        {
            return Frame::error(crate::config::unsupported_error(given, r));
        }
        for ext in &ks.inner.extensions {
            if let Some(verdict) = ext.config_set(ks, name, &value) {
                if let Err(reason) = verdict {
                    return failed(given, &reason);
                }
                break;
            }
        }
        accepted.push((name.clone(), String::from_utf8_lossy(&value).into_owned()));
    }
    {
        let mut params = ks.inner.params.write();
        for (k, v) in &accepted {
            params.insert(k.clone(), v.clone());
            // An alias and its parameter read the same value, as in Redis.
            for other in crate::config::other_names(k) {
                params.insert(other.to_owned(), v.clone());
            }
            match (k.as_str(), notify_classes) {
                ("notify-keyspace-events", Some(f)) => ks.engine().counters.notify.set_classes(f),
                _ => crate::keyspace::apply_notify_param(&ks.engine().counters.notify, k, v),
            }
            if SharedLimits::controls(k) {
                // Takes effect for the next command.
                ks.inner.limits.set(k, v.parse().unwrap_or(0));
            }
        }
    }
    // After the parameters' lock is released: an extension reads them back.
    for (k, v) in &accepted {
        ks.param_changed(k, v);
    }
    for (k, v) in &accepted {
        for ext in &ks.inner.extensions {
            ext.config_applied(ks, k, v);
        }
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
    let ks = ctx.keyspace();
    let e = ks.engine();
    let flushall = ctx.command() == "flushall";
    let dbs = if flushall {
        0..e.databases()
    } else {
        ctx.db()..ctx.db() + 1
    };
    // The gate is already held for write (EXCLUSIVE): atomic across dbs.
    for db in dbs.clone() {
        touch_watched(ctx, db, None);
    }
    e.flush_dbs(dbs);
    // Every tracking client drops its whole cache (Redis'
    // `trackingInvalidateKeysOnFlush`, for FLUSHDB too).
    e.counters.notify.flushed();
    // Redis counts the flush itself too, so even an empty FLUSHALL makes
    // the dataset "changed" (and triggers save points).
    e.counters
        .dirty
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if !flushall {
        return Frame::ok();
    }
    // Still under the gate held for write: the extensions see the flushed
    // keyspace before any other command does.
    let work: Vec<Completion> = ks
        .inner
        .extensions
        .iter()
        .filter_map(|x| x.after_flushall(ks))
        .collect();
    // Inside EXEC the transaction's reply does not wait; the extensions
    // started their work themselves, so dropping the futures cancels
    // nothing.
    if work.is_empty() || ctx.session.in_exec {
        return Frame::ok();
    }
    // The gate is released when this handler returns; the reply waits on
    // the connection's task, not on a worker thread.
    ctx.block(Box::pin(async move {
        for w in work {
            w.await;
        }
        Frame::ok()
    }))
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
            "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\ncairn_version:{}\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nexecutable:cairn-server\r\n\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            ks.inner.run_id,
            port,
            up,
            up / 86400,
            ks.cron_hz(),
            ks.configured_hz(),
        );
    }
    let tracking = ks.engine().counters.notify.info();
    if want("clients") {
        // The largest unparsed input and unsent output of the connected
        // clients now (Redis keeps the peak of the last few seconds).
        let (qbuf, omem) = ks.inner.clients.all().iter().fold((0, 0), |(q, o), c| {
            (
                c.qbuf.load(Ordering::Relaxed).max(q),
                c.omem.load(Ordering::Relaxed).max(o),
            )
        });
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{qbuf}\r\nclient_recent_max_output_buffer:{omem}\r\n\r\n",
            ks.connected_clients(),
            ks.blocked_clients(),
            tracking.clients,
            ks.config_param("maxclients")
                .unwrap_or_else(|| "10000".into()),
        );
    }
    if want("replication") {
        out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
    }
    if want("memory") {
        let report = crate::memory::MemoryReport::take(ks.inner.allocator.as_ref());
        ks.inner.memory.saw(report.used);
        let max = ks.inner.evict.maxmemory();
        let limits = format!(
            "maxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n",
            crate::memory::human(max),
            ks.config_param("maxmemory-policy")
                .unwrap_or_else(|| "noeviction".into()),
        );
        let _ = write!(out, "# Memory\r\n{}\r\n", report.lines_with(&limits));
    }
    if want("stats") {
        let st = &ks.inner.stats;
        let kbps = |metric: usize| st.instantaneous(metric) as f64 / 1024.0;
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nevicted_clients:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\ntotal_error_replies:{}\r\n\r\n",
            ks.inner.clients.received.load(Ordering::Relaxed),
            st.commands(),
            st.instantaneous(0),
            st.net_in(),
            st.net_out(),
            kbps(1),
            kbps(2),
            ks.expired_keys(),
            ks.evicted_keys(),
            st.hits(),
            st.misses(),
            ks.inner.pubsub.channels(None).len(),
            ks.inner.pubsub.numpat(),
            tracking.keys,
            tracking.items,
            tracking.prefixes,
            st.error_replies(),
        );
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
    // Redis' default sections include errorstats but not commandstats
    // nor latencystats; `all` and `everything` include them.
    let every = sections.iter().any(|s| s == "all" || s == "everything");
    let named = |name: &str| every || sections.iter().any(|s| s == name);
    let st = &ks.inner.stats;
    let names = &ks.inner.table.stat_names;
    if named("commandstats") {
        out.push_str("# Commandstats\r\n");
        for (slot, name) in names.iter().enumerate() {
            let t = st.command(slot);
            if t.calls == 0 && t.rejected == 0 && t.failed == 0 {
                continue;
            }
            let usec = t.nanos / 1000;
            let per_call = if t.calls == 0 {
                0.0
            } else {
                usec as f64 / t.calls as f64
            };
            let _ = write!(
                out,
                "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                t.calls, t.rejected, t.failed
            );
        }
        out.push_str("\r\n");
    }
    if want("errorstats") {
        out.push_str("# Errorstats\r\n");
        for (prefix, n) in st.errors() {
            let _ = write!(out, "errorstat_{prefix}:count={n}\r\n");
        }
        out.push_str("\r\n");
    }
    if named("latencystats") {
        out.push_str("# Latencystats\r\n");
        let ps = ks
            .config_param("latency-tracking-info-percentiles")
            .and_then(|v| crate::config::parse_percentiles(&v).ok())
            .unwrap_or_default();
        // Redis writes the lines only while tracking is on.
        let tracking = st.tracking.load(Ordering::Relaxed);
        for (slot, name) in names.iter().enumerate().filter(|_| tracking) {
            let Some(h) = st.histogram(slot) else {
                continue;
            };
            let fields: Vec<String> = ps
                .iter()
                .map(|p| {
                    format!(
                        "p{}={:.3}",
                        crate::config::trim_double(*p),
                        h.percentile(*p) as f64 / 1000.0
                    )
                })
                .collect();
            let _ = write!(
                out,
                "latency_percentiles_usec_{name}:{}\r\n",
                fields.join(",")
            );
        }
        out.push_str("\r\n");
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

/// Why `maxmemory` is refused in a program that gave the keyspace no
/// allocator statistics (see `evict.rs`).
pub(crate) const MAXMEMORY_WITHOUT_STATS: &str = "maxmemory needs the allocator's count of used memory, which this program does not provide (cairn does not enforce it against RSS); the cairn-server binary provides it";

/// DEBUG: the subcommands tests and tools use.
fn debug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(arg(args, 1)).to_ascii_lowercase();
    let unknown = || {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(arg(args, 1))
        ))
    };
    match (sub.as_str(), args.len()) {
        ("sleep", 3) => {
            let secs = super::parse_float(arg(args, 2)).unwrap_or(0.0);
            if secs <= 0.0 || !secs.is_finite() {
                return Frame::ok();
            }
            let d = std::time::Duration::from_secs_f64(secs.min(1e9));
            // Redis stops serving for the duration (tests rely on it): the
            // gate is held for write, so every other command waits.
            std::thread::sleep(d);
            Frame::ok()
        }
        ("digest", 2) => {
            let ks = ctx.keyspace();
            let e = ks.engine();
            let now = ctx.now_ms();
            let mut all = crate::digest::Dataset::new();
            for db in 0..e.databases() {
                if e.db_counts(db).0 == 0 {
                    continue;
                }
                all.db(u32::try_from(db).unwrap_or(u32::MAX));
                for idx in e.db_shards(db) {
                    let shard = e.lock_index(idx, now);
                    for (k, entry) in shard.keys() {
                        all.key(k.as_bytes(), entry.value(), entry.expires_at_ms().is_some());
                    }
                }
            }
            Frame::Simple(Bytes::from(all.hex()))
        }
        ("digest-value", _) => {
            let mut out = Vec::new();
            for key in args.iter().skip(2) {
                let mut shard = ctx.shard(key);
                let d = match shard.get(key) {
                    Some(entry) => crate::digest::value_digest(
                        entry.value(),
                        entry.expires_at_ms().is_some(),
                    ),
                    None => [0; 20],
                };
                out.push(Frame::Simple(Bytes::from(crate::digest::hex(&d))));
            }
            Frame::Array(out)
        }
        ("reload", _) => debug_reload(ctx, args),
        ("set-active-expire", 3) => match parse_int(arg(args, 2)) {
            Ok(n) => {
                ctx.keyspace()
                    .inner
                    .active_expire
                    .store(n != 0, Ordering::Relaxed);
                Frame::ok()
            }
            Err(e) => e,
        },
        ("object", 3) => {
            let key = arg(args, 2);
            let now = ctx.now_ms();
            let shard = ctx.shard(key);
            // Redis reads the dictionary directly: no expiry, no access.
            let Some(entry) = shard.peek(key) else {
                return err("ERR no such key");
            };
            let v = entry.value();
            let enc = encoding(v);
            let mut text = format!(
                "Value at:0x{:x} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                (v as *const _ as usize),
                refcount(v),
                enc,
                serialized_len(v),
                entry.access(),
                crate::access::idle_ms(entry.access(), now) / 1000,
            );
            if let crate::value::Value::List(l) = v {
                let nodes = l.node_count().max(1);
                let _ = write!(
                    text,
                    " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{}",
                    nodes,
                    l.len() as f64 / nodes as f64,
                    crate::encoding::Limits::current().list_size,
                    l.iter().map(|e| e.len() + 2).sum::<usize>()
                );
            }
            Frame::Simple(Bytes::from(text))
        }
        ("help", 2) => Frame::Array(
            [
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "OBJECT <key>",
                "    Show low level info about the key and associated value.",
                "RELOAD [option ...]",
                "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
                "    * MERGE: conflicting keys will be loaded from RDB.",
                "    * NOFLUSH: the existing database will not be removed before load, but",
                "      conflicting keys will generate an exception and kill the server.",
                "    * NOSAVE: the database will be loaded from an existing RDB file.",
                "    Examples:",
                "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
                "      the database.",
                "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
                "      existing RDB file.",
                "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
                "      file to the database.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        ),
        _ => unknown(),
    }
}

/// `DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]`: a snapshot taken and loaded
/// back through the persistence extension, the whole under the gate held
/// for write (DEBUG is EXCLUSIVE), as Redis does it in its main thread.
fn debug_reload(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (mut save, mut flush, mut merge) = (true, true, false);
    for opt in args.iter().skip(2) {
        if is(opt, "merge") {
            merge = true;
        } else if is(opt, "noflush") {
            flush = false;
        } else if is(opt, "nosave") {
            save = false;
        } else {
            return err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        }
    }
    let ks = ctx.keyspace().clone();
    if !flush && !merge && (0..ks.databases()).any(|db| ks.dbsize(db) > 0) {
        // Redis stops the whole server on the first key found both in
        // memory and in the file; cairn refuses up front instead.
        return err(
            "ERR DEBUG RELOAD NOFLUSH needs MERGE in cairn: without it Redis aborts on the first key that is both in memory and in the snapshot",
        );
    }
    let empty = || {
        let e = ks.engine();
        for db in 0..e.databases() {
            touch_watched(ctx, db, None);
        }
        e.flush_dbs(0..e.databases());
        e.counters.notify.flushed();
    };
    let empty: Option<&dyn Fn()> = if flush { Some(&empty) } else { None };
    for x in &ks.inner.extensions {
        if let Some(done) = x.debug_reload(&ks, save, empty) {
            return match done {
                Ok(()) => {
                    tracing::warn!("DB reloaded by DEBUG RELOAD");
                    Frame::ok()
                }
                Err(e) => e,
            };
        }
    }
    err("ERR DEBUG RELOAD needs persistence, and this server runs without it")
}

fn serialized_len(v: &crate::value::Value) -> usize {
    use crate::value::Value;
    match v {
        Value::Str(b) => b.len() + 1,
        Value::Int(n) => n.to_string().len() + 1,
        Value::List(l) => l.iter().map(|e| e.len() + 1).sum::<usize>() + 3,
        Value::Hash(h) => h.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>() + 3,
        Value::Set(s) => s.iter().map(|e| e.len() + 1).sum::<usize>() + 3,
        Value::ZSet(z) => z.iter().map(|(m, _)| m.len() + 9).sum::<usize>() + 3,
        Value::Stream(s) => s.heap_bytes(),
    }
}

/// Redis 7.0 shares the integers 0..10000 (OBJECT REFCOUNT shows
/// INT_MAX for them).
fn refcount(v: &crate::value::Value) -> i64 {
    match v {
        crate::value::Value::Int(n) if (0..10_000).contains(n) => i64::from(i32::MAX),
        crate::value::Value::Str(b)
            if crate::num::string2ll(b).is_some_and(|n| (0..10_000).contains(&n)) =>
        {
            i64::from(i32::MAX)
        }
        _ => 1,
    }
}

/// The encoding's name in Redis 7.0: hashes and sets report their own;
/// lists are always quicklists in 7.0.
fn encoding(v: &crate::value::Value) -> &'static str {
    use crate::value::Value;
    match v {
        Value::Int(_) => "int",
        Value::Str(b) => {
            if b.len() <= 20 && crate::num::string2ll(b).is_some() {
                "int"
            } else if b.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::List(_) => "quicklist",
        Value::Hash(h) => h.encoding(),
        Value::Set(s) => s.encoding(),
        Value::ZSet(z) => z.encoding(),
        Value::Stream(_) => "stream",
    }
}

/// OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP
fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    // Redis' `objectCommandLookup`: `LOOKUP_NOTOUCH|LOOKUP_NONOTIFY`.
    let _quiet = crate::stats::no_keymiss();
    let sub = match subcommand("object", args, OBJECT_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if sub == "help" {
        return Frame::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        );
    }
    let key = arg(args, 2);
    let now = ctx.now_ms();
    let ks = ctx.keyspace();
    let access = &ks.engine().counters.access;
    let lfu = access.is_lfu();
    let mut shard = ctx.shard(key);
    // OBJECT does not count as an access (Redis' LOOKUP_NOTOUCH).
    let Some(entry) = shard.get_untouched(key) else {
        return Frame::Null;
    };
    let v = entry.value();
    match sub {
        "encoding" => Frame::bulk(encoding(v)),
        "refcount" => Frame::Integer(refcount(v)),
        "idletime" if lfu => err(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        "idletime" => Frame::Integer(
            i64::try_from(crate::access::idle_ms(entry.access(), now) / 1000).unwrap_or(i64::MAX),
        ),
        "freq" if !lfu => err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        _ => Frame::Integer(i64::from(access.decayed(entry.access(), now))),
    }
}
