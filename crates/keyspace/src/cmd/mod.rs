//! The command framework: specs, the table that drives dispatch, arity,
//! key positions and `COMMAND`, the per-call context, and argument helpers.
//!
//! One file per command family; each has a `register(&mut TableBuilder)`
//! that adds its commands, one line each (`t.redis("get", get)`): Redis'
//! embedded metadata describes the command, so only what cairn adds
//! (subcommands, EXCLUSIVE) is written here. To add a family: write
//! `cmd/<family>.rs` with handlers `fn(&mut Ctx<'_>, &[Bytes]) -> Frame`,
//! parse arguments with [`args`] and numbers with [`crate::num`], and call
//! its `register` from [`builtin_table`].

pub(crate) mod acl;
pub(crate) mod args;
pub(crate) mod bitmap;
pub(crate) mod connection;
pub(crate) mod geo;
pub(crate) mod getkeys;
pub(crate) mod hash;
pub(crate) mod hll;
pub(crate) mod introspect;
pub(crate) mod keys;
pub(crate) mod list;
pub(crate) mod lolwut;
pub(crate) mod memory;
pub(crate) mod meta;
pub(crate) mod pubsub;
pub(crate) mod server;
pub(crate) mod set;
pub(crate) mod sort;
pub(crate) mod stream;
pub(crate) mod strings;
pub(crate) mod tracking;
pub(crate) mod tx;
pub(crate) mod zset;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use cairn_resp::{Frame, Outcome, Pending};
use hashbrown::HashMap;

use crate::engine::{Locked, Shard};
use crate::keyspace::Keyspace;
use crate::num::string2ll;
use crate::session::SessionState;
use crate::value::WrongType;

/// Command flags, as `COMMAND INFO` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// May modify the keyspace.
    pub const WRITE: Flags = Flags(1);
    /// Only reads the keyspace.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory use.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Pub/sub related.
    pub const PUBSUB: Flags = Flags(1 << 4);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// May block the client.
    pub const BLOCKING: Flags = Flags(1 << 6);
    /// Allowed while loading.
    pub const LOADING: Flags = Flags(1 << 7);
    /// Allowed on a stale replica.
    pub const STALE: Flags = Flags(1 << 8);
    /// O(1) or O(log N).
    pub const FAST: Flags = Flags(1 << 9);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 10);
    /// Not queued inside MULTI (executed or refused immediately).
    pub const NO_MULTI: Flags = Flags(1 << 11);
    /// cairn-internal: runs with every other command held off (the gate is
    /// taken for write), e.g. FLUSHALL, SWAPDB, EXEC. Not shown by COMMAND.
    pub const EXCLUSIVE: Flags = Flags(1 << 30);
    /// cairn-internal: runs while a long exclusive operation (a busy
    /// script, see [`Keyspace::set_busy`]) holds the keyspace, without the
    /// gate: SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE. Its handler must
    /// not touch keys. Redis' `allow-busy`.
    pub const ALLOW_BUSY: Flags = Flags(1 << 29);
    /// cairn-internal: the command may answer with [`Ctx::block`] for work
    /// that always completes (a script run on a thread of its own);
    /// [`Session::command`](crate::Session::command) waits for that reply
    /// instead of answering nil as for blocking commands.
    pub const DEFERS: Flags = Flags(1 << 28);

    pub(crate) const NAMES: [(Flags, &'static str); 12] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_MULTI, "no_multi"),
    ];

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The names of the flags set, for `COMMAND INFO`.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.with(rhs)
    }
}

/// The static description of a command: drives dispatch, arity checks, key
/// extraction and `COMMAND INFO`/`COMMAND DOCS`.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments including the name; -N means
    /// at least N.
    pub arity: i32,
    /// Flags.
    pub flags: Flags,
    /// Index of the first key argument (0: no keys).
    pub first_key: i32,
    /// Index of the last key argument (-1: the last argument).
    pub last_key: i32,
    /// Step between key arguments.
    pub key_step: i32,
    /// The command group (`string`, `generic`, `server`, `connection`, ...).
    pub group: &'static str,
    /// One-line summary for `COMMAND DOCS`.
    pub summary: &'static str,
    /// Version since which the command exists, for `COMMAND DOCS`.
    pub since: &'static str,
    /// A container's subcommands as (name, arity), for dispatch and for
    /// `COMMAND INFO`/`COMMAND LIST`; empty for plain commands.
    pub subs: &'static [(&'static str, i32)],
}

