//! Keys and single elements larger than a chunk (format version 2): split
//! by the chunker, carried by the real codec, joined by the assembler; the
//! damage the assembler must name; and version-1 chunk sequences, which
//! must still load.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cairn_snapshot::{
    Assembler, Chunk, ChunkError, Chunker, Error, Header, Limits, Part, Record, StreamReader,
    StreamWriter, Value, decode_record, decode_record_shared, encode_record,
};
use proptest::prelude::*;

/// Fixed bytes of a chunk record besides its key and value data: db,
/// expiry, chunk message with hints, field keys and lengths, framing.
const OVERHEAD: usize = 100;

fn split(chunker: &Chunker, r: &Record) -> Vec<Record> {
    chunker.split(r.clone()).collect()
}

/// Encodes every record, decodes it from a shared buffer (as the store
/// hands records out) and assembles; checks each framed record's size.
fn through_codec(records: &[Record], target: usize) -> Result<Vec<Record>, Error> {
    let mut assembler = Assembler::new();
    let mut out = Vec::new();
    for r in records {
        let mut framed = Vec::new();
        encode_record(r, &mut framed)?;
        assert!(
            framed.len() <= target.max(11) + OVERHEAD,
            "record of {} bytes for a target of {target}: {r:?}",
            framed.len()
        );
        let back = decode_record_shared(&Bytes::from(framed), &Limits::DEFAULT)?;
        assert_eq!(&back, r, "the codec changed the record");
        out.extend(assembler.push(back)?);
    }
    assembler.finish()?;
    Ok(out)
}

fn assemble(records: Vec<Record>) -> Result<Vec<Record>, Error> {
    let mut a = Assembler::new();
    let mut out = Vec::new();
    for r in records {
        out.extend(a.push(r)?);
    }
    a.finish()?;
    Ok(out)
}

fn chunk_error(records: Vec<Record>) -> ChunkError {
    match assemble(records) {
        Err(Error::Chunk { kind, .. }) => kind,
        other => panic!("expected a chunk error, got {other:?}"),
    }
}

fn info(r: &Record) -> Chunk {
    r.chunk.expect("a chunk record")
}

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

/// `len` distinct-looking bytes, all 256 values included for long ones.
fn binary(len: usize, salt: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect::<Vec<u8>>()
        .into()
}

/// Equality that tells -0.0 from 0.0 (`PartialEq` on f64 does not).
fn same(a: &[Record], b: &[Record]) -> bool {
    a == b
        && a.iter().zip(b).all(|(x, y)| match (&x.value, &y.value) {
            (Value::SortedSet(p), Value::SortedSet(q)) => p
                .iter()
                .zip(q)
                .all(|((_, s), (_, t))| s.to_bits() == t.to_bits()),
            _ => true,
        })
}

// ------------------------------------------------------------ round trips

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("NaN is not a score", |s| !s.is_nan()),
        Just(-0.0),
        Just(f64::INFINITY),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        bytes(300).prop_map(Value::String),
        prop::collection::vec(bytes(200), 0..6).prop_map(Value::List),
        prop::collection::vec(bytes(200), 0..6).prop_map(Value::Set),
        prop::collection::vec(bytes(200), 0..6).prop_map(Value::Stream),
        prop::collection::vec((bytes(120), bytes(120)), 0..6).prop_map(Value::Hash),
        prop::collection::vec((bytes(200), score()), 0..6).prop_map(Value::SortedSet),
    ]
}

fn entry() -> impl Strategy<Value = Record> {
    (
        any::<u32>(),
        bytes(200),
        prop::option::of(any::<i64>()),
        value(),
    )
        .prop_map(|(db, key, expiry, value)| Record::new(db, key, value).with_expiry(expiry))
}

