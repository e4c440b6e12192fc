//! Redis 7.0 functions: libraries (`#!lua name=...`) registering functions
//! with `redis.register_function`, `FCALL`, and the `FUNCTION` commands.
//!
//! The libraries' code is the source of truth and lives in the keyspace
//! payload [`PAYLOAD`], so views (snapshots) carry it and restarts restore
//! it; the compiled form is rebuilt whenever the payload changed under us
//! (a snapshot loaded).

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use cairn_keyspace::{Ctx, Frame, Keyspace};
use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::vm::{RunCtx, Vm, raise_table};
use crate::{Core, ScriptFlags, Target, err, help, parse_numkeys};

/// The keyspace payload holding the libraries.
pub const PAYLOAD: &str = "functions";

/// A function registered by a library being loaded.
pub(crate) struct Registered {
    name: String,
    func: Function,
    flags: ScriptFlags,
    description: Option<Bytes>,
}

struct Library {
    code: Bytes,
    functions: Vec<Registered>,
}

/// The functions' Lua state and libraries.
#[derive(Default)]
pub(crate) struct Functions {
    vm: Option<Vm>,
    /// The payload version the libraries were built from.
    pub(crate) version: Option<u64>,
    libs: BTreeMap<String, Library>,
}

/// Redis' library/function name rule.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn encode_payload(libs: &BTreeMap<String, Library>) -> Bytes {
    let mut out = BytesMut::new();
    for lib in libs.values() {
        out.extend_from_slice(&(lib.code.len() as u32).to_be_bytes());
        out.extend_from_slice(&lib.code);
    }
    out.freeze()
}

fn decode_payload(p: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(len) = p.get(i..i + 4) {
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(code) = p.get(i + 4..i + 4 + n) else {
            break;
        };
        out.push(Bytes::copy_from_slice(code));
        i += 4 + n;
    }
    out
}

/// The library metadata of a `#!lua name=...` first line: (name, offset of
/// the code after the shebang, newline kept).
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let end = code
        .iter()
        .position(|&c| c == b'\n')
        .ok_or_else(|| "Invalid library metadata".to_owned())?;
    let line = &code[2..end];
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    let mut name = None;
    for part in parts {
        match part.strip_prefix(b"name=") {
            Some(n) => name = Some(String::from_utf8_lossy(n).into_owned()),
            None => {
                return Err(format!(
                    "Invalid metadata value given: {}",
                    String::from_utf8_lossy(part)
                ));
            }
        }
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    let name = name.ok_or_else(|| "Library name was not given".to_owned())?;
    if !valid_name(name.as_bytes()) {
        return Err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        );
    }
    Ok((name, end))
}

impl Functions {
    /// Rebuilds the libraries when the keyspace payload changed under us.
    pub(crate) fn sync(
        &mut self,
        ks: &Keyspace,
        new_vm: impl Fn() -> Result<Vm, crate::ScriptError>,
    ) -> Result<(), crate::ScriptError> {
        let version = ks.payload_version();
        if self.vm.is_some() && self.version == Some(version) {
            return Ok(());
        }
        self.vm = Some(new_vm()?);
        self.libs.clear();
        for code in decode_payload(&ks.payload(PAYLOAD).unwrap_or_default()) {
            if let Err(e) = self.load(&code, false) {
                tracing::warn!("cannot restore a function library: {e}");
            }
        }
        self.version = Some(version);
        Ok(())
    }

