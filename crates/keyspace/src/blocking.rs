//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...): the keyspace-wide
//! registry, the ready-key hand-off and the cancel-safe wait.
//!
//! Semantics follow Redis 7.0's `handleClientsBlockedOnKeys`: a command
//! that can make a key non-empty calls [`Keyspace::signal_key_ready`] while
//! it still holds the key's shard; after that command has finished (and
//! before its reply is sent) the session runs [`Keyspace::serve_blocked`],
//! which hands elements to the clients waiting on each ready key, the one
//! that blocked first first, popping on their behalf under the shard lock.
//! Serving inside the command that pushed (instead of waking the waiter's
//! task and letting it retry) is what makes `RPUSH k a` followed by
//! `EXISTS k` from the same client see the key already consumed, and what
//! keeps a non-blocking `LPOP` of another client from stealing an element
//! that a blocked client was owed.
//!
//! The registry knows no command family: a blocking command hands it a
//! [`BlockedOp`], the family's own code that serves the client once a key
//! is ready (the list family's pops and moves, the sorted-set family's
//! BZPOP*).
//!
//! Lock order: `serve` mutex, then shard locks, then `state`. Nothing is
//! ever locked while `state` is held, so [`Keyspace::signal_key_ready`] may
//! run under shard locks and a dropped wait may unregister from any context.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cairn_resp::{Frame, Pending};
use hashbrown::HashMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::cmd::Ctx;
use crate::engine::Locked;
use crate::keyspace::Keyspace;

/// What a blocked client waits to do, supplied by the command family that
/// blocked it; the registry calls it when one of the client's keys is
/// ready.
pub(crate) trait BlockedOp: Send + Sync + 'static {
    /// A key besides the ready one whose shard serving needs locked
    /// (BLMOVE's destination).
    fn other_key(&self) -> Option<&Bytes> {
        None
    }

    /// Serves the client on ready `key` of `db`, with the shards of `key`
    /// and of [`other_key`](Self::other_key) locked in `locked`.
    fn serve(&self, locked: &mut Locked<'_>, db: usize, key: &[u8]) -> Served;

    /// Whether the client is answered even when the key holds nothing to
    /// take (XREADGROUP, released with an error when its stream is gone):
    /// such waiters are still visited after one that found nothing.
    fn answers_when_gone(&self) -> bool {
        false
    }
}

/// A family's operation as the registry holds it.
pub(crate) type Op = Arc<dyn BlockedOp>;

/// The registry of blocked clients, one per keyspace.
#[derive(Default)]
pub(crate) struct Registry {
    /// Serializes serving: a command that made keys ready waits here until
    /// whoever took its ready keys has served them, so its reply is never
    /// sent before the blocked clients it fed.
    serve: Mutex<()>,
    state: Mutex<State>,
    /// Number of registered waiters: the fast path of every push.
    waiting: AtomicUsize,
    /// Whether `state.ready` may be non-empty; set and cleared under `state`.
    has_ready: AtomicBool,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// (db, key) -> waiter ids in the order they blocked.
    by_key: HashMap<usize, HashMap<Bytes, VecDeque<u64>>>,
    waiters: HashMap<u64, Waiter>,
    /// Keys signalled since the last serve, deduplicated.
    ready: Vec<(usize, Bytes)>,
}

struct Waiter {
    db: usize,
    keys: Vec<Bytes>,
    op: Op,
    tx: oneshot::Sender<Frame>,
    /// The blocked client's id (`CLIENT UNBLOCK`).
    client: u64,
    /// What the client answers at its timeout (`CLIENT UNBLOCK ... TIMEOUT`).
    timeout_reply: Frame,
}

