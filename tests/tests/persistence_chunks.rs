//! Large values of every type are written into snapshots a chunk at a time
//! and rebuilt from their chunks on restore (issues #14 item 4, #18 item
//! 3): hashes, sets, sorted sets, lists and streams (with consumer groups,
//! consumers and pending entries) of sizes within one record, over one or
//! two chunks (1 MiB each) and across several, plus an empty stream, come
//! back equal after a restart: the same DEBUG DIGEST-VALUE for every key,
//! and for streams the same XINFO STREAM FULL (groups, consumers, PELs with
//! their delivery times and counts).

use anyhow::{Context, ensure};
use cairn_tests::fixtures::{self, Ctx};
use redis::Value;

/// Element counts: one element, a single record, one to two 1 MiB chunks
/// of element data, several chunks.
const SIZES: [usize; 4] = [1, 300, 45_000, 90_000];

/// Stream entries per size (each entry carries three fields, ~50 bytes).
const STREAM_SIZES: [usize; 4] = [1, 300, 20_000, 40_000];

fn elem(seed: u64, i: usize) -> String {
    // Varied lengths (1 to 40 bytes), integers among them (packed as
    // integers by the small encodings).
    let x = (seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17);
    if x.is_multiple_of(5) {
        return (x % 1_000_000).to_string();
    }
    let len = 1 + (x % 40) as usize;
    (0..len)
        .map(|k| char::from(b'a' + ((x >> (k % 50)) % 26) as u8))
        .collect()
}

fn write(conn: &mut redis::Connection, seed: u64) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    for (s, &n) in SIZES.iter().enumerate() {
        let (h, st, z, l) = (
            format!("hash:{s}"),
            format!("set:{s}"),
            format!("zset:{s}"),
            format!("list:{s}"),
        );
        for start in (0..n).step_by(1000) {
            let end = (start + 1000).min(n);
            let mut p = redis::pipe();
            let mut hset = redis::cmd("HSET");
            hset.arg(&h);
            let mut sadd = redis::cmd("SADD");
            sadd.arg(&st);
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&z);
            let mut rpush = redis::cmd("RPUSH");
            rpush.arg(&l);
            for i in start..end {
                hset.arg(format!("f{i}:{}", elem(seed, i)))
                    .arg(elem(seed + 1, i));
                sadd.arg(format!("{}:{i}", elem(seed + 2, i)));
                // Repeated scores, negative and fractional ones.
                zadd.arg((i % 977) as f64 / 4.0 - 100.0)
                    .arg(format!("{}:{i}", elem(seed + 3, i)));
                rpush.arg(elem(seed + 4, i));
            }
            p.add_command(hset)
                .ignore()
                .add_command(sadd)
                .ignore()
                .add_command(zadd)
                .ignore()
                .add_command(rpush)
                .ignore();
            p.query::<()>(conn).context("filling collections")?;
        }
        keys.extend([h, st, z, l]);
    }
    for (s, &n) in STREAM_SIZES.iter().enumerate() {
        let key = format!("stream:{s}");
        for start in (0..n).step_by(1000) {
            let mut p = redis::pipe();
            for i in start..(start + 1000).min(n) {
                // Explicit IDs: the same stream on every run.
                p.cmd("XADD")
                    .arg(&key)
                    .arg(format!("{}-{}", 1 + i / 3, i % 3))
                    .arg("a")
                    .arg(elem(seed + 5, i))
                    .arg("b")
                    .arg(elem(seed + 6, i))
                    .arg(if i % 7 == 0 { "other" } else { "c" })
                    .arg(i)
                    .ignore();
            }
            p.query::<()>(conn).context("XADD")?;
        }
        // Tombstones, a group with consumers and pending entries, a
        // second group never read.
        let mut xdel = redis::cmd("XDEL");
        xdel.arg(&key);
        for i in (0..n).step_by(11) {
            xdel.arg(format!("{}-{}", 1 + i / 3, i % 3));
        }
        xdel.query::<()>(conn)?;
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("g1")
            .arg("0")
            .query::<()>(conn)?;
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("g2")
            .arg("$")
            .query::<()>(conn)?;
        for c in ["alice", "bob"] {
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g1")
                .arg(c)
                .arg("COUNT")
                .arg(n.div_ceil(3))
                .arg("STREAMS")
                .arg(&key)
                .arg(">")
                .query::<Value>(conn)?;
        }
        redis::cmd("XACK")
            .arg(&key)
            .arg("g1")
            .arg("1-0")
            .arg("1-1")
            .query::<()>(conn)?;
        keys.push(key);
    }
    redis::cmd("XADD")
        .arg("stream:empty")
        .arg("5-5")
        .arg("f")
        .arg("v")
        .query::<()>(conn)?;
    redis::cmd("XDEL")
        .arg("stream:empty")
        .arg("5-5")
        .query::<()>(conn)?;
    keys.push("stream:empty".into());
    Ok(keys)
}

/// What must survive the restart, key by key.
fn state(conn: &mut redis::Connection, keys: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for k in keys {
        let digest: Value = redis::cmd("DEBUG").arg("DIGEST-VALUE").arg(k).query(conn)?;
        out.push((format!("{k} digest"), digest));
        let ty: String = redis::cmd("TYPE").arg(k).query(conn)?;
        ensure!(ty != "none", "{k} is missing");
        if ty == "stream" {
            let full: Value = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(k)
                .arg("FULL")
                .arg("COUNT")
                .arg(0)
                .query(conn)?;
            out.push((format!("{k} xinfo"), full));
        }
        let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg(k).query(conn)?;
        out.push((format!("{k} encoding"), Value::SimpleString(enc)));
    }
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

#[test]
fn should_restore_large_values_of_every_type_written_in_chunks() -> anyhow::Result<()> {
    let seed = fixtures::seed("chunked-values");
    fixtures::run("chunked-values", |ctx: Ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let node = ctx.start(ctx.builder(&dir)).await?;
        let mut conn = node.conn()?;
        let (keys, before) = blocking(move || {
            let keys = write(&mut conn, seed)?;
            let before = state(&mut conn, &keys)?;
            Ok((keys, before))
        })
        .await?;
        let snap = node.snapshot().await?;
        println!(
            "snapshot: generation {} keys {} bytes {} in {:?}",
            snap.generation, snap.keys, snap.bytes, snap.duration
        );
        ensure!(
            snap.keys == keys.len() as u64,
            "snapshot wrote {} keys",
            snap.keys
        );
        node.shutdown_nosave().await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        let status = node.handle().persistence_status();
        ensure!(
            status.last_load_keys_loaded == keys.len() as u64,
            "restored {} keys of {}",
            status.last_load_keys_loaded,
            keys.len()
        );
        let mut conn = node.conn()?;
        let after = blocking(move || state(&mut conn, &keys)).await?;
        ensure!(before.len() == after.len());
        for ((what, a), (_, b)) in before.iter().zip(&after) {
            ensure!(a == b, "{what} differs after the restart: {a:?} then {b:?}");
        }
        node.shutdown_nosave().await
    })
}
