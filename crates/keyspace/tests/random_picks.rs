//! SPOP, SRANDMEMBER and HRANDFIELD pick uniformly: chi-square tests over
//! many draws through a `Session`, with this thread's command random
//! source seeded (the seed is printed; `CAIRN_RANDOM_SEED=N` replays it).
//!
//! Each test fails when the chi-square p-value is below [`ALPHA`], so a
//! correct implementation fails one with probability 1e-7 (< 1e-6, with
//! room for the approximation: every expected count is at least 100).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use cairn_keyspace::{HashMapBytes, HashSetBytes, Keyspace, Session, seed_thread_rng};
use cairn_resp::Frame;
use rand::SeedableRng;
use rand::rngs::StdRng;

const ALPHA: f64 = 1e-7;
/// Members of the sets and fields of the hashes drawn from.
const N: usize = 20;
/// Draws per test.
const DRAWS: usize = 20_000;

/// A fresh seed (or `CAIRN_RANDOM_SEED`), printed so a failure can be
/// replayed, and installed as this thread's command random source.
fn seed() -> u64 {
    let seed = std::env::var("CAIRN_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (CAIRN_RANDOM_SEED={seed} replays it)");
    seed_thread_rng(seed);
    seed
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

/// ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms), relative error ~1e-15.
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function Q(a, x): a series below
/// x = a + 1, a continued fraction (modified Lentz) above.
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        while term.abs() > sum.abs() * 1e-16 {
            n += 1.0;
            term *= x / n;
            sum += term;
        }
        return 1.0 - sum * front;
    }
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * h
}

/// P(X >= stat) for X chi-square with `df` degrees of freedom.
fn chi2_sf(stat: f64, df: usize) -> f64 {
    gamma_q(df as f64 / 2.0, stat / 2.0)
}

/// Asserts that `counts` (one per category, every category listed, zeros
/// included) fit equal probabilities; `what` and `seed` go in the message.
fn assert_uniform(counts: &BTreeMap<String, usize>, categories: usize, what: &str, seed: u64) {
    assert_eq!(
        counts.len(),
        categories,
        "{what}: categories drawn {counts:?} (seed {seed})"
    );
    let total: usize = counts.values().sum();
    let expected = total as f64 / categories as f64;
    let stat: f64 = counts
        .values()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum();
    let p = chi2_sf(stat, categories - 1);
    println!("{what}: chi2 {stat:.1}, df {}, p {p:.3e}", categories - 1);
    if p <= ALPHA {
        let (least, most) = (
            counts.iter().min_by_key(|(_, n)| **n),
            counts.iter().max_by_key(|(_, n)| **n),
        );
        panic!(
            "{what}: not uniform, chi2 {stat:.1} p {p:.3e}, expected {expected:.0} each, \
             least {least:?}, most {most:?} (seed {seed})"
        );
    }
}

