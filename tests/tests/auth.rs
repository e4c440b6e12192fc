//! Authentication compared with a real Redis 7.0: `requirepass` set and
//! removed at run time, `AUTH` and `HELLO AUTH` in both forms, connections
//! made before and after a change, `ACL SETUSER default` password rules and
//! the `ACL` subcommands clients call. The same steps run on cairn and on
//! `redis-server`, each on its own set of connections, and every reply is
//! compared; the few that cannot be equal (random passwords, the client line
//! and age in `ACL LOG`) are compared by shape.

use std::collections::BTreeSet;

use anyhow::bail;
use cairn_tests::cairn::CairnServer;
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};

/// One step: which connection (opened on first use) sends what.
struct Step {
    conn: usize,
    args: Vec<String>,
}

fn step(conn: usize, args: &[&str]) -> Step {
    Step {
        conn,
        args: args.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn steps() -> Vec<Step> {
    let h = "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282";
    vec![
        // No password: everyone is in, the one-argument AUTH is an error,
        // the two-argument form accepts anything for `default`.
        step(0, &["PING"]),
        step(0, &["AUTH", "x"]),
        step(0, &["AUTH", "default", "x"]),
        step(0, &["AUTH", "bob", "x"]),
        step(0, &["AUTH"]),
        step(0, &["AUTH", "a", "b", "c"]),
        step(0, &["ACL", "WHOAMI"]),
        step(0, &["ACL", "USERS"]),
        step(0, &["ACL", "LIST"]),
        step(0, &["ACL", "GETUSER", "default"]),
        step(0, &["ACL", "GETUSER", "nobody"]),
        step(0, &["CONFIG", "GET", "requirepass"]),
        // Set a password: connection 0 (made without one) stays in.
        step(0, &["CONFIG", "SET", "requirepass", "secret"]),
        step(0, &["PING"]),
        step(0, &["CONFIG", "GET", "requirepass"]),
        step(0, &["ACL", "LIST"]),
        step(0, &["ACL", "GETUSER", "default"]),
        // A new connection must authenticate.
        step(1, &["PING"]),
        step(1, &["GET", "k"]),
        step(1, &["HELLO", "3"]),
        step(1, &["HELLO", "2", "AUTH", "default", "wrong"]),
        step(1, &["AUTH", "wrong"]),
        step(1, &["AUTH", "bob", "secret"]),
        step(1, &["AUTH", "secret"]),
        step(1, &["PING"]),
        step(2, &["HELLO", "2", "AUTH", "default", "secret"]),
        step(2, &["SET", "k", "v"]),
        // Change it: the new one works, the old one fails; authenticated
        // connections stay in.
        step(0, &["CONFIG", "SET", "requirepass", "other"]),
        step(1, &["GET", "k"]),
        step(3, &["AUTH", "secret"]),
        step(3, &["GET", "k"]),
        step(3, &["AUTH", "other"]),
        step(3, &["GET", "k"]),
        // RESET drops authentication while a password is required.
        step(3, &["RESET"]),
        step(3, &["GET", "k"]),
        // Password rules through ACL SETUSER default, all or none.
        step(0, &["ACL", "SETUSER", "default", ">two", ">three"]),
        step(0, &["ACL", "GETUSER", "default"]),
        step(4, &["AUTH", "two"]),
        step(4, &["AUTH", "three"]),
        step(4, &["AUTH", "other"]),
        step(0, &["ACL", "SETUSER", "default", "<two"]),
        step(5, &["AUTH", "two"]),
        step(0, &["ACL", "SETUSER", "default", ">four", "<absent"]),
        step(5, &["AUTH", "four"]),
        step(0, &["ACL", "SETUSER", "default", "#abc"]),
        step(0, &["ACL", "SETUSER", "default", "bogus"]),
        step(0, &["ACL", "SETUSER", "default", &format!("#{h}")]),
        step(5, &["AUTH", "xyz"]),
        step(0, &["ACL", "SETUSER", "default", &format!("!{h}")]),
        step(0, &["ACL", "LIST"]),
        step(0, &["ACL", "SETUSER", "default", "on", "~*", "&*", "+@all"]),
        step(0, &["ACL", "SETUSER", "default", "nopass", ">five"]),
        step(0, &["ACL", "LIST"]),
        step(0, &["ACL", "SETUSER", "default", "resetpass"]),
        step(0, &["ACL", "LIST"]),
        step(6, &["AUTH", "five"]),
        step(6, &["PING"]),
        // nopass lets in a connection that never authenticated.
        step(0, &["ACL", "SETUSER", "default", "nopass"]),
        step(6, &["PING"]),
        step(6, &["AUTH", "anything"]),
        // The empty requirepass removes the password.
        step(0, &["CONFIG", "SET", "requirepass", "back"]),
        step(7, &["PING"]),
        step(0, &["CONFIG", "SET", "requirepass", ""]),
        step(7, &["PING"]),
        step(0, &["ACL", "LIST"]),
        // The rest of the surface.
        step(0, &["ACL", "DELUSER", "default"]),
        step(0, &["ACL", "DELUSER", "nobody"]),
        step(0, &["ACL", "DRYRUN", "default", "GET", "k"]),
        step(0, &["ACL", "DRYRUN", "default", "GET"]),
        step(0, &["ACL", "DRYRUN", "default", "NOSUCHCMD"]),
        step(0, &["ACL", "DRYRUN", "nobody", "GET", "k"]),
        step(0, &["ACL", "CAT"]),
        step(0, &["ACL", "CAT", "nosuch"]),
        step(0, &["ACL", "GENPASS", "0"]),
        step(0, &["ACL", "GENPASS", "4097"]),
        step(0, &["ACL", "GENPASS", "x"]),
        step(0, &["ACL", "LOAD"]),
        step(0, &["ACL", "SAVE"]),
        step(0, &["ACL", "LOG", "x"]),
        step(0, &["ACL", "LOG", "0"]),
        step(0, &["ACL", "NOSUCH"]),
        step(0, &["ACL", "WHOAMI", "extra"]),
        step(0, &["ACL", "HELP"]),
        step(0, &["ACL", "LOG", "RESET"]),
        step(0, &["ACL", "LOG"]),
    ]
}

/// Replies whose content is random or names the connection: compared by
/// what must hold in both.
fn comparable(args: &[String], r: &Reply) -> Reply {
    let a: Vec<String> = args.iter().map(|s| s.to_ascii_uppercase()).collect();
    match (a.first().map(String::as_str), a.get(1).map(String::as_str)) {
        (Some("HELLO"), _) if !r.is_error() => Reply::Simple("<hello map>".into()),
        _ => r.clone(),
    }
}

async fn run(addr: std::net::SocketAddr) -> anyhow::Result<Vec<Reply>> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut out = Vec::new();
    for s in steps() {
        while conns.len() <= s.conn {
            conns.push(Conn::connect(addr).await?);
        }
        let r = conns[s.conn].call(&s.args).await?;
        out.push(comparable(&s.args, &r));
    }
    Ok(out)
}

#[tokio::test]
async fn authentication_matches_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("authentication")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let want = run(oracle.addr()).await?;
    let got = run(cairn.addr()).await?;
    let mut diffs = Vec::new();
    for ((s, w), g) in steps().iter().zip(&want).zip(&got) {
        if w != g {
            diffs.push(format!(
                "{:?} on connection {}:\n  redis: {w:?}\n  cairn: {g:?}",
                s.args, s.conn
            ));
        }
    }
    println!(
        "authentication: {} steps, {} differences",
        want.len(),
        diffs.len()
    );
    if !diffs.is_empty() {
        bail!("{}", diffs.join("\n"));
    }
    Ok(())
}

