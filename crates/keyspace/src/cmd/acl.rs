//! ACL: the surface clients and tools call, for the one user cairn has
//! (`default`, with all permissions; `auth.rs` keeps its passwords).
//! Subcommands that would create or describe other users answer as Redis
//! does for a user that does not exist, or refuse with an error that says
//! cairn has no other users.

use bytes::Bytes;
use cairn_resp::Frame;
use rand::RngCore;

use super::args::arg;
use super::server::command_info;
use super::{Ctx, TableBuilder, err, int, is, parse_int, subcommand};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis_with("acl", |s| s.subs(ACL_SUBS), acl);
}

const ACL_SUBS: &[(&str, i32)] = &[
    ("cat", -2),
    ("deluser", -3),
    ("dryrun", -4),
    ("genpass", -2),
    ("getuser", 3),
    ("list", 2),
    ("load", 2),
    ("log", -2),
    ("save", 2),
    ("setuser", -3),
    ("users", 2),
    ("whoami", 2),
    ("help", 2),
];

/// Redis' categories, in the order `ACL CAT` lists them.
const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn acl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = match subcommand("acl", args, ACL_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let auth = &ctx.keyspace().inner.auth;
    match sub {
        "whoami" => Frame::bulk("default"),
        "users" => Frame::Array(vec![Frame::bulk("default")]),
        "list" => Frame::Array(vec![Frame::Bulk(Bytes::from(auth.list_line()))]),
        "getuser" if is(arg(args, 2), "default") => getuser(ctx),
        "getuser" => Frame::Null,
        "setuser" if is(arg(args, 2), "default") => match auth.apply_rules(&args[3..]) {
            Ok(()) => Frame::ok(),
            Err(e) => Frame::error(e),
        },
        "setuser" => err(
            "ERR cairn has only the default user: creating or changing other ACL users is not supported",
        ),
        "deluser" => {
            if args[2..].iter().any(|u| u.as_ref() == b"default") {
                return err("ERR The 'default' user cannot be removed");
            }
            // No other user exists, so none is deleted.
            int(0)
        }
        "dryrun" => dryrun(ctx, args),
        "cat" => cat(ctx, args),
        "genpass" => genpass(args),
        "log" => log(ctx, args),
        "load" | "save" => err(NO_ACL_FILE),
        _ => help(),
    }
}

/// `ACL GETUSER default` as Redis 7.0 answers it (a map in RESP3).
fn getuser(ctx: &mut Ctx<'_>) -> Frame {
    let auth = &ctx.keyspace().inner.auth;
    let mut flags = vec![Frame::bulk("on")];
    if auth.nopass() {
        flags.push(Frame::bulk("nopass"));
    }
    let passwords = auth
        .password_hexes()
        .into_iter()
        .map(|h| Frame::Bulk(Bytes::from(h)))
        .collect();
    Frame::Map(vec![
        (Frame::bulk("flags"), Frame::Array(flags)),
        (Frame::bulk("passwords"), Frame::Array(passwords)),
        (Frame::bulk("commands"), Frame::bulk("+@all")),
        (Frame::bulk("keys"), Frame::bulk("~*")),
        (Frame::bulk("channels"), Frame::bulk("&*")),
        (Frame::bulk("selectors"), Frame::Array(Vec::new())),
    ])
}

/// `ACL DRYRUN user command [arg ...]`: the default user may run every
/// command, so this checks that the command exists and its arity.
fn dryrun(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let user = arg(args, 2);
    if user != b"default" {
        return Frame::error(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(user)
        ));
    }
    let name = arg(args, 3);
    let table = &ctx.keyspace().inner.table;
    let Some(cmd) = table.lookup(name) else {
        return Frame::error(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(name)
        ));
    };
    if !cmd.spec.arity_ok(args.len() - 3) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.spec.name
        ));
    }
    Frame::ok()
}

