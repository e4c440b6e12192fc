//! The accept loop and the per-connection request/reply loop.
//!
//! Shutdown follows mini-redis: a `watch` flag tells every connection to
//! stop, and each connection task holds a clone of an `mpsc::Sender` whose
//! last drop (when the final task ends) wakes [`run`] to return.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::encode::{encode, encode_until};
use crate::frame::Frame;
use crate::parse::{CommandDecoder, Limits};
use crate::service::{Addr, ConnInfo, Event, Outcome, OutputLimit, Pending, Service, Session};

/// Redis' reply to a connection over `maxclients`.
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";
/// Read size, as Redis' `PROTO_IOBUF_LEN`.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers that grew past this are replaced once mostly empty, so one big
/// request or reply does not pin memory for the connection's lifetime.
const SHRINK_ABOVE: usize = 64 * 1024;
/// Replies accumulated past this are written before executing more of a
/// pipeline, bounding the output buffer.
const FLUSH_ABOVE: usize = 64 * 1024;

/// Settings of the connection server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Most connections open at once (`maxclients`); further ones get
    /// `-ERR max number of clients reached` and are closed. Default 10000;
    /// [`Service::max_clients`] overrides it while running.
    pub max_clients: usize,
    /// Request size limits, checked before allocating.
    pub limits: Limits,
    /// Most bytes buffered for one connection's unfinished request
    /// (`client-query-buffer-limit`); beyond it the connection is closed
    /// without a reply, as Redis does. Default 1 GiB.
    pub max_query_buffer: usize,
    /// After shutdown starts, how long a connection may take to write its
    /// last replies to a client that does not read. Default 5 s.
    pub shutdown_flush_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_clients: 10_000,
            limits: Limits::default(),
            max_query_buffer: 1024 * 1024 * 1024,
            shutdown_flush_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves RESP on `listener` until `shutdown` resolves.
///
/// The caller binds the listener (so port 0 works and the caller knows the
/// address). Each accepted connection gets `TCP_NODELAY`, a client id
/// counting from 1, a [`Session`] from [`Service::open`], and its own task.
/// A connection executes every complete command it has buffered, writes all
/// their replies at once (pipelining), and waits on the socket, its event
/// receiver and shutdown while idle.
///
/// When `shutdown` resolves, `run` stops accepting; each connection finishes
/// the command it is executing, writes its replies (bounded by
/// [`ServerConfig::shutdown_flush_timeout`]) and closes; idle and blocked
/// connections close at once. `run` returns when every connection task has
/// ended, and [`Session::closed`] has been called once for each session.
///
/// # Errors
///
/// None at present: accept errors (such as running out of file
/// descriptors) are logged and retried with a backoff; the `Result` leaves
/// room for fatal listener errors.
pub async fn run<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    run_listeners(vec![Listener::Tcp(listener)], service, config, shutdown).await
}

/// A bound socket [`run_listeners`] accepts connections on.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener; its connections get `TCP_NODELAY` and keepalive.
    Tcp(TcpListener),
    /// A Unix socket listener (Redis' `unixsocket`) and its path, which
    /// both ends of its connections report as their address.
    #[cfg(unix)]
    Unix(UnixListener, Arc<str>),
}

impl Listener {
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, Addr)>> {
        match self {
            Listener::Tcp(l) => l
                .poll_accept(cx)
                .map_ok(|(s, peer)| (Stream::Tcp(s), Addr::Tcp(peer))),
            #[cfg(unix)]
            Listener::Unix(l, path) => l
                .poll_accept(cx)
                .map_ok(|(s, _)| (Stream::Unix(s), Addr::Unix(Arc::clone(path)))),
        }
    }
}

