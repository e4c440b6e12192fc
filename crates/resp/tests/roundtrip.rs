//! Property tests: encode then decode gives the frame back, in both
//! protocols and however the bytes are split.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use cairn_resp::{CommandDecoder, Frame, Limits, Protocol, encode, parse_command, parse_frame};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// A fixed seed, printed so a failure can be replayed with
/// `CAIRN_PROPTEST_SEED=<seed>`.
fn config(cases: u32) -> Config {
    let seed = std::env::var("CAIRN_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("proptest seed: CAIRN_PROPTEST_SEED={seed}");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn line() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..16,
    )
    .prop_map(Bytes::from)
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-0.0),
        Just(0.1),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line().prop_map(Frame::Simple),
        line().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        bytes().prop_map(Frame::Bulk),
        Just(Frame::Null),
        Just(Frame::NullArray),
        double().prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        ("-?[1-9][0-9]{0,40}|0").prop_map(|s| Frame::BigNumber(Bytes::from(s))),
        (any::<[u8; 3]>(), bytes()).prop_map(|(format, text)| Frame::Verbatim { format, text }),
        bytes().prop_map(Frame::BlobError),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Array),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Set),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Push),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
        ]
    })
}

/// Equality where NaN equals NaN, since the wire carries `nan` faithfully.
fn same(a: &Frame, b: &Frame) -> bool {
    use Frame::*;
    let all =
        |x: &[Frame], y: &[Frame]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q));
    match (a, b) {
        (Double(x), Double(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        (Array(x), Array(y)) | (Set(x), Set(y)) | (Push(x), Push(y)) => all(x, y),
        (Map(x), Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

/// What a RESP3 client decodes: RESP3 has one null for both kinds.
fn as_resp3(f: Frame) -> Frame {
    let all = |v: Vec<Frame>| v.into_iter().map(as_resp3).collect();
    match f {
        Frame::NullArray => Frame::Null,
        Frame::Array(v) => Frame::Array(all(v)),
        Frame::Set(v) => Frame::Set(all(v)),
        Frame::Push(v) => Frame::Push(all(v)),
        Frame::Map(m) => Frame::Map(
            m.into_iter()
                .map(|(k, v)| (as_resp3(k), as_resp3(v)))
                .collect(),
        ),
        other => other,
    }
}

/// RESP2 writes blob errors as simple errors, whose CR/LF become spaces.
fn as_resp2(f: Frame) -> Frame {
    match f.into_resp2() {
        Frame::Error(e) => Frame::Error(Bytes::from(
            e.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect::<Vec<u8>>(),
        )),
        Frame::Array(v) => Frame::Array(v.into_iter().map(as_resp2).collect()),
        other => other,
    }
}

fn encoded(f: &Frame, p: Protocol) -> BytesMut {
    let mut b = BytesMut::new();
    encode(f, p, &mut b);
    b
}

/// Every proper prefix is incomplete and left untouched; the rest
/// completes it to `want`.
fn check_splits(wire: &[u8], want: &Frame) -> Result<(), TestCaseError> {
    let l = Limits::default();
    for cut in 0..wire.len() {
        let mut b = BytesMut::from(&wire[..cut]);
        let r = parse_frame(&mut b, &l);
        prop_assert_eq!(r, Ok(None), "cut {}", cut);
        prop_assert_eq!(&b[..], &wire[..cut]);
        b.extend_from_slice(&wire[cut..]);
        let got = parse_frame(&mut b, &l).unwrap().unwrap();
        prop_assert!(same(&got, want), "cut {}: {:?} != {:?}", cut, got, want);
        prop_assert!(b.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn resp3_round_trip(f in frame()) {
        let wire = encoded(&f, Protocol::Resp3);
        let want = as_resp3(f);
        let mut b = wire.clone();
        let got = parse_frame(&mut b, &Limits::default()).unwrap().unwrap();
        prop_assert!(same(&got, &want), "{:?} != {:?}", got, want);
        prop_assert!(b.is_empty());
        check_splits(&wire, &want)?;
    }

    #[test]
    fn resp2_round_trip_is_the_lowered_frame(f in frame()) {
        let wire = encoded(&f, Protocol::Resp2);
        let want = as_resp2(f);
        let mut b = wire.clone();
        let got = parse_frame(&mut b, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(&got, &want);
        check_splits(&wire, &want)?;
    }

    #[test]
    fn commands_round_trip_split_anywhere(
        cmds in prop::collection::vec(
            prop::collection::vec(bytes(), 1..6), 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut wire = BytesMut::new();
        for c in &cmds {
            let f = Frame::Array(c.iter().cloned().map(Frame::Bulk).collect());
            encode(&f, Protocol::Resp2, &mut wire);
        }
        // Feed the pipeline in random chunks through one decoder.
        let mut points: Vec<usize> =
            cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let l = Limits::default();
        let mut dec = CommandDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut fed = 0;
        for p in points {
            buf.extend_from_slice(&wire[fed..p]);
            fed = p;
            while let Some(args) = dec.decode(&mut buf, &l).unwrap() {
                got.push(args);
            }
        }
        prop_assert_eq!(&got, &cmds);
        prop_assert!(buf.is_empty());

        // And each single command split at every byte with the stateless
        // entry point: prefixes stay untouched.
        let first = &cmds[0];
        let one = encoded(
            &Frame::Array(first.iter().cloned().map(Frame::Bulk).collect()),
            Protocol::Resp2,
        );
        for cut in 0..one.len() {
            let mut b = BytesMut::from(&one[..cut]);
            prop_assert_eq!(parse_command(&mut b, &l), Ok(None));
            prop_assert_eq!(&b[..], &one[..cut]);
            b.extend_from_slice(&one[cut..]);
            prop_assert_eq!(parse_command(&mut b, &l), Ok(Some(first.clone())));
        }
    }
}
