//! The pub/sub registry (who listens to which channel or pattern) and the
//! client registry behind `CLIENT LIST` / `CLIENT KILL`.
//!
//! Messages go to a subscriber's connection through its session's
//! [`Event`] channel. Subscribing registers and sends the confirmation
//! while holding the registry lock that PUBLISH also takes, so a
//! subscriber never sees a message on a channel before the confirmation
//! of its subscription to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use cairn_resp::{ConnInfo, Event, Frame};
use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use tokio::sync::mpsc::UnboundedSender;

use crate::glob::glob_match;

/// One subscription's delivery address.
#[derive(Clone)]
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    pub(crate) tx: UnboundedSender<Event>,
}

/// Channel and pattern subscriptions of every client.
#[derive(Default)]
pub(crate) struct Subscriptions {
    pub(crate) channels: HashMap<Bytes, Vec<Subscriber>>,
    pub(crate) patterns: HashMap<Bytes, Vec<Subscriber>>,
}

impl Subscriptions {
    /// Adds `sub` to `name` in `map`; false if it was there already.
    pub(crate) fn add(
        map: &mut HashMap<Bytes, Vec<Subscriber>>,
        name: &Bytes,
        sub: &Subscriber,
    ) -> bool {
        let list = map.entry(name.clone()).or_default();
        if list.iter().any(|s| s.id == sub.id) {
            return false;
        }
        list.push(sub.clone());
        true
    }

    /// Removes client `id` from `name` in `map`; false if it was not there.
    pub(crate) fn remove(map: &mut HashMap<Bytes, Vec<Subscriber>>, name: &[u8], id: u64) -> bool {
        let Some(list) = map.get_mut(name) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s.id != id);
        let removed = list.len() != before;
        if list.is_empty() {
            map.remove(name);
        }
        removed
    }
}

/// The pub/sub registry.
#[derive(Default)]
pub(crate) struct PubSub {
    subs: RwLock<Subscriptions>,
}

impl PubSub {
    /// The registry, locked for changes (SUBSCRIBE and friends).
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Subscriptions> {
        self.subs.write()
    }

    /// Sends `message` to the subscribers of `channel` and of every
    /// matching pattern; returns how many received it (a client counts once
    /// per matching subscription, as in Redis).
    pub(crate) fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let subs = self.subs.read();
        let mut n = 0;
        if let Some(list) = subs.channels.get(&channel[..]) {
            for s in list {
                let f = Frame::Push(vec![
                    Frame::bulk("message"),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                // A closed connection just misses it; its session removes
                // the subscription when it closes.
                let _ = s.tx.send(Event::Push(f));
                n += 1;
            }
        }
        for (pat, list) in &subs.patterns {
            if !glob_match(pat, channel, false) {
                continue;
            }
            for s in list {
                let f = Frame::Push(vec![
                    Frame::bulk("pmessage"),
                    Frame::Bulk(pat.clone()),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                let _ = s.tx.send(Event::Push(f));
                n += 1;
            }
        }
        n
    }

    /// Channels with at least one subscriber, filtered by a glob pattern.
    pub(crate) fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let subs = self.subs.read();
        subs.channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Number of subscribers of `channel`.
    pub(crate) fn numsub(&self, channel: &[u8]) -> usize {
        self.subs.read().channels.get(channel).map_or(0, Vec::len)
    }

    /// Number of distinct patterns subscribed to.
    pub(crate) fn numpat(&self) -> usize {
        self.subs.read().patterns.len()
    }
}

/// What other clients can see of a session (`CLIENT LIST`), updated by the
/// session as it runs commands.
#[derive(Debug)]
pub(crate) struct ClientView {
    pub(crate) db: usize,
    pub(crate) name: Option<Bytes>,
    pub(crate) last_cmd: &'static str,
    pub(crate) last_active: Instant,
    pub(crate) sub: usize,
    pub(crate) psub: usize,
    /// Queued commands, -1 outside MULTI.
    pub(crate) multi: i64,
    pub(crate) resp: u8,
    pub(crate) no_evict: bool,
    pub(crate) no_touch: bool,
}

/// One registered client.
pub(crate) struct Client {
    pub(crate) id: u64,
    pub(crate) conn: Option<ConnInfo>,
    pub(crate) events: UnboundedSender<Event>,
    pub(crate) created: Instant,
    pub(crate) view: Mutex<ClientView>,
    /// The connection's unparsed input and unsent output in bytes, as it
    /// last reported them (`CLIENT LIST`'s `qbuf` and `omem`).
    pub(crate) qbuf: AtomicUsize,
    pub(crate) omem: AtomicUsize,
}

/// Every open session, by id.
#[derive(Default)]
pub(crate) struct Clients {
    map: Mutex<std::collections::BTreeMap<u64, Arc<Client>>>,
    /// Connections accepted since start (INFO `total_connections_received`).
    pub(crate) received: AtomicU64,
}

impl Clients {
    pub(crate) fn register(
        &self,
        id: u64,
        conn: Option<ConnInfo>,
        events: UnboundedSender<Event>,
    ) -> Arc<Client> {
        let now = Instant::now();
        let c = Arc::new(Client {
            id,
            conn,
            events,
            created: now,
            view: Mutex::new(ClientView {
                db: 0,
                name: None,
                last_cmd: "NULL",
                last_active: now,
                sub: 0,
                psub: 0,
                multi: -1,
                resp: 2,
                no_evict: false,
                no_touch: false,
            }),
            qbuf: AtomicUsize::new(0),
            omem: AtomicUsize::new(0),
        });
        self.received.fetch_add(1, Ordering::Relaxed);
        self.map.lock().insert(id, c.clone());
        c
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// The client with this id, if connected.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Client>> {
        self.map.lock().get(&id).cloned()
    }

    /// All clients, by ascending id.
    pub(crate) fn all(&self) -> Vec<Arc<Client>> {
        self.map.lock().values().cloned().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn publish_counts_channel_and_pattern_receivers() {
        let ps = PubSub::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let me = Subscriber { id: 1, tx };
        {
            let mut w = ps.write();
            assert!(Subscriptions::add(
                &mut w.channels,
                &Bytes::from_static(b"news"),
                &me
            ));
            assert!(!Subscriptions::add(
                &mut w.channels,
                &Bytes::from_static(b"news"),
                &me
            ));
            assert!(Subscriptions::add(
                &mut w.patterns,
                &Bytes::from_static(b"n*"),
                &me
            ));
        }
        let n = ps.publish(&Bytes::from_static(b"news"), &Bytes::from_static(b"hi"));
        assert_eq!(n, 2);
        assert!(matches!(rx.try_recv().unwrap(), Event::Push(Frame::Push(v)) if v.len() == 3));
        assert!(matches!(rx.try_recv().unwrap(), Event::Push(Frame::Push(v)) if v.len() == 4));
        assert_eq!(ps.publish(&Bytes::from_static(b"other"), &Bytes::new()), 0);
        let mut w = ps.write();
        assert!(Subscriptions::remove(&mut w.channels, b"news", 1));
        assert!(w.channels.is_empty());
    }
}
