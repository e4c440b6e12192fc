//! Model test: random sequences of sorted-set commands against a plain
//! `BTreeMap` model that applies Redis 7.0's rules. proptest prints the
//! failing case and its seed (and shrinks it).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use cairn_keyspace::{Keyspace, Session};
use cairn_resp::Frame;
use proptest::prelude::*;

/// member → score for one key; empty means the key does not exist.
type Model = BTreeMap<String, f64>;

#[derive(Clone, Debug)]
enum Op {
    Add {
        flags: Vec<&'static str>,
        elems: Vec<(f64, String)>,
    },
    Incrby(f64, String),
    Rem(Vec<String>),
    RangeRank {
        start: i64,
        stop: i64,
        rev: bool,
        scores: bool,
    },
    RangeScore {
        min: (f64, bool),
        max: (f64, bool),
        rev: bool,
        limit: Option<(i64, i64)>,
        scores: bool,
    },
    Rank(String, bool),
    Score(String),
    Count((f64, bool), (f64, bool)),
    Pop {
        max: bool,
        count: Option<u8>,
    },
    RemRank(i64, i64),
    RemScore((f64, bool), (f64, bool)),
    // On the second key, whose scores are all 0.
    LexAdd(Vec<String>),
    LexRange {
        min: String,
        max: String,
        rev: bool,
        limit: Option<(i64, i64)>,
    },
    LexCount(String, String),
    LexRem(String, String),
}

fn member() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "c", "d", "e", "f", "g", "h", "aa", "ab", "", "zz",
    ])
    .prop_map(String::from)
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => (-6i32..6).prop_map(|n| f64::from(n) / 2.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn bound() -> impl Strategy<Value = (f64, bool)> {
    (score(), any::<bool>())
}

fn lex_bound() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-".to_owned()),
        Just("+".to_owned()),
        (member(), any::<bool>())
            .prop_map(|(m, incl)| format!("{}{m}", if incl { '[' } else { '(' })),
    ]
}

fn limit() -> impl Strategy<Value = Option<(i64, i64)>> {
    prop::option::of((-1i64..6, -2i64..6))
}

fn flags() -> impl Strategy<Value = Vec<&'static str>> {
    // Only the combinations Redis accepts; errors are tested elsewhere.
    prop::sample::select(vec![
        vec![],
        vec!["nx"],
        vec!["xx"],
        vec!["gt"],
        vec!["lt"],
        vec!["ch"],
        vec!["xx", "gt", "ch"],
        vec!["lt", "ch"],
        vec!["nx", "ch"],
    ])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (flags(), prop::collection::vec((score(), member()), 1..5)).prop_map(|(flags, elems)| Op::Add { flags, elems }),
        2 => (flags(), score(), member()).prop_map(|(mut flags, s, m)| {
            flags.push("incr");
            Op::Add { flags, elems: vec![(s, m)] }
        }),
        2 => (score(), member()).prop_map(|(s, m)| Op::Incrby(s, m)),
        2 => prop::collection::vec(member(), 1..4).prop_map(Op::Rem),
        3 => (-8i64..8, -8i64..8, any::<bool>(), any::<bool>())
            .prop_map(|(start, stop, rev, scores)| Op::RangeRank { start, stop, rev, scores }),
        3 => (bound(), bound(), any::<bool>(), limit(), any::<bool>())
            .prop_map(|(min, max, rev, limit, scores)| Op::RangeScore { min, max, rev, limit, scores }),
        2 => (member(), any::<bool>()).prop_map(|(m, rev)| Op::Rank(m, rev)),
        1 => member().prop_map(Op::Score),
        2 => (bound(), bound()).prop_map(|(a, b)| Op::Count(a, b)),
        2 => (any::<bool>(), prop::option::of(0u8..4)).prop_map(|(max, count)| Op::Pop { max, count }),
        1 => (-8i64..8, -8i64..8).prop_map(|(a, b)| Op::RemRank(a, b)),
        1 => (bound(), bound()).prop_map(|(a, b)| Op::RemScore(a, b)),
        2 => prop::collection::vec(member(), 1..4).prop_map(Op::LexAdd),
        2 => (lex_bound(), lex_bound(), any::<bool>(), limit())
            .prop_map(|(min, max, rev, limit)| Op::LexRange { min, max, rev, limit }),
        1 => (lex_bound(), lex_bound()).prop_map(|(a, b)| Op::LexCount(a, b)),
        1 => (lex_bound(), lex_bound()).prop_map(|(a, b)| Op::LexRem(a, b)),
    ]
}

fn fmt_score(s: f64) -> String {
    if s == f64::INFINITY {
        "+inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        s.to_string()
    }
}

fn fmt_bound((s, ex): (f64, bool)) -> String {
    format!("{}{}", if ex { "(" } else { "" }, fmt_score(s))
}

/// The model's members in Redis order.
fn ordered(m: &Model) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    v
}

