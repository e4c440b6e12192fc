//! The key-change event path: keyspace notifications (Redis'
//! `notifyKeyspaceEvent`) and client-side caching invalidations (Redis'
//! `trackingInvalidateKey`, half of `signalModifiedKey`).
//!
//! Both are fed from two places. The engine calls
//! [`Notifier::key_changed`] from its single write path (every store,
//! removal, in-place change and expiry, the same place that touches
//! WATCHed keys), so every command, script and extension invalidates
//! tracked keys without doing anything. Command handlers call
//! [`Ctx::notify`](crate::Ctx::notify) with Redis' event name right where
//! Redis calls `notifyKeyspaceEvent`, since only the command knows the name
//! (`lpush`, `rename_from`, ...) and the order; the engine itself emits
//! what Redis emits from its database layer (`new`, `expired`, and `del` for
//! a collection left empty).
//!
//! Nobody listening costs one relaxed atomic load per event and per
//! change: the enabled classes (`notify-keyspace-events`) and the number
//! of tracking clients are both atomics checked before anything else.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_resp::{Event, Frame};
use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::pubsub::{Clients, PubSub};

/// A class of keyspace events, as the letters of `notify-keyspace-events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    /// `g`: commands on any type (DEL, EXPIRE, RENAME, ...).
    Generic,
    /// `$`: string commands.
    String,
    /// `l`: list commands.
    List,
    /// `s`: set commands.
    Set,
    /// `h`: hash commands.
    Hash,
    /// `z`: sorted set commands.
    Zset,
    /// `x`: a key expired (lazily or by the active cycle).
    Expired,
    /// `e`: a key was evicted for `maxmemory`.
    Evicted,
    /// `t`: stream commands.
    Stream,
    /// `m`: a read found no key.
    KeyMiss,
    /// `d`: module events.
    Module,
    /// `n`: a key was created.
    New,
}

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub(crate) const KEYSPACE: u32 = 1;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub(crate) const KEYEVENT: u32 = 1 << 1;
const GENERIC: u32 = 1 << 2;
const STRING: u32 = 1 << 3;
const LIST: u32 = 1 << 4;
const SET: u32 = 1 << 5;
const HASH: u32 = 1 << 6;
const ZSET: u32 = 1 << 7;
const EXPIRED: u32 = 1 << 8;
const EVICTED: u32 = 1 << 9;
const STREAM: u32 = 1 << 10;
const KEY_MISS: u32 = 1 << 11;
const MODULE: u32 = 1 << 13;
const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`, as in Redis.
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

impl Class {
    const fn bit(self) -> u32 {
        match self {
            Class::Generic => GENERIC,
            Class::String => STRING,
            Class::List => LIST,
            Class::Set => SET,
            Class::Hash => HASH,
            Class::Zset => ZSET,
            Class::Expired => EXPIRED,
            Class::Evicted => EVICTED,
            Class::Stream => STREAM,
            Class::KeyMiss => KEY_MISS,
            Class::Module => MODULE,
            Class::New => NEW,
        }
    }
}

/// Redis' `keyspaceEventsStringToFlags`: `None` for a letter it refuses.
pub(crate) fn parse_classes(s: &[u8]) -> Option<u32> {
    let mut f = 0;
    for c in s {
        f |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// Redis' `keyspaceEventsFlagsToString`, the form `CONFIG GET` reports
/// (`KEA` reads back `AKE`; with `A`, an `n` is not shown, as in Redis).
pub(crate) fn classes_to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The error `CONFIG SET notify-keyspace-events` answers for a bad letter.
pub(crate) const BAD_CLASS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

thread_local! {
    /// The client whose command runs on this thread (Redis'
    /// `server.current_client`): NOLOOP skips its own changes, and what is
    /// addressed to it waits in [`AFTER_REPLY`].
    static CURRENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Invalidations for the current client, sent after its reply as Redis
    /// 7.0 does (`tracking_pending_keys`).
    static AFTER_REPLY: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Makes `id` the current client of this thread until the guard drops.
pub(crate) fn enter_client(id: u64) -> CurrentGuard {
    let prev = CURRENT.with(|c| c.replace(id));
    CurrentGuard { prev }
}

/// Restores the previous current client.
pub(crate) struct CurrentGuard {
    prev: u64,
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Takes the pushes that wait for the current command's reply.
pub(crate) fn take_after_reply() -> Vec<Frame> {
    AFTER_REPLY.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

fn current() -> u64 {
    CURRENT.with(std::cell::Cell::get)
}

/// How a client tracks (`CLIENT TRACKING ON ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrackMode {
    pub(crate) redirect: u64,
    pub(crate) bcast: bool,
    pub(crate) optin: bool,
    pub(crate) optout: bool,
    pub(crate) noloop: bool,
    pub(crate) prefixes: BTreeSet<Bytes>,
    /// The redirect target was gone when a message was due.
    pub(crate) broken_redirect: bool,
}

