//! Round trips of arbitrary records through every form: one framed record,
//! the stream, chunking and assembly, and prost's own encoder and decoder.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cairn_snapshot::{
    Assembler, Chunk, Chunker, Header, Limits, Record, StreamReader, StreamWriter, Value,
    decode_record, decode_record_shared, encode_record, framed_len, proto,
};
use proptest::prelude::*;
use prost::Message;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("NaN is not a score", |s| !s.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(f64::from_bits(1)),
        Just(f64::MIN_POSITIVE / 4.0),
        Just(-f64::MIN_POSITIVE / 3.0),
        Just(f64::MAX),
        Just(f64::MIN),
    ]
}

fn expiry() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(-1)),
        Just(Some(i64::MIN)),
        Just(Some(i64::MAX)),
        any::<i64>().prop_map(Some),
    ]
}

fn value(max_len: usize, max_item: usize) -> impl Strategy<Value = Value> {
    prop_oneof![
        bytes(max_item * 4).prop_map(Value::String),
        prop::collection::vec(bytes(max_item), 0..max_len).prop_map(Value::List),
        prop::collection::vec(bytes(max_item), 0..max_len).prop_map(Value::Set),
        prop::collection::vec((bytes(max_item), bytes(max_item)), 0..max_len).prop_map(Value::Hash),
        prop::collection::vec((bytes(max_item), score()), 0..max_len).prop_map(Value::SortedSet),
    ]
}

fn record(max_len: usize, max_item: usize) -> impl Strategy<Value = Record> {
    record_with_key(max_len, max_item, 24)
}

fn record_with_key(
    max_len: usize,
    max_item: usize,
    max_key: usize,
) -> impl Strategy<Value = Record> {
    (
        prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        bytes(max_key),
        expiry(),
        value(max_len, max_item),
    )
        .prop_map(|(db, key, expires_at_ms, value)| Record {
            db,
            key,
            expires_at_ms,
            value,
            chunk: None,
        })
}

fn hint() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(u64::MAX)),
        any::<u64>().prop_map(Some)
    ]
}

/// Any chunk position, flags and hints, including ones the assembler
/// refuses: the codec carries them all.
fn chunk() -> impl Strategy<Value = Chunk> {
    (
        prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        any::<[bool; 3]>(),
        [hint(), hint(), hint()],
    )
        .prop_map(
            |(index, [last, continues, key_continues], [key_len, string_len, element_len])| {
                let mut c = Chunk::new(index, last);
                c.continues = continues;
                c.key_continues = key_continues;
                c.key_len = key_len;
                c.string_len = string_len;
                c.element_len = element_len;
                c
            },
        )
}

