//! Pub/sub: confirmations, delivery order, patterns, PUBSUB introspection,
//! subscribed-mode restrictions, cleanup, and pushes over real TCP.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::Keyspace;
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Service, Session as _};
use support::{Client, Server, cmd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

fn info(id: u64) -> ConnInfo {
    ConnInfo {
        id,
        peer: format!("127.0.0.1:{}", 40000 + id).parse().unwrap(),
        local: "127.0.0.1:6379".parse().unwrap(),
    }
}

fn push(parts: &[&str]) -> Frame {
    Frame::Push(parts.iter().map(Frame::bulk).collect())
}

fn drain(rx: &mut UnboundedReceiver<Event>) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let Event::Push(f) = ev {
            out.push(f);
        }
    }
    out
}

fn call(s: &mut cairn_keyspace::Session, args: &[&str]) -> Frame {
    s.command(args)
}

trait Kind {
    fn kind(&self) -> &'static str;
}

impl Kind for Outcome {
    fn kind(&self) -> &'static str {
        match self {
            Outcome::Reply(_) => "reply",
            Outcome::NoReply => "no reply",
            Outcome::Block(_) => "block",
            Outcome::Close(_) => "close",
        }
    }
}

#[test]
fn subscribe_confirms_each_channel_in_order() {
    let ks = Keyspace::new();
    let (mut s, mut rx) = ks.open(info(1));
    // Every confirmation is a push; the command itself has no reply.
    assert_eq!(
        s.execute(vec![
            Bytes::from("SUBSCRIBE"),
            Bytes::from("a"),
            Bytes::from("b"),
            Bytes::from("a"),
        ])
        .kind(),
        "no reply"
    );
    let conf = |ch: &str, n| {
        Frame::Push(vec![
            Frame::bulk("subscribe"),
            Frame::bulk(ch),
            Frame::Integer(n),
        ])
    };
    assert_eq!(
        drain(&mut rx),
        vec![conf("a", 1), conf("b", 2), conf("a", 2)]
    );
    assert_eq!(s.state().subscriptions(), 2);
    assert_eq!(call(&mut s, &["PSUBSCRIBE", "n*"]), Frame::Null);
    assert_eq!(
        drain(&mut rx),
        vec![Frame::Push(vec![
            Frame::bulk("psubscribe"),
            Frame::bulk("n*"),
            Frame::Integer(3)
        ])]
    );
    // UNSUBSCRIBE without arguments drops every channel, patterns stay.
    call(&mut s, &["UNSUBSCRIBE"]);
    let un = |ch: &str, n| {
        Frame::Push(vec![
            Frame::bulk("unsubscribe"),
            Frame::bulk(ch),
            Frame::Integer(n),
        ])
    };
    assert_eq!(drain(&mut rx), vec![un("a", 2), un("b", 1)]);
    call(&mut s, &["PUNSUBSCRIBE"]);
    assert_eq!(
        drain(&mut rx),
        vec![Frame::Push(vec![
            Frame::bulk("punsubscribe"),
            Frame::bulk("n*"),
            Frame::Integer(0)
        ])]
    );
    call(&mut s, &["UNSUBSCRIBE"]);
    assert_eq!(
        drain(&mut rx),
        vec![Frame::Push(vec![
            Frame::bulk("unsubscribe"),
            Frame::Null,
            Frame::Integer(0)
        ])]
    );
}

#[test]
fn subscribe_inside_exec_answers_inline_like_redis() {
    // Redis writes the confirmations into the EXEC reply; with one channel
    // that is exactly the command's element.
    let ks = Keyspace::new();
    let (mut s, mut rx) = ks.open(info(1));
    call(&mut s, &["MULTI"]);
    call(&mut s, &["SUBSCRIBE", "a"]);
    call(&mut s, &["PING"]);
    assert_eq!(
        call(&mut s, &["EXEC"]),
        Frame::Array(vec![
            Frame::Push(vec![
                Frame::bulk("subscribe"),
                Frame::bulk("a"),
                Frame::Integer(1)
            ]),
            Frame::Array(vec![Frame::bulk("pong"), Frame::bulk("")]),
        ])
    );
    assert!(drain(&mut rx).is_empty());
}

