//! Argument parsing shared by every command family: argument access,
//! SCAN cursors and options, the random counts of HRANDFIELD, SRANDMEMBER
//! and ZRANDMEMBER, blocking timeouts.
//!
//! # HSCAN and SSCAN cursors ([`scan_step`])
//!
//! A hash or set of at most [`SMALL_SCAN`] elements is returned whole in
//! one reply with cursor 0, whatever cursor was given, as Redis does for
//! its small (listpack/intset) encodings. Larger ones are walked in
//! ascending order of a process-stable 64-bit hash of each element; the
//! cursor is the next hash to return from. An element present for the
//! whole scan is returned exactly once however the collection grows,
//! shrinks or rehashes in between, which is stronger than Redis' "at least
//! once". The collection has no index by that hash, so each call is one
//! pass over it; so that a full scan costs at most about [`SCAN_PASSES`]
//! passes, a call returns at least that fraction of the elements even
//! when COUNT asks for fewer (COUNT is only a hint in Redis too).

use std::time::Duration;

use bytes::Bytes;
use cairn_resp::Frame;

use super::{ERR_SYNTAX, err, is, parse_float, parse_int};
use crate::glob::glob_match;

/// Collections up to this size are scanned in a single reply.
pub(crate) const SMALL_SCAN: usize = 128;

/// A scan of a large collection takes at most about this many calls.
pub(crate) const SCAN_PASSES: usize = 32;

/// Largest reply HRANDFIELD, SRANDMEMBER and ZRANDMEMBER build for a negative count (with
/// repetitions). Redis streams such replies and grows its output buffer
/// until memory runs out (`SRANDMEMBER s -9223372036854775807` kills a
/// 7.0.15 server); cairn builds replies in memory, so it refuses beyond this.
pub(crate) const MAX_RANDOM_REPLY: u64 = 1 << 24;

pub(crate) fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|b| &b[..]).unwrap_or_default()
}

/// Stored elements are copied out of the argument: arguments are slices of
/// the connection's read buffer and would pin all of it.
pub(crate) fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// Parses the count of HRANDFIELD/SRANDMEMBER as Redis'
/// `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` does.
pub(crate) fn parse_random_count(raw: &[u8]) -> Result<i64, Frame> {
    match parse_int(raw)? {
        i64::MIN => Err(err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        n => Ok(n),
    }
}

/// What HRANDFIELD/SRANDMEMBER with a count pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RandomCount {
    /// A positive count: this many distinct elements (all of them when it
    /// exceeds the size).
    Distinct(usize),
    /// A negative count: this many elements, repetitions allowed.
    Repeated(usize),
}

/// Reads a parsed count as HRANDFIELD/SRANDMEMBER do; `None` when a
/// negative count asks for more than [`MAX_RANDOM_REPLY`].
pub(crate) fn random_count(count: i64) -> Option<RandomCount> {
    if count >= 0 {
        return Some(RandomCount::Distinct(
            usize::try_from(count).unwrap_or(usize::MAX),
        ));
    }
    let want = count.unsigned_abs();
    // `want` <= MAX_RANDOM_REPLY fits any usize.
    (want <= MAX_RANDOM_REPLY).then_some(RandomCount::Repeated(want as usize))
}

/// Parses a SCAN cursor as Redis' `strtoull`-based parser does: optional
/// sign (a minus wraps), digits, nothing else; the empty string is 0.
pub(crate) fn parse_cursor(raw: &[u8]) -> Option<u64> {
    let (neg, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, raw),
    };
    if digits.is_empty() {
        // strtoull consumes nothing: "" is cursor 0, a lone sign is invalid.
        return raw.is_empty().then_some(0);
    }
    let mut acc: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { acc.wrapping_neg() } else { acc })
}