impl CommandSpec {
    /// A spec with no keys; chain [`CommandSpec::keys`] for key positions.
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: Flags,
        group: &'static str,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            first_key: 0,
            last_key: 0,
            key_step: 0,
            group,
            summary: "",
            since: "1.0.0",
            subs: &[],
        }
    }

    /// The spec Redis 7.0.15's own metadata gives `name` (lowercase): arity,
    /// flags and key positions from its `COMMAND INFO`, group, summary and
    /// version from its `COMMAND DOCS`. `None` for a command Redis lacks.
    ///
    /// A container (a command with subcommands) has no flags of its own in
    /// Redis; chain [`CommandSpec::subs`] to give it the union of the flags
    /// of the subcommands it implements.
    pub fn redis(name: &'static str) -> Option<CommandSpec> {
        let Frame::Array(info) = meta::redis_info(name)? else {
            return None;
        };
        let int = |i: usize| match info.get(i) {
            Some(Frame::Integer(n)) => i32::try_from(*n).ok(),
            _ => None,
        };
        let docs = meta::redis_docs(name);
        let doc = |field: &[u8]| docs.and_then(|d| meta::doc_str(d, field)).unwrap_or("");
        Some(CommandSpec {
            name,
            arity: int(1)?,
            flags: meta::info_flags(info.get(2)?),
            first_key: int(3)?,
            last_key: int(4)?,
            key_step: int(5)?,
            group: doc(b"group"),
            summary: doc(b"summary"),
            since: doc(b"since"),
            subs: &[],
        })
    }

    /// Sets the key positions.
    #[must_use]
    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> CommandSpec {
        self.first_key = first;
        self.last_key = last;
        self.key_step = step;
        self
    }

    /// Sets the summary and version for `COMMAND DOCS`.
    #[must_use]
    pub const fn doc(mut self, summary: &'static str, since: &'static str) -> CommandSpec {
        self.summary = summary;
        self.since = since;
        self
    }

    /// Marks a container and names its subcommands. A container Redis
    /// describes takes the union of the flags Redis gives those
    /// subcommands, which is what dispatch (NO_AUTH, WRITE, ...) checks.
    #[must_use]
    pub fn subs(mut self, subs: &'static [(&'static str, i32)]) -> CommandSpec {
        self.subs = subs;
        for (sub, _) in subs {
            if let Some(Frame::Array(info)) = meta::redis_info(&format!("{}|{sub}", self.name))
                && let Some(flags) = info.get(2)
            {
                self.flags = self.flags.with(meta::info_flags(flags));
            }
        }
        self
    }

    /// Adds flags (cairn's own, such as [`Flags::EXCLUSIVE`]).
    #[must_use]
    pub const fn also(mut self, flags: Flags) -> CommandSpec {
        self.flags = self.flags.with(flags);
        self
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// The key arguments of a call, by the spec's positions.
    pub fn key_args<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> + 'a {
        let n = args.len() as i64;
        let first = i64::from(self.first_key);
        let last = if self.last_key < 0 {
            n + i64::from(self.last_key)
        } else {
            i64::from(self.last_key)
        };
        let step = i64::from(self.key_step.max(1));
        let range = if first <= 0 {
            0..0
        } else {
            first..(last + 1).min(n)
        };
        range
            .step_by(step as usize)
            .filter_map(move |i| args.get(i as usize))
    }
}

