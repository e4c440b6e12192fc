//! The directory lock (in one process and across processes) and retention.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use cairn_store::{Error, Store};
use common::*;

const CHILD_ENV: &str = "CAIRN_STORE_LOCK_CHILD_DIR";

/// Entry point of the child process of `second_process_is_refused`; run
/// only when that test re-executes this binary with `--ignored`.
#[test]
#[ignore = "child process entry point, run by second_process_is_refused"]
fn lock_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    match Store::open(&dir) {
        Ok(_) => println!("CHILD: opened"),
        Err(e @ Error::Locked { .. }) => println!("CHILD: locked: {e}"),
        Err(e) => println!("CHILD: other error: {e}"),
    }
}

#[test]
fn second_open_in_one_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    match &err {
        Error::Locked { dir: d } => assert_eq!(d, dir.path()),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    // A writer keeps the lock alive after the Store handle is gone.
    let w = store.begin().unwrap();
    drop(store);
    assert!(matches!(Store::open(dir.path()), Err(Error::Locked { .. })));
    drop(w);
    let store = Store::open(dir.path()).unwrap();
    drop(store);
}

#[test]
fn second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run_child = || {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "lock_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // libtest prints "test lock_child ... " on the same line.
        stdout
            .lines()
            .find_map(|l| l.find("CHILD: ").map(|i| l[i..].to_owned()))
            .unwrap_or_default()
    };
    let store = Store::open(dir.path()).unwrap();
    let line = run_child();
    assert!(line.starts_with("CHILD: locked:"), "{line:?}");
    assert!(line.contains(&dir.path().display().to_string()), "{line:?}");
    drop(store);
    assert_eq!(run_child(), "CHILD: opened");
}

#[cfg(unix)]
#[test]
fn permissions_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    let g = commit(&store, &records(1, 5));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&gen_dir(&data, g)), 0o700);
    assert_eq!(mode(&data.join("CURRENT")), 0o600);
    assert_eq!(mode(&data.join("LOCK")), 0o600);
    assert_eq!(mode(&gen_dir(&data, g).join("SEAL")), 0o600);
}

#[test]
fn retention_keeps_the_newest_n() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let gens: Vec<u64> = (0..5).map(|i| commit(&store, &records(i, 20))).collect();
    assert_eq!(store.generations().unwrap(), vec![gens[4], gens[3]]);
    drop(store);

    let store = Store::builder(dir.path()).retain(3).open().unwrap();
    let more: Vec<u64> = (5..9).map(|i| commit(&store, &records(i, 20))).collect();
    assert_eq!(
        store.generations().unwrap(),
        vec![more[3], more[2], more[1]]
    );
    // Retention never leaves a half-deleted directory behind.
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".deleting")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn retention_never_deletes_the_last_verified_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder(dir.path()).retain(1).open().unwrap();
    let recs = records(1, 30);
    let verified = commit(&store, &recs);
    let (report, _) = load(&store);
    assert_eq!(report.generation, Some(verified));
    drop(store);

    // Survives restarts: the verified generation is recorded on disk.
    let store = Store::builder(dir.path()).retain(1).open().unwrap();
    let a = commit(&store, &records(2, 30));
    let b = commit(&store, &records(3, 30));
    assert_eq!(store.generations().unwrap(), vec![b, verified]);
    assert!(!gen_dir(dir.path(), a).exists());

    // Once a newer one verifies, the old verified one may go.
    let (report, _) = load(&store);
    assert_eq!(report.generation, Some(b));
    let c = commit(&store, &records(4, 30));
    assert_eq!(store.generations().unwrap(), vec![c, b]);
    let d = commit(&store, &records(5, 30));
    assert_eq!(store.generations().unwrap(), vec![d, b]);
    // And with verify-after-write every commit is verified: exactly N kept.
    drop(store);
    let store = Store::builder(dir.path())
        .retain(1)
        .verify_after_write(true)
        .open()
        .unwrap();
    let e = commit(&store, &records(6, 30));
    assert_eq!(store.generations().unwrap(), vec![e]);
}
