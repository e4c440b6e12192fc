//! One client's session: its state and the dispatch of its commands.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Protocol};
use tokio::sync::mpsc;

use crate::cmd::{Command, Ctx, Flags, Handler, err};
use crate::engine::Held;
use crate::keyspace::Keyspace;
use crate::pubsub::{Client, Subscriptions};
use crate::stats;
use crate::watch::DirtyFlag;

/// Per-connection state that commands read and change.
///
/// Families added later keep their per-client state here (the MULTI queue
/// is reserved already).
#[derive(Debug)]
pub struct SessionState {
    /// Client id (`CLIENT ID`).
    pub id: u64,
    /// Selected database.
    pub db: usize,
    /// Reply protocol.
    pub protocol: Protocol,
    /// `CLIENT SETNAME` / `HELLO SETNAME` name.
    pub name: Option<Bytes>,
    /// Whether `AUTH` succeeded (or no password is required).
    pub authenticated: bool,
    /// The queued commands while inside MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// Whether a command failed to queue inside MULTI (EXEC then aborts).
    pub multi_error: bool,
    /// The connection, when the session serves one.
    pub conn: Option<ConnInfo>,
    /// Sends pushes / kill requests to this session's connection.
    pub events: mpsc::UnboundedSender<Event>,
    /// Keys this client WATCHes, as (db, key).
    pub(crate) watched: Vec<(usize, Bytes)>,
    /// Set by any write to a watched key: EXEC then aborts.
    pub(crate) watch_dirty: DirtyFlag,
    /// Subscribed channels, in subscription order.
    pub(crate) channels: Vec<Bytes>,
    /// Subscribed patterns, in subscription order.
    pub(crate) patterns: Vec<Bytes>,
    /// `CLIENT NO-EVICT` / `CLIENT NO-TOUCH` settings.
    pub(crate) no_evict: bool,
    pub(crate) no_touch: bool,
    /// Used memory was over `maxmemory` when the script command now
    /// running started (Redis' `server.script_oom`).
    pub(crate) script_oom: bool,
    /// Replies are switched off (`CLIENT REPLY OFF`, Redis' `CLIENT_REPLY_OFF`).
    pub(crate) reply_off: bool,
    /// The command being executed is not answered (`CLIENT REPLY SKIP`
    /// came before it; Redis' `CLIENT_REPLY_SKIP`).
    pub(crate) reply_skip: bool,
    /// `CLIENT REPLY SKIP` ran: the next command is not answered (Redis'
    /// `CLIENT_REPLY_SKIP_NEXT`).
    pub(crate) reply_skip_next: bool,
    /// Whether the reply of the last executed command is dropped.
    pub(crate) reply_dropped: bool,
    /// The running command was queued in MULTI and runs inside EXEC.
    pub(crate) in_exec: bool,
    /// `CLIENT TRACKING ON` in effect (a copy of what the notifier holds,
    /// read after every read command without a lock).
    pub(crate) tracking: Option<crate::notify::TrackMode>,
    /// `CLIENT CACHING YES|NO` given for the next command.
    pub(crate) caching: bool,
    /// Invalidations addressed to this client by its own command, written
    /// after that command's reply.
    pub(crate) after_reply: Vec<Frame>,
    /// The client runs a script's commands (Redis' `CLIENT_SCRIPT`): SORT
    /// then orders a set's output even without sorting.
    pub(crate) script: bool,
    /// A script's client (MONITOR shows its commands as `[db lua]`).
    pub(crate) lua: bool,
}

impl SessionState {
    pub(crate) fn new(
        id: u64,
        conn: Option<ConnInfo>,
        authenticated: bool,
        events: mpsc::UnboundedSender<Event>,
    ) -> SessionState {
        SessionState {
            id,
            db: 0,
            protocol: Protocol::Resp2,
            name: None,
            authenticated,
            multi: None,
            multi_error: false,
            conn,
            events,
            watched: Vec::new(),
            watch_dirty: DirtyFlag::default(),
            channels: Vec::new(),
            patterns: Vec::new(),
            no_evict: false,
            no_touch: false,
            script_oom: false,
            reply_off: false,
            reply_skip: false,
            reply_skip_next: false,
            reply_dropped: false,
            in_exec: false,
            tracking: None,
            caching: false,
            after_reply: Vec::new(),
            script: false,
            lua: false,
        }
    }