#[test]
fn publish_delivers_in_order_to_channels_then_patterns() {
    let ks = Keyspace::new();
    let (mut sub, mut rx) = ks.open(info(1));
    let (mut other, mut rx2) = ks.open(info(2));
    let mut publisher = ks.session();
    call(&mut sub, &["SUBSCRIBE", "news.tech"]);
    call(&mut sub, &["PSUBSCRIBE", "news.*", "x?z"]);
    call(&mut other, &["PSUBSCRIBE", "*"]);
    drain(&mut rx);
    drain(&mut rx2);
    assert_eq!(
        call(&mut publisher, &["PUBLISH", "news.tech", "m1"]),
        Frame::Integer(3)
    );
    assert_eq!(
        call(&mut publisher, &["PUBLISH", "news.tech", "m2"]),
        Frame::Integer(3)
    );
    assert_eq!(
        call(&mut publisher, &["PUBLISH", "xyz", "m3"]),
        Frame::Integer(2)
    );
    assert_eq!(
        call(&mut publisher, &["PUBLISH", "nobody", ""]),
        Frame::Integer(1)
    );
    assert_eq!(
        drain(&mut rx),
        vec![
            push(&["message", "news.tech", "m1"]),
            push(&["pmessage", "news.*", "news.tech", "m1"]),
            push(&["message", "news.tech", "m2"]),
            push(&["pmessage", "news.*", "news.tech", "m2"]),
            push(&["pmessage", "x?z", "xyz", "m3"]),
        ]
    );
    assert_eq!(drain(&mut rx2).len(), 4);
    // Introspection.
    assert_eq!(
        call(&mut publisher, &["PUBSUB", "CHANNELS"]),
        Frame::Array(vec![Frame::bulk("news.tech")])
    );
    assert_eq!(
        call(&mut publisher, &["PUBSUB", "CHANNELS", "x*"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        call(&mut publisher, &["PUBSUB", "NUMSUB", "news.tech", "none"]),
        Frame::Array(vec![
            Frame::bulk("news.tech"),
            Frame::Integer(1),
            Frame::bulk("none"),
            Frame::Integer(0)
        ])
    );
    assert_eq!(
        call(&mut publisher, &["PUBSUB", "NUMPAT"]),
        Frame::Integer(3)
    );
    // Closing a session drops its subscriptions.
    drop(sub);
    drop(rx);
    assert_eq!(
        call(&mut publisher, &["PUBSUB", "NUMPAT"]),
        Frame::Integer(1)
    );
    assert_eq!(
        call(&mut publisher, &["PUBLISH", "news.tech", "m"]),
        Frame::Integer(1)
    );
    other.closed();
}

#[test]
fn resp2_subscribed_mode_restricts_commands_resp3_does_not() {
    let ks = Keyspace::new();
    let (mut s, _rx) = ks.open(info(1));
    call(&mut s, &["SUBSCRIBE", "a"]);
    assert_eq!(
        call(&mut s, &["GET", "a"]),
        Frame::error("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".to_string())
    );
    assert_eq!(
        call(&mut s, &["PING"]),
        Frame::Array(vec![Frame::bulk("pong"), Frame::bulk("")])
    );
    assert_eq!(
        call(&mut s, &["PING", "x"]),
        Frame::Array(vec![Frame::bulk("pong"), Frame::bulk("x")])
    );
    assert_eq!(call(&mut s, &["RESET"]), Frame::simple("RESET"));
    assert_eq!(s.state().subscriptions(), 0);
    assert_eq!(call(&mut s, &["GET", "a"]), Frame::Null);

    call(&mut s, &["HELLO", "3"]);
    call(&mut s, &["SUBSCRIBE", "a"]);
    assert_eq!(call(&mut s, &["GET", "a"]), Frame::Null);
    assert_eq!(call(&mut s, &["PING"]), Frame::simple("PONG"));
}

async fn read_until(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, want: &[u8]) {
    let mut chunk = [0u8; 4096];
    while !buf.windows(want.len()).any(|w| w == want) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(buf)
                )
            })
            .unwrap();
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn pushes_arrive_over_tcp_in_resp2_and_resp3() {
    let ks = Arc::new(Keyspace::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cairn_resp::run(
        listener,
        ks.clone(),
        cairn_resp::ServerConfig::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let mut sub2 = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut sub3 = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut publ = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut b2, mut b3, mut bp) = (Vec::new(), Vec::new(), Vec::new());
    sub2.write_all(b"SUBSCRIBE ch1 ch2\r\n").await.unwrap();
    read_until(&mut sub2, &mut b2, b"$3\r\nch2\r\n:2\r\n").await;
    assert_eq!(
        b2,
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n"
    );
    sub3.write_all(b"HELLO 3\r\nPSUBSCRIBE ch*\r\n")
        .await
        .unwrap();
    read_until(&mut sub3, &mut b3, b"$3\r\nch*\r\n:1\r\n").await;
    assert!(b3.ends_with(b">3\r\n$10\r\npsubscribe\r\n$3\r\nch*\r\n:1\r\n"));
    b2.clear();
    b3.clear();
    publ.write_all(b"PUBLISH ch2 hello\r\n").await.unwrap();
    read_until(&mut publ, &mut bp, b"\r\n").await;
    assert_eq!(bp, b":2\r\n");
    read_until(&mut sub2, &mut b2, b"hello\r\n").await;
    assert_eq!(b2, b"*3\r\n$7\r\nmessage\r\n$3\r\nch2\r\n$5\r\nhello\r\n");
    read_until(&mut sub3, &mut b3, b"hello\r\n").await;
    assert_eq!(
        b3,
        b">4\r\n$8\r\npmessage\r\n$3\r\nch*\r\n$3\r\nch2\r\n$5\r\nhello\r\n"
    );
    // CLIENT KILL of a subscriber closes its connection.
    publ.write_all(b"CLIENT KILL TYPE pubsub\r\n")
        .await
        .unwrap();
    bp.clear();
    read_until(&mut publ, &mut bp, b"\r\n").await;
    assert_eq!(bp, b":2\r\n");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sub2.read_to_end(&mut rest),
    )
    .await
    .expect("a killed subscriber's connection was not closed within 10 s");
    assert_eq!(closed.unwrap(), 0);
    let _ = stop_tx.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server did not shut down within 10 s")
        .unwrap()
        .unwrap();
}

