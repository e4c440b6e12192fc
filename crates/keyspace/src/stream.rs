//! The stream value: entries with `<ms>-<seq>` IDs in packed blocks, the
//! stream's metadata, and its consumer groups.
//!
//! Layout, as Redis' rax of listpacks: entries live in [`Block`]s keyed by
//! the ID of the entry that opened the block (its *master* ID) in a
//! B-tree. A block is one byte buffer: the master entry's field names,
//! then each entry as a flags byte, its ID as deltas from the master ID,
//! its field names only when they differ from the master's, and its
//! values; lengths and deltas are LEB128 varints. So an entry costs no
//! allocation of its own, and an entry with the master's fields stores
//! only its values (a typical event of 3 small fields takes about 30
//! bytes). Deleting marks the flags byte; a block whose entries are all
//! deleted is dropped, as Redis drops an empty listpack.
//!
//! A block closes as Redis closes a listpack: at `stream-node-max-entries`
//! entries (deleted ones included) or when the listpack Redis would have
//! built reaches `stream-node-max-bytes`. Each block keeps the size of
//! that listpack ([`lp_size`]), so the block boundaries, and with them
//! the visible results of approximate (`~`) trimming and
//! `XINFO STREAM`'s `radix-tree-keys`, are Redis' own.
//!
//! Blocks and groups sit behind `Arc`: a write under a point-in-time view
//! copies the stream's block index (one pointer per block) and the one
//! block or group it changes, never the entries of the others.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// A stream entry ID, `<ms>-<seq>`, ordered as numbers (ms first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID, `18446744073709551615-18446744073709551615`.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An ID from its parts.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The next ID, or `None` past the largest (Redis' `streamIncrID`).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, or `None` before `0-0` (Redis' `streamDecrID`).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// The ID as a reply string. Every XADD replies with one, and the
    /// formatting machinery of `to_string` cost 4% of XADD's CPU.
    pub fn to_bytes(self) -> Bytes {
        let mut out = Vec::with_capacity(41);
        push_decimal(&mut out, self.ms);
        out.push(b'-');
        push_decimal(&mut out, self.seq);
        Bytes::from(out)
    }
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    for d in digits.iter_mut() {
        *d = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend(digits.iter().take(n).rev());
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

// ---------------------------------------------------------------------------
// Varints

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint at `*pos`; a truncated buffer reads as 0 (blocks are
/// only ever built by this module, so that cannot happen).
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn get_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = usize::try_from(get_varint(buf, pos)).unwrap_or(usize::MAX);
    let start = (*pos).min(buf.len());
    let end = start.saturating_add(len).min(buf.len());
    *pos = end;
    buf.get(start..end).unwrap_or_default()
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

// ---------------------------------------------------------------------------
// Redis' listpack sizes, for block boundaries

/// Bytes a listpack element of `enc` encoded bytes takes with its
/// back-length.
fn lp_with_backlen(enc: usize) -> usize {
    enc + match enc {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Size of an integer element in a listpack.
fn lp_int(v: i64) -> usize {
    lp_with_backlen(match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    })
}

/// Size of a string element in a listpack (integers stored as such).
pub(crate) fn lp_size(s: &[u8]) -> usize {
    if let Some(v) = crate::num::string2ll(s) {
        return lp_int(v);
    }
    let head = match s.len() {
        0..=63 => 1,
        64..=4095 => 2,
        _ => 5,
    };
    lp_with_backlen(head + s.len())
}

/// The listpack header and terminator.
const LP_OVERHEAD: usize = 7;

// ---------------------------------------------------------------------------
// Blocks

/// The largest capacity a new block takes from the previous one's size.
const BLOCK_HINT_MAX: usize = 64 * 1024;

const FLAG_DELETED: u8 = 1;
const FLAG_SAMEFIELDS: u8 = 2;

/// A run of consecutive entries packed in one buffer (Redis' listpack node).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Block {
    /// The ID of the entry that opened the block (its key in the index).
    master: StreamId,
    /// The last entry's ID, deleted or not.
    last: StreamId,
    /// Where the last entry starts in `buf`.
    last_at: usize,
    /// Master fields (`nfields`, then each field), then the entries.
    buf: Vec<u8>,
    /// Where the entries start in `buf`.
    entries_at: u32,
    /// Number of master fields.
    master_fields: u32,
    live: u32,
    deleted: u32,
    /// Redis' listpack size for these entries, without the two counters.
    lp_fixed: u32,
}

/// An entry's header as scanned in a block.
#[derive(Clone, Copy, Debug)]
struct Head {
    /// Where the entry (its flags byte) starts.
    at: usize,
    deleted: bool,
    /// Whether it has the master entry's fields.
    same: bool,
    id: StreamId,
    /// Where its field count or values start.
    body: usize,
}

/// One entry as read from a block: its ID and field-value pairs borrowed
/// from the block.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryRef<'a> {
    /// The entry ID.
    pub id: StreamId,
    /// Field-value pairs in the order they were added.
    pub fields: Vec<(&'a [u8], &'a [u8])>,
}

impl EntryRef<'_> {
    /// The field-value pairs copied out of the block: one buffer for all
    /// of them, each pair a slice of it, so a reply costs two allocations
    /// per entry rather than two per pair.
    pub fn to_owned_fields(&self) -> Vec<(Bytes, Bytes)> {
        let total: usize = self.fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        let mut buf = Vec::with_capacity(total);
        for (f, v) in &self.fields {
            buf.extend_from_slice(f);
            buf.extend_from_slice(v);
        }
        let buf = Bytes::from(buf);
        let mut pos = 0;
        self.fields
            .iter()
            .map(|(f, v)| {
                let name = buf.slice(pos..pos + f.len());
                pos += f.len();
                let value = buf.slice(pos..pos + v.len());
                pos += v.len();
                (name, value)
            })
            .collect()
    }
}