    /// Whether the client is inside MULTI (queueing commands). Blocking
    /// commands check it to run as their non-blocking form.
    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Number of channel and pattern subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// A client session: implements [`cairn_resp::Session`].
pub struct Session {
    ks: Keyspace,
    state: SessionState,
    client: Arc<Client>,
    closed: bool,
    /// Served by the connection server, which can wait for a future and
    /// run a command again ([`cairn_resp::Session::take_retry`]).
    served: bool,
    /// The command to run again once the busy operation ends.
    retry: Option<Vec<Bytes>>,
}

/// Commands a RESP2 client may run while subscribed (Redis 7.0's list).
const SUBSCRIBED_OK: [&str; 9] = [
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Commands executed at once inside MULTI instead of being queued.
const NOT_QUEUED: [&str; 6] = ["exec", "discard", "multi", "watch", "quit", "reset"];

impl Session {
    pub(crate) fn new(ks: Keyspace, state: SessionState) -> Session {
        let client = ks
            .inner
            .clients
            .register(state.id, state.conn.clone(), state.events.clone());
        Session {
            ks,
            state,
            client,
            closed: false,
            served: false,
            retry: None,
        }
    }

    /// The session's state.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Executes a command given as strings and returns its reply; for tests
    /// and embedding. Blocking outcomes and commands answered only by
    /// pushes (SUBSCRIBE and friends) return `Null`; replies switched off
    /// by `CLIENT REPLY` are returned all the same. Commands flagged
    /// `DEFERS` (scripts) are waited for.
    pub fn command<S: AsRef<[u8]>>(&mut self, args: &[S]) -> Frame {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_ref()))
            .collect();
        let defers = args
            .first()
            .and_then(|n| self.ks.inner.table.lookup(n))
            .is_some_and(|c| c.spec.flags.contains(Flags::DEFERS));
        let outcome = self.execute(args);
        // No connection writes these after the reply: they go out as
        // pushes, after it all the same for a caller reading the reply
        // first.
        for f in std::mem::take(&mut self.state.after_reply) {
            let _ = self.state.events.send(Event::Push(f));
        }
        match outcome {
            Outcome::Reply(f) | Outcome::Close(f) => f,
            // Work handed to another thread always completes: wait for it.
            Outcome::Block(p) if defers => block_on(p),
            Outcome::Block(_) | Outcome::NoReply => Frame::Null,
        }
    }

    /// Executes one command: lookup, arity, authentication, the MULTI
    /// queue and the subscribed-mode and write-refusal checks, then the
    /// handler under the keyspace gate. Afterwards
    /// [`reply_suppressed`](cairn_resp::Session::reply_suppressed) tells
    /// whether `CLIENT REPLY` drops this command's reply.
    pub fn execute(&mut self, args: Vec<Bytes>) -> Outcome {
        // Redis checks the reply flags when a reply is added: at the end of
        // a command, after CLIENT REPLY ON/OFF/SKIP changed them, but for
        // EXEC when it starts its reply array, before the queued commands
        // (a CLIENT REPLY among them applies from the next command on).
        let exec = args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"));
        let dropped_before = self.state.reply_off || self.state.reply_skip;
        let client_cmd = args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"client"));
        let outcome = self.dispatch(args);
        let s = &mut self.state;
        s.after_reply.extend(crate::notify::take_after_reply());
        // Redis' `resetClient`: CLIENT CACHING covers the next command
        // only, or a whole MULTI ... EXEC.
        if s.multi.is_none() && !client_cmd {
            s.caching = false;
        }
        s.reply_dropped = if exec {
            dropped_before
        } else {
            s.reply_off || s.reply_skip
        };
        // Redis' `resetClient`, after every command however it ended: a
        // SKIP covers exactly the command after it.
        s.reply_skip = std::mem::take(&mut s.reply_skip_next);
        outcome
    }

    /// [`execute`](Self::execute) without the reply bookkeeping.
    fn dispatch(&mut self, args: Vec<Bytes>) -> Outcome {
        let ks = &self.ks;
        let state = &mut self.state;
        let Some(name) = args.first() else {
            return reject(ks, state, None, err("ERR empty command"));
        };
        let Some(cmd) = ks.inner.table.lookup(name) else {
            return reject(ks, state, None, unknown_command(&args));
        };
        let spec = &cmd.spec;
        if !spec.arity_ok(args.len()) {
            return refuse(
                ks,
                state,
                spec.name,
                Some(cmd.stat),
                Frame::error(format!(
                    "ERR wrong number of arguments for '{}' command",
                    spec.name
                )),
            );
        }
        // A container's subcommand is resolved, and its arity checked, as
        // Redis' `lookupCommand` does: before anything else, counted
        // under the subcommand (`cmdstat_config|get`).
        let slot = cmd.stat_slot(&args);
        if !spec.subs.is_empty()
            && let Some(sub) = args.get(1)
        {
            match spec
                .subs
                .iter()
                .find(|(n, _)| sub.eq_ignore_ascii_case(n.as_bytes()))
            {
                None => {
                    return reject(
                        ks,
                        state,
                        None,
                        Frame::error(format!(
                            "ERR unknown subcommand '{}'. Try {} HELP.",
                            String::from_utf8_lossy(sub),
                            spec.name.to_ascii_uppercase()
                        )),
                    );
                }
                Some(&(sub, arity)) => {
                    let sub_spec = crate::cmd::CommandSpec::new(sub, arity, Flags::NONE, "");
                    if !sub_spec.arity_ok(args.len()) {
                        return refuse(
                            ks,
                            state,
                            spec.name,
                            slot,
                            Frame::error(format!(
                                "ERR wrong number of arguments for '{}|{sub}' command",
                                spec.name
                            )),
                        );
                    }
                }
            }
        }
        // Redis checks `CMD_PROTECTED` commands right after the arity,
        // before authentication.
        if spec.name == "debug" && !debug_allowed(ks, state) {
            return refuse(ks, state, spec.name, slot, err(DEBUG_REFUSED));
        }
        if !state.authenticated && !spec.flags.contains(Flags::NO_AUTH) && ks.inner.auth.required()
        {
            return refuse(
                ks,
                state,
                spec.name,
                slot,
                err("NOAUTH Authentication required."),
            );
        }
        let in_multi = state.multi.is_some();
        if in_multi && spec.flags.contains(Flags::NO_MULTI) {
            return reject(
                ks,
                state,
                slot,
                err("ERR Command not allowed inside a transaction"),
            );
        }
        if let Some(refused) = check_maxmemory(ks, state, cmd, slot) {
            return refused;
        }
        // Redis refuses PING too while writes are refused (MISCONF).
        let writes = spec.flags.contains(Flags::WRITE)
            || spec.name == "ping"
            || (spec.name == "exec" && queues_write(ks, state));
        if writes && let Some(denied) = deny_write(ks) {
            return refuse(ks, state, spec.name, slot, denied);
        }
        if state.protocol == Protocol::Resp2
            && state.subscriptions() > 0
            && !SUBSCRIBED_OK.contains(&spec.name)
        {
            return refuse(
                ks,
                state,
                spec.name,
                slot,
                Frame::error(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    full_name(spec, &args)
                )),
            );
        }
        // CLIENT PAUSE holds the command back (Redis checks it before
        // queueing in MULTI too): it waits, without a worker thread, and
        // is handed back once the pause ends.
        if self.served
            && let Some(kind) = ks.inner.pause.current()
        {
            let held = match kind {
                crate::pause::PauseKind::All => true,
                crate::pause::PauseKind::Write => {
                    slot.and_then(|s| ks.inner.table.may_replicate.get(s))
                        .copied()
                        .unwrap_or(false)
                        || (spec.name == "exec" && queues_may_replicate(ks, state))
                }
            };
            if held {
                let ks = ks.clone();
                self.retry = Some(args);
                return Outcome::Block(Box::pin(async move {
                    ks.inner.pause.wait().await;
                    Frame::Null
                }));
            }
        }
        // A long exclusive operation (a busy script) holds the keyspace:
        // commands Redis flags `allow-busy` run meanwhile without the gate;
        // others wait for it without holding a worker thread, or past its
        // threshold are refused with its reply (-BUSY), before MULTI
        // queues them (Redis' order: the refusal dooms the transaction).
        let busy = ks.inner.busy.lock().clone();
        let allow_busy = busy.is_some() && allows_busy(spec, &args);
        if let Some(b) = busy
            && !allow_busy
        {
            if b.since.elapsed() >= b.threshold {
                return refuse(ks, state, spec.name, slot, b.reply);
            }
            if self.served {
                let ks = ks.clone();
                self.retry = Some(args);
                return Outcome::Block(Box::pin(async move {
                    ks.busy_wait().await;
                    Frame::Null
                }));
            }
        }
        if let Some(queue) = state.multi.as_mut()
            && !NOT_QUEUED.contains(&spec.name)
        {
            queue.push(args);
            self.publish_view(cmd.spec.name);
            return Outcome::Reply(Frame::simple("QUEUED"));
        }
        if allow_busy {
            let outcome = run_ungated(ks, state, cmd, &args);
            self.publish_view(cmd.spec.name);
            return outcome;
        }
        let outcome = if self.served {
            match run_served(ks, state, cmd, &args) {
                Some(o) => o,
                None => {
                    let ks = ks.clone();
                    self.retry = Some(args);
                    return Outcome::Block(Box::pin(async move {
                        ks.busy_wait().await;
                        Frame::Null
                    }));
                }
            }
        } else {
            run(ks, state, cmd, &args, true)
        };
        self.publish_view(cmd.spec.name);
        outcome
    }

    /// Updates what `CLIENT LIST` shows of this session.
    fn publish_view(&self, last_cmd: &'static str) {
        let s = &self.state;
        let mut v = self.client.view.lock();
        v.db = s.db;
        v.last_cmd = last_cmd;
        v.last_active = std::time::Instant::now();
        v.sub = s.channels.len();
        v.psub = s.patterns.len();
        v.multi = s.multi.as_ref().map_or(-1, |q| q.len() as i64);
        v.resp = if s.protocol == Protocol::Resp3 { 3 } else { 2 };
        v.no_evict = s.no_evict;
        v.no_touch = s.no_touch;
        if v.name != s.name {
            v.name.clone_from(&s.name);
        }
    }
}