    /// Libraries and functions loaded.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.libs.len(),
            self.libs.values().map(|l| l.functions.len()).sum(),
        )
    }

    fn vm(&self) -> Result<&Vm, String> {
        self.vm
            .as_ref()
            .ok_or_else(|| "ERR functions unavailable".to_owned())
    }

    /// FUNCTION LOAD: compiles and runs the library code, collecting its
    /// functions. The error text is the reply's, without the leading `-`.
    fn load(&mut self, code: &Bytes, replace: bool) -> Result<String, String> {
        let (name, skip) = metadata(code).map_err(|m| format!("ERR {m}"))?;
        if self.libs.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let vm = self.vm()?;
        let registered = {
            let chunk = vm
                .lua
                .load(&code[skip..])
                .set_name("@user_function")
                .set_environment(vm_load_env(vm).map_err(|e| format!("ERR {e}"))?)
                .into_function()
                .map_err(|e| match e {
                    mlua::Error::SyntaxError { message, .. } => {
                        format!("ERR Error compiling function: {message}")
                    }
                    other => format!("ERR Error compiling function: {other}"),
                })?;
            if let Some(mut c) = vm.lua.app_data_mut::<RunCtx>() {
                c.registering = Some(Vec::new());
            }
            let state: Option<Table> = vm.lua.named_registry_value("cairn.load_state").ok();
            if let Some(st) = &state {
                let _ = st.raw_set("loading", true);
            }
            let r: mlua::Result<(bool, Value)> = vm.load_runner.call(chunk);
            if let Some(st) = &state {
                let _ = st.raw_set("loading", false);
            }
            let got = vm
                .lua
                .app_data_mut::<RunCtx>()
                .and_then(|mut c| c.registering.take())
                .unwrap_or_default();
            match r {
                Ok((true, _)) => got,
                Ok((false, Value::Table(t))) => {
                    let e: String = t
                        .raw_get::<mlua::LuaString>("err")
                        .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
                        .unwrap_or_default();
                    return Err(format!("ERR Error registering functions: {e}"));
                }
                Ok((false, v)) => {
                    return Err(format!(
                        "ERR Error registering functions: {}",
                        v.to_string().unwrap_or_default()
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "ERR Error registering functions: {}",
                        crate::vm::error_text(&e)
                    ));
                }
            }
        };
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for f in &registered {
            for (lname, lib) in &self.libs {
                if *lname != name && lib.functions.iter().any(|g| g.name == f.name) {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        self.libs.insert(
            name.clone(),
            Library {
                code: code.clone(),
                functions: registered,
            },
        );
        Ok(name)
    }

    /// FUNCTION RESTORE, as Redis' `functionRestoreCommand`: the payload's
    /// libraries are created apart (as in a fresh library context, so a
    /// library twice in it is refused), then swapped in (FLUSH) or joined
    /// (APPEND refuses an existing library name, REPLACE replaces it; a
    /// function name already used by another library is refused). All or
    /// nothing.
    fn restore(&mut self, codes: &[Bytes], policy: &str) -> Result<(), String> {
        let current = std::mem::take(&mut self.libs);
        for code in codes {
            if let Err(m) = self.load(code, false) {
                self.libs = current;
                return Err(m);
            }
        }
        let restored = std::mem::replace(&mut self.libs, current);
        if policy == "flush" {
            self.libs = restored;
            return Ok(());
        }
        let mut replaced = Vec::new();
        for name in restored.keys() {
            if let Some(old) = self.libs.remove(name) {
                replaced.push((name.clone(), old));
                if policy != "replace" {
                    self.libs.extend(replaced);
                    return Err(format!("ERR Library {name} already exists"));
                }
            }
        }
        for f in restored.values().flat_map(|l| l.functions.iter()) {
            if self.find(f.name.as_bytes()).is_some() {
                let name = f.name.clone();
                self.libs.extend(replaced);
                return Err(format!("ERR Function {name} already exists"));
            }
        }
        self.libs.extend(restored);
        Ok(())
    }

    fn find(&self, name: &[u8]) -> Option<&Registered> {
        self.libs
            .values()
            .flat_map(|l| l.functions.iter())
            .find(|f| f.name.as_bytes() == name)
    }
}

/// The environment library code runs in while it loads: the globals, with
/// a `redis` table holding only what Redis 7.0 offers at load time.
fn vm_load_env(vm: &Vm) -> mlua::Result<Table> {
    let lua = &vm.lua;
    if let Ok(Value::Table(t)) = lua.named_registry_value::<Value>("cairn.load_env") {
        return Ok(t);
    }
    let full: Table = vm.globals.raw_get("redis")?;
    let limited = lua.create_table()?;
    for k in [
        "register_function",
        "log",
        "setresp",
        "LOG_DEBUG",
        "LOG_VERBOSE",
        "LOG_NOTICE",
        "LOG_WARNING",
        "REDIS_VERSION",
        "REDIS_VERSION_NUM",
    ] {
        let v: Value = full.get(k)?;
        limited.raw_set(k, v)?;
    }
    let make: Function = lua
        .load(
            r#"
local limited, G, full, state = ...
local rawget = rawget
local function ro() error("Attempt to modify a readonly table", 2) end
setmetatable(limited, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = ro, __metatable = false })
local redis = setmetatable({}, {__index = limited, __newindex = ro, __metatable = false})
-- While a library loads only the limited `redis` exists; its functions
-- later run with every global.
return setmetatable({}, {
  __index = function(_, k)
    if state.loading then
      if k == "redis" then return redis end
    else
      local v = rawget(G, k)
      if v ~= nil then return v end
    end
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = ro, __metatable = false })
"#,
        )
        .set_name(crate::vm::INTERNAL)
        .into_function()?;
    let state = lua.create_table()?;
    lua.set_named_registry_value("cairn.load_state", state.clone())?;
    let env: Table = make.call((limited, vm.globals.clone(), full.clone(), state))?;
    lua.set_named_registry_value("cairn.load_env", env.clone())?;
    Ok(env)
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=..., callback=..., flags=..., description=...}`.
pub(crate) fn register_function(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let loading = lua
        .app_data_ref::<RunCtx>()
        .is_some_and(|c| c.registering.is_some());
    if !loading {
        return Err(raise_table(
            lua,
            "redis.register_function can only be called on FUNCTION LOAD command",
        ));
    }
    let (name, func, flags, description) = match (args.len(), args.front()) {
        (1, Some(Value::Table(t))) => named_args(lua, t)?,
        (1, _) => {
            return Err(raise_table(
                lua,
                "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
            ));
        }
        (2, Some(first)) => {
            let Value::String(n) = first else {
                return Err(raise_table(
                    lua,
                    "first argument to redis.register_function must be a string",
                ));
            };
            let Some(Value::Function(f)) = args.get(1) else {
                return Err(raise_table(
                    lua,
                    "second argument to redis.register_function must be a function",
                ));
            };
            (
                n.as_bytes().to_vec(),
                f.clone(),
                ScriptFlags::default(),
                None,
            )
        }
        _ => {
            return Err(raise_table(
                lua,
                "wrong number of arguments to redis.register_function",
            ));
        }
    };
    if !valid_name(&name) {
        return Err(raise_table(
            lua,
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let mut ctx = lua
        .app_data_mut::<RunCtx>()
        .ok_or_else(|| mlua::Error::RuntimeError("no context".into()))?;
    let list = ctx.registering.get_or_insert_with(Vec::new);
    if list.iter().any(|f| f.name == name) {
        drop(ctx);
        return Err(raise_table(lua, "Function already exists in the library"));
    }
    list.push(Registered {
        name,
        func,
        flags,
        description,
    });
    Ok(())
}

type NamedArgs = (Vec<u8>, Function, ScriptFlags, Option<Bytes>);

fn named_args(lua: &Lua, t: &Table) -> mlua::Result<NamedArgs> {
    let mut name = None;
    let mut func = None;
    let mut flags = ScriptFlags::default();
    let mut description = None;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        let key = match &k {
            Value::String(s) => s.as_bytes().to_vec(),
            _ => {
                return Err(raise_table(
                    lua,
                    "named argument key given to redis.register_function is not a string",
                ));
            }
        };
        match (&key[..], v) {
            (b"function_name", Value::String(s)) => name = Some(s.as_bytes().to_vec()),
            (b"function_name", _) => {
                return Err(raise_table(
                    lua,
                    "function_name argument given to redis.register_function must be a string",
                ));
            }
            (b"description", Value::String(s)) => {
                description = Some(Bytes::copy_from_slice(&s.as_bytes()));
            }
            (b"description", _) => {
                return Err(raise_table(
                    lua,
                    "description argument given to redis.register_function must be a string",
                ));
            }
            (b"callback", Value::Function(f)) => func = Some(f),
            (b"callback", _) => {
                return Err(raise_table(
                    lua,
                    "callback argument given to redis.register_function must be a function",
                ));
            }
            (b"flags", Value::Table(ft)) => {
                for f in ft.sequence_values::<Value>() {
                    let ok = match f? {
                        Value::String(s) => flags.set(&s.as_bytes()),
                        _ => false,
                    };
                    if !ok {
                        return Err(raise_table(lua, "unknown flag given"));
                    }
                }
            }
            (b"flags", _) => {
                return Err(raise_table(
                    lua,
                    "flags argument to redis.register_function must be a table representing function flags",
                ));
            }
            _ => {
                return Err(raise_table(
                    lua,
                    "unknown argument given to redis.register_function",
                ));
            }
        }
    }
    let Some(name) = name else {
        return Err(raise_table(
            lua,
            "redis.register_function must get a function name argument",
        ));
    };
    let Some(func) = func else {
        return Err(raise_table(
            lua,
            "redis.register_function must get a callback argument",
        ));
    };
    Ok((name, func, flags, description))
}

/// Redis' CRC-64 (Jones polynomial, reflected), for `FUNCTION DUMP`.
fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95AC_9329_AC4B_C9B5;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// RDB length encoding.
fn rdb_len(n: usize, out: &mut Vec<u8>) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

fn read_rdb_len(p: &[u8], i: &mut usize) -> Option<usize> {
    let b = *p.get(*i)?;
    *i += 1;
    Some(match b >> 6 {
        0 => usize::from(b & 0x3f),
        1 => {
            let c = *p.get(*i)?;
            *i += 1;
            (usize::from(b & 0x3f) << 8) | usize::from(c)
        }
        _ if b == 0x80 => {
            let v = u32::from_be_bytes(p.get(*i..*i + 4)?.try_into().ok()?);
            *i += 4;
            v as usize
        }
        _ if b == 0x81 => {
            let v = u64::from_be_bytes(p.get(*i..*i + 8)?.try_into().ok()?);
            *i += 8;
            usize::try_from(v).ok()?
        }
        _ => return None,
    })
}

/// The RDB version Redis 7.0 writes in DUMP payloads.
const RDB_VERSION: u16 = 10;
/// `RDB_OPCODE_FUNCTION2`.
const OPCODE_FUNCTION2: u8 = 245;
/// `RDB_OPCODE_FUNCTION`, the pre-GA format Redis refuses.
const OPCODE_FUNCTION: u8 = 246;

/// RDB string encodings (`RDB_ENCVAL` type byte, low 6 bits).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Redis' `rdbTryIntegerEncoding`: a string that is a canonical integer
/// of up to 32 bits is stored as that integer.
fn rdb_int_encoding(s: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(v) = std::str::from_utf8(s)
        .ok()
        .and_then(|t| cairn_keyspace::parse_canonical_i64(t.as_bytes()))
    else {
        return false;
    };
    if let Ok(v) = i8::try_from(v) {
        out.push(0xC0 | ENC_INT8);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i16::try_from(v) {
        out.push(0xC0 | ENC_INT16);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(0xC0 | ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Redis' `rdbSaveRawString`: integer encoding up to 11 bytes, LZF above
/// 20 bytes when it saves at least 4 (and `rdbcompression` is on), else
/// the length and the bytes.
fn rdb_save_string(s: &[u8], compress: bool, out: &mut Vec<u8>) {
    if s.len() <= 11 && rdb_int_encoding(s, out) {
        return;
    }
    if compress
        && s.len() > 20
        && let Some(c) = crate::lzf::compress(s, s.len() - 4)
    {
        out.push(0xC0 | ENC_LZF);
        rdb_len(c.len(), out);
        rdb_len(s.len(), out);
        out.extend_from_slice(&c);
        return;
    }
    rdb_len(s.len(), out);
    out.extend_from_slice(s);
}

/// Redis' `rdbGenericLoadStringObject`.
fn rdb_load_string(p: &[u8], i: &mut usize) -> Option<Vec<u8>> {
    let b = *p.get(*i)?;
    if b >> 6 == 3 {
        *i += 1;
        return match b & 0x3f {
            ENC_INT8 => {
                let v = i8::from_le_bytes([*p.get(*i)?]);
                *i += 1;
                Some(v.to_string().into_bytes())
            }
            ENC_INT16 => {
                let v = i16::from_le_bytes(p.get(*i..*i + 2)?.try_into().ok()?);
                *i += 2;
                Some(v.to_string().into_bytes())
            }
            ENC_INT32 => {
                let v = i32::from_le_bytes(p.get(*i..*i + 4)?.try_into().ok()?);
                *i += 4;
                Some(v.to_string().into_bytes())
            }
            ENC_LZF => {
                let clen = read_rdb_len(p, i)?;
                let len = read_rdb_len(p, i)?;
                let c = p.get(*i..i.checked_add(clen)?)?;
                *i += clen;
                crate::lzf::decompress(c, len)
            }
            _ => None,
        };
    }
    let n = read_rdb_len(p, i)?;
    let s = p.get(*i..i.checked_add(n)?)?;
    *i += n;
    Some(s.to_vec())
}

/// `FUNCTION DUMP`'s payload: each library as `RDB_OPCODE_FUNCTION2` and
/// its code as an RDB string, then the RDB version and a CRC-64 (both
/// little-endian), as Redis' `functionDumpCommand`.
fn dump(libs: &BTreeMap<String, Library>, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for lib in libs.values() {
        out.push(OPCODE_FUNCTION2);
        rdb_save_string(&lib.code, compress, &mut out);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a `FUNCTION RESTORE` payload, or Redis' error.
fn undump(p: &[u8]) -> Result<Vec<Bytes>, &'static str> {
    const BAD: &str = "ERR DUMP payload version or checksum are wrong";
    if p.len() < 10 {
        return Err(BAD);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| BAD)?);
    if version > RDB_VERSION || crc64(0, &p[..p.len() - 8]) != crc {
        return Err(BAD);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            OPCODE_FUNCTION2 => {}
            OPCODE_FUNCTION => return Err("ERR Pre-GA function format not supported"),
            _ => return Err("ERR given type is not a function"),
        }
        i += 1;
        let code = rdb_load_string(body, &mut i).ok_or("ERR Failed loading library payload")?;
        out.push(Bytes::from(code));
    }
    Ok(out)
}

/// FUNCTION STATS' reply.
pub(crate) fn stats_reply(running: Frame, libs: usize, funcs: usize) -> Frame {
    Frame::Map(vec![
        (Frame::bulk("running_script"), running),
        (
            Frame::bulk("engines"),
            Frame::Map(vec![(
                Frame::bulk("LUA"),
                Frame::Map(vec![
                    (Frame::bulk("libraries_count"), Frame::Integer(libs as i64)),
                    (Frame::bulk("functions_count"), Frame::Integer(funcs as i64)),
                ]),
            )]),
        ),
    ])
}

impl Core {
    /// FCALL and FCALL_RO, with the gate held for write.
    pub(crate) fn fcall(&self, ks: &Keyspace, db: usize, args: &[Bytes]) -> Frame {
        let ro = args[0].eq_ignore_ascii_case(b"fcall_ro");
        let numkeys = match parse_numkeys(args) {
            Ok(n) => n,
            Err(f) => return f,
        };
        let r = self.with_engine(ks, |e| {
            let Some(f) = e.funcs.find(&args[1]) else {
                return err("ERR Function not found");
            };
            let Ok(vm) = e.funcs.vm() else {
                return err("ERR functions unavailable");
            };
            let flags = ScriptFlags {
                compat: false,
                ..f.flags
            };
            self.run(
                ks,
                vm,
                Target::Function(&f.func),
                &f.name,
                &args[3..3 + numkeys],
                &args[3 + numkeys..],
                flags,
                ro,
                db,
                args,
            )
        });
        r.unwrap_or_else(|f| f)
    }

    /// Stores the libraries in the keyspace payload after a change.
    fn persist(ks: &Keyspace, funcs: &mut Functions) {
        let value = if funcs.libs.is_empty() {
            None
        } else {
            Some(encode_payload(&funcs.libs))
        };
        ks.set_payload(PAYLOAD, value);
        funcs.version = Some(ks.payload_version());
    }

    pub(crate) fn function_cmd(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let ks = ctx.keyspace();
        let resp3 = ctx.session().protocol == cairn_keyspace::Protocol::Resp3;
        let _ = resp3;
        let r = self.with_engine(ks, |e| match sub.as_str() {
            "load" if args.len() >= 3 => {
                let mut replace = false;
                for a in &args[2..args.len() - 1] {
                    if a.eq_ignore_ascii_case(b"replace") {
                        replace = true;
                    } else {
                        return Frame::error(format!(
                            "ERR Unknown option given: {}",
                            String::from_utf8_lossy(a)
                        ));
                    }
                }
                let code = args[args.len() - 1].clone();
                let backup: Vec<(String, Bytes)> = e
                    .funcs
                    .libs
                    .iter()
                    .map(|(k, l)| (k.clone(), l.code.clone()))
                    .collect();
                match e.funcs.load(&code, replace) {
                    Ok(name) => {
                        Self::persist(ks, &mut e.funcs);
                        Frame::Bulk(Bytes::from(name))
                    }
                    Err(m) => {
                        // A failed REPLACE leaves the old library in place.
                        if e.funcs.libs.len() != backup.len() {
                            e.funcs.version = None;
                        }
                        Frame::error(m)
                    }
                }
            }
            "delete" if args.len() == 3 => {
                let name = String::from_utf8_lossy(&args[2]).into_owned();
                if e.funcs.libs.remove(&name).is_none() {
                    return err("ERR Library not found");
                }
                Self::persist(ks, &mut e.funcs);
                Frame::ok()
            }
            "flush" if args.len() <= 3 => {
                if let Some(mode) = args.get(2)
                    && !mode.eq_ignore_ascii_case(b"sync")
                    && !mode.eq_ignore_ascii_case(b"async")
                {
                    return err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
                }
                e.funcs.libs.clear();
                Self::persist(ks, &mut e.funcs);
                Frame::ok()
            }
            "kill" if args.len() == 2 => self.kill(true),
            "stats" if args.len() == 2 => {
                let (libs, funcs) = e.funcs.counts();
                stats_reply(Frame::Null, libs, funcs)
            }
            "list" => list(&e.funcs, args),
            "dump" if args.len() == 2 => {
                // `rdbcompression no` stores the code verbatim, as Redis.
                let compress = ks.config_param("rdbcompression").as_deref() != Some("no");
                Frame::Bulk(Bytes::from(dump(&e.funcs.libs, compress)))
            }
            "restore" if args.len() == 3 || args.len() == 4 => {
                let policy = args
                    .get(3)
                    .map(|p| String::from_utf8_lossy(p).to_ascii_lowercase())
                    .unwrap_or_else(|| "append".into());
                if !matches!(policy.as_str(), "append" | "replace" | "flush") {
                    return err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
                }
                let codes = match undump(&args[2]) {
                    Ok(c) => c,
                    Err(m) => return err(m),
                };
                match e.funcs.restore(&codes, &policy) {
                    Ok(()) => {
                        Self::persist(ks, &mut e.funcs);
                        Frame::ok()
                    }
                    Err(m) => Frame::error(m),
                }
            }
            "help" if args.len() == 2 => help(&[
                "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries:",
                "    * Library name",
                "    * The engine used to run the Library",
                "    * Library description",
                "    * Functions list",
                "    * Library code (if WITHCODE is given)",
                "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
                "STATS",
                "    Return information about the current function running:",
                "    * Function name",
                "    * Command used to run the function",
                "    * Duration in MS that the function is running",
                "    If no function is running, return nil",
                "    In addition, returns a list of available engines.",
                "KILL",
                "    Kill the current running function.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the libraries.",
                "    * SYNC: Synchronously flush the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
                "    control how to handle existing libraries (default APPEND):",
                "    * FLUSH: delete all existing libraries.",
                "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
                "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
                "      libraries with the new libraries (notice that even on this option there is a chance of failure",
                "      in case of functions name collision with another library).",
                "HELP",
                "    Prints this help.",
            ]),
            // Redis' `addReplySubcommandSyntaxError`, past the arity check.
            "restore" if args.len() > 4 => Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(&args[1])
            )),
            "load" | "delete" | "flush" | "kill" | "stats" | "dump" | "restore" | "help" => {
                Frame::error(format!(
                    "ERR wrong number of arguments for 'function|{sub}' command"
                ))
            }
            _ => Frame::error(format!(
                "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        });
        r.unwrap_or_else(|f| f)
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn list(funcs: &Functions, args: &[Bytes]) -> Frame {
    let mut pattern: Option<&Bytes> = None;
    let mut with_code = false;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"withcode") {
            if with_code {
                return err("ERR Unknown argument withcode");
            }
            with_code = true;
            i += 1;
        } else if a.eq_ignore_ascii_case(b"libraryname") {
            if pattern.is_some() {
                return err("ERR library pattern can be given only once");
            }
            let Some(p) = args.get(i + 1) else {
                return err("ERR library pattern argument is missing");
            };
            pattern = Some(p);
            i += 2;
        } else {
            return Frame::error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            ));
        }
    }
    let mut out = Vec::new();
    for (name, lib) in &funcs.libs {
        if let Some(p) = pattern
            && !cairn_keyspace::glob_match(p, name.as_bytes(), false)
        {
            continue;
        }
        let fns = lib
            .functions
            .iter()
            .map(|f| {
                Frame::Map(vec![
                    (Frame::bulk("name"), Frame::bulk(&f.name)),
                    (
                        Frame::bulk("description"),
                        f.description.clone().map_or(Frame::Null, Frame::Bulk),
                    ),
                    (
                        Frame::bulk("flags"),
                        Frame::Set(
                            f.flags
                                .names()
                                .into_iter()
                                .map(|n| Frame::Simple(Bytes::from_static(n.as_bytes())))
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        let mut m = vec![
            (Frame::bulk("library_name"), Frame::bulk(name)),
            (Frame::bulk("engine"), Frame::bulk("LUA")),
            (Frame::bulk("functions"), Frame::Array(fns)),
        ];
        if with_code {
            m.push((Frame::bulk("library_code"), Frame::Bulk(lib.code.clone())));
        }
        out.push(Frame::Map(m));
    }
    Frame::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        // Redis' crc64 test vector.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn payload_round_trip() {
        let p = {
            let mut out = BytesMut::new();
            for c in [&b"abc"[..], b"defg"] {
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                out.extend_from_slice(c);
            }
            out.freeze()
        };
        assert_eq!(
            decode_payload(&p),
            vec![Bytes::from("abc"), Bytes::from("defg")]
        );
    }
}