impl Block {
    /// A block opened by entry `id`, its buffer sized for `capacity`
    /// bytes (the previous block's size: blocks of one stream tend to be
    /// alike, and growing by doubling would leave a third unused).
    fn new(id: StreamId, fields: &[(&[u8], &[u8])], capacity: usize) -> Block {
        let size: usize = fields.iter().map(|(f, v)| f.len() + v.len() + 4).sum();
        // Bounded: after a block of one huge entry, the next one must not
        // reserve as much.
        let mut buf = Vec::with_capacity(capacity.min(BLOCK_HINT_MAX).max(size + 16));
        put_varint(&mut buf, fields.len() as u64);
        let mut lp = LP_OVERHEAD + lp_int(fields.len() as i64) + lp_int(0);
        for (f, _) in fields {
            put_bytes(&mut buf, f);
            lp += lp_size(f);
        }
        let mut b = Block {
            master: id,
            last: id,
            last_at: 0,
            entries_at: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            buf,
            master_fields: u32::try_from(fields.len()).unwrap_or(u32::MAX),
            live: 0,
            deleted: 0,
            lp_fixed: u32::try_from(lp).unwrap_or(u32::MAX),
        };
        b.push(id, fields);
        b
    }

    /// Redis' listpack size of this block.
    fn lp_bytes(&self) -> usize {
        self.lp_fixed as usize + lp_int(i64::from(self.live)) + lp_int(i64::from(self.deleted))
    }

    fn master_field_names(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        let n = get_varint(&self.buf, &mut pos);
        (0..n).map(move |_| get_bytes(&self.buf, &mut pos))
    }

    fn same_fields(&self, fields: &[(&[u8], &[u8])]) -> bool {
        fields.len() == self.master_fields as usize
            && self
                .master_field_names()
                .zip(fields)
                .all(|(m, (f, _))| m == *f)
    }

    fn push(&mut self, id: StreamId, fields: &[(&[u8], &[u8])]) {
        let same = self.same_fields(fields);
        let ms_delta = id.ms.wrapping_sub(self.master.ms) as i64;
        let seq_delta = id.seq.wrapping_sub(self.master.seq) as i64;
        self.last_at = self.buf.len();
        self.buf.push(if same { FLAG_SAMEFIELDS } else { 0 });
        put_varint(&mut self.buf, zigzag(ms_delta));
        put_varint(&mut self.buf, zigzag(seq_delta));
        let n = fields.len() as i64;
        let mut lp = lp_int(i64::from(same) * 2) + lp_int(ms_delta) + lp_int(seq_delta);
        let mut lp_count = n + 3;
        if !same {
            put_varint(&mut self.buf, fields.len() as u64);
            lp += lp_int(n);
            lp_count += n + 1;
            for (f, _) in fields {
                put_bytes(&mut self.buf, f);
                lp += lp_size(f);
            }
        }
        for (_, v) in fields {
            put_bytes(&mut self.buf, v);
            lp += lp_size(v);
        }
        lp += lp_int(lp_count);
        self.lp_fixed = self
            .lp_fixed
            .saturating_add(u32::try_from(lp).unwrap_or(u32::MAX));
        self.live += 1;
        self.last = id;
    }

    /// The header of the entry at `at`, without reading its fields.
    fn head(&self, at: usize) -> Option<Head> {
        let buf = &self.buf;
        let flags = *buf.get(at)?;
        let mut p = at + 1;
        let ms = self
            .master
            .ms
            .wrapping_add(unzigzag(get_varint(buf, &mut p)) as u64);
        let seq = self
            .master
            .seq
            .wrapping_add(unzigzag(get_varint(buf, &mut p)) as u64);
        Some(Head {
            at,
            deleted: flags & FLAG_DELETED != 0,
            same: flags & FLAG_SAMEFIELDS != 0,
            id: StreamId::new(ms, seq),
            body: p,
        })
    }

    /// Where the entry after `h` starts: its fields skipped, not read.
    fn next_of(&self, h: &Head) -> usize {
        let buf = &self.buf;
        let mut p = h.body;
        let skips = if h.same {
            u64::from(self.master_fields)
        } else {
            get_varint(buf, &mut p).saturating_mul(2)
        };
        for _ in 0..skips {
            let len = usize::try_from(get_varint(buf, &mut p)).unwrap_or(usize::MAX);
            p = p.saturating_add(len);
            if p >= buf.len() {
                return buf.len();
            }
        }
        p
    }

