//! A cairn server over real TCP and a small frame-reading client, for the
//! tests that need the connection server (pushes, CLIENT REPLY).
// Each test file uses its own part of this module.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use cairn_keyspace::Keyspace;
use cairn_resp::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A cairn server on an ephemeral port, stopped by [`Server::stop`].
pub struct Server {
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(cairn_resp::run(
            listener,
            Arc::new(Keyspace::new()),
            cairn_resp::ServerConfig::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server { addr, stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("the server did not shut down within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// A client connection that sends commands and reads whole frames.
pub struct Client {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        Client {
            stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
            buf: bytes::BytesMut::new(),
        }
    }

    pub async fn send(&mut self, cmds: &[Vec<String>]) {
        let mut out = Vec::new();
        for cmd in cmds {
            out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
            for a in cmd {
                out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next frame; panics after 10 s (a safety net, not a wait).
    pub async fn frame(&mut self) -> Frame {
        loop {
            if let Some(f) =
                cairn_resp::parse_frame(&mut self.buf, &cairn_resp::Limits::default()).unwrap()
            {
                return f;
            }
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.stream.read_buf(&mut self.buf),
            )
            .await
            .expect("no frame within 10 s")
            .unwrap();
            assert!(n > 0, "connection closed");
        }
    }
}

pub fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

impl Client {
    /// Sends one command given as words.
    pub async fn cmd(&mut self, parts: &[&str]) {
        self.send(&[cmd(parts)]).await;
    }

    /// Waits for the server to close the connection, failing on any data
    /// that comes first.
    pub async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.stream.read_to_end(&mut rest),
        )
        .await
        .expect("the connection was not closed within 10 s");
        // A reset is also a close.
        if r.is_ok() {
            assert!(
                self.buf.is_empty() && rest.is_empty(),
                "expected the end of the stream, got {:?}{:?}",
                self.buf,
                String::from_utf8_lossy(&rest)
            );
        }
    }
}
