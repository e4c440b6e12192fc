//! One Lua 5.1 state as Redis 7.0 sets it up: the libraries it loads, the
//! `redis` table, read-only globals, and the error handler that turns every
//! error into Redis' `{err=..., source=..., line=...}` table.

use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{Frame, NestedClient, NestedError, NestedRules, Protocol};
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use crate::Shared;
use crate::conv::{frame_to_lua, push_error_table};
use crate::libs::raise;

/// Chunk name of cairn's own Lua helpers: frames from it are skipped when
/// the error handler looks for the script line that failed.
pub(crate) const INTERNAL: &str = "=cairn";

/// What a state is for: its `redis` table and environment differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// EVAL scripts: `KEYS` and `ARGV` globals.
    Eval,
    /// FUNCTION libraries and FCALL.
    Functions,
}

/// Per-run state the `redis.*` callbacks reach through the Lua app data.
pub(crate) struct RunCtx {
    pub(crate) client: Option<NestedClient>,
    pub(crate) read_only: bool,
    /// Refuse denyoom calls until the first write (see `NestedRules::oom`).
    pub(crate) oom: bool,
    /// RESP version set by `redis.setresp` (2 at the start of each run).
    pub(crate) resp: u8,
    /// Whether a script is running (the `redis.call` family is only
    /// reachable then; during FUNCTION LOAD it is not).
    pub(crate) running: bool,
    pub(crate) shared: Arc<Shared>,
    /// The error table `redis.call` is raising, with its message.
    pub(crate) pending: Option<(String, Table)>,
    /// Functions registered by the library being loaded.
    pub(crate) registering: Option<Vec<crate::functions::Registered>>,
    /// The run in progress (kept between runs to reuse its buffers).
    pub(crate) run: Option<RunState>,
}

/// What the busy declaration needs of the run in progress
/// ([`crate::check_busy`]).
pub(crate) struct RunState {
    pub(crate) ks: cairn_keyspace::Keyspace,
    pub(crate) started: std::time::Instant,
    /// Whether this run declared itself busy.
    pub(crate) declared: bool,
    /// The function's name and the FCALL, for FUNCTION STATS.
    pub(crate) name: String,
    pub(crate) argv: Vec<Bytes>,
}

/// A Lua state with its helpers.
pub(crate) struct Vm {
    pub(crate) lua: Lua,
    /// `function(f, nkeys, ...)`: runs a script with KEYS and ARGV set.
    pub(crate) runner: Function,
    /// `function(f, nkeys, ...)`: runs a function with its keys and args.
    pub(crate) fn_runner: Function,
    /// `function(f) return xpcall(f, handler) end`: runs library code.
    pub(crate) load_runner: Function,
    /// The environment scripts and libraries run in: reads see the
    /// globals, writes fail.
    pub(crate) env: Table,
    /// The real globals.
    pub(crate) globals: Table,
}