    /// Every entry's header, deleted ones included, in ID order. Scanning
    /// headers allocates nothing: a read decodes only the entries it
    /// returns (Redis' listpack iterator skips entries the same way).
    fn heads(&self) -> impl Iterator<Item = Head> + '_ {
        let mut pos = self.entries_at as usize;
        std::iter::from_fn(move || {
            let h = self.head(pos)?;
            pos = self.next_of(&h);
            Some(h)
        })
    }

    /// The live entries' headers, in ID order.
    fn live_heads(&self) -> impl Iterator<Item = Head> + '_ {
        self.heads().filter(|h| !h.deleted)
    }

    /// The entry whose header is `h`, its fields borrowed from the block.
    fn entry(&self, h: &Head) -> EntryRef<'_> {
        let buf = &self.buf;
        let (n, mut names, mut values) = if h.same {
            let mut names = 0;
            let n = get_varint(buf, &mut names);
            (n, names, h.body)
        } else {
            let mut names = h.body;
            let n = get_varint(buf, &mut names);
            let mut values = names;
            for _ in 0..n {
                get_bytes(buf, &mut values);
            }
            (n, names, values)
        };
        let mut fields = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(buf.len()));
        for _ in 0..n {
            let name = get_bytes(buf, &mut names);
            fields.push((name, get_bytes(buf, &mut values)));
        }
        EntryRef { id: h.id, fields }
    }

    /// Every entry with its flags offset, deleted ones included.
    fn all(&self) -> impl Iterator<Item = (usize, bool, EntryRef<'_>)> {
        self.heads().map(|h| (h.at, h.deleted, self.entry(&h)))
    }

    /// The last live entry's ID.
    fn last_live(&self) -> Option<StreamId> {
        if self.live == 0 {
            return None;
        }
        if self.head(self.last_at).is_some_and(|h| !h.deleted) {
            return Some(self.last);
        }
        self.live_heads().last().map(|h| h.id)
    }

    /// Gives the block's spare capacity back once it is closed (a buffer
    /// grown by doubling is a third empty on average).
    fn shrink(&mut self) {
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 16 {
            self.buf.shrink_to_fit();
        }
    }

    fn mark_deleted(&mut self, at: usize) {
        if let Some(f) = self.buf.get_mut(at) {
            *f |= FLAG_DELETED;
        }
        self.live = self.live.saturating_sub(1);
        self.deleted += 1;
    }

    /// Bytes this block holds on the heap.
    fn heap_bytes(&self) -> usize {
        self.buf.capacity() + std::mem::size_of::<Block>()
    }
}

// ---------------------------------------------------------------------------
// Consumer groups

