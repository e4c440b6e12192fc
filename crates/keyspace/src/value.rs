//! Keys and typed values as stored in the keyspace.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

/// A stored key: up to [`Key::INLINE`] bytes held in place, longer ones in
/// one heap allocation of exactly the key bytes.
///
/// Most keys are short (`user:1000`, `session:ab12…`): held in place they
/// cost no allocation (32 bytes of heap for a 12-byte key, with malloc's
/// overhead) and a lookup compares them in the hash table's slot, which it
/// has already loaded, instead of following a pointer to a likely cache
/// miss. The key is 24 bytes, 8 more than a `Box<[u8]>`. Not `Bytes`: that
/// is 32 bytes and may pin a connection's whole read buffer (argument
/// `Bytes` can be slices of it). Lookups borrow it as `[u8]`, so they never
/// allocate.
#[derive(Clone)]
pub struct Key(Repr);

/// The empty key.
impl Default for Key {
    fn default() -> Key {
        Key::new(b"")
    }
}

#[derive(Clone)]
enum Repr {
    Inline { len: u8, data: [u8; Key::INLINE] },
    Heap(Box<[u8]>),
}

impl Key {
    /// The longest key held without a heap allocation.
    pub const INLINE: usize = 22;

    /// Copies `bytes` into a new key.
    pub fn new(bytes: &[u8]) -> Key {
        match Key::inline(bytes) {
            Some(key) => key,
            None => Key(Repr::Heap(Box::from(bytes))),
        }
    }

    fn inline(bytes: &[u8]) -> Option<Key> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&l| usize::from(l) <= Key::INLINE)?;
        let mut data = [0; Key::INLINE];
        data.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Key(Repr::Inline { len, data }))
    }

    /// Takes the buffer of `bytes` when the key is too long to be held in
    /// place and `bytes` is the sole owner of an exact-size allocation;
    /// copies it otherwise.
    pub fn from_bytes(bytes: Bytes) -> Key {
        match Key::inline(&bytes) {
            Some(key) => key,
            None => Key(Repr::Heap(Vec::from(bytes).into_boxed_slice())),
        }
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, data } => data.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(bytes) => bytes,
        }
    }

    /// The key as an owned `Bytes` (copies).
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `[u8]` for `Borrow<[u8]>` lookups.
        self.as_bytes().hash(state)
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::new(b)
    }
}

pub use crate::hashed::{HalfIter, HashMapBytes, HashSetBytes, MapIter, SetIter};
pub use crate::quicklist::QuickList;

/// A stored value. Collections sit behind `Arc` so that a point-in-time view
/// can take them in O(1); writers go through `Arc::make_mut`, which copies
/// only while a view still holds the old version.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string, stored as raw bytes.
    Str(Box<[u8]>),
    /// A string that is the canonical decimal form of an `i64` (set by
    /// `INCR` and friends, or by `SET` of such a string), kept as a number so
    /// counters neither parse nor allocate.
    Int(i64),
    /// A list.
    List(Arc<QuickList>),
    /// A hash.
    Hash(Arc<HashMapBytes>),
    /// A set.
    Set(Arc<HashSetBytes>),
    /// A sorted set.
    ZSet(Arc<SortedSet>),
    /// A stream.
    Stream(Arc<Stream>),
}

/// The Redis type of a value, as `TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `string`
    String,
    /// `list`
    List,
    /// `hash`
    Hash,
    /// `set`
    Set,
    /// `zset`
    ZSet,
    /// `stream`
    Stream,
}

