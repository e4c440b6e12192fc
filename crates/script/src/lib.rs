//! Lua scripting and functions for cairn, as Redis 7.0 runs them: `EVAL`,
//! `EVALSHA`, their `_RO` forms and `SCRIPT`; `FUNCTION` and `FCALL`.
//!
//! [`Scripting`] is a keyspace [`Extension`]: the keyspace knows nothing of
//! Lua. Scripts run Lua 5.1 (through `mlua`, built from source) in one
//! long-lived state per kind (scripts, functions), never a new state per
//! call. A script call is an `EXCLUSIVE` command: it holds the keyspace
//! gate for write, and its `redis.call`s run through a
//! [`cairn_keyspace::NestedClient`] without a gate of their own, so the
//! whole script is one atomic step for every other client and for views
//! (a snapshot's cut never falls inside it). Function libraries are kept
//! as a keyspace payload ([`cairn_keyspace::Keyspace::set_payload`]), so
//! snapshots save them and restarts restore them; the script cache is not.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conv;
mod functions;
mod libs;
mod num;
mod vm;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_keyspace::{Busy, CommandSpec, Ctx, Extension, Flags, Frame, Keyspace, Protocol};
use mlua::{Function, Value};
use parking_lot::Mutex;

use crate::vm::{Kind, RunCtx, Vm};

/// The reply to a script stopped by `SCRIPT KILL`.
pub(crate) const KILLED_MSG: &str = "ERR Script killed by user with SCRIPT KILL...";

/// Instructions between two checks of the kill switch and the clock.
const HOOK_EVERY: u32 = 100_000;

/// `SHA1(data)` in lowercase hex.
pub(crate) fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// A seed for `math.random` taken from the clock at start.
fn initial_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(nanos) << 16) | 0x330E
}

/// State shared between the running script and other connections.
pub struct Shared {
    /// `redisLrand48`'s state.
    pub(crate) rand48: AtomicU64,
    kill: AtomicBool,
    running: AtomicBool,
    /// Whether the running script has written (SCRIPT KILL then refuses).
    wrote: AtomicBool,
    started: Mutex<Option<Instant>>,
    /// Whether the running script is a function (FUNCTION KILL vs SCRIPT KILL).
    is_function: AtomicBool,
    /// `busy-reply-threshold` in milliseconds.
    busy_ms: AtomicU64,
}

impl Shared {
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }
}

/// Flags of a script (`#!lua flags=...`) or a function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScriptFlags {
    /// No shebang: Redis' "eval compatibility mode".
    pub(crate) compat: bool,
    pub(crate) no_writes: bool,
    pub(crate) allow_oom: bool,
    pub(crate) allow_stale: bool,
    pub(crate) no_cluster: bool,
    pub(crate) allow_cross_slot: bool,
}

impl ScriptFlags {
    /// Parses one flag name.
    pub(crate) fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot = true,
            _ => return false,
        }
        true
    }

    /// The flag names, in Redis' order.
    pub(crate) fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, n) in [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot, "allow-cross-slot-keys"),
        ] {
            if on {
                v.push(n);
            }
        }
        v
    }
}

