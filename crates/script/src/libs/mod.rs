//! The libraries Redis 7.0 loads besides Lua's own: `bit`, `cjson`,
//! `cmsgpack` and `struct`, written in Rust with the C versions' quirks.
//!
//! Their errors are raised as C's `luaL_error` does: prefixed with the
//! calling script's position.

pub(crate) mod bit;
pub(crate) mod cjson;
pub(crate) mod cmsgpack;
pub(crate) mod structlib;

use mlua::{Lua, MultiValue, Value};

/// Raises `msg` as `luaL_error` does: with `luaL_where(L, 1)`, the
/// position of the Lua code that called the failing function.
pub(crate) fn raise(lua: &Lua, msg: &str) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| {
            let line = d.current_line();
            let src = d.source().short_src.map(|s| s.into_owned());
            match (src, line) {
                (Some(s), Some(l)) if l > 0 => format!("{s}:{l}: "),
                _ => String::new(),
            }
        })
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{at}{msg}"))
}

/// Raises `msg` (see [`raise`]).
pub(crate) fn fail(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    Err(raise(lua, msg))
}

/// The values returned.
pub(crate) fn ok(values: impl IntoIterator<Item = Value>) -> MultiValue {
    values.into_iter().collect()
}

/// `luaL_checknumber`: a number or a numeric string.
pub(crate) fn check_number(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    fname: &str,
) -> Result<f64, String> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    match lua.coerce_number(v.clone()) {
        Ok(Some(n)) => Ok(n),
        _ => Err(format!(
            "bad argument #{} to '{fname}' (number expected, got {})",
            i + 1,
            crate::vm::type_name(&v)
        )),
    }
}

/// `luaL_checklstring`: a string or a number (converted as `tostring`).
pub(crate) fn check_bytes(args: &MultiValue, i: usize, fname: &str) -> Result<Vec<u8>, String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(crate::num::lua_tostring(*n).into_bytes()),
        other => Err(format!(
            "bad argument #{} to '{fname}' (string expected, got {})",
            i + 1,
            crate::vm::type_name(other.unwrap_or(&Value::Nil))
        )),
    }
}
