//! Connection settings that must hold, run on cairn and on a real Redis
//! 7.0 alike: `timeout` closes idle clients (those idle since before the
//! setting changed too) and spares subscribers and monitors.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use cairn_tests::cairn::CairnServer;
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};
use tokio::io::AsyncReadExt;

/// Waits until the server closes `stream` (bounded); what it sent is
/// returned, which for a timed-out client is nothing.
async fn closed_by_server(mut stream: tokio::net::TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) => bail!("read failed: {e}"),
        Err(_) => bail!("the idle client was not closed within 20 s"),
    }
}

async fn idle_timeout_holds(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
    let mut admin = Conn::connect(addr).await?;
    // Idle from before the setting changes.
    let idle = tokio::net::TcpStream::connect(addr).await?;
    let mut subscriber = Conn::connect(addr).await?;
    subscriber.call(&["SUBSCRIBE", "ch"]).await?;
    let mut monitor = Conn::connect(addr).await?;
    assert_eq!(
        monitor.call(&["MONITOR"]).await?,
        Reply::Simple("OK".into())
    );
    assert_eq!(
        admin.call(&["CONFIG", "SET", "timeout", "1"]).await?,
        Reply::Simple("OK".into())
    );
    let sent = closed_by_server(idle).await?;
    assert!(
        sent.is_empty(),
        "{who}: a timed-out client gets no reply: {sent:?}"
    );
    // The subscriber outlived the idle client and still answers.
    subscriber.send(&["PING"]).await?;
    let pong = subscriber.read_reply().await?;
    assert!(
        matches!(&pong, Reply::Array(items) if items.first() == Some(&Reply::Bulk(b"pong".to_vec()))),
        "{who}: {pong:?}"
    );
    // The monitor too: it sees the next command (from a new connection:
    // the first one was idle as long as the idle client).
    let mut admin = Conn::connect(addr).await?;
    admin.call(&["CONFIG", "SET", "timeout", "0"]).await?;
    // CONFIG is not shown to monitors (an admin command): a plain one is.
    admin.call(&["SET", "timeout", "over"]).await?;
    // It saw the subscriber's PING first.
    let mut seen = Vec::new();
    let watch = async {
        while seen.len() < 5 {
            let line = monitor.read_reply().await?;
            let done = matches!(&line, Reply::Simple(l) if l.contains("\"timeout\""));
            seen.push(line);
            if done {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), watch).await??;
    assert!(
        matches!(seen.last(), Some(Reply::Simple(l)) if l.contains("\"timeout\"")),
        "{who}: {seen:?}"
    );
    println!("{who}: idle client closed after CONFIG SET timeout 1; subscriber and monitor kept");
    Ok(())
}

#[tokio::test]
async fn timeout_closes_idle_clients_as_redis_does() -> anyhow::Result<()> {
    if let Some(oracle) = RedisOracle::start_or_skip("client timeout")? {
        idle_timeout_holds(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    idle_timeout_holds(cairn.addr(), "cairn").await
}

/// The timer field of the server's side of a connection in
/// `/proc/net/tcp` (`02`: the keepalive timer is running).
#[cfg(target_os = "linux")]
fn server_side_timer(server_port: u16, client_port: u16) -> anyhow::Result<String> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| {
            addr.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        if f.len() > 5 && port(f[1]) == Some(server_port) && port(f[2]) == Some(client_port) {
            return Ok(f[5].split(':').next().unwrap_or_default().to_owned());
        }
    }
    bail!("no server-side socket for client port {client_port} in /proc/net/tcp")
}

/// A connection the server has accepted and set up: it answered a PING.
#[cfg(target_os = "linux")]
async fn answered(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"PING\r\n").await?;
    let mut pong = [0u8; 7];
    s.read_exact(&mut pong).await?;
    anyhow::ensure!(&pong == b"+PONG\r\n", "{pong:?}");
    Ok(s)
}

/// `tcp-keepalive` (300 s by default) turns TCP keepalive on for accepted
/// connections, and `CONFIG SET tcp-keepalive 0` off for new ones, as in
/// Redis; read from the kernel's own table.
#[tokio::test]
async fn tcp_keepalive_is_set_on_accepted_connections() -> anyhow::Result<()> {
    #[cfg(not(target_os = "linux"))]
    {
        println!("skipped: reading socket timers needs Linux's /proc/net/tcp");
        Ok(())
    }
    #[cfg(target_os = "linux")]
    {
        let cairn = CairnServer::start().await?;
        let addr = cairn.addr();
        let mut first = Conn::connect(addr).await?;
        assert_eq!(first.call(&["PING"]).await?, Reply::Simple("PONG".into()));
        let probe = answered(addr).await?;
        let with = server_side_timer(addr.port(), probe.local_addr()?.port())?;
        first.call(&["CONFIG", "SET", "tcp-keepalive", "0"]).await?;
        let plain = answered(addr).await?;
        let without = server_side_timer(addr.port(), plain.local_addr()?.port())?;
        println!("tcp-keepalive: timer {with} with 300 s, {without} with 0");
        assert_eq!(with, "02", "keepalive timer running");
        assert_eq!(without, "00", "no timer");
        Ok(())
    }
}

/// Reads what the server sends a new connection that says nothing.
async fn greeting(addr: SocketAddr) -> anyhow::Result<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"PING\r\n").await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await??;
        out.extend_from_slice(&buf[..n]);
        if n == 0 || out.ends_with(b"\r\n") {
            return Ok(out);
        }
    }
}

async fn maxclients_holds(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
    let mut admin = Conn::connect(addr).await?;
    let mut second = Conn::connect(addr).await?;
    second.call(&["PING"]).await?;
    admin.call(&["CONFIG", "SET", "maxclients", "2"]).await?;
    assert_eq!(
        greeting(addr).await?,
        b"-ERR max number of clients reached\r\n",
        "{who}"
    );
    drop(second);
    // Once the server has noticed the close, a place is free again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let g = greeting(addr).await?;
        if g == b"+PONG\r\n" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{who}: {g:?}");
        tokio::task::yield_now().await;
    }
    admin
        .call(&["CONFIG", "SET", "maxclients", "10000"])
        .await?;
    println!("{who}: maxclients lowered at run time refuses the third client, then admits again");
    Ok(())
}

#[tokio::test]
async fn maxclients_changes_at_run_time_as_in_redis() -> anyhow::Result<()> {
    if let Some(oracle) = RedisOracle::start_or_skip("maxclients")? {
        maxclients_holds(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    maxclients_holds(cairn.addr(), "cairn").await
}
