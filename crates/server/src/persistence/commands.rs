//! The Redis persistence commands and the write gate.
//!
//! [`PersistenceCommands`] is a keyspace [`Extension`]: SAVE, BGSAVE
//! [SCHEDULE], LASTSAVE, SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT], the
//! `INFO persistence` section, the `-MISCONF` refusal of writes while
//! snapshots fail (through the keyspace's `deny_write` hook, so MULTI and
//! EXEC follow Redis), and the validation of `CONFIG SET save` / `dir`.
//! Every other `CONFIG SET` parameter is the keyspace's. [`FlushallService`]
//! wraps the keyspace's RESP service only to take Redis' FLUSHALL snapshot
//! when save points are set: the keyspace has no hook after a command.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Flags, Keyspace, Session};
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Protocol};
use tokio::sync::{mpsc, oneshot};

use super::SnapshotTrigger;
use super::manager::Persistence;
use crate::config::SavePoint;
use crate::server::{ShutdownOptions, ShutdownRequest};

/// Redis 7.0's `shared.bgsaveerr`, word for word, so tools that look for it
/// recognise it.
pub(crate) const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
const ERR_IN_PROGRESS: &str = "ERR Background save already in progress";
const ERR_DISABLED: &str =
    "ERR persistence is disabled (cairn runs with --persistence false); nothing is saved";
const ERR_SHUTDOWN: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

fn err(msg: &str) -> Frame {
    Frame::error(msg.to_string())
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// SAVE, BGSAVE, LASTSAVE, SHUTDOWN and `INFO persistence`.
pub(crate) struct PersistenceCommands {
    pub(crate) persistence: Arc<Persistence>,
    pub(crate) shutdown: mpsc::UnboundedSender<ShutdownRequest>,
}

impl Extension for PersistenceCommands {
    fn commands(&self) -> Vec<CommandSpec> {
        let g = "server";
        let admin = Flags::ADMIN | Flags::NOSCRIPT;
        vec![
            CommandSpec::new("save", 1, admin | Flags::NO_MULTI, g)
                .doc("Synchronously save the dataset to disk", "1.0.0"),
            CommandSpec::new("bgsave", -1, admin, g)
                .doc("Asynchronously save the dataset to disk", "1.0.0"),
            CommandSpec::new(
                "lastsave",
                1,
                Flags::LOADING | Flags::STALE | Flags::FAST,
                g,
            )
            .doc(
                "Get the UNIX time stamp of the last successful save to disk",
                "1.0.0",
            ),
            CommandSpec::new(
                "shutdown",
                -1,
                admin | Flags::LOADING | Flags::STALE | Flags::NO_MULTI,
                g,
            )
            .doc(
                "Synchronously save the dataset to disk and then shut down the server",
                "1.0.0",
            ),
        ]
    }

    fn call(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        match ctx.command() {
            "save" => self.save(ctx),
            "bgsave" => self.bgsave(ctx, args),
            "lastsave" => Frame::Integer(self.persistence.last_save_unix()),
            "shutdown" => self.shutdown(ctx, args),
            _ => err("ERR unknown command"),
        }
    }

    fn info_sections(&self) -> Vec<&'static str> {
        vec!["persistence"]
    }

    fn info(&self, ks: &Keyspace, section: &str) -> Option<String> {
        (section == "persistence").then(|| info_persistence(&self.persistence, ks))
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        // Only validated here: the keyspace stores the value once every
        // pair of the CONFIG SET passed (all or nothing), and the timer and
        // FLUSHALL read it back through `sync_settings`.
        match name {
            "save" => Some(
                parse_redis_save(value)
                    .map(|_| ())
                    .ok_or_else(|| "Invalid save parameters".to_string()),
            ),
            // The directory holds the LOCK and the generations: moving it
            // under a running server is not supported (Redis 7 refuses it
            // too unless enable-protected-configs is set).
            "dir" => Some(Err("can't set protected config".to_string())),
            // There is no AOF: `appendonly` stays `no` so that tools reading
            // it are not told the data is logged.
            "appendonly" if value != b"no" => Some(Err(
                "cairn has no append-only file; it persists by snapshots only".to_string(),
            )),
            _ => None,
        }
    }

    fn deny_write(&self, ks: &Keyspace) -> Option<Frame> {
        // The cheap check first: the parameter is only read after a failure.
        (self.persistence.snapshot_failing()
            && ks
                .config_param("stop-writes-on-bgsave-error")
                .is_some_and(|v| v == "yes"))
        .then(|| err(MISCONF))
    }
}

/// Parses `CONFIG SET save` exactly as Redis 7.0 does: "" disables; else
/// fields separated by single spaces, read like `strtoll` (so an empty field
/// reads as 0 and overflow saturates), seconds >= 1, changes >= 0.
pub(crate) fn parse_redis_save(value: &[u8]) -> Option<Vec<SavePoint>> {
    if value.is_empty() {
        return Some(Vec::new());
    }
    let fields: Vec<&[u8]> = value.split(|&b| b == b' ').collect();
    if !fields.len().is_multiple_of(2) {
        return None;
    }
    fields
        .chunks_exact(2)
        .map(|pair| match pair {
            [secs, changes] => {
                let seconds = strtoll_all(secs).filter(|&v| v >= 1)?;
                let changes = strtoll_all(changes).filter(|&v| v >= 0)?;
                Some(SavePoint {
                    seconds: seconds.unsigned_abs(),
                    changes: changes.unsigned_abs(),
                })
            }
            _ => None,
        })
        .collect()
}

