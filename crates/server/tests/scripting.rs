//! Scripting through the `cairn-server` binary: function libraries are part
//! of the dataset (snapshots save them, restarts and SIGKILL-after-BGSAVE
//! restore them, FLUSHALL keeps them, the script cache is not saved), and a
//! script is one atomic step for snapshots.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

fn start(dir: &std::path::Path) -> Binary {
    let d = dir.display().to_string();
    Binary::start(&["--data-dir", &d, "--snapshot-interval", "1h"])
}

const LIB: &str = "#!lua name=limiter\n\
redis.register_function('hit', function(keys, args)\n\
  local n = redis.call('incr', keys[1])\n\
  if n == 1 then redis.call('expire', keys[1], args[1]) end\n\
  return n\n\
end)\n\
redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a counter'}";

const LIB2: &str = "#!lua name=other\nredis.register_function('two', function() return 2 end)";

async fn function_list(con: &mut redis::aio::MultiplexedConnection) -> redis::Value {
    cmd(con, &["FUNCTION", "LIST", "WITHCODE"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_survive_restart_and_kill_9_after_bgsave() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(&dir);
    let mut con = connect(server.addr).await;
    let name: String = cmd(&mut con, &["FUNCTION", "LOAD", LIB]).await;
    assert_eq!(name, "limiter");
    let name: String = cmd(&mut con, &["FUNCTION", "LOAD", LIB2]).await;
    assert_eq!(name, "other");
    let n: i64 = cmd(&mut con, &["FCALL", "hit", "1", "user:1", "60"]).await;
    assert_eq!(n, 1);
    let sha: String = cmd(&mut con, &["SCRIPT", "LOAD", "return 'cached'"]).await;
    // FLUSHALL removes keys, not functions (Redis 7.0).
    let _: () = cmd(&mut con, &["FLUSHALL"]).await;
    let before = function_list(&mut con).await;
    let n: i64 = cmd(&mut con, &["FCALL", "hit", "1", "user:1", "60"]).await;
    assert_eq!(n, 1);

    // Graceful restart: SIGTERM saves.
    drop(con);
    server.signal(15);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    let mut server = start(&dir);
    let mut con = connect(server.addr).await;
    assert_eq!(function_list(&mut con).await, before);
    let n: i64 = cmd(&mut con, &["FCALL", "hit", "1", "user:1", "60"]).await;
    assert_eq!(n, 2);
    // The script cache is not part of the dataset.
    let e = cmd_err(&mut con, &["EVALSHA", &sha, "0"]).await;
    assert!(e.starts_with("NOSCRIPT"), "{e}");

    // BGSAVE, then changes that the crash must lose.
    assert_eq!(
        raw(server.addr, &["BGSAVE"]).await.unwrap(),
        "+Background saving started"
    );
    wait_bgsave_ok(&mut con).await;
    let _: () = cmd(&mut con, &["FUNCTION", "DELETE", "other"]).await;
    let _: String = cmd(
        &mut con,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=late\nredis.register_function('late', function() return 0 end)",
        ],
    )
    .await;
    drop(con);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = start(&dir);
    let mut con = connect(server.addr).await;
    assert_eq!(function_list(&mut con).await, before);
    let v: i64 = cmd(&mut con, &["FCALL", "two", "0"]).await;
    assert_eq!(v, 2);
    let v: String = cmd(&mut con, &["FCALL_RO", "peek", "1", "user:1"]).await;
    assert_eq!(v, "2");
    // FUNCTION FLUSH removes them, and that is saved too.
    let _: () = cmd(&mut con, &["FUNCTION", "FLUSH"]).await;
    drop(con);
    server.signal(15);
    let mut server = server;
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    let server = start(&dir);
    let mut con = connect(server.addr).await;
    let list: Vec<redis::Value> = cmd(&mut con, &["FUNCTION", "LIST"]).await;
    assert!(list.is_empty(), "{list:?}");
}

/// Scripts each writing `KEYS_PER_SCRIPT` keys run back to back on one
/// connection while another asks for BGSAVE over and over; the server is
/// killed (SIGKILL) right after a snapshot taken while scripts were still
/// running. After the restart every script's keys are there all or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_holds_all_of_a_script_or_none_of_it() {
    const SCRIPTS: usize = 60;
    const KEYS_PER_SCRIPT: usize = 5000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(&dir);
    let addr = server.addr;
    let writer = tokio::spawn(async move {
        let mut con = connect(addr).await;
        for s in 0..SCRIPTS {
            let mut c = redis::cmd("EVAL");
            c.arg("for i = 1, tonumber(ARGV[2]) do redis.call('set', ARGV[1] .. ':' .. i, i) end return tonumber(ARGV[2])")
                .arg(0)
                .arg(format!("s{s}"))
                .arg(KEYS_PER_SCRIPT);
            // The server is killed while this runs: stop at the first error.
            if c.query_async::<i64>(&mut con).await.is_err() {
                break;
            }
        }
    });
    let mut con = connect(addr).await;
    let mut saves = 0;
    while !writer.is_finished() && saves < 3 {
        if raw(addr, &["BGSAVE"]).await.unwrap() == "+Background saving started" {
            wait_bgsave_ok(&mut con).await;
            saves += 1;
        }
    }
    let _: () = cmd(&mut con, &["SET", "lost", "1"]).await;
    drop(con);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = writer.await;

    let server = start(&dir);
    let mut con = connect(server.addr).await;
    let mut complete = 0;
    for s in 0..SCRIPTS {
        let keys: Vec<String> = cmd(&mut con, &["KEYS", &format!("s{s}:*")]).await;
        assert!(
            keys.is_empty() || keys.len() == KEYS_PER_SCRIPT,
            "script {s}: {} of {KEYS_PER_SCRIPT} keys in the snapshot",
            keys.len()
        );
        if !keys.is_empty() {
            complete += 1;
        }
    }
    println!("{saves} snapshots taken while scripts ran; the last holds {complete} whole scripts");
    let n: i64 = cmd(&mut con, &["EXISTS", "lost"]).await;
    assert_eq!(n, 0);
}

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