/// A pending (delivered, not acknowledged) entry of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// The consumer it was delivered to.
    pub consumer: Bytes,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms of its last interaction (Redis 7.0's `seen-time`).
    pub seen_time: i64,
    /// The IDs pending for it.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// The last ID delivered to a consumer of the group.
    pub last_id: StreamId,
    /// Entries the group has read (its logical position), -1 when unknown.
    pub entries_read: i64,
    /// Every pending entry of the group, by ID.
    pub pel: BTreeMap<StreamId, Nack>,
    /// The consumers, by name.
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// `entries_read` when the group's position is unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

impl Group {
    /// A group positioned at `last_id`.
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Creates consumer `name` seen at `now`; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            Bytes::copy_from_slice(name),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes `id` from the group's PEL and its consumer's; whether it
    /// was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Deletes consumer `name`; its pending count, `None` if missing.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Makes `id` pending for `consumer` (which must exist): a new NACK,
    /// or one taken from another consumer, delivered at `now` once.
    pub fn deliver(&mut self, id: StreamId, consumer: &Bytes, now: i64) {
        let old = self.pel.insert(
            id,
            Nack {
                consumer: consumer.clone(),
                delivery_time: now,
                delivery_count: 1,
            },
        );
        if let Some(old) = old
            && old.consumer != *consumer
            && let Some(c) = self.consumers.get_mut(&old.consumer)
        {
            c.pel.remove(&id);
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Moves pending `id` to `consumer` (which must exist).
    pub fn transfer(&mut self, id: StreamId, consumer: &Bytes) {
        let Some(n) = self.pel.get_mut(&id) else {
            return;
        };
        if n.consumer == *consumer {
            return;
        }
        let old = std::mem::replace(&mut n.consumer, consumer.clone());
        if let Some(c) = self.consumers.get_mut(&old) {
            c.pel.remove(&id);
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

// ---------------------------------------------------------------------------
// The stream

/// How a trim picks what to remove (XADD/XTRIM's MAXLEN and MINID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Remove entries with IDs below this one.
    MinId(StreamId),
}

/// Block size limits (`stream-node-max-bytes`, `stream-node-max-entries`;
/// 0 means no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    /// `stream-node-max-bytes`.
    pub max_bytes: usize,
    /// `stream-node-max-entries`.
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> NodeLimits {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// A stream: its entries, metadata and consumer groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    blocks: BTreeMap<StreamId, Arc<Block>>,
    length: u64,
    /// The last ID generated (or set by XSETID).
    pub last_id: StreamId,
    /// The first live entry's ID, `0-0` when empty.
    pub first_id: StreamId,
    /// The largest ID ever deleted by XDEL.
    pub max_deleted: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    groups: BTreeMap<Bytes, Arc<Group>>,
}

/// The largest total of field and value bytes one entry may have (Redis'
/// `STREAM_LISTPACK_MAX_SIZE`).
pub const MAX_ENTRY_BYTES: usize = 1 << 30;

/// Why an append failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not above the stream's last ID.
    NotGreater,
    /// The entry is too large.
    TooLarge,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Number of live entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether it holds no entries (a stream key exists even then).
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of blocks (XINFO's `radix-tree-keys`).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Appends an entry. `id`: `None` for `*`, `Some((id, true))` for an
    /// explicit ID, `Some((id, false))` for `<ms>-*`. Returns the ID used.
    pub fn add(
        &mut self,
        id: Option<(StreamId, bool)>,
        fields: &[(&[u8], &[u8])],
        now_ms: i64,
        limits: NodeLimits,
    ) -> Result<StreamId, AppendError> {
        let id = self.resolve_id(id, now_ms)?;
        let total: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        if total > MAX_ENTRY_BYTES {
            return Err(AppendError::TooLarge);
        }
        self.append(id, fields, limits, total);
        self.entries_added += 1;
        Ok(id)
    }

    /// The ID an append would use, or why it cannot (Redis'
    /// `streamAppendItem` checks, without appending).
    pub fn resolve_id(
        &self,
        id: Option<(StreamId, bool)>,
        now_ms: i64,
    ) -> Result<StreamId, AppendError> {
        let id = match id {
            Some((id, true)) => id,
            Some((id, false)) => {
                if self.last_id.ms == id.ms {
                    if self.last_id.seq == u64::MAX {
                        // Redis 7.0.15 reports this one as too large.
                        return Err(AppendError::TooLarge);
                    }
                    StreamId::new(id.ms, self.last_id.seq + 1)
                } else {
                    id
                }
            }
            None => {
                let ms = u64::try_from(now_ms).unwrap_or(0);
                if ms > self.last_id.ms {
                    StreamId::new(ms, 0)
                } else {
                    // The clock stepped back or stands still: keep
                    // counting from the last ID, as Redis does.
                    self.last_id.incr().unwrap_or(StreamId::MIN)
                }
            }
        };
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        Ok(id)
    }

    /// Appends an entry with an ID above every other (checked by the
    /// caller), opening a block when the last one is full.
    fn append(
        &mut self,
        id: StreamId,
        fields: &[(&[u8], &[u8])],
        limits: NodeLimits,
        total: usize,
    ) {
        let room = self.blocks.last_key_value().is_some_and(|(_, b)| {
            let bytes_ok = limits.max_bytes == 0 || b.lp_bytes() + total < limits.max_bytes;
            let entries_ok =
                limits.max_entries == 0 || ((b.live + b.deleted) as usize) < limits.max_entries;
            bytes_ok && entries_ok
        });
        if room {
            if let Some(mut e) = self.blocks.last_entry() {
                Arc::make_mut(e.get_mut()).push(id, fields);
            }
        } else {
            let capacity = self.close_last_block();
            self.blocks
                .insert(id, Arc::new(Block::new(id, fields, capacity)));
        }
        self.length += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// Shrinks the last block as no entry will be added to it any more
    /// (unless a view shares it: copying it for that is not worth it);
    /// its size, the capacity to give the next one.
    fn close_last_block(&mut self) -> usize {
        match self.blocks.last_entry() {
            Some(mut e) => {
                let len = e.get().buf.len();
                if let Some(b) = Arc::get_mut(e.get_mut()) {
                    b.shrink();
                }
                len
            }
            None => 0,
        }
    }

    /// Appends a restored entry (IDs ascending), starting a new block when
    /// `new_block`, marked deleted when `deleted`: blocks come back as they
    /// were saved, tombstones included, so their boundaries stay Redis'.
    pub fn load_entry(
        &mut self,
        id: StreamId,
        fields: &[(&[u8], &[u8])],
        new_block: bool,
        deleted: bool,
    ) {
        if new_block || self.blocks.is_empty() {
            let capacity = self.close_last_block();
            self.blocks
                .insert(id, Arc::new(Block::new(id, fields, capacity)));
        } else if let Some(mut e) = self.blocks.last_entry() {
            Arc::make_mut(e.get_mut()).push(id, fields);
        }
        if deleted {
            if let Some(mut e) = self.blocks.last_entry() {
                let b = Arc::make_mut(e.get_mut());
                let at = b.last_at;
                b.mark_deleted(at);
            }
        } else {
            self.length += 1;
        }
    }

    /// Restores the metadata after [`Stream::load_entry`] calls.
    pub fn load_meta(&mut self, last_id: StreamId, max_deleted: StreamId, entries_added: u64) {
        self.last_id = last_id;
        self.max_deleted = max_deleted;
        self.entries_added = entries_added;
        self.first_id = self.first_live().unwrap_or(StreamId::MIN);
        self.close_last_block();
    }

    /// The live entries from `start` to `end` (inclusive), forward or in
    /// reverse, handed to `f` until it returns false.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(EntryRef<'_>) -> bool,
    ) {
        if start > end {
            return;
        }
        // The block holding `start` is keyed at or below it.
        let from = self
            .blocks
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let blocks = self.blocks.range(from..=end);
        if rev {
            for (_, b) in blocks.rev() {
                if b.live == 0 || b.master > end {
                    continue;
                }
                // Headers only (entries are packed forward): the entries
                // in range are decoded as they are handed out.
                let mut live: Vec<Head> = b.live_heads().take_while(|h| h.id <= end).collect();
                while let Some(h) = live.pop() {
                    if h.id < start {
                        return;
                    }
                    if !f(b.entry(&h)) {
                        return;
                    }
                }
            }
        } else {
            for (_, b) in blocks {
                if b.last < start {
                    continue;
                }
                for h in b.live_heads() {
                    if h.id < start {
                        continue;
                    }
                    if h.id > end {
                        return;
                    }
                    if !f(b.entry(&h)) {
                        return;
                    }
                }
            }
        }
    }

    /// The live entries from `start` on, collected (at most `count`, 0: all).
    pub fn collect_range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<(StreamId, Vec<(Bytes, Bytes)>)> {
        let mut out = Vec::new();
        self.range(start, end, rev, |e| {
            out.push((e.id, e.to_owned_fields()));
            count == 0 || out.len() < count
        });
        out
    }

    /// The live entry `id`'s block and header.
    fn find(&self, id: StreamId) -> Option<(StreamId, &Block, Head)> {
        let (k, b) = self.blocks.range(..=id).next_back()?;
        if b.last < id {
            return None;
        }
        let h = b.heads().take_while(|h| h.id <= id).find(|h| h.id == id)?;
        (!h.deleted).then_some((*k, &**b, h))
    }

    /// Whether a live entry has ID `id`.
    pub fn contains(&self, id: StreamId) -> bool {
        self.find(id).is_some()
    }

    /// The first live entry's ID.
    pub fn first_live(&self) -> Option<StreamId> {
        self.blocks
            .values()
            .find_map(|b| b.live_heads().next().map(|h| h.id))
    }

    /// The last live entry's ID (Redis' `streamLastValidID`: `0-0` when
    /// empty).
    pub fn last_live(&self) -> StreamId {
        self.blocks
            .values()
            .rev()
            .find_map(|b| b.last_live())
            .unwrap_or(StreamId::MIN)
    }

    /// Deletes entry `id`; whether it existed. Updates length, first ID
    /// and the max deleted ID as XDEL does.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((key, block, h)) = self.find(id) else {
            return false;
        };
        let at = h.at;
        if block.live == 1 {
            self.blocks.remove(&key);
        } else if let Some(b) = self.blocks.get_mut(&key) {
            Arc::make_mut(b).mark_deleted(at);
        }
        self.length -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.first_live().unwrap_or(StreamId::MIN);
        }
        true
    }

    /// Trims as Redis' `streamTrim`: whole blocks first; with `approx`,
    /// only whole blocks; `limit` (0: none) bounds the entries removed.
    /// Returns the number removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how
                && self.length <= max
            {
                break;
            }
            let Some((&key, block)) = self.blocks.first_key_value() else {
                break;
            };
            let entries = u64::from(block.live);
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => block.last < min,
            };
            if remove {
                self.blocks.remove(&key);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let Some(b) = self.blocks.get_mut(&key) else {
                break;
            };
            let b = Arc::make_mut(b);
            let mut marks = Vec::new();
            let mut length = self.length;
            for h in b.heads() {
                let stop = match how {
                    Trim::MaxLen(max) => length <= max,
                    Trim::MinId(min) => h.id >= min,
                };
                if stop {
                    break;
                }
                if !h.deleted {
                    marks.push(h.at);
                    length -= 1;
                }
            }
            for at in &marks {
                b.mark_deleted(*at);
            }
            deleted += marks.len() as u64;
            self.length = length;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else {
            self.first_id = self.first_live().unwrap_or(StreamId::MIN);
        }
        deleted
    }

    /// Whether an XDEL tombstone may lie between `start` and `end`
    /// (Redis' `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() || self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The logical position of `id` counted from the first entry ever
    /// added, when it can be known (Redis'
    /// `streamEstimateDistanceFromFirstEverEntry`).
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        let added = i64::try_from(self.entries_added).unwrap_or(i64::MAX);
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return added,
            std::cmp::Ordering::Greater => return INVALID_ENTRIES_READ,
            std::cmp::Ordering::Less => {}
        }
        let len = i64::try_from(self.length).unwrap_or(i64::MAX);
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return added - len,
                std::cmp::Ordering::Equal => return added - len + 1,
                std::cmp::Ordering::Greater => {}
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (XINFO), `None` when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        let added = i64::try_from(self.entries_added).unwrap_or(i64::MAX);
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some(added - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| added - read)
    }

    /// Advances a group past `id` as a read delivering it does.
    pub fn group_read(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(id, StreamId::MAX) {
            g.entries_read += 1;
        } else if self.entries_added != 0 {
            g.entries_read = self.estimate_distance(id);
        }
        g.last_id = id;
    }

    /// The groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = (&Bytes, &Group)> {
        self.groups.iter().map(|(k, g)| (k, &**g))
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Group `name`.
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name).map(|g| &**g)
    }

    /// Group `name` for writing (copies it only if a view shares it).
    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        self.groups.get_mut(name).map(Arc::make_mut)
    }

    /// Adds a group; false if one of that name exists.
    pub fn create_group(&mut self, name: &[u8], group: Group) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups
            .insert(Bytes::copy_from_slice(name), Arc::new(group));
        true
    }

    /// Removes a group; whether it existed.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// Both the stream's entries (read) and one of its groups (write), for
    /// reads that deliver to a group.
    pub fn split_group(&mut self, name: &[u8]) -> Option<(StreamView<'_>, &mut Group)> {
        let g = self.groups.get_mut(name)?;
        let view = StreamView {
            blocks: &self.blocks,
            length: self.length,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted: self.max_deleted,
            entries_added: self.entries_added,
        };
        Some((view, Arc::make_mut(g)))
    }

    /// Bytes of heap the stream holds (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        let blocks: usize = self.blocks.values().map(|b| b.heap_bytes() + 48).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(n, g)| {
                n.len()
                    + 64
                    + g.pel.len() * 64
                    + g.consumers
                        .iter()
                        .map(|(c, x)| c.len() + 64 + x.pel.len() * 24)
                        .sum::<usize>()
            })
            .sum();
        std::mem::size_of::<Stream>() + blocks + groups
    }

    /// The blocks, each as its entries with their deleted flag, for
    /// saving: block boundaries and tombstones survive a restore.
    pub fn blocks(&self) -> impl Iterator<Item = impl Iterator<Item = (bool, EntryRef<'_>)>> {
        self.blocks
            .values()
            .map(|b| b.all().map(|(_, deleted, e)| (deleted, e)))
    }
}