/// C's `strtoll(s, &end, 10)` that must consume all of `s`.
fn strtoll_all(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let rest = s.trim_ascii_start();
    let (neg, digits) = match rest.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        v = v.saturating_mul(10);
        v = if neg {
            v.saturating_sub(d)
        } else {
            v.saturating_add(d)
        };
    }
    Some(v)
}

/// Brings the persistence settings in line with the keyspace's `save` and
/// `stop-writes-on-bgsave-error` parameters (which `CONFIG SET` changes);
/// called where they are used, so a change applies from the next check.
pub(crate) fn sync_settings(ks: &Keyspace, p: &Persistence) {
    if let Some(points) = ks
        .config_param("save")
        .and_then(|text| parse_redis_save(text.as_bytes()))
        && points != p.save_points()
    {
        p.set_save_points(points);
    }
    if let Some(v) = ks.config_param("stop-writes-on-bgsave-error") {
        p.set_stop_writes(v == "yes");
    }
}

impl PersistenceCommands {
    fn save(&self, ctx: &mut Ctx<'_>) -> Frame {
        let p = &self.persistence;
        if !p.enabled() {
            return err(ERR_DISABLED);
        }
        if p.in_progress() {
            return err(ERR_IN_PROGRESS);
        }
        // The reply waits for the commit without holding a worker thread:
        // the snapshot runs as its own task, so a client that disconnects
        // while waiting does not cancel it half-way.
        let ks = ctx.keyspace().clone();
        let p = Arc::clone(p);
        let task = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let ks = ks.clone();
            rt.spawn(async move { p.snapshot(&ks, SnapshotTrigger::Save).await })
        });
        let Some(task) = task else {
            return err("ERR SAVE needs the server's runtime");
        };
        ctx.block(Box::pin(async move {
            match task.await {
                Ok(Ok(_)) => Frame::ok(),
                Ok(Err(super::SnapshotError::InProgress)) => err(ERR_IN_PROGRESS),
                // Redis answers a failed SAVE with a bare `-ERR`; the cause
                // is in the log and in INFO (cairn_last_snapshot_error).
                _ => err("ERR"),
            }
        }))
    }

    fn bgsave(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        let schedule = match args {
            [_] => false,
            [_, a] if is(a, "schedule") => true,
            _ => return err("ERR syntax error"),
        };
        let p = &self.persistence;
        if !p.enabled() {
            return err(ERR_DISABLED);
        }
        let ks = ctx.keyspace();
        if schedule {
            match p.schedule_background(ks) {
                Ok(true) => Frame::simple("Background saving started"),
                Ok(false) => Frame::simple("Background saving scheduled"),
                Err(e) => Frame::error(format!("ERR {e}")),
            }
        } else {
            match p.start_background(ks, SnapshotTrigger::Bgsave) {
                Ok(()) => Frame::simple("Background saving started"),
                Err(super::SnapshotError::InProgress) => err(ERR_IN_PROGRESS),
                Err(e) => Frame::error(format!("ERR {e}")),
            }
        }
    }

    fn shutdown(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        let (mut nosave, mut save, mut abort, mut force) = (false, false, false, false);
        if args.len() > 6 {
            return err("ERR syntax error");
        }
        let mut flags = 0;
        for a in args.iter().skip(1) {
            if is(a, "nosave") {
                nosave = true;
                flags += 1;
            } else if is(a, "save") {
                save = true;
                flags += 1;
            } else if is(a, "now") {
                // No replicas to wait for: NOW changes nothing here.
                flags += 1;
            } else if is(a, "force") {
                force = true;
                flags += 1;
            } else if is(a, "abort") {
                abort = true;
            } else {
                return err("ERR syntax error");
            }
        }
        if (abort && flags > 0) || (nosave && save) {
            return err("ERR syntax error");
        }
        if abort {
            return if self.persistence.abort_shutdown() {
                Frame::ok()
            } else {
                err("ERR No shutdown in progress.")
            };
        }
        let opts = ShutdownOptions {
            save: if nosave {
                Some(false)
            } else if save {
                Some(true)
            } else {
                None
            },
            force,
        };
        let (reply, rx) = oneshot::channel();
        if self.shutdown.send(ShutdownRequest { opts, reply }).is_err() {
            return err(ERR_SHUTDOWN);
        }
        ctx.block(Box::pin(async move {
            match rx.await {
                // On success the server stops and this connection closes
                // without a reply, as in Redis; never answer first.
                Ok(Ok(())) => std::future::pending().await,
                _ => err(ERR_SHUTDOWN),
            }
        }))
    }
}