/// Pushes a collection entry's elements one at a time.
fn entry_chunker_records(chunker: &Chunker, r: &Record) -> Option<Vec<Record>> {
    let (db, key, exp) = (r.db, r.key.clone(), r.expires_at_ms);
    let mut out = Vec::new();
    match r.value.clone() {
        Value::List(items) => {
            let mut e = chunker.list(db, key, exp);
            items.into_iter().for_each(|i| out.extend(e.push(i)));
            out.extend(e.finish());
        }
        Value::Stream(items) => {
            let mut e = chunker.stream(db, key, exp);
            items.into_iter().for_each(|i| out.extend(e.push(i)));
            out.extend(e.finish());
        }
        Value::Set(items) => {
            let mut e = chunker.set(db, key, exp);
            items.into_iter().for_each(|i| out.extend(e.push(i)));
            out.extend(e.finish());
        }
        Value::Hash(pairs) => {
            let mut e = chunker.hash(db, key, exp);
            pairs.into_iter().for_each(|p| out.extend(e.push(p)));
            out.extend(e.finish());
        }
        Value::SortedSet(pairs) => {
            let mut e = chunker.sorted_set(db, key, exp);
            pairs.into_iter().for_each(|p| out.extend(e.push(p)));
            out.extend(e.finish());
        }
        _ => return None,
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// Keys, strings and elements up to ~12 times the target, of every
    /// type, several entries in a row: every record within the target plus
    /// overhead, and every entry back exactly.
    #[test]
    fn tiny_targets_split_and_reassemble_everything(
        entries in prop::collection::vec(entry(), 1..4),
        target in 16usize..=64,
        max_elements in 1usize..8,
    ) {
        let chunker = Chunker::new().target_bytes(target).max_elements(max_elements);
        let mut records = Vec::new();
        for e in &entries {
            let chunks = split(&chunker, e);
            if let Some(pushed) = entry_chunker_records(&chunker, e) {
                prop_assert_eq!(&pushed, &chunks, "EntryChunker and split differ");
            }
            records.extend(chunks);
        }
        let back = through_codec(&records, target).unwrap();
        prop_assert!(same(&back, &entries), "{back:?} != {entries:?}");
    }

    /// `push_part` hands out the same entries as `push`, piece by piece:
    /// joining the parts of each entry gives it back, every part but the
    /// first and last holds elements, and no part holds more elements
    /// than one chunk carried.
    #[test]
    fn parts_join_to_the_entries_push_assembles(
        entries in prop::collection::vec(entry(), 1..4),
        target in 16usize..=64,
        max_elements in 1usize..8,
    ) {
        let chunker = Chunker::new().target_bytes(target).max_elements(max_elements);
        let records: Vec<Record> = entries.iter().flat_map(|e| split(&chunker, e)).collect();
        let mut a = Assembler::new();
        let mut joined: Vec<Record> = Vec::new();
        let mut open = false;
        for r in records {
            let carried = r.value.len();
            let Some(Part { record, first, last }) = a.push_part(r).unwrap() else {
                continue;
            };
            prop_assert_eq!(first, !open, "first flags the start of an entry");
            prop_assert!(record.chunk.is_none());
            if !first && !last {
                prop_assert!(!record.value.is_empty(), "an empty middle part");
            }
            if !(first && last) {
                // An element split across chunks comes whole: one more
                // than the chunk carried at most.
                prop_assert!(record.value.len() <= carried.max(1) + 1);
            }
            if first {
                joined.push(record);
            } else {
                let whole = joined.last_mut().unwrap();
                prop_assert_eq!(&whole.key, &record.key);
                match (&mut whole.value, record.value) {
                    (Value::List(a), Value::List(b))
                    | (Value::Set(a), Value::Set(b))
                    | (Value::Stream(a), Value::Stream(b)) => a.extend(b),
                    (Value::Hash(a), Value::Hash(b)) => a.extend(b),
                    (Value::SortedSet(a), Value::SortedSet(b)) => a.extend(b),
                    (a, b) => prop_assert!(false, "parts of different types {a:?} {b:?}"),
                }
            }
            open = !last;
        }
        a.finish().unwrap();
        prop_assert!(!open);
        prop_assert!(same(&joined, &entries), "{joined:?} != {entries:?}");
    }

    /// Targets below an element's framing still make progress and round-trip.
    #[test]
    fn minimal_targets_still_round_trip(
        e in entry(),
        target in 1usize..16,
    ) {
        let chunker = Chunker::new().target_bytes(target);
        let chunks = split(&chunker, &e);
        if let Some(pushed) = entry_chunker_records(&chunker, &e) {
            prop_assert_eq!(&pushed, &chunks);
        }
        let back = through_codec(&chunks, target).unwrap();
        prop_assert!(same(&back, std::slice::from_ref(&e)));
    }
}

#[test]
fn a_large_list_element_spans_chunks_with_its_length_hinted() {
    let big = binary(100, 1);
    let r = Record::new(
        0,
        "k",
        Value::List(vec![b("a"), big.clone(), Bytes::new(), b("z")]),
    );
    let c = split(&Chunker::new().target_bytes(16), &r);
    // "k" and "a" fill chunk 0 partly; the 100 bytes start there (10 fit:
    // 16 - 1 key byte - 3 for "a" - 2 framing bytes) and go on 14 at a time.
    let frags: Vec<&Bytes> = c
        .iter()
        .flat_map(|r| match &r.value {
            Value::List(v) => v.iter().collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(frags[0], &b("a"));
    assert_eq!(info(&c[0]).element_len, Some(100));
    assert!(info(&c[0]).continues);
    assert_eq!(frags[1].len(), 10);
    for r in &c[1..c.len() - 1] {
        assert!(info(r).continues, "{r:?}");
        assert_eq!(info(r).element_len, None);
        assert_eq!(r.value.len(), 1);
        assert!(r.key.is_empty());
    }
    let end = c.last().unwrap();
    assert!(!info(end).continues && info(end).last);
    assert_eq!(through_codec(&c, 16).unwrap(), vec![r]);
}

#[test]
fn hash_pairs_split_field_first_then_value() {
    let (field, value) = (binary(40, 2), binary(50, 3));
    let r = Record::new(
        2,
        "h",
        Value::Hash(vec![(field.clone(), value.clone()), (b("f"), b("v"))]),
    )
    .with_expiry(Some(-1));
    let c = split(&Chunker::new().target_bytes(20), &r);
    let parts: Vec<(Bytes, Bytes)> = c
        .iter()
        .flat_map(|r| match &r.value {
            Value::Hash(v) => v.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    // Until the field is complete every fragment's value part is empty;
    // after it every fragment's field part is.
    let joined_field: Vec<u8> = parts.iter().flat_map(|(f, _)| f.to_vec()).collect();
    let mut value_began = false;
    for (f, v) in &parts[..parts.len() - 1] {
        assert!(
            !value_began || f.is_empty(),
            "field bytes after value bytes"
        );
        value_began |= !v.is_empty();
    }
    assert_eq!(&joined_field[..40], &field[..]);
    assert_eq!(info(&c[0]).element_len, Some(90));
    assert_eq!(through_codec(&c, 20).unwrap(), vec![r]);
}

#[test]
fn sorted_set_fragments_repeat_the_score() {
    let r = Record::new(
        0,
        "z",
        Value::SortedSet(vec![(binary(80, 4), -0.0), (b("m"), f64::NEG_INFINITY)]),
    );
    let c = split(&Chunker::new().target_bytes(24), &r);
    assert!(c.len() > 4);
    for r in &c[..c.len() - 1] {
        let Value::SortedSet(v) = &r.value else {
            panic!()
        };
        assert_eq!(v[0].1.to_bits(), (-0.0f64).to_bits());
    }
    let back = through_codec(&c, 24).unwrap();
    assert!(same(&back, &[r]));
}

#[test]
fn large_keys_are_split_ahead_of_the_value_and_written_once() {
    let key = binary(70, 5);
    for value in [
        Value::String(binary(45, 6)),
        Value::String(Bytes::new()),
        Value::List(vec![b("x"), binary(33, 7)]),
        Value::List(vec![]),
        Value::Set(vec![b("s")]),
        Value::Hash(vec![(b("f"), Bytes::new())]),
        Value::SortedSet(vec![(Bytes::new(), 1.5)]),
    ] {
        let r = Record::new(9, key.clone(), value).with_expiry(Some(7));
        let c = split(&Chunker::new().target_bytes(16), &r);
        // 70 bytes: four fragments of 16 flagged `key_continues`, holding
        // no value, then the last 6 bytes with the start of the value.
        for (i, r) in c.iter().enumerate().take(4) {
            assert!(info(r).key_continues, "chunk {i}: {r:?}");
            assert!(r.value.is_empty());
            assert_eq!(r.key, key.slice(i * 16..(i + 1) * 16));
        }
        assert_eq!(info(&c[0]).key_len, Some(70));
        assert!(c[1..].iter().all(|r| info(r).key_len.is_none()));
        assert!(!info(&c[4]).key_continues);
        assert_eq!(c[4].key, key.slice(64..));
        assert!(c[5..].iter().all(|r| r.key.is_empty()), "key repeated");
        if matches!(r.value, Value::String(_)) {
            assert_eq!(info(&c[0]).string_len, Some(r.value.len() as u64));
        }
        assert_eq!(through_codec(&c, 16).unwrap(), vec![r.clone()]);
        if let Some(pushed) = entry_chunker_records(&Chunker::new().target_bytes(16), &r) {
            assert_eq!(pushed, c);
        }
    }
}

#[test]
fn elements_meeting_a_chunk_boundary_exactly_are_not_split() {
    // Items of 6 bytes cost 8 encoded (key byte, length byte, data).
    let six = |i: u8| Bytes::from(vec![i; 6]);
    let r = Record::new(0, "", Value::List((0..6).map(six).collect()));
    let c = split(&Chunker::new().target_bytes(16), &r);
    assert_eq!(c.len(), 3);
    for r in &c {
        assert_eq!(r.value.len(), 2);
        assert!(!info(r).continues);
    }
    assert_eq!(through_codec(&c, 16).unwrap(), vec![r]);

    // An item costing exactly the target gets a chunk of its own, whole;
    // one byte more and it is split.
    let exact = Bytes::from(vec![1u8; 14]);
    let r = Record::new(0, "", Value::List(vec![b("a"), exact.clone(), b("b")]));
    let c = split(&Chunker::new().target_bytes(16), &r);
    assert_eq!(c.len(), 3);
    assert!(c.iter().all(|r| !info(r).continues));
    assert_eq!(c[1].value, Value::List(vec![exact]));
    assert_eq!(through_codec(&c, 16).unwrap(), vec![r]);

    let over = Bytes::from(vec![1u8; 15]);
    let r = Record::new(0, "", Value::List(vec![over]));
    let c = split(&Chunker::new().target_bytes(16), &r);
    assert_eq!(c.len(), 2);
    assert!(info(&c[0]).continues);
    assert_eq!(c[0].value, Value::List(vec![Bytes::from(vec![1u8; 14])]));
    assert_eq!(c[1].value, Value::List(vec![Bytes::from(vec![1u8; 1])]));
    assert_eq!(through_codec(&c, 16).unwrap(), vec![r]);

    // A string whose key and bytes fill the target exactly stays whole.
    let r = Record::new(0, "kk", Value::String(Bytes::from(vec![0u8; 14])));
    let c = split(&Chunker::new().target_bytes(16), &r);
    assert_eq!(c, vec![r.clone()]);
    let r = Record::new(0, "kk", Value::String(Bytes::from(vec![0u8; 15])));
    let c = split(&Chunker::new().target_bytes(16), &r);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].value.len(), 14);
    assert_eq!(through_codec(&c, 16).unwrap(), vec![r]);
}

#[test]
fn empty_elements_empty_keys_and_binary_bytes_round_trip() {
    let entries = vec![
        Record::new(0, "", Value::List(vec![Bytes::new(); 9])),
        Record::new(0, "", Value::Set(vec![Bytes::new(), binary(300, 0)])),
        Record::new(
            0,
            binary(3, 255),
            Value::Hash(vec![
                (Bytes::new(), Bytes::new()),
                (Bytes::new(), binary(40, 9)),
                (binary(40, 8), Bytes::new()),
            ]),
        ),
        Record::new(0, "", Value::SortedSet(vec![(Bytes::new(), 0.0); 3])),
        Record::new(0, "", Value::String(binary(256, 0))),
    ];
    for target in [1, 2, 3, 5, 9, 16, 33] {
        let chunker = Chunker::new().target_bytes(target).max_elements(2);
        let records: Vec<Record> = entries.iter().flat_map(|e| split(&chunker, e)).collect();
        assert!(same(&through_codec(&records, target).unwrap(), &entries));
    }
}

// ------------------------------------------------------------ damage

/// A list entry whose middle element spans chunks 1..=3 (of 5): chunk 1
/// starts it (hinted), chunk 2 continues it, chunk 3 ends it, chunk 4
/// holds the last item.
fn split_list() -> (Record, Vec<Record>) {
    let r = Record::new(
        1,
        "key",
        Value::List(vec![b("first-item"), binary(40, 1), b("last-item!")]),
    );
    let c = split(&Chunker::new().target_bytes(16), &r);
    let flags: Vec<(bool, Option<u64>)> = c
        .iter()
        .map(|r| (info(r).continues, info(r).element_len))
        .collect();
    assert_eq!(
        flags,
        [
            (false, None),
            (true, Some(40)),
            (true, None),
            (false, None),
            (false, None)
        ],
        "{c:?}"
    );
    (r, c)
}

#[test]
fn chunks_out_of_order_are_refused() {
    let (_, mut c) = split_list();
    c.swap(2, 3);
    assert_eq!(
        chunk_error(c),
        ChunkError::OutOfOrder {
            expected: 2,
            found: 3
        }
    );
}

#[test]
fn a_continuation_on_the_last_chunk_is_refused() {
    let (_, mut c) = split_list();
    let last = c.last_mut().unwrap().chunk.as_mut().unwrap();
    last.continues = true;
    assert!(matches!(
        chunk_error(c),
        ChunkError::Continuation { index: 4, .. }
    ));
}

#[test]
fn a_missing_continuation_is_refused() {
    // The continued element is not in the next chunk.
    let (_, mut c) = split_list();
    c[2].value = Value::List(vec![]);
    c[2].chunk.as_mut().unwrap().continues = false;
    assert_eq!(
        chunk_error(c),
        ChunkError::Continuation {
            index: 2,
            reason: "the continued element is missing"
        }
    );
    // A middle chunk lost its flag: the element ends early, shorter than
    // its hint says.
    let (_, mut c) = split_list();
    c[2].chunk.as_mut().unwrap().continues = false;
    assert!(matches!(
        chunk_error(c),
        ChunkError::LengthMismatch {
            index: 2,
            what: "element",
            expected: 40,
            ..
        }
    ));
    // The first chunk lost its flag: its hint has nothing to describe.
    let (_, mut c) = split_list();
    c[1].chunk.as_mut().unwrap().continues = false;
    assert_eq!(
        chunk_error(c),
        ChunkError::Misplaced {
            index: 1,
            field: "element_len"
        }
    );
    // A chunk flagged `continues` holding no element.
    let (_, mut c) = split_list();
    c[2].value = Value::List(vec![]);
    assert_eq!(
        chunk_error(c),
        ChunkError::Continuation {
            index: 2,
            reason: "a chunk without elements cannot continue one"
        }
    );
    // The entry ends (another begins) while an element is open.
    let (_, c) = split_list();
    let cut = [&c[..3], &[Record::new(0, "x", Value::Set(vec![]))]].concat();
    assert_eq!(chunk_error(cut), ChunkError::Missing { last_index: 2 });
}

#[test]
fn a_key_fragment_out_of_place_is_refused() {
    // After the key was complete (and elements came).
    let (_, mut c) = split_list();
    c[2].value = Value::List(vec![]);
    let info = c[2].chunk.as_mut().unwrap();
    info.continues = false;
    info.key_continues = true;
    c[2].key = b("more-key");
    assert_eq!(
        chunk_error(c),
        ChunkError::KeyFragment {
            index: 2,
            reason: "a key fragment after the key was complete"
        }
    );
    // With value data.
    let (_, mut c) = split_list();
    c[0].chunk.as_mut().unwrap().key_continues = true;
    assert!(matches!(
        chunk_error(c),
        ChunkError::KeyFragment { index: 0, .. }
    ));
    // On the last chunk: the key would never end.
    let mut r = Record::new(0, "k", Value::List(vec![]));
    r.chunk = Some(Chunk::new(0, true));
    r.chunk.as_mut().unwrap().key_continues = true;
    assert!(matches!(
        chunk_error(vec![r]),
        ChunkError::KeyFragment { index: 0, .. }
    ));
    // A later chunk naming another key (format version 1 repeats it; it
    // must then be the same).
    let (_, mut c) = split_list();
    c[3].key = b("kez");
    assert_eq!(
        chunk_error(c),
        ChunkError::Mismatch {
            index: 3,
            field: "key"
        }
    );
}

#[test]
fn sorted_set_fragments_with_different_scores_are_refused() {
    let r = Record::new(0, "z", Value::SortedSet(vec![(binary(60, 1), 2.0)]));
    let mut c = split(&Chunker::new().target_bytes(20), &r);
    assert!(c.len() >= 3);
    let Value::SortedSet(v) = &mut c[1].value else {
        panic!()
    };
    v[0].1 = 2.0000000000000004;
    assert_eq!(
        chunk_error(c),
        ChunkError::Mismatch {
            index: 1,
            field: "score"
        }
    );
}

#[test]
fn hash_field_bytes_after_value_bytes_are_refused() {
    let mut c0 = Record::new(0, "h", Value::Hash(vec![(b("fi"), b("va"))]));
    let mut info0 = Chunk::new(0, false);
    info0.continues = true;
    c0.chunk = Some(info0);
    let mut c1 = Record::new(0, "", Value::Hash(vec![(b("eld"), b("lue"))]));
    c1.chunk = Some(Chunk::new(1, true));
    assert!(matches!(
        chunk_error(vec![c0.clone(), c1]),
        ChunkError::Continuation { index: 1, .. }
    ));
    // Value bytes continuing after the field's are fine.
    let mut c1 = Record::new(0, "", Value::Hash(vec![(b(""), b("lue"))]));
    c1.chunk = Some(Chunk::new(1, true));
    assert_eq!(
        assemble(vec![c0, c1]).unwrap(),
        vec![Record::new(
            0,
            "h",
            Value::Hash(vec![(b("fi"), b("value"))])
        )]
    );
}

#[test]
fn hostile_length_hints_are_refused_without_a_huge_allocation() {
    let string = Record::new(0, "s", Value::String(binary(50, 0)));
    let strings = || split(&Chunker::new().target_bytes(16), &string);
    let key = Record::new(0, binary(40, 0), Value::Set(vec![b("m")]));
    let keys = || split(&Chunker::new().target_bytes(16), &key);
    let (_, list) = split_list();
    /// What, the records, which to damage, how, and the error's
    /// `what` and `expected`.
    type Case = (
        &'static str,
        Vec<Record>,
        usize,
        fn(&mut Chunk),
        &'static str,
        u64,
    );
    let cases: [Case; 6] = [
        (
            "string too long",
            strings(),
            0,
            |c| c.string_len = Some(u64::MAX),
            "string",
            u64::MAX,
        ),
        (
            "string too short",
            strings(),
            0,
            |c| c.string_len = Some(20),
            "string",
            20,
        ),
        (
            "key too long",
            keys(),
            0,
            |c| c.key_len = Some(u64::MAX),
            "key",
            u64::MAX,
        ),
        (
            "key too short",
            keys(),
            0,
            |c| c.key_len = Some(17),
            "key",
            17,
        ),
        (
            "element too long",
            list.clone(),
            1,
            |c| c.element_len = Some(u64::MAX),
            "element",
            u64::MAX,
        ),
        (
            "element too short",
            list.clone(),
            1,
            |c| c.element_len = Some(3),
            "element",
            3,
        ),
    ];
    // The default limit (a hint may reserve up to 512 MiB), no limit (the
    // reservation fails and the buffer grows instead), no preallocation.
    for limit in [None, Some(usize::MAX), Some(0)] {
        for (what, records, at, tamper, field, hint) in cases.clone() {
            let mut records = records;
            tamper(records[at].chunk.as_mut().unwrap());
            let mut a = Assembler::new();
            if let Some(limit) = limit {
                a = a.prealloc_limit(limit);
            }
            let err = records
                .into_iter()
                .try_for_each(|r| a.push(r).map(drop))
                .unwrap_err();
            let Error::Chunk {
                kind:
                    ChunkError::LengthMismatch {
                        what: w, expected, ..
                    },
                ..
            } = err
            else {
                panic!("{what}: {err:?}")
            };
            assert_eq!((w, expected), (field, hint), "{what}");
        }
    }
}

#[test]
fn misplaced_hints_and_flags_are_refused() {
    let (_, list) = split_list();
    let mut c = list.clone();
    c[2].chunk.as_mut().unwrap().element_len = Some(40);
    assert_eq!(
        chunk_error(c),
        ChunkError::Misplaced {
            index: 2,
            field: "element_len"
        }
    );
    let mut c = list.clone();
    c[0].chunk.as_mut().unwrap().string_len = Some(1);
    assert_eq!(
        chunk_error(c),
        ChunkError::Misplaced {
            index: 0,
            field: "string_len"
        }
    );
    let mut c = list.clone();
    c[0].chunk.as_mut().unwrap().key_len = Some(3);
    assert_eq!(
        chunk_error(c),
        ChunkError::Misplaced {
            index: 0,
            field: "key_len"
        }
    );
    let mut s = split(
        &Chunker::new().target_bytes(4),
        &Record::new(0, "", Value::String(b("abcdefgh"))),
    );
    s[0].chunk.as_mut().unwrap().continues = true;
    assert!(matches!(
        chunk_error(s),
        ChunkError::Continuation { index: 0, .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any sequence of chunk records, however inconsistent, gets whole
    /// entries or a chunk error: never a panic, never another error.
    #[test]
    fn arbitrary_chunk_sequences_never_panic(
        records in prop::collection::vec(
            (
                prop_oneof![Just(0u32), Just(1)],
                bytes(6),
                prop::sample::select(vec![None, Some(0i64)]),
                prop::sample::select(vec![
                    Value::String(Bytes::new()),
                    Value::String(b("abc")),
                    Value::List(vec![]),
                    Value::List(vec![b("x")]),
                    Value::List(vec![b(""), b("yz")]),
                    Value::Set(vec![b("m")]),
                    Value::Hash(vec![(b("f"), b(""))]),
                    Value::Hash(vec![(b(""), b("v")), (b("f"), b("v"))]),
                    Value::SortedSet(vec![(b("m"), 1.0)]),
                    Value::SortedSet(vec![(b("m"), 2.0), (b("n"), 1.0)]),
                ]),
                prop::option::of((0u32..4, any::<[bool; 3]>(), prop::array::uniform3(prop::option::of(prop_oneof![0u64..8, Just(u64::MAX)])))),
            ),
            0..12,
        ),
    ) {
        let mut a = Assembler::new().prealloc_limit(1 << 16);
        for (db, key, expiry, value, chunk) in records {
            let mut r = Record::new(db, key, value).with_expiry(expiry);
            r.chunk = chunk.map(|(index, [last, continues, key_continues], [k, s, e])| {
                let mut c = Chunk::new(index, last);
                c.continues = continues;
                c.key_continues = key_continues;
                c.key_len = k;
                c.string_len = s;
                c.element_len = e;
                c
            });
            match a.push(r) {
                Ok(Some(whole)) => prop_assert!(whole.chunk.is_none()),
                Ok(None) | Err(Error::Chunk { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
        match a.finish() {
            Ok(()) | Err(Error::Chunk { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

// ------------------------------------------------------------ version 1

/// Frames a payload with a correct length and CRC.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn version_1_chunk_records_still_decode_and_assemble() {
    // Bytes exactly as format version 1 wrote a list entry chunked in
    // three: key "big" in every chunk; `Chunk` with index and last only.
    let v1_chunk = |index: u8, last: bool, item: &[u8]| {
        let mut chunk = Vec::new();
        if index != 0 {
            chunk.extend_from_slice(&[0x08, index]);
        }
        if last {
            chunk.extend_from_slice(&[0x10, 1]);
        }
        let mut p = vec![0x08, 4, 0x12, 3, b'b', b'i', b'g', 0x22, chunk.len() as u8];
        p.extend_from_slice(&chunk);
        p.extend_from_slice(&[0x4a, item.len() as u8 + 2, 0x0a, item.len() as u8]);
        p.extend_from_slice(item);
        frame(&p)
    };
    let frames = [
        v1_chunk(0, false, b"a"),
        v1_chunk(1, false, b""),
        v1_chunk(2, true, b"ccc"),
    ];
    let mut a = Assembler::new();
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let r = decode_record(f).unwrap();
        assert_eq!(r.key, b("big"));
        assert_eq!(r.chunk, Some(Chunk::new(i as u32, i == 2)));
        // The codec writes a version-1 chunk record byte for byte as
        // version 1 did.
        let mut again = Vec::new();
        encode_record(&r, &mut again).unwrap();
        assert_eq!(&again, f);
        out.extend(a.push(r).unwrap());
    }
    a.finish().unwrap();
    assert_eq!(
        out,
        vec![Record::new(
            4,
            "big",
            Value::List(vec![b("a"), b(""), b("ccc")])
        )]
    );
}

#[test]
fn a_version_1_stream_with_chunked_entries_still_loads() {
    let header = Header {
        format_version: 1,
        created_at_ms: 1_700_000_000_000,
    };
    let entries = [
        Record::new(0, "s", Value::String(binary(100, 3))).with_expiry(Some(5)),
        Record::new(1, "small", Value::Set(vec![b("x")])),
        Record::new(
            2,
            "h",
            Value::Hash((0..20u8).map(|i| (b([i]), b([i; 7]))).collect()),
        ),
    ];
    // Version 1's chunker: whole elements in runs, the key in every chunk.
    let v1_chunks = |r: &Record| -> Vec<Record> {
        let parts: Vec<Value> = match &r.value {
            Value::String(s) => s.chunks(30).map(|p| Value::String(b(p))).collect(),
            Value::Hash(v) => v.chunks(6).map(|p| Value::Hash(p.to_vec())).collect(),
            _ => return vec![r.clone()],
        };
        let n = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, value)| Record {
                value,
                chunk: Some(Chunk::new(i as u32, i + 1 == n)),
                ..r.clone()
            })
            .collect()
    };
    let mut w = StreamWriter::new(Vec::new(), header).unwrap();
    for e in &entries {
        for c in v1_chunks(e) {
            w.write_record(&c).unwrap();
        }
    }
    let (_, stream) = w.finish_into_inner().unwrap();
    let mut reader = StreamReader::new(&stream[..]).unwrap();
    assert_eq!(reader.header().format_version, 1);
    let mut a = Assembler::new();
    let mut out = Vec::new();
    for r in reader.by_ref() {
        out.extend(a.push(r.unwrap()).unwrap());
    }
    a.finish().unwrap();
    assert!(reader.footer().is_some());
    assert_eq!(out, entries);
}
