//! MEMORY USAGE | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP.

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, is, subcommand};
use crate::keyspace::Keyspace;
use crate::memory::{AllocatorReading, MemoryReport};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis_with("memory", |s| s.subs(MEMORY_SUBS), memory);
}

const MEMORY_SUBS: &[(&str, i32)] = &[
    ("usage", -3),
    ("stats", 2),
    ("doctor", 2),
    ("malloc-stats", 2),
    ("purge", 2),
    ("help", 2),
];

/// Redis' `OBJ_COMPUTE_SIZE_DEF_SAMPLES`.
const DEFAULT_SAMPLES: usize = 5;

fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = match subcommand("memory", args, MEMORY_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let ks = ctx.keyspace();
    match sub {
        "usage" => usage(ctx, args),
        "stats" => stats(ks),
        "doctor" => Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from(doctor(ks)),
        },
        "malloc-stats" => match ks.inner.allocator.as_ref().and_then(|a| a.report()) {
            Some(text) => Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(text),
            },
            // What Redis answers when not built with jemalloc.
            None => Frame::simple("Stats not supported for the current allocator"),
        },
        "purge" => {
            // Redis answers OK whatever the allocator (without jemalloc it
            // has nothing to purge); a jemalloc build purges its arenas.
            if let Some(a) = ks.inner.allocator.as_ref() {
                a.purge();
            }
            Frame::ok()
        }
        _ => Frame::Array(
            [
                "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        ),
    }
}

/// MEMORY USAGE key [SAMPLES count]
fn usage(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut samples = DEFAULT_SAMPLES;
    let mut i = 3;
    while i < args.len() {
        if is(arg(args, i), "samples") && i + 1 < args.len() {
            match super::parse_int(arg(args, i + 1)) {
                Ok(n) if n < 0 => return err(ERR_SYNTAX),
                Ok(0) => samples = usize::MAX,
                Ok(n) => samples = usize::try_from(n).unwrap_or(usize::MAX),
                Err(e) => return e,
            }
            i += 2;
        } else {
            return err(ERR_SYNTAX);
        }
    }
    let key = arg(args, 2);
    let shard = ctx.shard(key);
    // As Redis, the stored entry as it is: no lazy expiry, not an access.
    match shard.peek(key) {
        Some(entry) => Frame::Integer(
            i64::try_from(crate::usage::key_usage(key, entry, samples)).unwrap_or(i64::MAX),
        ),
        None => Frame::Null,
    }
}

/// Redis' `redisMemOverhead`, with the figures cairn has.
struct Overhead {
    report: MemoryReport,
    peak: u64,
    startup: u64,
    /// (db, main, expires) for each database holding keys.
    dbs: Vec<(usize, usize, usize)>,
    overhead_total: u64,
    keys: u64,
    /// Redis' `allocator_allocated`, `_active`, `_resident`, with its
    /// stand-ins when the allocator does not count them (libc): the used
    /// count and the process' resident size.
    allocated: u64,
    active: u64,
    resident: u64,
}

impl Overhead {
    fn take(ks: &Keyspace) -> Overhead {
        let report = MemoryReport::take(ks.inner.allocator.as_ref());
        let mem = &ks.inner.memory;
        mem.saw(report.used);
        let e = ks.engine();
        let mut dbs = Vec::new();
        let mut keys = 0u64;
        let mut tables = 0u64;
        for db in 0..e.databases() {
            let (n, _) = e.db_counts(db);
            if n == 0 {
                continue;
            }
            keys += n as u64;
            let (main, expires) = e.db_overhead(db);
            tables += (main + expires) as u64;
            dbs.push((db, main, expires));
        }
        let startup = mem.startup();
        let AllocatorReading {
            allocated,
            active,
            resident,
        } = report.reading.unwrap_or(AllocatorReading {
            allocated: report.used,
            active: None,
            resident: None,
        });
        let resident = resident.unwrap_or(report.rss);
        Overhead {
            peak: mem.peak(),
            startup,
            dbs,
            // Replication, client buffers, AOF and script caches: cairn
            // does not count them, so they add nothing here.
            overhead_total: startup + tables,
            keys,
            allocated,
            active: active.unwrap_or(resident),
            resident,
            report,
        }
    }

    fn used(&self) -> u64 {
        self.report.used
    }

    fn net(&self) -> u64 {
        self.used().saturating_sub(self.startup)
    }

    fn dataset(&self) -> u64 {
        self.used().saturating_sub(self.overhead_total)
    }
}

/// Redis computes these ratios in `float`.
fn ratio(a: u64, b: u64) -> f64 {
    f64::from(a as f32 / b as f32)
}

