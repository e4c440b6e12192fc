//! Property test: hash and set commands against a model of `BTreeMap`s and
//! `BTreeSet`s with Redis' rules (empty collections vanish, WRONGTYPE on
//! strings, stores replace any type). Proptest prints the failing case and
//! its seed; random replies (SPOP, SRANDMEMBER, HRANDFIELD) are checked for
//! membership and the model follows what was popped.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use cairn_keyspace::{Keyspace, Session};
use cairn_resp::Frame;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    HSet(u8, Vec<(u8, u8)>),
    HSetNx(u8, u8, u8),
    HDel(u8, Vec<u8>),
    HGet(u8, u8),
    HMGet(u8, Vec<u8>),
    HIncrBy(u8, u8, i8),
    HGetAll(u8),
    HLen(u8),
    HStrlen(u8, u8),
    HRandField(u8, i8),
    HScan(u8, u8),
    SAdd(u8, Vec<u8>),
    SRem(u8, Vec<u8>),
    SIsMember(u8, u8),
    SMIsMember(u8, Vec<u8>),
    SCard(u8),
    SMembers(u8),
    SPop(u8, Option<u8>),
    SRandMember(u8, i8),
    SMove(u8, u8, u8),
    Algebra(u8, Vec<u8>),
    Store(u8, u8, Vec<u8>),
    SInterCard(Vec<u8>, u8),
    SScan(u8, u8),
    SetStr(u8),
    Del(u8),
}

const KEYS: u8 = 5;
const ELEMS: u8 = 8;

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS;
    let f = 0..ELEMS;
    let fs = prop::collection::vec(0..ELEMS, 1..5);
    let ks = prop::collection::vec(0..KEYS, 1..4);
    prop_oneof![
        4 => (k.clone(), prop::collection::vec((0..ELEMS, any::<u8>()), 1..4)).prop_map(|(k, p)| Op::HSet(k, p)),
        1 => (k.clone(), f.clone(), any::<u8>()).prop_map(|(k, f, v)| Op::HSetNx(k, f, v)),
        2 => (k.clone(), fs.clone()).prop_map(|(k, f)| Op::HDel(k, f)),
        1 => (k.clone(), f.clone()).prop_map(|(k, f)| Op::HGet(k, f)),
        1 => (k.clone(), fs.clone()).prop_map(|(k, f)| Op::HMGet(k, f)),
        2 => (k.clone(), f.clone(), any::<i8>()).prop_map(|(k, f, d)| Op::HIncrBy(k, f, d)),
        1 => k.clone().prop_map(Op::HGetAll),
        1 => k.clone().prop_map(Op::HLen),
        1 => (k.clone(), f.clone()).prop_map(|(k, f)| Op::HStrlen(k, f)),
        1 => (k.clone(), -10i8..10).prop_map(|(k, c)| Op::HRandField(k, c)),
        1 => (k.clone(), 1u8..5).prop_map(|(k, c)| Op::HScan(k, c)),
        4 => (k.clone(), fs.clone()).prop_map(|(k, m)| Op::SAdd(k, m)),
        2 => (k.clone(), fs.clone()).prop_map(|(k, m)| Op::SRem(k, m)),
        1 => (k.clone(), f.clone()).prop_map(|(k, m)| Op::SIsMember(k, m)),
        1 => (k.clone(), fs.clone()).prop_map(|(k, m)| Op::SMIsMember(k, m)),
        1 => k.clone().prop_map(Op::SCard),
        1 => k.clone().prop_map(Op::SMembers),
        2 => (k.clone(), prop::option::of(0u8..6)).prop_map(|(k, c)| Op::SPop(k, c)),
        1 => (k.clone(), -10i8..10).prop_map(|(k, c)| Op::SRandMember(k, c)),
        2 => (k.clone(), k.clone(), f.clone()).prop_map(|(a, b, m)| Op::SMove(a, b, m)),
        2 => (0u8..3, ks.clone()).prop_map(|(o, k)| Op::Algebra(o, k)),
        2 => (0u8..3, k.clone(), ks.clone()).prop_map(|(o, d, k)| Op::Store(o, d, k)),
        1 => (ks, 0u8..4).prop_map(|(k, l)| Op::SInterCard(k, l)),
        1 => (k.clone(), 1u8..5).prop_map(|(k, c)| Op::SScan(k, c)),
        1 => k.clone().prop_map(Op::SetStr),
        1 => k.prop_map(Op::Del),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum M {
    Str,
    Hash(BTreeMap<String, String>),
    Set(BTreeSet<String>),
}

fn key(k: u8) -> String {
    format!("k{k}")
}
fn el(f: u8) -> String {
    format!("e{f}")
}
fn wrongtype() -> Frame {
    Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}
fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("not a bulk: {other:?}"),
    }
}
fn items(f: Frame) -> Vec<String> {
    match f {
        Frame::Array(v) | Frame::Set(v) => v.iter().map(text).collect(),
        other => panic!("not a collection: {other:?}"),
    }
}
fn sorted(f: Frame) -> Vec<String> {
    let mut v = items(f);
    v.sort();
    v
}

