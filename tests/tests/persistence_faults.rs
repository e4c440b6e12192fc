//! Snapshot failures: a read-only file system and a full disk (both real,
//! on a tmpfs this test mounts: Linux as root, skipped elsewhere with a
//! printed reason) and, where no real fault can be made, an obstacle in the
//! commit path. Each time the server keeps serving, the previous snapshot
//! stays intact, INFO reports the failure, and the next snapshot after the
//! fault clears succeeds.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cairn_tests::data::{Dataset, Spec};
use cairn_tests::fixtures::{self, Node};

/// What every failed snapshot must leave behind, checked on a live server.
async fn expect_failure_reported(node: &Node, failures: u64) -> anyhow::Result<String> {
    let status = node.handle().persistence_status();
    ensure!(!status.last_status_ok, "status still ok: {status:?}");
    ensure!(
        status.failures == failures,
        "failures {} want {failures}",
        status.failures
    );
    let error = status.last_error.clone().context("no last_error")?;
    let info = node.info("persistence").await?;
    ensure!(
        info.get("rdb_last_bgsave_status").map(String::as_str) == Some("err"),
        "{info:?}"
    );
    ensure!(
        info.get("cairn_snapshot_failures") == Some(&failures.to_string()),
        "{info:?}"
    );
    let reported = info
        .get("cairn_last_snapshot_error")
        .cloned()
        .unwrap_or_default();
    ensure!(
        !reported.is_empty(),
        "INFO has no cairn_last_snapshot_error: {info:?}"
    );
    // Still serving reads. (PING is refused with MISCONF while writes are,
    // exactly as Redis 7.0 does, so it proves nothing here; ECHO does.)
    let echo: String = node.call(&["ECHO", "still-serving"]).await?;
    ensure!(echo == "still-serving");
    Ok(error)
}

async fn expect_recovered(node: &Node, previous: u64) -> anyhow::Result<()> {
    let snap = node
        .snapshot()
        .await
        .context("the first snapshot after the fault cleared")?;
    ensure!(snap.generation > previous);
    let status = node.handle().persistence_status();
    ensure!(
        status.last_status_ok && status.last_error.is_none(),
        "{status:?}"
    );
    let info = node.info("persistence").await?;
    ensure!(
        info.get("rdb_last_bgsave_status").map(String::as_str) == Some("ok"),
        "{info:?}"
    );
    Ok(())
}

async fn write_refused(node: &Node) -> anyhow::Result<()> {
    match node.call::<()>(&["SET", "refused", "1"]).await {
        Ok(()) => {
            bail!("a write was accepted while snapshots fail (stop_writes_on_snapshot_error)")
        }
        Err(e) if format!("{e:#}").contains("MISCONF") => Ok(()),
        Err(e) => bail!("unexpected error: {e:#}"),
    }
}

async fn restart_and_check(ctx: &fixtures::Ctx, dir: &Path, want: &Dataset) -> anyhow::Result<()> {
    let node = ctx.start(ctx.builder(dir)).await?;
    node.check(want, "after the restart").await?;
    node.shutdown_nosave().await
}

#[cfg(target_os = "linux")]
#[test]
fn should_keep_serving_when_the_data_dir_becomes_read_only() -> anyhow::Result<()> {
    if !fixtures::root_or_skip("read-only data dir")? {
        return Ok(());
    }
    let seed = fixtures::seed("fault-read-only");
    fixtures::run("fault-read-only", |ctx| async move {
        let fs = fixtures::Tmpfs::mount("64m")?;
        let dir = fs.path().join("data");
        let mut want = Spec::full(seed, 300).generate();
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&want).await?;
        let first = node.snapshot().await?.generation;
        let later = Spec::small(seed ^ 1, 100).prefixed("later:").generate();
        node.populate(&later).await?;
        want.extend(&later);
        let before = fixtures::fingerprint(&dir)?;

        fs.set_read_only(true)?;
        let err = node
            .snapshot()
            .await
            .err()
            .context("a snapshot succeeded on a read-only file system")?;
        println!("read-only: {err}");
        let error = expect_failure_reported(&node, 1).await?;
        ensure!(
            error.to_lowercase().contains("read-only"),
            "unclear error: {error}"
        );
        node.check(&want, "while the disk is read-only").await?;
        write_refused(&node).await?;
        ensure!(
            fixtures::fingerprint(&dir)? == before,
            "the previous snapshot changed"
        );

        fs.set_read_only(false)?;
        expect_recovered(&node, first).await?;
        node.call::<()>(&["SET", "accepted", "again"]).await?;
        want.insert(
            0,
            "accepted",
            cairn_tests::data::Val::Str(b"again".to_vec()),
            None,
        );
        node.shutdown().await?;
        restart_and_check(&ctx, &dir, &want).await
    })
}