/// Work an extension has started that a command's reply waits for (see
/// [`Extension::after_flushall`]). Dropping it must not cancel the work.
pub type Completion = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A command added by the embedding program (SAVE, SHUTDOWN, ...).
///
/// Extensions see the same [`Ctx`] as built-in commands and can contribute
/// sections to `INFO`. A command whose spec has [`Flags::EXCLUSIVE`] runs
/// with the gate held for write, so its handler can call
/// [`Keyspace::view`]: the view's cut falls exactly between that command
/// and the next one (BGSAVE).
pub trait Extension: Send + Sync + 'static {
    /// The commands this extension handles.
    fn commands(&self) -> Vec<CommandSpec>;

    /// Executes one of its commands; `ctx.command()` names which.
    fn call(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame;

    /// The names (lowercase) of the `INFO` sections this extension writes.
    fn info_sections(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The body of an `INFO` section: `field:value\r\n` lines.
    fn info(&self, _ks: &Keyspace, _section: &str) -> Option<String> {
        None
    }

    /// Called by `CONFIG SET name value` (name lowercase) before the value
    /// is stored: `None` if this extension does not own the parameter,
    /// `Some(Err(reason))` to refuse it, `Some(Ok(()))` to accept it.
    fn config_set(&self, _ks: &Keyspace, _name: &str, _value: &[u8]) -> Option<Result<(), String>> {
        None
    }

    /// Called after a `CONFIG SET` succeeded and stored its values (all or
    /// nothing), once per parameter it set, in the command's order, with
    /// the lowercase name and the value as stored (as `CONFIG GET` now
    /// reports it), parameters this extension validated in
    /// [`config_set`](Self::config_set) included. Every extension sees
    /// every parameter.
    ///
    /// `CONFIG SET`s are serialised from validation to the last of these
    /// calls, so the last call for a name carries the value in effect. It
    /// runs inside the command (the gate held for read): it must not run
    /// `CONFIG SET` itself nor take a view.
    fn config_applied(&self, _ks: &Keyspace, _name: &str, _value: &str) {}

    /// Called by `FLUSHALL` (`SYNC` or `ASYNC`, on its own or inside
    /// `EXEC`) right after the flush, its change counted, while the gate
    /// is still held for write: a [`Keyspace::view`] taken here is the
    /// empty keyspace, before any other command.
    ///
    /// Returning `Some(work)` makes a top-level `FLUSHALL` answer `+OK`
    /// only once `work` has completed, as Redis answers after the save it
    /// makes when save points are set; the wait holds neither the gate nor
    /// a worker thread, and later commands of the same connection wait
    /// behind it. Inside `EXEC` the transaction's reply does not wait: the
    /// future is dropped unpolled. So the extension must start the work
    /// itself (spawn it) and return a future that only waits for it:
    /// dropping that future must not cancel the work.
    fn after_flushall(&self, _ks: &Keyspace) -> Option<Completion> {
        None
    }

    /// Consulted before a write command (or PING, or an EXEC whose queue
    /// holds a write) is queued or run: `Some(error)` refuses it, e.g.
    /// `-MISCONF` while snapshots fail. A refusal inside MULTI dooms the
    /// transaction; refusing EXEC discards it with `-EXECABORT`.
    fn deny_write(&self, _ks: &Keyspace) -> Option<Frame> {
        None
    }

    /// `DEBUG RELOAD`, for the extension that persists the dataset: saves
    /// it (unless `save` is false: `NOSAVE`), calls `empty` (Redis'
    /// `emptyData`; `None` for `NOFLUSH MERGE`, when the snapshot's keys
    /// replace the ones in memory), then loads the snapshot back. Called
    /// inside the command with the gate held for write, so nothing runs
    /// in between: everything must happen before it returns. `None`: this
    /// extension does not persist. `Err`: the error reply.
    fn debug_reload(
        &self,
        _ks: &Keyspace,
        _save: bool,
        _empty: Option<&dyn Fn()>,
    ) -> Option<Result<(), Frame>> {
        None
    }
}

/// A built-in command handler.
pub type CommandFn = fn(&mut Ctx<'_>, &[Bytes]) -> Frame;

#[derive(Clone)]
pub(crate) enum Handler {
    Builtin(CommandFn),
    Ext(Arc<dyn Extension>),
}

#[derive(Clone)]
pub(crate) struct Command {
    pub(crate) spec: CommandSpec,
    pub(crate) handler: Handler,
    /// Its statistics slot; its subcommands' follow, in `spec.subs` order.
    pub(crate) stat: usize,
}

impl Command {
    /// The statistics slot of a call (Redis counts a container's calls
    /// under the subcommand, `config|get`): `None` for an unknown
    /// subcommand, which Redis rejects without a command to count it on.
    pub(crate) fn stat_slot(&self, args: &[Bytes]) -> Option<usize> {
        if self.spec.subs.is_empty() || args.len() < 2 {
            return Some(self.stat);
        }
        let sub = args.get(1)?;
        let i = self
            .spec
            .subs
            .iter()
            .position(|(n, _)| sub.eq_ignore_ascii_case(n.as_bytes()))?;
        Some(self.stat + 1 + i)
    }
}

/// Collects commands into a [`Table`].
#[derive(Default)]
pub struct TableBuilder {
    commands: Vec<Command>,
}

impl TableBuilder {
    /// Adds a built-in command, replacing one of the same name.
    pub fn add(&mut self, spec: CommandSpec, f: CommandFn) {
        self.push(Command {
            spec,
            handler: Handler::Builtin(f),
            stat: 0,
        });
    }

    /// Adds a built-in command Redis 7.0 has, described by Redis' own
    /// metadata ([`CommandSpec::redis`]).
    pub(crate) fn redis(&mut self, name: &'static str, f: CommandFn) {
        self.redis_with(name, |s| s, f);
    }

    /// [`TableBuilder::redis`] with what cairn adds to Redis' description:
    /// its subcommands, its own flags.
    pub(crate) fn redis_with(
        &mut self,
        name: &'static str,
        adjust: impl FnOnce(CommandSpec) -> CommandSpec,
        f: CommandFn,
    ) {
        match CommandSpec::redis(name) {
            Some(spec) => self.add(adjust(spec), f),
            // The metadata is embedded and checked by a unit test; a name
            // it lacks is a programming error, which leaves the command out
            // (unknown command) rather than guessing its arity.
            None => tracing::error!(name, "command missing from Redis' embedded metadata"),
        }
    }

    pub(crate) fn add_ext(&mut self, spec: CommandSpec, ext: Arc<dyn Extension>) {
        self.push(Command {
            spec,
            handler: Handler::Ext(ext),
            stat: 0,
        });
    }

    fn push(&mut self, c: Command) {
        self.commands.retain(|o| o.spec.name != c.spec.name);
        self.commands.push(c);
    }

    pub(crate) fn build(mut self) -> Table {
        let mut by_name = HashMap::with_capacity(self.commands.len());
        let mut stat_names: Vec<String> = Vec::new();
        let mut denyoom = Vec::new();
        for (i, c) in self.commands.iter_mut().enumerate() {
            by_name.insert(Box::<[u8]>::from(c.spec.name.as_bytes()), i);
            c.stat = stat_names.len();
            stat_names.push(c.spec.name.to_owned());
            denyoom.push(c.spec.subs.is_empty() && c.spec.flags.contains(Flags::DENYOOM));
            for (sub, _) in c.spec.subs {
                let full = format!("{}|{sub}", c.spec.name);
                denyoom.push(meta::has_flag(&full, "denyoom"));
                stat_names.push(full);
            }
        }
        let may_replicate = stat_names
            .iter()
            .map(|n| meta::has_flag(n, "may_replicate") || meta::has_flag(n, "write"))
            .collect();
        let skip_monitor = stat_names
            .iter()
            .map(|n| meta::has_flag(n, "skip_monitor") || meta::has_flag(n, "admin"))
            .collect();
        let skip_slowlog = stat_names
            .iter()
            .map(|n| meta::has_flag(n, "skip_slowlog"))
            .collect();
        Table {
            by_name,
            commands: self.commands,
            stat_names,
            skip_slowlog,
            may_replicate,
            skip_monitor,
            denyoom,
        }
    }
}

/// Longest command name looked up; longer names are unknown without a
/// lookup (Redis' longest is 20 bytes).
const MAX_NAME: usize = 32;

/// The command table.
pub(crate) struct Table {
    by_name: HashMap<Box<[u8]>, usize>,
    pub(crate) commands: Vec<Command>,
    /// The names of the statistics slots (`get`, `config|get`).
    pub(crate) stat_names: Vec<String>,
    /// By statistics slot: Redis flags the command `skip_slowlog` (EXEC,
    /// which the slow log shows through the commands it runs).
    pub(crate) skip_slowlog: Vec<bool>,
    /// By statistics slot: Redis flags the command `write` or
    /// `may_replicate` (PUBLISH, EVAL, ...): CLIENT PAUSE WRITE holds it.
    pub(crate) may_replicate: Vec<bool>,
    /// By statistics slot: MONITOR does not show it (Redis' `skip_monitor`
    /// and `admin` commands).
    pub(crate) skip_monitor: Vec<bool>,
    /// By statistics slot: flagged `denyoom` (refused with `-OOM` while
    /// used memory is over `maxmemory`); for a container, its subcommand's
    /// flag from Redis' metadata.
    pub(crate) denyoom: Vec<bool>,
}

impl Table {
    /// Case-insensitive lookup without allocating.
    pub(crate) fn lookup(&self, name: &[u8]) -> Option<&Command> {
        if name.len() > MAX_NAME {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        let lower = buf.get_mut(..name.len())?;
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let i = *self.by_name.get(&*lower)?;
        self.commands.get(i)
    }
}

/// The built-in commands.
pub(crate) fn builtin_table() -> TableBuilder {
    let mut t = TableBuilder::default();
    connection::register(&mut t);
    acl::register(&mut t);
    server::register(&mut t);
    strings::register(&mut t);
    bitmap::register(&mut t);
    hll::register(&mut t);
    keys::register(&mut t);
    list::register(&mut t);
    hash::register(&mut t);
    set::register(&mut t);
    zset::register(&mut t);
    geo::register(&mut t);
    sort::register(&mut t);
    stream::register(&mut t);
    tx::register(&mut t);
    pubsub::register(&mut t);
    introspect::register(&mut t);
    memory::register(&mut t);
    t
}

/// Everything a command handler can reach: the keyspace, the calling
/// session, and the command's clock reading.
pub struct Ctx<'a> {
    pub(crate) ks: &'a Keyspace,
    pub(crate) session: &'a mut SessionState,
    pub(crate) now: i64,
    pub(crate) command: &'static str,
    pub(crate) special: Option<Outcome>,
}

impl<'a> Ctx<'a> {
    /// The keyspace.
    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// The calling session's state.
    pub fn session(&mut self) -> &mut SessionState {
        self.session
    }

    /// Whether used memory was over `maxmemory` (and nothing could be
    /// evicted) when this script command started (Redis'
    /// `server.script_oom`): a script flagged neither `allow-oom` nor
    /// `no-writes` is then refused, and a script without flags may not
    /// run a `denyoom` command before it has written.
    pub fn script_oom(&self) -> bool {
        self.session.script_oom
    }

    /// The most reply bytes worth building for this client: the hard
    /// `client-output-buffer-limit` of its class, past which the connection
    /// closes it anyway. `None`: no limit (or no connection).
    pub(crate) fn reply_budget(&self) -> Option<usize> {
        self.session.conn.as_ref()?;
        let class = if self.session.subscriptions() > 0 {
            crate::limits::ClientClass::Pubsub
        } else {
            crate::limits::ClientClass::Normal
        };
        let hard = self.ks.inner.output_limits.get(class).hard;
        (hard > 0).then_some(hard)
    }

    /// The lowercase name of the command being executed.
    pub fn command(&self) -> &'static str {
        self.command
    }

    /// Whether the command may hand its work to another thread and answer
    /// later through [`Ctx::block`] (false inside EXEC and for nested
    /// calls, which must complete under the caller's gate).
    pub fn may_defer(&self) -> bool {
        !self.session.in_exec
    }

    /// Whether this command runs inside EXEC (queued in MULTI): its effects
    /// must stay within the transaction (BGSAVE then only schedules).
    pub fn in_exec(&self) -> bool {
        self.session.in_exec
    }

    /// The selected database.
    pub fn db(&self) -> usize {
        self.session.db
    }

    /// The time this command runs at (unix ms), read once per command so
    /// all keys it touches agree on what has expired.
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    /// Locks the shard holding `key` in the selected database.
    pub fn shard(&self, key: &[u8]) -> Shard<'a> {
        self.ks.engine().lock(self.session.db, key, self.now)
    }

    /// Locks the shards holding `keys` (db, key) together, atomically for
    /// multi-key commands.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = (usize, &'k [u8])>) -> Locked<'a> {
        let e = self.ks.engine();
        let idx = keys
            .into_iter()
            .map(|(db, k)| e.shard_index(db, k))
            .collect();
        Locked::new(e, idx, self.now)
    }

    /// Publishes the keyspace event `event` of `class` for `key` in the
    /// selected database, as Redis' `notifyKeyspaceEvent` (call it where
    /// Redis does, after the change, with Redis' event name). Costs one
    /// relaxed atomic load while `notify-keyspace-events` is off.
    /// Invalidation of tracked keys needs no call: the engine's write path
    /// does it.
    #[inline]
    pub fn notify(&self, class: crate::notify::Class, event: &str, key: &[u8]) {
        self.ks
            .engine()
            .counters
            .notify
            .event(class, event, self.session.db, key);
    }

    /// [`Ctx::notify`] for a key of another database (MOVE, COPY ... DB).
    #[inline]
    pub fn notify_db(&self, class: crate::notify::Class, event: &str, db: usize, key: &[u8]) {
        self.ks
            .engine()
            .counters
            .notify
            .event(class, event, db, key);
    }

    /// Closes the connection after sending `reply` (QUIT).
    pub fn close_after(&mut self, reply: Frame) -> Frame {
        self.special = Some(Outcome::Close(reply.clone()));
        reply
    }

    /// Replies later: the connection waits for `pending` (blocking commands).
    pub fn block(&mut self, pending: Pending) -> Frame {
        self.special = Some(Outcome::Block(pending));
        Frame::Null
    }
}

