//! Real faults of the machine while loading: out of file descriptors
//! (EMFILE, in a child process with a low descriptor limit) and a disk that
//! answers EIO (Linux, root: a file served from an ext4 image on a loop
//! device whose end has been cut off). Neither proves the newest
//! generation damaged, so it must never be quarantined or skipped for an
//! older one: the load stops with the error, the directory is left as it
//! was, and once the fault is gone the same generation loads.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_store::{Error, LoadPolicy, Store};
use common::*;

const CHILD_DIR: &str = "CAIRN_STORE_FD_CHILD_DIR";
const CHILD_FREE: &str = "CAIRN_STORE_FD_CHILD_FREE";
/// The child's descriptor limit: low enough to exhaust quickly.
const FD_LIMIT: u32 = 256;

/// Two committed generations, the newest already loaded once (so
/// `VERIFIED` names it and a successful load rewrites it unchanged).
fn prepared() -> (tempfile::TempDir, u64, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old = commit(&store, &records(1, 3000));
    let recs = records(2, 3000);
    let new = commit(&store, &recs);
    let (report, _) = load(&store);
    assert_eq!(report.generation, Some(new));
    (dir, old, new, recs.len())
}

/// Child entry point of `out_of_file_descriptors_is_not_damage`: opens the
/// store, takes every free descriptor but `CAIRN_STORE_FD_CHILD_FREE`,
/// loads under `Fallback` (the policy that would quarantine) and prints
/// the outcome on one line.
#[test]
#[ignore = "child process entry point, run by out_of_file_descriptors_is_not_damage"]
fn fd_child() {
    let (Ok(dir), Ok(free)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_FREE)) else {
        return;
    };
    let free: usize = free.parse().unwrap();
    let store = Store::open(&dir).unwrap();
    let mut held = Vec::new();
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(24), "{exhausted}");
    held.truncate(held.len().saturating_sub(free));
    let (result, sink) = try_load(&store, LoadPolicy::Fallback);
    drop(held);
    match result {
        Ok(r) if r.failures.is_empty() && r.current_damaged.is_none() => println!(
            "CHILD: loaded {} {}",
            r.generation.unwrap_or(0),
            sink.records.len()
        ),
        Ok(r) => println!("CHILD: damage reported {r:?}"),
        Err(Error::Io { path, source }) => println!(
            "CHILD: io {:?} {} at {}",
            source.raw_os_error(),
            source,
            path.display()
        ),
        Err(e) => println!("CHILD: other {e}"),
    }
}