/// Whether a command runs while a busy operation holds the keyspace:
/// Redis' `allow-busy` flag, for a container that of the subcommand
/// called (FUNCTION STATS and KILL, SCRIPT KILL; not FUNCTION LOAD).
fn allows_busy(spec: &crate::cmd::CommandSpec, args: &[Bytes]) -> bool {
    if !spec.flags.contains(Flags::ALLOW_BUSY) {
        return false;
    }
    if spec.subs.is_empty() {
        return true;
    }
    let Some(sub) = args.get(1) else {
        return false;
    };
    let full = format!(
        "{}|{}",
        spec.name,
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    );
    matches!(
        crate::cmd::meta::redis_info(&full),
        Some(Frame::Array(f)) if f.get(2).is_some_and(|fl| crate::cmd::meta::info_flags(fl).contains(Flags::ALLOW_BUSY))
    )
}

/// Redis' `fullname`: `container|subcommand` for a known subcommand.
fn full_name(spec: &crate::cmd::CommandSpec, args: &[Bytes]) -> String {
    let sub = args.get(1).and_then(|a| {
        spec.subs
            .iter()
            .find(|(n, _)| a.eq_ignore_ascii_case(n.as_bytes()))
    });
    match sub {
        Some((n, _)) => format!("{}|{n}", spec.name),
        None => spec.name.to_owned(),
    }
}

