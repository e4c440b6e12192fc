//! Settings that guard the server, over real sockets, on cairn and (where
//! the outcome is deterministic) on a real Redis 7.0 alike: the Unix socket
//! listener, `enable-debug-command`, `enable-protected-configs`,
//! `client-query-buffer-limit`, `proto-max-bulk-len` and
//! `client-output-buffer-limit`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure};
use cairn_server::{ProtectedAction, Server, ServerHandle, ShutdownOptions};
use cairn_tests::cairn::CairnServer;
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Redis 7.0.15's refusal of DEBUG, as redis-server sends it.
const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn error_text(r: &Reply) -> String {
    match r {
        Reply::Error(e) => e.clone(),
        other => format!("not an error: {other:?}"),
    }
}

/// An address of this machine that is not loopback, to connect from as a
/// remote peer would.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Reads until the server closes `s` (bounded), returning what it sent.
async fn read_until_closed<S: AsyncReadExt + Unpin>(s: &mut S) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => bail!("the connection stayed open; {} bytes read", out.len()),
            Ok(Ok(0)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            // A reset (unread input discarded by the closing side) is a close.
            Ok(Err(_)) => return Ok(out),
        }
    }
}

async fn start(
    builder: cairn_server::ServerBuilder,
) -> anyhow::Result<(ServerHandle, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let handle = builder
        .port(0)
        .persistence(false)
        .data_dir(dir.path().join("data"))
        .build()
        .start()
        .await?;
    Ok((handle, dir))
}

/// `unixsocket` / `unixsocketperm` as redis-server 7.0.15 (checked by hand
/// with `--unixsocket /tmp/r.sock --unixsocketperm 700`): the file gets
/// the mode, `CLIENT LIST` shows `addr=<path>:0 laddr=<path>:0` and flag
/// `U`, both settings are immutable, a stale file is replaced at start
/// and the file is removed at shutdown.
#[cfg(unix)]
#[tokio::test]
async fn unix_socket_listener_as_redis() -> anyhow::Result<()> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let sockdir = tempfile::tempdir()?;
    let path = sockdir.path().join("cairn.sock");
    // A stale file where the socket goes (left by a crash): replaced.
    std::fs::write(&path, b"stale")?;
    let (handle, _dir) = start(
        Server::builder()
            .unixsocket(&path)
            .unixsocketperm(0o700)
            // Protected mode with a non-loopback bind still serves the
            // Unix socket.
            .bind(std::net::IpAddr::from([0, 0, 0, 0])),
    )
    .await?;
    let meta = std::fs::metadata(&path)?;
    ensure!(meta.file_type().is_socket(), "{meta:?}");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);

    // The redis crate's own Unix connection.
    let url = format!("redis+unix://{}", path.display());
    let client = redis::Client::open(url.as_str())?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let pong: String = redis::cmd("PING").query_async(&mut c).await?;
    assert_eq!(pong, "PONG");
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut c)
        .await?;
    let v: String = redis::cmd("GET").arg("k").query_async(&mut c).await?;
    assert_eq!(v, "v");

    // CLIENT INFO / LIST over a raw Unix stream.
    let mut raw = tokio::net::UnixStream::connect(&path).await?;
    raw.write_all(b"CLIENT INFO\r\n").await?;
    let mut buf = vec![0u8; 4096];
    let n = raw.read(&mut buf).await?;
    let info = String::from_utf8_lossy(&buf[..n]).into_owned();
    let shown = path.display();
    ensure!(
        info.contains(&format!(" addr={shown}:0 laddr={shown}:0 ")),
        "{info}"
    );
    ensure!(info.contains(" flags=U "), "{info}");
    // The same server's TCP clients are not flagged U.
    let mut tcp = Conn::connect(SocketAddr::from(([127, 0, 0, 1], handle.addr().port()))).await?;
    let list = tcp.call(&["CLIENT", "LIST"]).await?;
    let list = String::from_utf8_lossy(list.as_bytes().unwrap_or_default()).into_owned();
    let tcp_line = list
        .lines()
        .find(|l| l.contains(" addr=127.0.0.1:"))
        .unwrap_or_default();
    ensure!(tcp_line.contains(" flags=N "), "{list}");
    for (name, value) in [("unixsocket", "/elsewhere"), ("unixsocketperm", "777")] {
        assert_eq!(
            error_text(&tcp.call(&["CONFIG", "SET", name, value]).await?),
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )
        );
    }
    let perm = tcp.call(&["CONFIG", "GET", "unixsocketperm"]).await?;
    assert_eq!(
        perm,
        Reply::Array(vec![
            Reply::Bulk(b"unixsocketperm".to_vec()),
            Reply::Bulk(b"700".to_vec())
        ])
    );
    let sock = tcp.call(&["CONFIG", "GET", "unixsocket"]).await?;
    assert_eq!(
        sock,
        Reply::Array(vec![
            Reply::Bulk(b"unixsocket".to_vec()),
            Reply::Bulk(path.to_string_lossy().as_bytes().to_vec())
        ])
    );

    handle.shutdown_with(ShutdownOptions::nosave()).await?;
    ensure!(!path.exists(), "the socket file is removed at shutdown");
    println!("unix socket: mode 700, flags=U, addr={shown}:0, removed at shutdown");
    Ok(())
}

