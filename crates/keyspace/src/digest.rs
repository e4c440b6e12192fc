//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`, computed as Redis 7.0's
//! `debug.c` does, so the same dataset has the same digest in both.
//!
//! Each key's digest mixes (SHA1 of the running digest xored with SHA1 of
//! the data) its name, its type as a big-endian u32, then its content:
//! a string's bytes; a list's elements in order; a set's elements xored
//! (order-free); each hash field's digest (field then value mixed into a
//! zero digest) xored; each sorted-set member's digest (member then score
//! as `%.17g`) xored; and `!!expire!!` xored when it has a TTL. Key
//! digests are xored per database, after mixing in the database number.
//! Streams: each live entry's ID as `<ms>.<seq>`, then its fields and
//! values, mixed in ID order (Redis' `OBJ_STREAM` case).

use crate::value::Value;

type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    let mut h = sha1_smol::Sha1::new();
    h.update(data);
    h.digest().bytes()
}

/// Redis' `xorDigest`.
fn xor(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(data)) {
        *a ^= b;
    }
}

/// Redis' `mixDigest`.
fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = sha1(d);
}

/// Redis' object type codes.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) | Value::Int(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Redis' `%.17g`.
fn g17(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = x.abs().log10().floor() as i32;
    // %g: scientific when the exponent is < -4 or >= the precision.
    let sci = format!("{x:.16e}");
    let (mant, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..17).contains(&e) {
        let mant = trim(mant);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", e.abs())
    } else {
        let decimals = usize::try_from(16 - e).unwrap_or(0);
        trim(&format!("{x:.decimals$}")).to_owned()
    }
}

fn trim(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Redis' `xorObjectDigest`: the value's part of a key's digest.
pub(crate) fn object(d: &mut Digest, v: &Value, has_ttl: bool) {
    mix(d, &type_code(v).to_be_bytes());
    match v {
        Value::Str(b) => mix(d, b),
        Value::Int(n) => mix(d, n.to_string().as_bytes()),
        Value::List(l) => {
            for e in l.iter() {
                mix(d, &e);
            }
        }
        Value::Set(s) => {
            for e in s.iter() {
                xor(d, &e);
            }
        }
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut ele = [0u8; 20];
                mix(&mut ele, &m);
                mix(&mut ele, g17(score).as_bytes());
                xor(d, &ele);
            }
        }
        Value::Hash(h) => {
            for (f, val) in h.iter() {
                let mut ele = [0u8; 20];
                mix(&mut ele, &f);
                mix(&mut ele, &val);
                xor(d, &ele);
            }
        }
        // Each live entry in ID order: its ID as `<ms>.<seq>`, then each
        // field and value (groups and metadata are not part of it).
        Value::Stream(st) => {
            st.range(
                crate::stream::StreamId::MIN,
                crate::stream::StreamId::MAX,
                false,
                |e| {
                    mix(d, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                    for (f, v) in &e.fields {
                        mix(d, f);
                        mix(d, v);
                    }
                    true
                },
            );
        }
    }
    if has_ttl {
        xor(d, b"!!expire!!");
    }
}

/// A key's digest (`DEBUG DIGEST-VALUE`: without the name).
pub(crate) fn value_digest(v: &Value, has_ttl: bool) -> Digest {
    let mut d = [0u8; 20];
    object(&mut d, v, has_ttl);
    d
}

/// Redis' `computeDatasetDigest` over `dbs`, each a list of (key, value,
/// has TTL); empty databases are skipped.
pub(crate) struct Dataset(Digest);

impl Dataset {
    pub(crate) fn new() -> Dataset {
        Dataset([0; 20])
    }

    /// Starts database `db` (call only for a non-empty one).
    pub(crate) fn db(&mut self, db: u32) {
        mix(&mut self.0, &db.to_be_bytes());
    }

    pub(crate) fn key(&mut self, key: &[u8], v: &Value, has_ttl: bool) {
        let mut d = [0u8; 20];
        mix(&mut d, key);
        object(&mut d, v, has_ttl);
        xor(&mut self.0, &d);
    }

    pub(crate) fn hex(&self) -> String {
        hex(&self.0)
    }
}

pub(crate) fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::g17;

    #[test]
    fn scores_print_as_percent_17g() {
        assert_eq!(g17(1.0), "1");
        assert_eq!(g17(1.5), "1.5");
        assert_eq!(g17(0.1), "0.10000000000000001");
        assert_eq!(g17(-2.25), "-2.25");
        assert_eq!(g17(1e20), "1e+20");
        assert_eq!(g17(123456789.0), "123456789");
        assert_eq!(g17(1e-5), "1.0000000000000001e-05");
        assert_eq!(g17(f64::INFINITY), "inf");
    }
}