/// The next connection on any of `listeners`, starting the search at
/// `start` so that a busy listener cannot starve the others.
async fn accept_any(listeners: &[Listener], start: usize) -> io::Result<(Stream, Addr)> {
    std::future::poll_fn(|cx| {
        let n = listeners.len();
        for i in 0..n {
            if let Some(l) = listeners.get((start + i) % n)
                && let Poll::Ready(r) = l.poll_accept(cx)
            {
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    })
    .await
}

/// [`run`] on several listeners at once (TCP and the Unix socket), sharing
/// the client ids, the `maxclients` count and the shutdown.
///
/// # Errors
///
/// As [`run`].
pub async fn run_listeners<S: Service>(
    listeners: Vec<Listener>,
    service: Arc<S>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let clients = Arc::new(AtomicUsize::new(0));
    let config = Arc::new(config);
    let mut next_id: u64 = 1;
    let mut backoff = Duration::from_millis(1);
    tokio::pin!(shutdown);

    loop {
        let start = usize::try_from(next_id).unwrap_or(0);
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = accept_any(&listeners, start) => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(1);
                a
            }
            Err(e) => {
                // EMFILE and friends: the pending connection stays queued,
                // so retrying at once would spin.
                warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if let Stream::Tcp(stream) = &stream {
            if let Err(e) = stream.set_nodelay(true) {
                debug!(%peer, error = %e, "set_nodelay failed");
            }
            let keepalive = service.tcp_keepalive();
            if !keepalive.is_zero()
                && let Err(e) = set_keepalive(stream, keepalive)
            {
                debug!(%peer, error = %e, "setting TCP keepalive failed");
            }
        }
        // Only this loop adds connections, so the check and the increment
        // cannot race with another admission.
        let limit = service.max_clients().unwrap_or(config.max_clients);
        let Some(permit) = Slot::take(&clients, limit) else {
            let done = done_tx.clone();
            tokio::spawn(async move {
                let _done = done;
                reject(stream).await;
            });
            continue;
        };
        let local = match &stream {
            Stream::Tcp(s) => match s.local_addr() {
                Ok(l) => Addr::Tcp(l),
                Err(e) => {
                    debug!(%peer, error = %e, "connection gone before setup");
                    continue;
                }
            },
            #[cfg(unix)]
            Stream::Unix(_) => peer.clone(),
        };
        let info = ConnInfo {
            id: next_id,
            peer: peer.clone(),
            local,
        };
        next_id += 1;
        if let Some(refusal) = service.refuse(&info) {
            drop(permit);
            let done = done_tx.clone();
            tokio::spawn(async move {
                let _done = done;
                refuse(stream, &refusal).await;
            });
            continue;
        }
        let service = Arc::clone(&service);
        let config = Arc::clone(&config);
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _done = done;
            let id = info.id;
            debug!(id, %peer, "client connected");
            let (session, events) = service.open(info);
            let mut conn = Connection::new(permit, stream, session, events, stop, config);
            if let Err(e) = conn.serve().await {
                debug!(id, error = %e, "connection ended with an error");
            }
            debug!(id, "client disconnected");
            // Dropping `conn` calls `Session::closed`.
        });
    }

    drop(listeners);
    info!("shutting down: waiting for connections to finish");
    let _ = stop_tx.send(true);
    drop(done_tx);
    // Resolves with None once every task has dropped its sender clone.
    let _ = done_rx.recv().await;
    Ok(())
}

/// Redis' `anetKeepAlive`: probes after `idle`, then every third of it,
/// three of them (where the platform lets the count be set).
fn set_keepalive(stream: &TcpStream, idle: Duration) -> io::Result<()> {
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 3).max(Duration::from_secs(1)));
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    let ka = ka.with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&ka)
}