/// Keys modified under one BCAST prefix since the last broadcast.
#[derive(Default)]
struct Bcast {
    clients: BTreeSet<u64>,
    /// Key -> the client that first modified it (NOLOOP filters on it).
    keys: BTreeMap<Bytes, u64>,
}

#[derive(Default)]
struct Tracking {
    /// Default mode: key -> clients that read it since its last change.
    keys: HashMap<Bytes, Vec<u64>>,
    /// Clients with tracking on.
    clients: HashMap<u64, TrackMode>,
    /// BCAST prefixes ("" for a client with none).
    prefixes: BTreeMap<Bytes, Bcast>,
    /// Rounds `limit` ended still over the limit (Redis' effort counter).
    over_limit_rounds: usize,
    /// (key, client) pairs in `keys` (INFO `tracking_total_items`).
    items: usize,
}

/// The tracking table's figures for INFO.
pub(crate) struct TrackingInfo {
    pub(crate) clients: usize,
    pub(crate) keys: usize,
    pub(crate) items: usize,
    pub(crate) prefixes: usize,
}

/// The key-change event hub, shared by the engine and the keyspace.
pub(crate) struct Notifier {
    /// `notify-keyspace-events`, as flags.
    classes: AtomicU32,
    /// Clients with tracking on: invalidation is skipped while 0.
    tracking_clients: AtomicUsize,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicU64,
    pubsub: Arc<PubSub>,
    clients: Arc<Clients>,
    tracking: Mutex<Tracking>,
}

impl Notifier {
    pub(crate) fn new(pubsub: Arc<PubSub>, clients: Arc<Clients>) -> Notifier {
        Notifier {
            classes: AtomicU32::new(0),
            tracking_clients: AtomicUsize::new(0),
            max_keys: AtomicU64::new(1_000_000),
            pubsub,
            clients,
            tracking: Mutex::new(Tracking::default()),
        }
    }

    pub(crate) fn set_classes(&self, f: u32) {
        self.classes.store(f, Ordering::Relaxed);
    }

    pub(crate) fn set_max_keys(&self, n: u64) {
        self.max_keys.store(n, Ordering::Relaxed);
    }

    /// Whether events of `class` are published.
    #[inline]
    pub(crate) fn wants(&self, class: Class) -> bool {
        let f = self.classes.load(Ordering::Relaxed);
        f & class.bit() != 0 && f & (KEYSPACE | KEYEVENT) != 0
    }

    /// Redis' `notifyKeyspaceEvent`.
    #[inline]
    pub(crate) fn event(&self, class: Class, event: &str, db: usize, key: &[u8]) {
        if self.wants(class) {
            self.publish(event, db, key);
        }
    }

