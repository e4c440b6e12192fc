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

/// `DEBUG RELOAD` saves the dataset (every type, several databases, TTLs,
/// a stream), empties the keyspace and loads the snapshot back; a write
/// made after a reload is kept by the next; `NOSAVE` goes back to the last
/// snapshot; `NOSAVE NOFLUSH MERGE` adds the snapshot's keys to memory's,
/// the snapshot's value winning. Without persistence it is refused.
#[test]
fn debug_reload_saves_and_loads_the_dataset_back() -> anyhow::Result<()> {
    let seed = fixtures::seed("debug-reload");
    fixtures::run("debug-reload", |ctx| async move {
        let mut want = Spec::full(seed, 1000).generate();
        let dir = ctx.tempdir()?.join("data");
        let node = ctx.start(ctx.builder(&dir)).await?;
        node.populate(&want).await?;
        node.call::<String>(&["XADD", "{stream}", "1-1", "f", "v"])
            .await?;
        node.call::<String>(&["XGROUP", "CREATE", "{stream}", "g", "0"])
            .await?;
        let stream_before: redis::Value =
            node.call(&["XINFO", "STREAM", "{stream}", "FULL"]).await?;
        let ok: String = node.call(&["DEBUG", "RELOAD"]).await?;
        ensure!(ok == "OK", "DEBUG RELOAD answered {ok}");
        let status = node.handle().persistence_status();
        ensure!(
            status.last_load_keys_loaded == want.len() as u64 + 1,
            "loaded {} keys, want {}",
            status.last_load_keys_loaded,
            want.len() + 1
        );
        let stream_after: redis::Value =
            node.call(&["XINFO", "STREAM", "{stream}", "FULL"]).await?;
        ensure!(
            stream_before == stream_after,
            "stream changed: {stream_before:?} -> {stream_after:?}"
        );
        node.call::<i64>(&["DEL", "{stream}"]).await?;
        node.check(&want, "after DEBUG RELOAD").await?;

        // A write after the reload is kept by the next reload.
        node.call::<String>(&["SET", "after-reload", "v"]).await?;
        want.insert(0, "after-reload", Val::Str(b"v".to_vec()), None);
        node.call::<String>(&["DEBUG", "RELOAD"]).await?;
        node.check(&want, "after a second DEBUG RELOAD").await?;

        // NOSAVE: back to the last snapshot; a later write is gone.
        node.call::<String>(&["SET", "lost", "v"]).await?;
        node.call::<String>(&["DEBUG", "RELOAD", "NOSAVE"]).await?;
        node.check(&want, "after DEBUG RELOAD NOSAVE").await?;

        // NOSAVE NOFLUSH MERGE: what is only in memory stays, the
        // snapshot's value replaces memory's.
        node.call::<String>(&["SET", "kept", "v"]).await?;
        node.call::<String>(&["SET", "after-reload", "changed"])
            .await?;
        node.call::<String>(&["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"])
            .await?;
        want.insert(0, "kept", Val::Str(b"v".to_vec()), None);
        node.check(&want, "after DEBUG RELOAD NOSAVE NOFLUSH MERGE")
            .await?;

        // NOFLUSH alone with keys in memory: Redis aborts on the first key
        // in both, cairn refuses before touching anything.
        let e = node
            .call::<String>(&["DEBUG", "RELOAD", "NOFLUSH"])
            .await
            .err()
            .map(|e| format!("{e:#}"));
        ensure!(
            e.as_deref()
                .is_some_and(|e| e.contains("NOFLUSH needs MERGE")),
            "DEBUG RELOAD NOFLUSH: {e:?}"
        );
        let e = node
            .call::<String>(&["DEBUG", "RELOAD", "FAST"])
            .await
            .err()
            .map(|e| format!("{e:#}"));
        ensure!(
            e.as_deref()
                .is_some_and(|e| e.contains("only supports the MERGE, NOFLUSH and NOSAVE options")),
            "DEBUG RELOAD FAST: {e:?}"
        );
        node.check(&want, "after the refused reloads").await?;
        node.shutdown_nosave().await?;

        // Without persistence there is nothing to reload.
        let off = ctx.start(ctx.builder(&dir).persistence(false)).await?;
        let e = off
            .call::<String>(&["DEBUG", "RELOAD"])
            .await
            .err()
            .map(|e| format!("{e:#}"));
        ensure!(
            e.as_deref()
                .is_some_and(|e| e.contains("needs persistence")),
            "DEBUG RELOAD without persistence: {e:?}"
        );
        off.shutdown_nosave().await
    })
}
