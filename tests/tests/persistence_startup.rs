//! Startup: restore before ready, empty without a snapshot, empty and
//! untouched with `restore_on_startup = false`; the data directory is
//! created private and a locked one is refused.

use anyhow::{Context, ensure};
use cairn_tests::data::Spec;
use cairn_tests::fixtures;

#[test]
fn should_serve_the_restored_data_as_soon_as_the_server_is_ready() -> anyhow::Result<()> {
    let seed = fixtures::seed("startup-restore");
    fixtures::run("startup-restore", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let want = Spec::full(seed, 600).generate();
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&want).await?;
        node.snapshot().await?;
        node.shutdown_nosave().await?;

        let node = ctx
            .start(ctx.builder(&dir).restore_on_startup(true))
            .await?;
        // The very first command after `start` returned sees everything.
        let info = node.info("persistence").await?;
        ensure!(
            info.get("loading").map(String::as_str) == Some("0"),
            "{info:?}"
        );
        let loaded: usize = info
            .get("rdb_last_load_keys_loaded")
            .context("no rdb_last_load_keys_loaded")?
            .parse()?;
        ensure!(loaded == want.len(), "loaded {loaded}, want {}", want.len());
        let keyspace = node.info("keyspace").await?;
        for (db, n) in want.per_db() {
            let line = keyspace
                .get(&format!("db{db}"))
                .with_context(|| format!("no db{db} in {keyspace:?}"))?;
            ensure!(
                line.starts_with(&format!("keys={n},")),
                "db{db}: {line}, want {n} keys"
            );
        }
        node.check(&want, "first read after start").await?;
        node.shutdown_nosave().await
    })
}

#[test]
fn should_start_empty_without_a_snapshot() -> anyhow::Result<()> {
    fixtures::run("startup-empty", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let node = ctx.start(ctx.builder(&dir)).await?;
        let status = node.handle().persistence_status();
        ensure!(
            status.current_generation.is_none() && status.last_load_keys_loaded == 0,
            "{status:?}"
        );
        ensure!(node.dump().await?.is_empty());
        node.shutdown_nosave().await
    })
}

#[test]
fn should_start_empty_and_leave_the_snapshot_untouched_when_restore_is_off() -> anyhow::Result<()> {
    let seed = fixtures::seed("startup-no-restore");
    fixtures::run("startup-no-restore", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let want = Spec::full(seed, 300).generate();
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&want).await?;
        node.snapshot().await?;
        node.shutdown_nosave().await?;
        let before = fixtures::fingerprint(&dir)?;

        let node = ctx
            .start(ctx.builder(&dir).restore_on_startup(false))
            .await?;
        ensure!(
            node.dump().await?.is_empty(),
            "restore_on_startup=false restored data"
        );
        ensure!(
            fixtures::fingerprint(&dir)? == before,
            "the data directory changed while running"
        );
        node.shutdown_nosave().await?;
        ensure!(
            fixtures::fingerprint(&dir)? == before,
            "the data directory changed"
        );

        let node = ctx.start(ctx.builder(&dir)).await?;
        node.check(&want, "the untouched snapshot").await?;
        node.shutdown_nosave().await
    })
}

#[cfg(unix)]
#[test]
fn should_create_a_missing_data_dir_with_mode_0700() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fixtures::run("startup-mkdir", |ctx| async move {
        let dir = ctx.tempdir()?.join("missing").join("data");
        let node = ctx.start(ctx.builder(&dir)).await?;
        let mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
        ensure!(mode == 0o700, "data dir mode {mode:o}");
        node.snapshot().await?;
        let mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
        ensure!(mode == 0o700, "data dir mode after a snapshot {mode:o}");
        node.shutdown_nosave().await
    })
}

#[test]
fn should_refuse_a_data_dir_locked_by_a_running_server() -> anyhow::Result<()> {
    fixtures::run("startup-locked", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let first = ctx.start(ctx.builder(&dir)).await?;
        first.call::<()>(&["SET", "owner", "first"]).await?;
        let err = match ctx.start(ctx.builder(&dir)).await {
            Ok(second) => {
                second.shutdown_nosave().await?;
                anyhow::bail!("a second server opened a locked data directory");
            }
            Err(e) => format!("{e:#}"),
        };
        println!("second server refused: {err}");
        ensure!(err.to_lowercase().contains("lock"), "unclear error: {err}");
        ensure!(
            err.contains(&dir.display().to_string()),
            "error does not name the directory: {err}"
        );
        // The first one is unaffected, and the lock goes with it.
        let owner: String = first.call(&["GET", "owner"]).await?;
        ensure!(owner == "first");
        first.shutdown_nosave().await?;
        let second = ctx.start(ctx.builder(&dir)).await?;
        second.shutdown_nosave().await
    })
}