/// The entries and metadata of a stream while one of its groups is
/// borrowed for writing.
pub struct StreamView<'a> {
    blocks: &'a BTreeMap<StreamId, Arc<Block>>,
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
}

impl StreamView<'_> {
    fn as_stream_parts(&self) -> Stream {
        // Only the metadata: the estimate functions read nothing else.
        Stream {
            blocks: BTreeMap::new(),
            length: self.length,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted: self.max_deleted,
            entries_added: self.entries_added,
            groups: BTreeMap::new(),
        }
    }

    /// Delivers the live entries from `start` on (at most `count`, 0:
    /// all) to `consumer` of `g` at `now` (no PEL entry when `noack`),
    /// advancing the group; the entries read, for the reply.
    pub fn deliver(
        &self,
        g: &mut Group,
        start: StreamId,
        count: usize,
        consumer: &Bytes,
        noack: bool,
        now: i64,
    ) -> Vec<(StreamId, Vec<(Bytes, Bytes)>)> {
        let meta = self.as_stream_parts();
        let mut out = Vec::new();
        let from = self
            .blocks
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        'outer: for (_, b) in self.blocks.range(from..) {
            if b.last < start {
                continue;
            }
            for h in b.live_heads() {
                if h.id < start {
                    continue;
                }
                meta.group_read(g, h.id);
                if !noack {
                    g.deliver(h.id, consumer, now);
                }
                out.push((h.id, b.entry(&h).to_owned_fields()));
                if count != 0 && out.len() >= count {
                    break 'outer;
                }
            }
        }
        out
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<Vec<(Bytes, Bytes)>> {
        let (_, b) = self.blocks.range(..=id).next_back()?;
        if b.last < id {
            return None;
        }
        let h = b.heads().take_while(|h| h.id <= id).find(|h| h.id == id)?;
        (!h.deleted).then(|| b.entry(&h).to_owned_fields())
    }
}

