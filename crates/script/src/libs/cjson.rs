//! Lua CJSON 2.1.0 (`cjson.encode`, `cjson.decode`, `cjson.null` and the
//! configuration functions) with Redis' defaults: an empty table encodes
//! as `{}`, numbers as `%.14g`, sparse arrays over ratio 2 (beyond 10
//! items) are refused, nesting limited to 1000. As in Redis, a setting
//! changed by a script stays for the Lua state's life (until SCRIPT
//! FLUSH; each library state of FUNCTION has its own).

use std::sync::Arc;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;

use super::{check_bytes, fail, ok};

/// lua_cjson's `json_config_t`.
#[derive(Clone, Copy, Debug)]
struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 refuses NaN and Inf, 1 writes them, 2 writes `null`.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    keep_buffer: i32,
    precision: i32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            keep_buffer: 1,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// `json_arg_init`: at most `max` arguments.
fn arg_init(lua: &Lua, args: &MultiValue, max: usize, fname: &str) -> mlua::Result<()> {
    if args.len() > max {
        return Err(super::raise(
            lua,
            &format!(
                "bad argument #{} to '{fname}' (found too many arguments)",
                max + 1
            ),
        ));
    }
    Ok(())
}

/// `json_integer_option`: sets `setting` from argument `i` when given
/// (range errors name argument #1, as lua_cjson does); its value.
fn integer_option(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    setting: &mut i32,
    (min, max): (i32, i32),
    fname: &str,
) -> mlua::Result<Value> {
    if !matches!(args.get(i), None | Some(Value::Nil)) {
        let n = super::check_number(lua, args, i, fname).map_err(|m| super::raise(lua, &m))?;
        // `luaL_checkinteger` into an `int`.
        let v = (n as i64) as i32;
        if v < min || v > max {
            return Err(super::raise(
                lua,
                &format!("bad argument #1 to '{fname}' (expected integer between {min} and {max})"),
            ));
        }
        *setting = v;
    }
    Ok(Value::Integer(i64::from(*setting)))
}

/// `json_enum_option` with `bool_true` 1: a boolean or one of `options`.
fn enum_option(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    setting: &mut i32,
    options: &[&str],
    fname: &str,
) -> mlua::Result<Value> {
    match args.get(i) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = i32::from(*b),
        Some(_) => {
            let name = check_bytes(args, i, fname).map_err(|m| super::raise(lua, &m))?;
            let Some(k) = options.iter().position(|o| o.as_bytes() == &name[..]) else {
                return Err(super::raise(
                    lua,
                    &format!(
                        "bad argument #{} to '{fname}' (invalid option '{}')",
                        i + 1,
                        String::from_utf8_lossy(&name)
                    ),
                ));
            };
            *setting = k as i32;
        }
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        k => Value::String(lua.create_string(options[k as usize])?),
    })
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// Installs one configuration function.
fn config_fn(
    lua: &Lua,
    t: &Table,
    cfg: &Shared,
    name: &'static str,
    f: fn(&Lua, &MultiValue, &mut Config) -> mlua::Result<MultiValue>,
) -> mlua::Result<()> {
    let cfg = cfg.clone();
    t.raw_set(
        name,
        lua.create_function(move |lua, args: MultiValue| {
            let mut c = *cfg.lock();
            let r = f(lua, &args, &mut c);
            // Settings made before an error stay, as in C.
            *cfg.lock() = c;
            r
        })?,
    )
}

fn install_config(lua: &Lua, t: &Table, cfg: &Shared) -> mlua::Result<()> {
    config_fn(lua, t, cfg, "encode_sparse_array", |lua, a, c| {
        const F: &str = "encode_sparse_array";
        arg_init(lua, a, 3, F)?;
        let convert = enum_option(lua, a, 0, &mut c.sparse_convert, BOOL_OPTIONS, F)?;
        let ratio = integer_option(lua, a, 1, &mut c.sparse_ratio, (0, i32::MAX), F)?;
        let safe = integer_option(lua, a, 2, &mut c.sparse_safe, (0, i32::MAX), F)?;
        Ok(ok([convert, ratio, safe]))
    })?;
    config_fn(lua, t, cfg, "encode_max_depth", |lua, a, c| {
        const F: &str = "encode_max_depth";
        arg_init(lua, a, 1, F)?;
        Ok(ok([integer_option(
            lua,
            a,
            0,
            &mut c.encode_max_depth,
            (1, i32::MAX),
            F,
        )?]))
    })?;
    config_fn(lua, t, cfg, "decode_max_depth", |lua, a, c| {
        const F: &str = "decode_max_depth";
        arg_init(lua, a, 1, F)?;
        Ok(ok([integer_option(
            lua,
            a,
            0,
            &mut c.decode_max_depth,
            (1, i32::MAX),
            F,
        )?]))
    })?;
    config_fn(lua, t, cfg, "encode_number_precision", |lua, a, c| {
        const F: &str = "encode_number_precision";
        arg_init(lua, a, 1, F)?;
        Ok(ok([integer_option(
            lua,
            a,
            0,
            &mut c.precision,
            (1, 14),
            F,
        )?]))
    })?;
    config_fn(lua, t, cfg, "encode_keep_buffer", |lua, a, c| {
        const F: &str = "encode_keep_buffer";
        arg_init(lua, a, 1, F)?;
        // Only where the C version keeps its buffer: nothing to see.
        Ok(ok([enum_option(
            lua,
            a,
            0,
            &mut c.keep_buffer,
            BOOL_OPTIONS,
            F,
        )?]))
    })?;
    config_fn(lua, t, cfg, "encode_invalid_numbers", |lua, a, c| {
        const F: &str = "encode_invalid_numbers";
        arg_init(lua, a, 1, F)?;
        Ok(ok([enum_option(
            lua,
            a,
            0,
            &mut c.encode_invalid_numbers,
            &["off", "on", "null"],
            F,
        )?]))
    })?;
    config_fn(lua, t, cfg, "decode_invalid_numbers", |lua, a, c| {
        const F: &str = "decode_invalid_numbers";
        arg_init(lua, a, 1, F)?;
        Ok(ok([enum_option(
            lua,
            a,
            0,
            &mut c.decode_invalid_numbers,
            BOOL_OPTIONS,
            F,
        )?]))
    })?;
    Ok(())
}