/// DEBUG under `enable-debug-command`: refused by default with Redis'
/// text (inside MULTI too, which then aborts), served with `yes`, and with
/// `local` only to loopback and Unix socket clients; immutable at run time.
#[tokio::test]
async fn debug_command_follows_enable_debug_command() -> anyhow::Result<()> {
    let (handle, _dir) = start(Server::builder()).await?;
    let mut c = Conn::connect(handle.addr()).await?;
    assert_eq!(
        error_text(&c.call(&["DEBUG", "SLEEP", "0"]).await?),
        DEBUG_REFUSED
    );
    // Arity is checked first, as in Redis.
    assert_eq!(
        error_text(&c.call(&["DEBUG"]).await?),
        "ERR wrong number of arguments for 'debug' command"
    );
    assert_eq!(c.call(&["MULTI"]).await?, ok());
    assert_eq!(
        error_text(&c.call(&["DEBUG", "SLEEP", "0"]).await?),
        DEBUG_REFUSED
    );
    assert_eq!(
        error_text(&c.call(&["EXEC"]).await?),
        "EXECABORT Transaction discarded because of previous errors."
    );
    for name in [
        "enable-debug-command",
        "enable-protected-configs",
        "enable-module-command",
    ] {
        assert_eq!(
            error_text(&c.call(&["CONFIG", "SET", name, "yes"]).await?),
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )
        );
    }
    handle.shutdown_with(ShutdownOptions::nosave()).await?;

    let (handle, _dir) =
        start(Server::builder().enable_debug_command(ProtectedAction::Yes)).await?;
    let mut c = Conn::connect(handle.addr()).await?;
    assert_eq!(c.call(&["DEBUG", "SLEEP", "0"]).await?, ok());
    assert_eq!(
        c.call(&["CONFIG", "GET", "enable-debug-command"]).await?,
        Reply::Array(vec![
            Reply::Bulk(b"enable-debug-command".to_vec()),
            Reply::Bulk(b"yes".to_vec())
        ])
    );
    handle.shutdown_with(ShutdownOptions::nosave()).await?;

    // `local`: loopback and the Unix socket, not another address.
    let sockdir = tempfile::tempdir()?;
    let path = sockdir.path().join("d.sock");
    let mut b = Server::builder()
        .enable_debug_command(ProtectedAction::Local)
        .bind(std::net::IpAddr::from([0, 0, 0, 0]));
    if cfg!(unix) {
        b = b.unixsocket(&path);
    }
    let (handle, _dir) = start(b).await?;
    let port = handle.addr().port();
    let mut local = Conn::connect(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    assert_eq!(local.call(&["DEBUG", "SLEEP", "0"]).await?, ok());
    #[cfg(unix)]
    {
        let mut u = tokio::net::UnixStream::connect(&path).await?;
        u.write_all(b"DEBUG SLEEP 0\r\n").await?;
        let mut buf = [0u8; 5];
        u.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"+OK\r\n");
    }
    match non_loopback_ip() {
        Some(ip) => {
            // A remote peer needs protected mode satisfied first.
            local
                .call(&["CONFIG", "SET", "protected-mode", "no"])
                .await?;
            let mut remote = Conn::connect(SocketAddr::new(ip, port)).await?;
            assert_eq!(
                error_text(&remote.call(&["DEBUG", "SLEEP", "0"]).await?),
                DEBUG_REFUSED
            );
            assert_eq!(remote.call(&["PING"]).await?, Reply::Simple("PONG".into()));
            println!("enable-debug-command local: refused to {ip}, served on loopback and unix");
        }
        None => println!("no non-loopback address: the remote half of `local` not exercised"),
    }
    handle.shutdown_with(ShutdownOptions::nosave()).await?;
    Ok(())
}

