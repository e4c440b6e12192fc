//! Streams across restarts: entries, block boundaries, tombstones,
//! metadata, consumer groups with their consumers and pending lists come
//! back exactly, from a snapshot and from a graceful shutdown; a stream
//! large enough to be written as many chunk records included.

use anyhow::ensure;
use cairn_tests::fixtures;
use cairn_tests::wire::{Conn, Reply};

/// Keys built by [`build`].
const KEYS: &[&str] = &["big", "small", "empty", "groups"];

/// Builds streams of every shape on the server at `addr`.
async fn build(conn: &mut Conn, big_entries: usize) -> anyhow::Result<()> {
    let call = |args: Vec<String>| args;
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let s = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    // Many blocks, varied fields, values long enough for the chunker.
    for i in 1..=big_entries {
        let id = format!("{}-{}", 1_000 + i / 7, i % 7);
        // About 130 bytes an entry: 30 000 entries span several 1 MiB
        // chunk records.
        let v = format!("value-{i}-{}", "x".repeat(80 + i % 40));
        if i % 97 == 0 {
            cmds.push(call(s(&["XADD", "big", &id, "other", &v])));
        } else {
            cmds.push(call(s(&["XADD", "big", &id, "a", &v, "b", "2", "c", "z"])));
        }
    }
    cmds.push(s(&["XDEL", "big", "1001-0", "1002-3", "1100-1"]));
    cmds.push(s(&[
        "XTRIM",
        "big",
        "MAXLEN",
        "~",
        &(big_entries - 300).to_string(),
    ]));
    cmds.push(s(&["XADD", "small", "1-1", "f", "v"]));
    cmds.push(s(&[
        "XSETID",
        "small",
        "50-0",
        "ENTRIESADDED",
        "9",
        "MAXDELETEDID",
        "3-0",
    ]));
    cmds.push(s(&["XADD", "empty", "1-0", "f", "v"]));
    cmds.push(s(&["XDEL", "empty", "1-0"]));
    for i in 1..=30 {
        cmds.push(s(&[
            "XADD",
            "groups",
            &format!("{i}-0"),
            "n",
            &i.to_string(),
        ]));
    }
    cmds.push(s(&["XGROUP", "CREATE", "groups", "g1", "0"]));
    cmds.push(s(&[
        "XGROUP",
        "CREATE",
        "groups",
        "g2",
        "$",
        "ENTRIESREAD",
        "30",
    ]));
    cmds.push(s(&["XGROUP", "CREATE", "groups", "g3", "5-0"]));
    cmds.push(s(&["XGROUP", "CREATECONSUMER", "groups", "g2", "idle-one"]));
    cmds.push(s(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "alice",
        "COUNT",
        "10",
        "STREAMS",
        "groups",
        ">",
    ]));
    cmds.push(s(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "bob",
        "COUNT",
        "5",
        "STREAMS",
        "groups",
        ">",
    ]));
    cmds.push(s(&["XACK", "groups", "g1", "2-0", "4-0"]));
    cmds.push(s(&[
        "XCLAIM",
        "groups",
        "g1",
        "carol",
        "0",
        "6-0",
        "7-0",
        "TIME",
        "12345",
        "RETRYCOUNT",
        "9",
    ]));
    cmds.push(s(&["XDEL", "groups", "8-0"]));
    // Pipelined in batches: one round trip per command would take minutes
    // in a debug build.
    for batch in cmds.chunks(500) {
        for c in batch {
            conn.send(c).await?;
        }
        for c in batch {
            let r = conn.read_reply().await?;
            ensure!(!r.is_error(), "{}: {r}", c.join(" "));
        }
    }
    Ok(())
}

/// Everything observable about the streams, times included (a restore
/// must bring back seen-times and delivery times as they were).
async fn observe(conn: &mut Conn) -> anyhow::Result<Vec<Reply>> {
    let mut out = Vec::new();
    for k in KEYS {
        // FULL lists every entry with COUNT 0: only for the small keys
        // (the test client parses one reply in a time quadratic in its size).
        let full = if *k == "big" { "5" } else { "0" };
        for cmd in [
            vec!["XINFO", "STREAM", k, "FULL", "COUNT", full],
            vec!["XINFO", "STREAM", k],
            vec!["TYPE", k],
        ] {
            out.push(conn.call(&cmd).await?);
        }
        // Every entry, a page at a time.
        let mut start = "-".to_owned();
        loop {
            let page = conn
                .call(&["XRANGE", k, start.as_str(), "+", "COUNT", "1000"])
                .await?;
            let last = page
                .elements()
                .and_then(|e| e.last())
                .and_then(|e| e.elements())
                .and_then(|e| e.first())
                .and_then(|id| id.as_bytes())
                .map(|id| format!("({}", String::from_utf8_lossy(id)));
            out.push(page);
            match last {
                Some(next) => start = next,
                None => break,
            }
        }
    }
    Ok(out)
}

#[test]
fn streams_survive_snapshots_and_restarts() -> anyhow::Result<()> {
    fixtures::run("streams-restart", |ctx| async move {
        let big = if fixtures::quick() { 3_000 } else { 30_000 };
        let dir = ctx.tempdir()?.join("data");
        let node = ctx.start(ctx.builder(&dir)).await?;
        let mut conn = Conn::connect(node.addr()).await?;
        build(&mut conn, big).await?;
        let before = observe(&mut conn).await?;
        node.snapshot().await?;
        node.shutdown_nosave().await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        let mut conn = Conn::connect(node.addr()).await?;
        let after = observe(&mut conn).await?;
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            ensure!(a == b, "observation {i} after the snapshot:\n{a}\n{b}");
        }
        // Writes after the restore behave as on the saved stream: the
        // next block opens where Redis would open it.
        let r = conn
            .call(&["XADD", "big", "*", "a", "1", "b", "2", "c", "z"])
            .await?;
        ensure!(!r.is_error(), "{r}");
        let changed = observe(&mut conn).await?;
        node.shutdown().await?;

        let node = ctx.start(ctx.builder(&dir)).await?;
        let mut conn = Conn::connect(node.addr()).await?;
        let again = observe(&mut conn).await?;
        for (i, (a, b)) in changed.iter().zip(&again).enumerate() {
            ensure!(
                a == b,
                "observation {i} after the graceful shutdown:\n{a}\n{b}"
            );
        }
        let loaded = node.handle().persistence_status().last_load_keys_loaded;
        ensure!(loaded == KEYS.len() as u64, "{loaded} keys loaded");
        node.shutdown_nosave().await
    })
}
