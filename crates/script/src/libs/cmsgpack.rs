//! lua-cmsgpack 0.4.0 (`cmsgpack.pack`, `unpack`, `unpack_one`,
//! `unpack_limit`) as Redis bundles it.

use mlua::{Lua, MultiValue, Table, Value};

use super::{check_bytes, fail, ok, raise};

/// Tables nested deeper than this are packed as nil.
const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return fail(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                );
            }
            let mut out = Vec::new();
            for v in &args {
                encode(v, 0, &mut out);
            }
            Ok(ok([Value::String(lua.create_string(&out)?)]))
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| unpack_full(lua, &args, 0, 0, true))?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = opt_int(lua, &args, 1)?;
            unpack_full(lua, &args, 1, offset, false)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = opt_int(lua, &args, 1)?;
            let offset = opt_int(lua, &args, 2)?;
            unpack_full(lua, &args, limit, offset, false)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

fn opt_int(lua: &Lua, args: &MultiValue, i: usize) -> mlua::Result<i64> {
    match args.get(i) {
        None | Some(Value::Nil) => Ok(0),
        Some(v) => match lua.coerce_number(v.clone())? {
            Some(n) => Ok(n as i64),
            None => Err(raise(
                lua,
                &format!(
                    "bad argument #{} to 'unpack' (number expected, got {})",
                    i + 1,
                    crate::vm::type_name(v)
                ),
            )),
        },
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    // IS_INT64_EQUIVALENT: finite and equal to its int64 truncation.
    let t = crate::num::c_ll(n);
    if n.is_finite() && t as f64 == n && !(t == i64::MIN && n != -9_223_372_036_854_775_808.0) {
        encode_int(t, out);
    } else {
        let f = n as f32;
        if f64::from(f) == n {
            out.push(0xca);
            out.extend_from_slice(&f.to_be_bytes());
        } else {
            out.push(0xcb);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(len: usize, fix: u8, n16: u8, n32: u8, out: &mut Vec<u8>) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(n16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(n32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// lua-cmsgpack's `table_is_an_array`: every key a positive integer and
/// as many keys as the largest.
fn array_len(t: &Table) -> Option<usize> {
    let mut count = 0usize;
    let mut max = 0i64;
    for pair in t.clone().pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { return None };
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return None,
        };
        let idx = n as i64;
        if idx as f64 != n || idx < 1 {
            return None;
        }
        count += 1;
        max = max.max(idx);
    }
    (max as usize == count).then_some(count)
}

fn encode(v: &Value, level: usize, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(*i, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => match array_len(t) {
            Some(n) => {
                header(n, 0x90, 0xdc, 0xdd, out);
                for i in 1..=n {
                    let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    encode(&item, level + 1, out);
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> =
                    t.clone().pairs::<Value, Value>().flatten().collect();
                header(pairs.len(), 0x80, 0xde, 0xdf, out);
                for (k, item) in &pairs {
                    encode(k, level + 1, out);
                    encode(item, level + 1, out);
                }
            }
        },
        _ => out.push(0xc0),
    }
}

enum DecodeError {
    Missing,
    Bad,
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Missing)?;
        let b = self.s.get(self.pos..end).ok_or(DecodeError::Missing)?;
        self.pos = end;
        Ok(b)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    fn string(&mut self, n: usize) -> Result<Value, DecodeError> {
        let b = self.take(n)?.to_vec();
        self.lua
            .create_string(&b)
            .map(Value::String)
            .map_err(|_| DecodeError::Bad)
    }

    fn array(&mut self, n: usize) -> Result<Value, DecodeError> {
        let t = self.lua.create_table().map_err(|_| DecodeError::Bad)?;
        for i in 1..=n {
            let v = self.value()?;
            t.raw_set(i, v).map_err(|_| DecodeError::Bad)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize) -> Result<Value, DecodeError> {
        let t = self.lua.create_table().map_err(|_| DecodeError::Bad)?;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            if !k.is_nil() {
                t.raw_set(k, v).map_err(|_| DecodeError::Bad)?;
            }
        }
        Ok(Value::Table(t))
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        let c = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match c {
            0x00..=0x7f => num(f64::from(c)),
            0x80..=0x8f => self.map(usize::from(c & 0x0f)),
            0x90..=0x9f => self.array(usize::from(c & 0x0f)),
            0xa0..=0xbf => self.string(usize::from(c & 0x1f)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                self.string(n)
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                self.string(n)
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                self.string(n)
            }
            0xca => num(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => num(f64::from_bits(self.be(8)?)),
            0xcc => num(self.be(1)? as f64),
            0xcd => num(self.be(2)? as f64),
            0xce => num(self.be(4)? as f64),
            0xcf => num(self.be(8)? as f64),
            0xd0 => num(f64::from(self.be(1)? as u8 as i8)),
            0xd1 => num(f64::from(self.be(2)? as u16 as i16)),
            0xd2 => num(f64::from(self.be(4)? as u32 as i32)),
            0xd3 => num(self.be(8)? as i64 as f64),
            0xdc => {
                let n = self.be(2)? as usize;
                self.array(n)
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.array(n)
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(n)
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(n)
            }
            0xe0..=0xff => num(f64::from(c as i8)),
            _ => Err(DecodeError::Bad),
        }
    }
}

/// lua-cmsgpack's `mp_unpack_full`.
fn unpack_full(
    lua: &Lua,
    args: &MultiValue,
    limit: i64,
    offset: i64,
    all: bool,
) -> mlua::Result<MultiValue> {
    if args.len() > 3 {
        return fail(
            lua,
            "bad argument #3 to 'unpack' (Too many arguments for MessagePack unpack.)",
        );
    }
    let s = match check_bytes(args, 0, "unpack") {
        Ok(s) => s,
        Err(m) => return fail(lua, &m),
    };
    let len = s.len() as i64;
    if offset < 0 || limit < 0 {
        return fail(
            lua,
            &format!("Invalid request to unpack with offset of {offset} and limit of {len}."),
        );
    }
    if offset > len {
        return fail(
            lua,
            &format!("Start offset {offset} greater than input length {len}."),
        );
    }
    let mut d = Decoder {
        lua,
        s: &s,
        pos: offset as usize,
    };
    let mut values = Vec::new();
    let mut count = 0;
    while d.pos < s.len() && (all || limit == 0 || count < limit) {
        match d.value() {
            Ok(v) => values.push(v),
            Err(DecodeError::Missing) => return fail(lua, "Missing bytes in input."),
            Err(DecodeError::Bad) => return fail(lua, "Bad data format in input."),
        }
        count += 1;
    }
    let mut out = MultiValue::new();
    if !all {
        let next = if d.pos >= s.len() { -1 } else { d.pos as i64 };
        out.push_back(Value::Number(next as f64));
    }
    out.extend(values);
    Ok(out)
}
