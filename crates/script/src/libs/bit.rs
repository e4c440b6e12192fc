//! LuaBitOp 1.0.2 (`bit.*`), as Redis bundles it.

use mlua::{Lua, MultiValue, Table, Value};

use super::{check_number, fail, ok};

/// LuaBitOp's `barg`: the number's low 32 bits after adding 2^52 + 2^51,
/// which rounds to nearest rather than truncating.
fn to_bits(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

fn num(b: u32) -> Value {
    Value::Number(f64::from(b as i32))
}

type Op = fn(&Lua, &MultiValue, &str) -> Result<Value, String>;

fn arg(lua: &Lua, a: &MultiValue, i: usize, f: &str) -> Result<u32, String> {
    check_number(lua, a, i, f).map(to_bits)
}

fn fold(lua: &Lua, a: &MultiValue, f: &str, op: fn(u32, u32) -> u32) -> Result<Value, String> {
    let mut b = arg(lua, a, 0, f)?;
    for i in 1..a.len() {
        b = op(b, arg(lua, a, i, f)?);
    }
    Ok(num(b))
}

fn shift(lua: &Lua, a: &MultiValue, f: &str, op: fn(u32, u32) -> u32) -> Result<Value, String> {
    let b = arg(lua, a, 0, f)?;
    let n = arg(lua, a, 1, f)? & 31;
    Ok(num(op(b, n)))
}

const OPS: [(&str, Op); 12] = [
    ("tobit", |l, a, f| arg(l, a, 0, f).map(num)),
    ("bnot", |l, a, f| arg(l, a, 0, f).map(|b| num(!b))),
    ("band", |l, a, f| fold(l, a, f, |x, y| x & y)),
    ("bor", |l, a, f| fold(l, a, f, |x, y| x | y)),
    ("bxor", |l, a, f| fold(l, a, f, |x, y| x ^ y)),
    ("lshift", |l, a, f| shift(l, a, f, |b, n| b << n)),
    ("rshift", |l, a, f| shift(l, a, f, |b, n| b >> n)),
    ("arshift", |l, a, f| {
        shift(l, a, f, |b, n| ((b as i32) >> n) as u32)
    }),
    ("rol", |l, a, f| shift(l, a, f, u32::rotate_left)),
    ("ror", |l, a, f| shift(l, a, f, u32::rotate_right)),
    ("bswap", |l, a, f| {
        arg(l, a, 0, f).map(|b| num(b.swap_bytes()))
    }),
    ("tohex", tohex),
];

fn tohex(lua: &Lua, a: &MultiValue, f: &str) -> Result<Value, String> {
    let mut b = arg(lua, a, 0, f)?;
    let mut n: i32 = if a.get(1).is_none_or(Value::is_nil) {
        8
    } else {
        arg(lua, a, 1, f)? as i32
    };
    let digits: &[u8; 16] = if n < 0 {
        n = n.saturating_neg();
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let n = n.min(8) as usize;
    let mut buf = vec![b'0'; n];
    for i in (0..n).rev() {
        buf[i] = digits[(b & 15) as usize];
        b >>= 4;
    }
    lua.create_string(&buf)
        .map(Value::String)
        .map_err(|e| e.to_string())
}

/// The `bit` table.
pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (name, op) in OPS {
        let f = lua.create_function(move |lua, args: MultiValue| match op(lua, &args, name) {
            Ok(v) => Ok(ok([v])),
            Err(m) => fail(lua, &m),
        })?;
        t.raw_set(name, f)?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::to_bits;

    #[test]
    fn rounding_as_luabitop() {
        assert_eq!(to_bits(1.0), 1);
        assert_eq!(to_bits(-1.0), u32::MAX);
        assert_eq!(to_bits(4_294_967_296.0), 0);
        assert_eq!(to_bits(2.5), 2);
        assert_eq!(to_bits(3.5), 4);
    }
}
