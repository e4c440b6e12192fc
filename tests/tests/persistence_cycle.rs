//! Full cycle: populate, snapshot, stop, start anew on the same directory,
//! restore, and compare everything over TCP (every type, several
//! databases, TTLs, binary and empty keys and values, single-element and
//! chunked collections; 1,000 and 100,000 keys).

use std::time::Duration;

use anyhow::ensure;
use cairn_tests::data::{Dataset, Spec, Val, now_ms};
use cairn_tests::fixtures::{self, Ctx};

async fn full_cycle(ctx: Ctx, want: Dataset) -> anyhow::Result<()> {
    let dir = ctx.tempdir()?.join("data");
    let node = ctx.start(ctx.builder(&dir)).await?;
    node.populate(&want).await?;
    node.check(&want, "before the snapshot").await?;
    let snap = node.snapshot().await?;
    ensure!(
        snap.keys == want.len() as u64,
        "snapshot wrote {} keys, want {}",
        snap.keys,
        want.len()
    );
    println!(
        "snapshot: generation {} keys {} bytes {} in {:?} (types {:?}, databases {:?})",
        snap.generation,
        snap.keys,
        snap.bytes,
        snap.duration,
        want.per_type(),
        want.per_db()
    );
    node.shutdown_nosave().await?;

    let node = ctx.start(ctx.builder(&dir)).await?;
    let status = node.handle().persistence_status();
    ensure!(
        status.current_generation == Some(snap.generation),
        "restored {:?}",
        status.current_generation
    );
    ensure!(
        status.last_load_keys_loaded == want.len() as u64,
        "loaded {}",
        status.last_load_keys_loaded
    );
    node.check(&want, "after the restart").await?;
    node.shutdown_nosave().await
}

#[test]
fn should_restore_every_type_database_ttl_and_binary_value_of_1000_keys() -> anyhow::Result<()> {
    let seed = fixtures::seed("cycle-1k");
    fixtures::run("cycle-1k", |ctx| {
        full_cycle(ctx, Spec::full(seed, 1000).generate())
    })
}

#[test]
fn should_restore_100000_keys_exactly() -> anyhow::Result<()> {
    let seed = fixtures::seed("cycle-100k");
    let keys = if fixtures::quick() { 20_000 } else { 100_000 };
    fixtures::run("cycle-100k", |ctx| {
        full_cycle(ctx, Spec::small(seed, keys).generate())
    })
}

#[test]
fn should_not_restore_keys_that_expired_while_the_server_was_down() -> anyhow::Result<()> {
    let seed = fixtures::seed("cycle-expired");
    fixtures::run("cycle-expired", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let mut want = Spec::small(seed, 200).generate();
        let soon = now_ms() + 1500;
        let mut doomed = Dataset::default();
        for i in 0..50 {
            doomed.insert(
                i % 3,
                format!("doomed:{i}"),
                Val::Str(b"bye".to_vec()),
                Some(soon),
            );
        }
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&want).await?;
        node.populate(&doomed).await?;
        let snap = node.snapshot().await?;
        ensure!(snap.keys == (want.len() + doomed.len()) as u64);
        node.shutdown_nosave().await?;
        // Not synchronisation: the keys must really be past their expiry.
        let wait = u64::try_from(soon - now_ms() + 50).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait)).await;

        let node = ctx.start(ctx.builder(&dir)).await?;
        let status = node.handle().persistence_status();
        ensure!(
            status.last_load_keys_expired == doomed.len() as u64,
            "expired at load: {}",
            status.last_load_keys_expired
        );
        ensure!(
            status.last_load_keys_loaded == want.len() as u64,
            "loaded: {}",
            status.last_load_keys_loaded
        );
        let info = node.info("persistence").await?;
        ensure!(
            info.get("rdb_last_load_keys_expired").map(String::as_str) == Some("50"),
            "{info:?}"
        );
        want = want.without_expired(now_ms());
        node.check(&want, "after the restart").await?;
        node.shutdown_nosave().await
    })
}