fn members(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

fn sadd(s: &mut Session, key: &str, members: &[String]) {
    let mut cmd = vec!["sadd".to_owned(), key.to_owned()];
    cmd.extend(members.iter().cloned());
    s.command(&cmd);
}

fn hset(s: &mut Session, key: &str, fields: &[String]) {
    let mut cmd = vec!["hset".to_owned(), key.to_owned()];
    for f in fields {
        cmd.push(f.clone());
        cmd.push(format!("v-{f}"));
    }
    s.command(&cmd);
}

/// Zero counts for `names`, so a category never drawn still counts.
fn zeros(names: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    names.into_iter().map(|n| (n, 0)).collect()
}

#[test]
fn chi2_survival_matches_known_values() {
    // Two degrees of freedom: exactly exp(-x/2).
    for x in [0.5, 3.0, 20.0, 60.0] {
        let want = (-x / 2.0f64).exp();
        assert!((chi2_sf(x, 2) - want).abs() < 1e-12 * want.max(1e-300) + 1e-15);
    }
    // Table values: the 95% and 99.9999% quantiles.
    assert!((chi2_sf(3.841_458_820_694_124, 1) - 0.05).abs() < 1e-9);
    assert!((chi2_sf(30.143_527_205_646_16, 19) - 0.05).abs() < 1e-9);
    assert!((chi2_sf(124.342_113, 100) - 0.05).abs() < 1e-7);
    assert!((chi2_sf(1_074.679_449, 1_000) - 0.05).abs() < 1e-7);
    assert!(chi2_sf(200.0, 19) < 1e-30);
}

/// Fills a collection of [`N`] members with `fill`, draws one with `draw`
/// [`DRAWS`] times (`draw` may put it back), and checks the counts.
fn single_pick_is_uniform(
    fill: fn(&mut Session, &str, &[String]),
    draw: &[&str],
    put_back: Option<&str>,
    what: &str,
) {
    let seed = seed();
    let ks = Keyspace::new();
    let mut s = ks.session();
    let all = members(N);
    let key = draw[1];
    fill(&mut s, key, &all);
    let mut counts = zeros(all);
    for _ in 0..DRAWS {
        let m = text(&s.command(draw));
        *counts.get_mut(&m).unwrap() += 1;
        if let Some(add) = put_back {
            // Every pop is from the same members.
            assert_eq!(s.command(&[add, key, &m]), Frame::Integer(1));
        }
    }
    assert_uniform(&counts, N, what, seed);
}

#[test]
fn srandmember_single_is_uniform() {
    single_pick_is_uniform(sadd, &["srandmember", "s"], None, "SRANDMEMBER");
}

#[test]
fn hrandfield_single_is_uniform() {
    single_pick_is_uniform(hset, &["hrandfield", "h"], None, "HRANDFIELD");
}

#[test]
fn spop_single_is_uniform() {
    single_pick_is_uniform(sadd, &["spop", "s"], Some("sadd"), "SPOP");
}

/// A set much larger than 64 members: every member is popped about as
/// often (a pick among the first members in table order is not uniform).
#[test]
fn spop_single_is_uniform_on_a_large_set() {
    let seed = seed();
    let ks = Keyspace::new();
    let mut s = ks.session();
    let all = members(500);
    sadd(&mut s, "s", &all);
    let mut counts = zeros(all);
    for _ in 0..50_000 {
        let m = text(&s.command(&["spop", "s"]));
        *counts.get_mut(&m).unwrap() += 1;
        s.command(&["sadd", "s", &m]);
    }
    assert_uniform(&counts, 500, "SPOP of 500", seed);
}

/// Positive counts: each ordered pair of distinct elements is equally
/// likely, for both of Redis' strategies (count * 3 > size: from all of
/// them; else: drawing until enough distinct ones came up).
#[test]
fn distinct_counts_pick_uniform_ordered_pairs() {
    let seed = seed();
    let ks = Keyspace::new();
    let mut s = ks.session();
    // 5 elements: 2 * 3 > 5. 8 elements: 2 * 3 <= 8.
    for n in [5usize, 8] {
        let all = members(n);
        let (skey, hkey) = (format!("s{n}"), format!("h{n}"));
        sadd(&mut s, &skey, &all);
        hset(&mut s, &hkey, &all);
        let pairs = || {
            all.iter().flat_map(|a| {
                all.iter()
                    .filter(move |b| *b != a)
                    .map(move |b| format!("{a},{b}"))
            })
        };
        let categories = n * (n - 1);
        let draws = categories * 200;
        for (cmd, key) in [("srandmember", &skey), ("hrandfield", &hkey)] {
            let mut counts = zeros(pairs());
            for _ in 0..draws {
                let got = items(s.command(&[cmd, key, "2"]));
                assert_eq!(got.len(), 2, "{cmd} {key} 2: {got:?}");
                *counts
                    .get_mut(&got.join(","))
                    .unwrap_or_else(|| panic!("{cmd} repeated an element: {got:?}")) += 1;
            }
            assert_uniform(&counts, categories, &format!("{cmd} of {n}, count 2"), seed);
        }
        // SPOP 2, put back: the same for the popped pair.
        let mut counts = zeros(pairs());
        for _ in 0..draws {
            let got = items(s.command(&["spop", &skey, "2"]));
            *counts.get_mut(&got.join(",")).unwrap() += 1;
            let mut back = vec!["sadd".to_owned(), skey.clone()];
            back.extend(got);
            assert_eq!(s.command(&back), Frame::Integer(2));
        }
        assert_uniform(&counts, categories, &format!("SPOP of {n}, count 2"), seed);
    }
}

/// Negative counts draw each element independently and uniformly.
#[test]
fn repeated_counts_are_uniform() {
    let seed = seed();
    let ks = Keyspace::new();
    let mut s = ks.session();
    let all = members(N);
    sadd(&mut s, "s", &all);
    hset(&mut s, "h", &all);
    let count = format!("-{DRAWS}");
    for cmd in [
        vec!["srandmember", "s", &count],
        vec!["hrandfield", "h", &count],
    ] {
        let mut counts = zeros(all.clone());
        let got = items(s.command(&cmd));
        assert_eq!(got.len(), DRAWS);
        for m in got {
            *counts.get_mut(&m).unwrap() += 1;
        }
        assert_uniform(&counts, N, &cmd.join(" "), seed);
    }
    // WITHVALUES keeps each value with its field.
    let Frame::Array(flat) = s.command(&["hrandfield", "h", "-50", "withvalues"]) else {
        panic!("not an array");
    };
    assert_eq!(flat.len(), 100);
    for p in flat.chunks(2) {
        assert_eq!(text(&p[1]), format!("v-{}", text(&p[0])));
    }
}

/// SPOP with a count, SRANDMEMBER and HRANDFIELD with a positive count
/// return distinct elements; a count at least the size returns them all.
#[test]
fn count_forms_keep_their_rules() {
    seed();
    let ks = Keyspace::new();
    let mut s = ks.session();
    let all = members(300);
    sadd(&mut s, "s", &all);
    hset(&mut s, "h", &all);
    for count in [1usize, 50, 99, 100, 101, 250, 299] {
        for cmd in ["srandmember", "hrandfield"] {
            let key = if cmd == "srandmember" { "s" } else { "h" };
            let mut got = items(s.command(&[cmd, key, &count.to_string()]));
            assert_eq!(got.len(), count, "{cmd} {count}");
            got.sort();
            got.dedup();
            assert_eq!(got.len(), count, "{cmd} {count} repeated an element");
        }
    }
    for cmd in [["srandmember", "s", "300"], ["hrandfield", "h", "1000"]] {
        let mut got = items(s.command(&cmd));
        got.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(got, want, "{cmd:?}");
    }
    // SPOP with counts: popped ones leave, the rest stay, nothing twice.
    let mut popped = Vec::new();
    for count in ["7", "100", "150"] {
        popped.extend(items(s.command(&["spop", "s", count])));
    }
    assert_eq!(popped.len(), 257);
    let mut rest = items(s.command(&["smembers", "s"]));
    assert_eq!(rest.len(), 43);
    rest.extend(popped);
    rest.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(rest, want);
    // Popping the rest by single pops empties and deletes the key.
    for _ in 0..43 {
        assert!(matches!(s.command(&["spop", "s"]), Frame::Bulk(_)));
    }
    assert_eq!(s.command(&["exists", "s"]), Frame::Integer(0));
    assert_eq!(s.command(&["spop", "s"]), Frame::Null);
}

/// The structures directly, with a seeded generator: a table with far more
/// buckets than members (room reserved, then few inserted) still picks
/// uniformly, through the fallback past the probe limit.
#[test]
fn sparse_tables_pick_uniformly() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut set = HashSetBytes::with_capacity(100_000);
    let mut map = HashMapBytes::with_capacity(100_000);
    for m in members(N) {
        set.insert(Bytes::from(m.clone()));
        map.insert(Bytes::from(m.clone()), Bytes::from(format!("v-{m}")));
    }
    let mut set_counts = zeros(members(N));
    let mut map_counts = zeros(members(N));
    for _ in 0..DRAWS {
        let m = set.random(&mut rng).unwrap();
        *set_counts
            .get_mut(std::str::from_utf8(&m).unwrap())
            .unwrap() += 1;
        let (f, v) = map.random(&mut rng).unwrap();
        assert_eq!(
            &v[..],
            format!("v-{}", std::str::from_utf8(&f).unwrap()).as_bytes()
        );
        *map_counts
            .get_mut(std::str::from_utf8(&f).unwrap())
            .unwrap() += 1;
    }
    assert_uniform(&set_counts, N, "sparse set", seed);
    assert_uniform(&map_counts, N, "sparse map", seed);
    // Popping them all returns each once.
    let mut popped: Vec<Bytes> = std::iter::from_fn(|| set.pop_random(&mut rng)).collect();
    popped.sort();
    let mut want: Vec<Bytes> = members(N).into_iter().map(Bytes::from).collect();
    want.sort();
    assert_eq!(popped, want);
    assert!(set.is_empty());
}