fn lua_err(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

impl Vm {
    pub(crate) fn new(kind: Kind, shared: Arc<Shared>) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_app_data(RunCtx {
            client: None,
            read_only: false,
            oom: false,
            resp: 2,
            running: false,
            shared,
            registering: None,
            pending: None,
            run: None,
        });
        let g = lua.globals();
        // Redis 7.0 removes these from the base library.
        for name in [
            "print", "dofile", "loadfile", "getfenv", "setfenv", "newproxy", "module", "require",
            "package",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        let math: Table = g.raw_get("math")?;
        math.raw_set("random", lua.create_function(math_random)?)?;
        math.raw_set("randomseed", lua.create_function(math_randomseed)?)?;

        let redis = lua.create_table()?;
        install_redis_api(&lua, &redis, kind)?;
        g.raw_set("redis", redis)?;
        g.raw_set("bit", crate::libs::bit::table(&lua)?)?;
        g.raw_set("cjson", crate::libs::cjson::table(&lua)?)?;
        g.raw_set("cmsgpack", crate::libs::cmsgpack::table(&lua)?)?;
        g.raw_set("struct", crate::libs::structlib::table(&lua)?)?;
        g.raw_set("__cairn_handler", lua.create_function(error_handler)?)?;
        g.raw_set("__cairn_take", lua.create_function(take_error)?)?;

        let setup: Function = lua
            .load(SETUP)
            .set_name(INTERNAL)
            .set_environment(g.clone())
            .into_function()?;
        let (runner, fn_runner, load_runner, env): (Function, Function, Function, Table) =
            setup.call(())?;
        Ok(Vm {
            lua,
            runner,
            fn_runner,
            load_runner,
            env,
            globals: g,
        })
    }

    /// Runs a script (or a function, with `runner` = `fn_runner`) with its
    /// keys and arguments: `(true, value)` or `(false, error table)`.
    pub(crate) fn call_with(
        &self,
        runner: &Function,
        f: &Function,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> mlua::Result<(bool, Value)> {
        let nkeys = keys.len() as i64;
        let all_text = keys
            .iter()
            .chain(argv)
            .all(|b| std::str::from_utf8(b).is_ok());
        match all_text {
            // Pushed straight onto the Lua stack (`&str` is, a Lua string
            // made from Rust takes a reference slot).
            true => runner.call((
                f,
                nkeys,
                mlua::Variadic::from_iter(
                    keys.iter()
                        .chain(argv)
                        .map(|b| std::str::from_utf8(b).unwrap_or_default()),
                ),
            )),
            false => {
                let mut v = Vec::with_capacity(keys.len() + argv.len());
                for b in keys.iter().chain(argv) {
                    v.push(Value::String(self.lua.create_string(b)?));
                }
                runner.call((f, nkeys, mlua::Variadic::from_iter(v)))
            }
        }
    }

    /// Compiles a chunk in the sandbox.
    pub(crate) fn compile(&self, code: &[u8], name: &str) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name(name)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }
}

/// Lua side of the setup: read-only library tables, the globals' guard
/// metatables, `pcall`/`xpcall` that hand scripts Redis' error tables, and
/// the runners.
const SETUP: &str = r#"
local G = _G
local rawget, rawset, error, tostring, setmetatable, xpcall, pcall, type =
      rawget, rawset, error, tostring, setmetatable, xpcall, pcall, type
local real_next, real_pairs = next, pairs
local handler, take = __cairn_handler, __cairn_take
rawset(G, "__cairn_handler", nil)
rawset(G, "__cairn_take", nil)

local function ro() error("Attempt to modify a readonly table", 2) end
local proxies = {}
local function protect(t)
  local p = setmetatable({}, {__index = t, __newindex = ro, __metatable = false})
  proxies[p] = t
  return p
end
for _, lib in real_pairs({"string", "math", "table", "coroutine", "redis", "bit", "cjson", "cmsgpack", "struct"}) do
  rawset(G, lib, protect(rawget(G, lib)))
end
-- pairs/next see through the read-only proxies, as they do on Redis'
-- read-only tables.
rawset(G, "next", function(t, k) return real_next(proxies[t] or t, k) end)
rawset(G, "pairs", function(t) return real_pairs(proxies[t] or t) end)
-- Errors raised from Rust reach Lua code as their message, or as the
-- {err=...} table redis.call raised.
-- Redis 7.0's pcall hands scripts the `err` string of error tables.
local function fix(ok, ...)
  if ok then return ok, ... end
  return false, take((...), true)
end
rawset(G, "pcall", function(f, ...) return fix(pcall(f, ...)) end)
rawset(G, "xpcall", function(f, h) return xpcall(f, function(e) return h(take(e, false)) end) end)

setmetatable(G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = ro,
  __metatable = false,
})
-- Scripts see `_G` as their environment, not the real globals, so
-- `_G.name = v` is refused like `name = v` even for an existing name (the
-- globals' own guard only sees new names). A table between the two keeps
-- global reads a table lookup, with `_G` itself not assignable.
local shadow = setmetatable({}, {__index = G, __metatable = false})
local env = setmetatable({}, {__index = shadow, __newindex = ro, __metatable = false})
rawset(shadow, "_G", env)
proxies[env] = G
-- Redis' read-only tables refuse rawset too (raised without a position,
-- as from C).
local readonly = {[G] = true, [env] = true, [shadow] = true}
rawset(G, "rawset", function(t, k, v)
  if readonly[t] or proxies[t] then error("Attempt to modify a readonly table", 0) end
  return rawset(t, k, v)
end)