/// A static error reply.
pub(crate) fn err(msg: &'static str) -> Frame {
    Frame::Error(Bytes::from_static(msg.as_bytes()))
}

pub(crate) const ERR_SYNTAX: &str = "ERR syntax error";
pub(crate) const ERR_NOT_INT: &str = "ERR value is not an integer or out of range";
pub(crate) use crate::num::parse_float;

pub(crate) const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";

pub(crate) fn wrongtype() -> Frame {
    err("WRONGTYPE Operation against a key holding the wrong kind of value")
}

impl From<WrongType> for Frame {
    fn from(_: WrongType) -> Frame {
        wrongtype()
    }
}

/// Parses an integer argument as Redis' `string2ll` does.
pub(crate) fn parse_int(arg: &[u8]) -> Result<i64, Frame> {
    string2ll(arg).ok_or_else(|| err(ERR_NOT_INT))
}

/// `proto-max-bulk-len` as configured: the longest string APPEND,
/// SETRANGE and the bit commands may build (512 MB by default).
pub(crate) fn proto_max_bulk_len(ctx: &Ctx<'_>) -> u64 {
    ctx.keyspace()
        .config_param("proto-max-bulk-len")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(512 * 1024 * 1024)
}

/// Resolves a container's subcommand (`CLIENT SETNAME`, `CONFIG GET`)
/// against `(name, arity)` pairs, with Redis 7.0's error texts.
pub(crate) fn subcommand(
    container: &str,
    args: &[Bytes],
    subs: &[(&'static str, i32)],
) -> Result<&'static str, Frame> {
    let sub = args.get(1).map(|b| &b[..]).unwrap_or_default();
    let Some(&(name, arity)) = subs.iter().find(|(n, _)| is(sub, n)) else {
        return Err(Frame::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            String::from_utf8_lossy(sub),
            container.to_ascii_uppercase()
        )));
    };
    let spec = CommandSpec::new(name, arity, Flags::NONE, "");
    if !spec.arity_ok(args.len()) {
        return Err(Frame::error(format!(
            "ERR wrong number of arguments for '{container}|{name}' command"
        )));
    }
    Ok(name)
}

