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
mod lzf;
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

/// Instructions between two checks of the kill switch and the clock
/// (Redis checks every 100,000; cairn more often, so a script declares
/// itself busy soon after [`DECLARE_BUSY_AFTER`]).
const HOOK_EVERY: u32 = 10_000;

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
    /// The running function and its call, once it has declared itself
    /// busy (FUNCTION STATS, served meanwhile, reports it).
    busy_call: Mutex<Option<BusyCall>>,
    /// Libraries and functions loaded (FUNCTION STATS during a busy
    /// function, when the Lua side is in use).
    counts: Mutex<(usize, usize)>,
    /// Whether the running script is a function (FUNCTION KILL vs SCRIPT KILL).
    is_function: AtomicBool,
    /// `busy-reply-threshold` in milliseconds.
    busy_ms: AtomicU64,
    /// [`Scripting::abort`] was called.
    aborted: AtomicBool,
    /// Used memory was over `maxmemory` when the script command now
    /// running started (Redis' `server.script_oom`; set under the gate
    /// held for write, read by the same run).
    oom: AtomicBool,
}

impl Shared {
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Relaxed) || self.aborted.load(Ordering::Relaxed)
    }
}

/// A run that declared itself busy, as FUNCTION STATS shows it.
pub(crate) struct BusyCall {
    name: String,
    argv: Vec<Bytes>,
    started: Instant,
}

/// How long a script runs before it declares itself busy. Shorter runs
/// (nearly all) just hold the gate as any exclusive command does; after
/// this, commands waiting for the gate wait asynchronously instead.
pub(crate) const DECLARE_BUSY_AFTER: Duration = Duration::from_millis(1);

/// Called from the instruction hook and after each `redis.call`: declares
/// the run busy once it has lasted [`DECLARE_BUSY_AFTER`].
pub(crate) fn check_busy(c: &mut vm::RunCtx) {
    if !c.running {
        return;
    }
    let Some(run) = c.run.as_mut() else { return };
    if run.declared || run.started.elapsed() < DECLARE_BUSY_AFTER {
        return;
    }
    run.declared = true;
    let function = c.shared.is_function.load(Ordering::Relaxed);
    if function {
        *c.shared.busy_call.lock() = Some(BusyCall {
            name: run.name.clone(),
            argv: run.argv.clone(),
            started: run.started,
        });
    }
    run.ks.set_busy(Some(Busy {
        since: run.started,
        threshold: Duration::from_millis(c.shared.busy_ms.load(Ordering::Relaxed)),
        reply: err(busy_text(function)),
    }));
    release_worker();
}

/// How long a run that went long waits for its worker's queued tasks to
/// move to another thread ([`release_worker`]); on a loaded machine the
/// thread may take a while to start, and the script goes on regardless.
const HANDOFF_WAIT: Duration = Duration::from_millis(50);

/// Attempts at handing the worker over ([`release_worker`]).
const HANDOFF_ATTEMPTS: usize = 3;

/// Called once a run has declared itself busy: hands the tokio worker it
/// runs on (its queued tasks, including the one in the LIFO slot, which
/// other workers cannot steal) to another thread, as `block_in_place`
/// does, and lets the rest of the script run on this thread without it.
/// Otherwise a connection accepted just before a long script started
/// would get neither its reply nor `-BUSY` until the script ended.
///
/// Short runs (nearly all) never come here: `block_in_place` around every
/// call woke a blocking-pool thread per call, which cost more CPU than a
/// small script itself. `block_in_place` only hands the worker over when
/// its closure outlasts the new thread's start (the worker is taken back
/// on return otherwise), so the closure waits for a marker task queued
/// behind the worker's other tasks. Another worker may steal the marker
/// before the new thread starts; a second marker tells whether this
/// thread still runs the worker: spawned from a worker thread it sits in
/// that worker's LIFO slot (never stolen) and cannot run while the script
/// does, spawned from any other thread it runs elsewhere at once.
fn release_worker() {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return;
    }
    let marker = || {
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        handle.spawn(async move {
            let _ = tx.send(());
        });
        rx
    };
    for _ in 0..HANDOFF_ATTEMPTS {
        let queued = marker();
        tokio::task::block_in_place(move || {
            let _ = queued.recv_timeout(HANDOFF_WAIT);
        });
        if marker().recv_timeout(HANDOFF_WAIT).is_ok() {
            return;
        }
    }
    tracing::debug!("a long script kept its tokio worker");
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

