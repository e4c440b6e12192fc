//! Persistence through the `cairn-server` binary: signals, SIGKILL after a
//! BGSAVE, SHUTDOWN, and the log lines operators rely on.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;

fn args(dir: &std::path::Path) -> Vec<String> {
    vec![
        "--data-dir".into(),
        dir.display().to_string(),
        "--snapshot-interval".into(),
        "1h".into(),
    ]
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Binary {
    let mut a: Vec<String> = args(dir);
    a.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    Binary::start(&refs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_saves_and_the_data_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(&dir, &[]);
    assert!(server.log_contains("no snapshot found, starting empty"));
    let mut con = connect(server.addr).await;
    let keys = write_dataset(&mut con, None).await;
    let per_db = (keys / 3) as i64;
    drop(con);
    server.signal(SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    assert!(server.log_contains("Received SIGTERM scheduling shutdown"));
    assert!(
        server.log_contains("snapshot committed generation=1"),
        "{:?}",
        server.log.lock().unwrap()
    );
    assert!(server.log_contains("ready to exit"));

    let mut server = start(&dir, &[]);
    assert!(
        server.log_contains(&format!("restored generation=1 keys={keys} expired=0")),
        "{:?}",
        server.log.lock().unwrap()
    );
    let mut con = connect(server.addr).await;
    check_dataset(&mut con, per_db).await;
    drop(con);
    // SIGINT behaves the same.
    server.signal(SIGINT);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_bgsave_restarts_with_exactly_that_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A zero threshold makes every snapshot "slow": checks the WARN line.
    let mut server = start(&dir, &["--slow-snapshot-threshold", "0s"]);
    let mut con = connect(server.addr).await;
    for i in 0..1000 {
        let _: () = cmd(&mut con, &["SET", &format!("saved:{i}"), &i.to_string()]).await;
    }
    let _: () = cmd(&mut con, &["SELECT", "7"]).await;
    let _: () = cmd(&mut con, &["SET", "in-db-7", "x", "EX", "3600"]).await;
    assert_eq!(
        raw(server.addr, &["BGSAVE"]).await.unwrap(),
        "+Background saving started"
    );
    let i = wait_bgsave_ok(&mut con).await;
    assert_eq!(i["cairn_last_snapshot_keys"], "1001");
    assert!(
        server.log_contains("snapshot committed generation=1 keys=1001 bytes="),
        "{:?}",
        server.log.lock().unwrap()
    );
    assert!(
        server.log_contains("slow snapshot"),
        "{:?}",
        server.log.lock().unwrap()
    );
    // Written after the snapshot: must be gone after the crash.
    let _: () = cmd(&mut con, &["SET", "lost", "1"]).await;
    let _: () = cmd(&mut con, &["SELECT", "0"]).await;
    let _: () = cmd(&mut con, &["SET", "saved:0", "overwritten"]).await;
    drop(con);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = start(&dir, &[]);
    let mut con = connect(server.addr).await;
    let n: i64 = cmd(&mut con, &["DBSIZE"]).await;
    assert_eq!(n, 1000);
    let v: String = cmd(&mut con, &["GET", "saved:0"]).await;
    assert_eq!(v, "0");
    let v: String = cmd(&mut con, &["GET", "saved:999"]).await;
    assert_eq!(v, "999");
    let _: () = cmd(&mut con, &["SELECT", "7"]).await;
    let n: i64 = cmd(&mut con, &["EXISTS", "in-db-7", "lost"]).await;
    assert_eq!(n, 1);
    let ttl: i64 = cmd(&mut con, &["TTL", "in-db-7"]).await;
    assert!(ttl > 3500 && ttl <= 3600, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_command_exits_zero_and_expired_keys_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(&dir, &[]);
    let mut con = connect(server.addr).await;
    let deadline = now_ms() + 1500;
    for i in 0..3 {
        let _: () = cmd(&mut con, &["SET", &format!("short:{i}"), "v"]).await;
        let _: i64 = cmd(
            &mut con,
            &["PEXPIREAT", &format!("short:{i}"), &deadline.to_string()],
        )
        .await;
    }
    let _: () = cmd(&mut con, &["SET", "stays", "v"]).await;
    // The shutdown snapshot has the short keys (not expired yet).
    assert_eq!(raw(server.addr, &["SHUTDOWN"]).await, None);
    assert!(
        now_ms() < deadline,
        "shutdown too slow for this test's deadline"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    assert!(
        server.log_contains("snapshot committed generation=1 keys=4"),
        "{:?}",
        server.log.lock().unwrap()
    );
    let wait = deadline + 50 - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let server = start(&dir, &[]);
    assert!(
        server.log_contains("restored generation=1 keys=1 expired=3"),
        "{:?}",
        server.log.lock().unwrap()
    );
    let mut con = connect(server.addr).await;
    let i = info(&mut con, "persistence").await;
    assert_eq!(i["rdb_last_load_keys_expired"], "3");
    assert_eq!(i["rdb_last_load_keys_loaded"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_false_binary_touches_no_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never");
    let mut server = start(&dir, &["--persistence", "false"]);
    let mut con = connect(server.addr).await;
    let _: () = cmd(&mut con, &["SET", "k", "v"]).await;
    let e = cmd_err(&mut con, &["BGSAVE"]).await;
    assert!(e.contains("persistence is disabled"), "{e}");
    drop(con);
    server.signal(SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    assert!(!dir.exists());
}

/// Issue #13, defect 3: when the shutdown snapshot fails, a signal leaves
/// the server running (Redis' default), and `shutdown-on-sigterm` gives a
/// supervisor the way out. The commit is made to fail with a real I/O
/// error: a directory where the commit writes `CURRENT.tmp`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_sigterm_decides_what_a_failed_shutdown_snapshot_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(&dir, &[]);
    let mut con = connect(server.addr).await;
    let _: () = cmd(&mut con, &["SET", "k", "v"]).await;
    std::fs::create_dir_all(dir.join("CURRENT.tmp").join("blocker")).unwrap();

    // default: the snapshot fails and the server keeps serving.
    let value: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "shutdown-on-sigterm"]).await;
    assert_eq!(value, ["shutdown-on-sigterm", "default"]);
    server.signal(SIGTERM);
    assert!(server.log_contains("Received SIGTERM scheduling shutdown"));
    assert!(
        server.log_contains("SIGTERM received but errors trying to shut down the server"),
        "{:?}",
        server.log.lock().unwrap()
    );
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    // Reads are served (PING and writes get -MISCONF, as in Redis).
    let v: String = cmd(&mut con, &["GET", "k"]).await;
    assert_eq!(v, "v");
    let i = info(&mut con, "persistence").await;
    assert_eq!(i["rdb_last_bgsave_status"], "err", "{i:?}");

    // Redis' validation and canonical form.
    let e = cmd_err(
        &mut con,
        &["CONFIG", "SET", "shutdown-on-sigterm", "save nosave"],
    )
    .await;
    assert!(
        e.contains("SAVE and NOSAVE can't be used simultaneously"),
        "{e}"
    );
    let _: () = cmd(
        &mut con,
        &["CONFIG", "SET", "shutdown-on-sigterm", "force NOW"],
    )
    .await;
    let value: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "shutdown-on-sigterm"]).await;
    assert_eq!(value, ["shutdown-on-sigterm", "now force"]);

    // force: the snapshot is tried, fails, and the server stops anyway.
    drop(con);
    server.signal(SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    assert!(server.log_contains("stopping anyway (FORCE)"));
    assert!(server.log_contains("ready to exit"));

    // nosave from the command line: no snapshot is attempted at all.
    std::fs::remove_dir_all(dir.join("CURRENT.tmp")).unwrap();
    let mut server = start(&dir, &["--shutdown-on-sigterm", "nosave"]);
    let mut con = connect(server.addr).await;
    let _: () = cmd(&mut con, &["SET", "unsaved", "1"]).await;
    drop(con);
    server.signal(SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    let log = server.log.lock().unwrap().clone();
    assert!(
        !log.iter().any(|l| l.contains("snapshot committed")),
        "nosave takes no snapshot: {log:?}"
    );
}

/// The binary runs on the counted system allocator: `used_memory` is what
/// cairn holds, so it follows a large value in and out, and differs from
/// the resident set size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_memory_counts_what_the_binary_allocates() {
    let server = Binary::start(&["--persistence", "false"]);
    let mut con = connect(server.addr).await;
    let used = |i: &std::collections::HashMap<String, String>| -> i64 {
        i["used_memory"].parse().unwrap()
    };
    let before = info(&mut con, "memory").await;
    assert_eq!(before["mem_allocator"], "libc", "{before:?}");
    const BIG: i64 = 16 << 20;
    let _: i64 = cmd(&mut con, &["SETRANGE", "big", &(BIG - 1).to_string(), "x"]).await;
    let during = info(&mut con, "memory").await;
    assert!(
        used(&during) >= used(&before) + BIG,
        "a 16 MiB value is counted: {before:?} then {during:?}"
    );
    let _: i64 = cmd(&mut con, &["DEL", "big"]).await;
    let after = info(&mut con, "memory").await;
    assert!(
        used(&after) <= used(&during) - BIG + (1 << 20),
        "and uncounted when deleted: {during:?} then {after:?}"
    );
    if cfg!(target_os = "linux") {
        assert_ne!(
            during["used_memory"], during["used_memory_rss"],
            "{during:?}"
        );
    }
}

/// SIGHUP is ignored as Redis ignores it: the server keeps serving, its data
/// intact, and a later SIGTERM still saves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_ignored() {
    const SIGHUP: i32 = 1;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(&dir, &[]);
    let mut con = connect(server.addr).await;
    let _: () = cmd(&mut con, &["SET", "k", "v"]).await;
    server.signal(SIGHUP);
    assert!(server.log_contains("Received SIGHUP, ignored"));
    let v: String = cmd(&mut con, &["GET", "k"]).await;
    assert_eq!(v, "v");
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    server.signal(SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    assert!(server.log_contains("snapshot committed generation=1"));
}

/// The open-file limit of a process, from `/proc/<pid>/limits`.
#[cfg(target_os = "linux")]
fn open_files_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    line.split_whitespace().nth(3).unwrap().to_string()
}

/// `maxclients` against the open-file limit, as redis-server 7.0.15 (which
/// under `ulimit -n 200` with `--maxclients 1000` logs the same three
/// warnings, reports `maxclients` 168, and refuses `CONFIG SET maxclients
/// 2000000` with "... try with 168"); a soft limit under a higher hard
/// one is raised to maxclients + 32.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_follows_the_open_file_limit() {
    let server = Binary::start_with_ulimit(
        &["-n 200"],
        &["--persistence", "false", "--maxclients", "1000"],
    );
    assert!(server.log_contains(
        "You requested maxclients of 1000 requiring at least 1032 max file descriptors."
    ));
    assert!(
        server.log_contains("Server can't set maximum open files to 1032 because of OS error:")
    );
    assert!(server.log_contains(
        "Current maximum open files is 200. maxclients has been reduced to 168 to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    ));
    let mut con = connect(server.addr).await;
    let got: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "maxclients"]).await;
    assert_eq!(got, ["maxclients", "168"]);
    assert_eq!(
        cmd_err(&mut con, &["CONFIG", "SET", "maxclients", "2000000"]).await,
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with 168"
    );
    let got: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "maxclients"]).await;
    assert_eq!(got, ["maxclients", "168"]);
    let _: () = cmd(&mut con, &["CONFIG", "SET", "maxclients", "100"]).await;
    drop(server);

    // A soft limit below a sufficient hard one is raised.
    let hard = open_files_limit(std::process::id());
    if hard.parse::<u64>().is_ok_and(|h| h >= 1032) {
        let server = Binary::start_with_ulimit(
            &[&format!("-Hn {hard}"), "-Sn 100"],
            &["--persistence", "false", "--maxclients", "1000"],
        );
        assert!(server.log_contains(
            "Increased maximum number of open files to 1032 (it was originally set to 100)."
        ));
        assert_eq!(open_files_limit(server.child.id()), "1032");
        let mut con = connect(server.addr).await;
        let got: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "maxclients"]).await;
        assert_eq!(got, ["maxclients", "1000"]);
    } else {
        println!("hard open-file limit {hard}: the raising half is not exercised");
    }
}
