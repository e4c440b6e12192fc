//! Redis 7.0.15's own `COMMAND` metadata (flags, ACL categories, key specs,
//! subcommands), so commands cairn shares with Redis report exactly what
//! Redis reports and clients route them the same way.
//!
//! `redis_commands.resp` is the RESP3 reply of `COMMAND` from a real
//! redis-server 7.0.15 (after `HELLO 3`), with CRLF stored as LF (no payload
//! contains a newline). To regenerate: send `HELLO 3`, `COMMAND` to the
//! server, keep the second reply, replace `\r\n` by `\n`.

use std::sync::OnceLock;

use bytes::BytesMut;
use cairn_resp::{Frame, Limits, parse_frame};
use hashbrown::HashMap;

static RAW: &[u8] = include_bytes!("redis_commands.resp");

/// The `COMMAND INFO` entry Redis gives for `name` (lowercase; subcommands
/// as `container|sub`), if Redis 7.0 has that command.
pub(crate) fn redis_info(name: &str) -> Option<&'static Frame> {
    static TABLE: OnceLock<HashMap<String, Frame>> = OnceLock::new();
    TABLE.get_or_init(load).get(name)
}

fn load() -> HashMap<String, Frame> {
    let mut buf = BytesMut::with_capacity(RAW.len() + RAW.len() / 8);
    for &b in RAW {
        if b == b'\n' {
            buf.extend_from_slice(b"\r\n");
        } else {
            buf.extend_from_slice(&[b]);
        }
    }
    let mut out = HashMap::new();
    match parse_frame(&mut buf, &Limits::default()) {
        Ok(Some(Frame::Array(cmds))) => {
            for c in cmds {
                insert(&mut out, c);
            }
        }
        other => tracing::warn!(?other, "embedded Redis command table unreadable"),
    }
    out
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
}
