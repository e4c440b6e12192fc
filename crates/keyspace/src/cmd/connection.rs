//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, QUIT, CLIENT.

use bytes::Bytes;
use cairn_resp::{Frame, Protocol};

use super::args::arg;
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, is, parse_int, subcommand};

const CLIENT_SUBS: &[(&str, i32)] = &[
    ("setname", 3),
    ("getname", 2),
    ("id", 2),
    ("setinfo", 4),
    ("list", -2),
    ("info", 2),
    ("kill", -3),
    ("no-evict", 3),
    ("no-touch", 3),
    ("reply", 3),
    ("tracking", -3),
    ("caching", 3),
    ("getredir", 2),
    ("trackinginfo", 2),
    ("pause", -3),
    ("unpause", 2),
    ("unblock", -3),
    ("help", 2),
];

/// Redis 7.0.15's `CLIENT HELP`, line for line.
const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("ping", ping);
    t.redis("echo", echo);
    t.redis("select", select);
    t.redis("hello", hello);
    t.redis("auth", auth);
    t.redis("quit", quit);
    t.redis("reset", reset);
    t.redis_with("client", |s| s.subs(CLIENT_SUBS), client);
}

fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    // A subscribed RESP2 client gets PING's answer in a message's shape.
    let s = ctx.session();
    if s.protocol == Protocol::Resp2 && s.subscriptions() > 0 && args.len() <= 2 {
        return Frame::Array(vec![
            Frame::bulk("pong"),
            Frame::Bulk(args.get(1).cloned().unwrap_or_default()),
        ]);
    }
    match args.len() {
        1 => Frame::simple("PONG"),
        2 => Frame::Bulk(Bytes::copy_from_slice(arg(args, 1))),
        _ => err("ERR wrong number of arguments for 'ping' command"),
    }
}

fn echo(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(arg(args, 1)))
}

fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match parse_int(arg(args, 1)) {
        Ok(n) if n >= 0 && (n as u64) < ctx.keyspace().databases() as u64 => {
            ctx.session().db = n as usize;
            Frame::ok()
        }
        Ok(_) => err("ERR DB index is out of range"),
        Err(e) => e,
    }
}