impl Stream {
    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<Vec<(Bytes, Bytes)>> {
        self.find(id).map(|(_, b, h)| b.entry(&h).to_owned_fields())
    }

    /// Replaces the groups (restore).
    pub fn load_group(&mut self, name: Bytes, group: Group) {
        self.groups.insert(name, Arc::new(group));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn f3(i: u64) -> [(Vec<u8>, Vec<u8>); 3] {
        [
            (b"a".to_vec(), i.to_string().into_bytes()),
            (b"b".to_vec(), b"x".to_vec()),
            (b"c".to_vec(), format!("v{i}").into_bytes()),
        ]
    }

    fn add(s: &mut Stream, id: StreamId, fields: &[(Vec<u8>, Vec<u8>)], lim: NodeLimits) {
        let refs: Vec<(&[u8], &[u8])> = fields.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        s.add(Some((id, true)), &refs, 0, lim).unwrap();
    }

    #[test]
    fn a_block_after_a_huge_entry_reserves_little() {
        let mut s = Stream::new();
        let lim = NodeLimits::default();
        add(
            &mut s,
            StreamId::new(1, 0),
            &[(b"f".to_vec(), vec![b'x'; 1 << 20])],
            lim,
        );
        add(
            &mut s,
            StreamId::new(2, 0),
            &[(b"f".to_vec(), b"1".to_vec())],
            lim,
        );
        assert_eq!(s.block_count(), 2);
        let last = s.blocks.values().next_back().unwrap();
        assert!(
            last.buf.capacity() <= BLOCK_HINT_MAX,
            "{}",
            last.buf.capacity()
        );
    }

    #[test]
    fn ids_format_as_display() {
        for id in [
            StreamId::MIN,
            StreamId::MAX,
            StreamId::new(1_700_000_000_123, 9),
            StreamId::new(10, 100),
        ] {
            assert_eq!(id.to_bytes(), Bytes::from(id.to_string()));
        }
    }

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, 1 << 40] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut p = 0;
            assert_eq!(get_varint(&b, &mut p), v);
            assert_eq!(p, b.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn blocks_store_master_fields_once_and_read_back() {
        let mut s = Stream::new();
        let lim = NodeLimits::default();
        for i in 1..=250u64 {
            add(&mut s, StreamId::new(1000 + i / 3, i), &f3(i), lim);
        }
        // Differing fields are stored inline.
        add(
            &mut s,
            StreamId::new(5000, 0),
            &[(b"other".to_vec(), b"1".to_vec())],
            lim,
        );
        assert_eq!(s.len(), 251);
        assert_eq!(s.block_count(), 3);
        let all = s.collect_range(StreamId::MIN, StreamId::MAX, false, 0);
        assert_eq!(all.len(), 251);
        assert_eq!(all[7].0, StreamId::new(1002, 8));
        assert_eq!(&all[7].1[0].1[..], b"8");
        assert_eq!(&all[250].1[0].0[..], b"other");
        let rev = s.collect_range(StreamId::new(1010, 0), StreamId::new(1020, 0), true, 4);
        let ids: Vec<_> = rev.iter().map(|e| e.0).collect();
        assert_eq!(
            ids,
            vec![
                StreamId::new(1019, 59),
                StreamId::new(1019, 58),
                StreamId::new(1019, 57),
                StreamId::new(1018, 56)
            ]
        );
        // The packed entries are small: values only, a few bytes of header.
        let b = s.blocks.values().next().unwrap();
        assert!(b.buf.len() < 100 * 14, "{}", b.buf.len());
        // Closed blocks hold no spare capacity.
        for b in s.blocks.values().take(s.block_count() - 1) {
            assert!(
                b.buf.capacity() <= b.buf.len() + b.buf.len() / 16,
                "{} of {}",
                b.buf.len(),
                b.buf.capacity()
            );
        }
    }

    #[test]
    fn byte_limit_follows_redis_listpack_sizes() {
        let mut s = Stream::new();
        let lim = NodeLimits {
            max_bytes: 100,
            max_entries: 0,
        };
        for i in 1..=10u64 {
            add(
                &mut s,
                StreamId::new(i, 0),
                &[(b"f".to_vec(), b"0123456789".to_vec())],
                lim,
            );
        }
        // Redis: master (1,0,1,"f",0) = 7+1*2+2+2+2+2... each entry with
        // same fields: flags, ms, seq, value(12), lp-count = 2+2+2+12+2 = 20.
        let first = s.blocks.values().next().unwrap();
        assert!(first.lp_bytes() < 100 + 20);
        assert!(s.block_count() > 1);
    }

    #[test]
    fn delete_and_trim_like_redis() {
        let mut s = Stream::new();
        let lim = NodeLimits {
            max_bytes: 0,
            max_entries: 10,
        };
        for i in 1..=35u64 {
            add(&mut s, StreamId::new(i, 0), &f3(i), lim);
        }
        assert_eq!(s.block_count(), 4);
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert_eq!(s.max_deleted, StreamId::new(1, 0));
        // Approximate: only whole blocks.
        assert_eq!(s.trim(Trim::MaxLen(30), true, 0), 0);
        assert_eq!(s.trim(Trim::MaxLen(25), true, 0), 9);
        assert_eq!(s.len(), 25);
        assert_eq!(s.trim(Trim::MaxLen(22), false, 0), 3);
        assert_eq!(s.first_id, StreamId::new(14, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(30, 0)), false, 0), 16);
        assert_eq!(s.first_id, StreamId::new(30, 0));
        assert_eq!(s.len(), 6);
        for i in 30..=35 {
            assert!(s.delete(StreamId::new(i, 0)));
        }
        assert_eq!(s.block_count(), 0);
        assert!(s.is_empty());
        assert_eq!(s.first_id, StreamId::MIN);
    }

