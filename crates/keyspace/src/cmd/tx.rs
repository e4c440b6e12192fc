//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in the session (`Session::execute`), which also dooms
//! the transaction when a command is refused at queue time. EXEC runs with
//! the keyspace gate held for write (`EXCLUSIVE`), so no other command,
//! active-expiry round or view falls inside a transaction: a point-in-time
//! view contains all of it or none of it.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cairn_resp::{Frame, Outcome};

use super::{Ctx, Flags, TableBuilder, err};
use crate::session::{discard, run, unwatch_all};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("multi", multi);
    t.redis_with("exec", |s| s.also(Flags::EXCLUSIVE), exec);
    t.redis("discard", discard_cmd);
    t.redis("watch", watch);
    t.redis("unwatch", unwatch);
}

fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    if ctx.session.multi.is_some() {
        return err("ERR MULTI calls can not be nested");
    }
    ctx.session.multi = Some(Vec::new());
    Frame::ok()
}

fn discard_cmd(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    if ctx.session.multi.is_none() {
        return err("ERR DISCARD without MULTI");
    }
    discard(ctx.ks, ctx.session);
    Frame::ok()
}

fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.session.multi.is_some() {
        return err("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.db();
    let watches = &ctx.ks.engine().counters.watches;
    for key in args.iter().skip(1) {
        // Registered under the key's shard lock, after lazily expiring it:
        // no write can fall between the check and the registration, and a
        // key already expired now is "absent" rather than "about to change"
        // (Redis' `wk->expired` case).
        let mut shard = ctx.shard(key);
        shard.contains(key);
        if watches.watch(db as u32, key, &ctx.session.watch_dirty) {
            ctx.session.watched.push((db, key.clone()));
        }
        drop(shard);
    }
    Frame::ok()
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    unwatch_all(ctx.ks, ctx.session);
    Frame::ok()
}

fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let Some(queue) = ctx.session.multi.take() else {
        return err("ERR EXEC without MULTI");
    };
    if std::mem::take(&mut ctx.session.multi_error) {
        unwatch_all(ctx.ks, ctx.session);
        return err("EXECABORT Transaction discarded because of previous errors.");
    }
    // A watched key that expired since WATCH counts as changed (Redis'
    // `isWatchedKeyExpired`): expiring it now touches it.
    let engine = ctx.ks.engine();
    for (db, key) in &ctx.session.watched {
        engine.lock(*db, key, ctx.now).contains(key);
    }
    let dirty = ctx.session.watch_dirty.load(Ordering::Relaxed);
    unwatch_all(ctx.ks, ctx.session);
    if dirty {
        return Frame::NullArray;
    }
    let table = &ctx.ks.inner.table;
    let mut replies = Vec::with_capacity(queue.len());
    for args in &queue {
        // Every queued command passed lookup at queue time.
        let Some(cmd) = args.first().and_then(|n| table.lookup(n)) else {
            replies.push(err("ERR unknown command"));
            continue;
        };
        // The gate is already held for write by EXEC itself.
        replies.push(match run(ctx.ks, ctx.session, cmd, args, false) {
            Outcome::Reply(f) | Outcome::Close(f) => f,
            // Blocking commands do not block inside EXEC (`may_block`);
            // anything else that would wait (DEBUG SLEEP) answers at once.
            Outcome::Block(_) => Frame::ok(),
            // Commands answered by pushes reply inline inside EXEC
            // (`SessionState::in_exec`); this is a safe default.
            Outcome::NoReply => Frame::Null,
        });
    }
    Frame::Array(replies)
}