fn start_volatile() -> Binary {
    Binary::start(&["--persistence", "false"])
}

/// Sends PING on fresh connections until one is answered `want` (the
/// script has passed the threshold); each PING sent earlier waits for the
/// threshold or answers PONG (the script had not started yet).
async fn until_busy(addr: std::net::SocketAddr, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = raw(addr, &["PING"]).await.unwrap();
        if r == want {
            return;
        }
        assert_eq!(r, "+PONG");
        assert!(std::time::Instant::now() < deadline, "never busy");
    }
}

/// Runs `args` on a connection of its own; the error text or the reply.
fn spawn_call(addr: std::net::SocketAddr, args: &[&str]) -> tokio::task::JoinHandle<String> {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::spawn(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        raw_on(stream, &refs).await.unwrap_or_default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_script_answers_busy_past_the_threshold_and_script_kill_stops_it() {
    let server = start_volatile();
    let addr = server.addr;
    assert_eq!(
        raw(addr, &["CONFIG", "SET", "lua-time-limit", "200"])
            .await
            .unwrap(),
        "+OK"
    );
    assert_eq!(
        raw(addr, &["SCRIPT", "KILL"]).await.unwrap(),
        "-NOTBUSY No scripts in execution right now."
    );
    let script = spawn_call(addr, &["EVAL", "while true do end", "0"]);
    until_busy(addr, BUSY_EVAL).await;
    // Only KILL is served meanwhile; the other kind's KILL is refused.
    assert_eq!(raw(addr, &["GET", "k"]).await.unwrap(), BUSY_EVAL);
    assert_eq!(
        raw(addr, &["SCRIPT", "LOAD", "return 1"]).await.unwrap(),
        BUSY_EVAL
    );
    assert_eq!(raw(addr, &["FUNCTION", "KILL"]).await.unwrap(), BUSY_EVAL);
    assert_eq!(raw(addr, &["SCRIPT", "KILL"]).await.unwrap(), "+OK");
    let reply = script.await.unwrap();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: ")
            && reply.ends_with(", on @user_script:1."),
        "{reply}"
    );
    assert_eq!(raw(addr, &["PING"]).await.unwrap(), "+PONG");
    assert_eq!(
        raw(addr, &["SCRIPT", "KILL"]).await.unwrap(),
        "-NOTBUSY No scripts in execution right now."
    );

    // Functions: FUNCTION KILL, and SCRIPT KILL refused.
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(raw(addr, &["FUNCTION", "LOAD", lib]).await.unwrap(), "$4");
    let f = spawn_call(addr, &["FCALL", "spin", "0"]);
    until_busy(addr, BUSY_FUNCTION).await;
    assert_eq!(raw(addr, &["SCRIPT", "KILL"]).await.unwrap(), BUSY_FUNCTION);
    assert_eq!(raw(addr, &["FUNCTION", "KILL"]).await.unwrap(), "+OK");
    let reply = f.await.unwrap();
    assert_eq!(
        reply,
        "-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_wrote_is_unkillable_and_shutdown_nosave_exits() {
    let mut server = start_volatile();
    let addr = server.addr;
    assert_eq!(
        raw(addr, &["CONFIG", "SET", "busy-reply-threshold", "200"])
            .await
            .unwrap(),
        "+OK"
    );
    let _script = spawn_call(
        addr,
        &["EVAL", "redis.call('set', 'x', '1') while true do end", "0"],
    );
    until_busy(addr, BUSY_EVAL).await;
    assert_eq!(
        raw(addr, &["SCRIPT", "KILL"]).await.unwrap(),
        "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
    );
    assert_eq!(raw(addr, &["SHUTDOWN"]).await.unwrap(), BUSY_EVAL);
    assert_eq!(raw(addr, &["SHUTDOWN", "NOSAVE"]).await, None);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
}