fn hash_of(m: &BTreeMap<String, M>, k: &str) -> Result<BTreeMap<String, String>, Frame> {
    match m.get(k) {
        None => Ok(BTreeMap::new()),
        Some(M::Hash(h)) => Ok(h.clone()),
        Some(_) => Err(wrongtype()),
    }
}
fn set_of(m: &BTreeMap<String, M>, k: &str) -> Result<BTreeSet<String>, Frame> {
    match m.get(k) {
        None => Ok(BTreeSet::new()),
        Some(M::Set(s)) => Ok(s.clone()),
        Some(_) => Err(wrongtype()),
    }
}
fn put_hash(m: &mut BTreeMap<String, M>, k: &str, h: BTreeMap<String, String>) {
    if h.is_empty() {
        m.remove(k)
    } else {
        m.insert(k.to_string(), M::Hash(h))
    };
}
fn put_set(m: &mut BTreeMap<String, M>, k: &str, s: BTreeSet<String>) {
    if s.is_empty() {
        m.remove(k)
    } else {
        m.insert(k.to_string(), M::Set(s))
    };
}

/// Full scan, every element returned (with values for HSCAN).
fn scan(s: &mut Session, cmd: &str, k: &str, count: u8) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    for _ in 0..1000 {
        let reply = s.command(&[cmd, k, &cursor, "count", &count.to_string()]);
        let Frame::Array(parts) = reply else {
            return vec![format!("{reply:?}")];
        };
        cursor = text(&parts[0]);
        out.extend(items(parts[1].clone()));
        if cursor == "0" {
            break;
        }
    }
    out
}