/// `ACL LOG` after refused attempts: the same entries (count, reason,
/// context, object, username) in the same order; the client line names the
/// command and the age is a small number of seconds.
#[tokio::test]
async fn acl_log_matches_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("acl log")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    async fn entries(addr: std::net::SocketAddr) -> anyhow::Result<Vec<Vec<String>>> {
        let mut admin = Conn::connect(addr).await?;
        admin.call(&["CONFIG", "SET", "requirepass", "pw"]).await?;
        let mut c = Conn::connect(addr).await?;
        for a in [
            vec!["AUTH", "bad"],
            vec!["AUTH", "bad2"],
            vec!["AUTH", "bob", "x"],
            vec!["HELLO", "3", "AUTH", "default", "bad"],
        ] {
            c.call(&a).await?;
        }
        let log = admin.call(&["ACL", "LOG"]).await?;
        let mut out = Vec::new();
        for e in log.elements().unwrap_or_default() {
            let fields = e.elements().unwrap_or_default();
            let mut row = Vec::new();
            for pair in fields.chunks(2) {
                let [k, v] = pair else { continue };
                let k = String::from_utf8_lossy(k.as_bytes().unwrap_or_default()).into_owned();
                let v = match v {
                    Reply::Integer(n) => n.to_string(),
                    other => {
                        String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned()
                    }
                };
                let v = match k.as_str() {
                    "age-seconds" => match v.parse::<f64>() {
                        Ok(age) if (0.0..60.0).contains(&age) => "<age>".into(),
                        _ => format!("bad age {v}"),
                    },
                    "client-info" => v
                        .split_whitespace()
                        .filter(|f| f.starts_with("cmd=") || f.starts_with("user="))
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => v,
                };
                row.push(format!("{k}={v}"));
            }
            out.push(row);
        }
        Ok(out)
    }
    let want = entries(oracle.addr()).await?;
    let got = entries(cairn.addr()).await?;
    println!("acl log: redis {want:?}");
    assert_eq!(got, want);
    assert_eq!(want.len(), 3, "grouped as Redis groups them");
    Ok(())
}

