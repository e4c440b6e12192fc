//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, QUIT, CLIENT.

use bytes::Bytes;
use cairn_resp::{Frame, Protocol};

use super::{
    CommandSpec as S, Ctx, ERR_SYNTAX, Flags, TableBuilder, err, is, parse_int, subcommand,
};

pub(crate) fn register(t: &mut TableBuilder) {
    let g = "connection";
    let f = Flags::FAST | Flags::LOADING | Flags::STALE;
    t.add(
        S::new("ping", -1, f, g).doc("Ping the server", "1.0.0"),
        ping,
    );
    t.add(
        S::new("echo", 2, f, g).doc("Echo the given string", "1.0.0"),
        echo,
    );
    t.add(
        S::new("select", 2, f, g).doc("Change the selected database", "1.0.0"),
        select,
    );
    t.add(
        S::new("hello", -1, f | Flags::NO_AUTH | Flags::NOSCRIPT, g)
            .doc("Handshake with Redis", "6.0.0"),
        hello,
    );
    t.add(
        S::new("auth", -2, f | Flags::NO_AUTH | Flags::NOSCRIPT, g)
            .doc("Authenticate to the server", "1.0.0"),
        auth,
    );
    t.add(
        S::new("quit", -1, Flags::NO_AUTH | Flags::FAST, g).doc("Close the connection", "1.0.0"),
        quit,
    );
    t.add(
        S::new(
            "client",
            -2,
            Flags::ADMIN | Flags::NOSCRIPT | Flags::LOADING | Flags::STALE,
            g,
        )
        .doc("A container for client connection commands", "2.4.0"),
        client,
    );
}

fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|b| &b[..]).unwrap_or_default()
}

fn ping(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
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

/// Checks a password against `requirepass`; Redis 7.0's texts.
fn check_password(ctx: &mut Ctx<'_>, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Frame> {
    let ks = ctx.keyspace();
    let ok = match &ks.inner.requirepass {
        None => {
            if user.is_none() {
                return Err(err(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            true
        }
        Some(p) => &p[..] == pass,
    };
    let user_ok = user.is_none_or(|u| u == b"default");
    if ok && user_ok {
        ctx.session().authenticated = true;
        Ok(())
    } else {
        Err(err(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let r = match args.len() {
        2 => check_password(ctx, None, arg(args, 1)),
        3 => check_password(ctx, Some(arg(args, 1)), arg(args, 2)),
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
            if let Err(e) = check_password(ctx, Some(arg(args, i + 1)), arg(args, i + 2)) {
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
    if !ctx.session().authenticated {
        return err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
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
    let subs = [("setname", 3), ("getname", 2), ("id", 2), ("setinfo", 4)];
    match subcommand("client", args, &subs) {
        Err(e) => e,
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
        // Redis 7.2's library-name/version report; accepted and ignored.
        Ok(_) => Frame::ok(),
    }
}
