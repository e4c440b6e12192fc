//! Model test: random sequences of list commands on a few keys, each reply
//! and the final state compared with a plain `VecDeque` model that follows
//! Redis' rules. proptest prints the failing case and its seed.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};

use cairn_keyspace::Keyspace;
use cairn_resp::Frame;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Push {
        key: usize,
        left: bool,
        only_existing: bool,
        elems: Vec<u8>,
    },
    Pop {
        key: usize,
        left: bool,
        count: Option<i64>,
    },
    Range {
        key: usize,
        start: i64,
        end: i64,
    },
    Index {
        key: usize,
        index: i64,
    },
    Set {
        key: usize,
        index: i64,
        elem: u8,
    },
    Insert {
        key: usize,
        after: bool,
        pivot: u8,
        elem: u8,
    },
    Rem {
        key: usize,
        count: i64,
        elem: u8,
    },
    Trim {
        key: usize,
        start: i64,
        end: i64,
    },
    Pos {
        key: usize,
        elem: u8,
        rank: i64,
        count: Option<i64>,
        maxlen: i64,
    },
    Move {
        src: usize,
        dst: usize,
        from_left: bool,
        to_left: bool,
    },
    MPop {
        keys: Vec<usize>,
        left: bool,
        count: i64,
    },
    Len {
        key: usize,
    },
}

const KEYS: [&str; 3] = ["a", "b", "c"];