/// MATCH, COUNT (and TYPE, for SCAN) of the SCAN family.
pub(crate) struct ScanOpts<'a> {
    /// The MATCH pattern; `None` for none or `*`.
    pub(crate) pattern: Option<&'a [u8]>,
    /// The COUNT hint (10 by default).
    pub(crate) count: usize,
    /// The TYPE name (SCAN only).
    pub(crate) ty: Option<&'a [u8]>,
}

/// Parses the options from `args[from]` on, as Redis' `scanGenericCommand`
/// does; TYPE is an option only when `with_type` (SCAN).
pub(crate) fn parse_scan_opts(
    args: &[Bytes],
    from: usize,
    with_type: bool,
) -> Result<ScanOpts<'_>, Frame> {
    let mut opts = ScanOpts {
        pattern: None,
        count: 10,
        ty: None,
    };
    let mut i = from;
    while let Some(opt) = args.get(i) {
        let Some(v) = args.get(i + 1) else {
            return Err(err(ERR_SYNTAX));
        };
        if is(opt, "count") {
            match parse_int(v)? {
                n if n < 1 => return Err(err(ERR_SYNTAX)),
                n => opts.count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if is(opt, "match") {
            opts.pattern = (&v[..] != b"*").then_some(&v[..]);
        } else if with_type && is(opt, "type") {
            opts.ty = Some(&v[..]);
        } else {
            return Err(err(ERR_SYNTAX));
        }
        i += 2;
    }
    Ok(opts)
}

/// One HSCAN/SSCAN step over `items` (element, value for hashes); see the
/// module doc for the cursor scheme. `hash` must be stable for the process.
pub(crate) fn scan_step(
    items: impl ExactSizeIterator<Item = (Bytes, Option<Bytes>)>,
    cursor: u64,
    opts: &ScanOpts<'_>,
    hash: impl Fn(&[u8]) -> u64,
) -> Frame {
    let len = items.len();
    let mut out = Vec::new();
    let mut emit = |e: Bytes, v: Option<Bytes>| {
        if opts.pattern.is_none_or(|p| glob_match(p, &e, false)) {
            out.push(Frame::Bulk(e));
            if let Some(v) = v {
                out.push(Frame::Bulk(v));
            }
        }
    };
    let mut next = 0;
    if len <= SMALL_SCAN {
        items.for_each(|(e, v)| emit(e, v));
    } else {
        let batch = opts.count.max(len.div_ceil(SCAN_PASSES)).max(1);
        let mut found: Vec<(u64, Bytes, Option<Bytes>)> = items
            .map(|(e, v)| (hash(&e), e, v))
            .filter(|(h, _, _)| *h >= cursor)
            .collect();
        if found.len() > batch {
            found.select_nth_unstable_by_key(batch - 1, |(h, _, _)| *h);
            let pivot = found.get(batch - 1).map_or(u64::MAX, |(h, _, _)| *h);
            // Elements of equal hash go out together, so the next call can
            // start strictly above the pivot.
            found.retain(|(h, _, _)| *h <= pivot);
            next = pivot.checked_add(1).unwrap_or(0);
        }
        for (_, e, v) in found {
            emit(e, v);
        }
    }
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ])
}

pub(crate) fn empty_scan() -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::from_static(b"0")),
        Frame::Array(Vec::new()),
    ])
}

/// Longest timeout honoured as such; longer ones block forever (Redis
/// adds it to the clock in a 64-bit integer, where it cannot expire either).
const MAX_TIMEOUT_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Parses a blocking timeout in seconds as Redis 7.0's
/// `getTimeoutFromObjectOrReply` does: a float, rounded up to whole
/// milliseconds; `None` means forever (0, or a tiny negative that rounds
/// to 0).
pub(crate) fn parse_timeout(a: &[u8]) -> Result<Option<Duration>, Frame> {
    let Some(secs) = parse_float(a) else {
        return Err(err("ERR timeout is not a float or out of range"));
    };
    let ms = (secs * 1000.0).ceil();
    // C converts out-of-range doubles to LLONG_MIN on x86: "negative".
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(err("ERR timeout is negative"));
    }
    let ms = ms as i64;
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Ok(None);
    }
    Ok(Some(Duration::from_millis(ms.unsigned_abs())))
}