    #[test]
    fn auto_ids_stay_monotonic_when_the_clock_steps_back() {
        let mut s = Stream::new();
        let lim = NodeLimits::default();
        let f: [(&[u8], &[u8]); 1] = [(b"a", b"1")];
        assert_eq!(s.add(None, &f, 100, lim).unwrap(), StreamId::new(100, 0));
        assert_eq!(s.add(None, &f, 50, lim).unwrap(), StreamId::new(100, 1));
        assert_eq!(
            s.add(Some((StreamId::new(100, 0), false)), &f, 0, lim)
                .unwrap(),
            StreamId::new(100, 2)
        );
        assert_eq!(
            s.add(Some((StreamId::new(100, 2), true)), &f, 0, lim),
            Err(AppendError::NotGreater)
        );
        assert_eq!(s.entries_added, 3);
    }

    #[test]
    fn a_write_under_a_shared_copy_copies_one_block() {
        let mut s = Stream::new();
        let lim = NodeLimits::default();
        for i in 1..=1001u64 {
            add(&mut s, StreamId::new(i, 0), &f3(i), lim);
        }
        let snapshot = s.clone();
        add(&mut s, StreamId::new(2000, 0), &f3(1), lim);
        let shared = s
            .blocks
            .iter()
            .filter(|(k, b)| snapshot.blocks.get(*k).is_some_and(|o| Arc::ptr_eq(o, b)))
            .count();
        assert_eq!(shared, snapshot.block_count() - 1);
        assert_eq!(snapshot.len(), 1001);
    }