/// `cjson.null`: the NULL light userdata.
pub(crate) fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The `cjson` table.
pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    install_config(lua, &t, &cfg)?;
    let enc_cfg = cfg.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)");
            }
            let c = *enc_cfg.lock();
            let mut out = Vec::new();
            match encode(&c, &args[0], 1, &mut out) {
                Ok(()) => Ok(ok([Value::String(lua.create_string(&out)?)])),
                Err(m) => fail(lua, &m),
            }
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)");
            }
            let c = *cfg.lock();
            let text = match check_bytes(&args, 0, "decode") {
                Ok(t) => t,
                Err(m) => return fail(lua, &m),
            };
            let mut p = Parser {
                lua,
                cfg: c,
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

fn encode_number(c: &Config, n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if n.is_nan() || n.is_infinite() {
        match c.encode_invalid_numbers {
            0 => return Err(exception(&Value::Number(n), "must not be NaN or Inf")),
            1 if n.is_nan() => {
                // Some platforms print "-nan".
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            1 => {}
            _ => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
        }
    }
    out.extend_from_slice(crate::num::fmt_g(n, c.precision as usize).as_bytes());
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
fn array_length(c: &Config, t: &Table) -> Result<Option<usize>, String> {
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
    if c.sparse_ratio > 0
        && max > items * f64::from(c.sparse_ratio)
        && max > f64::from(c.sparse_safe)
    {
        if c.sparse_convert == 0 {
            return Err(exception(
                &Value::Table(t.clone()),
                "excessively sparse array",
            ));
        }
        return Ok(None);
    }
    Ok(Some(max as usize))
}

fn encode(c: &Config, v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Integer(i) => encode_number(c, *i as f64, out)?,
        Value::Number(n) => encode_number(c, *n, out)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            if depth > c.encode_max_depth as usize {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(c, t)? {
                Some(n) if n > 0 => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                        encode(c, &item, depth + 1, out)?;
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
                                encode_number(c, *i as f64, out)?;
                                out.push(b'"');
                            }
                            Value::Number(n) => {
                                out.push(b'"');
                                encode_number(c, *n, out)?;
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
                        encode(c, &item, depth + 1, out)?;
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
    cfg: Config,
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
        if self.depth > self.cfg.decode_max_depth as usize {
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
        if self.cfg.decode_invalid_numbers == 0 {
            // Strict JSON numbers only (`json_is_invalid_number`).
            if c == b'-' || c.is_ascii_digit() {
                if is_invalid_number(&self.s[self.pos..]) {
                    return (Tok::Error("invalid number"), at);
                }
                return (self.number(), at);
            }
            for (word, tok) in [
                (&b"true"[..], Tok::Bool(true)),
                (&b"false"[..], Tok::Bool(false)),
                (&b"null"[..], Tok::Null),
            ] {
                if self.s[self.pos..].starts_with(word) {
                    self.pos += word.len();
                    return (tok, at);
                }
            }
            return (Tok::Error("invalid token"), at);
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

/// lua_cjson's `json_is_invalid_number`: forms `strtod` reads that strict
/// JSON does not have (a leading `+`, hex, leading zeros, inf, nan).
fn is_invalid_number(p: &[u8]) -> bool {
    let mut p = p;
    if p.first() == Some(&b'+') {
        return true;
    }
    if p.first() == Some(&b'-') {
        p = &p[1..];
    }
    match p.first() {
        Some(b'0') => {
            let c2 = p.get(1).copied().unwrap_or(0);
            (c2 | 0x20) == b'x' || c2.is_ascii_digit()
        }
        Some(&c) if c <= b'9' => false,
        None => false,
        Some(_) => {
            let head: Vec<u8> = p.iter().take(3).map(u8::to_ascii_lowercase).collect();
            head == b"inf" || head == b"nan"
        }
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