fn info_persistence(p: &Persistence, ks: &Keyspace) -> String {
    let s = p.status(ks);
    let mut out = String::new();
    let _ = write!(
        out,
        "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\n\
         current_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n\
         rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\n\
         rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\n\
         rdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n\
         aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\n\
         aof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\n\
         aof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\n\
         module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        s.changes_since_last_save,
        u8::from(s.in_progress),
        s.last_save_time,
        if s.last_status_ok { "ok" } else { "err" },
        s.last_duration_sec,
        p.current_duration_sec(),
        s.saves,
        s.last_load_keys_expired,
        s.last_load_keys_loaded,
    );
    let error = s
        .last_error
        .as_deref()
        .unwrap_or("")
        .replace(['\r', '\n'], " ");
    let _ = write!(
        out,
        "cairn_persistence:{}\r\ncairn_current_generation:{}\r\ncairn_last_snapshot_bytes:{}\r\n\
         cairn_last_snapshot_keys:{}\r\ncairn_snapshot_failures:{}\r\ncairn_last_snapshot_error:{}\r\n\
         cairn_quarantined_generations:{}\r\ncairn_data_dir:{}\r\n",
        if s.enabled { "enabled" } else { "disabled" },
        s.current_generation
            .map_or(-1, |g| i64::try_from(g).unwrap_or(i64::MAX)),
        s.last_snapshot_bytes,
        s.last_snapshot_keys,
        s.failures,
        error,
        s.quarantined_generations,
        s.data_dir.display(),
    );
    out
}

/// The keyspace's RESP service, plus Redis' snapshot after FLUSHALL when
/// save points are set.
pub(crate) struct FlushallService {
    pub(crate) ks: Keyspace,
    pub(crate) persistence: Arc<Persistence>,
}

impl cairn_resp::Service for FlushallService {
    type Session = FlushallSession;

    fn open(&self, conn: ConnInfo) -> (FlushallSession, mpsc::UnboundedReceiver<Event>) {
        let (inner, rx) = cairn_resp::Service::open(&self.ks, conn);
        let session = FlushallSession {
            inner,
            ks: self.ks.clone(),
            persistence: Arc::clone(&self.persistence),
        };
        (session, rx)
    }
}

/// One client's keyspace session.
pub(crate) struct FlushallSession {
    inner: Session,
    ks: Keyspace,
    persistence: Arc<Persistence>,
}

impl cairn_resp::Session for FlushallSession {
    fn call(&mut self, args: Vec<Bytes>) -> Outcome {
        let flushall = args.first().is_some_and(|a| is(a, "flushall"));
        let outcome = self.inner.execute(args);
        // A FLUSHALL queued in MULTI answers QUEUED, not OK: only a flush
        // that ran here is followed by a save.
        if !flushall || !matches!(&outcome, Outcome::Reply(Frame::Simple(s)) if &s[..] == b"OK") {
            return outcome;
        }
        let p = &self.persistence;
        if !p.enabled() {
            return outcome;
        }
        sync_settings(&self.ks, p);
        if p.save_points().is_empty() {
            return outcome;
        }
        // Redis saves right after FLUSHALL when save points are set, so an
        // old snapshot cannot bring the data back after a restart; the reply
        // waits for that save.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return outcome;
        };
        let p = Arc::clone(p);
        let ks = self.ks.clone();
        let task = rt.spawn(async move { p.snapshot_for_flushall(&ks).await });
        Outcome::Block(Box::pin(async move {
            let _ = task.await;
            Frame::ok()
        }))
    }

    fn protocol(&self) -> Protocol {
        cairn_resp::Session::protocol(&self.inner)
    }

    fn authenticated(&self) -> bool {
        cairn_resp::Session::authenticated(&self.inner)
    }

    fn reply_suppressed(&self) -> bool {
        cairn_resp::Session::reply_suppressed(&self.inner)
    }

    fn closed(&mut self) {
        cairn_resp::Session::closed(&mut self.inner);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn points(v: &str) -> Option<Vec<(u64, u64)>> {
        parse_redis_save(v.as_bytes()).map(|p| p.iter().map(|p| (p.seconds, p.changes)).collect())
    }

    #[test]
    fn save_syntax_matches_redis_7_0() {
        // Each case checked against redis-server 7.0.15 (CONFIG SET, GET).
        assert_eq!(points(""), Some(vec![]));
        assert_eq!(points("3600 1 300 100"), Some(vec![(3600, 1), (300, 100)]));
        assert_eq!(points("+5 07"), Some(vec![(5, 7)]));
        assert_eq!(points("\t5 7"), Some(vec![(5, 7)]));
        assert_eq!(points("1 1 2 "), Some(vec![(1, 1), (2, 0)]));
        assert_eq!(points("5 0"), Some(vec![(5, 0)]));
        assert_eq!(
            points("99999999999999999999 1"),
            Some(vec![(i64::MAX as u64, 1)])
        );
        for bad in [
            "0 3", "5", "5  7", "-1 5", "5 -1", "x 1", " ", "5 7 ", "5 +", "5\t7",
        ] {
            assert_eq!(points(bad), None, "{bad:?}");
        }
    }
}