    /// Reads, deletes, trims and group deliveries against a `BTreeMap` of
    /// the live entries, with small blocks and mixed field sets so that
    /// reads start mid-block, skip tombstones and cross blocks.
    #[test]
    fn matches_a_btreemap_under_random_operations() {
        use rand::{Rng, SeedableRng};
        let seed: u64 = rand::random();
        println!("seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let lim = NodeLimits {
            max_bytes: 200,
            max_entries: 7,
        };
        type Model = BTreeMap<StreamId, Vec<(Vec<u8>, Vec<u8>)>>;
        let mut s = Stream::new();
        let mut m: Model = BTreeMap::new();
        let mut next = 1u64;
        let owned = |v: Vec<(Bytes, Bytes)>| -> Vec<(Vec<u8>, Vec<u8>)> {
            v.into_iter()
                .map(|(f, x)| (f.to_vec(), x.to_vec()))
                .collect()
        };
        let pick = |rng: &mut rand::rngs::StdRng, next: u64| {
            StreamId::new(rng.random_range(0..next + 2), rng.random_range(0..3))
        };
        s.create_group(b"g", Group::new(StreamId::MIN, 0));
        let consumer = Bytes::from_static(b"c");
        for _ in 0..5000 {
            match rng.random_range(0..10) {
                0..=3 => {
                    let fields = if rng.random_bool(0.7) {
                        f3(next).to_vec()
                    } else {
                        (0..rng.random_range(1..4))
                            .map(|j| (vec![b'x' + j], vec![b'v'; rng.random_range(0..40)]))
                            .collect()
                    };
                    let id = StreamId::new(next, rng.random_range(0..2));
                    next += 1;
                    add(&mut s, id, &fields, lim);
                    m.insert(id, fields);
                }
                4 => {
                    // Often the last entries, so blocks end in tombstones.
                    let id = match m.keys().nth_back(rng.random_range(0..3)) {
                        Some(id) if rng.random_bool(0.5) => *id,
                        _ => pick(&mut rng, next),
                    };
                    assert_eq!(s.delete(id), m.remove(&id).is_some(), "delete {id}");
                }
                5 => {
                    let (a, b) = (pick(&mut rng, next), pick(&mut rng, next));
                    let (a, b) = (a.min(b), a.max(b));
                    let rev = rng.random_bool(0.5);
                    let count = rng.random_range(0..5);
                    let got: Vec<_> = s
                        .collect_range(a, b, rev, count)
                        .into_iter()
                        .map(|(id, f)| (id, owned(f)))
                        .collect();
                    let mut want: Vec<_> = m.range(a..=b).map(|(k, v)| (*k, v.clone())).collect();
                    if rev {
                        want.reverse();
                    }
                    if count > 0 {
                        want.truncate(count);
                    }
                    assert_eq!(got, want, "range {a} {b} rev {rev} count {count}");
                }
                6 => {
                    let id = pick(&mut rng, next);
                    assert_eq!(s.get(id).map(owned), m.get(&id).cloned(), "get {id}");
                    assert_eq!(s.contains(id), m.contains_key(&id));
                }
                7 => {
                    if rng.random_bool(0.1) {
                        let max = rng.random_range(0..=m.len() as u64);
                        s.trim(Trim::MaxLen(max), false, 0);
                        while m.len() as u64 > max {
                            m.pop_first();
                        }
                    }
                }
                _ => {
                    let count = rng.random_range(0..4);
                    let (view, g) = s.split_group(b"g").unwrap();
                    let start = g.last_id.incr().unwrap();
                    let got: Vec<_> = view
                        .deliver(g, start, count, &consumer, false, 0)
                        .into_iter()
                        .map(|(id, f)| (id, owned(f)))
                        .collect();
                    let mut want: Vec<_> = m.range(start..).map(|(k, v)| (*k, v.clone())).collect();
                    if count > 0 {
                        want.truncate(count);
                    }
                    assert_eq!(got, want, "deliver from {start} count {count}");
                    if let Some((id, _)) = got.last() {
                        assert_eq!(s.group(b"g").unwrap().last_id, *id);
                    }
                }
            }
            assert_eq!(s.len(), m.len() as u64);
            assert_eq!(s.first_live(), m.keys().next().copied());
            assert_eq!(
                s.last_live(),
                m.keys().next_back().copied().unwrap_or(StreamId::MIN)
            );
        }
    }
}