impl State {
    /// Removes waiter `id` from every key queue; returns it if registered.
    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        if let Some(db) = self.by_key.get_mut(&w.db) {
            for k in &w.keys {
                if let Some(q) = db.get_mut(&k[..]) {
                    q.retain(|&x| x != id);
                    if q.is_empty() {
                        db.remove(&k[..]);
                    }
                }
            }
            if db.is_empty() {
                self.by_key.remove(&w.db);
            }
        }
        Some(w)
    }

    /// Whether anyone waits on (db, key).
    fn watched(&self, db: usize, key: &[u8]) -> bool {
        self.by_key.get(&db).is_some_and(|m| m.contains_key(key))
    }
}

impl Registry {
    /// Registers a waiter on `keys` of `db` (duplicates ignored, as Redis
    /// does). Call while holding the locks of every key's shard, after
    /// finding them all empty: a push can then only come after the
    /// registration, and will see it.
    fn register(
        &self,
        db: usize,
        keys: Vec<Bytes>,
        op: Op,
        client: u64,
        timeout_reply: Frame,
    ) -> (u64, oneshot::Receiver<Frame>) {
        let (tx, rx) = oneshot::channel();
        let mut st = self.state.lock();
        st.next_id += 1;
        let id = st.next_id;
        let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
        for k in keys {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        let per_db = st.by_key.entry(db).or_default();
        for k in &unique {
            per_db.entry(k.clone()).or_default().push_back(id);
        }
        st.waiters.insert(
            id,
            Waiter {
                db,
                keys: unique,
                op,
                tx,
                client,
                timeout_reply,
            },
        );
        self.waiting.fetch_add(1, Ordering::SeqCst);
        (id, rx)
    }

    /// `CLIENT UNBLOCK`: answers the client blocked with id `client` its
    /// timeout reply, or with `error` the `-UNBLOCKED` error, as if it had
    /// timed out; false if it is not blocked on keys.
    fn unblock(&self, client: u64, error: bool) -> bool {
        let w = {
            let mut st = self.state.lock();
            let Some(id) = st
                .waiters
                .iter()
                .find(|(_, w)| w.client == client)
                .map(|(id, _)| *id)
            else {
                return false;
            };
            st.remove(id)
        };
        let Some(w) = w else { return false };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let reply = if error {
            Frame::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            w.timeout_reply
        };
        let _ = w.tx.send(reply);
        true
    }

    /// Unregisters waiter `id`; false if it was already served.
    fn unregister(&self, id: u64) -> bool {
        let removed = self.state.lock().remove(id).is_some();
        if removed {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        removed
    }

    pub(crate) fn signal(&self, db: usize, key: &[u8]) {
        // Pushes are hot and blocked clients rare: one atomic load when
        // nobody waits. A waiter registers under the shard lock the pusher
        // holds now, so this load cannot miss it.
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut st = self.state.lock();
        if st.watched(db, key) && !st.ready.iter().any(|(d, k)| *d == db && k[..] == *key) {
            st.ready.push((db, Bytes::copy_from_slice(key)));
            self.has_ready.store(true, Ordering::SeqCst);
        }
    }

    /// Marks every key that clients of `db` wait on as possibly ready
    /// (SWAPDB, FLUSHDB, FLUSHALL); serving checks each key's contents.
    pub(crate) fn signal_db(&self, db: usize) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut st = self.state.lock();
        let keys: Vec<Bytes> = st
            .by_key
            .get(&db)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            if !st.ready.iter().any(|(d, k)| *d == db && *k == key) {
                st.ready.push((db, key));
            }
        }
        if !st.ready.is_empty() {
            self.has_ready.store(true, Ordering::SeqCst);
        }
    }

    /// Whether keys were signalled since the last serve.
    pub(crate) fn has_ready(&self) -> bool {
        self.has_ready.load(Ordering::SeqCst)
    }

