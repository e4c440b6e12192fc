//! The connection server over real TCP, with a small test service.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Protocol, ServerConfig, Service, Session, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Safety net so a broken server fails a test instead of hanging it; never
/// used to wait for something to happen.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Shared {
    /// Event senders by client id.
    clients: Mutex<HashMap<u64, mpsc::UnboundedSender<Event>>>,
    /// Gates that `WAIT name` blocks on.
    gates: Mutex<HashMap<Bytes, Arc<Notify>>>,
    /// Lets the test hold `SLOW` inside `call`.
    slow_release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// Things the service reports, in order, to the test.
#[derive(Debug, PartialEq)]
enum Note {
    Blocked(u64),
    Cancelled(u64),
    SlowStarted(u64),
    BigStarted(u64),
    Closed(u64),
}

struct TestService {
    shared: Arc<Shared>,
    notes: mpsc::UnboundedSender<Note>,
}

struct TestSession {
    id: u64,
    proto: Protocol,
    closed_calls: u32,
    shared: Arc<Shared>,
    notes: mpsc::UnboundedSender<Note>,
    own_events: mpsc::UnboundedSender<Event>,
    /// `QUIET 1`: replies are suppressed from the next command on.
    quiet: bool,
}

impl Service for TestService {
    type Session = TestSession;

    fn open(&self, conn: ConnInfo) -> (TestSession, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared
            .clients
            .lock()
            .unwrap()
            .insert(conn.id, tx.clone());
        let s = TestSession {
            id: conn.id,
            proto: Protocol::Resp2,
            closed_calls: 0,
            shared: Arc::clone(&self.shared),
            notes: self.notes.clone(),
            own_events: tx,
            quiet: false,
        };
        (s, rx)
    }
}

/// Reports when a blocked command's future is dropped unfinished.
struct CancelGuard {
    id: u64,
    done: bool,
    notes: mpsc::UnboundedSender<Note>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.notes.send(Note::Cancelled(self.id));
        }
    }
}

impl Session for TestSession {
    fn call(&mut self, args: Vec<Bytes>) -> Outcome {
        let name = args[0].to_ascii_uppercase();
        match (&name[..], args.len()) {
            (b"PING", 1) => Outcome::Reply(Frame::simple("PONG")),
            (b"ECHO", 2) => Outcome::Reply(Frame::Bulk(args[1].clone())),
            (b"ID", 1) => Outcome::Reply(Frame::Integer(self.id as i64)),
            (b"HELLO", 2) => {
                self.proto = if &args[1][..] == b"3" {
                    Protocol::Resp3
                } else {
                    Protocol::Resp2
                };
                Outcome::Reply(Frame::Map(vec![(
                    Frame::bulk("proto"),
                    Frame::Integer(if self.proto == Protocol::Resp3 { 3 } else { 2 }),
                )]))
            }
            (b"QUIT", 1) => Outcome::Close(Frame::ok()),
            (b"QUIET", 2) => {
                self.quiet = &args[1][..] == b"1";
                Outcome::Reply(Frame::ok())
            }
            (b"NOREPLY", 1) => {
                let _ = self.own_events.send(Event::Push(Frame::Push(vec![
                    Frame::bulk("answered"),
                    Frame::bulk("by push"),
                ])));
                Outcome::NoReply
            }
            (b"PUSHME", 1) => {
                let _ = self.own_events.send(Event::Push(Frame::Push(vec![
                    Frame::bulk("message"),
                    Frame::bulk("self"),
                ])));
                Outcome::Reply(Frame::Integer(1))
            }
            (b"WAIT", 2) => {
                let gate = Arc::clone(
                    self.shared
                        .gates
                        .lock()
                        .unwrap()
                        .entry(args[1].clone())
                        .or_default(),
                );
                let guard = CancelGuard {
                    id: self.id,
                    done: false,
                    notes: self.notes.clone(),
                };
                let _ = self.notes.send(Note::Blocked(self.id));
                Outcome::Block(Box::pin(async move {
                    // Bind the whole guard: edition 2024 would otherwise
                    // capture only `guard.done` and drop the guard now.
                    let mut guard = guard;
                    gate.notified().await;
                    guard.done = true;
                    Frame::bulk("woke")
                }))
            }
            (b"BIG", 1) => {
                let _ = self.notes.send(Note::BigStarted(self.id));
                Outcome::Reply(Frame::Bulk(Bytes::from(vec![b'b'; 64 << 20])))
            }
            (b"SLOW", 1) => {
                let release = self.shared.slow_release.lock().unwrap().take();
                let _ = self.notes.send(Note::SlowStarted(self.id));
                if let Some(r) = release {
                    let _ = r.recv();
                }
                Outcome::Reply(Frame::bulk("slow done"))
            }
            _ => Outcome::Reply(Frame::error("ERR unknown command")),
        }
    }