/// `ACL CAT <category>` lists, for each of Redis' categories, exactly the
/// commands of Redis' list that cairn has; `ACL GENPASS` has Redis' lengths.
#[tokio::test]
async fn acl_categories_and_genpass_match_redis() -> anyhow::Result<()> {
    let Some(oracle) = RedisOracle::start_or_skip("acl cat")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut r = Conn::connect(oracle.addr()).await?;
    let mut c = Conn::connect(cairn.addr()).await?;
    let names = |rep: &Reply| -> BTreeSet<String> {
        rep.elements()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.as_bytes())
            .map(|b| String::from_utf8_lossy(b).to_ascii_lowercase())
            .collect()
    };
    let have = names(&c.call(&["COMMAND", "LIST"]).await?);
    let cats = r.call(&["ACL", "CAT"]).await?;
    assert_eq!(c.call(&["ACL", "CAT"]).await?, cats);
    let mut compared = 0;
    for cat in names(&cats) {
        let want: BTreeSet<String> = names(&r.call(&["ACL", "CAT", &cat]).await?)
            .intersection(&have)
            .cloned()
            .collect();
        let got = names(&c.call(&["ACL", "CAT", &cat]).await?);
        assert_eq!(got, want, "category {cat}");
        compared += got.len();
    }
    println!("acl cat: {compared} (category, command) pairs equal");
    for bits in [
        None,
        Some("1"),
        Some("5"),
        Some("8"),
        Some("255"),
        Some("4096"),
    ] {
        let mut args = vec!["ACL", "GENPASS"];
        args.extend(bits);
        let len = |rep: Reply| rep.as_bytes().map(<[u8]>::len);
        let (w, g) = (len(r.call(&args).await?), len(c.call(&args).await?));
        assert_eq!(g, w, "{args:?}");
    }
    // Random hex, not a fixed string.
    let a = c.call(&["ACL", "GENPASS"]).await?;
    let b = c.call(&["ACL", "GENPASS"]).await?;
    assert_ne!(a, b);
    let hex = a.as_bytes().unwrap_or_default();
    assert!(
        hex.iter()
            .all(|d| d.is_ascii_hexdigit() && !d.is_ascii_uppercase())
    );
    Ok(())
}

/// An address of this machine that is not loopback, found from the route
/// to a public address (a UDP `connect` sends nothing).
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Reads until the server closes the connection.
async fn read_to_close(addr: std::net::SocketAddr, send: &[u8]) -> anyhow::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(send).await?;
    let mut out = Vec::new();
    let read = s.read_to_end(&mut out);
    match tokio::time::timeout(std::time::Duration::from_secs(10), read).await {
        Ok(Ok(_)) => Ok(out),
        // A reset after the refusal was written still delivered it.
        Ok(Err(e)) if !out.is_empty() => {
            println!("connection reset after the reply: {e}");
            Ok(out)
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!("the connection stayed open; read so far: {out:?}"),
    }
}

/// Protected mode as Redis 7.0.15: a peer that is not loopback gets
/// Redis' `-DENIED` text (recorded from redis-server 7.0.15 connected to
/// over eth0) and is closed while the default user has no password; a
/// password or `protected-mode no` lets it in; loopback is always served.
#[tokio::test]
async fn protected_mode_refuses_remote_peers_without_a_password() -> anyhow::Result<()> {
    const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";
    let Some(ip) = non_loopback_ip() else {
        if std::env::var("CI").is_ok() {
            bail!("protected mode: this machine has no non-loopback address to connect from");
        }
        println!("skipped: protected mode needs a non-loopback address on this machine");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let server = cairn_server::Server::builder()
        .enable_debug_command(cairn_server::ProtectedAction::Yes)
        .bind(std::net::IpAddr::from([0, 0, 0, 0]))
        .port(0)
        .persistence(false)
        .data_dir(dir.path())
        .build()
        .start()
        .await?;
    let port = server.addr().port();
    let remote = std::net::SocketAddr::new(ip, port);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(read_to_close(remote, b"PING\r\n").await?, DENIED);
    let mut admin = Conn::connect(local).await?;
    assert_eq!(admin.call(&["PING"]).await?, Reply::Simple("PONG".into()));
    // A password lets the remote peer in (to authenticate).
    admin.call(&["CONFIG", "SET", "requirepass", "pw"]).await?;
    let mut c = Conn::connect(remote).await?;
    assert!(c.call(&["PING"]).await?.is_error(), "NOAUTH");
    assert_eq!(c.call(&["AUTH", "pw"]).await?, Reply::Simple("OK".into()));
    // So does turning protected mode off.
    admin.call(&["CONFIG", "SET", "requirepass", ""]).await?;
    assert_eq!(read_to_close(remote, b"PING\r\n").await?, DENIED);
    admin
        .call(&["CONFIG", "SET", "protected-mode", "no"])
        .await?;
    let mut c = Conn::connect(remote).await?;
    assert_eq!(c.call(&["PING"]).await?, Reply::Simple("PONG".into()));
    println!(
        "protected mode: peer {ip} refused, then admitted with a password and with protected-mode no"
    );
    server.shutdown().await?;
    Ok(())
}
