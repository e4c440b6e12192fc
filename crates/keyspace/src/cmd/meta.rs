//! Redis 7.0.15's own `COMMAND` metadata (flags, ACL categories, key specs,
//! subcommands) and `COMMAND DOCS` documentation, so commands cairn shares
//! with Redis report exactly what Redis reports and clients route (and
//! redis-cli hints) them the same way.
//!
//! `redis_commands.resp` is the RESP3 reply of `COMMAND` from a real
//! redis-server 7.0.15 (after `HELLO 3`), with CRLF stored as LF (no payload
//! contains a newline). To regenerate: send `HELLO 3`, `COMMAND` to the
//! server, keep the second reply, replace `\r\n` by `\n`.
//!
//! `redis_docs.resp` is stored the same way: the RESP3 reply of
//! `COMMAND DOCS name...` from redis-server 7.0.15 for the names of cairn's
//! `COMMAND LIST` without subcommands (the whole reply is twice as big, and
//! cairn never serves the rest). It keeps every subcommand of a container;
//! [`filter_doc_subs`] drops the ones cairn lacks when serving. Regenerate
//! it when a command is added: the differential suite compares `COMMAND
//! DOCS` of every command with Redis' and names the ones missing here.

use std::sync::OnceLock;

use bytes::BytesMut;
use cairn_resp::{Frame, Limits, parse_frame};
use hashbrown::HashMap;

use super::Flags;

static RAW: &[u8] = include_bytes!("redis_commands.resp");
static DOCS_RAW: &[u8] = include_bytes!("redis_docs.resp");

/// The `COMMAND INFO` entry Redis gives for `name` (lowercase; subcommands
/// as `container|sub`), if Redis 7.0 has that command.
pub(crate) fn redis_info(name: &str) -> Option<&'static Frame> {
    static TABLE: OnceLock<HashMap<String, Frame>> = OnceLock::new();
    TABLE.get_or_init(load).get(name)
}

/// The `COMMAND DOCS` map Redis gives for `name` (lowercase; subcommands
/// as `container|sub`), if Redis 7.0 has that command.
pub(crate) fn redis_docs(name: &str) -> Option<&'static Frame> {
    static TABLE: OnceLock<HashMap<String, Frame>> = OnceLock::new();
    TABLE.get_or_init(load_docs).get(name)
}

/// Parses an embedded reply stored with LF for CRLF.
fn parse_embedded(raw: &[u8]) -> Option<Frame> {
    let mut buf = BytesMut::with_capacity(raw.len() + raw.len() / 8);
    for &b in raw {
        if b == b'\n' {
            buf.extend_from_slice(b"\r\n");
        } else {
            buf.extend_from_slice(&[b]);
        }
    }
    match parse_frame(&mut buf, &Limits::default()) {
        Ok(Some(frame)) => Some(frame),
        other => {
            tracing::warn!(?other, "embedded Redis command metadata unreadable");
            None
        }
    }
}

fn load() -> HashMap<String, Frame> {
    let mut out = HashMap::new();
    match parse_embedded(RAW) {
        Some(Frame::Array(cmds)) => {
            for c in cmds {
                insert(&mut out, c);
            }
        }
        other => tracing::warn!(?other, "embedded Redis command table is not an array"),
    }
    out
}

fn load_docs() -> HashMap<String, Frame> {
    let mut out = HashMap::new();
    match parse_embedded(DOCS_RAW) {
        Some(Frame::Map(cmds)) => {
            for (name, docs) in cmds {
                insert_docs(&mut out, &name, docs);
            }
        }
        other => tracing::warn!(?other, "embedded Redis command docs are not a map"),
    }
    out
}

/// Indexes `docs` under `name`, and each of its subcommands' docs under
/// their full name (`config|get`), as `COMMAND DOCS config|get` finds them.
fn insert_docs(out: &mut HashMap<String, Frame>, name: &Frame, docs: Frame) {
    let Frame::Bulk(name) = name else { return };
    if let Some(Frame::Map(subs)) = doc_field(&docs, b"subcommands") {
        for (sub, sub_docs) in subs {
            insert_docs(out, sub, sub_docs.clone());
        }
    }
    out.insert(String::from_utf8_lossy(name).to_ascii_lowercase(), docs);
}

/// The value of `field` in a docs map.
fn doc_field<'a>(docs: &'a Frame, field: &[u8]) -> Option<&'a Frame> {
    let Frame::Map(fields) = docs else {
        return None;
    };
    fields.iter().find_map(|(k, v)| match k {
        Frame::Bulk(k) if &k[..] == field => Some(v),
        _ => None,
    })
}