-- The keys and arguments come as one vararg list (pushed straight onto
-- the stack, where tables and strings built one by one from Rust cost a
-- reference each): new tables each run, as Redis (a script may write into
-- them).
local select = select
local function split(nkeys, ...)
  local keys = {...}
  local argv = {select(nkeys + 1, ...)}
  for i = #keys, nkeys + 1, -1 do keys[i] = nil end
  return keys, argv
end
local function run(f, nkeys, ...)
  local keys, argv = split(nkeys, ...)
  rawset(G, "KEYS", keys)
  rawset(G, "ARGV", argv)
  return xpcall(f, handler)
end
-- One closure for every FCALL (a function cannot call another).
local cur_f, cur_keys, cur_argv
local function call_cur() return cur_f(cur_keys, cur_argv) end
local function fn_run(f, nkeys, ...)
  cur_f = f
  cur_keys, cur_argv = split(nkeys, ...)
  return xpcall(call_cur, handler)
end
local function load_run(f) return xpcall(f, handler) end
return run, fn_run, load_run, env
"#;

/// Redis' `__redis__err__handler`: errors become `{err=...}` tables (a
/// plain message gets the `ERR` code) with the failing script's source and
/// line.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => t,
        Value::String(s) => {
            let t = lua.create_table()?;
            let mut msg = b"ERR ".to_vec();
            msg.extend_from_slice(&s.as_bytes());
            t.raw_set("err", lua.create_string(&msg)?)?;
            t
        }
        other => {
            if let Some(t) = take_pending(lua, &other) {
                return finish_handler(lua, t);
            }
            let t = lua.create_table()?;
            let killed = lua
                .app_data_ref::<RunCtx>()
                .map(|c| c.shared.kill_requested())
                .unwrap_or(false);
            let msg = if killed {
                crate::KILLED_MSG.to_owned()
            } else {
                match &other {
                    Value::Error(e) => format!("ERR {}", error_text(e)),
                    v => format!("ERR {}", v.to_string().unwrap_or_default()),
                }
            };
            t.raw_set("err", msg)?;
            t
        }
    };
    finish_handler(lua, t)
}

/// Adds the failing script's source and line to an error table.
fn finish_handler(lua: &Lua, t: Table) -> mlua::Result<Table> {
    // Level 1 is the function that raised; Redis skips one C frame (the
    // library function that raised), cairn also its own helpers.
    let mut level = 1;
    while level < 12 {
        let Some((what, source, line)) = lua.inspect_stack(level, |d| {
            let s = d.source();
            (s.what, s.source.map(|c| c.into_owned()), d.current_line())
        }) else {
            break;
        };
        if what == "C" || what == "tail" || source.as_deref() == Some(INTERNAL) {
            level += 1;
            continue;
        }
        if let Some(src) = source {
            t.raw_set("source", src)?;
        }
        if let Some(line) = line {
            t.raw_set("line", line as i64)?;
        }
        break;
    }
    Ok(t)
}

/// The error table `redis.call` raised, if `err` is that error.
fn take_pending(lua: &Lua, err: &Value) -> Option<Table> {
    let Value::Error(e) = err else { return None };
    let text = error_text(e);
    let mut ctx = lua.app_data_mut::<RunCtx>()?;
    let (msg, t) = ctx.pending.take()?;
    (msg == text).then_some(t)
}

/// What a script's `pcall` sees of an error: Redis' error table for
/// `redis.call` errors, the message for other errors raised from Rust.
fn take_error(lua: &Lua, (err, for_pcall): (Value, bool)) -> mlua::Result<Value> {
    let err = match take_pending(lua, &err) {
        Some(t) => Value::Table(t),
        None => err,
    };
    if for_pcall
        && let Value::Table(t) = &err
        && let Ok(Value::String(s)) = t.raw_get::<Value>("err")
    {
        return Ok(Value::String(s));
    }
    match &err {
        Value::Error(e) => Ok(Value::String(lua.create_string(error_text(e))?)),
        _ => Ok(err),
    }
}