fn in_score(s: f64, (min, minex): (f64, bool), (max, maxex): (f64, bool)) -> bool {
    (if minex { s > min } else { s >= min }) && (if maxex { s < max } else { s <= max })
}

fn in_lex(m: &str, min: &str, max: &str) -> bool {
    let lo = match min.split_at(1) {
        ("-", _) => true,
        ("+", _) => false,
        ("[", b) => m >= b,
        (_, b) => m > b,
    };
    let hi = match max.split_at(1) {
        ("+", _) => true,
        ("-", _) => false,
        ("[", b) => m <= b,
        (_, b) => m < b,
    };
    lo && hi
}

fn rank_span(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

fn apply_limit<T>(v: Vec<T>, limit: Option<(i64, i64)>) -> Vec<T> {
    match limit {
        None => v,
        Some((o, _)) if o < 0 => Vec::new(),
        Some((o, c)) => {
            let it = v.into_iter().skip(o as usize);
            if c < 0 {
                it.collect()
            } else {
                it.take(c as usize).collect()
            }
        }
    }
}

fn reply(items: &[(String, f64)], scores: bool) -> Frame {
    Frame::Array(
        items
            .iter()
            .flat_map(|(m, s)| {
                let mut v = vec![Frame::bulk(m)];
                if scores {
                    v.push(Frame::Double(*s));
                }
                v
            })
            .collect(),
    )
}

/// Runs `op` on the session and the model; returns (actual, expected).
fn step(s: &mut Session, z: &mut Model, l: &mut Model, op: &Op) -> (Frame, Frame) {
    let run = |s: &mut Session, args: Vec<String>| s.command(&args);
    let strs = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match op {
        Op::Add { flags, elems } => {
            let mut args = strs(&["zadd", "z"]);
            args.extend(flags.iter().map(|f| f.to_string()));
            for (sc, m) in elems {
                args.push(fmt_score(*sc));
                args.push(m.clone());
            }
            let has = |f: &str| flags.contains(&f);
            let (mut added, mut changed) = (0, 0);
            let mut last = None;
            let mut err = None;
            for (sc, m) in elems {
                match z.get(m).copied() {
                    None if has("xx") => last = None,
                    None => {
                        z.insert(m.clone(), *sc);
                        added += 1;
                        last = Some(*sc);
                    }
                    Some(_) if has("nx") => last = None,
                    Some(cur) => {
                        let new = if has("incr") { cur + sc } else { *sc };
                        if new.is_nan() {
                            err = Some(Frame::error("ERR resulting score is not a number (NaN)"));
                        } else if (has("gt") && new <= cur) || (has("lt") && new >= cur) {
                            last = None;
                        } else {
                            if new != cur {
                                changed += 1;
                            }
                            z.insert(m.clone(), new);
                            last = Some(new);
                        }
                    }
                }
            }
            let want = if let Some(e) = err {
                e
            } else if has("incr") {
                last.map_or(Frame::Null, Frame::Double)
            } else {
                Frame::Integer(if has("ch") { added + changed } else { added })
            };
            (run(s, args), want)
        }
        Op::Incrby(d, m) => {
            let cur = z.get(m).copied();
            let new = cur.map_or(*d, |c| c + d);
            let want = if new.is_nan() {
                Frame::error("ERR resulting score is not a number (NaN)")
            } else {
                z.insert(m.clone(), new);
                Frame::Double(new)
            };
            (run(s, strs(&["zincrby", "z", &fmt_score(*d), m])), want)
        }
        Op::Rem(ms) => {
            let n = ms.iter().filter(|m| z.remove(*m).is_some()).count();
            let mut args = strs(&["zrem", "z"]);
            args.extend(ms.iter().cloned());
            (run(s, args), Frame::Integer(n as i64))
        }
        Op::RangeRank {
            start,
            stop,
            rev,
            scores,
        } => {
            let mut o = ordered(z);
            if *rev {
                o.reverse();
            }
            let want = match rank_span(o.len(), *start, *stop) {
                None => Vec::new(),
                Some((a, b)) => o[a..=b].to_vec(),
            };
            let mut args = strs(&["zrange", "z", &start.to_string(), &stop.to_string()]);
            if *rev {
                args.push("rev".into());
            }
            if *scores {
                args.push("withscores".into());
            }
            (run(s, args), reply(&want, *scores))
        }
        Op::RangeScore {
            min,
            max,
            rev,
            limit,
            scores,
        } => {
            let mut o: Vec<_> = ordered(z)
                .into_iter()
                .filter(|(_, sc)| in_score(*sc, *min, *max))
                .collect();
            if *rev {
                o.reverse();
            }
            let want = apply_limit(o, *limit);
            let cmd = if *rev {
                "zrevrangebyscore"
            } else {
                "zrangebyscore"
            };
            let (a, b) = if *rev {
                (fmt_bound(*max), fmt_bound(*min))
            } else {
                (fmt_bound(*min), fmt_bound(*max))
            };
            let mut args = strs(&[cmd, "z", &a, &b]);
            if *scores {
                args.push("withscores".into());
            }
            if let Some((o, c)) = limit {
                args.extend(["limit".into(), o.to_string(), c.to_string()]);
            }
            (run(s, args), reply(&want, *scores))
        }
        Op::Rank(m, rev) => {
            let o = ordered(z);
            let want = match o.iter().position(|(x, _)| x == m) {
                None => Frame::Null,
                Some(r) => Frame::Integer(if *rev { o.len() - 1 - r } else { r } as i64),
            };
            (
                run(s, strs(&[if *rev { "zrevrank" } else { "zrank" }, "z", m])),
                want,
            )
        }
        Op::Score(m) => (
            run(s, strs(&["zscore", "z", m])),
            z.get(m).map_or(Frame::Null, |v| Frame::Double(*v)),
        ),
        Op::Count(a, b) => {
            let n = z.values().filter(|sc| in_score(**sc, *a, *b)).count();
            (
                run(s, strs(&["zcount", "z", &fmt_bound(*a), &fmt_bound(*b)])),
                Frame::Integer(n as i64),
            )
        }
        Op::Pop { max, count } => {
            let mut o = ordered(z);
            if *max {
                o.reverse();
            }
            let n = count.map_or(1, usize::from).min(o.len());
            let taken: Vec<_> = o.into_iter().take(n).collect();
            for (m, _) in &taken {
                z.remove(m);
            }
            let mut args = strs(&[if *max { "zpopmax" } else { "zpopmin" }, "z"]);
            if let Some(c) = count {
                args.push(c.to_string());
            }
            (run(s, args), reply(&taken, true))
        }
        Op::RemRank(a, b) => {
            let o = ordered(z);
            let n = match rank_span(o.len(), *a, *b) {
                None => 0,
                Some((x, y)) => {
                    for (m, _) in &o[x..=y] {
                        z.remove(m);
                    }
                    y - x + 1
                }
            };
            (
                run(
                    s,
                    strs(&["zremrangebyrank", "z", &a.to_string(), &b.to_string()]),
                ),
                Frame::Integer(n as i64),
            )
        }
        Op::RemScore(a, b) => {
            let before = z.len();
            z.retain(|_, sc| !in_score(*sc, *a, *b));
            let n = before - z.len();
            (
                run(
                    s,
                    strs(&["zremrangebyscore", "z", &fmt_bound(*a), &fmt_bound(*b)]),
                ),
                Frame::Integer(n as i64),
            )
        }
        Op::LexAdd(ms) => {
            let mut args = strs(&["zadd", "l"]);
            let mut added = 0;
            for m in ms {
                args.extend(["0".to_string(), m.clone()]);
                if l.insert(m.clone(), 0.0).is_none() {
                    added += 1;
                }
            }
            (run(s, args), Frame::Integer(added))
        }
        Op::LexRange {
            min,
            max,
            rev,
            limit,
        } => {
            let mut o: Vec<_> = ordered(l)
                .into_iter()
                .filter(|(m, _)| in_lex(m, min, max))
                .collect();
            if *rev {
                o.reverse();
            }
            let want = apply_limit(o, *limit);
            let mut args = if *rev {
                strs(&["zrevrangebylex", "l", max, min])
            } else {
                strs(&["zrangebylex", "l", min, max])
            };
            if let Some((o, c)) = limit {
                args.extend(["limit".into(), o.to_string(), c.to_string()]);
            }
            (run(s, args), reply(&want, false))
        }
        Op::LexCount(a, b) => {
            let n = l.keys().filter(|m| in_lex(m, a, b)).count();
            (
                run(s, strs(&["zlexcount", "l", a, b])),
                Frame::Integer(n as i64),
            )
        }
        Op::LexRem(a, b) => {
            let before = l.len();
            l.retain(|m, _| !in_lex(m, a, b));
            let n = before - l.len();
            (
                run(s, strs(&["zremrangebylex", "l", a, b])),
                Frame::Integer(n as i64),
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sorted_sets_follow_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let ks = Keyspace::new();
        let mut s = ks.session();
        let (mut z, mut l) = (Model::new(), Model::new());
        for op in &ops {
            let (got, want) = step(&mut s, &mut z, &mut l, op);
            prop_assert_eq!(got, want, "op {:?}", op);
            // Whole-state checks after every step: order, scores and the
            // deletion of emptied keys.
            let all = s.command(&["zrange", "z", "0", "-1", "withscores"]);
            prop_assert_eq!(all, reply(&ordered(&z), true));
            prop_assert_eq!(s.command(&["exists", "z"]), Frame::Integer(i64::from(!z.is_empty())));
            prop_assert_eq!(s.command(&["zcard", "l"]), Frame::Integer(l.len() as i64));
        }
    }
}