/// Resolves when a client idle since `since` passes the idle limit, which
/// may change (or be lifted) while it waits; never without a limit.
async fn idle_expiry(limit: Option<watch::Receiver<Duration>>, since: Instant) {
    let Some(mut limit) = limit else {
        return std::future::pending().await;
    };
    loop {
        let d = *limit.borrow_and_update();
        if d.is_zero() {
            if limit.changed().await.is_err() {
                return std::future::pending().await;
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep_until((since + d).into()) => return,
            r = limit.changed() => {
                if r.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// One of the `maxclients` places, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>, limit: usize) -> Option<Slot> {
        if count.load(Ordering::Acquire) >= limit {
            return None;
        }
        count.fetch_add(1, Ordering::AcqRel);
        Some(Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection over `maxclients` and closes it.
async fn reject(stream: Stream) {
    refuse(stream, MAX_CLIENTS_REPLY).await;
}

/// An accepted connection of either kind.
enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_write(buf),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Writes `reply` to a connection that is not served, then closes it.
async fn refuse(mut stream: Stream, reply: &[u8]) {
    let write = stream.write_all(reply);
    match tokio::time::timeout(Duration::from_secs(1), write).await {
        Ok(Ok(())) => {
            let _ = stream.shutdown().await;
        }
        Ok(Err(e)) => debug!(error = %e, "could not refuse client"),
        Err(_) => debug!("timed out refusing client"),
    }
}

/// Calls [`Session::closed`] exactly once, even when a command panics.
struct SessionGuard<T: Session>(T);

impl<T: Session> Drop for SessionGuard<T> {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// Whether the connection goes on after a step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// What interrupted a write in progress.
enum FlushWake {
    Wrote(io::Result<usize>),
    Event(Option<Event>),
    /// Shutdown started (`timed_out` false) or its flush timeout passed.
    Stop {
        timed_out: bool,
    },
}

/// What woke an idle or blocked connection.
enum Wake {
    /// Idle past the limit (`timeout`).
    Idle,
    Read(io::Result<usize>),
    Event(Option<Event>),
    Stop,
    Ready(Frame),
}

struct Connection<T: Session> {
    /// The `maxclients` slot; declared first so it is released before
    /// `session` drops and calls `Session::closed`, so whoever sees
    /// `closed` can connect again.
    _permit: Slot,
    stream: Stream,
    session: SessionGuard<T>,
    /// `None` once every sender is gone; then it is no longer polled.
    events: Option<mpsc::UnboundedReceiver<Event>>,
    stop: watch::Receiver<bool>,
    config: Arc<ServerConfig>,
    decoder: CommandDecoder,
    input: BytesMut,
    output: BytesMut,
    /// An `Event::Kill` arrived; close after the current command.
    killed: bool,
    /// A command to hand to the session again (see `Session::take_retry`).
    retry: Option<Vec<Bytes>>,
    /// Since when the client has sent nothing (Redis' `lastinteraction`),
    /// valid while `idle_since_set`.
    idle_since: Instant,
    idle_since_set: bool,
    /// Since when the unsent output has been at or over the soft limit
    /// (Redis' `obuf_soft_limit_reached_time`).
    soft_since: Option<Instant>,
}

impl<T: Session> Connection<T> {
    fn new(
        permit: Slot,
        stream: Stream,
        session: T,
        events: mpsc::UnboundedReceiver<Event>,
        stop: watch::Receiver<bool>,
        config: Arc<ServerConfig>,
    ) -> Self {
        Connection {
            _permit: permit,
            stream,
            session: SessionGuard(session),
            events: Some(events),
            stop,
            config,
            decoder: CommandDecoder::new(),
            input: BytesMut::with_capacity(READ_CHUNK),
            output: BytesMut::with_capacity(READ_CHUNK),
            killed: false,
            retry: None,
            idle_since: Instant::now(),
            idle_since_set: false,
            soft_since: None,
        }
    }

    async fn serve(&mut self) -> io::Result<()> {
        loop {
            let flow = self.execute_buffered().await?;
            self.flush().await?;
            if flow == Flow::Close || self.killed || *self.stop.borrow() {
                let _ = self.stream.shutdown().await;
                return Ok(());
            }
            self.shrink_input();
            self.reserve_input();
            if !self.idle_since_set {
                self.idle_since = Instant::now();
                self.idle_since_set = true;
            }
            let limit = if self.session.0.idle_exempt() {
                None
            } else {
                self.session.0.idle_limit()
            };
            let wake = tokio::select! {
                r = self.stream.read_buf(&mut self.input) => Wake::Read(r),
                ev = next_event(&mut self.events) => Wake::Event(ev),
                _ = self.stop.wait_for(|s| *s) => Wake::Stop,
                () = idle_expiry(limit, self.idle_since) => Wake::Idle,
            };
            match wake {
                Wake::Read(r) => {
                    self.idle_since_set = false;
                    if self.after_read(r?) == Flow::Close {
                        return Ok(());
                    }
                }
                // A push written counts as interaction, as in Redis.
                Wake::Event(ev) => {
                    self.idle_since_set = false;
                    self.on_event(ev);
                }
                Wake::Idle => {
                    debug!("closing idle client (timeout)");
                    let _ = self.stream.shutdown().await;
                    return Ok(());
                }
                Wake::Stop | Wake::Ready(_) => return Ok(()),
            }
        }
    }

    /// Executes every complete command in the input buffer, encoding the
    /// replies into the output buffer.
    async fn execute_buffered(&mut self) -> io::Result<Flow> {
        loop {
            // A killed client runs nothing more, not even input that was
            // already buffered when the kill arrived.
            if self.killed || *self.stop.borrow() {
                return Ok(Flow::Close);
            }
            self.decoder
                .set_authenticated(self.session.0.authenticated());
            let decoded = match self.retry.take() {
                Some(args) => Ok(Some(args)),
                None => {
                    let mut limits = self.config.limits;
                    if let Some(max) = self.session.0.max_bulk_len() {
                        limits.max_bulk_len = max;
                    }
                    self.decoder.decode(&mut self.input, &limits)
                }
            };
            let args = match decoded {
                Ok(Some(args)) => args,
                Ok(None) => return Ok(Flow::Continue),
                Err(e) => {
                    debug!(error = %e, "protocol error; closing");
                    let proto = self.session.0.protocol();
                    encode(&e.to_frame(), proto, &mut self.output);
                    return Ok(Flow::Close);
                }
            };
            let outcome = self.session.0.call(args);
            let quiet = self.session.0.reply_suppressed();
            // Pushes caused by the command itself (a PUBLISH to a channel
            // this client subscribes to, SUBSCRIBE's confirmations) precede
            // its reply, as in Redis.
            self.drain_events();
            match outcome {
                Outcome::Reply(f) => {
                    if !quiet {
                        self.encode_reply(&f);
                    }
                    self.write_after_reply();
                }
                Outcome::NoReply => self.write_after_reply(),
                Outcome::Close(f) => {
                    if !quiet {
                        self.encode_reply(&f);
                    }
                    self.write_after_reply();
                    return Ok(Flow::Close);
                }
                Outcome::Block(fut) => {
                    // A command that waits to be run again: its future's
                    // value is no reply.
                    let again = self.session.0.take_retry();
                    let quiet = quiet || again.is_some();
                    if self.block(fut, quiet).await? == Flow::Close {
                        return Ok(Flow::Close);
                    }
                    self.write_after_reply();
                    self.retry = again;
                }
            }
            if self.output.len() > FLUSH_ABOVE {
                self.flush().await?;
            }
        }
    }

    /// Waits for a blocked command's reply while still reading (but not
    /// executing) input, so a disconnect is noticed and cancels the command.
    /// `quiet`: the reply is dropped when it comes (`CLIENT REPLY OFF`).
    async fn block(&mut self, mut fut: Pending, quiet: bool) -> io::Result<Flow> {
        self.flush().await?;
        loop {
            if self.killed {
                // Dropping `fut` withdraws the blocked command.
                return Ok(Flow::Close);
            }
            self.reserve_input();
            let wake = tokio::select! {
                f = &mut fut => Wake::Ready(f),
                r = self.stream.read_buf(&mut self.input) => Wake::Read(r),
                ev = next_event(&mut self.events) => Wake::Event(ev),
                _ = self.stop.wait_for(|s| *s) => Wake::Stop,
            };
            match wake {
                Wake::Ready(f) => {
                    if !quiet {
                        self.encode_reply(&f);
                    }
                    return Ok(Flow::Continue);
                }
                Wake::Read(r) => {
                    if self.after_read(r?) == Flow::Close {
                        return Ok(Flow::Close);
                    }
                }
                Wake::Event(ev) => {
                    self.on_event(ev);
                    self.flush().await?;
                }
                Wake::Stop | Wake::Idle => return Ok(Flow::Close),
            }
        }
    }

    fn after_read(&mut self, n: usize) -> Flow {
        if n == 0 {
            return Flow::Close;
        }
        self.session.0.traffic(n, 0);
        self.session.0.buffers(self.input.len(), self.output.len());
        let max = self
            .session
            .0
            .query_buffer_limit()
            .unwrap_or(self.config.max_query_buffer);
        if self.input.len() > max {
            let head = &self.input[..self.input.len().min(64)];
            warn!(
                "Closing client that reached max query buffer length: {} (qbuf initial bytes: {:?})",
                self.session.0.describe(),
                String::from_utf8_lossy(head)
            );
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Encodes a reply, stopping as soon as the unsent output reaches the
    /// hard limit of the client's class: the client is then closed, so a
    /// reply of millions of elements never sits whole in the buffer.
    fn encode_reply(&mut self, f: &Frame) {
        let proto = self.session.0.protocol();
        let limit = self.session.0.output_limit();
        if limit.hard == 0 {
            encode(f, proto, &mut self.output);
        } else {
            encode_until(f, proto, &mut self.output, &mut |out| {
                out.len() >= limit.hard
            });
        }
        self.check_output_against(limit);
    }

    /// Redis' `checkClientOutputBufferLimits` and
    /// `closeClientOnOutputBufferLimitReached`, asked whenever output is
    /// added: over the hard limit, or over the soft one for longer than its
    /// seconds, the client is closed without writing the rest.
    fn check_output(&mut self) {
        let limit = self.session.0.output_limit();
        self.check_output_against(limit);
    }

    fn check_output_against(&mut self, limit: OutputLimit) {
        if self.killed {
            return;
        }
        let used = self.output.len();
        let hard = limit.hard > 0 && used >= limit.hard;
        let soft = if limit.soft > 0 && used >= limit.soft {
            match self.soft_since {
                None => {
                    self.soft_since = Some(Instant::now());
                    false
                }
                Some(t) => t.elapsed() > Duration::from_secs(limit.soft_seconds),
            }
        } else {
            self.soft_since = None;
            false
        };
        if hard || soft {
            warn!(
                "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                self.session.0.describe()
            );
            self.killed = true;
            self.output.clear();
        }
        self.session.0.buffers(self.input.len(), self.output.len());
    }

    fn on_event(&mut self, ev: Option<Event>) {
        match ev {
            Some(Event::Push(f)) => {
                let proto = self.session.0.protocol();
                encode(&f, proto, &mut self.output);
                self.check_output();
            }
            Some(Event::Kill) => self.killed = true,
            None => self.events = None,
        }
    }

    /// Pushes the session wants written right after a reply.
    fn write_after_reply(&mut self) {
        let proto = self.session.0.protocol();
        let pushes = self.session.0.after_reply();
        if pushes.is_empty() {
            return;
        }
        for f in pushes {
            encode(&f, proto, &mut self.output);
        }
        self.check_output();
    }

    fn drain_events(&mut self) {
        while let Some(rx) = self.events.as_mut() {
            match rx.try_recv() {
                Ok(ev) => self.on_event(Some(ev)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.on_event(None);
                }
            }
        }
    }

    /// Writes the output buffer.
    ///
    /// Events are still taken while writing, so a client that does not read
    /// cannot make the connection miss a kill: pushes join the output
    /// behind what is being written, and a kill drops the unwritten rest
    /// (the caller sees `killed` and closes). Once shutdown has started, it
    /// gives up after the flush timeout so such a client cannot hold up
    /// shutdown either.
    async fn flush(&mut self) -> io::Result<()> {
        // What was written is dropped from the front at once, so the
        // buffer's length is always the unsent output the limits measure.
        let mut written = 0;
        // Most writes complete at once: no need to wait on anything else.
        while !self.output.is_empty() && !self.killed {
            match self.stream.try_write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.output.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let mut deadline: Option<tokio::time::Instant> = None;
        while !self.output.is_empty() && !self.killed {
            let stop = &mut self.stop;
            // Until shutdown starts, wait for it (false); then for the
            // deadline (true). A dropped sender counts as shutdown.
            let give_up = async move {
                match deadline {
                    Some(d) => {
                        tokio::time::sleep_until(d).await;
                        true
                    }
                    None => {
                        let _ = stop.wait_for(|s| *s).await;
                        false
                    }
                }
            };
            // `write` (not `write_all`) so that progress survives another
            // branch winning: a write either happened, and is counted, or
            // did not happen.
            let wake = tokio::select! {
                r = self.stream.write(&self.output) => FlushWake::Wrote(r),
                ev = next_event(&mut self.events) => FlushWake::Event(ev),
                timed_out = give_up => FlushWake::Stop { timed_out },
            };
            match wake {
                FlushWake::Wrote(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                FlushWake::Wrote(Ok(n)) => {
                    written += n;
                    self.output.advance(n);
                }
                FlushWake::Wrote(Err(e)) => return Err(e),
                FlushWake::Event(ev) => self.on_event(ev),
                FlushWake::Stop { timed_out: false } => {
                    deadline =
                        Some(tokio::time::Instant::now() + self.config.shutdown_flush_timeout);
                }
                FlushWake::Stop { timed_out: true } => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client did not read its replies during shutdown",
                    ));
                }
            }
        }
        if written > 0 {
            self.session.0.traffic(0, written);
        }
        // A killed client's unsent rest is dropped, as Redis frees it.
        self.output.clear();
        self.soft_since = None;
        if written > 0 {
            self.session.0.buffers(self.input.len(), 0);
        }
        if self.output.capacity() > SHRINK_ABOVE {
            self.output = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(())
    }

    fn reserve_input(&mut self) {
        let want = self
            .decoder
            .pending_hint(&self.input)
            .map_or(READ_CHUNK, |total| total.saturating_sub(self.input.len()))
            .clamp(READ_CHUNK, 1024 * 1024);
        self.input.reserve(want);
    }

    fn shrink_input(&mut self) {
        shrink(&mut self.input);
    }
}

/// Moves a small remainder out of a buffer grown by an earlier big request,
/// so the big allocation is freed (or left to the argument slices that
/// still use it). Offsets saved by the decoder stay valid: the remaining
/// bytes keep their positions from the start of the buffer.
fn shrink(buf: &mut BytesMut) {
    if buf.capacity() > SHRINK_ABOVE && buf.len() < READ_CHUNK {
        let mut fresh = BytesMut::with_capacity(READ_CHUNK);
        fresh.extend_from_slice(buf);
        *buf = fresh;
    }
}

/// The next event, or never when the receiver is gone.
async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<Event>>) -> Option<Event> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn big_buffers_shrink_once_drained() {
        // A buffer that kept its big capacity is replaced, keeping content.
        let mut big = BytesMut::with_capacity(8 * 1024 * 1024);
        big.extend_from_slice(b"*2\r\n$3\r\nGET");
        shrink(&mut big);
        assert_eq!(big.capacity(), READ_CHUNK);
        assert_eq!(&big[..], b"*2\r\n$3\r\nGET");
        // A buffer still holding a big partial request is left alone.
        let mut busy = BytesMut::with_capacity(8 * 1024 * 1024);
        busy.extend_from_slice(&vec![b'y'; READ_CHUNK * 2]);
        shrink(&mut busy);
        assert!(busy.capacity() >= 8 * 1024 * 1024);
    }
}