/// Parsed `numkeys key... <end> [COUNT count]` of LMPOP, BLMPOP, ZMPOP
/// and BZMPOP.
pub(crate) struct MPopArgs<'a> {
    /// The keys, in the order to try them.
    pub(crate) keys: &'a [Bytes],
    /// Whether the end is the first of the two words (LEFT, MIN).
    pub(crate) first: bool,
    /// How many elements at most (1 by default).
    pub(crate) count: usize,
}

/// Parses from `numkeys` (`args[at]`) on, with Redis 7.0's checks and
/// texts; `ends` are the two words naming the end (`["left", "right"]`).
pub(crate) fn parse_mpop<'a>(
    args: &'a [Bytes],
    at: usize,
    ends: [&str; 2],
) -> Result<MPopArgs<'a>, Frame> {
    // Redis replies with the range message for a non-number as well.
    let numkeys = match parse_int(arg(args, at)) {
        Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return Err(err("ERR numkeys should be greater than 0")),
    };
    let first_key = at + 1;
    let Some(keys) = first_key
        .checked_add(numkeys)
        .and_then(|e| args.get(first_key..e))
    else {
        return Err(err(ERR_SYNTAX));
    };
    let mut i = first_key + numkeys;
    let first = match args.get(i) {
        Some(w) if is(w, ends[0]) => true,
        Some(w) if is(w, ends[1]) => false,
        _ => return Err(err(ERR_SYNTAX)),
    };
    i += 1;
    let mut count = None;
    while let Some(a) = args.get(i) {
        if count.is_none() && is(a, "count") && args.get(i + 1).is_some() {
            match parse_int(arg(args, i + 1)) {
                Ok(n) if n > 0 => count = Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => return Err(err("ERR count should be greater than 0")),
            }
            i += 2;
        } else {
            return Err(err(ERR_SYNTAX));
        }
    }
    Ok(MPopArgs {
        keys,
        first,
        count: count.unwrap_or(1),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoull() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b" 0",
            b"0x",
            b"-",
            b"+",
            b"1 ",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn random_counts_follow_their_sign() {
        assert_eq!(random_count(10), Some(RandomCount::Distinct(10)));
        assert_eq!(random_count(0), Some(RandomCount::Distinct(0)));
        assert_eq!(
            random_count(i64::MAX),
            Some(RandomCount::Distinct(i64::MAX as usize))
        );
        assert_eq!(random_count(-500), Some(RandomCount::Repeated(500)));
        let max = MAX_RANDOM_REPLY as i64;
        assert_eq!(
            random_count(-max),
            Some(RandomCount::Repeated(MAX_RANDOM_REPLY as usize))
        );
        assert_eq!(random_count(-max - 1), None);
    }

    #[test]
    fn timeouts_parse_as_redis() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(parse_timeout(b"-0.0001").unwrap(), None);
        assert_eq!(
            parse_timeout(b"0.0001").unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            parse_timeout(b"1.5").unwrap(),
            Some(Duration::from_millis(1500))
        );
        let neg = err("ERR timeout is negative");
        let bad = err("ERR timeout is not a float or out of range");
        for (a, want) in [
            ("-1", &neg),
            ("inf", &neg),
            ("1e17", &neg),
            ("abc", &bad),
            ("nan", &bad),
            (" 1", &bad),
            ("", &bad),
        ] {
            assert_eq!(&parse_timeout(a.as_bytes()).unwrap_err(), want, "{a}");
        }
        // Redis computes in long double; f64 rounds 9223372036854775 up past
        // 2^63 ms ("negative"), a documented edge. Just below still blocks.
        assert_eq!(parse_timeout(b"9223372036854774").unwrap(), None);
    }
}
