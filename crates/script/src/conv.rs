//! Conversions between replies and Lua values, as Redis 7.0's
//! `redisProtocolToLuaType` and `luaReplyToRedisReply` do them.

use bytes::Bytes;
use cairn_keyspace::Frame;
use mlua::{Lua, Table, Value};

/// Redis' `luaPushErrorBuff`: `-CODE msg` keeps its code, anything else
/// gets `ERR`; the result is a `{err="CODE msg"}` table.
pub(crate) fn push_error_table(lua: &Lua, msg: &[u8]) -> mlua::Result<Table> {
    let (code, text): (&[u8], &[u8]) = if let Some(rest) = msg.strip_prefix(b"-") {
        match rest.iter().position(|&c| c == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        }
    } else {
        (b"ERR", msg)
    };
    let mut text = text;
    while let Some((&last, rest)) = text.split_last() {
        if last == b'\r' || last == b'\n' {
            text = rest;
        } else {
            break;
        }
    }
    while let Some((&first, rest)) = text.split_first() {
        if first == b'\r' || first == b'\n' {
            text = rest;
        } else {
            break;
        }
    }
    let mut full = code.to_vec();
    full.push(b' ');
    full.extend_from_slice(text);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&full)?)?;
    Ok(t)
}

/// A command's reply as the script sees it, for the script client's RESP
/// version (`redis.setresp`).
pub(crate) fn frame_to_lua(lua: &Lua, frame: Frame, resp: u8) -> mlua::Result<Value> {
    let frame = if resp == 2 { frame.into_resp2() } else { frame };
    to_lua(lua, frame, resp == 3)
}

fn to_lua(lua: &Lua, frame: Frame, resp3: bool) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&s)?)?;
            Value::Table(t)
        }
        Frame::Error(s) | Frame::BlobError(s) => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(&s)?)?;
            Value::Table(t)
        }
        Frame::Integer(n) => Value::Number(n as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(&b)?),
        Frame::Null | Frame::NullArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Frame::Array(v) | Frame::Push(v) => {
            let t = lua.create_table_with_capacity(v.len(), 0)?;
            for (i, f) in v.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, f, resp3)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let m = lua.create_table_with_capacity(0, pairs.len())?;
            for (k, v) in pairs {
                m.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            let t = lua.create_table()?;
            t.raw_set("map", m)?;
            Value::Table(t)
        }
        Frame::Set(v) => {
            let m = lua.create_table_with_capacity(0, v.len())?;
            for f in v {
                m.raw_set(to_lua(lua, f, resp3)?, true)?;
            }
            let t = lua.create_table()?;
            t.raw_set("set", m)?;
            Value::Table(t)
        }
        Frame::Double(d) => {
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        Frame::DoubleText(t) => {
            // Redis' Lua reads the `,` line with strtod.
            let d = std::str::from_utf8(&t)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        Frame::Boolean(b) => Value::Boolean(b),
        Frame::BigNumber(s) => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(&s)?)?;
            Value::Table(t)
        }
        Frame::Verbatim { format, text } => {
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(&text)?)?;
            let t = lua.create_table()?;
            t.raw_set("verbatim_string", inner)?;
            Value::Table(t)
        }
    })
}

fn bytes_of(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        _ => None,
    }
}

/// Redis' `luaReplyToRedisReply`: the script's return value as a reply.
/// `resp` is the script's `redis.setresp` version (it decides how booleans
/// are answered).
pub(crate) fn lua_to_frame(v: &Value, resp: u8) -> Frame {
    lua_to_frame_depth(v, resp, 0)
}

fn lua_to_frame_depth(v: &Value, resp: u8, depth: usize) -> Frame {
    if depth > 1000 {
        return Frame::error("ERR reached lua stack limit");
    }
    match v {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => {
            if resp == 3 {
                Frame::Boolean(*b)
            } else if *b {
                Frame::Integer(1)
            } else {
                Frame::Null
            }
        }
        Value::Integer(i) => Frame::Integer(*i),
        Value::Number(n) => Frame::Integer(crate::num::c_ll(*n)),
        Value::Table(t) => table_to_frame(t, resp, depth),
        _ => Frame::Null,
    }
}

fn table_to_frame(t: &Table, resp: u8, depth: usize) -> Frame {
    let field = |k: &str| t.raw_get::<Value>(k).unwrap_or(Value::Nil);
    if let Some(e) = bytes_of(&field("err")) {
        return Frame::Error(e);
    }
    if let Some(s) = bytes_of(&field("ok")) {
        return Frame::Simple(s);
    }
    match field("double") {
        Value::Number(n) => return Frame::Double(n),
        Value::Integer(n) => return Frame::Double(n as f64),
        _ => {}
    }
    if let Some(s) = bytes_of(&field("big_number")) {
        return Frame::BigNumber(s);
    }
    if let Value::Table(v) = field("verbatim_string")
        && let (Some(fmt), Some(text)) = (
            bytes_of(&v.raw_get::<Value>("format").unwrap_or(Value::Nil)),
            bytes_of(&v.raw_get::<Value>("string").unwrap_or(Value::Nil)),
        )
        && fmt.len() == 3
    {
        return Frame::Verbatim {
            format: [fmt[0], fmt[1], fmt[2]],
            text,
        };
    }
    if let Value::Table(m) = field("map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            pairs.push((
                lua_to_frame_depth(&k, resp, depth + 1),
                lua_to_frame_depth(&v, resp, depth + 1),
            ));
        }
        return Frame::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let mut items = Vec::new();
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            items.push(lua_to_frame_depth(&k, resp, depth + 1));
        }
        return Frame::Set(items);
    }
    let mut items = Vec::new();
    let mut i = 1i64;
    loop {
        let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        items.push(lua_to_frame_depth(&v, resp, depth + 1));
        i += 1;
    }
    Frame::Array(items)
}