fn stats(ks: &Keyspace) -> Frame {
    let o = Overhead::take(ks);
    let n = |v: u64| Frame::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let signed = |a: u64, b: u64| Frame::Integer(a as i64 - b as i64);
    let mut out: Vec<(Frame, Frame)> = vec![
        (Frame::bulk("peak.allocated"), n(o.peak)),
        (Frame::bulk("total.allocated"), n(o.used())),
        (Frame::bulk("startup.allocated"), n(o.startup)),
        (Frame::bulk("replication.backlog"), n(0)),
        (Frame::bulk("clients.slaves"), n(0)),
        (Frame::bulk("clients.normal"), n(0)),
        (Frame::bulk("cluster.links"), n(0)),
        (Frame::bulk("aof.buffer"), n(0)),
        (Frame::bulk("lua.caches"), n(0)),
        (Frame::bulk("functions.caches"), n(0)),
    ];
    for &(db, main, expires) in &o.dbs {
        out.push((
            Frame::bulk(format!("db.{db}")),
            Frame::Map(vec![
                (Frame::bulk("overhead.hashtable.main"), n(main as u64)),
                (Frame::bulk("overhead.hashtable.expires"), n(expires as u64)),
                (Frame::bulk("overhead.hashtable.slot-to-keys"), n(0)),
            ]),
        ));
    }
    let rss = o.report.rss;
    out.extend([
        (Frame::bulk("overhead.total"), n(o.overhead_total)),
        (Frame::bulk("keys.count"), n(o.keys)),
        (
            Frame::bulk("keys.bytes-per-key"),
            n(o.net().checked_div(o.keys).unwrap_or(0)),
        ),
        (Frame::bulk("dataset.bytes"), n(o.dataset())),
        (
            Frame::bulk("dataset.percentage"),
            Frame::Double(f64::from(
                o.dataset() as f32 * 100.0 / o.net().max(1) as f32,
            )),
        ),
        (
            Frame::bulk("peak.percentage"),
            Frame::Double(f64::from(o.used() as f32 * 100.0 / o.peak.max(1) as f32)),
        ),
        (Frame::bulk("allocator.allocated"), n(o.allocated)),
        (Frame::bulk("allocator.active"), n(o.active)),
        (Frame::bulk("allocator.resident"), n(o.resident)),
        (
            Frame::bulk("allocator-fragmentation.ratio"),
            Frame::Double(ratio(o.active, o.allocated)),
        ),
        (
            Frame::bulk("allocator-fragmentation.bytes"),
            signed(o.active, o.allocated),
        ),
        (
            Frame::bulk("allocator-rss.ratio"),
            Frame::Double(ratio(o.resident, o.active)),
        ),
        (
            Frame::bulk("allocator-rss.bytes"),
            signed(o.resident, o.active),
        ),
        (
            Frame::bulk("rss-overhead.ratio"),
            Frame::Double(ratio(rss, o.resident)),
        ),
        (Frame::bulk("rss-overhead.bytes"), signed(rss, o.resident)),
        (
            Frame::bulk("fragmentation"),
            Frame::Double(ratio(rss, o.used())),
        ),
        (Frame::bulk("fragmentation.bytes"), signed(rss, o.used())),
    ]);
    Frame::Map(out)
}

/// Redis' `getMemoryDoctorReport`, for the conditions cairn can detect:
/// an (almost) empty instance, a past peak, and fragmentation and RSS
/// overheads. Client buffers, replica buffers and the script cache are
/// not measured, so their reports never appear.
fn doctor(ks: &Keyspace) -> String {
    const MB10: u64 = 10 << 20;
    let o = Overhead::take(ks);
    let rss = o.report.rss;
    let over = |a: u64, b: u64, r: f32| b > 0 && (a as f32 / b as f32) > r && a > b + MB10;
    if o.used() < 5 * 1024 * 1024 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into();
    }
    let big_peak = o.used() > 0 && (o.peak as f32 / o.used() as f32) > 1.5;
    let high_frag = over(rss, o.used(), 1.4);
    let high_alloc_frag = over(o.active, o.allocated, 1.1);
    let high_alloc_rss = over(o.resident, o.active, 1.1);
    let high_proc_rss = over(rss, o.resident, 1.1);
    if !(big_peak || high_frag || high_alloc_frag || high_alloc_rss || high_proc_rss) {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".into();
    }
    let mut s =
        String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    if big_peak {
        s.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if high_frag {
        s.push_str(&format!(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"{}\".\n\n", o.report.allocator));
    }
    if high_alloc_frag {
        s.push_str(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
    }
    if high_alloc_rss {
        s.push_str(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
    }
    if high_proc_rss {
        s.push_str(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}
