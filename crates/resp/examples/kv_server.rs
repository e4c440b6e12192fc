//! A toy `PING`/`ECHO`/`SET`/`GET` server on the cairn-resp connection
//! layer, for measuring the protocol path with `redis-benchmark`:
//!
//! ```text
//! cargo run --release -p cairn-resp --example kv_server -- 127.0.0.1:7777
//! redis-benchmark -p 7777 -t ping,set,get -q -P 16
//! ```
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_resp::{ConnInfo, Event, Frame, Outcome, Protocol, ServerConfig, Service, Session, run};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Default)]
struct Kv(Arc<Mutex<HashMap<Bytes, Bytes>>>);

struct KvSession(Arc<Mutex<HashMap<Bytes, Bytes>>>);

impl Service for Kv {
    type Session = KvSession;
    fn open(&self, _: ConnInfo) -> (KvSession, mpsc::UnboundedReceiver<Event>) {
        (KvSession(Arc::clone(&self.0)), mpsc::unbounded_channel().1)
    }
}

impl Session for KvSession {
    fn call(&mut self, args: Vec<Bytes>) -> Outcome {
        let name = args[0].to_ascii_uppercase();
        Outcome::Reply(match (&name[..], &args[1..]) {
            (b"PING", []) => Frame::simple("PONG"),
            (b"ECHO", [m]) => Frame::Bulk(m.clone()),
            (b"SET", [k, v]) => {
                // Copy so stored data does not pin the read buffer.
                let (k, v) = (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
                self.0.lock().unwrap().insert(k, v);
                Frame::ok()
            }
            (b"GET", [k]) => self
                .0
                .lock()
                .unwrap()
                .get(k)
                .cloned()
                .map_or(Frame::Null, Frame::Bulk),
            // redis-benchmark asks for CONFIG at start; an empty reply is enough.
            (b"CONFIG", _) => Frame::Array(vec![]),
            _ => Frame::error("ERR unknown command"),
        })
    }
    fn protocol(&self) -> Protocol {
        Protocol::Resp2
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7777".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run(
        listener,
        Arc::new(Kv::default()),
        ServerConfig::default(),
        shutdown,
    )
    .await
}
