//! Encode and decode of 1,000,000 string records (16-byte keys, 100-byte
//! values): `cargo bench -p cairn-snapshot`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use cairn_snapshot::{
    Header, Limits, Record, StreamReader, StreamWriter, Value, decode_record, decode_record_shared,
    encode_record,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N: usize = 1_000_000;

fn records() -> Vec<Record> {
    (0..N)
        .map(|i| {
            let key = format!("key:{i:012}");
            debug_assert_eq!(key.len(), 16);
            let value = vec![b'a' + (i % 26) as u8; 100];
            Record::new(0, key, Value::String(Bytes::from(value)))
        })
        .collect()
}

/// Splits a buffer of back-to-back framed records.
fn frames(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize + 8;
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        Some(frame)
    })
}

fn codec(c: &mut Criterion) {
    let records = records();
    let mut encoded = Vec::new();
    for r in &records {
        encode_record(r, &mut encoded).unwrap();
    }
    let total = encoded.len();
    eprintln!(
        "{N} records, {total} encoded bytes ({} per record); MB/s = {total} / time",
        total / N
    );

    let mut group = c.benchmark_group("string_records_1M");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));

    let mut dst = Vec::with_capacity(total);
    group.bench_function("encode", |b| {
        b.iter(|| {
            dst.clear();
            for r in &records {
                encode_record(r, &mut dst).unwrap();
            }
            black_box(dst.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for frame in frames(&encoded) {
                let r = decode_record(frame).unwrap();
                n += r.key.len();
            }
            black_box(n)
        })
    });
    let shared = Bytes::from(encoded.clone());
    group.bench_function("decode_shared", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut pos = 0;
            for frame in frames(&shared) {
                let one = shared.slice(pos..pos + frame.len());
                pos += frame.len();
                n += decode_record_shared(&one, &Limits::DEFAULT)
                    .unwrap()
                    .key
                    .len();
            }
            black_box(n)
        })
    });

    let mut stream = Vec::with_capacity(total + 64);
    group.bench_function("stream_write", |b| {
        b.iter(|| {
            stream.clear();
            let mut w = StreamWriter::new(&mut stream, Header::new(0)).unwrap();
            for r in &records {
                w.write_record(r).unwrap();
            }
            black_box(w.finish().unwrap())
        })
    });
    group.bench_function("stream_read_verify", |b| {
        b.iter(|| {
            black_box(
                StreamReader::new(&stream[..])
                    .unwrap()
                    .verify_to_end()
                    .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
