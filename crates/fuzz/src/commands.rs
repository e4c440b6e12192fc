//! `commands`: argument vectors against a keyspace, then its invariants.
//!
//! The bytes are read as a program: a byte picks the command among every
//! one the keyspace registers, the next its argument count, and each
//! argument is a key of a small key space (so commands collide on types),
//! a number or option word Redis parses, or raw bytes from the input.
//! Commands that stop the thread or the process (DEBUG, SHUTDOWN, MONITOR)
//! are left out; blocking commands answer at once in a bare session.
//!
//! After every command, each key of database 0 must have exactly one type,
//! and the keyspace must agree with itself about it: TYPE, EXISTS, the
//! type's length command, WRONGTYPE from another type's, and DBSIZE equal
//! to the keys KEYS lists. At the end the same holds in every database.

use std::sync::Arc;

use cairn_keyspace::{Keyspace, ManualClock, Session};
use cairn_resp::Frame;

const KEYS: &[&str] = &["k0", "k1", "k2", "{k}3"];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "10",
    "100",
    "-100",
    "1000000",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1.5",
    "-0.5",
    "1e3",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "(1",
    "[a",
    "(a",
    "-",
    "+",
    "*",
    "$",
    ">",
    "0-1",
    "1-0",
    "1-*",
    "",
    "13.361389",
    "38.115556",
];

const WORDS: &[&str] = &[
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "PERSIST",
    "GET",
    "WITHSCORES",
    "WITHSCORE",
    "LIMIT",
    "COUNT",
    "MATCH",
    "TYPE",
    "BY",
    "STORE",
    "ALPHA",
    "ASC",
    "DESC",
    "BYSCORE",
    "BYLEX",
    "REV",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "MAXLEN",
    "MINID",
    "~",
    "=",
    "GROUP",
    "STREAMS",
    "MKSTREAM",
    "WEIGHTS",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "RANK",
    "MAXLEN",
    "LEN",
    "IDX",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "BIT",
    "BYTE",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "u8",
    "i16",
    "u63",
    "i64",
    "#1",
    "FROMLONLAT",
    "FROMMEMBER",
    "BYRADIUS",
    "BYBOX",
    "m",
    "km",
    "WITHCOORD",
    "WITHDIST",
    "WITHHASH",
    "ANY",
    "REPLACE",
    "DB",
    "IDLETIME",
    "FREQ",
    "ENCODING",
    "NOACK",
    "JUSTID",
    "FORCE",
    "IDLE",
    "RETRYCOUNT",
    "LASTID",
    "ENTRIESREAD",
    "CREATE",
    "CREATECONSUMER",
    "SETID",
    "DESTROY",
    "NOMKSTREAM",
    "FULL",
    "CONSUMERS",
    "GROUPS",
    "STREAM",
    "ASYNC",
    "SYNC",
    "RESETSTAT",
    "SET",
    "ON",
    "OFF",
    "BCAST",
    "PREFIX",
    "NOLOOP",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "STOREDIST",
    "SAMPLES",
    "USAGE",
    "NOW",
    "KEYS",
    "FIELDS",
    "value",
    "a",
    "b",
    "c",
    "g",
    "c1",
];

/// Commands that would stop the fuzzing thread or process, or that read
/// the wall clock (left out so a run replays exactly).
const LEFT_OUT: &[&str] = &[
    "debug",
    "shutdown",
    "monitor",
    "save",
    "bgsave",
    "bgrewriteaof",
];

/// The names the keyspace registers, in a fixed order.
fn command_names(session: &mut Session) -> Vec<String> {
    let Frame::Array(names) = session.command(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST is not an array");
    };
    let mut names: Vec<String> = names
        .into_iter()
        .filter_map(|f| match f {
            Frame::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        })
        .filter(|n| !LEFT_OUT.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// Reads the input as argument vectors.
struct Program<'a> {
    data: &'a [u8],
}

impl Program<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn argument(&mut self) -> Option<Vec<u8>> {
        let kind = self.byte()?;
        let pick = usize::from(self.byte()?);
        let word = |list: &[&str]| list[pick % list.len()].as_bytes().to_vec();
        Some(match kind {
            0..=99 => word(KEYS),
            100..=169 => word(NUMBERS),
            170..=239 => word(WORDS),
            _ => {
                let n = (pick % 24).min(self.data.len());
                let (raw, rest) = self.data.split_at(n);
                self.data = rest;
                raw.to_vec()
            }
        })
    }

    /// A command: its name (a byte indexing the registered names, or 255
    /// and then a length byte and the name spelled out, so seeds stay
    /// readable as commands are added), an argument count byte, and the
    /// arguments.
    fn next_command(&mut self, names: &[String]) -> Option<Vec<Vec<u8>>> {
        let name = match self.byte()? {
            255 => {
                let n = usize::from(self.byte()?).min(self.data.len());
                let (raw, rest) = self.data.split_at(n);
                self.data = rest;
                raw.to_vec()
            }
            b => names[usize::from(b) % names.len()].as_bytes().to_vec(),
        };
        let argc = usize::from(self.byte()? % 8);
        let mut args = vec![name];
        for _ in 0..argc {
            args.push(self.argument()?);
        }
        Some(args)
    }
}

