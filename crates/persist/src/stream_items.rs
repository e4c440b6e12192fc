//! A stream as the items of a snapshot stream record, and back.
//!
//! The snapshot codec stores a stream as a run of opaque byte items that
//! the chunker splits like list items; their layout is this module's (and
//! docs/snapshot-format.md's). Every number is a LEB128 varint (signed ones
//! zigzag-encoded), every byte string a varint length and its bytes:
//!
//! - `M` (first item): last-id ms, seq; max-deleted-entry-id ms, seq;
//!   entries-added.
//! - `E` an entry: flags (bit 0: opens a block, bit 1: same field names
//!   as the previous entry, bit 2: deleted), ms, seq, then the field count
//!   and names unless bit 1, then the values. Blocks come back as they
//!   were saved, deleted entries included (as Redis' RDB keeps its
//!   listpacks), so block boundaries and trimming stay Redis'.
//! - `G` a consumer group: name, last-delivered-id ms, seq, entries-read
//!   (signed, -1 unknown). Its consumers and pending entries follow:
//! - `C` a consumer of the last group: name, seen-time (signed).
//! - `P` a pending entry of the last group: ms, seq, consumer name,
//!   delivery time (signed), delivery count.

use bytes::Bytes;
use cairn_keyspace::{Consumer, Group, Nack, Stream, StreamId};

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_signed(buf: &mut Vec<u8>, v: i64) {
    put_varint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn put_id(buf: &mut Vec<u8>, id: StreamId) {
    put_varint(buf, id.ms);
    put_varint(buf, id.seq);
}

/// Hands each item of `s` to `f`, in the order [`StreamDecoder`] reads
/// them, built one at a time in one reused buffer: a snapshot of a stream
/// of 10^7 entries never holds its items all at once. Stops at the first
/// error.
pub(crate) fn encode_each<E>(
    s: &Stream,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = Vec::with_capacity(256);
    buf.push(b'M');
    put_id(&mut buf, s.last_id);
    put_id(&mut buf, s.max_deleted);
    put_varint(&mut buf, s.entries_added);
    f(&buf)?;
    let mut prev: Vec<Vec<u8>> = Vec::new();
    for block in s.blocks() {
        let mut opens = true;
        for (deleted, e) in block {
            let same = prev.len() == e.fields.len()
                && prev.iter().zip(&e.fields).all(|(p, (f, _))| p[..] == **f);
            buf.clear();
            buf.push(b'E');
            buf.push(u8::from(opens) | (u8::from(same) << 1) | (u8::from(deleted) << 2));
            put_id(&mut buf, e.id);
            if !same {
                put_varint(&mut buf, e.fields.len() as u64);
                for (f, _) in &e.fields {
                    put_bytes(&mut buf, f);
                }
                prev = e.fields.iter().map(|(f, _)| f.to_vec()).collect();
            }
            for (_, v) in &e.fields {
                put_bytes(&mut buf, v);
            }
            f(&buf)?;
            opens = false;
        }
    }
    for (name, g) in s.groups() {
        buf.clear();
        buf.push(b'G');
        put_bytes(&mut buf, name);
        put_id(&mut buf, g.last_id);
        put_signed(&mut buf, g.entries_read);
        f(&buf)?;
        for (cname, c) in &g.consumers {
            buf.clear();
            buf.push(b'C');
            put_bytes(&mut buf, cname);
            put_signed(&mut buf, c.seen_time);
            f(&buf)?;
        }
        for (id, n) in &g.pel {
            buf.clear();
            buf.push(b'P');
            put_id(&mut buf, *id);
            put_bytes(&mut buf, &n.consumer);
            put_signed(&mut buf, n.delivery_time);
            put_varint(&mut buf, n.delivery_count);
            f(&buf)?;
        }
    }
    Ok(())
}

/// The items of `s`, all at once (tests).
#[cfg(test)]
pub(crate) fn encode(s: &Stream) -> Vec<Bytes> {
    let mut items = Vec::new();
    let _ = encode_each(s, |item| {
        items.push(Bytes::copy_from_slice(item));
        Ok::<(), ()>(())
    });
    items
}

/// Reads items back; `None` when they are malformed (a snapshot's records
/// are checksummed, so only a writer bug gets here).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift >= 64 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
    }

    fn signed(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.varint()?, self.varint()?))
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Rebuilds a stream from its items as they arrive, chunk by chunk: the
/// entries go straight into the stream's blocks, so a restore holds the
/// stream once, never its items and the stream together.
pub(crate) struct StreamDecoder {
    s: Stream,
    /// The meta item has been read.
    meta: Option<(StreamId, StreamId, u64)>,
    /// Field names of the last entry that listed them.
    names: Vec<Bytes>,
    last_entry: Option<StreamId>,
    group: Option<(Bytes, Group)>,
}

impl StreamDecoder {
    pub(crate) fn new() -> StreamDecoder {
        StreamDecoder {
            s: Stream::new(),
            meta: None,
            names: Vec::new(),
            last_entry: None,
            group: None,
        }
    }

