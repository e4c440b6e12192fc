//! Frames to bytes, in the connection's protocol.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Frame, Protocol};

/// Appends `frame` to `dst` as `proto` puts it on the wire.
///
/// RESP3-only types are lowered for RESP2 as the table on [`Frame`] says,
/// exactly as Redis 7.0 does. Doubles are written with [`format_double`].
/// CR and LF inside `+`/`-`/`(` lines are replaced by spaces (Redis does the
/// same to error messages), so no frame content can break the framing.
pub fn encode(frame: &Frame, proto: Protocol, dst: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match frame {
        Frame::Simple(s) => line(dst, b'+', s),
        Frame::Error(s) => line(dst, b'-', s),
        Frame::Integer(n) => {
            dst.reserve(24);
            dst.put_u8(b':');
            put_int(dst, *n);
            dst.put_slice(b"\r\n");
        }
        Frame::Bulk(b) => blob(dst, b'$', b),
        Frame::Null => dst.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Frame::NullArray => dst.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Frame::Array(items) => aggregate(dst, b'*', items, proto),
        Frame::Set(items) => aggregate(dst, if resp3 { b'~' } else { b'*' }, items, proto),
        Frame::Push(items) => aggregate(dst, if resp3 { b'>' } else { b'*' }, items, proto),
        Frame::Map(pairs) => {
            if resp3 {
                header(dst, b'%', pairs.len());
            } else {
                header(dst, b'*', pairs.len().saturating_mul(2));
            }
            for (k, v) in pairs {
                encode(k, proto, dst);
                encode(v, proto, dst);
            }
        }
        Frame::Double(d) => {
            let text = format_double(*d);
            if resp3 {
                line(dst, b',', text.as_bytes());
            } else {
                blob(dst, b'$', text.as_bytes());
            }
        }
        Frame::DoubleText(t) => {
            if resp3 {
                line(dst, b',', t);
            } else {
                blob(dst, b'$', t);
            }
        }
        Frame::Boolean(b) => dst.put_slice(match (resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Frame::BigNumber(n) => {
            if resp3 {
                line(dst, b'(', n);
            } else {
                blob(dst, b'$', n);
            }
        }
        Frame::Verbatim { format, text } => {
            if resp3 {
                header(dst, b'=', text.len() + 4);
                dst.reserve(text.len() + 6);
                dst.put_slice(format);
                dst.put_u8(b':');
                dst.put_slice(text);
                dst.put_slice(b"\r\n");
            } else {
                blob(dst, b'$', text);
            }
        }
        Frame::BlobError(e) => {
            if resp3 {
                blob(dst, b'!', e);
            } else {
                line(dst, b'-', e);
            }
        }
    }
}

/// [`encode`], asking `full` after each element of a top-level aggregate
/// whether the output has grown too much: when it answers `true` the rest
/// is not encoded and `false` is returned (the output then ends mid-reply,
/// and the caller closes the connection, as Redis closes a client over its
/// output buffer limit). A reply of a million elements is thus cut off at
/// the limit instead of being encoded whole first.
pub(crate) fn encode_until(
    frame: &Frame,
    proto: Protocol,
    dst: &mut BytesMut,
    full: &mut dyn FnMut(&BytesMut) -> bool,
) -> bool {
    let resp3 = proto == Protocol::Resp3;
    let (tag, items) = match frame {
        Frame::Array(items) => (b'*', items),
        Frame::Set(items) => (if resp3 { b'~' } else { b'*' }, items),
        Frame::Push(items) => (if resp3 { b'>' } else { b'*' }, items),
        Frame::Map(pairs) => {
            if resp3 {
                header(dst, b'%', pairs.len());
            } else {
                header(dst, b'*', pairs.len().saturating_mul(2));
            }
            for (k, v) in pairs {
                encode(k, proto, dst);
                encode(v, proto, dst);
                if full(dst) {
                    return false;
                }
            }
            return true;
        }
        other => {
            encode(other, proto, dst);
            return !full(dst);
        }
    };
    header(dst, tag, items.len());
    for f in items {
        encode(f, proto, dst);
        if full(dst) {
            return false;
        }
    }
    true
}

impl Frame {
    /// The frame a RESP2 client decodes from this frame's RESP2 encoding.
    ///
    /// Useful to compare replies across protocols: `Map` becomes a flat
    /// `Array`, `Double` a `Bulk`, `Boolean` an `Integer`, and so on (see
    /// the table on [`Frame`]).
    pub fn into_resp2(self) -> Frame {
        let all = |v: Vec<Frame>| v.into_iter().map(Frame::into_resp2).collect();
        match self {
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => Frame::Array(all(v)),
            Frame::Map(pairs) => Frame::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [k.into_resp2(), v.into_resp2()])
                    .collect(),
            ),
            Frame::Double(d) => Frame::Bulk(Bytes::from(format_double(d))),
            Frame::DoubleText(t) => Frame::Bulk(t),
            Frame::Boolean(b) => Frame::Integer(i64::from(b)),
            Frame::BigNumber(n) => Frame::Bulk(n),
            Frame::Verbatim { text, .. } => Frame::Bulk(text),
            Frame::BlobError(e) => Frame::Error(e),
            other => other,
        }
    }
}

