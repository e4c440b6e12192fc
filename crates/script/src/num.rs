//! Number formatting and conversions as the C code Redis embeds does them.

/// C's `printf("%.<prec>g", x)`, as Lua 5.1's `tostring` (`%.14g`) and
/// Redis' argument conversion (`%.17g`) write numbers.
pub(crate) fn fmt_g(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    let p = prec.max(1);
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // The exponent of x once rounded to p significant digits.
    let sci = format!("{:.*e}", p - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Lua 5.1's `tostring` of a number (`LUAI_NUMFFORMAT` `%.14g`).
pub(crate) fn lua_tostring(x: f64) -> String {
    fmt_g(x, 14)
}

/// C's `(long long)x` on x86-64: truncation, and the "integer indefinite"
/// value for NaN and out-of-range numbers.
pub(crate) fn c_ll(x: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(fmt_g(0.1, 17), "0.10000000000000001");
        assert_eq!(fmt_g(1e15, 14), "1e+15");
        assert_eq!(fmt_g(123456.0, 14), "123456");
        assert_eq!(fmt_g(0.0001, 14), "0.0001");
        assert_eq!(fmt_g(0.00001, 14), "1e-05");
        assert_eq!(fmt_g(3.25, 14), "3.25");
        assert_eq!(fmt_g(-2.5, 14), "-2.5");
        assert_eq!(fmt_g(1e100, 14), "1e+100");
        assert_eq!(fmt_g(99999999999999.0, 14), "99999999999999");
        assert_eq!(fmt_g(999999999999999.0, 14), "1e+15");
    }

    #[test]
    fn c_cast() {
        assert_eq!(c_ll(3.99), 3);
        assert_eq!(c_ll(-3.99), -3);
        assert_eq!(c_ll(1e20), i64::MIN);
        assert_eq!(c_ll(f64::NAN), i64::MIN);
    }
}