/// Equality that tells -0.0 from 0.0 (`PartialEq` on f64 does not).
fn same(a: &Record, b: &Record) -> bool {
    if a != b {
        return false;
    }
    match (&a.value, &b.value) {
        (Value::SortedSet(x), Value::SortedSet(y)) => x
            .iter()
            .zip(y)
            .all(|((_, s), (_, t))| s.to_bits() == t.to_bits()),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn one_record_round_trips(r in record(16, 16)) {
        let mut framed = Vec::new();
        encode_record(&r, &mut framed).unwrap();
        prop_assert_eq!(framed.len(), framed_len(&r).unwrap());
        let back = decode_record(&framed).unwrap();
        prop_assert!(same(&back, &r), "{back:?} != {r:?}");
        let shared = decode_record_shared(&Bytes::from(framed), &Limits::DEFAULT).unwrap();
        prop_assert!(same(&shared, &r));
    }

    /// Our payload is byte for byte what prost writes for the schema, and
    /// prost reads it back to the same message.
    #[test]
    fn payload_matches_prost(mut r in record(8, 8), chunk in prop::option::of(chunk())) {
        r.chunk = chunk;
        let mut framed = Vec::new();
        encode_record(&r, &mut framed).unwrap();
        let payload = &framed[4..framed.len() - 4];
        let message = proto::Record::from(&r);
        prop_assert_eq!(payload, &message.encode_to_vec()[..]);
        prop_assert_eq!(proto::Record::decode(payload).unwrap(), message);
    }

    #[test]
    fn streams_round_trip(records in prop::collection::vec(record(6, 12), 0..40), created in any::<i64>()) {
        let mut writer = StreamWriter::new(Vec::new(), Header::new(created)).unwrap();
        for r in &records {
            writer.write_record(r).unwrap();
        }
        let (footer, bytes) = writer.finish_into_inner().unwrap();
        prop_assert_eq!(footer.record_count, records.len() as u64);
        let mut reader = StreamReader::new(&bytes[..]).unwrap();
        prop_assert_eq!(reader.header().created_at_ms, created);
        let back: Vec<Record> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(reader.footer(), Some(&footer));
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in back.iter().zip(&records) {
            prop_assert!(same(a, b));
        }
    }

    /// Big entries with a small chunk target give many chunks, each within
    /// its bounds, numbered in order, the key written once, and together
    /// holding exactly the entry's key and elements (joined by hand here,
    /// independently of the assembler).
    #[test]
    fn chunks_respect_their_bounds(
        r in record_with_key(300, 40, 80),
        target in 1usize..2048,
        max_elements in 1usize..64,
    ) {
        let chunker = Chunker::new().target_bytes(target).max_elements(max_elements);
        let chunks: Vec<Record> = chunker.split(r.clone()).collect();
        prop_assert!(!chunks.is_empty());
        if chunks.len() == 1 && chunks[0].chunk.is_none() {
            prop_assert!(same(&chunks[0], &r));
            prop_assert!(r.value.len() <= max_elements || matches!(r.value, Value::String(_)));
            return Ok(());
        }
        let content = |c: &Record| c.key.len() + encoded_value_size(&c.value);
        // Chunked only when needed.
        prop_assert!(content(&r) > target || r.value.len() > max_elements);
        let mut key = Vec::new();
        let mut key_done = false;
        let mut joined = Joined::new(&r.value);
        for (i, c) in chunks.iter().enumerate() {
            let info = c.chunk.unwrap();
            prop_assert_eq!(info.index as usize, i);
            prop_assert_eq!(info.last, i + 1 == chunks.len());
            prop_assert_eq!((c.db, c.expires_at_ms), (r.db, r.expires_at_ms));
            prop_assert_eq!(c.value.kind(), r.value.kind());
            if key_done {
                prop_assert!(c.key.is_empty(), "key repeated in chunk {i}");
            } else {
                key.extend_from_slice(&c.key);
                key_done = !info.key_continues;
            }
            prop_assert!(!info.key_continues || (c.value.is_empty() && c.key.len() == target));
            // Within the target, except the one element or byte a target
            // smaller than an element's framing must still let through.
            prop_assert!(
                content(c) <= target || (c.key.is_empty() && c.value.len() == 1 && content(c) <= 11),
                "chunk {i} holds {} bytes, target {target}", content(c)
            );
            prop_assert!(framed_len(c).unwrap() <= target.max(11) + 100);
            if !matches!(c.value, Value::String(_)) {
                prop_assert!(c.value.len() <= max_elements);
            }
            joined.add(c);
        }
        prop_assert_eq!(&key[..], &r.key[..]);
        prop_assert!(joined.finish() == r.value, "joined value differs");
    }
}

/// Encoded size of a value's elements, as the chunker counts it.
fn encoded_value_size(v: &Value) -> usize {
    let field = |n: usize| 1 + (64 - (n as u64 | 1).leading_zeros() as usize).div_ceil(7) + n;
    match v {
        Value::String(b) => b.len(),
        Value::List(v) | Value::Set(v) => v.iter().map(|b| field(b.len())).sum(),
        Value::Hash(v) => v.iter().map(|(f, x)| field(f.len()) + field(x.len())).sum(),
        Value::SortedSet(v) => v.iter().map(|(m, _)| field(m.len()) + 8).sum(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Joins chunk values by the format's rules, independently of
/// [`Assembler`]: strings concatenate; a chunk flagged `continues` has its
/// last element joined with the next chunk's first.
struct Joined {
    value: Value,
    open: bool,
}

impl Joined {
    fn new(like: &Value) -> Self {
        let value = match like {
            Value::String(_) => Value::String(Bytes::new()),
            Value::List(_) => Value::List(vec![]),
            Value::Set(_) => Value::Set(vec![]),
            Value::Hash(_) => Value::Hash(vec![]),
            Value::SortedSet(_) => Value::SortedSet(vec![]),
            other => panic!("unexpected {other:?}"),
        };
        Joined { value, open: false }
    }

    fn add(&mut self, c: &Record) {
        let cat = |a: &Bytes, b: &Bytes| Bytes::from([&a[..], &b[..]].concat());
        let open = self.open;
        self.open = c.chunk.is_some_and(|c| c.continues);
        match (&mut self.value, &c.value) {
            (Value::String(a), Value::String(b)) => *a = cat(a, b),
            (Value::List(a), Value::List(b)) | (Value::Set(a), Value::Set(b)) => {
                let mut b = b.iter();
                if open {
                    let (last, first) = (a.pop().unwrap(), b.next().unwrap());
                    a.push(cat(&last, first));
                }
                a.extend(b.cloned());
            }
            (Value::Hash(a), Value::Hash(b)) => {
                let mut b = b.iter();
                if open {
                    let ((f, v), (g, w)) = (a.pop().unwrap(), b.next().unwrap());
                    a.push((cat(&f, g), cat(&v, w)));
                }
                a.extend(b.cloned());
            }
            (Value::SortedSet(a), Value::SortedSet(b)) => {
                let mut b = b.iter();
                if open {
                    let ((m, s), (n, t)) = (a.pop().unwrap(), b.next().unwrap());
                    assert_eq!(
                        s.to_bits(),
                        t.to_bits(),
                        "fragments of one member disagree on its score"
                    );
                    a.push((cat(&m, n), s));
                }
                a.extend(b.cloned());
            }
            (a, b) => panic!("{a:?} and {b:?} differ in type"),
        }
    }

    fn finish(self) -> Value {
        assert!(!self.open, "the last chunk continues");
        self.value
    }
}

/// Writes `records` split by `chunker` into a stream and reads them back
/// through an [`Assembler`].
fn chunked_stream_round_trip(records: &[Record], chunker: Chunker) -> (Vec<Record>, u64) {
    let mut writer = StreamWriter::new(Vec::new(), Header::new(7)).unwrap();
    for r in records {
        for c in chunker.split(r.clone()) {
            writer.write_record(&c).unwrap();
        }
    }
    let (footer, bytes) = writer.finish_into_inner().unwrap();
    let mut assembler = Assembler::new();
    let mut out = Vec::new();
    for r in StreamReader::new(&bytes[..]).unwrap() {
        if let Some(entry) = assembler.push(r.unwrap()).unwrap() {
            out.push(entry);
        }
    }
    assembler.finish().unwrap();
    (out, footer.record_count)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn assembled_entries_equal_originals(
        records in prop::collection::vec(record_with_key(200, 30, 64), 0..10),
        target in 1usize..1024,
        max_elements in 1usize..50,
    ) {
        let (back, _) = chunked_stream_round_trip(
            &records,
            Chunker::new().target_bytes(target).max_elements(max_elements),
        );
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in back.iter().zip(&records) {
            prop_assert!(same(a, b), "{a:?} != {b:?}");
        }
    }
}

/// Entries far above the default 1 MiB chunk size, with the default chunker.
#[test]
fn huge_entries_round_trip_with_default_chunker() {
    let big_string = Bytes::from(
        (0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let list: Vec<Bytes> = (0..300_000u32)
        .map(|i| Bytes::from(i.to_string()))
        .collect();
    let hash: Vec<(Bytes, Bytes)> = (0..100_000u32)
        .map(|i| (Bytes::from(format!("f{i}")), Bytes::from(vec![1u8; 20])))
        .collect();
    let zset: Vec<(Bytes, f64)> = (0..200_000u32)
        .map(|i| (Bytes::from(format!("m{i}")), f64::from(i) * -0.5))
        .collect();
    // More elements than one record may hold, each tiny.
    let set: Vec<Bytes> = (0..1_500_000u32)
        .map(|i| Bytes::from(i.to_le_bytes().to_vec()))
        .collect();
    let records = vec![
        Record::new(0, "s", Value::String(big_string)).with_expiry(Some(i64::MAX)),
        Record::new(1, "l", Value::List(list)),
        Record::new(2, "h", Value::Hash(hash)),
        Record::new(3, "z", Value::SortedSet(zset)),
        Record::new(4, "set", Value::Set(set)),
        Record::new(5, "", Value::List(Vec::new())),
    ];
    for r in &records {
        let mut max = 0;
        let mut n = 0;
        for c in Chunker::new().split(r.clone()) {
            max = max.max(framed_len(&c).unwrap());
            n += 1;
        }
        println!(
            "{:?} key {:?}: {n} chunks, largest framed {max} bytes",
            r.value.kind(),
            r.key
        );
        assert!(
            max <= cairn_snapshot::DEFAULT_CHUNK_BYTES + 64,
            "chunk of {max} bytes"
        );
    }
    let (back, count) = chunked_stream_round_trip(&records, Chunker::new());
    assert!(count > records.len() as u64 + 10, "only {count} records");
    assert_eq!(back, records);
}

#[test]
fn limits_refuse_what_they_should() {
    let mut framed = Vec::new();
    let too_many = Record::new(0, "k", Value::Set(vec![Bytes::new(); (1 << 20) + 1]));
    assert!(matches!(
        encode_record(&too_many, &mut framed),
        Err(cairn_snapshot::Error::TooLarge {
            what: "elements",
            ..
        })
    ));
    assert!(framed.is_empty(), "nothing written on error");

    let nan = Record::new(0, "k", Value::SortedSet(vec![(Bytes::from("m"), f64::NAN)]));
    assert!(matches!(
        encode_record(&nan, &mut framed),
        Err(cairn_snapshot::Error::InvalidScore { .. })
    ));

    let small = Limits::DEFAULT.max_record_bytes(100);
    let big = Record::new(0, "k", Value::String(Bytes::from(vec![0u8; 200])));
    assert!(matches!(
        cairn_snapshot::encode_record_with(&big, &small, &mut framed),
        Err(cairn_snapshot::Error::TooLarge { what: "record", .. })
    ));
    encode_record(&big, &mut framed).unwrap();
    assert!(matches!(
        cairn_snapshot::decode_record_with(&framed, &small),
        Err(cairn_snapshot::Error::TooLarge {
            what: "record",
            size: 206,
            limit: 100,
            ..
        })
    ));

    // A 4 GB length field is refused before anything is allocated.
    let mut hostile = 0xFFFF_FFF0u32.to_le_bytes().to_vec();
    hostile.extend_from_slice(&[0u8; 16]);
    assert!(matches!(
        decode_record(&hostile),
        Err(cairn_snapshot::Error::TooLarge { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Pushing elements one at a time gives the same records as splitting
    /// the whole entry.
    #[test]
    fn entry_chunker_matches_split(
        r in record_with_key(120, 60, 80).prop_filter("collections", |r| !matches!(r.value, Value::String(_))),
        target in 1usize..1024,
        max_elements in 1usize..40,
    ) {
        let chunker = Chunker::new().target_bytes(target).max_elements(max_elements);
        let expected: Vec<Record> = chunker.split(r.clone()).collect();
        let (db, key, exp) = (r.db, r.key.clone(), r.expires_at_ms);
        let mut got = Vec::new();
        match r.value {
            Value::List(items) => {
                let mut e = chunker.list(db, key, exp);
                got.extend(items.into_iter().flat_map(|i| e.push(i)));
                got.extend(e.finish());
            }
            Value::Set(items) => {
                let mut e = chunker.set(db, key, exp);
                got.extend(items.into_iter().flat_map(|i| e.push(i)));
                got.extend(e.finish());
            }
            Value::Hash(pairs) => {
                let mut e = chunker.hash(db, key, exp);
                got.extend(pairs.into_iter().flat_map(|p| e.push(p)));
                got.extend(e.finish());
            }
            Value::SortedSet(pairs) => {
                let mut e = chunker.sorted_set(db, key, exp);
                got.extend(pairs.into_iter().flat_map(|p| e.push(p)));
                got.extend(e.finish());
            }
            other => prop_assert!(false, "unexpected {other:?}"),
        }
        prop_assert_eq!(got, expected);
    }
}