/// Authenticates the connection as `user` (the default user when `None`,
/// the one-argument `AUTH`), with Redis 7.0's texts; a refusal is logged
/// for `ACL LOG` under `object` (the command's name as the client typed
/// it, as Redis logs `argv[0]`).
fn check_password(
    ctx: &mut Ctx<'_>,
    object: &str,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Frame> {
    let auth = &ctx.keyspace().inner.auth;
    if user.is_none() && auth.nopass() {
        return Err(err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    // Only the default user exists; another name fails as an unknown user
    // does in Redis, after the same work, so the time does not tell.
    let ok = auth.check(pass) && user.is_none_or(|u| u == b"default");
    if ok {
        ctx.session().authenticated = true;
        return Ok(());
    }
    let cmd = ctx.command();
    let info = own_client_line(ctx, cmd);
    ctx.keyspace()
        .inner
        .auth
        .log_denied_auth(object, user.unwrap_or(b"default"), info);
    Err(err(
        "WRONGPASS invalid username-password pair or user is disabled.",
    ))
}

/// The command's name as the client typed it.
fn typed(args: &[Bytes]) -> String {
    String::from_utf8_lossy(arg(args, 0)).into_owned()
}

/// The caller's own `CLIENT INFO` line, naming `cmd` as its command.
pub(crate) fn own_client_line(ctx: &mut Ctx<'_>, cmd: &str) -> String {
    let me = ctx.session().id;
    ctx.keyspace()
        .inner
        .clients
        .all()
        .into_iter()
        .find(|c| c.id == me)
        .map(|c| client_line(ctx, &c, cmd))
        .unwrap_or_default()
}

fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let r = match args.len() {
        2 => check_password(ctx, &typed(args), None, arg(args, 1)),
        3 => check_password(ctx, &typed(args), Some(arg(args, 1)), arg(args, 2)),
        _ => return err(ERR_SYNTAX),
    };
    match r {
        Ok(()) => Frame::ok(),
        Err(e) => e,
    }
}

fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut proto = None;
    if args.len() >= 2 {
        match parse_int(arg(args, 1)) {
            Ok(2) => proto = Some(Protocol::Resp2),
            Ok(3) => proto = Some(Protocol::Resp3),
            Ok(_) => return err("NOPROTO unsupported protocol version"),
            Err(_) => return err("ERR Protocol version is not an integer or out of range"),
        }
    }
    let mut i = 2;
    let mut setname = None;
    while let Some(opt) = args.get(i) {
        if is(opt, "auth") && i + 2 < args.len() {
            if let Err(e) =
                check_password(ctx, &typed(args), Some(arg(args, i + 1)), arg(args, i + 2))
            {
                return e;
            }
            i += 3;
        } else if is(opt, "setname") && i + 1 < args.len() {
            setname = Some(Bytes::copy_from_slice(arg(args, i + 1)));
            i += 2;
        } else {
            return Frame::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    if !ctx.session().authenticated && ctx.keyspace().inner.auth.required() {
        return err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    if let Some(n) = setname {
        if let Err(e) = valid_name(&n) {
            return e;
        }
        ctx.session().name = (!n.is_empty()).then_some(n);
    }
    if let Some(p) = proto {
        ctx.session().protocol = p;
    }
    let s = ctx.session();
    let proto_n = if s.protocol == Protocol::Resp3 { 3 } else { 2 };
    let id = s.id as i64;
    let kv = |k: &'static str, v: Frame| (Frame::bulk(k), v);
    Frame::Map(vec![
        kv("server", Frame::bulk("redis")),
        kv("version", Frame::bulk(crate::REDIS_VERSION)),
        kv("proto", Frame::Integer(proto_n)),
        kv("id", Frame::Integer(id)),
        kv("mode", Frame::bulk("standalone")),
        kv("role", Frame::bulk("master")),
        kv("modules", Frame::Array(Vec::new())),
    ])
}

fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    ctx.close_after(Frame::ok())
}

fn valid_name(n: &[u8]) -> Result<(), Frame> {
    if n.iter().any(|&c| c <= b' ' || c > b'~') {
        return Err(err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match subcommand("client", args, CLIENT_SUBS) {
        Err(e) => e,
        Ok("help") => Frame::Array(CLIENT_HELP.iter().map(|l| Frame::simple(l)).collect()),
        Ok("setname") => {
            let n = arg(args, 2);
            if let Err(e) = valid_name(n) {
                return e;
            }
            ctx.session().name = (!n.is_empty()).then(|| Bytes::copy_from_slice(n));
            Frame::ok()
        }
        Ok("getname") => ctx
            .session()
            .name
            .clone()
            .map(Frame::Bulk)
            .unwrap_or(Frame::Null),
        Ok("id") => Frame::Integer(ctx.session().id as i64),
        Ok("list") => client_list(ctx, args),
        Ok("tracking") => super::tracking::client_tracking(ctx, args),
        Ok("caching") => super::tracking::client_caching(ctx, args),
        Ok("getredir") => super::tracking::client_getredir(ctx),
        Ok("trackinginfo") => super::tracking::client_trackinginfo(ctx),
        Ok("info") => {
            let line = own_client_line(ctx, "client");
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(line + "\n"),
            }
        }
        Ok("kill") => client_kill(ctx, args),
        Ok(sub @ ("no-evict" | "no-touch")) => {
            let on = if is(arg(args, 2), "on") {
                true
            } else if is(arg(args, 2), "off") {
                false
            } else {
                return err(ERR_SYNTAX);
            };
            if sub == "no-evict" {
                ctx.session().no_evict = on;
            } else {
                ctx.session().no_touch = on;
            }
            Frame::ok()
        }
        Ok("reply") => client_reply(ctx.session(), arg(args, 2)),
        Ok("pause") => client_pause(ctx, args),
        Ok("unblock") => {
            if args.len() > 4 {
                return Frame::error(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(arg(args, 1))
                ));
            }
            // The reason is checked before the id, as in Redis.
            let error = match args.get(3) {
                None => false,
                Some(m) if is(m, "timeout") => false,
                Some(m) if is(m, "error") => true,
                Some(_) => return err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
            };
            let Some(id) = crate::num::string2ll(arg(args, 2)) else {
                return err("ERR value is not an integer or out of range");
            };
            let id = u64::try_from(id).unwrap_or(0);
            Frame::Integer(i64::from(ctx.keyspace().unblock_client(id, error)))
        }
        Ok("unpause") => {
            ctx.keyspace().inner.pause.unpause();
            Frame::ok()
        }
        // Redis 7.2's library-name/version report; accepted and ignored.
        Ok(_) => Frame::ok(),
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL], with Redis 7.0's errors.
fn client_pause(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    use crate::pause::PauseKind;
    if args.len() > 4 {
        return Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(arg(args, 1))
        ));
    }
    // The mode is checked before the timeout, as in Redis.
    let kind = match args.get(3) {
        None => PauseKind::All,
        Some(m) if is(m, "write") => PauseKind::Write,
        Some(m) if is(m, "all") => PauseKind::All,
        Some(_) => return err("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let ms = match crate::num::string2ll(arg(args, 2)) {
        Some(n) if n < 0 => return err("ERR timeout is negative"),
        Some(n) => n,
        None => return err("ERR timeout is not an integer or out of range"),
    };
    let ms = u64::try_from(ms).unwrap_or(0);
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms.min(1 << 40));
    ctx.keyspace().inner.pause.pause(kind, until);
    Frame::ok()
}

/// CLIENT REPLY ON|OFF|SKIP, as Redis 7.0's flags. The session drops the
/// replies (see `Session::execute`); pushes are written regardless. OFF and
/// SKIP answer nothing themselves: their `+OK` is only seen as an element
/// of an EXEC reply, where cairn applies them after the EXEC.
fn client_reply(s: &mut crate::SessionState, mode: &[u8]) -> Frame {
    if is(mode, "on") {
        s.reply_off = false;
        s.reply_skip = false;
    } else if is(mode, "off") {
        s.reply_off = true;
    } else if is(mode, "skip") {
        // Under OFF a SKIP changes nothing (Redis ignores it too).
        if !s.reply_off {
            s.reply_skip_next = true;
        }
        // SKIP's own reply is not sent either.
        s.reply_skip = true;
    } else {
        return err(ERR_SYNTAX);
    }
    Frame::ok()
}

/// One `CLIENT LIST` line in Redis 7.0's field order. `qbuf` and `omem`
/// are the connection's unparsed input and unsent output as it last
/// reported them; the other memory fields are not tracked by cairn and read
/// as Redis' idle-client values.
fn client_line(ctx: &mut Ctx<'_>, c: &crate::pubsub::Client, own_cmd: &str) -> String {
    let me = ctx.session().id == c.id;
    let (db, name, cmd, idle, sub, psub, multi, resp, no_evict, no_touch) = if me {
        // The caller's own line shows its live state and this command.
        let s = ctx.session();
        (
            s.db,
            s.name.clone(),
            own_cmd,
            0,
            s.channels.len(),
            s.patterns.len(),
            s.multi.as_ref().map_or(-1, |q| q.len() as i64),
            if s.protocol == Protocol::Resp3 { 3 } else { 2 },
            s.no_evict,
            s.no_touch,
        )
    } else {
        let v = c.view.lock();
        (
            v.db,
            v.name.clone(),
            v.last_cmd,
            v.last_active.elapsed().as_secs(),
            v.sub,
            v.psub,
            v.multi,
            v.resp,
            v.no_evict,
            v.no_touch,
        )
    };
    let mut flags = String::new();
    if sub + psub > 0 {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    let track = ctx.keyspace().engine().counters.notify.mode(c.id);
    if let Some(t) = &track {
        flags.push('t');
        if t.broken_redirect {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if c.conn.as_ref().is_some_and(cairn_resp::ConnInfo::is_unix) {
        flags.push('U');
    }
    if no_evict {
        flags.push('e');
    }
    if no_touch {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let (addr, laddr) = c
        .conn
        .as_ref()
        .map(|i| (i.peer.to_string(), i.local.to_string()))
        .unwrap_or_default();
    let omem = c.omem.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events={} cmd={} user=default redir={} resp={}",
        c.id,
        addr,
        laddr,
        name.map(|n| String::from_utf8_lossy(&n).into_owned())
            .unwrap_or_default(),
        c.created.elapsed().as_secs(),
        idle,
        flags,
        db,
        sub,
        psub,
        multi,
        c.qbuf.load(std::sync::atomic::Ordering::Relaxed),
        omem,
        if omem > 0 { "rw" } else { "r" },
        cmd,
        track.map_or(-1, |t| i64::try_from(t.redirect).unwrap_or(i64::MAX)),
        resp,
    )
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]
fn client_list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut ids: Option<Vec<u64>> = None;
    let mut ty: Option<&'static str> = None;
    match args.get(2) {
        None => {}
        Some(o) if is(o, "type") && args.len() == 4 => {
            let t = arg(args, 3);
            ty = Some(if is(t, "normal") {
                "normal"
            } else if is(t, "pubsub") {
                "pubsub"
            } else if is(t, "master") || is(t, "replica") || is(t, "slave") {
                "none"
            } else {
                return Frame::error(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                ));
            });
        }
        Some(o) if is(o, "id") && args.len() >= 4 => {
            let mut v = Vec::new();
            for a in args.iter().skip(3) {
                match parse_int(a) {
                    Ok(n) if n > 0 => v.push(n as u64),
                    _ => return err("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
        }
        Some(_) => return err(ERR_SYNTAX),
    }
    let mut out = String::new();
    for c in ctx.keyspace().inner.clients.all() {
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        let line = client_line(ctx, &c, "client");
        let pubsub = line.contains(" flags=P");
        match ty {
            Some("normal") if pubsub => continue,
            Some("pubsub") if !pubsub => continue,
            Some("none") => continue,
            _ => {}
        }
        out.push_str(&line);
        out.push('\n');
    }
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(out),
    }
}

/// CLIENT KILL addr:port | CLIENT KILL <filter> <value> ...
fn client_kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let legacy = args.len() == 3;
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut ty = None;
    let mut skipme = true;
    if legacy {
        addr = Some(arg(args, 2).to_vec());
    } else {
        let mut i = 2;
        while i < args.len() {
            let Some(v) = args.get(i + 1) else {
                return err(ERR_SYNTAX);
            };
            let f = arg(args, i);
            if is(f, "id") {
                match parse_int(v) {
                    Ok(n) if n > 0 => id = Some(n as u64),
                    _ => return err("ERR client-id should be greater than 0"),
                }
            } else if is(f, "addr") {
                addr = Some(v.to_vec());
            } else if is(f, "laddr") {
                laddr = Some(v.to_vec());
            } else if is(f, "type") {
                if !["normal", "pubsub", "master", "replica", "slave"]
                    .iter()
                    .any(|t| is(v, t))
                {
                    return Frame::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(v)
                    ));
                }
                ty = Some(v.to_ascii_lowercase());
            } else if is(f, "user") {
                if !is(v, "default") {
                    return Frame::error(format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(v)
                    ));
                }
            } else if is(f, "skipme") {
                if is(v, "yes") {
                    skipme = true;
                } else if is(v, "no") {
                    skipme = false;
                } else {
                    return err(ERR_SYNTAX);
                }
            } else {
                return err(ERR_SYNTAX);
            }
            i += 2;
        }
    }
    let me = ctx.session().id;
    let mut killed = 0;
    let mut kill_me = false;
    for c in ctx.keyspace().inner.clients.all() {
        let (peer, local) = c
            .conn
            .as_ref()
            .map(|i| (i.peer.to_string(), i.local.to_string()))
            .unwrap_or_default();
        if id.is_some_and(|i| i != c.id)
            || addr.as_ref().is_some_and(|a| a[..] != *peer.as_bytes())
            || laddr.as_ref().is_some_and(|a| a[..] != *local.as_bytes())
        {
            continue;
        }
        if let Some(t) = &ty {
            let pubsub = {
                let v = c.view.lock();
                v.sub + v.psub > 0
            };
            let ok = match &t[..] {
                b"normal" => !pubsub,
                b"pubsub" => pubsub,
                _ => false,
            };
            if !ok {
                continue;
            }
        }
        if c.id == me {
            // Legacy form kills the caller too; filters honour SKIPME.
            if !legacy && skipme {
                continue;
            }
            kill_me = true;
        } else {
            let _ = c.events.send(cairn_resp::Event::Kill);
        }
        killed += 1;
    }
    let reply = if legacy {
        if killed == 0 {
            return err("ERR No such client");
        }
        Frame::ok()
    } else {
        Frame::Integer(killed)
    };
    if kill_me {
        return ctx.close_after(reply);
    }
    reply
}

/// RESET: back to a fresh connection's state.
fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let ks = ctx.keyspace();
    let s = ctx.session();
    crate::session::discard(ks, s);
    crate::session::unsubscribe_all(ks, s);
    if s.tracking.take().is_some() {
        ks.engine().counters.notify.disable(s.id);
    }
    s.caching = false;
    s.db = 0;
    s.protocol = Protocol::Resp2;
    s.name = None;
    s.no_evict = false;
    s.no_touch = false;
    // Redis' `clearClientConnectionState` turns replies back on but leaves
    // a SKIP that covers this very command (RESET is then not answered).
    s.reply_off = false;
    s.reply_skip_next = false;
    s.authenticated = !ks.inner.auth.required();
    ks.inner.monitors.remove(s.id);
    Frame::simple("RESET")
}