fn run_child(dir: &Path, free: usize) -> String {
    // `ulimit -n` in a shell that then execs the test binary: lowering a
    // limit needs no privilege and no unsafe code here.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "fd_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_FREE, free.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .find_map(|l| l.find("CHILD: ").map(|i| l[i..].to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "child with {free} free descriptors printed no outcome:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Every point of a load that opens a descriptor meets EMFILE in one of
/// the runs (the number of free descriptors grows by one per run until the
/// load succeeds). Each such load must stop with the error and change
/// nothing; none may quarantine or fall back.
#[test]
fn out_of_file_descriptors_is_not_damage() {
    let (dir, _old, new, n) = prepared();
    let before = fingerprint(dir.path());
    let mut failures = std::collections::BTreeSet::new();
    let mut loaded_with = None;
    for free in 0..200 {
        let outcome = run_child(dir.path(), free);
        assert_eq!(
            fingerprint(dir.path()),
            before,
            "{free} free descriptors: the directory changed ({outcome})"
        );
        if outcome.starts_with("CHILD: loaded") {
            assert_eq!(outcome, format!("CHILD: loaded {new} {n}"));
            loaded_with = Some(free);
            break;
        }
        assert!(
            outcome.starts_with("CHILD: io Some(24)") || outcome.starts_with("CHILD: io Some(23)"),
            "{free} free descriptors: {outcome}"
        );
        // The path tells where the load was stopped.
        failures.insert(outcome.rsplit(" at ").next().unwrap_or_default().to_owned());
    }
    println!(
        "out_of_file_descriptors_is_not_damage: loaded with {loaded_with:?} free descriptors; \
         stopped by EMFILE at {} distinct places: {failures:?}",
        failures.len()
    );
    assert!(loaded_with.is_some(), "never loaded: {failures:?}");
    assert!(
        failures.len() >= 2,
        "EMFILE was met at too few points of the load to mean anything: {failures:?}"
    );
}

/// An ext4 image on a loop device, mounted read-only, holding one file
/// that is bind-mounted over a file of the data directory; its blocks can
/// be cut off the end of the device (reads then fail with EIO in the
/// kernel's block layer) and put back. Everything is undone on drop.
struct FaultyFile {
    work: tempfile::TempDir,
    loop_dev: String,
    target: PathBuf,
    cut_at: u64,
    tail: Option<Vec<u8>>,
    mounted: bool,
    bound: bool,
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl FaultyFile {
    /// Serves `target` (a file) from its own loop device.
    fn over(target: &Path) -> Result<FaultyFile, String> {
        let work = tempfile::tempdir().map_err(|e| e.to_string())?;
        let img = work.path().join("img");
        let mnt = work.path().join("mnt");
        std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        let len = std::fs::metadata(target).map_err(|e| e.to_string())?.len();
        let size = (len + (8 << 20)).to_string();
        sh(&["truncate", "-s", &size, img.to_str().unwrap()])?;
        let loop_dev = sh(&["losetup", "-f", "--show", img.to_str().unwrap()])?
            .trim()
            .to_owned();
        let mut f = FaultyFile {
            work,
            loop_dev,
            target: target.to_path_buf(),
            cut_at: 0,
            tail: None,
            mounted: false,
            bound: false,
        };
        let m = mnt.to_str().unwrap();
        sh(&["mkfs.ext4", "-q", "-O", "^has_journal", &f.loop_dev])?;
        sh(&["mount", &f.loop_dev, m])?;
        f.mounted = true;
        let served = mnt.join("served");
        std::fs::copy(target, &served).map_err(|e| e.to_string())?;
        sh(&["sync", "-f", served.to_str().unwrap()])?;
        // Remounted read-only: a fresh page cache, so reads go to the
        // device, and no write (atime, journal) ever reaches the cut end.
        sh(&["umount", m])?;
        f.mounted = false;
        sh(&["mount", "-o", "ro,noatime", &f.loop_dev, m])?;
        f.mounted = true;
        let map = sh(&["filefrag", "-v", served.to_str().unwrap()])?;
        let block: u64 = map
            .split("blocks of ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no block size in filefrag output:\n{map}"))?;
        let first: u64 = map
            .lines()
            .find(|l| l.trim_start().starts_with("0:"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|s| s.trim_end_matches('.').parse().ok())
            .ok_or_else(|| format!("no first extent in filefrag output:\n{map}"))?;
        f.cut_at = first * block;
        sh(&[
            "mount",
            "--bind",
            served.to_str().unwrap(),
            target.to_str().unwrap(),
        ])?;
        f.bound = true;
        Ok(f)
    }

    fn img(&self) -> PathBuf {
        self.work.path().join("img")
    }

    /// Cuts the device before the file's first block.
    fn break_it(&mut self) {
        let bytes = std::fs::read(self.img()).unwrap();
        self.tail = Some(bytes[self.cut_at as usize..].to_vec());
        let img = std::fs::OpenOptions::new()
            .write(true)
            .open(self.img())
            .unwrap();
        img.set_len(self.cut_at).unwrap();
        img.sync_all().unwrap();
        sh(&["losetup", "-c", &self.loop_dev]).unwrap();
    }

    /// Puts the cut blocks back.
    fn repair(&mut self) {
        let Some(tail) = self.tail.take() else { return };
        use std::io::{Seek, SeekFrom, Write};
        let mut img = std::fs::OpenOptions::new()
            .write(true)
            .open(self.img())
            .unwrap();
        img.seek(SeekFrom::Start(self.cut_at)).unwrap();
        img.write_all(&tail).unwrap();
        img.sync_all().unwrap();
        sh(&["losetup", "-c", &self.loop_dev]).unwrap();
    }
}

impl Drop for FaultyFile {
    fn drop(&mut self) {
        self.repair();
        if self.bound
            && let Err(e) = sh(&["umount", self.target.to_str().unwrap_or_default()])
        {
            eprintln!("{e}");
        }
        if self.mounted
            && let Err(e) = sh(&[
                "umount",
                self.work.path().join("mnt").to_str().unwrap_or_default(),
            ])
        {
            eprintln!("{e}");
        }
        // Whatever is still mounted from the device (the bind mount moves
        // with its directory if a broken build of the store quarantined the
        // generation), newest first, so the device can go.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for line in mounts.lines().rev() {
            let mut fields = line.split_whitespace();
            if fields.next() == Some(self.loop_dev.as_str())
                && let Some(point) = fields.next()
                && let Err(e) = sh(&["umount", point])
            {
                eprintln!("{e}");
            }
        }
        if let Err(e) = sh(&["losetup", "-d", &self.loop_dev]) {
            // Gone already when the last unmount released it (autoclear).
            if !e.contains("No such device") {
                eprintln!("{e}");
            }
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn eio_on_the_newest_generation_is_not_damage() {
    if !is_root() {
        skip("needs root for a loop device and mounts");
        return;
    }
    let (dir, _old, new, n) = prepared();
    let before = fingerprint(dir.path());
    let victim = table_files(&gen_dir(dir.path(), new)).remove(0);
    let mut faulty = match FaultyFile::over(&victim) {
        Ok(f) => f,
        Err(e) => {
            skip(&format!("cannot set up a loop device here: {e}"));
            return;
        }
    };
    faulty.break_it();
    let premise = std::fs::read(&victim).unwrap_err();
    assert_eq!(premise.raw_os_error(), Some(5), "not EIO: {premise}");

    for policy in [LoadPolicy::Fallback, LoadPolicy::Empty, LoadPolicy::Refuse] {
        let store = Store::open(dir.path()).unwrap();
        let (result, sink) = try_load(&store, policy);
        match &result {
            Err(Error::Io { path, source }) => {
                println!("{policy:?}: {}", result.as_ref().unwrap_err());
                assert_eq!(source.raw_os_error(), Some(5), "{source}");
                assert_eq!(path, &victim);
            }
            other => panic!("{policy:?}: expected the EIO, got {other:?}"),
        }
        assert!(sink.records.is_empty());
        assert!(quarantined(dir.path()).is_empty(), "{policy:?}");
        assert!(gen_dir(dir.path(), new).is_dir());
    }

    // The fault clears: the same generation loads, nothing was lost.
    faulty.repair();
    let store = Store::open(dir.path()).unwrap();
    let (result, sink) = try_load(&store, LoadPolicy::Refuse);
    let report = result.unwrap();
    assert_eq!(report.generation, Some(new));
    assert_eq!(sink.records.len(), n);
    drop(store);
    drop(faulty);
    assert_eq!(fingerprint(dir.path()), before);
}