    #[cold]
    fn publish(&self, event: &str, db: usize, key: &[u8]) {
        let f = self.classes.load(Ordering::Relaxed);
        if f & KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.pubsub
                .publish(&Bytes::from(ch), &Bytes::copy_from_slice(event.as_bytes()));
        }
        if f & KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.pubsub
                .publish(&Bytes::from(ch), &Bytes::copy_from_slice(key));
        }
    }

    /// Whether any client tracks keys.
    #[inline]
    pub(crate) fn tracking(&self) -> bool {
        self.tracking_clients.load(Ordering::Relaxed) != 0
    }

    /// A key's value changed or it was deleted: invalidates it for the
    /// clients that read it and records it for BCAST prefixes.
    #[inline]
    pub(crate) fn key_changed(&self, key: &[u8]) {
        if self.tracking() {
            self.invalidate(key, true);
        }
    }

    #[cold]
    fn invalidate(&self, key: &[u8], from_change: bool) {
        let me = current();
        let mut t = self.tracking.lock();
        if from_change {
            for (p, b) in t.prefixes.iter_mut() {
                if key.starts_with(p) && !b.keys.contains_key(key) {
                    b.keys.insert(Bytes::copy_from_slice(key), me);
                }
            }
        }
        let Some(ids) = t.keys.remove(key) else {
            return;
        };
        t.items = t.items.saturating_sub(ids.len());
        for id in ids {
            let Some(mode) = t.clients.get(&id) else {
                continue;
            };
            // A client that switched to BCAST gets no default-mode messages.
            if mode.bcast || (from_change && mode.noloop && id == me) {
                continue;
            }
            let keys = Frame::Array(vec![Frame::Bulk(Bytes::copy_from_slice(key))]);
            self.send(&mut t, id, keys, me);
        }
    }

    /// FLUSHALL / FLUSHDB: every tracking client is told to drop its whole
    /// cache (a null invalidation) and the table is emptied.
    pub(crate) fn flushed(&self) {
        if !self.tracking() {
            return;
        }
        let me = current();
        let mut t = self.tracking.lock();
        let ids: Vec<u64> = {
            let mut v: Vec<u64> = t.clients.keys().copied().collect();
            v.sort_unstable();
            v
        };
        for id in ids {
            self.send(&mut t, id, Frame::Null, me);
        }
        t.keys = HashMap::new();
        t.items = 0;
    }

    /// Sends one invalidation (`keys`: an array of keys or null) for
    /// tracking client `id`, through its redirect if it has one (Redis'
    /// `sendTrackingMessage`).
    fn send(&self, t: &mut Tracking, id: u64, keys: Frame, me: u64) {
        let Some(mode) = t.clients.get_mut(&id) else {
            return;
        };
        let target_id = if mode.redirect != 0 {
            mode.redirect
        } else {
            id
        };
        let target = self.clients.get(target_id);
        let Some(target) = target else {
            // The redirect target is gone: the tracking client is told,
            // over RESP3.
            mode.broken_redirect = true;
            let redirect = mode.redirect;
            if let Some(own) = self.clients.get(id)
                && own.view.lock().resp == 3
            {
                let f = Frame::Push(vec![
                    Frame::bulk("tracking-redir-broken"),
                    Frame::Integer(i64::try_from(redirect).unwrap_or(i64::MAX)),
                ]);
                self.deliver(id, &own.events, f, me);
            }
            return;
        };
        let (resp, subscribed) = {
            let v = target.view.lock();
            (v.resp, v.sub + v.psub > 0)
        };
        let f = if resp == 3 {
            Frame::Push(vec![Frame::bulk("invalidate"), keys])
        } else if mode.redirect != 0 && subscribed {
            Frame::Push(vec![
                Frame::bulk("message"),
                Frame::bulk("__redis__:invalidate"),
                keys,
            ])
        } else {
            // RESP2 without a redirect: nowhere to send it.
            return;
        };
        // For the client whose command runs, after its reply; a redirect
        // target is another connection, for which that order means nothing.
        if target_id == me {
            AFTER_REPLY.with(|p| p.borrow_mut().push(f));
        } else {
            let _ = target.events.send(Event::Push(f));
        }
    }

    fn deliver(&self, id: u64, tx: &tokio::sync::mpsc::UnboundedSender<Event>, f: Frame, me: u64) {
        if id == me {
            AFTER_REPLY.with(|p| p.borrow_mut().push(f));
        } else {
            let _ = tx.send(Event::Push(f));
        }
    }

    /// Remembers that client `id` read `keys` (default mode).
    pub(crate) fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k Bytes>) {
        let mut t = self.tracking.lock();
        for k in keys {
            let ids = match t.keys.get_mut(&k[..]) {
                Some(ids) => ids,
                None => t.keys.entry(k.clone()).or_default(),
            };
            if !ids.contains(&id) {
                ids.push(id);
                t.items += 1;
            }
        }
    }

    /// INFO's `tracking_clients`, `tracking_total_keys`,
    /// `tracking_total_items` and `tracking_total_prefixes`. As in Redis,
    /// a client that turned tracking off stays in the key table until its
    /// keys are invalidated.
    pub(crate) fn info(&self) -> TrackingInfo {
        let t = self.tracking.lock();
        TrackingInfo {
            clients: self.tracking_clients.load(Ordering::Relaxed),
            keys: t.keys.len(),
            items: t.items,
            prefixes: t.prefixes.len(),
        }
    }

    /// Turns tracking on for `id` (Redis' `enableTracking`, options already
    /// validated): the flags are replaced, BCAST prefixes are added.
    pub(crate) fn enable(&self, id: u64, mut mode: TrackMode, new_prefixes: &[Bytes]) {
        let mut t = self.tracking.lock();
        let was = t.clients.remove(&id);
        if was.is_none() {
            self.tracking_clients.fetch_add(1, Ordering::Relaxed);
        }
        mode.prefixes = was.map(|w| w.prefixes).unwrap_or_default();
        if mode.bcast {
            let add: Vec<Bytes> = if new_prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                new_prefixes.to_vec()
            };
            for p in add {
                t.prefixes.entry(p.clone()).or_default().clients.insert(id);
                mode.prefixes.insert(p);
            }
        }
        t.clients.insert(id, mode);
    }

    /// Turns tracking off for `id` (Redis' `disableTracking`); its entries
    /// in the key table are skipped from now on and dropped when used.
    pub(crate) fn disable(&self, id: u64) {
        let mut t = self.tracking.lock();
        let Some(mode) = t.clients.remove(&id) else {
            return;
        };
        self.tracking_clients.fetch_sub(1, Ordering::Relaxed);
        for p in &mode.prefixes {
            let empty = match t.prefixes.get_mut(p) {
                Some(b) => {
                    b.clients.remove(&id);
                    b.clients.is_empty()
                }
                None => false,
            };
            if empty {
                t.prefixes.remove(p);
            }
        }
    }

    /// The tracking mode of `id`, if it tracks.
    pub(crate) fn mode(&self, id: u64) -> Option<TrackMode> {
        if !self.tracking() {
            return None;
        }
        self.tracking.lock().clients.get(&id).cloned()
    }

    /// Work Redis does in `beforeSleep`, run after each top-level command:
    /// sends the keys modified under BCAST prefixes, then brings the key
    /// table back under `tracking-table-max-keys` by invalidating keys.
    pub(crate) fn after_command(&self) {
        if !self.tracking() {
            return;
        }
        self.broadcast();
        self.limit();
    }

    #[cold]
    fn broadcast(&self) {
        let me = current();
        let mut t = self.tracking.lock();
        if t.prefixes.values().all(|b| b.keys.is_empty()) {
            return;
        }
        // One message per (prefix, client), keys in byte order as Redis'
        // radix tree gives them; a NOLOOP client misses the keys it
        // modified itself.
        let mut out: Vec<(u64, Frame)> = Vec::new();
        let mut batches = Vec::new();
        for b in t.prefixes.values_mut() {
            if !b.keys.is_empty() {
                batches.push((b.clients.clone(), std::mem::take(&mut b.keys)));
            }
        }
        for (clients, keys) in batches {
            for c in clients {
                let noloop = t.clients.get(&c).is_some_and(|m| m.noloop);
                let list: Vec<Frame> = keys
                    .iter()
                    .filter(|(_, by)| !(noloop && **by == c))
                    .map(|(k, _)| Frame::Bulk(k.clone()))
                    .collect();
                if !list.is_empty() {
                    out.push((c, Frame::Array(list)));
                }
            }
        }
        for (c, keys) in out {
            self.send(&mut t, c, keys, me);
        }
    }

    #[cold]
    fn limit(&self) {
        let max = self.max_keys.load(Ordering::Relaxed);
        if max == 0 {
            return;
        }
        let victims: Vec<Bytes> = {
            let mut t = self.tracking.lock();
            if t.keys.len() as u64 <= max {
                t.over_limit_rounds = 0;
                return;
            }
            let effort = 100 * (t.over_limit_rounds + 1);
            let excess = t.keys.len() - usize::try_from(max).unwrap_or(usize::MAX);
            if excess > effort {
                t.over_limit_rounds += 1;
            } else {
                t.over_limit_rounds = 0;
            }
            // hashbrown's order is the keys' hash order: an arbitrary pick,
            // as Redis' random walk.
            t.keys.keys().take(excess.min(effort)).cloned().collect()
        };
        // Not the change of any client (NOLOOP does not apply), but to
        // the client whose command just ran it goes after that reply, as
        // Redis sends it from `beforeSleep`.
        for k in victims {
            self.invalidate(&k, false);
        }
    }

    /// Number of keys in the tracking table.
    #[cfg(test)]
    pub(crate) fn tracked_keys(&self) -> usize {
        self.tracking.lock().keys.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pubsub::{Subscriber, Subscriptions};
    use tokio::sync::mpsc;

    #[test]
    fn class_strings_normalise_as_redis() {
        let f = |s: &str| classes_to_string(parse_classes(s.as_bytes()).unwrap());
        assert_eq!(f("KEA"), "AKE");
        assert_eq!(f("KEAn"), "AKE");
        assert_eq!(f("gx$Kmdn"), "g$xdnKm");
        assert_eq!(f("Am"), "Am");
        assert_eq!(f(""), "");
        assert_eq!(parse_classes(b"Q"), None);
        assert_eq!(parse_classes(b"KEA?"), None);
        // `n` and `m` are outside `A`.
        assert_eq!(parse_classes(b"A").unwrap() & (NEW | KEY_MISS), 0);
    }

    fn hub() -> (Notifier, Arc<PubSub>, Arc<Clients>) {
        let pubsub: Arc<PubSub> = Arc::default();
        let clients: Arc<Clients> = Arc::default();
        (
            Notifier::new(pubsub.clone(), clients.clone()),
            pubsub,
            clients,
        )
    }

    fn texts(f: &Frame) -> Vec<String> {
        match f {
            Frame::Push(v) | Frame::Array(v) => v
                .iter()
                .map(|x| match x {
                    Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                    Frame::Null => "(null)".into(),
                    Frame::Array(a) => format!("{:?}", texts(&Frame::Array(a.clone()))),
                    other => format!("{other:?}"),
                })
                .collect(),
            other => vec![format!("{other:?}")],
        }
    }

    #[test]
    fn events_go_to_both_channels_only_for_enabled_classes() {
        let (n, pubsub, _) = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let me = Subscriber { id: 1, tx };
        Subscriptions::add(
            &mut pubsub.write().patterns,
            &Bytes::from_static(b"__key*"),
            &me,
        );
        n.event(Class::List, "lpush", 0, b"k");
        assert!(rx.try_recv().is_err(), "off by default");
        n.set_classes(parse_classes(b"Kl").unwrap());
        n.event(Class::Set, "sadd", 0, b"k");
        assert!(rx.try_recv().is_err(), "class s is off");
        n.event(Class::List, "lpush", 3, b"k");
        let Ok(Event::Push(f)) = rx.try_recv() else {
            panic!("no event")
        };
        assert_eq!(
            texts(&f),
            ["pmessage", "__key*", "__keyspace@3__:k", "lpush"]
        );
        assert!(rx.try_recv().is_err(), "E is off: no keyevent message");
        n.set_classes(parse_classes(b"El").unwrap());
        n.event(Class::List, "lpush", 0, b"k");
        let Ok(Event::Push(f)) = rx.try_recv() else {
            panic!("no event")
        };
        assert_eq!(
            texts(&f),
            ["pmessage", "__key*", "__keyevent@0__:lpush", "k"]
        );
    }

    #[test]
    fn a_change_invalidates_readers_once_and_respects_noloop() {
        let (n, _, clients) = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let c = clients.register(7, None, tx);
        c.view.lock().resp = 3;
        n.enable(7, TrackMode::default(), &[]);
        assert!(n.tracking());
        let k = Bytes::from_static(b"k");
        n.remember(7, [&k].into_iter());
        assert_eq!(n.tracked_keys(), 1);
        n.key_changed(b"other");
        assert!(rx.try_recv().is_err());
        n.key_changed(b"k");
        let Ok(Event::Push(f)) = rx.try_recv() else {
            panic!("no invalidation")
        };
        assert_eq!(texts(&f), ["invalidate", "[\"k\"]"]);
        n.key_changed(b"k");
        assert!(rx.try_recv().is_err(), "forgotten after one invalidation");
        // The client's own change, NOLOOP: skipped; without: after reply.
        n.enable(
            7,
            TrackMode {
                noloop: true,
                ..TrackMode::default()
            },
            &[],
        );
        n.remember(7, [&k].into_iter());
        {
            let _g = enter_client(7);
            n.key_changed(b"k");
        }
        assert!(rx.try_recv().is_err());
        assert!(take_after_reply().is_empty());
        n.enable(7, TrackMode::default(), &[]);
        n.remember(7, [&k].into_iter());
        {
            let _g = enter_client(7);
            n.key_changed(b"k");
        }
        assert!(rx.try_recv().is_err(), "held for after the reply");
        assert_eq!(take_after_reply().len(), 1);
        n.disable(7);
        assert!(!n.tracking());
    }

    #[test]
    fn bcast_sends_sorted_keys_per_prefix_after_the_command() {
        let (n, _, clients) = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        clients.register(5, None, tx).view.lock().resp = 3;
        let mode = TrackMode {
            bcast: true,
            ..TrackMode::default()
        };
        n.enable(
            5,
            mode,
            &[Bytes::from_static(b"a"), Bytes::from_static(b"x")],
        );
        for k in [b"x1".as_slice(), b"ab", b"zz", b"aa", b"ab"] {
            n.key_changed(k);
        }
        assert!(rx.try_recv().is_err(), "nothing before the command ends");
        n.after_command();
        let got: Vec<Vec<String>> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(Event::Push(f)) => Some(texts(&f)),
            _ => None,
        })
        .collect();
        assert_eq!(
            got,
            [
                vec!["invalidate".to_owned(), "[\"aa\", \"ab\"]".to_owned()],
                vec!["invalidate".to_owned(), "[\"x1\"]".to_owned()],
            ]
        );
    }

    #[test]
    fn the_table_is_held_under_its_limit() {
        let (n, _, clients) = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        clients.register(9, None, tx).view.lock().resp = 3;
        n.enable(9, TrackMode::default(), &[]);
        n.set_max_keys(3);
        let keys: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("k{i}"))).collect();
        n.remember(9, keys.iter());
        n.after_command();
        assert_eq!(n.tracked_keys(), 3);
        let sent = std::iter::from_fn(|| rx.try_recv().ok()).count();
        assert_eq!(sent, 7, "each evicted key is invalidated");
    }
}