/// Answers `reply` for a command refused before running; inside MULTI the
/// refusal also dooms the transaction (Redis' `flagTransaction`). Counted
/// as Redis' `rejectCommand` does: a rejected call of the command (when
/// known) and an error reply.
fn reject(ks: &Keyspace, state: &mut SessionState, slot: Option<usize>, reply: Frame) -> Outcome {
    if state.multi.is_some() {
        state.multi_error = true;
    }
    let stats = &ks.inner.stats;
    if let Some(slot) = slot {
        stats.rejected(state.id, slot);
    }
    if let Frame::Error(e) = &reply {
        stats.error_reply(state.id, e);
    }
    Outcome::Reply(reply)
}

/// Refuses a known command before it runs. A refused EXEC (wrong arity,
/// NOAUTH, MISCONF, subscribed context) discards the transaction, or just
/// the WATCHes outside one, with `-EXECABORT` (Redis' `execCommandAbort`,
/// which `rejectCommand` calls whenever the command is EXEC); any other
/// refusal dooms a transaction in progress.
fn refuse(
    ks: &Keyspace,
    state: &mut SessionState,
    name: &str,
    slot: Option<usize>,
    reply: Frame,
) -> Outcome {
    if name != "exec" {
        return reject(ks, state, slot, reply);
    }
    if let Some(slot) = slot {
        ks.inner.stats.rejected(state.id, slot);
    }
    discard(ks, state);
    let text = match &reply {
        Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
        _ => String::new(),
    };
    // Redis formats its own rejections (arity, subscribed context) without
    // the `ERR ` code, and keeps the code of shared replies (NOAUTH, MISCONF).
    let text = text.strip_prefix("ERR ").unwrap_or(&text);
    let reply = Frame::error(format!(
        "EXECABORT Transaction discarded because of: {text}"
    ));
    if let Frame::Error(e) = &reply {
        ks.inner.stats.error_reply(state.id, e);
    }
    Outcome::Reply(reply)
}

/// Redis 7.0's `processCommand` maxmemory step: with `maxmemory` set,
/// evict as the policy says (or note that nothing can be freed), then
/// refuse with `-OOM` a command flagged `denyoom`, an EXEC whose queue
/// holds one, or any command queued inside MULTI except EXEC, DISCARD,
/// QUIT and RESET (queueing itself takes memory). Not while a busy script
/// holds the keyspace (Redis: `isInsideYieldingLongCommand`).
fn check_maxmemory(
    ks: &Keyspace,
    state: &mut SessionState,
    cmd: &Command,
    slot: Option<usize>,
) -> Option<Outcome> {
    // Without a limit: one relaxed load (and the flag scripts read).
    if ks.inner.evict.maxmemory() == 0 {
        state.script_oom = false;
        return None;
    }
    let name = cmd.spec.name;
    let script = SCRIPT_COMMANDS.contains(&name);
    if script {
        state.script_oom = false;
    }
    if !script && !crate::evict::over_limit(ks) {
        // The common case: one load of the allocator's count. Under the
        // limit, an eviction that stopped at its time limit is finished
        // (Redis' next performEvictions would find the memory state OK).
        return None;
    }
    if ks.is_busy() {
        return None;
    }
    let oom = crate::evict::perform(ks) == crate::evict::Verdict::Fail;
    if script {
        state.script_oom = oom;
    }
    if !oom {
        return None;
    }
    let denyoom = slot
        .and_then(|s| ks.inner.table.denyoom.get(s))
        .copied()
        .unwrap_or(false)
        || (name == "exec" && queues_denyoom(ks, state));
    let in_multi = state.multi.is_some() && !matches!(name, "exec" | "discard" | "quit" | "reset");
    (denyoom || in_multi).then(|| refuse(ks, state, name, slot, err(crate::evict::OOM_ERROR)))
}

/// Whether the MULTI queue holds a command flagged `denyoom` (Redis'
/// `mstate.cmd_flags`).
fn queues_denyoom(ks: &Keyspace, state: &SessionState) -> bool {
    state.multi.as_ref().is_some_and(|q| {
        q.iter().any(|args| {
            args.first()
                .and_then(|n| ks.inner.table.lookup(n))
                .and_then(|c| c.stat_slot(args))
                .and_then(|s| ks.inner.table.denyoom.get(s))
                .copied()
                .unwrap_or(false)
        })
    })
}

/// Whether the MULTI queue holds a write command.
fn queues_write(ks: &Keyspace, state: &SessionState) -> bool {
    state.multi.as_ref().is_some_and(|q| {
        q.iter().any(|args| {
            args.first()
                .and_then(|n| ks.inner.table.lookup(n))
                .is_some_and(|c| c.spec.flags.contains(Flags::WRITE))
        })
    })
}

/// Whether the MULTI queue holds a command CLIENT PAUSE WRITE holds back.
fn queues_may_replicate(ks: &Keyspace, state: &SessionState) -> bool {
    state.multi.as_ref().is_some_and(|q| {
        q.iter().any(|args| {
            args.first()
                .and_then(|n| ks.inner.table.lookup(n))
                .and_then(|c| c.stat_slot(args))
                .and_then(|s| ks.inner.table.may_replicate.get(s))
                .copied()
                .unwrap_or(false)
        })
    })
}

/// The first extension's refusal of writes, if any (e.g. `-MISCONF`).
fn deny_write(ks: &Keyspace) -> Option<Frame> {
    ks.inner.extensions.iter().find_map(|e| e.deny_write(ks))
}