fn put_int(dst: &mut BytesMut, n: impl itoa::Integer) {
    dst.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn header(dst: &mut BytesMut, tag: u8, len: usize) {
    dst.reserve(24);
    dst.put_u8(tag);
    put_int(dst, len);
    dst.put_slice(b"\r\n");
}

fn blob(dst: &mut BytesMut, tag: u8, data: &[u8]) {
    header(dst, tag, data.len());
    dst.reserve(data.len() + 2);
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

fn line(dst: &mut BytesMut, tag: u8, text: &[u8]) {
    dst.reserve(text.len() + 3);
    dst.put_u8(tag);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        dst.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        dst.put_slice(text);
    }
    dst.put_slice(b"\r\n");
}

fn aggregate(dst: &mut BytesMut, tag: u8, items: &[Frame], proto: Protocol) {
    header(dst, tag, items.len());
    for f in items {
        encode(f, proto, dst);
    }
}

/// A double as Redis 7.0 replies with it (`addReplyDouble`): C's `%.17g`,
/// and `inf`, `-inf`, `nan`.
///
/// This is what `ZSCORE`, `ZINCRBY` and `GEOPOS` send, as a bulk string in
/// RESP2 and after `,` in RESP3: `1.5`, `0.10000000000000001`, `1e+17`,
/// `2.5000000000000001e-05`. Seventeen significant digits always read back
/// as the same `f64`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Integral values below 1e17 print all their digits under %.17g.
    if d.fract() == 0.0 && d.abs() < 1e17 && !(d == 0.0 && d.is_sign_negative()) {
        #[allow(clippy::cast_possible_truncation)]
        return itoa::Buffer::new().format(d as i64).to_owned();
    }
    // %g picks the style from the exponent of the value rounded to 17
    // significant digits, which `{:.16e}` computes (Rust and glibc both
    // round exact ties to even).
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..17).contains(&exp) {
        let decimals = usize::try_from(16 - exp).unwrap_or(0);
        let mut s = format!("{d:.decimals$}");
        trim_fraction(&mut s);
        s
    } else {
        let mut m = mantissa.to_owned();
        trim_fraction(&mut m);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// A double in Redis' human form (`ld2string` with `LD_STR_HUMAN`), as
/// `INCRBYFLOAT` and `HINCRBYFLOAT` store and reply it: plain decimal
/// notation, at most 17 decimals, no trailing zeros, `-0` as `0`.
///
/// Redis computes these in `long double`; from an `f64` the shortest
/// representation that reads back as the same value gives the digits Redis
/// shows for the usual cases (`0.1`, `3.0000000000000004`, `0.000025`,
/// `100000000000000000`). Values beyond 2^64 differ in the digits after the
/// 17th, which neither type holds exactly. Infinities and NaN, which
/// Redis refuses before formatting, print as in [`format_double`].
pub fn format_double_human(d: f64) -> String {
    if !d.is_finite() {
        return format_double(d);
    }
    let mut s = d.to_string();
    if s.split_once('.').is_some_and(|(_, frac)| frac.len() > 17) {
        s = format!("{d:.17}");
        trim_fraction(&mut s);
    }
    if s == "-0" {
        s = "0".to_owned();
    }
    s
}

/// Drops trailing zeros of a fraction, and the dot if nothing is left.
fn trim_fraction(s: &mut String) {
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_until_stops_after_the_element_that_fills_the_output() {
        let big = Frame::Array((0..100).map(|_| Frame::bulk("0123456789")).collect());
        let mut whole = BytesMut::new();
        encode(&big, Protocol::Resp2, &mut whole);
        let mut same = BytesMut::new();
        assert!(encode_until(&big, Protocol::Resp2, &mut same, &mut |_| {
            false
        }));
        assert_eq!(same, whole);
        // `$10\r\n0123456789\r\n` is 17 bytes after a 6-byte header.
        let mut cut = BytesMut::new();
        assert!(!encode_until(&big, Protocol::Resp2, &mut cut, &mut |o| o
            .len()
            >= 40));
        assert_eq!(cut.len(), 6 + 2 * 17);
        assert_eq!(&cut[..], &whole[..cut.len()]);
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1)); 10]);
        let mut m = BytesMut::new();
        assert!(!encode_until(&map, Protocol::Resp3, &mut m, &mut |o| o
            .len()
            >= 10));
        assert_eq!(&m[..], b"%10\r\n$1\r\na\r\n:1\r\n");
    }

    /// Replies observed from redis-server 7.0.15 for `ZADD z <input> m`
    /// then `ZSCORE z m`, and for `INCRBYFLOAT f <input>` from 0.
    #[test]
    fn doubles_match_redis() {
        let zscore = [
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (3.0000000000000004, "3.0000000000000004"),
            (1e300, "1.0000000000000001e+300"),
            (-1e-300, "-1e-300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0, "0"),
            (2.5e-5, "2.5000000000000001e-05"),
            (1e16, "10000000000000000"),
            (1e15, "1000000000000000"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "4.9406564584124654e-324"),
            (100.0, "100"),
        ];
        for (d, want) in zscore {
            assert_eq!(format_double(d), want, "format_double({d:e})");
        }
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(-0.0), "-0");
        let incrbyfloat = [
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (3.0000000000000004, "3.0000000000000004"),
            (-1e-300, "0"),
            (1e17, "100000000000000000"),
            (-0.0, "0"),
            (2.5e-5, "0.000025"),
            (1e16, "10000000000000000"),
            (0.00001, "0.00001"),
            (5e-324, "0"),
        ];
        for (d, want) in incrbyfloat {
            assert_eq!(format_double_human(d), want, "human({d:e})");
        }
    }

    #[test]
    fn format_double_reads_back() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        println!("format_double_reads_back seed {x:#x}");
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if d.is_finite() {
                let s = format_double(d);
                assert_eq!(s.parse::<f64>().unwrap(), d, "{s}");
            }
        }
    }

    fn enc(f: &Frame, p: Protocol) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(f, p, &mut b);
        b.to_vec()
    }

    #[test]
    fn lowering_table() {
        use Protocol::{Resp2, Resp3};
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Null, Resp2), b"$-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Resp2), b"*-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Resp3), b"_\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Resp2), b"$3\r\n1.5\r\n");
        assert_eq!(enc(&Frame::Double(f64::INFINITY), Resp3), b",inf\r\n");
        assert_eq!(enc(&Frame::Boolean(true), Resp2), b":1\r\n");
        assert_eq!(enc(&Frame::Boolean(false), Resp3), b"#f\r\n");
        let v = Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from("hi"),
        };
        assert_eq!(enc(&v, Resp3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&v, Resp2), b"$2\r\nhi\r\n");
        let e = Frame::BlobError(Bytes::from("ERR a\r\nb"));
        assert_eq!(enc(&e, Resp3), b"!8\r\nERR a\r\nb\r\n");
        assert_eq!(enc(&e, Resp2), b"-ERR a  b\r\n");
        assert_eq!(enc(&Frame::error("ERR x\ny"), Resp2), b"-ERR x y\r\n");
        assert_eq!(
            enc(&Frame::Integer(i64::MIN), Resp2),
            b":-9223372036854775808\r\n"
        );
        let push = Frame::Push(vec![Frame::bulk("message")]);
        assert_eq!(enc(&push, Resp3), b">1\r\n$7\r\nmessage\r\n");
        assert_eq!(enc(&push, Resp2), b"*1\r\n$7\r\nmessage\r\n");
    }
}
