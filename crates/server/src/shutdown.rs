//! Stopping the server: the SHUTDOWN command, what SIGTERM and SIGINT do
//! (Redis 7.0's `shutdown-on-sigterm` / `shutdown-on-sigint`), and the one
//! task that runs the shutdown sequence, so a command, a signal and
//! [`ServerHandle::shutdown`](crate::ServerHandle::shutdown) all stop the
//! server the same way, one at a time.

use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Flags, Frame, Keyspace};
use cairn_persist::{Persistence, SnapshotError, SnapshotTrigger};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

const ERR_SHUTDOWN: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// Why a shutdown did not happen as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The shutdown snapshot failed; the shutdown was abandoned and the
    /// server keeps running (Redis' behaviour), unless it was asked with
    /// `force` or through [`ServerHandle::shutdown`](crate::ServerHandle::shutdown),
    /// which stops anyway.
    #[error("the shutdown snapshot failed: {0}")]
    Snapshot(SnapshotError),
    /// `SHUTDOWN ABORT` cancelled it while the snapshot was being written.
    #[error("the shutdown was aborted (SHUTDOWN ABORT)")]
    Aborted,
    /// The server stopped, but the snapshot of the writes made while the
    /// shutdown snapshot was being written failed; those writes are lost.
    #[error("the server stopped but its final catch-up snapshot failed: {0}")]
    FinalSnapshot(SnapshotError),
    /// The connection server ended with an error.
    #[error("the connection server failed: {0}")]
    Serve(std::io::Error),
}

/// How to shut down; the defaults are what a plain `SHUTDOWN`, a signal
/// with `shutdown-on-sig* default`, and
/// [`ServerHandle::shutdown`](crate::ServerHandle::shutdown) do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownOptions {
    /// `Some(true)`: take a snapshot (`SHUTDOWN SAVE`); `Some(false)`: do
    /// not (`SHUTDOWN NOSAVE`); `None`: as `snapshot_on_shutdown` says.
    pub save: Option<bool>,
    /// Stop even when the snapshot fails (`SHUTDOWN FORCE`).
    pub force: bool,
}

impl ShutdownOptions {
    /// Skip the shutdown snapshot (`SHUTDOWN NOSAVE`).
    pub fn nosave() -> ShutdownOptions {
        ShutdownOptions {
            save: Some(false),
            force: false,
        }
    }

    /// Always take a shutdown snapshot (`SHUTDOWN SAVE`).
    pub fn save() -> ShutdownOptions {
        ShutdownOptions {
            save: Some(true),
            force: false,
        }
    }

    /// Stop even if the snapshot fails (`SHUTDOWN FORCE`).
    #[must_use]
    pub fn force(mut self, yes: bool) -> ShutdownOptions {
        self.force = yes;
        self
    }
}

/// What a signal does: Redis 7.0's `shutdown-on-sigterm` and
/// `shutdown-on-sigint`, any of `default`, `save`, `nosave`, `now`,
/// `force` (several separated by spaces; not `save` with `nosave`).
///
/// `default` shuts down as a plain `SHUTDOWN` does: with the shutdown
/// snapshot when `snapshot_on_shutdown` is set, and if that snapshot fails
/// the server keeps running. `force` stops even then; `nosave` stops
/// without a snapshot. `now` skips waiting for lagging replicas in Redis;
/// cairn has no replicas, so it changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalAction {
    /// `save` (`Some(true)`) or `nosave` (`Some(false)`).
    pub save: Option<bool>,
    /// `now`.
    pub now: bool,
    /// `force`.
    pub force: bool,
}

/// A value `shutdown-on-sigterm` / `shutdown-on-sigint` does not accept;
/// the message is Redis'.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseSignalActionError(&'static str);

impl std::str::FromStr for SignalAction {
    type Err = ParseSignalActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut action = SignalAction::default();
        let mut any = false;
        for word in s.split_ascii_whitespace() {
            any = true;
            match word.to_ascii_lowercase().as_str() {
                "default" => {}
                "save" => {
                    if action.save == Some(false) {
                        return Err(BOTH_SAVES);
                    }
                    action.save = Some(true);
                }
                "nosave" => {
                    if action.save == Some(true) {
                        return Err(BOTH_SAVES);
                    }
                    action.save = Some(false);
                }
                "now" => action.now = true,
                "force" => action.force = true,
                _ => return Err(NOT_ONE_OF),
            }
        }
        if !any {
            return Err(NOT_ONE_OF);
        }
        Ok(action)
    }
}

const NOT_ONE_OF: ParseSignalActionError = ParseSignalActionError(
    "argument(s) must be one of the following: default, save, nosave, now, force",
);
const BOTH_SAVES: ParseSignalActionError =
    ParseSignalActionError("shutdown options SAVE and NOSAVE can't be used simultaneously");