    /// Takes the next item; `None` if it is malformed or out of place (a
    /// snapshot's records are checksummed, so only a writer bug gets here).
    pub(crate) fn push(&mut self, item: &[u8]) -> Option<()> {
        let mut r = Reader { buf: item, pos: 0 };
        let tag = r.byte()?;
        if self.meta.is_none() {
            if tag != b'M' {
                return None;
            }
            let last_id = r.id()?;
            let max_deleted = r.id()?;
            let entries_added = r.varint()?;
            self.meta = Some((last_id, max_deleted, entries_added));
            return r.done().then_some(());
        }
        match tag {
            b'E' => {
                if self.group.is_some() {
                    return None;
                }
                let flags = r.byte()?;
                let id = r.id()?;
                if self.last_entry.is_some_and(|l| id <= l) {
                    return None;
                }
                self.last_entry = Some(id);
                if flags & 2 == 0 {
                    let n = usize::try_from(r.varint()?).ok()?;
                    self.names.clear();
                    for _ in 0..n {
                        self.names.push(Bytes::copy_from_slice(r.bytes()?));
                    }
                }
                let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(self.names.len());
                for name in &self.names {
                    fields.push((&name[..], r.bytes()?));
                }
                if !r.done() {
                    return None;
                }
                self.s
                    .load_entry(id, &fields, flags & 1 != 0, flags & 4 != 0);
            }
            b'G' => {
                if let Some((name, g)) = self.group.take() {
                    self.s.load_group(name, g);
                }
                let name = Bytes::copy_from_slice(r.bytes()?);
                let g = Group::new(r.id()?, r.signed()?);
                self.group = Some((name, g));
            }
            b'C' => {
                let (_, g) = self.group.as_mut()?;
                let name = Bytes::copy_from_slice(r.bytes()?);
                let seen_time = r.signed()?;
                g.consumers.insert(
                    name,
                    Consumer {
                        seen_time,
                        pel: Default::default(),
                    },
                );
            }
            b'P' => {
                let (_, g) = self.group.as_mut()?;
                let id = r.id()?;
                let consumer = r.bytes()?;
                let delivery_time = r.signed()?;
                let delivery_count = r.varint()?;
                // The consumer's own PEL is rebuilt from the group's.
                let (cname, c) = g.consumers.get_key_value_mut_compat(consumer)?;
                c.pel.insert(id);
                g.pel.insert(
                    id,
                    Nack {
                        consumer: cname,
                        delivery_time,
                        delivery_count,
                    },
                );
            }
            _ => return None,
        }
        r.done().then_some(())
    }

    /// The stream; `None` when no meta item came.
    pub(crate) fn finish(mut self) -> Option<Stream> {
        let (last_id, max_deleted, entries_added) = self.meta?;
        if let Some((name, g)) = self.group.take() {
            self.s.load_group(name, g);
        }
        self.s.load_meta(last_id, max_deleted, entries_added);
        Some(self.s)
    }
}

/// Rebuilds a stream from all its items; `None` if they are malformed.
#[cfg(test)]
pub(crate) fn decode(items: &[Bytes]) -> Option<Stream> {
    let mut d = StreamDecoder::new();
    for item in items {
        d.push(item)?;
    }
    d.finish()
}

/// `BTreeMap::get_key_value` with mutable access to the value, sharing the
/// stored key (so a NACK names its consumer without a copy).
trait KeyValueMut {
    fn get_key_value_mut_compat(&mut self, k: &[u8]) -> Option<(Bytes, &mut Consumer)>;
}

impl KeyValueMut for std::collections::BTreeMap<Bytes, Consumer> {
    fn get_key_value_mut_compat(&mut self, k: &[u8]) -> Option<(Bytes, &mut Consumer)> {
        let key = self.get_key_value(k)?.0.clone();
        let c = self.get_mut(k)?;
        Some((key, c))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cairn_keyspace::NodeLimits;

    #[test]
    fn streams_round_trip_with_blocks_groups_and_pels() {
        let mut s = Stream::new();
        let lim = NodeLimits {
            max_bytes: 0,
            max_entries: 7,
        };
        for i in 1..=40u64 {
            let v = i.to_string();
            let fields: Vec<(&[u8], &[u8])> = if i % 9 == 0 {
                vec![(b"odd", v.as_bytes())]
            } else {
                vec![(b"a", v.as_bytes()), (b"b", b"x")]
            };
            s.add(Some((StreamId::new(i, 1), true)), &fields, 0, lim)
                .unwrap();
        }
        s.delete(StreamId::new(3, 1));
        s.delete(StreamId::new(20, 1));
        let mut g = Group::new(StreamId::new(10, 1), 9);
        g.create_consumer(b"alice", 111);
        g.create_consumer(b"bob", 222);
        g.deliver(StreamId::new(4, 1), &Bytes::from_static(b"alice"), 5);
        g.deliver(StreamId::new(5, 1), &Bytes::from_static(b"bob"), 6);
        s.create_group(b"g1", g);
        s.create_group(b"empty", Group::new(StreamId::MIN, -1));
        let items = encode(&s);
        let back = decode(&items).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.block_count(), s.block_count());
        assert!(decode(&items[1..]).is_none());
    }
}