fn idx() -> impl Strategy<Value = i64> {
    prop_oneof![-8i64..8, Just(i64::MIN), Just(i64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let elem = 0u8..4;
    prop_oneof![
        3 => (key.clone(), any::<bool>(), prop::bool::weighted(0.2), prop::collection::vec(elem.clone(), 1..5))
            .prop_map(|(key, left, only_existing, elems)| Op::Push { key, left, only_existing, elems }),
        2 => (key.clone(), any::<bool>(), prop::option::of(0i64..4))
            .prop_map(|(key, left, count)| Op::Pop { key, left, count }),
        1 => (key.clone(), idx(), idx()).prop_map(|(key, start, end)| Op::Range { key, start, end }),
        1 => (key.clone(), idx()).prop_map(|(key, index)| Op::Index { key, index }),
        1 => (key.clone(), idx(), elem.clone()).prop_map(|(key, index, elem)| Op::Set { key, index, elem }),
        1 => (key.clone(), any::<bool>(), elem.clone(), elem.clone())
            .prop_map(|(key, after, pivot, elem)| Op::Insert { key, after, pivot, elem }),
        1 => (key.clone(), -3i64..4, elem.clone()).prop_map(|(key, count, elem)| Op::Rem { key, count, elem }),
        1 => (key.clone(), idx(), idx()).prop_map(|(key, start, end)| Op::Trim { key, start, end }),
        1 => (key.clone(), elem.clone(), prop_oneof![-3i64..0, 1i64..4], prop::option::of(0i64..3), 0i64..5)
            .prop_map(|(key, elem, rank, count, maxlen)| Op::Pos { key, elem, rank, count, maxlen }),
        2 => (key.clone(), key.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(src, dst, from_left, to_left)| Op::Move { src, dst, from_left, to_left }),
        1 => (prop::collection::vec(key.clone(), 1..3), any::<bool>(), 1i64..4)
            .prop_map(|(keys, left, count)| Op::MPop { keys, left, count }),
        1 => key.prop_map(|key| Op::Len { key }),
    ]
}

fn bulk(e: &u8) -> Frame {
    Frame::bulk(e.to_string())
}

/// Redis' LRANGE/LTRIM normalization, written independently in i128.
fn norm(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i128;
    let mut s = start as i128;
    let mut e = end as i128;
    if s < 0 {
        s += len;
    }
    if e < 0 {
        e += len;
    }
    s = s.max(0);
    if s > e || s >= len {
        return None;
    }
    e = e.min(len - 1);
    Some((s as usize, e as usize))
}

fn pos(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 {
        index as i128 + len as i128
    } else {
        index as i128
    };
    (0..len as i128).contains(&i).then_some(i as usize)
}

/// Applies `op` to the model; returns the expected reply and the command.
fn apply(m: &mut HashMap<usize, VecDeque<u8>>, op: &Op) -> (Vec<String>, Frame) {
    let k = |i: usize| KEYS[i].to_string();
    let cleanup = |m: &mut HashMap<usize, VecDeque<u8>>, key: usize| {
        if m.get(&key).is_some_and(|l| l.is_empty()) {
            m.remove(&key);
        }
    };
    match op {
        Op::Push {
            key,
            left,
            only_existing,
            elems,
        } => {
            let name = match (left, only_existing) {
                (true, false) => "lpush",
                (false, false) => "rpush",
                (true, true) => "lpushx",
                (false, true) => "rpushx",
            };
            let mut cmd = vec![name.to_string(), k(*key)];
            cmd.extend(elems.iter().map(u8::to_string));
            if *only_existing && !m.contains_key(key) {
                return (cmd, Frame::Integer(0));
            }
            let l = m.entry(*key).or_default();
            for e in elems {
                if *left {
                    l.push_front(*e)
                } else {
                    l.push_back(*e)
                }
            }
            (cmd, Frame::Integer(l.len() as i64))
        }
        Op::Pop { key, left, count } => {
            let mut cmd = vec![if *left { "lpop" } else { "rpop" }.to_string(), k(*key)];
            if let Some(c) = count {
                cmd.push(c.to_string());
            }
            let Some(l) = m.get_mut(key) else {
                return (
                    cmd,
                    if count.is_some() {
                        Frame::NullArray
                    } else {
                        Frame::Null
                    },
                );
            };
            let n = count.unwrap_or(1) as usize;
            let mut out = Vec::new();
            for _ in 0..n {
                let v = if *left { l.pop_front() } else { l.pop_back() };
                if let Some(v) = v {
                    out.push(bulk(&v));
                }
            }
            cleanup(m, *key);
            let reply = match count {
                None => out.into_iter().next().unwrap_or(Frame::Null),
                Some(_) => Frame::Array(out),
            };
            (cmd, reply)
        }
        Op::Range { key, start, end } => {
            let cmd = vec!["lrange".into(), k(*key), start.to_string(), end.to_string()];
            let l = m.get(key).cloned().unwrap_or_default();
            let r = match norm(*start, *end, l.len()) {
                None => vec![],
                Some((a, b)) => (a..=b).map(|i| bulk(&l[i])).collect(),
            };
            (cmd, Frame::Array(r))
        }
        Op::Index { key, index } => {
            let cmd = vec!["lindex".into(), k(*key), index.to_string()];
            let r = m
                .get(key)
                .and_then(|l| pos(*index, l.len()).map(|i| bulk(&l[i])));
            (cmd, r.unwrap_or(Frame::Null))
        }
        Op::Set { key, index, elem } => {
            let cmd = vec!["lset".into(), k(*key), index.to_string(), elem.to_string()];
            let Some(l) = m.get_mut(key) else {
                return (cmd, Frame::error("ERR no such key"));
            };
            match pos(*index, l.len()) {
                Some(i) => {
                    l[i] = *elem;
                    (cmd, Frame::ok())
                }
                None => (cmd, Frame::error("ERR index out of range")),
            }
        }
        Op::Insert {
            key,
            after,
            pivot,
            elem,
        } => {
            let w = if *after { "after" } else { "before" };
            let cmd = vec![
                "linsert".into(),
                k(*key),
                w.into(),
                pivot.to_string(),
                elem.to_string(),
            ];
            let Some(l) = m.get_mut(key) else {
                return (cmd, Frame::Integer(0));
            };
            match l.iter().position(|x| x == pivot) {
                None => (cmd, Frame::Integer(-1)),
                Some(p) => {
                    l.insert(if *after { p + 1 } else { p }, *elem);
                    (cmd, Frame::Integer(l.len() as i64))
                }
            }
        }
        Op::Rem { key, count, elem } => {
            let cmd = vec!["lrem".into(), k(*key), count.to_string(), elem.to_string()];
            let Some(l) = m.get_mut(key) else {
                return (cmd, Frame::Integer(0));
            };
            let limit = if *count == 0 {
                usize::MAX
            } else {
                count.unsigned_abs() as usize
            };
            let mut removed = 0;
            if *count >= 0 {
                let mut i = 0;
                while i < l.len() {
                    if removed < limit && l[i] == *elem {
                        l.remove(i);
                        removed += 1;
                    } else {
                        i += 1;
                    }
                }
            } else {
                let mut i = l.len();
                while i > 0 {
                    i -= 1;
                    if removed < limit && l[i] == *elem {
                        l.remove(i);
                        removed += 1;
                    }
                }
            }
            cleanup(m, *key);
            (cmd, Frame::Integer(removed as i64))
        }
        Op::Trim { key, start, end } => {
            let cmd = vec!["ltrim".into(), k(*key), start.to_string(), end.to_string()];
            if let Some(l) = m.get_mut(key) {
                *l = match norm(*start, *end, l.len()) {
                    None => VecDeque::new(),
                    Some((a, b)) => l.range(a..=b).copied().collect(),
                };
            }
            cleanup(m, *key);
            (cmd, Frame::ok())
        }
        Op::Pos {
            key,
            elem,
            rank,
            count,
            maxlen,
        } => {
            let mut cmd = vec![
                "lpos".into(),
                k(*key),
                elem.to_string(),
                "rank".into(),
                rank.to_string(),
            ];
            if let Some(c) = count {
                cmd.extend(["count".into(), c.to_string()]);
            }
            cmd.extend(["maxlen".into(), maxlen.to_string()]);
            let l = m.get(key).cloned().unwrap_or_default();
            let mut order: Vec<usize> = (0..l.len()).collect();
            if *rank < 0 {
                order.reverse();
            }
            if *maxlen > 0 {
                order.truncate(*maxlen as usize);
            }
            let hits: Vec<usize> = order
                .into_iter()
                .filter(|&i| l[i] == *elem)
                .skip(rank.unsigned_abs() as usize - 1)
                .collect();
            let reply = match count {
                None => hits
                    .first()
                    .map_or(Frame::Null, |&i| Frame::Integer(i as i64)),
                Some(c) => {
                    let n = if *c == 0 {
                        hits.len()
                    } else {
                        (*c as usize).min(hits.len())
                    };
                    Frame::Array(
                        hits[..n]
                            .iter()
                            .map(|&i| Frame::Integer(i as i64))
                            .collect(),
                    )
                }
            };
            (cmd, reply)
        }
        Op::Move {
            src,
            dst,
            from_left,
            to_left,
        } => {
            let side = |l: bool| if l { "left" } else { "right" }.to_string();
            let cmd = vec![
                "lmove".into(),
                k(*src),
                k(*dst),
                side(*from_left),
                side(*to_left),
            ];
            let Some(l) = m.get_mut(src) else {
                return (cmd, Frame::Null);
            };
            let v = if *from_left {
                l.pop_front()
            } else {
                l.pop_back()
            }
            .unwrap();
            let d = m.entry(*dst).or_default();
            if *to_left {
                d.push_front(v)
            } else {
                d.push_back(v)
            }
            cleanup(m, *src);
            (cmd, bulk(&v))
        }
        Op::MPop { keys, left, count } => {
            let mut cmd = vec!["lmpop".into(), keys.len().to_string()];
            cmd.extend(keys.iter().map(|&i| k(i)));
            cmd.extend([
                if *left { "left" } else { "right" }.to_string(),
                "count".into(),
                count.to_string(),
            ]);
            let Some(&key) = keys.iter().find(|i| m.contains_key(i)) else {
                return (cmd, Frame::NullArray);
            };
            let l = m.get_mut(&key).unwrap();
            let mut out = Vec::new();
            for _ in 0..*count {
                if let Some(v) = if *left { l.pop_front() } else { l.pop_back() } {
                    out.push(bulk(&v));
                }
            }
            cleanup(m, key);
            (
                cmd,
                Frame::Array(vec![Frame::bulk(k(key)), Frame::Array(out)]),
            )
        }
        Op::Len { key } => {
            let cmd = vec!["llen".into(), k(*key)];
            (
                cmd,
                Frame::Integer(m.get(key).map_or(0, |l| l.len() as i64)),
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lists_behave_like_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let ks = Keyspace::new();
        let mut s = ks.session();
        let mut model: HashMap<usize, VecDeque<u8>> = HashMap::new();
        for op in &ops {
            let (cmd, want) = apply(&mut model, op);
            let got = s.command(&cmd);
            prop_assert_eq!(&got, &want, "command {:?}", cmd);
        }
        for (i, name) in KEYS.iter().enumerate() {
            let want: Vec<Frame> = model.get(&i).map(|l| l.iter().map(bulk).collect()).unwrap_or_default();
            prop_assert_eq!(s.command(&["lrange", name, "0", "-1"]), Frame::Array(want));
            prop_assert_eq!(s.command(&["exists", name]), Frame::Integer(i64::from(model.contains_key(&i))));
        }
    }
}