impl std::fmt::Display for SignalAction {
    /// Redis' canonical form, as `CONFIG GET` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut words = Vec::new();
        match self.save {
            Some(true) => words.push("save"),
            Some(false) => words.push("nosave"),
            None => {}
        }
        if self.now {
            words.push("now");
        }
        if self.force {
            words.push("force");
        }
        if words.is_empty() {
            words.push("default");
        }
        f.write_str(&words.join(" "))
    }
}

impl From<SignalAction> for ShutdownOptions {
    fn from(a: SignalAction) -> Self {
        ShutdownOptions {
            save: a.save,
            force: a.force,
        }
    }
}

/// A signal that shuts the server down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM: `shutdown-on-sigterm` says what to do.
    Term,
    /// SIGINT (Ctrl-C): `shutdown-on-sigint` says what to do.
    Int,
}

impl Signal {
    /// The parameter that says what this signal does.
    pub fn parameter(self) -> &'static str {
        match self {
            Signal::Term => "shutdown-on-sigterm",
            Signal::Int => "shutdown-on-sigint",
        }
    }

    /// `SIGTERM` or `SIGINT`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }
}

/// A request to the task that owns the shutdown sequence.
pub(crate) struct ShutdownRequest {
    pub(crate) opts: ShutdownOptions,
    pub(crate) reply: oneshot::Sender<Result<(), ShutdownError>>,
}

/// Whether a shutdown is under way, and whether `SHUTDOWN ABORT` asked to
/// cancel it; shared by the SHUTDOWN command and the supervisor.
#[derive(Default)]
pub(crate) struct ShutdownState {
    inner: Mutex<(bool, bool)>,
}

impl ShutdownState {
    fn begin(&self) {
        *self.inner.lock() = (true, false);
    }

    /// Ends a shutdown that did not stop the server.
    fn end(&self) {
        *self.inner.lock() = (false, false);
    }

    fn aborted(&self) -> bool {
        self.inner.lock().1
    }

    /// `SHUTDOWN ABORT`: `false` when no shutdown is in progress.
    fn abort(&self) -> bool {
        let mut s = self.inner.lock();
        if !s.0 {
            return false;
        }
        s.1 = true;
        true
    }
}

/// The SHUTDOWN command and the `shutdown-on-sig*` parameters.
pub(crate) struct ShutdownCommand {
    pub(crate) requests: mpsc::UnboundedSender<ShutdownRequest>,
    pub(crate) state: Arc<ShutdownState>,
}

impl Extension for ShutdownCommand {
    fn commands(&self) -> Vec<CommandSpec> {
        // ALLOW_BUSY: SHUTDOWN NOSAVE works during a busy script.
        let flags = Flags::ADMIN
            | Flags::NOSCRIPT
            | Flags::LOADING
            | Flags::STALE
            | Flags::NO_MULTI
            | Flags::ALLOW_BUSY;
        vec![CommandSpec::new("shutdown", -1, flags, "server").doc(
            "Synchronously save the dataset to disk and then shut down the server",
            "1.0.0",
        )]
    }

    fn call(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
        self.shutdown(ctx, args)
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        if name != Signal::Term.parameter() && name != Signal::Int.parameter() {
            return None;
        }
        Some(
            String::from_utf8_lossy(value)
                .parse::<SignalAction>()
                .map(|_| ())
                .map_err(|e| e.to_string()),
        )
    }