/// Redis' `evalExtractShebangFlags`: the flags and the length of the
/// shebang line (its newline is kept so line numbers do not move).
fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((
            ScriptFlags {
                compat: true,
                ..ScriptFlags::default()
            },
            0,
        ));
    }
    let end = body
        .iter()
        .position(|&c| c == b'\n')
        .ok_or_else(|| "Invalid script shebang".to_owned())?;
    let line = &body[2..end];
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if engine != b"lua" {
        return Err(format!(
            "Unexpected engine in script shebang: #!{}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = ScriptFlags::default();
    for part in parts {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        for f in list.split(|&c| c == b',').filter(|f| !f.is_empty()) {
            if !flags.set(f) {
                return Err(format!(
                    "Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(f)
                ));
            }
        }
    }
    Ok((flags, end))
}

/// A cached script.
#[derive(Clone)]
struct Script {
    func: Function,
    flags: ScriptFlags,
}

/// The Lua side: both states and the script cache.
struct Engine {
    eval: Vm,
    scripts: HashMap<String, Script>,
    funcs: functions::Functions,
}

/// The Lua side and the state shared with other connections.
pub(crate) struct Core {
    shared: Arc<Shared>,
    engine: Mutex<Option<Engine>>,
}

/// A script's work handed to the script thread.
type Job = Box<dyn FnOnce() + Send>;

/// The scripting extension: register it with
/// [`KeyspaceBuilder::extension`](cairn_keyspace::KeyspaceBuilder::extension).
///
/// Scripts run on a thread of their own that holds the keyspace gate for
/// write ([`Keyspace::exclusive`]) while the calling connection waits for
/// the reply: tokio's workers keep serving other connections, whose
/// commands wait for the script without holding a worker and are answered
/// `-BUSY` once `busy-reply-threshold` has passed ([`Keyspace::set_busy`]).
pub struct Scripting {
    core: Arc<Core>,
    jobs: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

impl Default for Scripting {
    fn default() -> Self {
        Scripting::new()
    }
}

impl Scripting {
    /// The extension, with no Lua state yet (they are created on first use).
    pub fn new() -> Scripting {
        Scripting {
            core: Arc::new(Core::new()),
            jobs: Mutex::new(None),
        }
    }

    /// Hands `job` to the script thread (started on first use).
    fn submit(&self, job: Job) -> Result<(), Job> {
        let mut jobs = self.jobs.lock();
        if jobs.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("cairn-script".into())
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
            if spawned.is_err() {
                return Err(job);
            }
            *jobs = Some(tx);
        }
        match jobs.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => Ok(()),
            Some(Err(back)) => {
                *jobs = None;
                Err(back.0)
            }
            None => Err(Box::new(|| {})),
        }
    }

    /// Runs a script call: inside EXEC at once (EXEC holds the gate for
    /// write), otherwise on the script thread, answering through
    /// [`Ctx::block`].
    fn defer(
        &self,
        ctx: &mut Ctx<'_>,
        args: &[Bytes],
        function: bool,
        work: fn(&Core, &Keyspace, usize, &[Bytes]) -> Frame,
    ) -> Frame {
        let ks = ctx.keyspace().clone();
        let db = ctx.db();
        if !ctx.may_defer() {
            return work(&self.core, &ks, db, args);
        }
        let core = self.core.clone();
        let args = args.to_vec();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let reply = busy_text(function);
            ks.set_busy(Some(Busy {
                since: Instant::now(),
                threshold: Duration::from_millis(core.shared.busy_ms.load(Ordering::Relaxed)),
                reply: err(reply),
            }));
            let frame = ks
                .exclusive(|| work(&core, &ks, db, &args))
                .unwrap_or_else(|| err("ERR script thread holds the keyspace already"));
            ks.set_busy(None);
            let _ = tx.send(frame);
        });
        if self.submit(job).is_err() {
            return err("ERR cannot start the script thread");
        }
        ctx.block(Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| err("ERR the script thread stopped"))
        }))
    }
}

/// Errors building a Lua state.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the Lua state: {0}")]
pub struct ScriptError(String);

fn err(msg: &str) -> Frame {
    Frame::error(msg.to_owned())
}

impl Core {
    fn new() -> Core {
        Core {
            shared: Arc::new(Shared {
                // Redis 7.0 seeds once at start, not per script.
                rand48: AtomicU64::new(initial_seed()),
                kill: AtomicBool::new(false),
                running: AtomicBool::new(false),
                wrote: AtomicBool::new(false),
                started: Mutex::new(None),
                is_function: AtomicBool::new(false),
                busy_ms: AtomicU64::new(5000),
            }),
            engine: Mutex::new(None),
        }
    }

    fn new_vm(&self, kind: Kind) -> Result<Vm, ScriptError> {
        let vm = Vm::new(kind, self.shared.clone()).map_err(|e| ScriptError(e.to_string()))?;
        let shared = self.shared.clone();
        vm.lua
            .set_hook(
                mlua::HookTriggers::new().every_nth_instruction(HOOK_EVERY),
                move |_, _| {
                    if shared.kill_requested() {
                        Err(mlua::Error::RuntimeError(KILLED_MSG.to_owned()))
                    } else {
                        Ok(mlua::VmState::Continue)
                    }
                },
            )
            .map_err(|e| ScriptError(e.to_string()))?;
        Ok(vm)
    }