/// The kind of a pub/sub frame (`subscribe`, `message`, ...).
fn pubsub_kind(f: &Frame) -> String {
    match f {
        Frame::Array(v) | Frame::Push(v) => match v.first() {
            Some(Frame::Bulk(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => panic!("not a pub/sub frame: {f:?}"),
        },
        _ => panic!("not a pub/sub frame: {f:?}"),
    }
}

/// SUBSCRIBE to many channels while another client publishes to them
/// without pause: every confirmation reaches the subscriber before any
/// message on those channels, as in Redis. (Before, only the last
/// confirmation was the command's reply, and a message published between
/// the registration and that reply could be written first.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_precede_messages_under_concurrent_publishing() {
    const CHANNELS: usize = 16;
    const ROUNDS: usize = 300;
    let server = Server::start().await;
    let names: Vec<String> = (0..CHANNELS).map(|i| format!("c{i}")).collect();
    let publish: Vec<Vec<String>> = names.iter().map(|c| cmd(&["PUBLISH", c, "m"])).collect();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let publisher = {
        let running = Arc::clone(&running);
        let mut p = Client::connect(server.addr).await;
        tokio::spawn(async move {
            let mut started_tx = Some(started_tx);
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                p.send(&publish).await;
                for _ in 0..CHANNELS {
                    assert!(matches!(p.frame().await, Frame::Integer(_)));
                }
                if let Some(tx) = started_tx.take() {
                    let _ = tx.send(());
                }
            }
        })
    };
    started.await.unwrap();
    let mut sub = Client::connect(server.addr).await;
    let mut subscribe = vec!["SUBSCRIBE".to_owned()];
    subscribe.extend(names.iter().cloned());
    let mut messages = 0;
    for round in 0..ROUNDS {
        sub.send(&[subscribe.clone()]).await;
        let mut confirmed = 0;
        while confirmed < CHANNELS {
            let f = sub.frame().await;
            let kind = pubsub_kind(&f);
            assert_eq!(
                kind, "subscribe",
                "round {round}: {f:?} after {confirmed} of {CHANNELS} confirmations"
            );
            confirmed += 1;
        }
        // The last round waits for a message, which shows the publisher
        // was running throughout.
        if round == ROUNDS - 1 && messages == 0 {
            assert_eq!(pubsub_kind(&sub.frame().await), "message");
            messages += 1;
        }
        sub.send(&[cmd(&["UNSUBSCRIBE"])]).await;
        let mut left = CHANNELS;
        while left > 0 {
            match pubsub_kind(&sub.frame().await).as_str() {
                "message" => messages += 1,
                "unsubscribe" => left -= 1,
                other => panic!("round {round}: unexpected {other}"),
            }
        }
    }
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(std::time::Duration::from_secs(10), publisher)
        .await
        .expect("the publisher did not stop")
        .unwrap();
    println!("{ROUNDS} rounds, {messages} messages between confirmations");
    server.stop().await;
}
