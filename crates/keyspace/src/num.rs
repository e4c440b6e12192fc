//! Numbers as Redis' `util.c` reads and writes them: `string2ll`
//! (canonical 64-bit integers), `string2d`/`strtod` (doubles, hex
//! included), `string2ld`/`ld2string` (x87 `long double` arithmetic of
//! INCRBYFLOAT and HINCRBYFLOAT), `d2string` (`%.17g` with integers
//! printed whole). Shared by every command family; each keeps only its
//! own error texts.

// `string2ll` lives with the value types (it decides which strings are
// stored as integers); commands reach it here.
pub(crate) use crate::value::parse_canonical_i64 as string2ll;

/// Redis' `MAX_LONG_DOUBLE_CHARS`: longer float arguments are refused.
const MAX_FLOAT_CHARS: usize = 5 * 1024;

/// `getDoubleFromObject`: the whole argument must be a number (`strtod`
/// syntax, hex included), no leading space, not NaN, and neither overflow
/// to infinity nor underflow to zero (explicit `inf` is fine).
pub(crate) fn parse_score(a: &[u8]) -> Option<f64> {
    if a.is_empty() || a.len() > MAX_FLOAT_CHARS || a.first().is_some_and(|c| is_c_space(*c)) {
        return None;
    }
    let v = strtod(a)?;
    if v.is_infinite() && !has_inf_word(a) {
        return None;
    }
    if v == 0.0 && has_nonzero_mantissa(a) {
        return None;
    }
    Some(v)
}

pub(crate) fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's `strtol` family skips before the digits: leading white space
/// and one sign. Returns the index of the first byte after them and
/// whether the sign was `-`.
pub(crate) fn c_sign_prefix(s: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while s.get(i).is_some_and(|&c| is_c_space(c)) {
        i += 1;
    }
    match s.get(i) {
        Some(b'-') => (i + 1, true),
        Some(b'+') => (i + 1, false),
        _ => (i, false),
    }
}

fn has_inf_word(a: &[u8]) -> bool {
    a.windows(3).any(|w| w.eq_ignore_ascii_case(b"inf"))
}

fn has_nonzero_mantissa(a: &[u8]) -> bool {
    let hex = a.windows(2).any(|w| w.eq_ignore_ascii_case(b"0x"));
    let stop = if hex { [b'p', b'P'] } else { [b'e', b'E'] };
    let mantissa = a.split(|c| stop.contains(c)).next().unwrap_or_default();
    let mantissa = if hex {
        mantissa.get(2..).unwrap_or_default()
    } else {
        mantissa
    };
    mantissa
        .iter()
        .any(|c| c.is_ascii_hexdigit() && *c != b'0' && (hex || c.is_ascii_digit()))
}

/// The whole of `a` as a C `strtod` number: decimal (Rust's parser, which
/// takes the same syntax including `inf`/`infinity`/`nan`) or hex
/// (`0x1.8p3`). NaN is refused, as every Redis caller does.
pub(crate) fn strtod(a: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(a).ok()?;
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let v = if body.len() > 2 && body.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x")) {
        let v = parse_hex_float(body.get(2..)?)?;
        if neg { -v } else { v }
    } else {
        if body.starts_with(['+', '-']) {
            return None;
        }
        s.parse::<f64>().ok()?
    };
    (!v.is_nan()).then_some(v)
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.find(['p', 'P']) {
        Some(i) => (s.get(..i)?, Some(s.get(i + 1..)?)),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let e: i32 = match exp {
        None => 0,
        Some(e) => e.parse::<i64>().ok()?.clamp(-100_000, 100_000) as i32,
    };
    Some(v * 2f64.powi(e))
}

/// Parses a float argument as Redis' `strtold`-based parsers do: no
/// surrounding spaces, no NaN.
pub(crate) fn parse_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty()
        || s.starts_with(|c: char| c.is_ascii_whitespace())
        || s.ends_with(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// Redis 7.0's `d2string`: integral values within ±2^62 print as integers
/// (so -0 prints `0` and 1e17 prints all its digits), the rest as `%.17g`.
pub(crate) fn d2string(s: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-LIMIT..=LIMIT).contains(&s) && s.fract() == 0.0 {
        // In range and integral: the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        return (s as i64).to_string();
    }
    cairn_resp::format_double(s)
}