    /// The oldest waiter on (db, key) not in `skip` (those whose
    /// operation did not fit the key's type this round); once the key was
    /// found `exhausted`, only those answered even so.
    fn next_waiter(
        &self,
        db: usize,
        key: &[u8],
        skip: &[u64],
        exhausted: bool,
    ) -> Option<(u64, Op)> {
        let st = self.state.lock();
        let q = st.by_key.get(&db)?.get(key)?;
        q.iter().filter(|id| !skip.contains(id)).find_map(|id| {
            st.waiters
                .get(id)
                .filter(|w| !exhausted || w.op.answers_when_gone())
                .map(|w| (*id, w.op.clone()))
        })
    }
}

impl Keyspace {
    fn registry(&self) -> &Registry {
        &self.engine().counters.blocking
    }

    /// Marks `key` of `db` as possibly non-empty for blocked clients.
    ///
    /// Every command that can create or grow a list or sorted set calls
    /// this (pushes, moves, ZADD, stores, RENAME/COPY/MOVE/RESTORE onto the
    /// key) while still holding the key's shard; the waiters are served
    /// after the command by [`Keyspace::serve_blocked`]. Cheap when nobody
    /// is blocked.
    pub(crate) fn signal_key_ready(&self, db: usize, key: &[u8]) {
        self.registry().signal(db, key);
    }

    /// Marks every key that clients of `db` wait on as possibly ready:
    /// for SWAPDB, which changes a whole database's contents at once (Redis'
    /// `scanDatabaseForReadyKeys`). Serving checks each key's contents.
    pub(crate) fn signal_db_ready(&self, db: usize) {
        self.registry().signal_db(db);
    }

    /// `CLIENT UNBLOCK id [TIMEOUT|ERROR]` for a client blocked on keys.
    pub(crate) fn unblock_client(&self, client: u64, error: bool) -> bool {
        self.registry().unblock(client, error)
    }

    /// Number of clients blocked on keys (INFO `blocked_clients`).
    #[allow(dead_code)]
    pub(crate) fn blocked_clients(&self) -> usize {
        self.registry().waiting.load(Ordering::SeqCst)
    }

    /// Serves the clients blocked on keys signalled since the last call.
    /// Runs after each top-level command with no shard lock held (the
    /// session does it while still holding the gate, so a view never falls
    /// between a push and the pops it fed).
    pub(crate) fn serve_blocked(&self) {
        let reg = self.registry();
        if !reg.has_ready.load(Ordering::SeqCst) {
            return;
        }
        let _serving = reg.serve.lock();
        loop {
            let ready = {
                let mut st = reg.state.lock();
                if st.ready.is_empty() {
                    reg.has_ready.store(false, Ordering::SeqCst);
                    return;
                }
                std::mem::take(&mut st.ready)
            };
            for (db, key) in ready {
                self.serve_key(db, &key);
            }
        }
    }

    /// Serves the waiters on one ready key in the order they blocked,
    /// until the key has nothing left for them.
    fn serve_key(&self, db: usize, key: &[u8]) {
        let reg = self.registry();
        let engine = self.engine();
        // Waiters that did not fit the key's type this round.
        let mut skipped: Vec<u64> = Vec::new();
        // The key had nothing for a waiter: only those answered anyway
        // (XREADGROUP on a deleted stream) are still visited.
        let mut exhausted = false;
        while let Some((id, op)) = reg.next_waiter(db, key, &skipped, exhausted) {
            let now = engine.clock.now_ms();
            let mut keys: Vec<(usize, &[u8])> = vec![(db, key)];
            if let Some(other) = op.other_key() {
                keys.push((db, &other[..]));
            }
            let idx = keys
                .iter()
                .map(|(d, k)| engine.shard_index(*d, k))
                .collect();
            let mut locked = crate::engine::Locked::new(engine, idx, now);
            // The waiter may have timed out or gone since we looked; check
            // under `state` and take it out before popping for it, so the
            // element cannot be handed to nobody.
            let mut st = reg.state.lock();
            if !st.waiters.contains_key(&id) {
                continue;
            }
            match op.serve(&mut locked, db, key) {
                Served::Nothing => {
                    exhausted = true;
                    skipped.push(id);
                }
                Served::WrongKind => {
                    skipped.push(id);
                }
                Served::Reply(frame, pushed) => {
                    if let Some(w) = st.remove(id) {
                        reg.waiting.fetch_sub(1, Ordering::SeqCst);
                        // A receiver dropped just now is a client that went
                        // away after being served: Redis loses that reply
                        // the same way.
                        let _ = w.tx.send(frame);
                    }
                    drop(st);
                    if let Some(dest) = pushed {
                        // BLMOVE's destination may feed other waiters.
                        reg.signal(db, &dest);
                    }
                }
            }
        }
    }
}