    fn protocol(&self) -> Protocol {
        self.proto
    }

    fn reply_suppressed(&self) -> bool {
        self.quiet
    }

    fn closed(&mut self) {
        self.closed_calls += 1;
        assert_eq!(self.closed_calls, 1, "closed() called twice");
        let _ = self.notes.send(Note::Closed(self.id));
    }
}

struct Harness {
    addr: SocketAddr,
    shared: Arc<Shared>,
    notes: mpsc::UnboundedReceiver<Note>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start(config: ServerConfig) -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let service = Arc::new(TestService {
        shared: Arc::clone(&shared),
        notes: notes_tx,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, service, config, async {
        let _ = stopped.await;
    }));
    Harness {
        addr,
        shared,
        notes,
        stop: Some(stop),
        server,
    }
}

impl Harness {
    async fn note(&mut self) -> Note {
        tokio::time::timeout(LIMIT, self.notes.recv())
            .await
            .unwrap()
            .unwrap()
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    fn events(&self, id: u64) -> mpsc::UnboundedSender<Event> {
        self.shared.clients.lock().unwrap()[&id].clone()
    }

    async fn shutdown(mut self) -> mpsc::UnboundedReceiver<Note> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(LIMIT, self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.notes
    }
}

async fn expect(s: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0; want.len()];
    tokio::time::timeout(LIMIT, s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

async fn expect_eof(s: &mut TcpStream) {
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(LIMIT, s.read(&mut b)).await.unwrap();
    // A reset is also an acceptable way for the server to close.
    if let Ok(n) = n {
        assert_eq!(
            n,
            0,
            "expected EOF, got {:?}",
            String::from_utf8_lossy(&b[..n])
        );
    }
}

async fn client_id(s: &mut TcpStream) -> u64 {
    s.write_all(b"ID\r\n").await.unwrap();
    let mut line = Vec::new();
    loop {
        let b = tokio::time::timeout(LIMIT, s.read_u8())
            .await
            .unwrap()
            .unwrap();
        line.push(b);
        if line.ends_with(b"\r\n") {
            break;
        }
    }
    std::str::from_utf8(&line[1..line.len() - 2])
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let h = start(ServerConfig::default()).await;
    let mut c = h.connect().await;
    let mut batch = Vec::new();
    for i in 0..500 {
        batch.extend_from_slice(
            format!(
                "*2\r\n$4\r\nECHO\r\n${}\r\n{i}\r\nPING\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
    }
    c.write_all(&batch).await.unwrap();
    let mut want = Vec::new();
    for i in 0..500 {
        want.extend_from_slice(format!("${}\r\n{i}\r\n+PONG\r\n", i.to_string().len()).as_bytes());
    }
    expect(&mut c, &want).await;
    // A command split over several writes.
    c.write_all(b"*2\r\n$4\r\nEC").await.unwrap();
    c.write_all(b"HO\r\n$5\r\nhel").await.unwrap();
    c.write_all(b"lo\r\n").await.unwrap();
    expect(&mut c, b"$5\r\nhello\r\n").await;
    // HELLO 3 answers in RESP3 already.
    c.write_all(b"HELLO 3\r\nQUIT\r\nPING\r\n").await.unwrap();
    expect(&mut c, b"%1\r\n$5\r\nproto\r\n:3\r\n+OK\r\n").await;
    expect_eof(&mut c).await;
    h.shutdown().await;
}

#[tokio::test]
async fn client_ids_count_from_one() {
    let h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    assert_eq!(client_id(&mut a).await, 1);
    let mut b = h.connect().await;
    assert_eq!(client_id(&mut b).await, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn blocked_command_waits_and_later_commands_follow() {
    let mut h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    let mut b = h.connect().await;
    a.write_all(b"WAIT g\r\nPING\r\n").await.unwrap();
    assert!(matches!(h.note().await, Note::Blocked(_)));
    // Another client is served while `a` is blocked.
    b.write_all(b"PING\r\n").await.unwrap();
    expect(&mut b, b"+PONG\r\n").await;
    let gate = h.shared.gates.lock().unwrap()[&Bytes::from("g")].clone();
    gate.notify_one();
    expect(&mut a, b"$4\r\nwoke\r\n+PONG\r\n").await;
    h.shutdown().await;
}

/// `Outcome::NoReply` writes nothing but the pushes; `reply_suppressed`
/// drops replies (of plain, blocked and closing commands) but not pushes.
#[tokio::test]
async fn suppressed_and_absent_replies_write_only_pushes() {
    let mut h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    a.write_all(b"NOREPLY\r\nPING\r\n").await.unwrap();
    expect(
        &mut a,
        b"*2\r\n$8\r\nanswered\r\n$7\r\nby push\r\n+PONG\r\n",
    )
    .await;
    a.write_all(b"QUIET 1\r\nPING\r\nPUSHME\r\nNOREPLY\r\nWAIT q\r\n")
        .await
        .unwrap();
    assert!(matches!(h.note().await, Note::Blocked(_)));
    let gate = h.shared.gates.lock().unwrap()[&Bytes::from("q")].clone();
    gate.notify_one();
    a.write_all(b"QUIET 0\r\nQUIET 1\r\nQUIT\r\n")
        .await
        .unwrap();
    // The pushes of PUSHME and NOREPLY, QUIET 0's +OK, then the end of the
    // stream: the replies of PING, PUSHME, WAIT and QUIT were dropped.
    expect(
        &mut a,
        b"*2\r\n$7\r\nmessage\r\n$4\r\nself\r\n*2\r\n$8\r\nanswered\r\n$7\r\nby push\r\n+OK\r\n",
    )
    .await;
    expect_eof(&mut a).await;
    h.shutdown().await;
}

#[tokio::test]
async fn disconnect_while_blocked_cancels_the_command() {
    let mut h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    let id = client_id(&mut a).await;
    a.write_all(b"WAIT never\r\n").await.unwrap();
    assert_eq!(h.note().await, Note::Blocked(id));
    drop(a);
    assert_eq!(h.note().await, Note::Cancelled(id));
    assert_eq!(h.note().await, Note::Closed(id));
    h.shutdown().await;
}

#[tokio::test]
async fn events_are_pushed_in_the_session_protocol() {
    let mut h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    let id = client_id(&mut a).await;
    let tx = h.events(id);
    let msg = Frame::Push(vec![
        Frame::bulk("message"),
        Frame::bulk("ch"),
        Frame::bulk("hi"),
    ]);
    tx.send(Event::Push(msg.clone())).unwrap();
    expect(&mut a, b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n").await;
    a.write_all(b"HELLO 3\r\n").await.unwrap();
    expect(&mut a, b"%1\r\n$5\r\nproto\r\n:3\r\n").await;
    tx.send(Event::Push(msg)).unwrap();
    expect(&mut a, b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n").await;
    // A push caused by the command itself comes before its reply.
    a.write_all(b"PUSHME\r\n").await.unwrap();
    expect(&mut a, b">2\r\n$7\r\nmessage\r\n$4\r\nself\r\n:1\r\n").await;
    // Pushes reach a blocked client too.
    a.write_all(b"WAIT x\r\n").await.unwrap();
    assert_eq!(h.note().await, Note::Blocked(id));
    tx.send(Event::Push(Frame::Push(vec![Frame::bulk("b")])))
        .unwrap();
    expect(&mut a, b">1\r\n$1\r\nb\r\n").await;
    // Kill closes a blocked client and withdraws its command.
    tx.send(Event::Kill).unwrap();
    expect_eof(&mut a).await;
    assert_eq!(h.note().await, Note::Cancelled(id));
    assert_eq!(h.note().await, Note::Closed(id));
    // Kill closes an idle client.
    let mut b = h.connect().await;
    let id_b = client_id(&mut b).await;
    h.events(id_b).send(Event::Kill).unwrap();
    expect_eof(&mut b).await;
    assert_eq!(h.note().await, Note::Closed(id_b));
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let mut h = start(ServerConfig::default()).await;
    let mut good = h.connect().await;
    let good_id = client_id(&mut good).await;
    let mut bad = h.connect().await;
    let bad_id = client_id(&mut bad).await;
    bad.write_all(b"PING\r\n*1\r\n$4\r\nECHO\r\n*abc\r\nPING\r\n")
        .await
        .unwrap();
    expect(
        &mut bad,
        b"+PONG\r\n-ERR unknown command\r\n-ERR Protocol error: invalid multibulk length\r\n",
    )
    .await;
    expect_eof(&mut bad).await;
    assert_eq!(h.note().await, Note::Closed(bad_id));
    let mut other = h.connect().await;
    other.write_all(b"SET a \"b\r\n").await.unwrap();
    expect(
        &mut other,
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    )
    .await;
    expect_eof(&mut other).await;
    let mut raw = h.connect().await;
    raw.write_all(b"*1\r\n\xff\r\n").await.unwrap();
    expect(
        &mut raw,
        b"-ERR Protocol error: expected '$', got '\xff'\r\n",
    )
    .await;
    expect_eof(&mut raw).await;
    good.write_all(b"PING\r\n").await.unwrap();
    expect(&mut good, b"+PONG\r\n").await;
    let notes = h.shutdown().await;
    drop(notes);
    let _ = good_id;
}

#[tokio::test]
async fn half_frame_then_disconnect() {
    let mut h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    let id = client_id(&mut a).await;
    a.write_all(b"*2\r\n$4\r\nECHO\r\n$10\r\nabc")
        .await
        .unwrap();
    drop(a);
    assert_eq!(h.note().await, Note::Closed(id));
    let mut b = h.connect().await;
    b.write_all(b"PING\r\n").await.unwrap();
    expect(&mut b, b"+PONG\r\n").await;
    h.shutdown().await;
}

#[tokio::test]
async fn max_clients_refuses_with_redis_error() {
    let config = ServerConfig {
        max_clients: 2,
        ..ServerConfig::default()
    };
    let mut h = start(config).await;
    let mut a = h.connect().await;
    let id_a = client_id(&mut a).await;
    let mut b = h.connect().await;
    client_id(&mut b).await;
    let mut c = h.connect().await;
    expect(&mut c, b"-ERR max number of clients reached\r\n").await;
    expect_eof(&mut c).await;
    drop(a);
    assert_eq!(h.note().await, Note::Closed(id_a));
    // The slot is free again once the session is closed.
    let mut d = h.connect().await;
    assert_eq!(client_id(&mut d).await, 3);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_the_command_in_progress() {
    let mut h = start(ServerConfig::default()).await;
    let (release, released) = std::sync::mpsc::channel::<()>();
    *h.shared.slow_release.lock().unwrap() = Some(released);

    let mut idle = h.connect().await;
    let idle_id = client_id(&mut idle).await;
    let mut blocked = h.connect().await;
    let blocked_id = client_id(&mut blocked).await;
    blocked.write_all(b"WAIT forever\r\n").await.unwrap();
    assert_eq!(h.note().await, Note::Blocked(blocked_id));
    let mut busy = h.connect().await;
    let busy_id = client_id(&mut busy).await;
    busy.write_all(b"SLOW\r\nPING\r\n").await.unwrap();
    assert_eq!(h.note().await, Note::SlowStarted(busy_id));

    let _ = h.stop.take().unwrap().send(());
    // Idle and blocked clients are closed at once; once they are, the
    // stop signal has reached every connection.
    expect_eof(&mut idle).await;
    expect_eof(&mut blocked).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(h.note().await);
    }
    assert!(seen.contains(&Note::Closed(idle_id)), "{seen:?}");
    assert!(seen.contains(&Note::Cancelled(blocked_id)), "{seen:?}");
    assert!(seen.contains(&Note::Closed(blocked_id)), "{seen:?}");
    assert!(
        !h.server.is_finished(),
        "run returned before the busy client"
    );

    // The command in progress completes and its reply is written; the
    // pipelined PING after it is not executed.
    release.send(()).unwrap();
    expect(&mut busy, b"$9\r\nslow done\r\n").await;
    expect_eof(&mut busy).await;
    tokio::time::timeout(LIMIT, h.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(h.notes.recv().await, Some(Note::Closed(busy_id)));
    // Every session was closed exactly once and the service is gone.
    assert_eq!(h.notes.recv().await, None);
    assert!(TcpStream::connect(h.addr).await.is_err());
}

#[tokio::test]
async fn query_buffer_limit_closes_without_reply() {
    let config = ServerConfig {
        max_query_buffer: 64 * 1024,
        ..ServerConfig::default()
    };
    let mut h = start(config).await;
    let mut a = h.connect().await;
    let id = client_id(&mut a).await;
    // A valid but unfinished 1 MB argument overflows the 64 KiB limit.
    a.write_all(b"*2\r\n$4\r\nECHO\r\n$1000000\r\n")
        .await
        .unwrap();
    let chunk = vec![b'z'; 128 * 1024];
    // The server may close while we are still writing.
    let _ = a.write_all(&chunk).await;
    expect_eof(&mut a).await;
    assert_eq!(h.note().await, Note::Closed(id));
    h.shutdown().await;
}

/// A client that never reads its replies cannot hold up shutdown beyond
/// the flush timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_forever_for_a_client_that_never_reads() {
    let config = ServerConfig {
        shutdown_flush_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let mut h = start(config).await;
    let mut a = h.connect().await;
    let id = client_id(&mut a).await;
    // The 64 MiB reply exceeds what both sockets can buffer (at most 32 MiB
    // + 4 MiB with these tcp_rmem/tcp_wmem), so the write cannot finish.
    a.write_all(b"BIG\r\n").await.unwrap();
    assert_eq!(h.note().await, Note::BigStarted(id));
    let began = std::time::Instant::now();
    let _ = h.stop.take().unwrap().send(());
    tokio::time::timeout(LIMIT, h.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(began.elapsed() >= Duration::from_millis(200));
    assert_eq!(h.notes.recv().await, Some(Note::Closed(id)));
    drop(a);
}

/// A kill reaches a connection stuck writing to a client that does not
/// read: it closes at once instead of waiting for the client (or for
/// shutdown). Before, the kill waited in the event channel until the write
/// finished, so `CLIENT KILL` of a subscriber that had stopped reading
/// never took effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_closes_a_client_that_does_not_read() {
    let mut h = start(ServerConfig::default()).await;
    let mut a = h.connect().await;
    let id = client_id(&mut a).await;
    // 64 MiB: more than both sockets can buffer, so the write cannot finish
    // while `a` does not read.
    a.write_all(b"BIG\r\n").await.unwrap();
    assert_eq!(h.note().await, Note::BigStarted(id));
    // The reply's first bytes: the server is writing it now.
    expect(&mut a, b"$67108864\r\n").await;
    h.events(id).send(Event::Kill).unwrap();
    assert_eq!(h.note().await, Note::Closed(id));
    // What was not written is dropped: the client sees the end of the
    // stream before the end of the reply.
    let mut got = Vec::new();
    let read = tokio::time::timeout(LIMIT, a.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(read.is_err() || got.len() < 64 << 20, "{} bytes", got.len());
    // Pushes queued behind the kill are not written either, and the
    // server still shuts down promptly.
    h.shutdown().await;
}
