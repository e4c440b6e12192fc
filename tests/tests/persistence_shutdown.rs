//! Graceful shutdown: with `snapshot_on_shutdown` every write made before
//! the shutdown is restored; without it, only the last snapshot's data.

use std::time::Duration;

use anyhow::ensure;
use cairn_tests::data::Spec;
use cairn_tests::fixtures;

#[test]
fn should_restore_every_write_before_shutdown_when_snapshot_on_shutdown_is_true()
-> anyhow::Result<()> {
    let seed = fixtures::seed("shutdown-save");
    fixtures::run("shutdown-save", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let mut want = Spec::full(seed, 400).generate();
        let node = ctx
            .start(ctx.builder(&dir).snapshot_on_shutdown(true))
            .await?;
        node.populate(&want).await?;
        node.snapshot().await?;
        let later = Spec::small(seed ^ 1, 300).prefixed("later:").generate();
        node.populate(&later).await?;
        want.extend(&later);
        let before = node.handle().persistence_status().saves;
        ensure!(before == 1, "saves before shutdown: {before}");
        node.shutdown().await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        node.check(&want, "after a graceful shutdown").await?;
        node.shutdown_nosave().await
    })
}

#[test]
fn should_save_on_the_shutdown_command() -> anyhow::Result<()> {
    let seed = fixtures::seed("shutdown-command");
    fixtures::run("shutdown-command", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let want = Spec::full(seed, 300).generate();
        let node = ctx
            .start(ctx.builder(&dir).snapshot_on_shutdown(true))
            .await?;
        node.populate(&want).await?;
        let addr = node.addr();
        // The server closes the connection instead of replying.
        let reply = tokio::task::spawn_blocking(move || {
            let mut conn = cairn_tests::data::connect(addr)?;
            anyhow::Ok(
                redis::cmd("SHUTDOWN")
                    .query::<redis::Value>(&mut conn)
                    .is_err(),
            )
        })
        .await??;
        ensure!(reply, "SHUTDOWN answered instead of closing the connection");
        node.wait_stopped(Duration::from_secs(30)).await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        node.check(&want, "after SHUTDOWN").await?;
        node.shutdown_nosave().await
    })
}

#[test]
fn should_restore_only_the_last_snapshot_when_snapshot_on_shutdown_is_false() -> anyhow::Result<()>
{
    let seed = fixtures::seed("shutdown-nosave");
    fixtures::run("shutdown-nosave", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let saved = Spec::full(seed, 400).generate();
        let node = ctx
            .start(ctx.builder(&dir).snapshot_on_shutdown(false))
            .await?;
        node.populate(&saved).await?;
        node.snapshot().await?;
        node.populate(&Spec::small(seed ^ 1, 300).prefixed("lost:").generate())
            .await?;
        let before = node.handle().persistence_status();
        node.shutdown().await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        let after = node.handle().persistence_status();
        ensure!(
            after.current_generation == before.current_generation,
            "a shutdown snapshot was written: generation {:?} -> {:?}",
            before.current_generation,
            after.current_generation
        );
        node.check(&saved, "after a shutdown without snapshot")
            .await?;
        node.shutdown_nosave().await
    })
}
