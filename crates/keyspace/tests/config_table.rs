//! The configuration parameter table (`cairn_keyspace::config`): one row per
//! parameter Redis 7.0.15 lists in `CONFIG GET *`, each default accepted by
//! its own validation, docs/compatibility.md's table generated from it, and
//! CONFIG SET following each row's status (values checked against
//! redis-server 7.0.15; the differential comparison is
//! `tests/tests/config_differential.rs`).
//!
//! Regenerate the docs' table with
//! `CAIRN_BLESS=1 cargo test -p cairn-keyspace --test config_table`.
#![allow(clippy::unwrap_used)]

use cairn_keyspace::config::{self, Kind, PARAMS, Status};
use cairn_keyspace::{Keyspace, Session};
use cairn_resp::Frame;

const DEFAULTS: &str = include_str!("../src/cmd/config_defaults.tsv");

fn defaults() -> Vec<(&'static str, &'static str)> {
    DEFAULTS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .collect()
}

#[test]
fn one_row_per_redis_parameter() {
    let names: Vec<&str> = defaults().iter().map(|(k, _)| *k).collect();
    for n in &names {
        assert!(
            PARAMS.iter().any(|p| p.name == *n),
            "{n}: in Redis' CONFIG GET * but not in the table"
        );
    }
    for p in PARAMS {
        assert!(
            names.contains(&p.name),
            "{}: not a Redis 7.0 parameter",
            p.name
        );
        if let Some(of) = p.alias_of {
            let target = PARAMS.iter().find(|t| t.name == of).unwrap();
            assert!(target.alias_of.is_none(), "{}: alias of an alias", p.name);
        } else {
            assert!(!p.note.is_empty(), "{}: no note", p.name);
        }
    }
    let mut sorted: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), PARAMS.len(), "a name appears twice");
}

#[test]
fn every_default_passes_its_own_validation() {
    for (name, default) in defaults() {
        let p = config::lookup(name).unwrap();
        if p.kind == Kind::Special {
            continue;
        }
        assert_eq!(
            p.parse(default.as_bytes(), default).as_deref(),
            Ok(default),
            "{name}"
        );
    }
}

fn section(doc: &str) -> Option<(usize, usize)> {
    let start = doc.find("<!-- config:start -->")? + "<!-- config:start -->\n".len();
    let end = doc.find("<!-- config:end -->")?;
    Some((start, end))
}

#[test]
fn compatibility_doc_has_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/compatibility.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let table = config::markdown_table();
    for (status, n) in config::counts() {
        println!("{}: {n}", status.word());
    }
    let (start, end) = section(&doc).expect("docs/compatibility.md lacks the config markers");
    if doc.get(start..end) == Some(table.as_str()) {
        return;
    }
    if std::env::var("CAIRN_BLESS").is_ok_and(|v| v == "1") {
        let mut new = doc.clone();
        new.replace_range(start..end, &table);
        std::fs::write(path, new).unwrap();
        return;
    }
    panic!(
        "docs/compatibility.md's configuration table is stale: regenerate it with `CAIRN_BLESS=1 cargo test -p cairn-keyspace --test config_table`"
    );
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Error(e) | Frame::Simple(e) | Frame::Bulk(e) => String::from_utf8_lossy(e).into(),
        other => format!("{other:?}"),
    }
}

fn get(s: &mut Session, name: &str) -> String {
    match s.command(&["CONFIG", "GET", name]) {
        Frame::Map(pairs) => text(&pairs[0].1),
        other => panic!("CONFIG GET {name}: {other:?}"),
    }
}

#[test]
fn unsupported_values_are_refused_and_the_value_in_effect_accepted() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let r = s.command(&["CONFIG", "SET", "appendfsync", "always"]);
    assert_eq!(
        text(&r),
        "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - cairn does not support 'appendfsync': no append-only file: cairn persists by checksummed snapshots only (see docs/compatibility.md, Configuration parameters)"
    );
    assert_eq!(get(&mut s, "appendfsync"), "everysec");
    // What tools send to make sure of a state.
    for (name, value) in [
        ("appendonly", "no"),
        ("appendfsync", "EVERYSEC"),
        ("activedefrag", "no"),
        ("lazyfree-lazy-user-flush", "no"),
        ("list-compress-depth", "0"),
    ] {
        let r = s.command(&["CONFIG", "SET", name, value]);
        assert_eq!(text(&r), "OK", "{name} {value}");
    }
    // A bad value gets Redis' own text before cairn's refusal.
    let r = s.command(&["CONFIG", "SET", "appendfsync", "sometimes"]);
    assert_eq!(
        text(&r),
        "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no"
    );
    // All or nothing: the refusal of the second keeps the first unchanged.
    let r = s.command(&["CONFIG", "SET", "hz", "20", "activedefrag", "yes"]);
    assert!(
        text(&r).contains("cairn does not support 'activedefrag'"),
        "{r:?}"
    );
    assert_eq!(get(&mut s, "hz"), "10");
    // The listener is not moved at runtime.
    let port = get(&mut s, "port");
    assert_eq!(text(&s.command(&["CONFIG", "SET", "port", &port])), "OK");
    let r = s.command(&["CONFIG", "SET", "port", "1"]);
    assert!(
        text(&r).contains("cairn cannot change at runtime 'port'"),
        "{r:?}"
    );
}

