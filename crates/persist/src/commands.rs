//! The Redis persistence commands and the write gate.
//!
//! [`PersistenceCommands`] is a keyspace [`Extension`]: SAVE, BGSAVE
//! [SCHEDULE], LASTSAVE, the `INFO persistence` section, the `-MISCONF`
//! refusal of writes while snapshots fail (through the keyspace's
//! `deny_write` hook, so MULTI and EXEC follow Redis), Redis' save after
//! FLUSHALL when save points are set, and the `CONFIG SET` parameters the
//! pipeline owns (`save`, `stop-writes-on-bgsave-error`, `dir`,
//! `appendonly`). SHUTDOWN is the server's.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Completion, Ctx, Extension, Flags, Frame, Keyspace};

use crate::SnapshotError;
use crate::config::parse_save;
use crate::manager::{Persistence, ReloadError};

/// Redis 7.0's `shared.bgsaveerr`, word for word, so tools that look for it
/// recognise it.
pub(crate) const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
const ERR_IN_PROGRESS: &str = "ERR Background save already in progress";
const ERR_DISABLED: &str =
    "ERR persistence is disabled (cairn runs with --persistence false); nothing is saved";

fn err(msg: &str) -> Frame {
    Frame::error(msg.to_string())
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// SAVE, BGSAVE, LASTSAVE and `INFO persistence`.
pub(crate) struct PersistenceCommands {
    persistence: Arc<Persistence>,
}

impl PersistenceCommands {
    pub(crate) fn new(persistence: Arc<Persistence>) -> Self {
        PersistenceCommands { persistence }
    }
}

impl Extension for PersistenceCommands {
    fn commands(&self) -> Vec<CommandSpec> {
        let g = "server";
        let admin = Flags::ADMIN | Flags::NOSCRIPT;
        // SAVE and BGSAVE are EXCLUSIVE: they run holding the keyspace gate
        // for write, so the view they take is the state between this
        // command and the next, as with Redis' fork.
        vec![
            CommandSpec::new("save", 1, admin | Flags::NO_MULTI | Flags::EXCLUSIVE, g)
                .doc("Synchronously save the dataset to disk", "1.0.0"),
            CommandSpec::new("bgsave", -1, admin | Flags::EXCLUSIVE, g)
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
        ]
    }

    fn call(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        match ctx.command() {
            "save" => self.save(ctx),
            "bgsave" => self.bgsave(ctx, args),
            "lastsave" => Frame::Integer(self.persistence.last_save_unix()),
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
        // pair of the CONFIG SET passed (all or nothing), then calls
        // `config_applied`.
        match name {
            "save" => Some(
                parse_save(value)
                    .map(|_| ())
                    .map_err(|_| "Invalid save parameters".to_string()),
            ),
            // The directory holds the LOCK and the generations: moving it
            // under a running server is not supported. Without
            // `enable-protected-configs` the keyspace refuses it first,
            // with Redis' "can't set protected config".
            "dir" => Some(Err(
                "cairn cannot move its data directory while running; set --data-dir and restart"
                    .to_string(),
            )),
            // There is no AOF: `appendonly` stays `no` so that tools reading
            // it are not told the data is logged.
            "appendonly" if value != b"no" => Some(Err(
                "cairn has no append-only file; it persists by snapshots only".to_string(),
            )),
            _ => None,
        }
    }

    fn config_applied(&self, _ks: &Keyspace, name: &str, value: &str) {
        match name {
            "save" => {
                if let Ok(points) = parse_save(value.as_bytes()) {
                    self.persistence.set_save_points(points);
                }
            }
            "stop-writes-on-bgsave-error" => self.persistence.set_stop_writes(value == "yes"),
            _ => {}
        }
    }

    fn deny_write(&self, _ks: &Keyspace) -> Option<Frame> {
        self.persistence.writes_refused().then(|| err(MISCONF))
    }

    fn debug_reload(
        &self,
        ks: &Keyspace,
        save: bool,
        empty: Option<&dyn Fn()>,
    ) -> Option<Result<(), Frame>> {
        let p = &self.persistence;
        if !p.enabled() {
            return Some(Err(err(
                "ERR DEBUG RELOAD needs persistence (cairn runs with --persistence false): there is no snapshot to reload",
            )));
        }
        Some(p.debug_reload(ks, save, empty).map_err(|e| match e {
            ReloadError::Save => err("ERR"),
            ReloadError::Load => err("ERR Error trying to load the RDB dump"),
        }))
    }

    fn after_flushall(&self, ks: &Keyspace) -> Option<Completion> {
        // Redis saves right after FLUSHALL when save points are set, so an
        // old snapshot cannot bring the data back after a restart; a
        // top-level FLUSHALL replies once that save is done.
        let task = self.persistence.save_after_flushall(ks)?;
        Some(Box::pin(async move {
            let _ = task.await;
        }))
    }
}

impl PersistenceCommands {
    fn save(&self, ctx: &mut Ctx<'_>) -> Frame {
        let p = &self.persistence;
        if !p.enabled() {
            return err(ERR_DISABLED);
        }
        // The view is taken here, inside the command (EXCLUSIVE); the reply
        // waits for the commit without holding a worker thread, and the
        // write runs as its own task, so a client that disconnects while
        // waiting does not cancel it half-way.
        let task = match p.save_now(ctx.keyspace()) {
            Ok(task) => task,
            Err(SnapshotError::InProgress) => return err(ERR_IN_PROGRESS),
            Err(_) => return err("ERR"),
        };
        ctx.block(Box::pin(async move {
            match task.await {
                Ok(Ok(_)) => Frame::ok(),
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
        // Inside EXEC Redis only schedules it (its cron starts it after the
        // transaction); the timer here does the same within 100 ms.
        let in_exec = ctx.in_exec();
        let ks = ctx.keyspace();
        if schedule || in_exec {
            match p.schedule_background(ks, in_exec) {
                Ok(true) => Frame::simple("Background saving started"),
                Ok(false) => Frame::simple("Background saving scheduled"),
                Err(e) => Frame::error(format!("ERR {e}")),
            }
        } else {
            match p.start_background(ks, crate::SnapshotTrigger::Bgsave) {
                Ok(()) => Frame::simple("Background saving started"),
                Err(SnapshotError::InProgress) => err(ERR_IN_PROGRESS),
                Err(e) => Frame::error(format!("ERR {e}")),
            }
        }
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
         cairn_quarantined_generations:{}\r\ncairn_quarantined_bytes:{}\r\ncairn_generations_on_disk:{}\r\n\
         cairn_generations_bytes:{}\r\ncairn_data_dir:{}\r\n",
        if s.enabled { "enabled" } else { "disabled" },
        s.current_generation
            .map_or(-1, |g| i64::try_from(g).unwrap_or(i64::MAX)),
        s.last_snapshot_bytes,
        s.last_snapshot_keys,
        s.failures,
        error,
        s.quarantined_generations,
        s.quarantined_bytes,
        s.generations_on_disk,
        s.generations_bytes,
        s.data_dir.display(),
    );
    out
}
