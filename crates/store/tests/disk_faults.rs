//! Real disk faults on Linux as root: a full tmpfs and a read-only remount.
//! Elsewhere the tests print `skipped: <why>`, or fail instead when
//! `CAIRN_REQUIRE_ROOT_TESTS=1` (set by `cargo xtask ci` as root on Linux)
//! says they must run.
#![allow(clippy::unwrap_used)]

mod common;

use cairn_snapshot::{Record, Value};
use cairn_store::Store;
use common::*;

#[cfg(target_os = "linux")]
mod mount {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A small tmpfs, unmounted on drop (also when the test fails).
    pub struct Tmpfs {
        pub path: PathBuf,
        _parent: tempfile::TempDir,
    }

    pub fn is_root() -> bool {
        // `id -u` rather than `libc::geteuid`: the workspace forbids unsafe
        // code, tests included.
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    fn run(args: &[&str]) -> Result<(), String> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    impl Tmpfs {
        pub fn mount(size: &str) -> Result<Tmpfs, String> {
            let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
            let path = parent.path().join("mnt");
            std::fs::create_dir(&path).map_err(|e| e.to_string())?;
            run(&[
                "mount",
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                path.to_str().unwrap_or_default(),
            ])?;
            Ok(Tmpfs {
                path,
                _parent: parent,
            })
        }

        pub fn remount(&self, mode: &str) {
            run(&[
                "mount",
                "-o",
                &format!("remount,{mode}"),
                self.path.to_str().unwrap(),
            ])
            .unwrap();
        }

        pub fn path(&self) -> &Path {
            &self.path
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            if let Err(e) = run(&["umount", self.path.to_str().unwrap_or_default()]) {
                eprintln!("umount {} failed: {e}", self.path.display());
            }
        }
    }
}

/// Prints `skipped: <why>`, or fails the test when root tests are
/// required: skipped is not passed.
fn skip(why: &str) {
    assert!(
        !std::env::var("CAIRN_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1"),
        "{why}, and CAIRN_REQUIRE_ROOT_TESTS=1 says this test must run"
    );
    println!("skipped: {why}");
}

/// Records with incompressible values of `size` bytes in total (roughly).
fn bulky(tag: u8, total: usize) -> Vec<Record> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(tag);
    (0..total / 1000)
        .map(|i| {
            let v: Vec<u8> = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Record::new(0, format!("b{tag}:{i}"), Value::String(v.into()))
        })
        .collect()
}

fn try_commit(store: &Store, recs: &[Record]) -> Result<u64, cairn_store::Error> {
    let mut w = store.begin()?;
    for r in recs {
        w.write(r)?;
    }
    Ok(w.commit()?.generation)
}

#[cfg(target_os = "linux")]
#[test]
fn full_disk_fails_cleanly_and_recovers() {
    use std::io::Write;
    if !mount::is_root() {
        skip("needs root to mount a tmpfs");
        return;
    }
    let fs = match mount::Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(e) => {
            skip(&format!("cannot mount tmpfs: {e}"));
            return;
        }
    };
    let data = fs.path().join("data");
    let store = Store::open(&data).unwrap();
    let first = bulky(1, 1 << 20);
    let g1 = try_commit(&store, &first).unwrap();

    // Too big for what is left: fails while ingesting.
    let err = try_commit(&store, &bulky(2, 12 << 20)).unwrap_err();
    println!("too-big generation: {err}");
    assert!(
        matches!(
            err,
            cairn_store::Error::Io { .. } | cairn_store::Error::Fjall { .. }
        ),
        "{err}"
    );
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g1));
    assert_eq!(sink.records, first);

    // Completely full (a filler takes the rest): fails at once.
    let filler = fs.path().join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
    }
    let second = bulky(3, 2 << 20);
    let err = try_commit(&store, &second).unwrap_err();
    println!("full disk: {err}");
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g1));
    assert_eq!(sink.records, first);
    let partials = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")
        })
        .count();
    assert_eq!(
        partials, 0,
        "failed writes must not leave partial generations"
    );

    // Space comes back: the very next write commits (no poisoned state).
    std::fs::remove_file(&filler).unwrap();
    let g2 = try_commit(&store, &second).unwrap();
    assert!(g2 > g1);
    drop(store);
    let store = Store::open(&data).unwrap();
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g2));
    assert_eq!(sink.records, second);
}

#[cfg(target_os = "linux")]
#[test]
fn read_only_disk_fails_cleanly_and_recovers() {
    if !mount::is_root() {
        skip("needs root to mount a tmpfs");
        return;
    }
    let fs = match mount::Tmpfs::mount("16m") {
        Ok(fs) => fs,
        Err(e) => {
            skip(&format!("cannot mount tmpfs: {e}"));
            return;
        }
    };
    let data = fs.path().join("data");
    let store = Store::open(&data).unwrap();
    let first = records(1, 2000);
    let g1 = try_commit(&store, &first).unwrap();

    fs.remount("ro");
    let err = try_commit(&store, &records(2, 2000)).unwrap_err();
    println!("read-only disk: {err}");
    assert!(matches!(err, cairn_store::Error::Io { .. }), "{err}");
    // Loading still works from a read-only disk (via a private copy).
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g1));
    assert_eq!(sink.records, first);
    assert!(report.failures.is_empty());
    // A restart on the read-only disk can open and load too.
    drop(store);
    let store = Store::open(&data).unwrap();
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g1));
    assert_eq!(sink.records, first);

    fs.remount("rw");
    let second = records(3, 2000);
    let g2 = try_commit(&store, &second).unwrap();
    assert!(g2 > g1);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g2));
    assert_eq!(sink.records, second);
    drop(store);
}

#[cfg(not(target_os = "linux"))]
#[test]
fn disk_fault_tests_need_linux() {
    skip("full and read-only disk tests need Linux tmpfs and root");
}