/// Redis' HINCRBYFLOAT (and INCRBYFLOAT) arithmetic, emulated exactly:
/// `strtold` into an x87 80-bit `long double` (64-bit significand, round
/// to nearest even), one addition in that precision, and `%.17Lf` with
/// trailing zeros trimmed (`ld2string(LD_STR_HUMAN)`). Plain `f64` gives
/// different text for everyday inputs (0.1 + 0.2 is "0.3" in Redis and
/// "0.30000000000000004" in f64), so the arithmetic is done here on exact
/// big integers instead. Hexadecimal floats (`0x1p3`), which `strtold`
/// also reads, are refused.
pub(crate) mod ld {
    use std::cmp::Ordering;

    /// A finite long double: `(-1)^neg * mant * 2^exp`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Ld {
        neg: bool,
        mant: u64,
        exp: i32,
    }

    /// A parsed number: finite or an infinity (NaN is never accepted).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Parsed {
        Finite(Ld),
        Inf,
    }

    impl Ld {
        /// Positive zero.
        pub(crate) const ZERO: Ld = Ld {
            neg: false,
            mant: 0,
            exp: 0,
        };
    }

    /// Exponent of the smallest subnormal (2^-16445).
    const MIN_EXP: i64 = -16445;
    /// Largest exponent of a finite value with a 64-bit significand.
    const MAX_EXP: i64 = 16320;
    /// Redis' `MAX_LONG_DOUBLE_CHARS`: longer inputs are refused.
    const MAX_CHARS: usize = 5 * 1024;

    /// Little-endian base-2^32 limbs, no trailing zero limbs.
    type Big = Vec<u32>;

    fn trim(a: &mut Big) {
        while a.last() == Some(&0) {
            a.pop();
        }
    }

    fn from_u64(x: u64) -> Big {
        let mut a = vec![x as u32, (x >> 32) as u32];
        trim(&mut a);
        a
    }

    fn mul_small_add(a: &mut Big, m: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in a.iter_mut() {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            a.push(carry as u32);
        }
    }

    fn bitlen(a: &Big) -> u64 {
        match a.last() {
            None => 0,
            Some(top) => (a.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros()),
        }
    }

    fn bit(a: &Big, i: u64) -> bool {
        a.get((i / 32) as usize)
            .is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any bit below `i` is set.
    fn any_below(a: &Big, i: u64) -> bool {
        let whole = (i / 32) as usize;
        if a.iter().take(whole).any(|&l| l != 0) {
            return true;
        }
        let part = i % 32;
        part > 0 && a.get(whole).is_some_and(|l| l & ((1u32 << part) - 1) != 0)
    }

    fn shl(a: &Big, n: u64) -> Big {
        if a.is_empty() {
            return Big::new();
        }
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        let mut out = vec![0u32; limbs];
        if bits == 0 {
            out.extend_from_slice(a);
        } else {
            let mut carry = 0u32;
            for &l in a {
                out.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
            out.push(carry);
        }
        trim(&mut out);
        out
    }

    /// The low 128 bits of `a >> n`.
    fn shr_u128(a: &Big, n: u64) -> u128 {
        (0..128u64)
            .filter(|&i| bit(a, n + i))
            .fold(0u128, |acc, i| acc | (1u128 << i))
    }

    fn cmp(a: &Big, b: &Big) -> Ordering {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn add(a: &Big, b: &Big) -> Big {
        let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
        let mut carry = 0u64;
        for i in 0..a.len().max(b.len()) {
            let v = u64::from(a.get(i).copied().unwrap_or(0))
                + u64::from(b.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        trim(&mut out);
        out
    }

    /// `a - b` for `a >= b`.
    fn sub(a: &Big, b: &Big) -> Big {
        let mut out = Vec::with_capacity(a.len());
        let mut borrow = 0i64;
        for (i, &l) in a.iter().enumerate() {
            let mut v = i64::from(l) - i64::from(b.get(i).copied().unwrap_or(0)) - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        trim(&mut out);
        out
    }

    fn pow10(n: u64) -> Big {
        let mut a = vec![1u32];
        let mut left = n;
        while left > 0 {
            let step = left.min(9);
            mul_small_add(&mut a, 10u32.pow(step as u32), 0);
            left -= step;
        }
        a
    }

    /// `num / den` for a quotient below 2^127, and whether a remainder
    /// was left.
    fn div(num: &Big, den: &Big) -> (u128, bool) {
        let (nl, dl) = (bitlen(num), bitlen(den));
        if nl < dl {
            return (0, !num.is_empty());
        }
        let qbits = (nl - dl + 1).min(127);
        let mut rem = num.clone();
        let mut q = 0u128;
        for i in (0..qbits).rev() {
            let d = shl(den, i);
            if cmp(&rem, &d) != Ordering::Less {
                rem = sub(&rem, &d);
                q |= 1 << i;
            }
        }
        (q, !rem.is_empty())
    }

    /// Rounds `n * 2^e` (plus a nonzero tail below it when `sticky`) to a
    /// long double; `None` on overflow.
    fn round(neg: bool, n: &Big, e: i64, sticky: bool) -> Option<Ld> {
        let len = bitlen(n) as i64;
        let s = (len - 64).max(MIN_EXP - e);
        let (mut q, exp) = if s <= 0 {
            // Exact; normalized (top bit set) unless that would go below
            // the subnormal exponent.
            (shr_u128(n, 0) << s.unsigned_abs(), e + s)
        } else {
            let s_u = s as u64;
            let mut q = shr_u128(n, s_u);
            let half = bit(n, s_u - 1);
            let rest = sticky || any_below(n, s_u - 1);
            if half && (rest || q & 1 == 1) {
                q += 1;
            }
            (q, e + s)
        };
        let mut exp = exp;
        if q >> 64 != 0 {
            q >>= 1;
            exp += 1;
        }
        if exp > MAX_EXP && q != 0 {
            return None;
        }
        if q == 0 {
            exp = 0;
        }
        Some(Ld {
            neg,
            mant: q as u64,
            exp: exp as i32,
        })
    }

    /// The signed decimal exponent after `e`/`p`, as `strtold` reads it;
    /// saturated far beyond any finite range, so it cannot overflow.
    fn exponent(rest: &[u8]) -> Option<i64> {
        let (neg, digits) = match rest.split_first() {
            Some((b'-', r)) => (true, r),
            Some((b'+', r)) => (false, r),
            _ => (false, rest),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ex: i64 = 0;
        for &d in digits {
            ex = (ex * 10 + i64::from(d - b'0')).min(1 << 40);
        }
        Some(if neg { -ex } else { ex })
    }

    /// Parses as Redis' `string2ld`: `strtold` on the whole input, no
    /// leading space, no NaN, overflow or underflow to zero refused.
    pub(crate) fn parse(raw: &[u8]) -> Option<Parsed> {
        if raw.is_empty() || raw.len() >= MAX_CHARS {
            return None;
        }
        let (neg, body) = match raw.split_first() {
            Some((b'-', r)) => (true, r),
            Some((b'+', r)) => (false, r),
            _ => (false, raw),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Parsed::Inf);
        }
        if let Some(hex) = body
            .strip_prefix(b"0x")
            .or_else(|| body.strip_prefix(b"0X"))
            && hex
                .first()
                .is_some_and(|c| c.is_ascii_hexdigit() || *c == b'.')
        {
            return parse_hex(neg, hex);
        }
        let mut digits = Big::new();
        let mut nd = 0u64; // significant digits taken into `digits`
        let mut scale = 0i64; // decimal exponent adjustment
        let mut seen = false;
        let mut i = 0;
        let mut dot = false;
        while let Some(&c) = body.get(i) {
            match c {
                b'0'..=b'9' => {
                    seen = true;
                    if nd > 0 || c != b'0' {
                        mul_small_add(&mut digits, 10, u32::from(c - b'0'));
                        nd += 1;
                    }
                    if dot {
                        scale -= 1;
                    }
                }
                b'.' if !dot => dot = true,
                _ => break,
            }
            i += 1;
        }
        if !seen {
            return None;
        }
        if let Some(&c) = body.get(i)
            && (c == b'e' || c == b'E')
        {
            scale += exponent(body.get(i + 1..).unwrap_or_default())?;
            i = body.len();
        }
        if i != body.len() {
            return None;
        }
        if digits.is_empty() {
            return Some(Parsed::Finite(Ld {
                neg,
                mant: 0,
                exp: 0,
            }));
        }
        // Magnitude is in [10^(top-1), 10^top): decide far overflow or
        // underflow before building huge numbers.
        let top = scale + nd as i64;
        if top > 4934 {
            return None;
        }
        if top < -4952 {
            return None;
        }
        let ld = if scale >= 0 {
            round(neg, &shl_dec(&digits, scale as u64), 0, false)
        } else {
            // Scale by 2^t so the quotient has 66-68 bits: enough for a
            // 64-bit significand plus guard and sticky bits, and within
            // `div`'s 127-bit limit. A negative t (many integer digits
            // before a fraction) shifts the divisor instead.
            let den = pow10(scale.unsigned_abs());
            let t = 66 + bitlen(&den) as i64 - bitlen(&digits) as i64 + 1;
            let (q, rem) = if t >= 0 {
                div(&shl(&digits, t as u64), &den)
            } else {
                div(&digits, &shl(&den, t.unsigned_abs()))
            };
            round(neg, &from_u128(q), -t, rem)
        }?;
        // strtold reports underflow to zero as an error; string2ld refuses it.
        (ld.mant != 0).then_some(Parsed::Finite(ld))
    }

    /// The part after `0x` of a hexadecimal float: hex digits with an
    /// optional point, then an optional binary exponent `p[+-]N`.
    fn parse_hex(neg: bool, hex: &[u8]) -> Option<Parsed> {
        let mut digits = Big::new();
        let mut e: i64 = 0;
        let (mut seen, mut dot, mut i) = (false, false, 0);
        while let Some(&c) = hex.get(i) {
            if let Some(d) = (c as char).to_digit(16) {
                seen = true;
                mul_small_add(&mut digits, 16, d);
                if dot {
                    e -= 4;
                }
                // Bound the work: beyond this many digits the value is
                // out of range or the tail only rounds.
                if bitlen(&digits) > 40_000 {
                    return None;
                }
            } else if c == b'.' && !dot {
                dot = true;
            } else {
                break;
            }
            i += 1;
        }
        if !seen {
            return None;
        }
        if let Some(&c) = hex.get(i)
            && (c == b'p' || c == b'P')
        {
            e += exponent(hex.get(i + 1..).unwrap_or_default())?;
            i = hex.len();
        }
        if i != hex.len() {
            return None;
        }
        if digits.is_empty() {
            return Some(Parsed::Finite(Ld {
                neg,
                mant: 0,
                exp: 0,
            }));
        }
        if e + (bitlen(&digits) as i64) < MIN_EXP - 1 {
            return None;
        }
        let ld = round(neg, &digits, e, false)?;
        (ld.mant != 0).then_some(Parsed::Finite(ld))
    }

    fn shl_dec(a: &Big, tens: u64) -> Big {
        let mut out = a.clone();
        let p = pow10(tens);
        out = mul(&out, &p);
        out
    }

    fn mul(a: &Big, b: &Big) -> Big {
        let mut out = vec![0u32; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &y) in b.iter().enumerate() {
                let idx = i + j;
                let cur = out.get(idx).copied().unwrap_or(0);
                let v = u64::from(x) * u64::from(y) + u64::from(cur) + carry;
                if let Some(slot) = out.get_mut(idx) {
                    *slot = v as u32;
                }
                carry = v >> 32;
            }
            let mut idx = i + b.len();
            while carry > 0 {
                if let Some(slot) = out.get_mut(idx) {
                    let v = u64::from(*slot) + carry;
                    *slot = v as u32;
                    carry = v >> 32;
                } else {
                    break;
                }
                idx += 1;
            }
        }
        trim(&mut out);
        out
    }

    fn from_u128(x: u128) -> Big {
        let mut a: Big = (0..4).map(|i| (x >> (32 * i)) as u32).collect();
        trim(&mut a);
        a
    }

    /// `a + b` in long double precision; `None` when it overflows.
    pub(crate) fn sum(a: Ld, b: Ld) -> Option<Ld> {
        let e = i64::from(a.exp.min(b.exp));
        let ma = shl(&from_u64(a.mant), (i64::from(a.exp) - e) as u64);
        let mb = shl(&from_u64(b.mant), (i64::from(b.exp) - e) as u64);
        if a.neg == b.neg {
            return round(a.neg, &add(&ma, &mb), e, false);
        }
        match cmp(&ma, &mb) {
            // x + (-x) is +0 when rounding to nearest.
            Ordering::Equal => Some(Ld {
                neg: false,
                mant: 0,
                exp: 0,
            }),
            Ordering::Greater => round(a.neg, &sub(&ma, &mb), e, false),
            Ordering::Less => round(b.neg, &sub(&mb, &ma), e, false),
        }
    }

    /// `%.17Lf` with trailing zeros (and a trailing dot) removed, "-0"
    /// printed as "0".
    pub(crate) fn format(v: Ld) -> String {
        // round(|v| * 10^17), ties to even, as glibc's printf does.
        let scaled = mul(&from_u64(v.mant), &pow10(17));
        let n = if v.exp >= 0 {
            shl(&scaled, v.exp.unsigned_abs().into())
        } else {
            let s = u64::from(v.exp.unsigned_abs());
            let mut q = shr_big(&scaled, s);
            let half = bit(&scaled, s - 1);
            if half && (any_below(&scaled, s - 1) || q.first().is_some_and(|l| l & 1 == 1)) {
                q = add(&q, &vec![1]);
            }
            q
        };
        let mut digits = to_decimal(&n);
        if digits.len() < 18 {
            digits = format!("{}{digits}", "0".repeat(18 - digits.len()));
        }
        let (int_part, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if v.neg {
            out.push('-');
        }
        out.push_str(int_part);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" { "0".to_string() } else { out }
    }

    fn shr_big(a: &Big, n: u64) -> Big {
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        let src = a.get(limbs..).unwrap_or_default();
        let mut out: Big = if bits == 0 {
            src.to_vec()
        } else {
            src.iter()
                .enumerate()
                .map(|(i, &l)| (l >> bits) | src.get(i + 1).map_or(0, |&h| h << (32 - bits)))
                .collect()
        };
        trim(&mut out);
        out
    }

    fn to_decimal(a: &Big) -> String {
        if a.is_empty() {
            return "0".to_string();
        }
        let mut n = a.clone();
        let mut chunks = Vec::new();
        while !n.is_empty() {
            let mut rem = 0u64;
            for limb in n.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            trim(&mut n);
            chunks.push(rem as u32);
        }
        let mut s = String::with_capacity(chunks.len() * 9);
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&c.to_string());
            } else {
                s.push_str(&format!("{c:09}"));
            }
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strict_scores_follow_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"1e-310"), Some(1e-310));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"abc",
            b"1e",
            b"--1",
            b"0x",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn d2string_matches_redis_listpack_scores() {
        assert_eq!(d2string(-0.0), "0");
        assert_eq!(d2string(1.5), "1.5");
        assert_eq!(d2string(0.1), "0.10000000000000001");
        assert_eq!(d2string(1e17), "100000000000000000");
        assert_eq!(d2string(123456789012345678.0), "123456789012345680");
        assert_eq!(d2string(1e18), "1000000000000000000");
        assert_eq!(d2string(1e19), "1e+19");
        assert_eq!(d2string(f64::NEG_INFINITY), "-inf");
    }

    /// HINCRBYFLOAT's arithmetic against replies of redis-server 7.0.15
    /// (field value, increment, reply).
    #[test]
    fn long_double_matches_redis() {
        let cases = [
            ("0", "0.1", "0.1"),
            ("0.1", "0.2", "0.3"),
            ("3000", "0.1", "3000.10000000000000009"),
            ("1.5", "0.1", "1.6"),
            ("9223372036854775807", "1", "9223372036854775808"),
            (
                "0",
                "1e308",
                "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048",
            ),
            (
                "1e308",
                "1e308",
                "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096",
            ),
            ("0", "5.0e-7", "0.0000005"),
            ("0", "1.23456789012345678", "1.23456789012345678"),
            ("10.5", "-10.5", "0"),
            ("-0", "-0", "0"),
            ("0", "-0.0", "0"),
            (
                "1e4932",
                "1e4932",
                "ERR increment would produce NaN or Infinity",
            ),
            ("1", "1e-30", "1"),
            ("0", "3.6e-4951", "0"),
            ("0", "1e-4960", "ERR value is not a valid float"),
            ("0", "1e-20", "0"),
            ("0", "123456789.987654321", "123456789.98765432099753525"),
            ("2.5", "-7.25", "-4.75"),
            ("0", "1.", "1"),
            ("0", ".5", "0.5"),
            ("0", "+3", "3"),
            ("0", "0x10", "16"),
            ("0", " 1", "ERR value is not a valid float"),
            ("0", "1 ", "ERR value is not a valid float"),
            ("0", "1e", "ERR value is not a valid float"),
            ("0", "inf", "ERR value is NaN or Infinity"),
            ("0", "nan", "ERR value is not a valid float"),
            ("0", "1e5000", "ERR value is not a valid float"),
            ("100", "-1e-17", "99.99999999999999999"),
            ("0", "0.000000000000000005", "0"),
            ("0", "0.000000000000000015", "0.00000000000000002"),
            ("0", "0.000000000000000025", "0.00000000000000002"),
            ("-320874", "-26.86", "-320900.86000000000001364"),
            ("-0.818574", "29e10", "289999999999.18142598867416382"),
            ("8954.179", "-90.68", "8863.49900000000000055"),
            ("-7644.155", "-79.39", "-7723.54499999999999993"),
            ("0.2380192", "41e-1", "4.3380192"),
            ("-936.312", "-0.39950176290874939", "-936.71150176290874939"),
            ("-0.8535983", "-67.01", "-67.8635983"),
            (
                "1.1615150531e+29",
                "-0.29964322456166337",
                "116151505310000000000206045184",
            ),
            ("-855794", "83e6", "82144206"),
            (
                "4.3325558880e+29",
                "-95.49",
                "433255588800000000007667187712",
            ),
            ("-8820.912", "-20.42", "-8841.33199999999999985"),
            ("-0.7261477", "54e-8", "-0.72614716"),
            ("-2391.174", "63e23", "6300000000000000000000000"),
            (
                "-9.9181279323e+29",
                "17e14",
                "-991812793229998299984206757888",
            ),
            ("-0.8920142", "-0.21175996804927166", "-1.10377416804927166"),
            ("-869457", "-31.99", "-869488.99000000000000909"),
            ("-7970.713", "33e-8", "-7970.71299966999999986"),
            ("-0.02386388", "19e-24", "-0.02386388"),
            ("-281441", "47e-21", "-281441"),
            ("139115", "39.24", "139154.23999999999999488"),
            ("6.5184794986e+28", "27.29", "65184794986000000000748158976"),
            (
                "-5212.247",
                "-0.28887491329008363",
                "-5212.5358749132900833",
            ),
            ("0.9130302", "61.71", "62.6230302"),
            ("-0.324525", "1e0", "0.675475"),
            ("0.3211713", "56.46", "56.7811713"),
        ];
        for (cur, inc, want) in cases {
            let got = (|| {
                let Some(ld::Parsed::Finite(d)) = ld::parse(inc.as_bytes()) else {
                    return match ld::parse(inc.as_bytes()) {
                        Some(_) => "ERR value is NaN or Infinity".to_string(),
                        None => "ERR value is not a valid float".to_string(),
                    };
                };
                let Some(ld::Parsed::Finite(c)) = ld::parse(cur.as_bytes()) else {
                    return "ERR hash value is not a float".to_string();
                };
                match ld::sum(c, d) {
                    Some(v) => ld::format(v),
                    None => "ERR increment would produce NaN or Infinity".to_string(),
                }
            })();
            assert_eq!(got, want, "{cur} + {inc}");
        }
    }

    /// `string2ll` as redis-server 7.0.15 reads integer arguments (INCRBY):
    /// canonical decimal only.
    #[test]
    fn string2ll_matches_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-0",
            b"+1",
            b"01",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1e3",
            b"0x10",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }

    /// The `strtold`-based float arguments (INCRBYFLOAT's increment checks
    /// aside): no surrounding spaces, no NaN, infinities by name.
    #[test]
    fn float_arguments_parse_as_redis() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"abc"] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
    }
}