#[cfg(target_os = "linux")]
#[test]
fn should_keep_serving_when_the_disk_is_full() -> anyhow::Result<()> {
    use std::io::Write;
    if !fixtures::root_or_skip("full disk")? {
        return Ok(());
    }
    let seed = fixtures::seed("fault-disk-full");
    fixtures::run("fault-disk-full", |ctx| async move {
        let fs = fixtures::Tmpfs::mount("48m")?;
        let dir = fs.path().join("data");
        let mut want = Spec::full(seed, 300).generate();
        // Writes go on during the fault (stop_writes_on_snapshot_error off).
        let node = ctx
            .start(ctx.builder(&dir).stop_writes_on_snapshot_error(false))
            .await?;
        node.populate(&want).await?;
        let first = node.snapshot().await?.generation;
        let before = fixtures::fingerprint(&dir)?;

        let filler = fs.path().join("filler");
        {
            let mut f = std::fs::File::create(&filler)?;
            let block = vec![0x5a_u8; 256 * 1024];
            while f.write_all(&block).is_ok() {}
        }
        let later = Spec::small(seed ^ 1, 200).prefixed("later:").generate();
        node.populate(&later).await?;
        want.extend(&later);
        let err = node
            .snapshot()
            .await
            .err()
            .context("a snapshot succeeded on a full disk")?;
        println!("disk full: {err}");
        let error = expect_failure_reported(&node, 1).await?;
        ensure!(
            error.to_lowercase().contains("space") || error.to_lowercase().contains("full"),
            "unclear error: {error}"
        );
        node.call::<()>(&["SET", "during", "fault"]).await?;
        want.insert(
            0,
            "during",
            cairn_tests::data::Val::Str(b"fault".to_vec()),
            None,
        );
        node.check(&want, "while the disk is full").await?;
        ensure!(
            fixtures::fingerprint(&dir)? == before,
            "the failed snapshot left something behind"
        );

        std::fs::remove_file(&filler)?;
        expect_recovered(&node, first).await?;
        node.shutdown_nosave().await?;
        restart_and_check(&ctx, &dir, &want).await
    })
}

/// Portable (and rootless): a directory where the commit writes
/// `CURRENT.tmp` makes the very last step of a snapshot fail with a real
/// I/O error, after the whole generation was written.
#[test]
fn should_keep_serving_when_the_commit_fails() -> anyhow::Result<()> {
    let seed = fixtures::seed("fault-commit");
    fixtures::run("fault-commit", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let mut want = Spec::full(seed, 300).generate();
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&want).await?;
        let first = node.snapshot().await?.generation;
        let later = Spec::small(seed ^ 1, 100).prefixed("later:").generate();
        node.populate(&later).await?;
        want.extend(&later);
        let before = fixtures::fingerprint(&dir)?;

        let obstacle = dir.join("CURRENT.tmp");
        std::fs::create_dir(&obstacle)?;
        // Through the wire this time: BGSAVE, then its outcome event.
        let mut events = node.handle().subscribe_snapshots();
        let started: String = node.call(&["BGSAVE"]).await?;
        ensure!(started.contains("started"), "BGSAVE: {started}");
        let outcome = fixtures::next_snapshot(&mut events, Duration::from_secs(60)).await?;
        let err = outcome
            .result
            .err()
            .context("the snapshot committed through an obstacle")?;
        println!("injected: {err}");
        expect_failure_reported(&node, 1).await?;
        write_refused(&node).await?;
        match node.call::<String>(&["SAVE"]).await {
            Ok(r) => bail!("SAVE succeeded during the fault: {r}"),
            Err(e) => println!("SAVE during the fault: {e:#}"),
        }
        expect_failure_reported(&node, 2).await?;
        node.check(&want, "during the fault").await?;

        std::fs::remove_dir(&obstacle)?;
        ensure!(
            fixtures::fingerprint(&dir)? == before,
            "the failed snapshots left something behind"
        );
        expect_recovered(&node, first).await?;
        node.shutdown_nosave().await?;
        restart_and_check(&ctx, &dir, &want).await
    })
}
