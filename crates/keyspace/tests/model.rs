//! Property test: strings and keys commands against a HashMap model.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use cairn_keyspace::{Keyspace, ManualClock};
use cairn_resp::Frame;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8),
    SetPx(u8, u8, u16),
    Get(u8),
    Del(u8),
    Incr(u8),
    Append(u8, u8),
    Exists(u8),
    Expire(u8, u16),
    Persist(u8),
    Strlen(u8),
    Advance(u16),
    Rename(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..8;
    prop_oneof![
        (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        (k.clone(), any::<u8>(), 1u16..500).prop_map(|(k, v, t)| Op::SetPx(k, v, t)),
        k.clone().prop_map(Op::Get),
        k.clone().prop_map(Op::Del),
        k.clone().prop_map(Op::Incr),
        (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Append(k, v)),
        k.clone().prop_map(Op::Exists),
        (k.clone(), 1u16..500).prop_map(|(k, t)| Op::Expire(k, t)),
        k.clone().prop_map(Op::Persist),
        k.clone().prop_map(Op::Strlen),
        (0u16..300).prop_map(Op::Advance),
        (k.clone(), k).prop_map(|(a, b)| Op::Rename(a, b)),
    ]
}

/// value, absolute expiry
type Model = HashMap<String, (Vec<u8>, Option<i64>)>;

fn live(m: &mut Model, k: &str, now: i64) -> Option<(Vec<u8>, Option<i64>)> {
    if let Some((_, Some(t))) = m.get(k)
        && *t <= now
    {
        m.remove(k);
    }
    m.get(k).cloned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn strings_and_keys_match_model(ops in prop::collection::vec(op(), 1..80)) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let ks = Keyspace::builder().clock(clock.clone()).shards_per_db(4).build();
        let mut s = ks.session();
        let mut m: Model = HashMap::new();
        let mut now = 1_000_000i64;
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    let (k, v) = (format!("k{k}"), v.to_string());
                    prop_assert_eq!(s.command(&["set", &k, &v]), Frame::ok());
                    m.insert(k, (v.into_bytes(), None));
                }
                Op::SetPx(k, v, t) => {
                    let (k, v) = (format!("k{k}"), v.to_string());
                    prop_assert_eq!(s.command(&["set", &k, &v, "px", &t.to_string()]), Frame::ok());
                    m.insert(k, (v.into_bytes(), Some(now + i64::from(t))));
                }
                Op::Get(k) => {
                    let k = format!("k{k}");
                    let want = live(&mut m, &k, now).map(|(v, _)| Frame::bulk(v)).unwrap_or(Frame::Null);
                    prop_assert_eq!(s.command(&["get", &k]), want);
                }
                Op::Del(k) => {
                    let k = format!("k{k}");
                    let had = live(&mut m, &k, now).is_some();
                    m.remove(&k);
                    prop_assert_eq!(s.command(&["del", &k]), Frame::Integer(i64::from(had)));
                }
                Op::Incr(k) => {
                    let k = format!("k{k}");
                    let cur = live(&mut m, &k, now);
                    let reply = s.command(&["incr", &k]);
                    match cur {
                        None => {
                            prop_assert_eq!(reply, Frame::Integer(1));
                            m.insert(k, (b"1".to_vec(), None));
                        }
                        Some((v, exp)) => match cairn_keyspace::parse_canonical_i64(&v).and_then(|n| n.checked_add(1)) {
                            Some(n) => {
                                prop_assert_eq!(reply, Frame::Integer(n));
                                m.insert(k, (n.to_string().into_bytes(), exp));
                            }
                            None => prop_assert!(reply.is_error()),
                        },
                    }
                }
                Op::Append(k, v) => {
                    let (k, v) = (format!("k{k}"), v.to_string());
                    let mut cur = live(&mut m, &k, now).unwrap_or_default();
                    cur.0.extend_from_slice(v.as_bytes());
                    prop_assert_eq!(s.command(&["append", &k, &v]), Frame::Integer(cur.0.len() as i64));
                    m.insert(k, cur);
                }
                Op::Exists(k) => {
                    let k = format!("k{k}");
                    let n = i64::from(live(&mut m, &k, now).is_some());
                    prop_assert_eq!(s.command(&["exists", &k, &k]), Frame::Integer(2 * n));
                }
                Op::Expire(k, t) => {
                    let k = format!("k{k}");
                    let had = live(&mut m, &k, now).is_some();
                    prop_assert_eq!(s.command(&["pexpire", &k, &t.to_string()]), Frame::Integer(i64::from(had)));
                    if let Some(e) = m.get_mut(&k) {
                        e.1 = Some(now + i64::from(t));
                    }
                }
                Op::Persist(k) => {
                    let k = format!("k{k}");
                    let cur = live(&mut m, &k, now);
                    let had = cur.as_ref().is_some_and(|c| c.1.is_some());
                    prop_assert_eq!(s.command(&["persist", &k]), Frame::Integer(i64::from(had)));
                    if let Some(e) = m.get_mut(&k) {
                        e.1 = None;
                    }
                }
                Op::Strlen(k) => {
                    let k = format!("k{k}");
                    let n = live(&mut m, &k, now).map(|v| v.0.len()).unwrap_or(0);
                    prop_assert_eq!(s.command(&["strlen", &k]), Frame::Integer(n as i64));
                }
                Op::Advance(ms) => {
                    now += i64::from(ms);
                    clock.set(now);
                }
                Op::Rename(a, b) => {
                    let (a, b) = (format!("k{a}"), format!("k{b}"));
                    let reply = s.command(&["rename", &a, &b]);
                    match live(&mut m, &a, now) {
                        None => prop_assert_eq!(reply, Frame::error("ERR no such key")),
                        Some(v) => {
                            prop_assert_eq!(reply, Frame::ok());
                            m.remove(&a);
                            m.insert(b, v);
                        }
                    }
                }
            }
            let live_count = m.iter().filter(|(_, (_, e))| e.is_none_or(|t| t > now)).count();
            let Frame::Array(keys) = s.command(&["keys", "*"]) else { panic!() };
            prop_assert_eq!(keys.len(), live_count);
        }
    }
}