/// `ACL CAT [category]`: the categories, or cairn's commands (and
/// subcommands, as `container|sub`) in one, from Redis' own metadata.
fn cat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(wanted) = args.get(2) else {
        return Frame::Array(CATEGORIES.iter().copied().map(Frame::bulk).collect());
    };
    let Some(category) = CATEGORIES.iter().find(|c| is(wanted, c)) else {
        return Frame::error(format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(wanted)
        ));
    };
    let tag = format!("@{category}");
    let mut out = Vec::new();
    for c in &ctx.keyspace().inner.table.commands {
        collect_in_category(&command_info(c), &tag, &mut out);
    }
    Frame::Array(out)
}

/// Adds the command `info` describes (a `COMMAND INFO` entry) when it is in
/// the category `tag`, then its subcommands.
fn collect_in_category(info: &Frame, tag: &str, out: &mut Vec<Frame>) {
    let Frame::Array(fields) = info else { return };
    let in_category = fields.get(6).and_then(items).is_some_and(|cats| {
        cats.iter()
            .any(|f| frame_text(f).is_some_and(|t| t.eq_ignore_ascii_case(tag.as_bytes())))
    });
    if in_category && let Some(name) = fields.first() {
        out.push(name.clone());
    }
    if let Some(subs) = fields.get(9).and_then(items) {
        for s in subs {
            collect_in_category(s, tag, out);
        }
    }
}

/// The elements of an array or a set (the embedded metadata is RESP3).
fn items(f: &Frame) -> Option<&[Frame]> {
    match f {
        Frame::Array(v) | Frame::Set(v) => Some(v),
        _ => None,
    }
}

fn frame_text(f: &Frame) -> Option<&[u8]> {
    match f {
        Frame::Simple(b) | Frame::Bulk(b) => Some(b),
        _ => None,
    }
}

/// `ACL GENPASS [bits]`: random hex from the OS-seeded generator, as many
/// digits as cover `bits` (256 by default).
fn genpass(args: &[Bytes]) -> Frame {
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match parse_int(a) {
            Ok(n) if (1..=4096).contains(&n) => n,
            Err(e) => return e,
            Ok(_) => {
                return err(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                );
            }
        },
    };
    let chars = usize::try_from((bits + 3) / 4).unwrap_or(64);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::rng().fill_bytes(&mut bytes);
    let mut hex = crate::auth::hex(&bytes);
    hex.truncate(chars);
    Frame::Bulk(Bytes::from(hex))
}

/// `ACL LOG [count | RESET]`: the refused authentications, newest first.
fn log(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let auth = &ctx.keyspace().inner.auth;
    let count = match args.get(2) {
        None => 10,
        Some(a) if is(a, "reset") => {
            auth.reset_log();
            return Frame::ok();
        }
        Some(a) => match parse_int(a) {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(_) => return err("ERR value is not an integer or out of range"),
        },
    };
    auth.with_log(|entries| {
        Frame::Array(
            entries
                .iter()
                .take(count)
                .map(|e| {
                    Frame::Map(vec![
                        (Frame::bulk("count"), Frame::Integer(e.count as i64)),
                        (Frame::bulk("reason"), Frame::bulk(e.reason)),
                        (Frame::bulk("context"), Frame::bulk(e.context)),
                        (
                            Frame::bulk("object"),
                            Frame::Bulk(Bytes::from(e.object.clone())),
                        ),
                        (
                            Frame::bulk("username"),
                            Frame::Bulk(Bytes::from(e.username.clone())),
                        ),
                        (
                            Frame::bulk("age-seconds"),
                            Frame::Double(e.created.elapsed().as_millis() as f64 / 1000.0),
                        ),
                        (
                            Frame::bulk("client-info"),
                            Frame::Bulk(Bytes::from(e.client_info.clone())),
                        ),
                    ])
                })
                .collect(),
        )
    })
}

fn help() -> Frame {
    Frame::Array(
        [
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
            "HELP",
            "    Prints this help.",
        ]
        .iter()
        .map(|l| Frame::simple(l))
        .collect(),
    )
}