fn insert(out: &mut HashMap<String, Frame>, info: Frame) {
    let Frame::Array(fields) = &info else { return };
    let Some(Frame::Bulk(name)) = fields.first() else {
        return;
    };
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    if let Some(Frame::Array(subs)) = fields.get(9) {
        for sub in subs {
            insert(out, sub.clone());
        }
    }
    out.insert(name, info);
}

/// The flags of an info entry's flag set that cairn knows (the others,
/// such as `skip_monitor`, only matter to `COMMAND INFO`, which serves
/// Redis' entry itself).
pub(crate) fn info_flags(flags: &Frame) -> Flags {
    let (Frame::Set(names) | Frame::Array(names)) = flags else {
        return Flags::NONE;
    };
    names.iter().fold(Flags::NONE, |acc, n| match n {
        // What dispatch serves while a script is busy.
        Frame::Simple(n) | Frame::Bulk(n) if &n[..] == b"allow_busy" => acc.with(Flags::ALLOW_BUSY),
        Frame::Simple(n) | Frame::Bulk(n) => Flags::NAMES
            .iter()
            .find(|(_, name)| name.as_bytes() == &n[..])
            .map_or(acc, |(f, _)| acc.with(*f)),
        _ => acc,
    })
}

/// A text field of a docs map (`summary`, `since`, `group`).
pub(crate) fn doc_str(docs: &'static Frame, field: &[u8]) -> Option<&'static str> {
    match doc_field(docs, field)? {
        Frame::Bulk(b) | Frame::Simple(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// Element 9 of an info entry (its subcommands) kept only for `keep`.
pub(crate) fn filter_subs(info: &Frame, keep: impl Fn(&[u8]) -> bool) -> Frame {
    let Frame::Array(fields) = info else {
        return info.clone();
    };
    let mut fields = fields.clone();
    if let Some(Frame::Array(subs)) = fields.get_mut(9) {
        subs.retain(|s| match s {
            Frame::Array(f) => match f.first() {
                Some(Frame::Bulk(n)) => keep(n),
                _ => false,
            },
            _ => false,
        });
    }
    Frame::Array(fields)
}

/// A docs map with its `subcommands` kept only for `keep` (given the full
/// name, `config|get`).
pub(crate) fn filter_doc_subs(docs: &Frame, keep: impl Fn(&[u8]) -> bool) -> Frame {
    let Frame::Map(fields) = docs else {
        return docs.clone();
    };
    let mut fields = fields.clone();
    for (k, v) in &mut fields {
        if let (Frame::Bulk(k), Frame::Map(subs)) = (&*k, v)
            && &k[..] == b"subcommands"
        {
            subs.retain(|(n, _)| matches!(n, Frame::Bulk(n) if keep(n)));
        }
    }
    Frame::Map(fields)
}

/// Whether Redis' `COMMAND INFO` of `name` (`get`, `config|get`) lists
/// `flag` among its flags, including those cairn does not dispatch on
/// (`skip_slowlog`, `skip_monitor`).
pub(crate) fn has_flag(name: &str, flag: &str) -> bool {
    let Some(Frame::Array(info)) = redis_info(name) else {
        return false;
    };
    let Some(Frame::Set(names) | Frame::Array(names)) = info.get(2) else {
        return false;
    };
    names
        .iter()
        .any(|n| matches!(n, Frame::Simple(n) | Frame::Bulk(n) if n[..] == *flag.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses() {
        let get = redis_info("get").cloned();
        let Some(Frame::Array(f)) = get else {
            panic!("get missing: {get:?}")
        };
        assert_eq!(f.get(1), Some(&Frame::Integer(2)));
        assert!(redis_info("config|get").is_some());
        assert!(redis_info("nosuchcommand").is_none());
    }

    #[test]
    fn embedded_docs_parse() {
        let get = redis_docs("get").cloned().unwrap_or(Frame::Null);
        assert_eq!(
            doc_field(&get, b"complexity"),
            Some(&Frame::bulk("O(1)")),
            "{get:?}"
        );
        let Some(Frame::Array(args)) = doc_field(&get, b"arguments") else {
            panic!("get has no arguments: {get:?}");
        };
        assert_eq!(args.len(), 1);
        // Subcommands are indexed by their full name.
        let sub = redis_docs("config|get").cloned().unwrap_or(Frame::Null);
        assert_eq!(doc_field(&sub, b"group"), Some(&Frame::bulk("server")));
        assert!(redis_docs("nosuchcommand").is_none());
        // Filtering keeps only the subcommands asked for.
        let config = redis_docs("config").cloned().unwrap_or(Frame::Null);
        let only_get = filter_doc_subs(&config, |n| n == b"config|get");
        let Some(Frame::Map(subs)) = doc_field(&only_get, b"subcommands") else {
            panic!("config has no subcommands: {only_get:?}");
        };
        assert_eq!(subs.len(), 1);
    }
}
