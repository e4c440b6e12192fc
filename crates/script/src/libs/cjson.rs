//! Lua CJSON 2.1.0 (`cjson.encode`, `cjson.decode`, `cjson.null`) with
//! Redis' defaults: an empty table encodes as `{}`, numbers as `%.14g`,
//! sparse arrays over ratio 2 (beyond 10 items) are refused, nesting
//! limited to 1000.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::{check_bytes, fail, ok};

const MAX_DEPTH: usize = 1000;

/// `cjson.null`: the NULL light userdata.
pub(crate) fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The `cjson` table.
pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)");
            }
            let mut out = Vec::new();
            match encode(&args[0], 1, &mut out) {
                Ok(()) => Ok(ok([Value::String(lua.create_string(&out)?)])),
                Err(m) => fail(lua, &m),
            }
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)");
            }
            let text = match check_bytes(&args, 0, "decode") {
                Ok(t) => t,
                Err(m) => return fail(lua, &m),
            };
            let mut p = Parser {
                lua,
                s: &text,
                pos: 0,
                depth: 0,
                err_at: None,
            };
            match p.document() {
                Ok(v) => Ok(ok([v])),
                Err(m) => fail(lua, &m),
            }
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        other => crate::vm::type_name(other),
    }
}

fn exception(v: &Value, reason: &str) -> String {
    format!("Cannot serialise {}: {reason}", type_of(v))
}

fn encode_number(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if n.is_nan() || n.is_infinite() {
        return Err(exception(&Value::Number(n), "must not be NaN or Inf"));
    }
    out.extend_from_slice(crate::num::fmt_g(n, 14).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// lua_cjson's `lua_array_length`: `Some(max)` for an array (all keys
/// positive integers, not too sparse), `None` for an object.
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let mut max = 0f64;
    let mut items = 0f64;
    for pair in t.clone().pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { return Ok(None) };
        let k = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if k.floor() == k && k >= 1.0 {
            if k > max {
                max = k;
            }
            items += 1.0;
        } else {
            return Ok(None);
        }
    }
    if max > items * 2.0 && max > 10.0 {
        return Err(exception(
            &Value::Table(t.clone()),
            "excessively sparse array",
        ));
    }
    Ok(Some(max as usize))
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Integer(i) => encode_number(*i as f64, out)?,
        Value::Number(n) => encode_number(*n, out)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            if depth > MAX_DEPTH {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(t)? {
                Some(n) if n > 0 => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                        encode(&item, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let Ok((k, item)) = pair else { continue };
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Integer(i) => {
                                out.push(b'"');
                                encode_number(*i as f64, out)?;
                                out.push(b'"');
                            }
                            Value::Number(n) => {
                                out.push(b'"');
                                encode_number(*n, out)?;
                                out.push(b'"');
                            }
                            other => {
                                return Err(exception(
                                    other,
                                    "table key must be a number or string",
                                ));
                            }
                        }
                        out.push(b':');
                        encode(&item, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(exception(other, "type not supported")),
    }
    Ok(())
}

struct Parser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
    /// Where a string token's error was found (lua_cjson reports it there).
    err_at: Option<usize>,
}

/// A token as lua_cjson names it in its errors.
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(m) => m,
        }
    }
}