/// RANDOMKEY picks uniformly among live keys both ways it draws: random
/// buckets below one bound for all shards (a dense database) and a count
/// then a pick by rank (one mostly made of expired keys). Expired keys
/// never come back; an empty or wholly expired database answers nil.
#[test]
fn randomkey_is_uniform_over_live_keys() {
    let seed = seed();
    let clock = std::sync::Arc::new(cairn_keyspace::ManualClock::new(1_700_000_000_000));
    let ks = Keyspace::builder().clock(clock.clone()).build();
    let mut s = ks.session();
    assert_eq!(s.command(&["randomkey"]), Frame::Null);
    let all = members(N);
    for k in &all {
        s.command(&["set", k, "v"]);
    }
    let draw_all = |s: &mut Session, what: &str| {
        let mut counts = zeros(all.clone());
        for _ in 0..DRAWS {
            let k = text(&s.command(&["randomkey"]));
            let Some(c) = counts.get_mut(&k) else {
                panic!("{what}: RANDOMKEY returned {k:?}, not a live key (seed {seed})");
            };
            *c += 1;
        }
        assert_uniform(&counts, N, what, seed);
    };
    draw_all(&mut s, "randomkey, dense");
    // Many keys that expire: they must never be returned once dead, and
    // they make the tables sparse in live keys.
    for i in 0..2_000 {
        s.command(&["set", &format!("dying-{i}"), "v", "px", "10"]);
    }
    clock.advance(20);
    draw_all(&mut s, "randomkey, mostly expired");
    // Only expired keys left: nil, through the bounded fallback.
    for k in &all {
        s.command(&["del", k]);
    }
    for i in 0..50 {
        s.command(&["set", &format!("late-{i}"), "v", "px", "10"]);
    }
    clock.advance(20);
    assert_eq!(s.command(&["randomkey"]), Frame::Null);
}