fn algebra(op: u8, sets: &[BTreeSet<String>]) -> BTreeSet<String> {
    let mut it = sets.iter();
    let first = it.next().cloned().unwrap_or_default();
    match op {
        0 => it.fold(first, |a, s| a.intersection(s).cloned().collect()),
        1 => it.fold(first, |a, s| a.union(s).cloned().collect()),
        _ => it.fold(first, |a, s| a.difference(s).cloned().collect()),
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let ks = Keyspace::builder().shards_per_db(4).build();
    let mut s = ks.session();
    let mut m: BTreeMap<String, M> = BTreeMap::new();
    for op in ops {
        match op {
            Op::HSet(k, pairs) => {
                let k = key(k);
                let mut args = vec!["hset".to_string(), k.clone()];
                for (f, v) in &pairs {
                    args.push(el(*f));
                    args.push(v.to_string());
                }
                let got = s.command(&args);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut h) => {
                        let before = h.len();
                        for (f, v) in pairs {
                            h.insert(el(f), v.to_string());
                        }
                        prop_assert_eq!(got, Frame::Integer((h.len() - before) as i64));
                        put_hash(&mut m, &k, h);
                    }
                }
            }
            Op::HSetNx(k, f, v) => {
                let k = key(k);
                let got = s.command(&["hsetnx", &k, &el(f), &v.to_string()]);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut h) => {
                        let new = !h.contains_key(&el(f));
                        h.entry(el(f)).or_insert(v.to_string());
                        prop_assert_eq!(got, Frame::Integer(i64::from(new)));
                        put_hash(&mut m, &k, h);
                    }
                }
            }
            Op::HDel(k, fs) => {
                let k = key(k);
                let mut args = vec!["hdel".to_string(), k.clone()];
                args.extend(fs.iter().map(|f| el(*f)));
                let got = s.command(&args);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut h) => {
                        let n = fs.iter().filter(|f| h.remove(&el(**f)).is_some()).count();
                        prop_assert_eq!(got, Frame::Integer(n as i64));
                        put_hash(&mut m, &k, h);
                    }
                }
            }
            Op::HGet(k, f) => {
                let k = key(k);
                let got = s.command(&["hget", &k, &el(f)]);
                let want = hash_of(&m, &k).map(|h| h.get(&el(f)).map_or(Frame::Null, Frame::bulk));
                prop_assert_eq!(got, want.unwrap_or_else(|e| e));
            }
            Op::HMGet(k, fs) => {
                let k = key(k);
                let mut args = vec!["hmget".to_string(), k.clone()];
                args.extend(fs.iter().map(|f| el(*f)));
                let got = s.command(&args);
                let want = hash_of(&m, &k).map(|h| {
                    Frame::Array(
                        fs.iter()
                            .map(|f| h.get(&el(*f)).map_or(Frame::Null, Frame::bulk))
                            .collect(),
                    )
                });
                prop_assert_eq!(got, want.unwrap_or_else(|e| e));
            }
            Op::HIncrBy(k, f, d) => {
                let k = key(k);
                let got = s.command(&["hincrby", &k, &el(f), &d.to_string()]);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut h) => {
                        // Values written by HSET are u8 decimals: always integers.
                        let cur: i64 = h.get(&el(f)).map_or(0, |v| v.parse().unwrap());
                        let new = cur + i64::from(d);
                        h.insert(el(f), new.to_string());
                        prop_assert_eq!(got, Frame::Integer(new));
                        put_hash(&mut m, &k, h);
                    }
                }
            }
            Op::HGetAll(k) => {
                let k = key(k);
                let got = s.command(&["hgetall", &k]);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(h) => {
                        let Frame::Map(pairs) = got else {
                            return Err(TestCaseError::fail("not a map"));
                        };
                        let got: BTreeMap<String, String> =
                            pairs.iter().map(|(a, b)| (text(a), text(b))).collect();
                        prop_assert_eq!(got, h);
                    }
                }
            }
            Op::HLen(k) => {
                let k = key(k);
                let got = s.command(&["hlen", &k]);
                prop_assert_eq!(
                    got,
                    hash_of(&m, &k)
                        .map(|h| Frame::Integer(h.len() as i64))
                        .unwrap_or_else(|e| e)
                );
            }
            Op::HStrlen(k, f) => {
                let k = key(k);
                let got = s.command(&["hstrlen", &k, &el(f)]);
                let want = hash_of(&m, &k)
                    .map(|h| Frame::Integer(h.get(&el(f)).map_or(0, |v| v.len()) as i64));
                prop_assert_eq!(got, want.unwrap_or_else(|e| e));
            }
            Op::HRandField(k, c) => {
                let k = key(k);
                let got = s.command(&["hrandfield", &k, &c.to_string()]);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(h) => {
                        let got = items(got);
                        let want_len = if c >= 0 {
                            (c as usize).min(h.len())
                        } else if h.is_empty() {
                            0
                        } else {
                            c.unsigned_abs() as usize
                        };
                        prop_assert_eq!(got.len(), want_len);
                        prop_assert!(got.iter().all(|f| h.contains_key(f)));
                        if c >= 0 {
                            prop_assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len());
                        }
                    }
                }
            }
            Op::HScan(k, c) => {
                let k = key(k);
                match hash_of(&m, &k) {
                    Err(e) => prop_assert_eq!(s.command(&["hscan", &k, "0"]), e),
                    Ok(h) => {
                        let flat = scan(&mut s, "hscan", &k, c);
                        let got: BTreeMap<String, String> = flat
                            .chunks(2)
                            .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
                            .collect();
                        prop_assert_eq!(flat.len(), h.len() * 2);
                        prop_assert_eq!(got, h);
                    }
                }
            }
            Op::SAdd(k, ms) => {
                let k = key(k);
                let mut args = vec!["sadd".to_string(), k.clone()];
                args.extend(ms.iter().map(|x| el(*x)));
                let got = s.command(&args);
                match set_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut st) => {
                        let n = ms.iter().filter(|x| st.insert(el(**x))).count();
                        prop_assert_eq!(got, Frame::Integer(n as i64));
                        put_set(&mut m, &k, st);
                    }
                }
            }
            Op::SRem(k, ms) => {
                let k = key(k);
                let mut args = vec!["srem".to_string(), k.clone()];
                args.extend(ms.iter().map(|x| el(*x)));
                let got = s.command(&args);
                match set_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut st) => {
                        let n = ms.iter().filter(|x| st.remove(&el(**x))).count();
                        prop_assert_eq!(got, Frame::Integer(n as i64));
                        put_set(&mut m, &k, st);
                    }
                }
            }
            Op::SIsMember(k, x) => {
                let k = key(k);
                let got = s.command(&["sismember", &k, &el(x)]);
                let want = set_of(&m, &k).map(|st| Frame::Integer(i64::from(st.contains(&el(x)))));
                prop_assert_eq!(got, want.unwrap_or_else(|e| e));
            }
            Op::SMIsMember(k, xs) => {
                let k = key(k);
                let mut args = vec!["smismember".to_string(), k.clone()];
                args.extend(xs.iter().map(|x| el(*x)));
                let got = s.command(&args);
                let want = set_of(&m, &k).map(|st| {
                    Frame::Array(
                        xs.iter()
                            .map(|x| Frame::Integer(i64::from(st.contains(&el(*x)))))
                            .collect(),
                    )
                });
                prop_assert_eq!(got, want.unwrap_or_else(|e| e));
            }
            Op::SCard(k) => {
                let k = key(k);
                let got = s.command(&["scard", &k]);
                prop_assert_eq!(
                    got,
                    set_of(&m, &k)
                        .map(|st| Frame::Integer(st.len() as i64))
                        .unwrap_or_else(|e| e)
                );
            }
            Op::SMembers(k) => {
                let k = key(k);
                let got = s.command(&["smembers", &k]);
                match set_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(st) => prop_assert_eq!(sorted(got), st.into_iter().collect::<Vec<_>>()),
                }
            }
            Op::SPop(k, c) => {
                let k = key(k);
                let got = match c {
                    None => s.command(&["spop", &k]),
                    Some(c) => s.command(&["spop", &k, &c.to_string()]),
                };
                match set_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(mut st) => {
                        let popped = match (c, &got) {
                            (None, Frame::Null) => vec![],
                            (None, f) => vec![text(f)],
                            (Some(_), _) => items(got.clone()),
                        };
                        let want_len =
                            c.map_or(usize::from(!st.is_empty()), |c| (c as usize).min(st.len()));
                        prop_assert_eq!(popped.len(), want_len);
                        for p in &popped {
                            prop_assert!(st.remove(p), "popped {} not in the set", p);
                        }
                        put_set(&mut m, &k, st);
                    }
                }
            }
            Op::SRandMember(k, c) => {
                let k = key(k);
                let got = s.command(&["srandmember", &k, &c.to_string()]);
                match set_of(&m, &k) {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(st) => {
                        let got = items(got);
                        let want_len = if c >= 0 {
                            (c as usize).min(st.len())
                        } else if st.is_empty() {
                            0
                        } else {
                            c.unsigned_abs() as usize
                        };
                        prop_assert_eq!(got.len(), want_len);
                        prop_assert!(got.iter().all(|x| st.contains(x)));
                    }
                }
            }
            Op::SMove(a, b, x) => {
                let (a, b, x) = (key(a), key(b), el(x));
                let got = s.command(&["smove", &a, &b, &x]);
                if !m.contains_key(&a) {
                    prop_assert_eq!(got, Frame::Integer(0));
                    continue;
                }
                match (set_of(&m, &a), set_of(&m, &b)) {
                    (Err(e), _) | (_, Err(e)) => prop_assert_eq!(got, e),
                    (Ok(mut sa), Ok(mut sb)) => {
                        let moved = sa.contains(&x);
                        prop_assert_eq!(got, Frame::Integer(i64::from(moved)));
                        if moved && a != b {
                            sa.remove(&x);
                            sb.insert(x);
                            put_set(&mut m, &a, sa);
                            put_set(&mut m, &b, sb);
                        }
                    }
                }
            }
            Op::Algebra(o, ks) => {
                let name = ["sinter", "sunion", "sdiff"][o as usize];
                let keys: Vec<String> = ks.iter().map(|k| key(*k)).collect();
                let mut args = vec![name.to_string()];
                args.extend(keys.iter().cloned());
                let got = s.command(&args);
                match keys
                    .iter()
                    .map(|k| set_of(&m, k))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(sets) => prop_assert_eq!(
                        sorted(got),
                        algebra(o, &sets).into_iter().collect::<Vec<_>>()
                    ),
                }
            }
            Op::Store(o, d, ks) => {
                let name = ["sinterstore", "sunionstore", "sdiffstore"][o as usize];
                let dst = key(d);
                let keys: Vec<String> = ks.iter().map(|k| key(*k)).collect();
                let mut args = vec![name.to_string(), dst.clone()];
                args.extend(keys.iter().cloned());
                let got = s.command(&args);
                match keys
                    .iter()
                    .map(|k| set_of(&m, k))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(sets) => {
                        let r = algebra(o, &sets);
                        prop_assert_eq!(got, Frame::Integer(r.len() as i64));
                        put_set(&mut m, &dst, r);
                    }
                }
            }
            Op::SInterCard(ks, limit) => {
                let keys: Vec<String> = ks.iter().map(|k| key(*k)).collect();
                let mut args = vec!["sintercard".to_string(), keys.len().to_string()];
                args.extend(keys.iter().cloned());
                args.extend(["limit".to_string(), limit.to_string()]);
                let got = s.command(&args);
                match keys
                    .iter()
                    .map(|k| set_of(&m, k))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Err(e) => prop_assert_eq!(got, e),
                    Ok(sets) => {
                        let n = algebra(0, &sets).len();
                        let n = if limit > 0 { n.min(limit as usize) } else { n };
                        prop_assert_eq!(got, Frame::Integer(n as i64));
                    }
                }
            }
            Op::SScan(k, c) => {
                let k = key(k);
                match set_of(&m, &k) {
                    Err(e) => prop_assert_eq!(s.command(&["sscan", &k, "0"]), e),
                    Ok(st) => {
                        let mut got = scan(&mut s, "sscan", &k, c);
                        got.sort();
                        prop_assert_eq!(got, st.into_iter().collect::<Vec<_>>());
                    }
                }
            }
            Op::SetStr(k) => {
                let k = key(k);
                prop_assert_eq!(s.command(&["set", &k, "v"]), Frame::ok());
                m.insert(k, M::Str);
            }
            Op::Del(k) => {
                let k = key(k);
                let got = s.command(&["del", &k]);
                prop_assert_eq!(got, Frame::Integer(i64::from(m.remove(&k).is_some())));
            }
        }
        // Empty collections never linger; types agree.
        for k in 0..KEYS {
            let k = key(k);
            let want = match m.get(&k) {
                None => "none",
                Some(M::Str) => "string",
                Some(M::Hash(_)) => "hash",
                Some(M::Set(_)) => "set",
            };
            prop_assert_eq!(
                s.command(&["type", &k]),
                Frame::Simple(want.into()),
                "key {}",
                k
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn hashes_and_sets_match_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}

/// Large collections take the multi-call scan path; a model check there too.
#[test]
fn large_collections_match_model() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let mut h = BTreeMap::new();
    let mut st = BTreeSet::new();
    for n in 0..700u32 {
        let (f, v) = (format!("f{}", n * 7 % 500), n.to_string());
        s.command(&["hset", "h", &f, &v]);
        h.insert(f.clone(), v);
        s.command(&["sadd", "s", &f]);
        st.insert(f);
    }
    for n in (0..500u32).step_by(3) {
        let f = format!("f{n}");
        s.command(&["hdel", "h", &f]);
        h.remove(&f);
        s.command(&["srem", "s", &f]);
        st.remove(&f);
    }
    let flat = scan(&mut s, "hscan", "h", 7);
    let got: BTreeMap<String, String> = flat
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(flat.len(), h.len() * 2);
    assert_eq!(got, h);
    let mut got = scan(&mut s, "sscan", "s", 3);
    got.sort();
    assert_eq!(got, st.iter().cloned().collect::<Vec<_>>());
    assert_eq!(s.command(&["scard", "s"]), Frame::Integer(st.len() as i64));
    assert_eq!(s.command(&["hlen", "h"]), Frame::Integer(h.len() as i64));
}