    fn with_engine<R>(&self, ks: &Keyspace, f: impl FnOnce(&mut Engine) -> R) -> Result<R, Frame> {
        let mut guard = self.engine.lock();
        if guard.is_none() {
            let eval = self
                .new_vm(Kind::Eval)
                .map_err(|e| Frame::error(format!("ERR {e}")))?;
            *guard = Some(Engine {
                eval,
                scripts: HashMap::new(),
                funcs: functions::Functions::default(),
            });
        }
        let Some(engine) = guard.as_mut() else {
            return Err(err("ERR scripting unavailable"));
        };
        engine
            .funcs
            .sync(ks, || self.new_vm(Kind::Functions))
            .map_err(|e| Frame::error(format!("ERR {e}")))?;
        Ok(f(engine))
    }

    /// Compiles (or finds) a script; its sha1.
    fn load_script(engine: &mut Engine, body: &[u8]) -> Result<(String, Script), Frame> {
        let sha = sha1hex(body);
        if let Some(s) = engine.scripts.get(&sha) {
            return Ok((sha, s.clone()));
        }
        let (flags, skip) = shebang(body).map_err(|m| Frame::error(format!("ERR {m}")))?;
        let func = engine
            .eval
            .compile(&body[skip..], "@user_script")
            .map_err(|m| Frame::error(format!("ERR Error compiling script (new function): {m}")))?;
        let s = Script { func, flags };
        engine.scripts.insert(sha.clone(), s.clone());
        Ok((sha, s))
    }

    /// EVAL and friends, with the gate held for write.
    pub(crate) fn eval(&self, ks: &Keyspace, db: usize, args: &[Bytes]) -> Frame {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let by_sha = name.starts_with("evalsha");
        let ro = name.ends_with("_ro");
        let numkeys = match parse_numkeys(args) {
            Ok(n) => n,
            Err(f) => return f,
        };
        let protocol = Protocol::Resp2;
        let res = self.with_engine(ks, |engine| {
            let (sha, script) = if by_sha {
                let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
                match engine.scripts.get(&sha) {
                    Some(s) if sha.len() == 40 => (sha, s.clone()),
                    _ => return err("NOSCRIPT No matching script. Please use EVAL."),
                }
            } else {
                match Self::load_script(engine, &args[1]) {
                    Ok(x) => x,
                    Err(f) => return f,
                }
            };
            let keys = &args[3..3 + numkeys];
            let argv = &args[3 + numkeys..];
            self.run(
                ks,
                &engine.eval,
                Target::Eval(&script.func),
                &sha,
                keys,
                argv,
                script.flags,
                ro,
                db,
                protocol,
            )
        });
        res.unwrap_or_else(|f| f)
    }