impl Parser<'_> {
    fn document(&mut self) -> Result<Value, String> {
        let (tok, at) = self.next();
        let v = self.value(tok, at)?;
        let (tok, at) = self.next();
        if !matches!(tok, Tok::End) {
            return Err(expected("the end", &tok, at));
        }
        Ok(v)
    }

    fn lua_err(e: mlua::Error) -> String {
        e.to_string()
    }

    fn value(&mut self, tok: Tok, at: usize) -> Result<Value, String> {
        Ok(match tok {
            Tok::Str(s) => Value::String(self.lua.create_string(&s).map_err(Self::lua_err)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin => self.object(at)?,
            Tok::ArrBegin => self.array(at)?,
            other => return Err(expected("value", &other, at)),
        })
    }

    fn descend(&mut self, at: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                at + 1
            ));
        }
        Ok(())
    }

    fn object(&mut self, at: usize) -> Result<Value, String> {
        self.descend(at)?;
        let t = self.lua.create_table().map_err(Self::lua_err)?;
        let (mut tok, mut at) = self.next();
        if matches!(tok, Tok::ObjEnd) {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            let Tok::Str(key) = tok else {
                return Err(expected("object key string", &tok, at));
            };
            let (c, cat) = self.next();
            if !matches!(c, Tok::Colon) {
                return Err(expected("colon", &c, cat));
            }
            let (vt, vat) = self.next();
            let v = self.value(vt, vat)?;
            t.raw_set(self.lua.create_string(&key).map_err(Self::lua_err)?, v)
                .map_err(Self::lua_err)?;
            let (sep, sat) = self.next();
            match sep {
                Tok::ObjEnd => break,
                Tok::Comma => {}
                other => return Err(expected("comma or object end", &other, sat)),
            }
            (tok, at) = self.next();
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self, at: usize) -> Result<Value, String> {
        self.descend(at)?;
        let t = self.lua.create_table().map_err(Self::lua_err)?;
        let (mut tok, mut at) = self.next();
        if matches!(tok, Tok::ArrEnd) {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value(tok, at)?;
            t.raw_set(i, v).map_err(Self::lua_err)?;
            i += 1;
            let (sep, sat) = self.next();
            match sep {
                Tok::ArrEnd => break,
                Tok::Comma => {}
                other => return Err(expected("comma or array end", &other, sat)),
            }
            (tok, at) = self.next();
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    /// The next token and the index where it starts.
    fn next(&mut self) -> (Tok, usize) {
        while let Some(&c) = self.s.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let at = self.pos;
        let Some(&c) = self.s.get(self.pos) else {
            return (Tok::End, at);
        };
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return (t, at);
        }
        if c == b'"' {
            let t = self.string();
            let at = if matches!(t, Tok::Error(_)) {
                self.err_at.take().unwrap_or(at)
            } else {
                at
            };
            return (t, at);
        }
        if c == b'-'
            || c.is_ascii_digit()
            || c == b'+'
            || c == b'.'
            || c == b'i'
            || c == b'I'
            || c == b'n'
            || c == b'N'
        {
            for (word, tok) in [(&b"null"[..], Tok::Null)] {
                if self.s[self.pos..].starts_with(word) {
                    self.pos += word.len();
                    return (tok, at);
                }
            }
            return (self.number(), at);
        }
        for (word, tok) in [
            (&b"true"[..], Tok::Bool(true)),
            (&b"false"[..], Tok::Bool(false)),
        ] {
            if self.s[self.pos..].starts_with(word) {
                self.pos += word.len();
                return (tok, at);
            }
        }
        (Tok::Error("invalid token"), at)
    }

    fn number(&mut self) -> Tok {
        let start = self.pos;
        let rest = &self.s[start..];
        let len = strtod_len(rest);
        if len == 0 {
            return Tok::Error("invalid number");
        }
        let text = String::from_utf8_lossy(&rest[..len]).to_ascii_lowercase();
        let v = match text.trim_start_matches(['+', '-']) {
            "inf" | "infinity" => f64::INFINITY,
            "nan" => f64::NAN,
            body => {
                if let Some(h) = body.strip_prefix("0x") {
                    u64::from_str_radix(h, 16)
                        .map(|v| v as f64)
                        .unwrap_or(f64::NAN)
                } else {
                    match body.parse::<f64>() {
                        Ok(v) => v,
                        Err(_) => return Tok::Error("invalid number"),
                    }
                }
            }
        };
        let v = if text.starts_with('-') { -v } else { v };
        self.pos += len;
        Tok::Num(v)
    }

    fn string(&mut self) -> Tok {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                self.err_at = Some(self.pos);
                return Tok::Error("unexpected end of string");
            };
            self.pos += 1;
            match c {
                b'"' => return Tok::Str(out),
                b'\\' => {
                    self.err_at = Some(self.pos - 1);
                    let Some(&e) = self.s.get(self.pos) else {
                        return Tok::Error("unexpected end of string");
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(cp) = self.unicode() else {
                                return Tok::Error("invalid unicode escape code");
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(cp.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Tok::Error("invalid escape code"),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn unicode(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.s.get(self.pos..self.pos + 2)? != b"\\u" {
                return None;
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        char::from_u32(hi)
    }
}

/// How many bytes `strtod` would read.
fn strtod_len(s: &[u8]) -> usize {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let lower: Vec<u8> = s[i..].iter().take(8).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"infinity") {
        return i + 8;
    }
    if lower.starts_with(b"inf") || lower.starts_with(b"nan") {
        return i + 3;
    }
    if lower.starts_with(b"0x") {
        let mut j = i + 2;
        while s.get(j).is_some_and(u8::is_ascii_hexdigit) {
            j += 1;
        }
        return if j > i + 2 { j } else { i + 1 };
    }
    let digits_from = |mut j: usize| {
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let int_end = digits_from(i);
    let mut j = int_end;
    let mut any = int_end > i;
    if s.get(j) == Some(&b'.') {
        let frac_end = digits_from(j + 1);
        any |= frac_end > j + 1;
        j = frac_end;
    }
    if !any {
        return 0;
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(s.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let e_end = digits_from(k);
        if e_end > k {
            j = e_end;
        }
    }
    j
}

fn expected(what: &str, found: &Tok, at: usize) -> String {
    format!(
        "Expected {what} but found {} at character {}",
        found.name(),
        at + 1
    )
}