/// The message of an error raised from Rust, without mlua's decoration.
pub(crate) fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}

/// Redis' `redisLrand48` state: one per process, reset to seed 0 before
/// every script so `math.random` is deterministic.
pub(crate) fn rand48_next(state: &std::sync::atomic::AtomicU64) -> i32 {
    use std::sync::atomic::Ordering;
    let x = state.load(Ordering::Relaxed);
    let next = x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    state.store(next, Ordering::Relaxed);
    (next >> 17) as i32
}

/// `redisSrand48`.
pub(crate) fn rand48_seed(state: &std::sync::atomic::AtomicU64, seed: i32) {
    use std::sync::atomic::Ordering;
    state.store(((seed as u32 as u64) << 16) | 0x330E, Ordering::Relaxed);
}

fn rand_state(lua: &Lua) -> Option<Arc<Shared>> {
    lua.app_data_ref::<RunCtx>().map(|c| c.shared.clone())
}

/// Redis' `redis_math_random`.
fn math_random(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let shared = rand_state(lua).ok_or_else(|| lua_err("no state"))?;
    let r = f64::from(rand48_next(&shared.rand48) % i32::MAX) / f64::from(i32::MAX);
    let int_arg = |i: usize| -> mlua::Result<i32> {
        let v = args.get(i).cloned().unwrap_or(Value::Nil);
        match lua.coerce_number(v.clone())? {
            Some(n) => Ok(n as i32),
            None => Err(raise(
                lua,
                &format!(
                    "bad argument #{} to 'random' (number expected, got {})",
                    i + 1,
                    type_name(&v)
                ),
            )),
        }
    };
    match args.len() {
        0 => Ok(r),
        1 => {
            let u = int_arg(0)?;
            if u < 1 {
                return Err(raise(
                    lua,
                    "bad argument #1 to 'random' (interval is empty)",
                ));
            }
            Ok((r * f64::from(u)).floor() + 1.0)
        }
        2 => {
            let l = int_arg(0)?;
            let u = int_arg(1)?;
            if l > u {
                return Err(raise(
                    lua,
                    "bad argument #2 to 'random' (interval is empty)",
                ));
            }
            Ok((r * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l))
        }
        _ => Err(raise(lua, "wrong number of arguments")),
    }
}

fn math_randomseed(lua: &Lua, seed: Value) -> mlua::Result<()> {
    let shared = rand_state(lua).ok_or_else(|| lua_err("no state"))?;
    let n = lua.coerce_number(seed.clone())?.ok_or_else(|| {
        raise(
            lua,
            &format!(
                "bad argument #1 to 'randomseed' (number expected, got {})",
                type_name(&seed)
            ),
        )
    })?;
    rand48_seed(&shared.rand48, n as i32);
    Ok(())
}