#[test]
fn every_unsupported_parameter_refuses_a_new_value_and_inert_ones_take_it() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    // A value each kind accepts that differs from the defaults.
    let other = |p: &config::Param, default: &str| -> Option<String> {
        Some(match p.kind {
            Kind::Bool => if default == "yes" { "no" } else { "yes" }.into(),
            Kind::Int(min, max) | Kind::Memory { min, max, .. } => {
                let d: i128 = default.parse().ok()?;
                (if d < max { d + 1 } else { min }).to_string()
            }
            Kind::MemoryOrPercent => "5%".into(),
            Kind::Enum(names) => names.iter().find(|n| **n != default)?.to_string(),
            Kind::Str | Kind::Hostname => "cairn-test".into(),
            Kind::Octal | Kind::Special => return None,
        })
    };
    let (mut refused, mut taken) = (0, 0);
    for (name, default) in defaults() {
        let p = config::lookup(name).unwrap();
        if p.mutability != config::Mutability::Mutable {
            continue;
        }
        let Some(value) = other(p, default) else {
            continue;
        };
        let r = s.command(&["CONFIG", "SET", name, &value]);
        match p.status {
            Status::Unsupported | Status::Startup => {
                assert!(
                    text(&r).contains(&format!("'{}'", p.name)) && text(&r).contains("cairn"),
                    "{name} {value}: {r:?}"
                );
                refused += 1;
            }
            Status::Inert => {
                assert_eq!(text(&r), "OK", "{name} {value}");
                assert_eq!(get(&mut s, name), value, "{name}");
                taken += 1;
            }
            Status::Effective => {}
        }
    }
    println!("refused {refused}, inert and stored {taken}");
    assert!(
        refused > 40 && taken > 30,
        "refused {refused}, taken {taken}"
    );
}

#[test]
fn aliases_read_the_value_set_through_either_name() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        text(&s.command(&["CONFIG", "SET", "slave-priority", "7"])),
        "OK"
    );
    assert_eq!(get(&mut s, "replica-priority"), "7");
    assert_eq!(
        text(&s.command(&["CONFIG", "SET", "min-replicas-max-lag", "3"])),
        "OK"
    );
    assert_eq!(get(&mut s, "min-slaves-max-lag"), "3");
    let r = s.command(&["CONFIG", "SET", "min-slaves-to-write", "1"]);
    assert!(
        text(&r).contains("cairn does not support 'min-replicas-to-write'"),
        "{r:?}"
    );
}

#[test]
fn hz_is_kept_within_redis_bounds_and_reported() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(text(&s.command(&["CONFIG", "SET", "hz", "600"])), "OK");
    assert_eq!(get(&mut s, "hz"), "500");
    assert_eq!(ks.cron_hz(), 500);
    assert_eq!(text(&s.command(&["CONFIG", "SET", "hz", "0"])), "OK");
    assert_eq!(get(&mut s, "hz"), "1");
    assert_eq!(ks.cron_hz(), 1);
    assert!(
        ks.info(&["server"])
            .contains("\r\nhz:1\r\nconfigured_hz:1\r\n")
    );
    assert_eq!(
        ks.expire_cycle_budget(1),
        std::time::Duration::from_millis(250)
    );
    assert_eq!(
        text(&s.command(&["CONFIG", "SET", "active-expire-effort", "10"])),
        "OK"
    );
    assert_eq!(
        ks.expire_cycle_budget(10),
        std::time::Duration::from_millis(43)
    );
}

#[test]
fn acllog_max_len_bounds_the_log() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        text(&s.command(&["CONFIG", "SET", "requirepass", "pw"])),
        "OK"
    );
    assert_eq!(
        text(&s.command(&["CONFIG", "SET", "acllog-max-len", "2"])),
        "OK"
    );
    for i in 0..5 {
        let user = format!("u{i}");
        s.command(&["AUTH", &user, "wrong"]);
    }
    s.command(&["AUTH", "pw"]);
    match s.command(&["ACL", "LOG"]) {
        Frame::Array(entries) => assert_eq!(entries.len(), 2),
        other => panic!("{other:?}"),
    }
}