impl ValueType {
    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }

    /// Parses a `TYPE` name (case-insensitive), as `SCAN ... TYPE` takes it.
    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        let all = [
            ValueType::String,
            ValueType::List,
            ValueType::Hash,
            ValueType::Set,
            ValueType::ZSet,
            ValueType::Stream,
        ];
        all.into_iter()
            .find(|t| t.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The error for an operation against a key holding the wrong kind of value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

/// Longest decimal form of an `i64` (`-9223372036854775808`).
const MAX_INT_LEN: usize = 20;

impl Value {
    /// A string value from bytes, keeping the integer form when the bytes are
    /// exactly the canonical decimal form of an `i64`.
    pub fn string(bytes: &[u8]) -> Value {
        match parse_canonical_i64(bytes) {
            Some(n) => Value::Int(n),
            None => Value::Str(Box::from(bytes)),
        }
    }

    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) | Value::Int(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    /// Whether this is a string value.
    pub fn is_string(&self) -> bool {
        matches!(self, Value::Str(_) | Value::Int(_))
    }

    /// The string bytes of a string value (formats an integer), or
    /// [`WrongType`].
    pub fn string_bytes(&self) -> Result<Bytes, WrongType> {
        match self {
            Value::Str(b) => Ok(Bytes::copy_from_slice(b)),
            Value::Int(n) => Ok(Bytes::from(n.to_string())),
            _ => Err(WrongType),
        }
    }

    /// Calls `f` with the string bytes of a string value without copying
    /// them (an integer is formatted on the stack).
    pub fn with_str<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, WrongType> {
        match self {
            Value::Str(b) => Ok(f(b)),
            Value::Int(n) => {
                let mut buf = [0u8; MAX_INT_LEN];
                let len = format_i64(*n, &mut buf);
                Ok(f(buf.get(..len).unwrap_or_default()))
            }
            _ => Err(WrongType),
        }
    }

    /// The length of a string value in bytes.
    pub fn str_len(&self) -> Result<usize, WrongType> {
        self.with_str(|b| b.len())
    }

    /// The list inside, or [`WrongType`].
    pub fn as_list(&self) -> Result<&QuickList, WrongType> {
        match self {
            Value::List(l) => Ok(l),
            _ => Err(WrongType),
        }
    }

    /// The list inside for writing (copy-on-write), or [`WrongType`].
    pub fn as_list_mut(&mut self) -> Result<&mut QuickList, WrongType> {
        match self {
            Value::List(l) => Ok(Arc::make_mut(l)),
            _ => Err(WrongType),
        }
    }

    /// The hash inside, or [`WrongType`].
    pub fn as_hash(&self) -> Result<&HashMapBytes, WrongType> {
        match self {
            Value::Hash(h) => Ok(h),
            _ => Err(WrongType),
        }
    }

    /// The hash inside for writing (copy-on-write), or [`WrongType`].
    pub fn as_hash_mut(&mut self) -> Result<&mut HashMapBytes, WrongType> {
        match self {
            Value::Hash(h) => Ok(Arc::make_mut(h)),
            _ => Err(WrongType),
        }
    }

    /// The set inside, or [`WrongType`].
    pub fn as_set(&self) -> Result<&HashSetBytes, WrongType> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(WrongType),
        }
    }

    /// The set inside for writing (copy-on-write), or [`WrongType`].
    pub fn as_set_mut(&mut self) -> Result<&mut HashSetBytes, WrongType> {
        match self {
            Value::Set(s) => Ok(Arc::make_mut(s)),
            _ => Err(WrongType),
        }
    }

    /// The sorted set inside, or [`WrongType`].
    pub fn as_zset(&self) -> Result<&SortedSet, WrongType> {
        match self {
            Value::ZSet(z) => Ok(z),
            _ => Err(WrongType),
        }
    }

    /// The sorted set inside for writing (copy-on-write), or [`WrongType`].
    pub fn as_zset_mut(&mut self) -> Result<&mut SortedSet, WrongType> {
        match self {
            Value::ZSet(z) => Ok(Arc::make_mut(z)),
            _ => Err(WrongType),
        }
    }

    /// The stream inside, or [`WrongType`].
    pub fn as_stream(&self) -> Result<&Stream, WrongType> {
        match self {
            Value::Stream(s) => Ok(s),
            _ => Err(WrongType),
        }
    }

    /// The stream inside for writing (copy-on-write of the block index;
    /// blocks are copied one at a time as they change), or [`WrongType`].
    pub fn as_stream_mut(&mut self) -> Result<&mut Stream, WrongType> {
        match self {
            Value::Stream(s) => Ok(Arc::make_mut(s)),
            _ => Err(WrongType),
        }
    }

    /// Whether this is a collection with no elements (Redis deletes those).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) | Value::Int(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // Redis keeps a stream key with no entries (groups may live on).
            Value::Stream(_) => false,
        }
    }
}