/// Panics when a command panics or leaves the keyspace inconsistent.
pub fn commands(data: &[u8]) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let ks = Keyspace::builder().clock(clock).build();
    let mut session = ks.session();
    let mut checker = ks.session();
    let names = command_names(&mut session);
    let mut program = Program { data };
    let mut history: Vec<String> = Vec::new();
    while let Some(args) = program.next_command(&names) {
        history.push(
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        );
        let _ = session.command(&args);
        if !consistent(&mut checker, 0, &history) {
            // A pause or a blocked checker: nothing more can be checked.
            return;
        }
    }
    for db in 0..16 {
        if !consistent(&mut checker, db, &history) {
            return;
        }
    }
}

/// The length command of each type, which must answer a positive count
/// (a string may be empty, a stream may have no entries).
const LENGTHS: &[(&str, &str, i64)] = &[
    ("string", "STRLEN", 0),
    ("list", "LLEN", 1),
    ("set", "SCARD", 1),
    ("zset", "ZCARD", 1),
    ("hash", "HLEN", 1),
    ("stream", "XLEN", 0),
];

/// Checks database `db`; `false` when the checker got no answer (the
/// server is paused for it), so nothing can be checked.
fn consistent(checker: &mut Session, db: usize, history: &[String]) -> bool {
    let context = || history.join("\n  ");
    let db = db.to_string();
    if checker.command(&["SELECT", db.as_str()]) != Frame::ok() {
        return false;
    }
    let mut present = 0;
    for key in KEYS {
        let kind = match checker.command(&["TYPE", key]) {
            Frame::Simple(t) => String::from_utf8_lossy(&t).into_owned(),
            Frame::Null => return false,
            other => panic!("TYPE {key} answered {other:?} after:\n  {}", context()),
        };
        let exists = checker.command(&["EXISTS", key]);
        if kind == "none" {
            assert_eq!(
                exists,
                Frame::Integer(0),
                "{key} of no type after:\n  {}",
                context()
            );
            continue;
        }
        present += 1;
        assert_eq!(
            exists,
            Frame::Integer(1),
            "{key} is a {kind} after:\n  {}",
            context()
        );
        let mut known = false;
        for (ty, len_cmd, least) in LENGTHS {
            let reply = checker.command(&[len_cmd, key]);
            if *ty == kind.as_str() {
                known = true;
                match reply {
                    Frame::Integer(n) if n >= *least => {}
                    other => panic!(
                        "{key} is a {kind} and {len_cmd} answers {other:?} after:\n  {}",
                        context()
                    ),
                }
            } else {
                let wrong = matches!(&reply, Frame::Error(e) if e.starts_with(b"WRONGTYPE"));
                assert!(
                    wrong,
                    "{key} is a {kind} and {len_cmd} answers {reply:?} after:\n  {}",
                    context()
                );
            }
        }
        assert!(
            known,
            "{key} has an unknown type {kind} after:\n  {}",
            context()
        );
    }
    let size = match checker.command(&["DBSIZE"]) {
        Frame::Integer(n) => n,
        Frame::Null => return false,
        other => panic!("DBSIZE answered {other:?}"),
    };
    let listed = match checker.command(&["KEYS", "*"]) {
        Frame::Array(keys) => keys.len(),
        Frame::Null => return false,
        other => panic!("KEYS answered {other:?}"),
    };
    assert_eq!(
        usize::try_from(size).ok(),
        Some(listed),
        "DBSIZE and KEYS disagree in db {db} after:\n  {}",
        context()
    );
    assert!(
        listed >= present,
        "KEYS lists fewer keys than TYPE finds in db {db}"
    );
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn programs_read_as_commands() {
        // 255 + spelled name, argc, a key (kind 0, pick 1), raw "v" (kind
        // 250, length 1), a number (kind 100, pick 2), then an indexed name.
        let data = [
            255, 3, b's', b'e', b't', 3, 0, 1, 250, 1, b'v', 100, 2, 0, 0,
        ];
        let mut p = Program { data: &data };
        let names = vec!["append".to_owned()];
        let first = p.next_command(&names).unwrap();
        assert_eq!(
            first,
            vec![
                b"set".to_vec(),
                b"k1".to_vec(),
                b"v".to_vec(),
                b"-1".to_vec()
            ]
        );
        assert_eq!(p.next_command(&names).unwrap(), vec![b"append".to_vec()]);
        assert_eq!(p.next_command(&names), None);
    }

    #[test]
    fn the_checker_reads_every_type() {
        // The checker itself: a keyspace where TYPE and the length command
        // agree passes, and the check reads every type.
        let ks = Keyspace::new();
        let mut s = ks.session();
        for (cmd, key) in [
            (vec!["SET", "k0", ""], "k0"),
            (vec!["RPUSH", "k1", "a"], "k1"),
            (vec!["XADD", "k2", "*", "f", "v"], "k2"),
            (vec!["ZADD", "{k}3", "1", "a"], "{k}3"),
        ] {
            assert!(!s.command(&cmd).is_error(), "{cmd:?}");
            assert_ne!(s.command(&["TYPE", key]), Frame::simple("none"));
        }
        let mut checker = ks.session();
        assert!(consistent(&mut checker, 0, &[]));
    }
}