/// `enable-protected-configs`: `CONFIG SET dir` and `dbfilename` refused
/// with Redis' text unless allowed; the oracle refuses the same way.
#[tokio::test]
async fn protected_configs_need_enable_protected_configs() -> anyhow::Result<()> {
    async fn refused(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
        let mut c = Conn::connect(addr).await?;
        for (name, value) in [("dir", "/tmp"), ("dbfilename", "x.rdb")] {
            assert_eq!(
                error_text(&c.call(&["CONFIG", "SET", name, value]).await?),
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
                ),
                "{who}"
            );
        }
        // Other parameters are not protected.
        assert_eq!(
            c.call(&["CONFIG", "SET", "maxmemory-samples", "5"]).await?,
            ok(),
            "{who}"
        );
        Ok(())
    }
    // The oracle runs with the default `enable-protected-configs no`.
    if let Some(oracle) = RedisOracle::start_or_skip("protected configs")? {
        refused(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    refused(cairn.addr(), "cairn").await?;
    cairn.shutdown().await?;

    let (handle, _dir) =
        start(Server::builder().enable_protected_configs(ProtectedAction::Local)).await?;
    let mut c = Conn::connect(handle.addr()).await?;
    let r = c.call(&["CONFIG", "SET", "dbfilename", "x.rdb"]).await?;
    ensure!(
        !error_text(&r).contains("protected config"),
        "a loopback client may set it with `local`: {r:?}"
    );
    // Allowed, `dir` still cannot move under a running server: said so.
    assert_eq!(
        error_text(&c.call(&["CONFIG", "SET", "dir", "/tmp"]).await?),
        "ERR CONFIG SET failed (possibly related to argument 'dir') - cairn cannot change at runtime 'dir': --data-dir at start: where the snapshot generations live (see docs/compatibility.md, Configuration parameters)"
    );
    handle.shutdown_with(ShutdownOptions::nosave()).await?;
    Ok(())
}

/// `proto-max-bulk-len` and `client-query-buffer-limit` set at run time
/// hold for the next request, as in Redis: a longer declared bulk gets
/// `-ERR Protocol error: invalid bulk length` and the connection closes; an
/// unfinished request past the query buffer limit is closed without a
/// reply. Below 1 MB both are refused with Redis' text.
#[tokio::test]
async fn input_limits_hold_at_run_time() -> anyhow::Result<()> {
    async fn holds(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
        let mut admin = Conn::connect(addr).await?;
        for name in ["proto-max-bulk-len", "client-query-buffer-limit"] {
            assert_eq!(
                error_text(&admin.call(&["CONFIG", "SET", name, "1000"]).await?),
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be between 1048576 and 9223372036854775807 inclusive"
                ),
                "{who}"
            );
        }
        assert_eq!(
            admin
                .call(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"])
                .await?,
            ok()
        );
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
            .await?;
        let got = read_until_closed(&mut s).await?;
        assert_eq!(
            got, b"-ERR Protocol error: invalid bulk length\r\n",
            "{who}"
        );
        // At the limit it is served.
        let mut c = Conn::connect(addr).await?;
        let big = vec![b'x'; 1 << 20];
        assert_eq!(c.call(&[&b"SET"[..], b"k", &big]).await?, ok(), "{who}");

        assert_eq!(
            admin
                .call(&["CONFIG", "SET", "proto-max-bulk-len", "512mb"])
                .await?,
            ok()
        );
        assert_eq!(
            admin
                .call(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"])
                .await?,
            ok()
        );
        // A 4 MB argument, never finished: cut off at the limit.
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n")
            .await?;
        let chunk = vec![b'y'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 3 << 20 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        let got = read_until_closed(&mut s).await?;
        ensure!(got.is_empty(), "{who}: no reply, only a close: {got:?}");
        assert_eq!(
            admin
                .call(&["CONFIG", "SET", "client-query-buffer-limit", "1gb"])
                .await?,
            ok()
        );
        assert_eq!(
            admin.call(&["PING"]).await?,
            Reply::Simple("PONG".into()),
            "{who}"
        );
        println!("{who}: proto-max-bulk-len and client-query-buffer-limit hold at run time");
        Ok(())
    }
    if let Some(oracle) = RedisOracle::start_or_skip("input limits")? {
        holds(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    holds(cairn.addr(), "cairn").await?;
    cairn.shutdown().await
}

/// `client-output-buffer-limit` reads and refuses as Redis' CONFIG does.
#[tokio::test]
async fn output_buffer_limit_setting_reads_as_redis() -> anyhow::Result<()> {
    async fn replies(addr: SocketAddr) -> anyhow::Result<Vec<Reply>> {
        let mut c = Conn::connect(addr).await?;
        let mut out = vec![
            c.call(&["CONFIG", "GET", "client-output-buffer-limit"])
                .await?,
        ];
        for v in [
            "normal 1mb 2mb 3",
            "pubsub 1 2",
            "foo 1 2 3",
            "normal x 2 3",
            "normal -1 2 3",
            "normal 1 2 -3",
            "replica 1k 2kb 10",
            "slave 1 2 3 pubsub 4 5 6",
            "",
        ] {
            out.push(
                c.call(&["CONFIG", "SET", "client-output-buffer-limit", v])
                    .await?,
            );
            out.push(
                c.call(&["CONFIG", "GET", "client-output-buffer-limit"])
                    .await?,
            );
        }
        c.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60",
        ])
        .await?;
        Ok(out)
    }
    let cairn = CairnServer::start().await?;
    let ours = replies(cairn.addr()).await?;
    assert_eq!(
        format!("{:?}", ours[0]),
        format!(
            "{:?}",
            Reply::Array(vec![
                Reply::Bulk(b"client-output-buffer-limit".to_vec()),
                Reply::Bulk(
                    b"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60".to_vec()
                )
            ])
        )
    );
    if let Some(oracle) = RedisOracle::start_or_skip("client-output-buffer-limit")? {
        let theirs = replies(oracle.addr()).await?;
        assert_eq!(ours, theirs);
    }
    cairn.shutdown().await
}

/// Publishes `payload` on `channel` until nobody receives it any more
/// (the subscriber was disconnected); fails past `max` messages.
async fn publish_until_dropped(
    publisher: &mut Conn,
    channel: &str,
    payload: &[u8],
    max: usize,
) -> anyhow::Result<usize> {
    for i in 0..max {
        let got = publisher
            .call(&[&b"PUBLISH"[..], channel.as_bytes(), payload])
            .await?;
        if got.as_int() == Some(0) {
            return Ok(i);
        }
    }
    bail!("the subscriber was still connected after {max} messages")
}

/// A subscriber that never reads while a publisher floods is disconnected
/// at the pub/sub hard limit (and, with only a soft limit, once over it
/// for longer than its seconds) instead of growing memory; the server
/// stays healthy. Run on Redis too.
#[tokio::test]
async fn subscriber_that_never_reads_is_disconnected() -> anyhow::Result<()> {
    async fn holds(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
        let mut admin = Conn::connect(addr).await?;
        let payload = vec![b'm'; 4096];
        for (limit, what) in [("pubsub 1mb 0 0", "hard"), ("pubsub 0 256kb 1", "soft")] {
            assert_eq!(
                admin
                    .call(&["CONFIG", "SET", "client-output-buffer-limit", limit])
                    .await?,
                ok()
            );
            let mut sub = tokio::net::TcpStream::connect(addr).await?;
            sub.write_all(b"SUBSCRIBE flood\r\n").await?;
            let mut confirm = [0u8; 33];
            sub.read_exact(&mut confirm).await?;
            ensure!(confirm.starts_with(b"*3\r\n$9\r\nsubscribe"), "{confirm:?}");
            // Socket buffers on loopback hold some megabytes before the
            // server's own buffer fills; 200k messages is 800 MB.
            let n = publish_until_dropped(&mut admin, "flood", &payload, 200_000).await?;
            println!("{who}: {what} limit: subscriber dropped after {n} messages of 4 KB");
            drop(sub);
        }
        admin
            .call(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 32mb 8mb 60",
            ])
            .await?;
        assert_eq!(admin.call(&["PING"]).await?, Reply::Simple("PONG".into()));
        Ok(())
    }
    if let Some(oracle) = RedisOracle::start_or_skip("pubsub output limit")? {
        holds(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    holds(cairn.addr(), "cairn").await?;
    cairn.shutdown().await
}

/// `CLIENT LIST`'s `omem` shows the output waiting for a subscriber that
/// does not read, on both servers, and cairn's INFO
/// `client_recent_max_output_buffer` too.
#[tokio::test]
async fn unsent_output_is_reported() -> anyhow::Result<()> {
    fn field(text: &str, name: &str) -> Option<u64> {
        text.split(|c: char| c.is_whitespace())
            .find_map(|f| f.strip_prefix(name)?.strip_prefix(|c| c == '=' || c == ':'))
            .and_then(|v| v.parse().ok())
    }
    async fn holds(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
        let mut admin = Conn::connect(addr).await?;
        admin
            .call(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 0 0 0",
            ])
            .await?;
        let mut sub = tokio::net::TcpStream::connect(addr).await?;
        sub.write_all(b"SUBSCRIBE pending\r\n").await?;
        let mut confirm = [0u8; 35];
        sub.read_exact(&mut confirm).await?;
        let payload = vec![b'p'; 4096];
        let mut omem = 0;
        for i in 0..20_000 {
            admin.call(&[&b"PUBLISH"[..], b"pending", &payload]).await?;
            if i % 100 == 99 {
                let list = admin.call(&["CLIENT", "LIST"]).await?;
                let list =
                    String::from_utf8_lossy(list.as_bytes().unwrap_or_default()).into_owned();
                let line = list
                    .lines()
                    .find(|l| l.contains(" sub=1 "))
                    .unwrap_or_default();
                omem = field(line, "omem").unwrap_or(0);
                if omem > 0 {
                    break;
                }
            }
        }
        ensure!(omem > 0, "{who}: omem stayed 0");
        let info = admin.call(&["INFO", "clients"]).await?;
        let info = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
        let peak = field(&info, "client_recent_max_output_buffer");
        // Redis samples it in its clients cron (a peak over recent
        // seconds), so it may still read 0 there; cairn reads it live.
        ensure!(peak.is_some(), "{who}: {info}");
        if who == "cairn" {
            ensure!(peak.is_some_and(|p| p > 0), "{who}: {info}");
        }
        drop(sub);
        admin
            .call(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 32mb 8mb 60",
            ])
            .await?;
        println!("{who}: a subscriber that does not read shows omem={omem}");
        Ok(())
    }
    if let Some(oracle) = RedisOracle::start_or_skip("omem")? {
        holds(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    holds(cairn.addr(), "cairn").await?;
    cairn.shutdown().await
}

/// A reply that would exceed memory (`SRANDMEMBER k -16777216` on a set of
/// 10 KB members: 160 GB) is cut off at the normal class' hard limit: the
/// client is closed having received at most about the limit, and the
/// server answers the next client. Run on Redis too.
#[tokio::test]
async fn huge_reply_is_cut_off_at_the_normal_limit() -> anyhow::Result<()> {
    async fn holds(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
        let mut admin = Conn::connect(addr).await?;
        for i in 0..64 {
            let member = format!("{i:0>10240}");
            admin.call(&["SADD", "big", member.as_str()]).await?;
        }
        assert_eq!(
            admin
                .call(&[
                    "CONFIG",
                    "SET",
                    "client-output-buffer-limit",
                    "normal 4mb 0 0"
                ])
                .await?,
            ok()
        );
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"SRANDMEMBER big -16777216\r\n").await?;
        let got = read_until_closed(&mut s).await?;
        ensure!(
            got.len() <= 8 << 20,
            "{who}: {} bytes sent past a 4 MB limit",
            got.len()
        );
        assert_eq!(
            admin.call(&["PING"]).await?,
            Reply::Simple("PONG".into()),
            "{who}"
        );
        // Without a limit an ordinary reply still comes whole.
        admin
            .call(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 0 0 0",
            ])
            .await?;
        let r = admin.call(&["SRANDMEMBER", "big", "-1000"]).await?;
        assert_eq!(r.elements().map(<[Reply]>::len), Some(1000), "{who}");
        admin.call(&["DEL", "big"]).await?;
        println!(
            "{who}: SRANDMEMBER -16777216 cut off after {} bytes",
            got.len()
        );
        Ok(())
    }
    if let Some(oracle) = RedisOracle::start_or_skip("normal output limit")? {
        holds(oracle.addr(), "redis").await?;
    }
    let cairn = CairnServer::start().await?;
    holds(cairn.addr(), "cairn").await?;
    cairn.shutdown().await
}
