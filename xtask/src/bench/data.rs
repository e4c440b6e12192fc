//! The benchmark data set: `N` distinct string keys with 100-byte random
//! values from one seeded generator, so cairn and Redis hold exactly the
//! same bytes; and a pipelined loader that streams it over one connection.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::resp::{self, Conn, Reply};

/// Bytes per value.
pub const VALUE_LEN: usize = 100;

/// The key of item `i`.
pub fn key(i: u64) -> String {
    format!("key:{i:010}")
}

/// A 100-byte random value from `rng`.
pub fn value(rng: &mut StdRng) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    rng.fill(&mut v[..]);
    v
}

/// Loads keys `0..n` with `SET`, pipelined: one thread writes every command
/// while this one reads the replies, so neither side waits for the other.
/// Returns how long it took.
///
/// # Errors
/// The connection failed, or any reply was not `+OK`.
pub fn load(conn: Conn, n: u64, seed: u64) -> Result<Duration> {
    let started = Instant::now();
    let (mut reader, mut writer) = conn.split();
    let sender =
        std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || -> Result<()> {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut buf = Vec::with_capacity(1 << 20);
                for i in 0..n {
                    let k = key(i);
                    let v = value(&mut rng);
                    resp::encode(&mut buf, &[b"SET", k.as_bytes(), &v]);
                    if buf.len() >= 1 << 19 {
                        writer.write_all(&buf)?;
                        buf.clear();
                    }
                }
                writer.write_all(&buf)?;
                Ok(())
            })?;
    let mut bad = None;
    for _ in 0..n {
        match resp::read_reply(&mut reader)? {
            Reply::Simple(s) if s == "OK" => {}
            other => {
                bad.get_or_insert(other);
            }
        }
    }
    match sender.join() {
        Ok(r) => r?,
        Err(_) => bail!("the loader's writer thread panicked"),
    }
    if let Some(r) = bad {
        bail!("SET answered {r:?} during the load");
    }
    Ok(started.elapsed())
}

/// Checks a sample of keys against the generator: the server holds exactly
/// the loaded bytes (after a load or a restart).
///
/// # Errors
/// A key is missing or holds other bytes.
pub fn verify_sample(conn: &mut Conn, n: u64, seed: u64, every: u64) -> Result<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut checked = 0;
    for i in 0..n {
        let v = value(&mut rng);
        if i % every != 0 && i != n - 1 {
            continue;
        }
        let k = key(i);
        match conn.cmd(&["GET", &k])? {
            Reply::Bulk(Some(got)) if got == v => checked += 1,
            other => bail!("GET {k} answered {other:?}, not the loaded value"),
        }
    }
    Ok(checked)
}