/// Lua's name of a value's type, as error messages write it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// The `redis` table.
fn install_redis_api(lua: &Lua, redis: &Table, kind: Kind) -> mlua::Result<()> {
    redis.raw_set(
        "call",
        lua.create_function(|lua, args: MultiValue| redis_call(lua, args, true))?,
    )?;
    redis.raw_set(
        "pcall",
        lua.create_function(|lua, args: MultiValue| redis_call(lua, args, false))?,
    )?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let msg = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => s.as_bytes().to_vec(),
                _ => return push_error_table(lua, b"wrong number or type of arguments"),
            };
            let mut buf = msg;
            if buf.first() != Some(&b'-') {
                buf.insert(0, b'-');
            }
            push_error_table(lua, &buf)
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
            (1, Some(Value::String(s))) => {
                let t = lua.create_table()?;
                t.raw_set("ok", s.clone())?;
                Ok(t)
            }
            _ => push_error_table(lua, b"wrong number or type of arguments"),
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise_table(lua, "wrong number of arguments"));
            }
            let s = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Integer(i)) => i.to_string().into_bytes(),
                Some(Value::Number(n)) => crate::num::lua_tostring(*n).into_bytes(),
                _ => Vec::new(),
            };
            lua.create_string(crate::sha1hex(&s))
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() < 2 {
                return Err(raise_table(
                    lua,
                    "redis.log() requires two arguments or more.",
                ));
            }
            let level = match args.front().map(|v| lua.coerce_number(v.clone())) {
                Some(Ok(Some(n))) => n as i64,
                _ => {
                    return Err(raise_table(
                        lua,
                        "First argument must be a number (log level).",
                    ));
                }
            };
            if !(0..=3).contains(&level) {
                return Err(raise_table(lua, "Invalid debug level."));
            }
            let mut msg = String::new();
            for (i, v) in args.iter().skip(1).enumerate() {
                if i > 0 {
                    msg.push(' ');
                }
                match v {
                    Value::String(s) => msg.push_str(&String::from_utf8_lossy(&s.as_bytes())),
                    Value::Integer(n) => msg.push_str(&n.to_string()),
                    Value::Number(n) => msg.push_str(&crate::num::lua_tostring(*n)),
                    _ => {}
                }
            }
            match level {
                0 | 1 => tracing::debug!(target: "cairn_script", "{msg}"),
                2 => tracing::info!(target: "cairn_script", "{msg}"),
                _ => tracing::warn!(target: "cairn_script", "{msg}"),
            }
            Ok(())
        })?,
    )?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set("REDIS_VERSION", cairn_keyspace::REDIS_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", redis_version_num())?;
    redis.raw_set(
        "setresp",
        lua.create_function(|lua, args: MultiValue| {
            let v = if args.len() == 1 {
                args.front()
                    .and_then(|v| lua.coerce_number(v.clone()).ok().flatten())
            } else {
                None
            };
            let Some(v) = v else {
                return Err(raise_table(lua, "redis.setresp() requires one argument."));
            };
            let v = v as i64;
            if v != 2 && v != 3 {
                return Err(raise_table(lua, "RESP version must be 2 or 3."));
            }
            if let Some(mut c) = lua.app_data_mut::<RunCtx>() {
                c.resp = v as u8;
                let p = if v == 3 {
                    Protocol::Resp3
                } else {
                    Protocol::Resp2
                };
                if let Some(cl) = c.client.as_mut() {
                    cl.set_protocol(p);
                }
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise_table(lua, "redis.set_repl() requires one argument."));
            }
            let flags = args
                .front()
                .and_then(|v| lua.coerce_number(v.clone()).ok().flatten())
                .unwrap_or(-1.0) as i64;
            if !(0..=3).contains(&flags) {
                return Err(raise_table(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set(
        "acl_check_cmd",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(raise_table(
                    lua,
                    "Please specify at least one argument for this redis lib call",
                ));
            }
            let Ok(argv) = lua_args(&args) else {
                return Err(raise_table(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                ));
            };
            let known = lua
                .app_data_ref::<RunCtx>()
                .and_then(|c| {
                    c.client
                        .as_ref()
                        .map(|cl| cl.check(&argv, NestedRules::default()))
                })
                .map(|r| !matches!(r, Err(NestedError::Unknown) | Err(NestedError::Empty)));
            if known != Some(true) {
                return Err(raise_table(
                    lua,
                    "Invalid command passed to redis.acl_check_cmd()",
                ));
            }
            Ok(true)
        })?,
    )?;
    if kind == Kind::Functions {
        redis.raw_set(
            "register_function",
            lua.create_function(crate::functions::register_function)?,
        )?;
    }
    Ok(())
}

/// Raises Redis' `{err="ERR msg"}` table (`luaPushError` + `luaError`).
pub(crate) fn raise_table(lua: &Lua, msg: &str) -> mlua::Error {
    match push_error_table(lua, msg.as_bytes()) {
        Ok(t) => raise_error_table(lua, t),
        Err(e) => e,
    }
}

/// Raises an error table: the script's `pcall` and the error handler get
/// the table itself back (see `take_error`).
pub(crate) fn raise_error_table(lua: &Lua, t: Table) -> mlua::Error {
    let msg = t
        .raw_get::<mlua::LuaString>("err")
        .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
        .unwrap_or_default();
    if let Some(mut c) = lua.app_data_mut::<RunCtx>() {
        c.pending = Some((msg.clone(), t));
    }
    mlua::Error::RuntimeError(msg)
}

/// `REDIS_VERSION_NUM`: 0x00MMmmpp.
fn redis_version_num() -> i64 {
    let mut parts = cairn_keyspace::REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (a << 16) | (b << 8) | c
}

/// The arguments of `redis.call`: strings, and numbers written `%.17g`;
/// all in one buffer (one allocation for them all), sliced.
fn lua_args(args: &MultiValue) -> Result<Vec<Bytes>, ()> {
    let cap: usize = args
        .iter()
        .map(|v| match v {
            Value::String(s) => s.as_bytes().len(),
            _ => 24,
        })
        .sum();
    let mut buf = bytes::BytesMut::with_capacity(cap);
    // Where each argument ends; on the stack for the usual few.
    let mut ends_small = [0usize; 16];
    let mut ends_big = Vec::new();
    for (i, v) in args.iter().enumerate() {
        match v {
            Value::String(s) => buf.extend_from_slice(&s.as_bytes()),
            Value::Integer(n) => buf.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Value::Number(n) => buf.extend_from_slice(crate::num::fmt_g(*n, 17).as_bytes()),
            _ => return Err(()),
        }
        match ends_small.get_mut(i) {
            Some(e) => *e = buf.len(),
            None => ends_big.push(buf.len()),
        }
    }
    let all = buf.freeze();
    let ends = ends_small
        .iter()
        .take(args.len())
        .chain(ends_big.iter())
        .copied();
    let mut start = 0;
    Ok(ends
        .map(|end| {
            let b = all.slice(start..end);
            start = end;
            b
        })
        .collect())
}

/// `redis.call` (`raise`: errors are raised) and `redis.pcall`.
fn redis_call(lua: &Lua, args: MultiValue, raise: bool) -> mlua::Result<Value> {
    let fail = |msg: &str| -> mlua::Result<Value> {
        let t = push_error_table(lua, msg.as_bytes())?;
        t.raw_set("ignore_error_stats_update", true)?;
        if raise {
            Err(raise_error_table(lua, t))
        } else {
            Ok(Value::Table(t))
        }
    };
    if args.is_empty() {
        return fail("Please specify at least one argument for this redis lib call");
    }
    let Ok(argv) = lua_args(&args) else {
        return fail("Lua redis lib command arguments must be strings or integers");
    };
    let (result, resp) = {
        let Some(mut ctx) = lua.app_data_mut::<RunCtx>() else {
            return fail("internal error: no run context");
        };
        let rules = NestedRules {
            read_only: ctx.read_only,
            oom: ctx.oom,
        };
        let resp = ctx.resp;
        let Some(client) = ctx.client.as_mut() else {
            return fail("internal error: no script client");
        };
        let r = client.call(&argv, rules);
        if client.wrote() {
            // SCRIPT KILL now answers UNKILLABLE.
            ctx.shared
                .wrote
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // A script may spend its time in commands rather than in Lua.
        crate::check_busy(&mut ctx);
        (r, resp)
    };
    let frame = match result {
        Ok(f) => f,
        Err(e) => {
            let msg = match e {
                NestedError::Unknown | NestedError::Empty => {
                    "Unknown Redis command called from script".to_owned()
                }
                NestedError::Arity => {
                    "Wrong number of args calling Redis command from script".to_owned()
                }
                NestedError::NotAllowed => {
                    "This Redis command is not allowed from script".to_owned()
                }
                NestedError::WriteRefused => {
                    "Write commands are not allowed from read-only scripts.".to_owned()
                }
                NestedError::Denied(f) => match f {
                    Frame::Error(b) => format!("-{}", String::from_utf8_lossy(&b)),
                    _ => "-ERR write refused".to_owned(),
                },
                NestedError::NotExclusive => {
                    "internal error: script not running exclusively".to_owned()
                }
                _ => "ERR".to_owned(),
            };
            return fail(&msg);
        }
    };
    let is_err = matches!(frame, Frame::Error(_) | Frame::BlobError(_));
    let v = frame_to_lua(lua, frame, resp)?;
    if is_err && let Value::Table(t) = &v {
        t.raw_set("ignore_error_stats_update", true)?;
        if raise {
            return Err(raise_error_table(lua, t.clone()));
        }
    }
    Ok(v)
}