/// The scripting extension: register it with
/// [`KeyspaceBuilder::extension`](cairn_keyspace::KeyspaceBuilder::extension).
///
/// A script call is an `EXCLUSIVE` command: it runs on the connection's
/// tokio worker holding the keyspace gate for write, with no hop to
/// another thread (a hop per call cost more than the script itself, and
/// pipelined calls run back to back). Most scripts end within
/// microseconds; one that runs longer than [`DECLARE_BUSY_AFTER`]
/// declares itself busy ([`Keyspace::set_busy`]), so other connections'
/// commands (including those already waiting for the gate) wait for it
/// without holding a worker, the other workers keep serving, and past
/// `busy-reply-threshold` those commands are answered `-BUSY`.
pub struct Scripting {
    core: Arc<Core>,
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
        }
    }

    /// The server stops without saving: the running script (even one that
    /// wrote, which SCRIPT KILL refuses) stops at its next instruction
    /// check, and scripts called from now on fail at once, so no command
    /// keeps a worker busy while connections close (Redis exits during a
    /// busy script on SHUTDOWN NOSAVE).
    pub fn abort(&self) {
        self.core.shared.aborted.store(true, Ordering::Relaxed);
        self.core.shared.kill.store(true, Ordering::Relaxed);
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
                busy_call: Mutex::new(None),
                counts: Mutex::new((0, 0)),
                is_function: AtomicBool::new(false),
                busy_ms: AtomicU64::new(5000),
                aborted: AtomicBool::new(false),
                oom: AtomicBool::new(false),
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
                move |lua, _| {
                    if shared.kill_requested() {
                        return Err(mlua::Error::RuntimeError(KILLED_MSG.to_owned()));
                    }
                    if let Some(mut c) = lua.app_data_mut::<RunCtx>() {
                        check_busy(&mut c);
                    }
                    Ok(mlua::VmState::Continue)
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
        let before = engine.funcs.version;
        engine
            .funcs
            .sync(ks, || self.new_vm(Kind::Functions))
            .map_err(|e| Frame::error(format!("ERR {e}")))?;
        let r = f(engine);
        if engine.funcs.version != before {
            *self.shared.counts.lock() = engine.funcs.counts();
        }
        Ok(r)
    }

    /// Compiles (or finds) a script; its sha1.
    fn load_script(engine: &mut Engine, body: &[u8]) -> Result<String, Frame> {
        let sha = sha1hex(body);
        if engine.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, skip) = shebang(body).map_err(|m| Frame::error(format!("ERR {m}")))?;
        let func = engine
            .eval
            .compile(&body[skip..], "@user_script")
            .map_err(|m| Frame::error(format!("ERR Error compiling script (new function): {m}")))?;
        engine.scripts.insert(sha.clone(), Script { func, flags });
        Ok(sha)
    }

    /// EVAL and friends, with the gate held for write.
    pub(crate) fn eval(&self, ks: &Keyspace, db: usize, args: &[Bytes]) -> Frame {
        let name = &args[0];
        let by_sha = name.len() >= 7 && name[..7].eq_ignore_ascii_case(b"evalsha");
        let ro = name.len() >= 3 && name[name.len() - 3..].eq_ignore_ascii_case(b"_ro");
        let numkeys = match parse_numkeys(args) {
            Ok(n) => n,
            Err(f) => return f,
        };
        let res = self.with_engine(ks, |engine| {
            const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
            // EVALSHA looks the script up without allocating.
            let mut buf = [0u8; 40];
            let owned;
            let sha: &str = if by_sha {
                let given = &args[1];
                if given.len() != 40 {
                    return err(NOSCRIPT);
                }
                for (d, c) in buf.iter_mut().zip(given.iter()) {
                    *d = c.to_ascii_lowercase();
                }
                match std::str::from_utf8(&buf) {
                    Ok(s) => s,
                    Err(_) => return err(NOSCRIPT),
                }
            } else {
                owned = match Self::load_script(engine, &args[1]) {
                    Ok(x) => x,
                    Err(f) => return f,
                };
                &owned
            };
            let Some(script) = engine.scripts.get(sha) else {
                return err(NOSCRIPT);
            };
            let keys = &args[3..3 + numkeys];
            let argv = &args[3 + numkeys..];
            self.run(
                ks,
                &engine.eval,
                Target::Eval(&script.func),
                sha,
                keys,
                argv,
                script.flags,
                ro,
                db,
                args,
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
        call: &[Bytes],
    ) -> Frame {
        let oom = self.shared.oom.load(Ordering::Relaxed);
        // Redis' processCommand: a script with flags is `denyoom` unless
        // it declares `allow-oom` or `no-writes`, and is refused before
        // it starts (before the MISCONF check, as there).
        if oom && !flags.compat && !flags.no_writes && !flags.allow_oom {
            return err("OOM command not allowed when used memory > 'maxmemory'.");
        }
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
        if self.shared.aborted.load(Ordering::Relaxed) {
            return err("ERR the server is shutting down");
        }
        let lua = &vm.lua;
        let function = matches!(target, Target::Function(_));
        {
            let Some(mut c) = lua.app_data_mut::<RunCtx>() else {
                return err("ERR scripting unavailable");
            };
            let client = c.client.get_or_insert_with(|| ks.nested_client());
            client.reset(db, Protocol::Resp2);
            c.read_only = ro || flags.no_writes;
            // Scripts without flags check each denyoom call until their
            // first write (Redis' `scriptVerifyOOM`); with flags they were
            // refused above, or declared allow-oom / no-writes.
            c.oom = oom && flags.compat;
            c.resp = 2;
            c.running = true;
            c.pending = None;
            let run = c.run.get_or_insert_with(|| vm::RunState {
                ks: ks.clone(),
                started: Instant::now(),
                declared: false,
                name: String::new(),
                argv: Vec::new(),
            });
            run.started = Instant::now();
            run.declared = false;
            if function {
                name.clone_into(&mut run.name);
                run.argv.clear();
                run.argv.extend_from_slice(call);
            }
        }
        self.shared.kill.store(false, Ordering::Relaxed);
        self.shared.wrote.store(false, Ordering::Relaxed);
        self.shared.is_function.store(function, Ordering::Relaxed);
        self.shared.running.store(true, Ordering::Release);
        let result = match target {
            Target::Eval(f) => vm.call_with(&vm.runner, f, keys, argv),
            Target::Function(f) => vm.call_with(&vm.fn_runner, f, keys, argv),
        };
        self.shared.running.store(false, Ordering::Release);
        let resp = {
            let Some(mut c) = lua.app_data_mut::<RunCtx>() else {
                return err("ERR scripting unavailable");
            };
            c.running = false;
            c.pending = None;
            if let Some(run) = c.run.as_mut()
                && run.declared
            {
                run.declared = false;
                *self.shared.busy_call.lock() = None;
                ks.set_busy(None);
            }
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
                    Ok(sha) => Frame::Bulk(Bytes::from(sha)),
                    Err(f) => f,
                });
                r.unwrap_or_else(|f| f)
            }
            ("kill", 2) => self.kill(false),
            ("debug", 3) => {
                let mode = &args[2];
                if mode.eq_ignore_ascii_case(b"no") {
                    // Debugging is off, as asked.
                    Frame::ok()
                } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
                    // Accepting it would run the next script undebugged.
                    err(
                        "ERR SCRIPT DEBUG YES|SYNC is not supported: cairn has no Lua debugger (LDB)",
                    )
                } else {
                    err("ERR Use SCRIPT DEBUG YES/SYNC/NO")
                }
            }
            ("help" | "flush" | "exists" | "load" | "kill" | "debug", _) => Frame::error(format!(
                "ERR wrong number of arguments for 'script|{sub}' command"
            )),
            _ => Frame::error(format!(
                "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    /// FUNCTION STATS while a function is busy (the Lua side is in use).
    fn busy_stats(&self) -> Frame {
        let running = match self.shared.busy_call.lock().as_ref() {
            Some(b) => Frame::Map(vec![
                (Frame::bulk("name"), Frame::bulk(b.name.clone())),
                (
                    Frame::bulk("command"),
                    Frame::Array(b.argv.iter().cloned().map(Frame::Bulk).collect()),
                ),
                (
                    Frame::bulk("duration_ms"),
                    Frame::Integer(
                        i64::try_from(b.started.elapsed().as_millis()).unwrap_or(i64::MAX),
                    ),
                ),
            ]),
            None => Frame::Null,
        };
        let (libs, funcs) = *self.shared.counts.lock();
        functions::stats_reply(running, libs, funcs)
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
        // Runs on the connection's worker holding the gate for write.
        let run = Flags::NOSCRIPT | Flags::STALE | Flags::EXCLUSIVE;
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
            // On the connection's worker; a run that goes long hands the
            // worker's other tasks to another thread (`release_worker`).
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
                core.shared.oom.store(ctx.script_oom(), Ordering::Relaxed);
                core.eval(ctx.keyspace(), ctx.db(), args)
            }
            "fcall" | "fcall_ro" => {
                core.shared.oom.store(ctx.script_oom(), Ordering::Relaxed);
                core.fcall(ctx.keyspace(), ctx.db(), args)
            }
            cmd @ ("script" | "function") => {
                // While a script runs these come without the gate: only
                // KILL is served then (the Lua side is in use).
                let kill = args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"kill"));
                // KILL never waits for the Lua side (the running script
                // holds it).
                if kill && args.len() == 2 {
                    return core.kill(cmd == "function");
                }
                if core.shared.running.load(Ordering::Acquire) {
                    let is_function = core.shared.is_function.load(Ordering::Relaxed);
                    let stats = args.len() == 2 && args[1].eq_ignore_ascii_case(b"stats");
                    if cmd == "function" && stats && is_function {
                        return core.busy_stats();
                    }
                    return err(busy_text(is_function));
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

    fn config_applied(&self, ks: &Keyspace, name: &str, value: &str) {
        let other = match name {
            "busy-reply-threshold" => "lua-time-limit",
            "lua-time-limit" => "busy-reply-threshold",
            _ => return,
        };
        if let Ok(ms) = value.parse::<u64>() {
            self.core.shared.busy_ms.store(ms, Ordering::Relaxed);
        }
        // One setting under two names in Redis 7.0: CONFIG GET of either
        // reads the value last set through either.
        ks.set_config_param(other, value);
    }
}