/// Leaves MULTI and forgets the WATCHed keys (DISCARD, EXEC, RESET).
pub(crate) fn discard(ks: &Keyspace, state: &mut SessionState) {
    state.multi = None;
    state.multi_error = false;
    unwatch_all(ks, state);
}

/// Forgets every WATCHed key and clears the dirty flag.
pub(crate) fn unwatch_all(ks: &Keyspace, state: &mut SessionState) {
    let watches = &ks.engine().counters.watches;
    for (db, key) in state.watched.drain(..) {
        watches.unwatch(db as u32, &key, &state.watch_dirty);
    }
    state
        .watch_dirty
        .store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Drops every channel and pattern subscription of the session.
pub(crate) fn unsubscribe_all(ks: &Keyspace, state: &mut SessionState) {
    if state.channels.is_empty() && state.patterns.is_empty() {
        return;
    }
    let mut subs = ks.inner.pubsub.write();
    for c in state.channels.drain(..) {
        Subscriptions::remove(&mut subs.channels, &c, state.id);
    }
    for p in state.patterns.drain(..) {
        Subscriptions::remove(&mut subs.patterns, &p, state.id);
    }
}

/// Runs `cmd`. `gate` false means the caller already holds the gate for
/// write (EXEC running its queue).
pub(crate) fn run(
    ks: &Keyspace,
    state: &mut SessionState,
    cmd: &Command,
    args: &[Bytes],
    gate: bool,
) -> Outcome {
    let engine = ks.engine();
    // Held for the whole command so a view (which takes it for write) falls
    // between two commands, never inside one.
    let _gate = if gate {
        match engine.enter(gate_mode(cmd)) {
            Some(g) => Some(g),
            None => return Outcome::Reply(err(ERR_NESTED)),
        }
    } else {
        None
    };
    run_held(ks, state, cmd, args, gate)
}

/// Only reachable by executing an EXCLUSIVE command from inside another
/// command's handler.
const ERR_NESTED: &str = "ERR this command cannot run inside another command";

/// How a command holds the gate.
fn gate_mode(cmd: &Command) -> Held {
    if cmd.spec.flags.contains(Flags::EXCLUSIVE) {
        Held::Write
    } else {
        Held::Read
    }
}

/// [`run`] for a connection's command: `None` when a busy operation was
/// declared while the command waited for the gate (it did not run).
fn run_served(
    ks: &Keyspace,
    state: &mut SessionState,
    cmd: &Command,
    args: &[Bytes],
) -> Option<Outcome> {
    let _gate = match ks.engine().enter_unless(gate_mode(cmd), || ks.is_busy()) {
        Ok(Some(g)) => g,
        Ok(None) => return Some(Outcome::Reply(err(ERR_NESTED))),
        Err(crate::engine::GaveUp) => return None,
    };
    Some(run_held(ks, state, cmd, args, true))
}

/// [`run`] once the gate is held as the command needs (`gate` false: by
/// the caller, EXEC).
fn run_held(
    ks: &Keyspace,
    state: &mut SessionState,
    cmd: &Command,
    args: &[Bytes],
    gate: bool,
) -> Outcome {
    let engine = ks.engine();
    let now = engine.clock.now_ms();
    ks.inner.limits.load().install();
    // Only EXEC runs commands without taking the gate itself.
    let was_in_exec = std::mem::replace(&mut state.in_exec, !gate);
    // The client whose changes NOLOOP skips and whose own invalidations
    // wait for its reply (nested calls keep their caller's).
    let _current = gate.then(|| crate::notify::enter_client(state.id));
    let mut ctx = Ctx {
        ks,
        session: state,
        now,
        command: cmd.spec.name,
        special: None,
    };
    // Scripts show before the commands they run (Redis' EVAL and FCALL
    // feed the monitors themselves, first).
    if ks.inner.monitors.active() && SCRIPT_COMMANDS.contains(&cmd.spec.name) {
        feed_monitors(ks, ctx.session, args);
    }
    let outer = stats::begin_lookups(cmd.spec.flags.contains(Flags::READONLY));
    // Whether a script run by this command ran a read-only command (for
    // client-side caching); nested calls leave their caller's mark alone.
    let script_read_before = (!ctx.session.script).then(|| SCRIPT_READ.with(|r| r.replace(false)));
    let started = Instant::now();
    let reply = match &cmd.handler {
        Handler::Builtin(f) => f(&mut ctx, args),
        Handler::Ext(ext) => ext.call(&mut ctx, args),
    };
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let (hits, misses) = stats::end_lookups(outer);
    let special = ctx.special.take();
    state.in_exec = was_in_exec;
    let script_read = match script_read_before {
        Some(before) => SCRIPT_READ.with(|r| r.replace(before)),
        None => false,
    };
    if state.tracking.is_some() {
        remember_read_keys(ks, state, &cmd.spec, args, script_read);
    }
    record(ks, state.id, cmd, args, nanos, &reply, hits, misses);
    monitor(ks, state, cmd, args, nanos);
    if gate {
        // Clients blocked on keys this command filled are served before
        // its reply goes out, still under the gate (as Redis does after
        // each command; after EXEC as a whole, never inside it).
        ks.serve_blocked();
        // What Redis does in `beforeSleep`: BCAST invalidations and the
        // tracking table's size limit.
        ks.engine().counters.notify.after_command();
    }
    match special {
        Some(o) => o,
        None => Outcome::Reply(reply),
    }
}

thread_local! {
    /// Set when a script's nested client runs a read-only command: Redis
    /// 7.0 then tracks, for the script's caller, the keys the script
    /// command declared (`trackingRememberKeys` on `server.script_caller`,
    /// whose command is the EVAL or FCALL), not the keys the script read.
    static SCRIPT_READ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Redis' `trackingRememberKeys` after a read-only command: the keys it
/// named are tracked for the client, unless OPTIN without `CACHING YES`
/// or OPTOUT with `CACHING NO`. Script commands (EVAL_RO and FCALL_RO
/// included, as Redis excludes them) track their declared keys only when
/// the script ran a read-only command (`script_read`).
fn remember_read_keys(
    ks: &Keyspace,
    state: &SessionState,
    spec: &crate::cmd::CommandSpec,
    args: &[Bytes],
    script_read: bool,
) {
    let Some(mode) = &state.tracking else {
        return;
    };
    let reads = if SCRIPT_COMMANDS.contains(&spec.name) {
        script_read
    } else {
        spec.flags.contains(Flags::READONLY) && !spec.flags.contains(Flags::PUBSUB)
    };
    if mode.bcast || !reads || (mode.optin && !state.caching) || (mode.optout && state.caching) {
        return;
    }
    let keys = crate::cmd::getkeys::call_keys(spec, args);
    if !keys.is_empty() {
        ks.engine()
            .counters
            .notify
            .remember(state.id, keys.into_iter());
    }
}

/// Counts an executed command (Redis' `call`): its calls and time, a
/// failed call and an error reply when it answered an error, and the
/// keyspace hits and misses of its reads.
#[allow(clippy::too_many_arguments)]
fn record(
    ks: &Keyspace,
    client: u64,
    cmd: &Command,
    args: &[Bytes],
    nanos: u64,
    reply: &Frame,
    hits: u64,
    misses: u64,
) {
    let stats = &ks.inner.stats;
    let failed = matches!(reply, Frame::Error(_));
    stats.executed(client, cmd.stat_slot(args), nanos, failed);
    if let Frame::Error(e) = reply {
        stats.error_reply(client, e);
    }
    stats.lookups(client, hits, misses);
}

/// The slow log and the latency monitor after a command ran (Redis'
/// `call`): `command` or `fast-command` latency events, and a slow log
/// entry unless the command is flagged `skip_slowlog`.
fn monitor(ks: &Keyspace, state: &SessionState, cmd: &Command, args: &[Bytes], nanos: u64) {
    let micros = nanos / 1000;
    let event = if cmd.spec.flags.contains(Flags::FAST) {
        "fast-command"
    } else {
        "command"
    };
    ks.inner.latency.add_if_needed(event, micros / 1000);
    let slot = cmd.stat_slot(args);
    if ks.inner.monitors.active() {
        let skip = slot
            .and_then(|s| ks.inner.table.skip_monitor.get(s))
            .copied()
            .unwrap_or(true);
        if !skip {
            feed_monitors(ks, state, args);
        }
    }
    let log = &ks.inner.slowlog;
    if !log.wants(micros) {
        return;
    }
    let skip = slot
        .and_then(|s| ks.inner.table.skip_slowlog.get(s))
        .copied()
        .unwrap_or(false);
    if skip {
        return;
    }
    let peer = state
        .conn
        .as_ref()
        .map(|c| c.peer.to_string())
        .unwrap_or_default();
    let name = state.name.clone().unwrap_or_default();
    log.push(&redacted(args), micros, peer, name);
}

/// Redis 7.0's refusal of DEBUG under `enable-debug-command`.
const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// Whether `enable-debug-command` lets this client run DEBUG (the setting
/// is immutable, so it is read only when DEBUG is called).
fn debug_allowed(ks: &Keyspace, state: &SessionState) -> bool {
    let policy = ks
        .config_param("enable-debug-command")
        .and_then(|v| crate::limits::Protected::parse(&v))
        .unwrap_or(crate::limits::Protected::No);
    policy.allows(state.conn.as_ref())
}

/// Commands MONITOR shows before they run.
const SCRIPT_COMMANDS: [&str; 6] = [
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Sends a command to the MONITOR clients: `[db ip:port]`, or `[db lua]`
/// for a script's commands.
fn feed_monitors(ks: &Keyspace, state: &SessionState, args: &[Bytes]) {
    let origin = match &state.conn {
        Some(c) if !state.lua => match &c.peer {
            cairn_resp::Addr::Unix(path) => format!("{} unix:{path}", state.db),
            peer => format!("{} {peer}", state.db),
        },
        _ => format!("{} lua", state.db),
    };
    ks.inner.monitors.feed(&origin, &redacted(args));
}

/// The arguments as the slow log and MONITOR show them: passwords
/// replaced by `(redacted)`, as Redis' `redactClientCommandArgument`
/// (AUTH, HELLO ... AUTH, CONFIG SET of a password parameter).
pub(crate) fn redacted(args: &[Bytes]) -> Vec<Bytes> {
    const HIDDEN: Bytes = Bytes::from_static(b"(redacted)");
    let mut out: Vec<Bytes> = args.to_vec();
    let name = args
        .first()
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    match &name[..] {
        b"auth" => {
            for a in out.iter_mut().skip(1) {
                *a = HIDDEN;
            }
        }
        b"hello" => {
            let mut i = 2;
            while i < out.len() {
                if out.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"auth")) {
                    for a in out.iter_mut().skip(i + 1).take(2) {
                        *a = HIDDEN;
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        b"config" if args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"set")) => {
            let mut i = 2;
            while i + 1 < out.len() {
                let sensitive = out.get(i).is_some_and(|p| {
                    p.eq_ignore_ascii_case(b"requirepass") || p.eq_ignore_ascii_case(b"masterauth")
                });
                if sensitive && let Some(v) = out.get_mut(i + 1) {
                    *v = HIDDEN;
                }
                i += 2;
            }
        }
        _ => {}
    }
    out
}

/// Runs `cmd` without the gate while a busy operation holds it (commands
/// flagged `ALLOW_BUSY`, which touch no keys).
fn run_ungated(ks: &Keyspace, state: &mut SessionState, cmd: &Command, args: &[Bytes]) -> Outcome {
    let now = ks.engine().clock.now_ms();
    let mut ctx = Ctx {
        ks,
        session: state,
        now,
        command: cmd.spec.name,
        special: None,
    };
    let started = Instant::now();
    let reply = match &cmd.handler {
        Handler::Builtin(f) => f(&mut ctx, args),
        Handler::Ext(ext) => ext.call(&mut ctx, args),
    };
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let special = ctx.special.take();
    record(ks, state.id, cmd, args, nanos, &reply, 0, 0);
    match special {
        Some(o) => o,
        None => Outcome::Reply(reply),
    }
}

/// Polls a future to completion on this thread (parking between wakes):
/// [`Session::command`] waits for deferred work with no runtime at hand.
fn block_on(mut fut: cairn_resp::Pending) -> Frame {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(f) => return f,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Redis 7.0's text: the name and up to 128 characters of arguments.
fn unknown_command(args: &[Bytes]) -> Frame {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let name: String = name.chars().take(128).collect();
    let mut list = String::new();
    for a in args.iter().skip(1) {
        let room = 128usize.saturating_sub(list.len());
        if room == 0 {
            break;
        }
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        let _ = write!(list, "'{s}' ");
    }
    Frame::error(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

impl cairn_resp::Session for Session {
    fn call(&mut self, args: Vec<Bytes>) -> Outcome {
        self.served = true;
        self.execute(args)
    }

    fn take_retry(&mut self) -> Option<Vec<Bytes>> {
        self.retry.take()
    }

    fn protocol(&self) -> Protocol {
        self.state.protocol
    }

    /// Until `AUTH` succeeds on a server with `requirepass`, the connection
    /// server holds requests to Redis' unauthenticated limits.
    fn authenticated(&self) -> bool {
        self.state.authenticated || !self.ks.inner.auth.required()
    }

    /// Redis' `timeout`, shared by every connection.
    fn idle_limit(&self) -> Option<tokio::sync::watch::Receiver<std::time::Duration>> {
        Some(self.ks.inner.idle_timeout.subscribe())
    }

    /// Redis spares subscribers and monitors (replicas too, which cairn
    /// does not have) from `timeout`; blocked clients are not idle.
    fn idle_exempt(&self) -> bool {
        self.state.subscriptions() > 0 || self.ks.inner.monitors.contains(self.state.id)
    }

    /// `CLIENT REPLY OFF` / `SKIP` in effect for the command just executed.
    fn reply_suppressed(&self) -> bool {
        self.state.reply_dropped
    }

    fn after_reply(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.state.after_reply)
    }

    fn traffic(&mut self, input: usize, output: usize) {
        self.ks
            .inner
            .stats
            .net(self.state.id, input as u64, output as u64);
    }

    fn query_buffer_limit(&self) -> Option<usize> {
        let l = &self.ks.inner.input_limits;
        Some(l.query_buffer.load(Ordering::Relaxed))
    }

    fn max_bulk_len(&self) -> Option<usize> {
        Some(self.ks.inner.input_limits.bulk_len.load(Ordering::Relaxed))
    }

    /// Redis' `getClientType`: a client with subscriptions is of the
    /// pub/sub class, any other (MONITOR included) normal.
    fn output_limit(&self) -> cairn_resp::OutputLimit {
        let class = if self.state.subscriptions() > 0 {
            crate::limits::ClientClass::Pubsub
        } else {
            crate::limits::ClientClass::Normal
        };
        self.ks.inner.output_limits.get(class)
    }

    fn describe(&self) -> String {
        let (addr, laddr) = self
            .state
            .conn
            .as_ref()
            .map(|c| (c.peer.to_string(), c.local.to_string()))
            .unwrap_or_default();
        let name = self
            .state
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        format!(
            "id={} addr={addr} laddr={laddr} name={name} db={} sub={} psub={}",
            self.state.id,
            self.state.db,
            self.state.channels.len(),
            self.state.patterns.len()
        )
    }

    fn buffers(&mut self, qbuf: usize, omem: usize) {
        self.client.qbuf.store(qbuf, Ordering::Relaxed);
        self.client.omem.store(omem, Ordering::Relaxed);
    }

    fn closed(&mut self) {
        if !self.closed {
            self.closed = true;
            if self.state.tracking.take().is_some() {
                self.ks.engine().counters.notify.disable(self.state.id);
            }
            unwatch_all(&self.ks, &mut self.state);
            unsubscribe_all(&self.ks, &mut self.state);
            self.ks.inner.clients.unregister(self.state.id);
            self.ks.inner.monitors.remove(self.state.id);
            self.ks.inner.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        cairn_resp::Session::closed(self);
    }
}

/// Rules a [`NestedClient`] applies to each command, on top of the
/// command table's flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NestedRules {
    /// Refuse commands flagged `write` ([`NestedError::WriteRefused`]).
    pub read_only: bool,
    /// Used memory was over `maxmemory` when the script started (Redis'
    /// `server.script_oom`, see [`Ctx::script_oom`]): until the script
    /// has written, commands flagged `denyoom` are refused with `-OOM`
    /// (Redis' `scriptVerifyOOM`). Leave false for `allow-oom` scripts.
    pub oom: bool,
}

/// Why a [`NestedClient`] refused a command (it did not run).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NestedError {
    /// No argument at all.
    #[error("empty command")]
    Empty,
    /// No such command.
    #[error("unknown command")]
    Unknown,
    /// The command's arity does not accept this many arguments.
    #[error("wrong number of arguments")]
    Arity,
    /// The command is flagged `noscript` (MULTI, EXEC, EVAL, blocking
    /// forms, SUBSCRIBE, ...) or must hold the whole keyspace alone.
    #[error("command not allowed in a nested call")]
    NotAllowed,
    /// A write command under [`NestedRules::read_only`].
    #[error("write command refused by the read-only rule")]
    WriteRefused,
    /// A write command refused by an extension (`-MISCONF`): the reply.
    #[error("write refused")]
    Denied(Frame),
    /// The calling thread does not hold the keyspace gate for write: the
    /// nested command would not be atomic with its caller.
    #[error("nested calls need the keyspace gate held for write")]
    NotExclusive,
}

/// Runs commands from inside another command that holds the keyspace gate
/// for write (an `EXCLUSIVE` command such as a script call): they apply
/// at once, with no gate of their own, so the caller and all of them are
/// one atomic step for every other client and for views. It is a client
/// of its own, as Redis' script client: `SELECT` inside changes only its
/// database. Keep one and reuse it: creating one registers nothing but
/// allocates a session state.
pub struct NestedClient {
    ks: Keyspace,
    state: SessionState,
    wrote: bool,
}

impl NestedClient {
    pub(crate) fn new(ks: Keyspace, mut state: SessionState) -> NestedClient {
        state.script = true;
        NestedClient {
            ks,
            state,
            wrote: false,
        }
    }

    /// Sets the database and reply protocol the next commands run with
    /// (the caller's, at the start of each script).
    pub fn reset(&mut self, db: usize, protocol: Protocol) {
        self.state.db = db;
        self.state.protocol = protocol;
        self.wrote = false;
    }

    /// Changes the protocol the commands' replies are built for.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.state.protocol = protocol;
    }

    /// The protocol in effect.
    pub fn protocol(&self) -> Protocol {
        self.state.protocol
    }

    /// The database in effect.
    pub fn db(&self) -> usize {
        self.state.db
    }

    /// Whether a command flagged `write` ran since the last
    /// [`reset`](Self::reset).
    pub fn wrote(&self) -> bool {
        self.wrote
    }

    /// Checks a command without running it: the same refusals as
    /// [`call`](Self::call), and the command's flags when accepted.
    ///
    /// # Errors
    /// The refusal, as [`call`](Self::call) gives it.
    pub fn check(&self, args: &[Bytes], rules: NestedRules) -> Result<Flags, NestedError> {
        let name = args.first().ok_or(NestedError::Empty)?;
        let cmd = self
            .ks
            .inner
            .table
            .lookup(name)
            .ok_or(NestedError::Unknown)?;
        let flags = cmd.spec.flags;
        if !cmd.spec.arity_ok(args.len()) {
            return Err(NestedError::Arity);
        }
        if flags.contains(Flags::NOSCRIPT) || flags.contains(Flags::EXCLUSIVE) {
            return Err(NestedError::NotAllowed);
        }
        if flags.contains(Flags::WRITE) {
            if rules.read_only {
                return Err(NestedError::WriteRefused);
            }
            if let Some(denied) = deny_write(&self.ks) {
                return Err(NestedError::Denied(denied));
            }
        }
        if rules.oom
            && !self.wrote
            && self.ks.inner.evict.maxmemory() != 0
            && cmd
                .stat_slot(args)
                .and_then(|s| self.ks.inner.table.denyoom.get(s))
                .copied()
                .unwrap_or(false)
        {
            return Err(NestedError::Denied(err(crate::evict::OOM_ERROR)));
        }
        Ok(flags)
    }

    /// Runs one command and returns its reply (error replies included).
    ///
    /// # Errors
    /// The command was refused before running; see [`NestedError`].
    pub fn call(&mut self, args: &[Bytes], rules: NestedRules) -> Result<Frame, NestedError> {
        if crate::engine::held() != Held::Write {
            return Err(NestedError::NotExclusive);
        }
        let flags = self.check(args, rules)?;
        let Some(cmd) = args.first().and_then(|n| self.ks.inner.table.lookup(n)) else {
            return Err(NestedError::Unknown);
        };
        if flags.contains(Flags::WRITE) {
            self.wrote = true;
        }
        if flags.contains(Flags::READONLY) {
            SCRIPT_READ.with(|r| r.set(true));
        }
        Ok(match run(&self.ks, &mut self.state, cmd, args, false) {
            Outcome::Reply(f) | Outcome::Close(f) => f,
            // `in_exec` makes blocking forms answer at once; anything that
            // would still wait answers OK, as inside EXEC.
            Outcome::Block(_) => Frame::ok(),
            Outcome::NoReply => Frame::Null,
        })
    }
}
