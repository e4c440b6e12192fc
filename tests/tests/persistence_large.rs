//! Values of any size the server accepts are snapshotted and restored
//! (issue #13, defect 3): a string, a list element, a hash value, a set
//! member, a sorted-set member and a key, each larger than a snapshot
//! chunk, and in the full run larger than the old 64 MiB record limit
//! (a 500 MB string, a list holding a 200 MB element, a 70 MB key). Before
//! format 2, one element over 64 MiB made every snapshot fail, and with it
//! the shutdown snapshot, so SIGTERM and SHUTDOWN could not stop the server.

use anyhow::{Context, ensure};
use cairn_tests::fixtures::{self, Ctx};

/// Deterministic bytes that do not compress and differ at every offset.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

struct Sizes {
    string: usize,
    element: usize,
    field_value: usize,
    member: usize,
    key: usize,
}

/// The full sizes only when `cargo xtask test-persistence` asks for its full
/// run (`CAIRN_QUICK=0`): a plain `cargo test` (and so `cargo xtask ci`)
/// runs the quick sizes, which still cross the old 64 MiB limit.
fn full_run() -> bool {
    std::env::var("CAIRN_QUICK").is_ok_and(|v| v == "0")
}

fn sizes() -> Sizes {
    if !full_run() {
        // Above the old 64 MiB record limit once, above a chunk everywhere.
        Sizes {
            string: 100 << 20,
            element: 70 << 20,
            field_value: 5 << 20,
            member: 3 << 20,
            key: 2 << 20,
        }
    } else {
        Sizes {
            string: 500_000_000,
            element: 200_000_000,
            field_value: 70 << 20,
            member: 66 << 20,
            key: 70 << 20,
        }
    }
}

fn mb(n: usize) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

fn write(conn: &mut redis::Connection, s: &Sizes, seed: u64) -> anyhow::Result<()> {
    redis::cmd("SET")
        .arg("big:string")
        .arg(pattern(seed, s.string))
        .query::<()>(conn)
        .context("SET big string")?;
    redis::cmd("RPUSH")
        .arg("big:list")
        .arg("head")
        .arg(pattern(seed + 1, s.element))
        .arg("tail")
        .query::<()>(conn)
        .context("RPUSH big element")?;
    redis::cmd("HSET")
        .arg("big:hash")
        .arg("small")
        .arg("v")
        .arg(pattern(seed + 2, 1000))
        .arg(pattern(seed + 3, s.field_value))
        .query::<()>(conn)
        .context("HSET big value")?;
    redis::cmd("SADD")
        .arg("big:set")
        .arg("a")
        .arg(pattern(seed + 4, s.member))
        .query::<()>(conn)
        .context("SADD big member")?;
    redis::cmd("ZADD")
        .arg("big:zset")
        .arg(1.5)
        .arg("a")
        .arg(-2.25)
        .arg(pattern(seed + 5, s.member))
        .query::<()>(conn)
        .context("ZADD big member")?;
    redis::cmd("SET")
        .arg(pattern(seed + 6, s.key))
        .arg("value of a big key")
        .query::<()>(conn)
        .context("SET big key")?;
    Ok(())
}

fn check(conn: &mut redis::Connection, s: &Sizes, seed: u64, what: &str) -> anyhow::Result<()> {
    let got: Vec<u8> = redis::cmd("GET").arg("big:string").query(conn)?;
    ensure!(
        got == pattern(seed, s.string),
        "{what}: big string differs ({} bytes)",
        got.len()
    );
    drop(got);
    let list: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg("big:list")
        .arg(0)
        .arg(-1)
        .query(conn)?;
    ensure!(list.len() == 3, "{what}: list has {} items", list.len());
    ensure!(
        list[0] == b"head" && list[2] == b"tail",
        "{what}: list ends differ"
    );
    ensure!(
        list[1] == pattern(seed + 1, s.element),
        "{what}: big list element differs"
    );
    drop(list);
    let v: Vec<u8> = redis::cmd("HGET")
        .arg("big:hash")
        .arg(pattern(seed + 2, 1000))
        .query(conn)?;
    ensure!(
        v == pattern(seed + 3, s.field_value),
        "{what}: big hash value differs"
    );
    let small: Vec<u8> = redis::cmd("HGET")
        .arg("big:hash")
        .arg("small")
        .query(conn)?;
    ensure!(small == b"v", "{what}: small hash field differs");
    let is: bool = redis::cmd("SISMEMBER")
        .arg("big:set")
        .arg(pattern(seed + 4, s.member))
        .query(conn)?;
    let n: i64 = redis::cmd("SCARD").arg("big:set").query(conn)?;
    ensure!(is && n == 2, "{what}: big set member missing (card {n})");
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("big:zset")
        .arg(pattern(seed + 5, s.member))
        .query(conn)?;
    ensure!(
        score == Some(-2.25),
        "{what}: big sorted-set member score {score:?}"
    );
    let v: Option<String> = redis::cmd("GET")
        .arg(pattern(seed + 6, s.key))
        .query(conn)?;
    ensure!(
        v.as_deref() == Some("value of a big key"),
        "{what}: the big key's value is {v:?}"
    );
    let keys: i64 = redis::cmd("DBSIZE").query(conn)?;
    ensure!(keys == 6, "{what}: {keys} keys");
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

#[test]
fn should_snapshot_and_restore_values_of_any_size_the_server_accepts() -> anyhow::Result<()> {
    let seed = fixtures::seed("large-values");
    fixtures::run("large-values", |ctx: Ctx| async move {
        let s = sizes();
        println!(
            "sizes: string {}, list element {}, hash value {}, set and sorted-set members {}, key {}",
            mb(s.string),
            mb(s.element),
            mb(s.field_value),
            mb(s.member),
            mb(s.key)
        );
        let dir = ctx.tempdir()?.join("data");
        let node = ctx.start(ctx.builder(&dir)).await?;
        let mut conn = node.conn()?;
        let mut conn = blocking(move || {
            write(&mut conn, &sizes(), seed)?;
            Ok(conn)
        })
        .await?;
        let snap = node.snapshot().await?;
        println!(
            "snapshot: generation {} keys {} bytes {} in {:?}",
            snap.generation, snap.keys, snap.bytes, snap.duration
        );
        ensure!(snap.keys == 6, "snapshot wrote {} keys", snap.keys);
        // A change after the snapshot: the shutdown snapshot must succeed
        // too (before format 2 it failed, and the server could not stop).
        conn = blocking(move || {
            redis::cmd("RPUSH")
                .arg("big:list")
                .arg("after")
                .query::<()>(&mut conn)?;
            redis::cmd("RPOP").arg("big:list").query::<()>(&mut conn)?;
            Ok(conn)
        })
        .await?;
        drop(conn);
        node.shutdown()
            .await
            .context("shutdown with its snapshot")?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        let status = node.handle().persistence_status();
        ensure!(
            status.last_load_keys_loaded == 6,
            "restored {} keys",
            status.last_load_keys_loaded
        );
        let mut conn = node.conn()?;
        blocking(move || check(&mut conn, &sizes(), seed, "after the restart")).await?;
        node.shutdown_nosave().await
    })
}
