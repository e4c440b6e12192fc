//! The Redis persistence commands and the write gate.
//!
//! [`PersistenceCommands`] is a keyspace [`Extension`]: SAVE, BGSAVE
//! [SCHEDULE], LASTSAVE, SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT], and
//! the `INFO persistence` section. [`GatedService`] wraps the keyspace's
//! RESP service to do what must happen around any command: refuse writes
//! with `-MISCONF` while snapshots fail, answer `CONFIG SET save`, and take
//! Redis' FLUSHALL snapshot when save points are set.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Flags, Keyspace, Session};
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Protocol};
use tokio::sync::{mpsc, oneshot};

use super::SnapshotTrigger;
use super::manager::Persistence;
use crate::config::{format_save_points, parse_save_points};
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

/// The keyspace's RESP service with the persistence checks around it.
pub(crate) struct GatedService {
    pub(crate) ks: Keyspace,
    pub(crate) persistence: Arc<Persistence>,
    /// Lowercase names of the commands flagged `write`, read from the
    /// keyspace's own command table (`COMMAND`), so new commands are
    /// covered without a list here.
    pub(crate) writes: Arc<HashSet<Vec<u8>>>,
}

impl GatedService {
    pub(crate) fn new(ks: Keyspace, persistence: Arc<Persistence>) -> GatedService {
        let writes = write_commands(&ks);
        GatedService {
            ks,
            persistence,
            writes: Arc::new(writes),
        }
    }
}

/// Reads the names of the write commands from `COMMAND`'s reply.
fn write_commands(ks: &Keyspace) -> HashSet<Vec<u8>> {
    let mut out = HashSet::new();
    let Frame::Array(all) = ks.session().command(&["COMMAND"]) else {
        return out;
    };
    for c in all {
        let Frame::Array(fields) = c else { continue };
        let (Some(Frame::Bulk(name)), Some(Frame::Set(flags) | Frame::Array(flags))) =
            (fields.first(), fields.get(2))
        else {
            continue;
        };
        if flags
            .iter()
            .any(|f| matches!(f, Frame::Simple(s) | Frame::Bulk(s) if &s[..] == b"write"))
        {
            out.insert(name.to_ascii_lowercase());
        }
    }
    out
}

impl cairn_resp::Service for GatedService {
    type Session = GatedSession;

    fn open(&self, conn: ConnInfo) -> (GatedSession, mpsc::UnboundedReceiver<Event>) {
        let (inner, rx) = cairn_resp::Service::open(&self.ks, conn);
        let session = GatedSession {
            inner,
            ks: self.ks.clone(),
            persistence: Arc::clone(&self.persistence),
            writes: Arc::clone(&self.writes),
        };
        (session, rx)
    }
}

/// One client's keyspace session behind the persistence checks.
pub(crate) struct GatedSession {
    inner: Session,
    ks: Keyspace,
    persistence: Arc<Persistence>,
    writes: Arc<HashSet<Vec<u8>>>,
}

impl GatedSession {
    fn config_set(&mut self, args: &[Bytes]) -> Frame {
        let pairs = args.get(2..).unwrap_or_default();
        if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
            return Frame::error(
                "ERR wrong number of arguments for 'config|set' command".to_string(),
            );
        }
        // Validate every pair before applying any, as Redis 7 does.
        let mut new_save = None;
        for pair in pairs.chunks(2) {
            let [name, value] = pair else { continue };
            let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
            match lname.as_str() {
                "save" => {
                    let text = String::from_utf8_lossy(value);
                    match parse_save_points(&text) {
                        Ok(points) => new_save = Some(points),
                        Err(_) => {
                            return Frame::error(
                                "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters".to_string(),
                            );
                        }
                    }
                }
                "dir" => {
                    return Frame::error(
                        "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config".to_string(),
                    );
                }
                _ => {
                    return Frame::error(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                        String::from_utf8_lossy(name)
                    ));
                }
            }
        }
        if let Some(points) = new_save {
            self.ks
                .set_config_param("save", &format_save_points(&points));
            self.persistence.set_save_points(points);
        }
        Frame::ok()
    }
}

impl cairn_resp::Session for GatedSession {
    fn call(&mut self, args: Vec<Bytes>) -> Outcome {
        let authenticated = self.inner.state().authenticated;
        let name = args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        if authenticated
            && self.inner.state().multi.is_none()
            && name == b"config"
            && args.get(1).is_some_and(|a| is(a, "set"))
        {
            return Outcome::Reply(self.config_set(&args));
        }
        if authenticated && self.writes.contains(&name) && self.persistence.writes_refused() {
            return Outcome::Reply(err(MISCONF));
        }
        let outcome = self.inner.execute(args);
        let flushed_all = name == b"flushall"
            && matches!(&outcome, Outcome::Reply(Frame::Simple(s)) if &s[..] == b"OK");
        if flushed_all && self.persistence.enabled() && !self.persistence.save_points().is_empty() {
            // Redis saves right after FLUSHALL when save points are set, so
            // an old snapshot cannot bring the data back after a restart;
            // the reply waits for that save.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let p = Arc::clone(&self.persistence);
                let ks = self.ks.clone();
                let task = rt.spawn(async move { p.snapshot_for_flushall(&ks).await });
                return Outcome::Block(Box::pin(async move {
                    let _ = task.await;
                    Frame::ok()
                }));
            }
        }
        outcome
    }

    fn protocol(&self) -> Protocol {
        cairn_resp::Session::protocol(&self.inner)
    }

    fn authenticated(&self) -> bool {
        cairn_resp::Session::authenticated(&self.inner)
    }

    fn closed(&mut self) {
        cairn_resp::Session::closed(&mut self.inner);
    }
}
