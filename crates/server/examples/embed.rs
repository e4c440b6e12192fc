//! Embedding cairn: start a server inside a program, write through the
//! keyspace, take a snapshot and wait for it, watch snapshot outcomes, read
//! the persistence status, and stop with a final snapshot.
//!
//! ```text
//! cargo run -p cairn-server --example embed                  # a quick tour
//! cargo run --release -p cairn-server --example embed -- 1000000   # time a snapshot of N string keys
//! ```

use std::time::Instant;

use bytes::Bytes;
use cairn_keyspace::{Key, LoadEntry, Value};
use cairn_server::Server;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let handle = Server::builder()
        .port(0)
        .data_dir(dir.path().join("data"))
        .build()
        .start()
        .await?;
    println!(
        "listening on {} (try: redis-cli -p {} INFO persistence)",
        handle.addr(),
        handle.addr().port()
    );

    // Write N keys straight into the keyspace, as a restore does.
    let value = Bytes::from(vec![b'v'; 100]);
    let fill = Instant::now();
    handle.keyspace().load_entries((0..keys).map(|i| LoadEntry {
        db: 0,
        key: Key::new(format!("key:{i:012}").as_bytes()),
        expires_at_ms: None,
        value: Value::Str(Box::from(&value[..])),
    }));
    // And one through a session, exactly as a client command would.
    handle
        .keyspace()
        .session()
        .command(&["SET", "greeting", "hello"]);
    println!("filled {} keys in {:?}", keys + 1, fill.elapsed());

    let mut events = handle.subscribe_snapshots();
    let info = handle.snapshot_now().await?;
    println!(
        "snapshot: generation {} with {} keys, {} bytes on disk, in {:?} ({:.0} keys/s)",
        info.generation,
        info.keys,
        info.bytes,
        info.duration,
        info.keys as f64 / info.duration.as_secs_f64()
    );
    let outcome = events.next().await;
    println!(
        "event: {:?} -> {:?}",
        outcome.trigger,
        outcome.result.map(|i| i.generation)
    );

    let status = handle.persistence_status();
    println!(
        "status: saves={} changes_since_last_save={} generation={:?}",
        status.saves, status.changes_since_last_save, status.current_generation
    );

    // Stop: nothing changed since the snapshot, so the shutdown snapshot is
    // a fresh generation of the same data.
    handle.shutdown().await?;

    // Restart from the same directory: the data is back.
    let started = Instant::now();
    let handle = Server::builder()
        .port(0)
        .data_dir(dir.path().join("data"))
        .build()
        .start()
        .await?;
    let status = handle.persistence_status();
    println!(
        "restart restored {} keys in {:?}",
        status.last_load_keys_loaded,
        started.elapsed()
    );
    handle.shutdown().await?;
    Ok(())
}
