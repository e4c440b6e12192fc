//! One client's session: its state and the dispatch of its commands.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Protocol};
use tokio::sync::mpsc;

use crate::cmd::{Command, Ctx, Flags, Handler, err};
use crate::engine::Held;
use crate::keyspace::Keyspace;

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
        }
    }
}

/// A client session: implements [`cairn_resp::Session`].
pub struct Session {
    ks: Keyspace,
    state: SessionState,
    closed: bool,
}

impl Session {
    pub(crate) fn new(ks: Keyspace, state: SessionState) -> Session {
        Session {
            ks,
            state,
            closed: false,
        }
    }

    /// The session's state.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Executes a command given as strings and returns its reply (blocking
    /// outcomes reply `Null`); for tests and embedding.
    pub fn command<S: AsRef<[u8]>>(&mut self, args: &[S]) -> Frame {
        let args = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_ref()))
            .collect();
        match self.execute(args) {
            Outcome::Reply(f) | Outcome::Close(f) => f,
            Outcome::Block(_) => Frame::Null,
        }
    }

    /// Executes one command: lookup, arity, authentication, then the
    /// handler under the keyspace gate.
    pub fn execute(&mut self, args: Vec<Bytes>) -> Outcome {
        let ks = &self.ks;
        let Some(name) = args.first() else {
            return Outcome::Reply(err("ERR empty command"));
        };
        let Some(cmd) = ks.inner.table.lookup(name) else {
            return Outcome::Reply(unknown_command(&args));
        };
        if !cmd.spec.arity_ok(args.len()) {
            return Outcome::Reply(Frame::error(format!(
                "ERR wrong number of arguments for '{}' command",
                cmd.spec.name
            )));
        }
        if !self.state.authenticated && !cmd.spec.flags.contains(Flags::NO_AUTH) {
            return Outcome::Reply(err("NOAUTH Authentication required."));
        }
        run(ks, &mut self.state, cmd, &args, true)
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
    let exclusive = cmd.spec.flags.contains(Flags::EXCLUSIVE);
    // Held for the whole command so a view (which takes it for write) falls
    // between two commands, never inside one.
    let want = if exclusive { Held::Write } else { Held::Read };
    let _gate = if gate {
        match engine.enter(want) {
            Some(g) => Some(g),
            // Only reachable by executing an EXCLUSIVE command from inside
            // another command's handler.
            None => {
                return Outcome::Reply(err("ERR this command cannot run inside another command"));
            }
        }
    } else {
        None
    };
    let now = engine.clock.now_ms();
    let mut ctx = Ctx {
        ks,
        session: state,
        now,
        command: cmd.spec.name,
        special: None,
    };
    let reply = match &cmd.handler {
        Handler::Builtin(f) => f(&mut ctx, args),
        Handler::Ext(ext) => ext.call(&mut ctx, args),
    };
    if gate {
        // Clients blocked on keys this command filled are served before
        // its reply goes out, still under the gate (as Redis does after
        // each command; after EXEC as a whole, never inside it).
        ks.serve_blocked();
    }
    match ctx.special.take() {
        Some(o) => o,
        None => Outcome::Reply(reply),
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
        self.execute(args)
    }

    fn protocol(&self) -> Protocol {
        self.state.protocol
    }

    fn closed(&mut self) {
        if !self.closed {
            self.closed = true;
            self.ks.inner.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        cairn_resp::Session::closed(self);
    }
}