    fn config_applied(&self, ks: &Keyspace, name: &str, value: &str) {
        if name != Signal::Term.parameter() && name != Signal::Int.parameter() {
            return;
        }
        // Stored as Redis shows it (`force nosave` reads back `nosave force`).
        if let Ok(action) = value.parse::<SignalAction>() {
            let canonical = action.to_string();
            if canonical != value {
                ks.set_config_param(name, &canonical);
            }
        }
    }
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn err(msg: &str) -> Frame {
    Frame::error(msg.to_string())
}

impl ShutdownCommand {
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
        // During a busy script only SHUTDOWN NOSAVE is served (Redis: a
        // shutdown that saves would wait for the script).
        if !nosave && ctx.keyspace().is_busy() {
            return ctx.keyspace().busy_reply().unwrap_or_else(|| {
                err("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
            });
        }
        if abort {
            return if self.state.abort() {
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
        if self.requests.send(ShutdownRequest { opts, reply }).is_err() {
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

/// Owns the shutdown sequence.
pub(crate) struct Supervisor {
    pub(crate) ks: Keyspace,
    pub(crate) persistence: Arc<Persistence>,
    pub(crate) state: Arc<ShutdownState>,
    pub(crate) snapshot_on_shutdown: bool,
    pub(crate) stop_tx: watch::Sender<bool>,
    pub(crate) serve: Option<JoinHandle<std::io::Result<()>>>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) done: watch::Sender<bool>,
    /// Stopped before the connections: a script runs on a connection's
    /// worker and would otherwise keep it (and the shutdown) waiting.
    pub(crate) scripting: Arc<cairn_script::Scripting>,
    /// The Unix socket file, removed once nothing listens on it.
    pub(crate) unix_socket: Option<std::path::PathBuf>,
}

impl Supervisor {
    pub(crate) async fn run(mut self, mut requests: mpsc::UnboundedReceiver<ShutdownRequest>) {
        // The keyspace (held here) holds a sender, so this never ends by
        // itself: only a successful shutdown breaks the loop.
        while let Some(req) = requests.recv().await {
            match self.try_stop(req.opts).await {
                Ok(result) => {
                    let _ = req.reply.send(result);
                    break;
                }
                Err(e) => {
                    let _ = req.reply.send(Err(e));
                }
            }
        }
        // Later requests (a second SHUTDOWN racing the first) see the
        // server already stopped.
        requests.close();
        while let Ok(req) = requests.try_recv() {
            let _ = req.reply.send(Ok(()));
        }
    }

    /// `Err`: the server keeps running. `Ok(r)`: it stopped, and `r` says
    /// whether everything went well.
    async fn try_stop(
        &mut self,
        opts: ShutdownOptions,
    ) -> Result<Result<(), ShutdownError>, ShutdownError> {
        let p = Arc::clone(&self.persistence);
        self.state.begin();
        p.hold_background(true);
        let want_save = opts
            .save
            .unwrap_or(self.snapshot_on_shutdown && p.enabled());
        let mut saved = false;
        if want_save {
            if p.enabled() {
                info!("User requested shutdown... Saving the final snapshot before exiting.");
            }
            match p
                .snapshot_after_running(&self.ks, SnapshotTrigger::Shutdown)
                .await
            {
                Ok(_) => saved = true,
                Err(e) if opts.force => {
                    warn!(error = %e, "shutdown snapshot failed; stopping anyway (FORCE)");
                }
                Err(e) => {
                    error!(error = %e, "Error trying to save the DB, can't exit.");
                    self.state.end();
                    p.hold_background(false);
                    return Err(ShutdownError::Snapshot(e));
                }
            }
        }
        if self.state.aborted() {
            self.state.end();
            p.hold_background(false);
            warn!("shutdown aborted by SHUTDOWN ABORT; the server keeps running");
            return Err(ShutdownError::Aborted);
        }
        // Stop serving: no new commands after this, in-flight ones finish
        // (a running script is stopped).
        self.scripting.abort();
        let _ = self.stop_tx.send(true);
        let mut result = Ok(());
        if let Some(serve) = self.serve.take() {
            match serve.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(ShutdownError::Serve(e)),
                Err(e) => result = Err(ShutdownError::Serve(std::io::Error::other(e))),
            }
        }
        if let Some(path) = self.unix_socket.take() {
            info!("Removing the unix socket file.");
            if let Err(e) = std::fs::remove_file(&path) {
                warn!("Error removing the unix socket file: {e}");
            }
        }
        for t in self.tasks.drain(..) {
            if let Err(e) = t.await {
                warn!(error = %e, "background task ended abnormally");
            }
        }
        // Clients kept writing while the shutdown snapshot was written; save
        // those writes too, now that nothing can change any more.
        if saved && self.ks.changes() > p.changes_base() {
            info!("saving the writes made during the shutdown snapshot");
            if let Err(e) = p
                .snapshot_after_running(&self.ks, SnapshotTrigger::Shutdown)
                .await
            {
                error!(error = %e, "final catch-up snapshot failed; writes since the shutdown snapshot are lost");
                result = Err(ShutdownError::FinalSnapshot(e));
            }
        }
        p.close().await;
        info!("cairn is now ready to exit, bye bye...");
        let _ = self.done.send(true);
        Ok(result)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signal_actions_parse_and_print_as_redis_7_0() {
        // Each checked against redis-server 7.0.15 (CONFIG SET, then GET).
        for (given, shown) in [
            ("default", "default"),
            ("save", "save"),
            ("nosave", "nosave"),
            ("now", "now"),
            ("force", "force"),
            ("nosave force", "nosave force"),
            ("force nosave", "nosave force"),
            ("save now", "save now"),
            ("default force", "force"),
            ("NOW", "now"),
            ("force force", "force"),
        ] {
            let a: SignalAction = given.parse().unwrap();
            assert_eq!(a.to_string(), shown, "{given:?}");
        }
        assert_eq!("save nosave".parse::<SignalAction>(), Err(BOTH_SAVES));
        assert_eq!("".parse::<SignalAction>(), Err(NOT_ONE_OF));
        assert_eq!("later".parse::<SignalAction>(), Err(NOT_ONE_OF));
        let o: ShutdownOptions = "nosave force".parse::<SignalAction>().unwrap().into();
        assert_eq!(o, ShutdownOptions::nosave().force(true));
    }
}