/// Whether `arg` equals `word` ignoring ASCII case.
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The integer reply for a count.
pub(crate) fn int(n: usize) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_at(info: &[Frame], i: usize) -> Option<i64> {
        match info.get(i) {
            Some(Frame::Integer(n)) => Some(*n),
            _ => None,
        }
    }

    /// Every built-in command dispatches with the arity, key positions and
    /// flags Redis 7.0.15's `COMMAND INFO` gives it (a container with the
    /// union of its implemented subcommands' flags, each subcommand with
    /// Redis' arity), and has Redis' `COMMAND DOCS` to serve.
    #[test]
    fn builtin_specs_match_redis_command_info() {
        let table = builtin_table().build();
        assert!(table.commands.len() > 150, "{}", table.commands.len());
        for c in &table.commands {
            let s = &c.spec;
            let Some(Frame::Array(info)) = meta::redis_info(s.name) else {
                panic!("{} is not in Redis' metadata", s.name);
            };
            assert_eq!(
                Some(i64::from(s.arity)),
                int_at(info, 1),
                "{} arity",
                s.name
            );
            let keys = (s.first_key, s.last_key, s.key_step);
            let redis_keys = (int_at(info, 3), int_at(info, 4), int_at(info, 5));
            assert_eq!(
                (
                    Some(keys.0.into()),
                    Some(keys.1.into()),
                    Some(keys.2.into())
                ),
                redis_keys,
                "{} key positions",
                s.name
            );
            let mut want = info.get(2).map_or(Flags::NONE, meta::info_flags);
            for (sub, arity) in s.subs {
                let full = format!("{}|{sub}", s.name);
                // CLIENT SETINFO and NO-TOUCH (7.2, sent by newer clients)
                // are cairn's own.
                let Some(Frame::Array(sub_info)) = meta::redis_info(&full) else {
                    assert!(["client|setinfo", "client|no-touch"].contains(&full.as_str()));
                    continue;
                };
                assert_eq!(Some(i64::from(*arity)), int_at(sub_info, 1), "{full} arity");
                want = want.with(sub_info.get(2).map_or(Flags::NONE, meta::info_flags));
            }
            let ours = Flags(s.flags.0 & !Flags::EXCLUSIVE.0);
            assert_eq!(ours, want, "{} flags", s.name);
            assert!(meta::redis_docs(s.name).is_some(), "{} has no docs", s.name);
            assert!(!s.group.is_empty(), "{} has no group", s.name);
        }
        // cairn's own flag is kept beside Redis' description.
        for name in ["exec", "flushall", "flushdb", "swapdb"] {
            let c = table.lookup(name.as_bytes());
            assert!(
                c.is_some_and(|c| c.spec.flags.contains(Flags::EXCLUSIVE)),
                "{name}"
            );
        }
        // The flags dispatch checks are among those read from Redis.
        let flags = |n: &str| table.lookup(n.as_bytes()).map(|c| c.spec.flags);
        assert!(flags("auth").is_some_and(|f| f.contains(Flags::NO_AUTH)));
        assert!(flags("set").is_some_and(|f| f.contains(Flags::WRITE)));
        assert!(flags("get").is_some_and(|f| !f.contains(Flags::WRITE)));
    }

    #[test]
    fn a_spec_read_from_redis_metadata() {
        let Some(s) = CommandSpec::redis("lmove") else {
            panic!("lmove missing");
        };
        assert_eq!((s.arity, s.first_key, s.last_key, s.key_step), (5, 1, 2, 1));
        assert_eq!(s.flags, Flags::WRITE | Flags::DENYOOM);
        assert_eq!((s.group, s.since), ("list", "6.2.0"));
        assert!(CommandSpec::redis("nosuchcommand").is_none());
    }
}
