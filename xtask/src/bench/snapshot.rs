//! Suite 2, snapshot: the same 1,000,000 keys in both servers, then
//! `SAVE` timed on each, the bytes on disk, and a restart that loads them
//! back, timed from spawn to ready and to the first PONG. Repeated; medians.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};

use super::data;
use super::servers::{self, Kind, Server, Spec};
use super::{Outcome, Plan, Table, fmt_bytes, fmt_ratio, fmt_secs, median, target};

#[derive(Default)]
struct Samples {
    save: Vec<f64>,
    disk: Vec<f64>,
    ready: Vec<f64>,
    pong: Vec<f64>,
    logged_load: Vec<f64>,
    rss_loaded: Vec<f64>,
}

/// The newest generation directory under a cairn data dir.
fn newest_generation(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
        .max_by_key(|e| e.file_name())
        .map(|e| e.path())
}

fn timed_save(server: &Server) -> Result<f64> {
    let mut c = server.conn()?;
    let t = Instant::now();
    c.ok(&["SAVE"])?;
    Ok(t.elapsed().as_secs_f64())
}

fn check_loaded(server: &Server, n: u64, seed: u64) -> Result<()> {
    let mut c = server.conn()?;
    let size = c.dbsize()?;
    if u64::try_from(size).ok() != Some(n) {
        bail!("{} holds {size} keys, expected {n}", server.kind.name());
    }
    data::verify_sample(&mut c, n, seed, (n / 1000).max(1))?;
    Ok(())
}

/// Runs the suite.
///
/// # Errors
/// A server failed, or lost or changed data across a restart.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let n = plan.keys;
    let tmp = tempfile::tempdir()?;
    let specs = [
        Spec {
            kind: Kind::Cairn,
            dir: tmp.path().join("cairn"),
            persistence: true,
        },
        Spec {
            kind: Kind::Redis,
            dir: tmp.path().join("redis"),
            persistence: true,
        },
    ];
    let mut servers = Vec::new();
    let mut fill = Vec::new();
    for spec in &specs {
        let s = Server::start(&plan.cairn_bin, spec)?;
        let took = data::load(s.conn()?, n, plan.seed)?;
        eprintln!(
            "bench: snapshot: loaded {n} keys into {} in {took:.2?}",
            spec.kind.name()
        );
        check_loaded(&s, n, plan.seed)?;
        fill.push(took.as_secs_f64());
        servers.push(Some(s));
    }
    let mut samples = [Samples::default(), Samples::default()];
    for rep in 0..plan.snapshot_reps {
        // Alternate who goes first, so neither always runs on a warmer cache.
        let order: [usize; 2] = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let Some(server) = servers[i].take() else {
                bail!("server {i} missing")
            };
            samples[i]
                .rss_loaded
                .push(servers::rss_bytes(server.pid()).unwrap_or(0) as f64);
            let save = timed_save(&server)?;
            let disk = match server.kind {
                Kind::Cairn => {
                    newest_generation(&specs[i].dir).map_or(0, |g| servers::tree_bytes(&g))
                }
                Kind::Redis => servers::tree_bytes(&specs[i].dir.join("dump.rdb")),
            };
            server.stop()?;
            let restarted = Server::start(&plan.cairn_bin, &specs[i])?;
            let logged = restarted.load_log().load;
            eprintln!(
                "bench: snapshot rep {}: {} SAVE {save:.3}s, {} on disk, restart ready {:.3?} pong {:.3?} (logged load {logged:.3?})",
                rep + 1,
                specs[i].kind.name(),
                fmt_bytes(disk as f64),
                restarted.ready_after,
                restarted.pong_after,
            );
            check_loaded(&restarted, n, plan.seed)?;
            let s = &mut samples[i];
            s.save.push(save);
            s.disk.push(disk as f64);
            s.ready.push(restarted.ready_after.as_secs_f64());
            s.pong.push(restarted.pong_after.as_secs_f64());
            if let Some(l) = logged {
                s.logged_load.push(l.as_secs_f64());
            }
            servers[i] = Some(restarted);
        }
    }
    let cairn_total = servers::tree_bytes(&specs[0].dir);
    for s in servers.into_iter().flatten() {
        s.stop()?;
    }
    let [c, r] = &samples;
    let mut t = Table::new(
        format!(
            "Snapshot of {n} string keys with {}-byte random values (median of {} repetitions)",
            data::VALUE_LEN,
            plan.snapshot_reps
        ),
        &["measure", "cairn", "redis", "cairn/redis", "target"],
    );
    let mut row = |name: &str, c: &[f64], r: &[f64], fmt: fn(f64) -> String, goal: Option<f64>| {
        let (mc, mr) = (median(c), median(r));
        let ratio = match (mc, mr) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        t.row(vec![
            name.to_owned(),
            mc.map_or("—".into(), fmt),
            mr.map_or("—".into(), fmt),
            ratio.map_or("—".into(), fmt_ratio),
            goal.map_or(String::new(), |g| target(ratio, g)),
        ]);
    };
    row(
        "SAVE (blocking, until committed)",
        &c.save,
        &r.save,
        fmt_secs,
        Some(0.5),
    );
    row(
        "on-disk bytes (one generation / dump.rdb)",
        &c.disk,
        &r.disk,
        fmt_bytes,
        None,
    );
    row(
        "restart: spawn → `Ready to accept connections`",
        &c.ready,
        &r.ready,
        fmt_secs,
        Some(0.7),
    );
    row(
        "restart: spawn → first PONG",
        &c.pong,
        &r.pong,
        fmt_secs,
        None,
    );
    row(
        "load time as logged by the server",
        &c.logged_load,
        &r.logged_load,
        fmt_secs,
        None,
    );
    row(
        "RSS with the keys loaded",
        &c.rss_loaded,
        &r.rss_loaded,
        fmt_bytes,
        None,
    );
    row(
        "initial fill over TCP (pipelined SET)",
        &fill[..1],
        &fill[1..],
        fmt_secs,
        None,
    );
    t.note(format!(
        "cairn's data dir holds {} in total (the previous generation is retained until a newer one is verified).",
        fmt_bytes(cairn_total as f64)
    ));
    t.note(
        "Both restarts are after SIGTERM with no shutdown save (cairn --snapshot-on-shutdown false, Redis --save ''); \
         the files were just written, so both load from the page cache. Every restart is checked: DBSIZE and \
         1,000 sampled values equal the generated data."
            .to_owned(),
    );
    let show = |v: &[f64], fmt: fn(f64) -> String| median(v).map_or("—".into(), fmt);
    let ratio = |a: &[f64], b: &[f64]| Some(median(a)? / median(b)?);
    let summary = vec![
        format!(
            "SAVE of {n} keys: cairn {} vs Redis {}, ratio {} (target {}).",
            show(&c.save, fmt_secs),
            show(&r.save, fmt_secs),
            ratio(&c.save, &r.save).map_or("—".into(), fmt_ratio),
            target(ratio(&c.save, &r.save), 0.5)
        ),
        format!(
            "Restart with {n} keys, spawn to ready: cairn {} vs Redis {}, ratio {} (target {}); \
             on disk cairn {} vs Redis {}.",
            show(&c.ready, fmt_secs),
            show(&r.ready, fmt_secs),
            ratio(&c.ready, &r.ready).map_or("—".into(), fmt_ratio),
            target(ratio(&c.ready, &r.ready), 0.7),
            show(&c.disk, fmt_bytes),
            show(&r.disk, fmt_bytes)
        ),
    ];
    Ok(Outcome {
        tables: vec![t],
        summary,
        ..Outcome::default()
    })
}