    /// Redis' `scriptPrepareForRun` checks, the run, and the reply.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ks: &Keyspace,
        vm: &Vm,
        target: Target<'_>,
        name: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        flags: ScriptFlags,
        ro: bool,
        db: usize,
        protocol: Protocol,
    ) -> Frame {
        if !flags.compat && !flags.no_writes {
            if ks.deny_write().is_some() {
                return err(
                    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.",
                );
            }
            if ro {
                return err("ERR Can not execute a script with write flag using *_ro command.");
            }
        }
        let lua = &vm.lua;
        let tables = (|| -> mlua::Result<(mlua::Table, mlua::Table)> {
            let k = lua.create_table_with_capacity(keys.len(), 0)?;
            for (i, key) in keys.iter().enumerate() {
                k.raw_set(i + 1, lua.create_string(key)?)?;
            }
            let a = lua.create_table_with_capacity(argv.len(), 0)?;
            for (i, arg) in argv.iter().enumerate() {
                a.raw_set(i + 1, lua.create_string(arg)?)?;
            }
            Ok((k, a))
        })();
        let Ok((ktab, atab)) = tables else {
            return err("ERR cannot create the script's arguments");
        };
        if let Target::Eval(_) = target
            && (vm.globals.raw_set("KEYS", ktab.clone()).is_err()
                || vm.globals.raw_set("ARGV", atab.clone()).is_err())
        {
            return err("ERR cannot set KEYS and ARGV");
        }
        {
            let Some(mut c) = lua.app_data_mut::<RunCtx>() else {
                return err("ERR scripting unavailable");
            };
            let client = c.client.get_or_insert_with(|| ks.nested_client());
            client.reset(db, Protocol::Resp2);
            c.read_only = ro || flags.no_writes;
            c.resp = 2;
            c.running = true;
            c.pending = None;
        }
        let _ = protocol;
        self.shared.kill.store(false, Ordering::Relaxed);
        self.shared.wrote.store(false, Ordering::Relaxed);
        self.shared
            .is_function
            .store(matches!(target, Target::Function(_)), Ordering::Relaxed);
        *self.shared.started.lock() = Some(Instant::now());
        self.shared.running.store(true, Ordering::Release);
        let result: mlua::Result<(bool, Value)> = match target {
            Target::Eval(f) => vm.runner.call(f.clone()),
            Target::Function(f) => vm.fn_runner.call((f.clone(), ktab, atab)),
        };
        self.shared.running.store(false, Ordering::Release);
        *self.shared.started.lock() = None;
        let resp = {
            let Some(mut c) = lua.app_data_mut::<RunCtx>() else {
                return err("ERR scripting unavailable");
            };
            c.running = false;
            c.pending = None;
            c.resp
        };
        self.shared.kill.store(false, Ordering::Relaxed);
        match result {
            Ok((true, v)) => conv::lua_to_frame(&v, resp),
            Ok((false, Value::Table(t))) => error_reply(&t, name),
            Ok((false, other)) => Frame::error(format!(
                "ERR Error running script {name}, {:.100}",
                other.to_string().unwrap_or_default()
            )),
            Err(e) => Frame::error(format!(
                "ERR Error running script {name}, {}",
                vm::error_text(&e)
            )),
        }
    }

    fn script_cmd(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let ks = ctx.keyspace();
        match (sub.as_str(), args.len()) {
            ("help", 2) => help(&[
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DEBUG (YES|SYNC|NO)",
                "    Set the debug mode for subsequent scripts executed.",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ]),
            ("flush", 2 | 3) => {
                if let Some(mode) = args.get(2)
                    && !mode.eq_ignore_ascii_case(b"sync")
                    && !mode.eq_ignore_ascii_case(b"async")
                {
                    return err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                }
                let fresh = match self.new_vm(Kind::Eval) {
                    Ok(v) => v,
                    Err(e) => return Frame::error(format!("ERR {e}")),
                };
                let r = self.with_engine(ks, |e| {
                    e.scripts.clear();
                    e.eval = fresh;
                });
                match r {
                    Ok(()) => Frame::ok(),
                    Err(f) => f,
                }
            }
            ("exists", n) if n >= 3 => {
                let r = self.with_engine(ks, |e| {
                    Frame::Array(
                        args[2..]
                            .iter()
                            .map(|s| {
                                let sha = String::from_utf8_lossy(s).to_ascii_lowercase();
                                Frame::Integer(i64::from(e.scripts.contains_key(&sha)))
                            })
                            .collect(),
                    )
                });
                r.unwrap_or_else(|f| f)
            }
            ("load", 3) => {
                let r = self.with_engine(ks, |e| match Self::load_script(e, &args[2]) {
                    Ok((sha, _)) => Frame::Bulk(Bytes::from(sha)),
                    Err(f) => f,
                });
                r.unwrap_or_else(|f| f)
            }
            ("kill", 2) => self.kill(false),
            ("help" | "flush" | "exists" | "load" | "kill", _) => Frame::error(format!(
                "ERR wrong number of arguments for 'script|{sub}' command"
            )),
            _ => Frame::error(format!(
                "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    /// SCRIPT KILL / FUNCTION KILL.
    fn kill(&self, function: bool) -> Frame {
        if !self.shared.running.load(Ordering::Acquire) {
            return err("NOTBUSY No scripts in execution right now.");
        }
        let is_function = self.shared.is_function.load(Ordering::Relaxed);
        // The other kind's KILL is refused as any command during a busy
        // script is.
        if is_function != function {
            return err(busy_text(is_function));
        }
        if self.shared.wrote.load(Ordering::Relaxed) {
            return err(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        self.shared.kill.store(true, Ordering::Relaxed);
        Frame::ok()
    }
}

/// The `-BUSY` text while a script (or a function) runs.
fn busy_text(function: bool) -> &'static str {
    if function {
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    } else {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    }
}

/// What a run executes.
pub(crate) enum Target<'a> {
    Eval(&'a Function),
    Function(&'a Function),
}

/// A raised error table as the reply: `-<err> script: <name>, on
/// <source>:<line>.`
fn error_reply(t: &mlua::Table, name: &str) -> Frame {
    let text = |k: &str| -> Option<String> {
        match t.raw_get::<Value>(k).ok()? {
            Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Number(n) => Some(num::lua_tostring(n)),
            _ => None,
        }
    };
    let mut msg = text("err").unwrap_or_default();
    if let (Some(source), Some(line)) = (text("source"), text("line")) {
        msg.push_str(&format!(" script: {name}, on {source}:{line}."));
    }
    Frame::error(msg)
}

fn help(lines: &[&str]) -> Frame {
    Frame::Array(
        lines
            .iter()
            .map(|l| Frame::Simple(Bytes::copy_from_slice(l.as_bytes())))
            .collect(),
    )
}

/// EVAL's and FCALL's `numkeys`.
fn parse_numkeys(args: &[Bytes]) -> Result<usize, Frame> {
    let n = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| cairn_keyspace::parse_canonical_i64(s.as_bytes()))
        .ok_or_else(|| err("ERR value is not an integer or out of range"))?;
    if n > (args.len() - 3) as i64 {
        return Err(err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(err("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

impl Extension for Scripting {
    fn commands(&self) -> Vec<CommandSpec> {
        let g = "scripting";
        let run = Flags::NOSCRIPT | Flags::STALE | Flags::DEFERS;
        vec![
            CommandSpec::new("eval", -3, run, g).doc("Execute a Lua script server side", "2.6.0"),
            CommandSpec::new("evalsha", -3, run, g)
                .doc("Execute a Lua script server side", "2.6.0"),
            CommandSpec::new("eval_ro", -3, run | Flags::READONLY, g)
                .doc("Execute a read-only Lua script server side", "7.0.0"),
            CommandSpec::new("evalsha_ro", -3, run | Flags::READONLY, g)
                .doc("Execute a read-only Lua script server side", "7.0.0"),
            CommandSpec::new("fcall", -3, run, g).doc("Invoke a function", "7.0.0"),
            CommandSpec::new("fcall_ro", -3, run | Flags::READONLY, g)
                .doc("Invoke a read-only function", "7.0.0"),
            CommandSpec::new("script", -2, Flags::NOSCRIPT | Flags::ALLOW_BUSY, g)
                .doc("A container for Lua scripts management commands", "2.6.0")
                .subs(&[
                    ("debug", 3),
                    ("exists", -3),
                    ("flush", -2),
                    ("help", 2),
                    ("kill", 2),
                    ("load", 3),
                ]),
            CommandSpec::new("function", -2, Flags::NOSCRIPT | Flags::ALLOW_BUSY, g)
                .doc("A container for function commands", "7.0.0")
                .subs(&[
                    ("delete", 3),
                    ("dump", 2),
                    ("flush", -2),
                    ("help", 2),
                    ("kill", 2),
                    ("list", -2),
                    ("load", -3),
                    ("restore", -3),
                    ("stats", 2),
                ]),
        ]
    }

    fn call(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        let core = &self.core;
        match ctx.command() {
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
                self.defer(ctx, args, false, Core::eval)
            }
            "fcall" | "fcall_ro" => self.defer(ctx, args, true, Core::fcall),
            cmd @ ("script" | "function") => {
                // While a script runs these come without the gate: only
                // KILL is served then (the Lua side is in use).
                let kill = args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"kill"));
                // KILL never waits for the Lua side (the running script
                // holds it).
                if kill && args.len() == 2 {
                    return core.kill(cmd == "function");
                }
                if !kill && core.shared.running.load(Ordering::Acquire) {
                    return err(busy_text(core.shared.is_function.load(Ordering::Relaxed)));
                }
                if cmd == "script" {
                    core.script_cmd(ctx, args)
                } else {
                    core.function_cmd(ctx, args)
                }
            }
            _ => err("ERR unknown command"),
        }
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        if name != "busy-reply-threshold" && name != "lua-time-limit" {
            return None;
        }
        Some(
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .map(|_| ())
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_owned()),
        )
    }

    fn config_applied(&self, _ks: &Keyspace, name: &str, value: &str) {
        if (name == "busy-reply-threshold" || name == "lua-time-limit")
            && let Ok(ms) = value.parse::<u64>()
        {
            self.core.shared.busy_ms.store(ms, Ordering::Relaxed);
        }
    }
}
