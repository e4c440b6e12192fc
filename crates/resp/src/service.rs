//! What the connection server asks of the program behind it.
//!
//! The server owns sockets, buffers and framing; a [`Service`] opens one
//! [`Session`] per connection and the session executes commands. Replies are
//! [`Frame`]s so that commands can be tested without a socket.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::frame::{Frame, Protocol};

/// A command's reply that is not ready yet (a blocking pop, `DEBUG SLEEP`).
///
/// The future owns everything it needs (`'static`); dropping it (the client
/// disconnected, the server is shutting down) must undo any registration it
/// made, so it is cancel-safe by construction.
pub type Pending = Pin<Box<dyn Future<Output = Frame> + Send + 'static>>;

/// What a session's command produced.
pub enum Outcome {
    /// Send this reply and carry on with the next command.
    Reply(Frame),
    /// Send nothing and carry on: the command's answer went out as pushes
    /// through the connection's [`Event`] channel (`SUBSCRIBE` confirms
    /// each channel with a push, queued under the lock that publishers
    /// take, so no message can overtake a confirmation).
    NoReply,
    /// Wait for this future, then send its reply. Later pipelined commands of
    /// the same connection wait too, as in Redis.
    Block(Pending),
    /// Send this reply, flush, and close the connection (`QUIT`, `CLIENT KILL` of self).
    Close(Frame),
}

/// Something delivered to a connection outside the request/reply cycle.
#[derive(Debug)]
pub enum Event {
    /// A push frame (a pub/sub message); written as soon as the connection is
    /// between commands, in the order sent, and never suppressed by
    /// [`Session::reply_suppressed`].
    Push(Frame),
    /// Close the connection once the command in progress has finished
    /// (`CLIENT KILL`), without writing what it has not written yet: Redis
    /// frees a killed client at once, so a client that stopped reading
    /// cannot keep its connection open.
    Kill,
}

/// Facts about one accepted connection, handed to [`Service::open`].
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// A server-unique, increasing client id (`CLIENT ID`).
    pub id: u64,
    /// The client's address.
    pub peer: Addr,
    /// The local address the client connected to.
    pub local: Addr,
}

impl ConnInfo {
    /// Whether the connection came through the Unix socket (Redis'
    /// `CLIENT_UNIX_SOCKET`, `flags=U` in `CLIENT LIST`).
    pub fn is_unix(&self) -> bool {
        matches!(self.peer, Addr::Unix(_))
    }

    /// Redis' `islocalClient`: a Unix socket client, or a TCP peer whose
    /// address is exactly `127.0.0.1` or `::1` (what `enable-debug-command
    /// local` and `enable-protected-configs local` allow).
    pub fn is_local(&self) -> bool {
        match &self.peer {
            Addr::Unix(_) => true,
            Addr::Tcp(a) => {
                let ip = a.ip().to_canonical();
                ip == std::net::IpAddr::from([127, 0, 0, 1])
                    || ip == std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            }
        }
    }
}

/// Where a connection comes from or goes to: a TCP address, or the path of
/// the Unix socket. Displayed as Redis shows it (`CLIENT LIST`'s `addr=`,
/// the slow log): `ip:port`, or `path:0` for the Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// A TCP peer or local address.
    Tcp(SocketAddr),
    /// The Unix socket's path (the same for both ends, as Redis reports).
    Unix(Arc<str>),
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Tcp(a)
    }
}

/// Parses a TCP address (`127.0.0.1:6379`), for tests and tools.
impl std::str::FromStr for Addr {
    type Err = std::net::AddrParseError;

    fn from_str(s: &str) -> Result<Addr, Self::Err> {
        s.parse().map(Addr::Tcp)
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "{a}"),
            Addr::Unix(path) => write!(f, "{path}:0"),
        }
    }
}

/// The program behind the server: opens one [`Session`] per connection.
pub trait Service: Send + Sync + 'static {
    /// The per-connection state.
    type Session: Session;

    /// Opens a session for a newly accepted connection.
    ///
    /// The returned receiver, if any, carries [`Event`]s for this connection
    /// (pub/sub pushes, kill requests); the server selects on it while idle.
    fn open(&self, conn: ConnInfo) -> (Self::Session, mpsc::UnboundedReceiver<Event>);

    /// Asked once per accepted connection before [`open`](Service::open):
    /// `Some(reply)` refuses it, and the server writes `reply` (raw RESP)
    /// and closes the connection without opening a session (Redis' protected
    /// mode). Default: every connection is admitted.
    fn refuse(&self, _conn: &ConnInfo) -> Option<Bytes> {
        None
    }

    /// Redis' `maxclients` in effect now (it can change while running):
    /// a connection accepted while this many are open is refused. `None`
    /// (the default): the server's configured limit.
    fn max_clients(&self) -> Option<usize> {
        None
    }

    /// Redis' `tcp-keepalive` for a connection accepted now: TCP keepalive
    /// probes after this long idle (`Duration::ZERO`: off). Default off.
    fn tcp_keepalive(&self) -> Duration {
        Duration::ZERO
    }
}