/// Writes the decimal form of `n` into `buf`, returning its length.
pub(crate) fn format_i64(n: i64, buf: &mut [u8; MAX_INT_LEN]) -> usize {
    let mut tmp = [0u8; MAX_INT_LEN];
    let mut i = tmp.len();
    let neg = n < 0;
    let mut u = n.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        tmp[i] = b'-';
    }
    let len = tmp.len() - i;
    buf[..len].copy_from_slice(&tmp[i..]);
    len
}

/// Parses `bytes` as an `i64` only when they are its canonical decimal form
/// (no sign on zero, no leading zeros, no spaces), as Redis'
/// `string2ll` does; so `"007"` stays a string and round-trips byte for byte.
pub fn parse_canonical_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > MAX_INT_LEN {
        return None;
    }
    let (neg, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut acc: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let v = i64::from(d - b'0');
        acc = acc.checked_mul(10)?;
        acc = if neg {
            acc.checked_sub(v)?
        } else {
            acc.checked_add(v)?
        };
    }
    Some(acc)
}

/// A sorted-set score with Redis' total order for members of equal score
/// broken by member bytes. NaN never gets stored (commands refuse it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

pub use crate::stream::Stream;
pub use crate::zset::SortedSet;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_length_round_trip_and_compare_as_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let lens = [
            0,
            1,
            12,
            Key::INLINE - 1,
            Key::INLINE,
            Key::INLINE + 1,
            100,
            70_000,
        ];
        let keys: Vec<Vec<u8>> = lens
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        for raw in &keys {
            let a = Key::new(raw);
            let b = Key::from_bytes(Bytes::copy_from_slice(raw));
            assert_eq!(a.as_bytes(), &raw[..]);
            assert_eq!(b.as_bytes(), &raw[..]);
            assert_eq!(a, b);
            assert_eq!(a.clone().to_bytes(), &raw[..]);
            let hash = |h: &dyn Fn(&mut std::hash::DefaultHasher)| {
                let mut s = std::hash::DefaultHasher::new();
                h(&mut s);
                s.finish()
            };
            assert_eq!(hash(&|s| a.hash(s)), hash(&|s| raw[..].hash(s)));
        }
        for x in &keys {
            for y in &keys {
                assert_eq!(Key::new(x).cmp(&Key::new(y)), x.cmp(y));
                assert_eq!(Key::new(x) == Key::new(y), x == y);
            }
        }
        // A short key with trailing zeros differs from its prefix.
        assert_ne!(Key::new(b"a\0"), Key::new(b"a"));
    }

    #[test]
    fn canonical_integers() {
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
        assert_eq!(parse_canonical_i64(b"-12"), Some(-12));
        assert_eq!(parse_canonical_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_canonical_i64(b"9223372036854775808"), None);
        for bad in [&b"007"[..], b"-0", b"+1", b" 1", b"", b"-", b"1a"] {
            assert_eq!(parse_canonical_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn int_strings_round_trip() {
        for n in [0, 1, -1, i64::MAX, i64::MIN, 1234567] {
            let v = Value::string(n.to_string().as_bytes());
            assert_eq!(v, Value::Int(n));
            assert_eq!(v.string_bytes().unwrap(), Bytes::from(n.to_string()));
            assert_eq!(v.str_len().unwrap(), n.to_string().len());
        }
    }

    #[test]
    fn zset_orders_by_score_then_member() {
        let mut z = SortedSet::new();
        z.insert(Bytes::from_static(b"b"), 1.0);
        z.insert(Bytes::from_static(b"a"), 1.0);
        z.insert(Bytes::from_static(b"c"), 0.5);
        assert_eq!(z.insert(Bytes::from_static(b"c"), 2.0), Some(0.5));
        let order: Vec<_> = z.iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(order, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.len(), 2);
    }
}