/// What serving one waiter did.
pub(crate) enum Served {
    /// The key holds nothing this waiter can take (gone, empty): stop
    /// serving the key.
    Nothing,
    /// The key holds a type this waiter does not take (a list for a
    /// sorted-set waiter or the reverse): try the next waiter.
    WrongKind,
    /// The waiter's reply, and the key it pushed to (BLMOVE).
    Reply(Frame, Option<Bytes>),
}

/// Blocks the calling client until `op` can be served on one of `keys` or
/// `timeout_ms` (0: never) passes, replying `timeout_reply` then.
///
/// Call with every key's shard locked and found empty. The returned future
/// unregisters the client when dropped, so a disconnect or shutdown never
/// leaves a waiter that would swallow a later push.
pub(crate) fn block_on_keys(
    ks: &Keyspace,
    (db, client): (usize, u64),
    keys: Vec<Bytes>,
    op: Op,
    deadline: Option<Instant>,
    timeout_reply: Frame,
) -> Pending {
    let (id, rx) = ks
        .registry()
        .register(db, keys, op, client, timeout_reply.clone());
    let guard = WaitGuard { ks: ks.clone(), id };
    Box::pin(async move {
        let mut rx = rx;
        let served = match deadline {
            None => (&mut rx).await.ok(),
            Some(d) => match tokio::time::timeout_at(d, &mut rx).await {
                Ok(r) => r.ok(),
                Err(_elapsed) => {
                    if guard.ks.registry().unregister(guard.id) {
                        None
                    } else {
                        // Served between the timer firing and the
                        // unregistration: the element was popped for us.
                        rx.try_recv().ok()
                    }
                }
            },
        };
        drop(guard);
        // `None` without a timeout means the keyspace dropped the sender,
        // which only happens when it is being torn down.
        served.unwrap_or(timeout_reply)
    })
}

/// Unregisters a waiter when its future ends or is dropped.
struct WaitGuard {
    ks: Keyspace,
    id: u64,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.ks.registry().unregister(self.id);
    }
}

/// Whether the calling client may block: not inside MULTI/EXEC (nor any
/// other batch that runs commands under the exclusive gate, e.g. a future
/// script runner), where Redis runs blocking commands as their
/// non-blocking form and replies the timeout reply at once.
pub(crate) fn may_block(ctx: &Ctx<'_>) -> bool {
    // A non-exclusive command runs with the gate held for read; finding it
    // held exclusively means our caller (EXEC) holds it for the whole batch.
    ctx.session.multi.is_none() && !ctx.ks.engine().gate.is_locked_exclusive()
}

/// Blocks the calling client on `keys` (their shards still locked by the
/// caller, found with nothing to serve) until `op` is served or `timeout`
/// passes, replying `timeout_reply` then; or, when the client may not
/// block, replies `no_block` at once.
pub(crate) fn block_or_timeout(
    ctx: &mut Ctx<'_>,
    keys: Vec<Bytes>,
    op: Op,
    timeout: Option<Duration>,
    timeout_reply: Frame,
    no_block: Frame,
) -> Frame {
    if !may_block(ctx) {
        return no_block;
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let client = ctx.session.id;
    let pending = block_on_keys(
        ctx.ks,
        (ctx.db(), client),
        keys,
        op,
        deadline,
        timeout_reply,
    );
    ctx.block(pending)
}