/// One connection's state: selected database, protocol, MULTI queue, ...
pub trait Session: Send + 'static {
    /// Executes one command. `args[0]` is the command name as the client sent it.
    fn call(&mut self, args: Vec<Bytes>) -> Outcome;

    /// After [`call`](Session::call) answered [`Outcome::Block`]: `Some`
    /// means the command did not run and must be handed to `call` again,
    /// unchanged, once that future completes (its value is not a reply).
    /// The keyspace uses it to let a command wait for a long exclusive
    /// operation (a busy script) without holding a worker thread.
    fn take_retry(&mut self) -> Option<Vec<Bytes>> {
        None
    }

    /// The protocol replies are encoded in; may change after `HELLO`.
    fn protocol(&self) -> Protocol;

    /// Whether the client may send large requests: `false` while a password
    /// is required and `AUTH` has not succeeded. Until then the server holds
    /// requests to Redis' limits for such clients (10 arguments of at most
    /// 16384 bytes) and closes the connection beyond them. Default `true`.
    fn authenticated(&self) -> bool {
        true
    }

    /// Whether the reply of the command [`call`](Session::call) just
    /// executed must be dropped instead of written (Redis' `CLIENT REPLY
    /// OFF` and `SKIP`). Asked once after each `call`; applies to the frame
    /// of [`Outcome::Reply`], to that of [`Outcome::Close`] (the connection
    /// still closes) and to the eventual reply of [`Outcome::Block`].
    /// [`Event::Push`]es are written regardless, as in Redis 7.0. Default
    /// `false`.
    fn reply_suppressed(&self) -> bool {
        false
    }

    /// Bytes read from (`input`) and written to (`output`) the client's
    /// socket since the last call, for statistics (Redis'
    /// `total_net_input_bytes`). Default: ignored.
    fn traffic(&mut self, _input: usize, _output: usize) {}

    /// The idle limit of this connection (Redis' `timeout`): a receiver
    /// whose value is the limit in effect (`Duration::ZERO`: none), so a
    /// change applies to connections already idle. `None` (the default):
    /// never closed for idleness.
    fn idle_limit(&self) -> Option<watch::Receiver<Duration>> {
        None
    }

    /// Whether the idle limit spares this connection now (Redis spares
    /// subscribers). Asked each time the connection goes idle. Default
    /// `false`.
    fn idle_exempt(&self) -> bool {
        false
    }

    /// Called once when the connection ends, whatever the reason.
    fn closed(&mut self) {}

    /// The `client-query-buffer-limit` in effect now: a connection whose
    /// unparsed input grows past it is closed without a reply. `None` (the
    /// default): [`ServerConfig::max_query_buffer`](crate::ServerConfig).
    fn query_buffer_limit(&self) -> Option<usize> {
        None
    }

    /// The `proto-max-bulk-len` in effect now: a request bulk string
    /// declared longer gets `-ERR Protocol error: invalid bulk length` and
    /// the connection closes. `None` (the default): the server's
    /// [`Limits`](crate::Limits).
    fn max_bulk_len(&self) -> Option<usize> {
        None
    }

    /// The `client-output-buffer-limit` of this client's class now (normal
    /// or pub/sub, which changes with its subscriptions). Default: none.
    fn output_limit(&self) -> OutputLimit {
        OutputLimit::default()
    }

    /// The client as `CLIENT LIST` describes it, for log lines about it
    /// (closed over a limit). Default: empty.
    fn describe(&self) -> String {
        String::new()
    }

    /// The connection's buffers after a read or a write, for `CLIENT
    /// LIST`'s `qbuf` (unparsed input) and `omem`/`obl` (unsent output).
    /// Default: ignored.
    fn buffers(&mut self, _qbuf: usize, _omem: usize) {}

    /// Pushes to write right after the reply of the command just executed
    /// (Redis 7.0 sends a client the invalidations its own command caused
    /// after that command's reply). Default: none.
    fn after_reply(&mut self) -> Vec<Frame> {
        Vec::new()
    }
}

/// One class of Redis' `client-output-buffer-limit`: a client whose unsent
/// output reaches `hard` bytes, or stays at or above `soft` bytes for
/// longer than `soft_seconds`, is closed at once, what it was not sent
/// dropped. Zero disables a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    /// The hard limit in bytes (0: none).
    pub hard: usize,
    /// The soft limit in bytes (0: none).
    pub soft: usize,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Whether neither limit is set.
    pub fn is_none(&self) -> bool {
        self.hard == 0 && self.soft == 0
    }
}
