//! Introspection commands: SLOWLOG, LATENCY.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, TableBuilder, int, is, subcommand};
use crate::keyspace::Keyspace;
use crate::slowlog::Series;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis_with("slowlog", |s| s.subs(SLOWLOG_SUBS), slowlog);
    t.redis_with("latency", |s| s.subs(LATENCY_SUBS), latency);
    t.redis("wait", wait);
    t.redis("monitor", monitor);
    t.redis("lolwut", super::lolwut::lolwut);
}

/// MONITOR: from now on the client receives every command executed (a
/// second MONITOR answers nothing, as in Redis).
fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let ks = ctx.keyspace();
    let s = ctx.session();
    if ks.inner.monitors.add(s.id, s.events.clone()) {
        Frame::ok()
    } else {
        ctx.special = Some(cairn_resp::Outcome::NoReply);
        Frame::Null
    }
}

/// WAIT numreplicas timeout: cairn has no replicas, so the count is 0;
/// as in Redis, asking for replicas waits out the timeout (0: forever,
/// until the client goes) unless inside MULTI.
fn wait(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(want) = crate::num::string2ll(arg(args, 1)) else {
        return Frame::error("ERR value is not an integer or out of range");
    };
    let ms = match crate::num::string2ll(arg(args, 2)) {
        None => return Frame::error("ERR timeout is not an integer or out of range"),
        Some(n) if n < 0 => return Frame::error("ERR timeout is negative"),
        Some(n) => n.unsigned_abs(),
    };
    if want <= 0 || ctx.in_exec() || !ctx.may_defer() {
        return Frame::Integer(0);
    }
    ctx.block(Box::pin(async move {
        if ms == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        Frame::Integer(0)
    }))
}

const SLOWLOG_SUBS: &[(&str, i32)] = &[("get", -2), ("len", 2), ("reset", 2), ("help", 2)];
const LATENCY_SUBS: &[(&str, i32)] = &[
    ("latest", 2),
    ("history", 3),
    ("reset", -2),
    ("doctor", 2),
    ("histogram", -2),
    ("graph", 3),
    ("help", 2),
];

fn help(lines: &[&'static str]) -> Frame {
    Frame::Array(lines.iter().map(|l| Frame::simple(l)).collect())
}

/// Redis' `addReplySubcommandSyntaxError`.
fn syntax_error(container: &str, args: &[Bytes]) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(arg(args, 1))
    ))
}

fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let log = &ctx.keyspace().inner.slowlog;
    match subcommand("slowlog", args, SLOWLOG_SUBS) {
        Err(e) => e,
        Ok("get") if args.len() > 3 => syntax_error("SLOWLOG", args),
        Ok("get") => {
            let count = match args.get(2) {
                None => Some(10),
                Some(a) => match crate::num::string2ll(a) {
                    Some(-1) => None,
                    Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                    _ => {
                        return Frame::error("ERR count should be greater than or equal to -1");
                    }
                },
            };
            Frame::Array(
                log.get(count)
                    .into_iter()
                    .map(|e| {
                        Frame::Array(vec![
                            Frame::Integer(i64::try_from(e.id).unwrap_or(i64::MAX)),
                            Frame::Integer(e.time),
                            Frame::Integer(i64::try_from(e.micros).unwrap_or(i64::MAX)),
                            Frame::Array(e.args.into_iter().map(Frame::Bulk).collect()),
                            Frame::bulk(e.peer),
                            Frame::Bulk(e.name),
                        ])
                    })
                    .collect(),
            )
        }
        Ok("len") => int(log.len()),
        Ok("reset") => {
            log.reset();
            Frame::ok()
        }
        Ok(_) => help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ]),
    }
}

fn latency(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let ks = ctx.keyspace();
    let mon = &ks.inner.latency;
    match subcommand("latency", args, LATENCY_SUBS) {
        Err(e) => e,
        Ok("latest") => Frame::Array(
            mon.events()
                .into_iter()
                .map(|(name, ts)| {
                    let last = ts.last();
                    Frame::Array(vec![
                        Frame::bulk(name),
                        Frame::Integer(last.time),
                        Frame::Integer(i64::try_from(last.latency).unwrap_or(i64::MAX)),
                        Frame::Integer(i64::try_from(ts.max).unwrap_or(i64::MAX)),
                    ])
                })
                .collect(),
        ),
        Ok("history") => {
            let event = String::from_utf8_lossy(arg(args, 2));
            let series = mon.events().into_iter().find(|(n, _)| *n == event);
            Frame::Array(series.map_or_else(Vec::new, |(_, ts)| {
                ts.history()
                    .map(|s| {
                        Frame::Array(vec![
                            Frame::Integer(s.time),
                            Frame::Integer(i64::try_from(s.latency).unwrap_or(i64::MAX)),
                        ])
                    })
                    .collect()
            }))
        }
        Ok("reset") => {
            let names: Vec<String> = args
                .iter()
                .skip(2)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            int(mon.reset(&names))
        }
        Ok("doctor") => Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from(doctor(ks)),
        },
        Ok("histogram") => histogram(ks, args.get(2..).unwrap_or_default()),
        Ok("graph") => {
            let event = String::from_utf8_lossy(arg(args, 2));
            match mon.events().into_iter().find(|(n, _)| *n == event) {
                Some((name, ts)) => Frame::Verbatim {
                    format: *b"txt",
                    text: Bytes::from(latency_graph(&name, &ts, unix_now())),
                },
                None => Frame::error(format!("ERR No samples available for event '{event}'")),
            }
        }
        Ok(_) => help(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ]),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Redis' `LATENCY_GRAPH_COLS`.
const GRAPH_COLS: usize = 80;

/// Redis' `latencyCommandGenSparkeline`: a header with the high and low of
/// the samples shown and the all-time high, a ruler, and the samples as a
/// filled 4-row sparkline labelled with how long ago each was taken
/// (`now`: unix seconds), oldest first.
fn latency_graph(event: &str, ts: &Series, now: i64) -> String {
    let mut seq = Sparkline::default();
    let (mut min, mut max) = (0, 0);
    for s in ts.history() {
        if seq.samples.is_empty() {
            (min, max) = (s.latency, s.latency);
        } else {
            max = max.max(s.latency);
            min = min.min(s.latency);
        }
        let elapsed = now - s.time;
        let label = if elapsed < 60 {
            format!("{elapsed}s")
        } else if elapsed < 3600 {
            format!("{}m", elapsed / 60)
        } else if elapsed < 3600 * 24 {
            format!("{}h", elapsed / 3600)
        } else {
            format!("{}d", elapsed / (3600 * 24))
        };
        seq.add(s.latency as f64, label);
    }
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        ts.max
    );
    out.push_str(&"-".repeat(GRAPH_COLS));
    out.push('\n');
    seq.render(&mut out, GRAPH_COLS, 4);
    out
}

/// Redis' `sparkline.c` sequence, rendered with `SPARKLINE_FILL`.
#[derive(Default)]
struct Sparkline {
    samples: Vec<(f64, String)>,
    min: f64,
    max: f64,
    labels: usize,
}

impl Sparkline {
    /// `sparklineSequenceAddSample` (an empty label counts as none).
    fn add(&mut self, value: f64, label: String) {
        if self.samples.is_empty() {
            (self.min, self.max) = (value, value);
        } else if value < self.min {
            self.min = value;
        } else if value > self.max {
            self.max = value;
        }
        if !label.is_empty() {
            self.labels += 1;
        }
        self.samples.push((value, label));
    }

    /// `sparklineRender`: `columns` samples per block, blocks separated by
    /// an empty line.
    fn render(&self, out: &mut String, columns: usize, rows: usize) {
        for (i, block) in self.samples.chunks(columns).enumerate() {
            if i != 0 {
                out.push('\n');
            }
            self.render_range(out, block, rows);
        }
    }

    /// `sparklineRenderRange`: `rows` rows of bars (`_o#`, `|` below the
    /// top), a blank row, then the labels written downwards.
    fn render_range(&self, out: &mut String, block: &[(f64, String)], rows: usize) {
        const FILL: &[u8; 3] = b"_o#";
        let charset_len = FILL.len() as i64;
        let mut relmax = self.max - self.min;
        if relmax == 0.0 {
            relmax = 1.0;
        }
        let steps = charset_len * rows as i64;
        let mut row = 0usize;
        loop {
            let mut more = false;
            let mut chars = vec![b' '; block.len()];
            for (j, (value, label)) in block.iter().enumerate() {
                // C's `(int) (relval*steps)/relmax`: the product truncated,
                // then the quotient truncated.
                let relval = value - self.min;
                let step = (f64::from((relval * steps as f64) as i32) / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < rows {
                    let idx = step - (rows - row - 1) as i64 * charset_len;
                    more = true;
                    if (0..charset_len).contains(&idx) {
                        chars[j] = FILL[idx as usize];
                    } else if idx >= charset_len {
                        chars[j] = b'|';
                    }
                } else {
                    // One blank row between the bars and the labels.
                    if self.labels > 0 && row - rows < 1 {
                        more = true;
                        break;
                    }
                    if let Some(&c) = (row - rows)
                        .checked_sub(1)
                        .and_then(|i| label.as_bytes().get(i))
                    {
                        more = true;
                        chars[j] = c;
                    }
                }
            }
            if !more {
                break;
            }
            row += 1;
            out.push_str(&String::from_utf8_lossy(&chars));
            out.push('\n');
        }
    }
}

/// `LATENCY HISTOGRAM [command ...]`: each command's (or, for a
/// container, each subcommand's) calls and cumulative latency buckets.
fn histogram(ks: &Keyspace, names: &[Bytes]) -> Frame {
    let table = &ks.inner.table;
    let stats = &ks.inner.stats;
    let mut slots: Vec<usize> = Vec::new();
    if names.is_empty() {
        slots.extend(0..table.stat_names.len());
    } else {
        for n in names {
            let full = String::from_utf8_lossy(n).to_ascii_lowercase();
            let (container, sub) = match full.split_once('|') {
                Some((c, s)) => (c.to_owned(), Some(s.to_owned())),
                None => (full.clone(), None),
            };
            let Some(c) = table.lookup(container.as_bytes()) else {
                continue;
            };
            match sub {
                Some(sub) => {
                    if let Some(i) = c.spec.subs.iter().position(|(n, _)| is(sub.as_bytes(), n)) {
                        slots.push(c.stat + 1 + i);
                    }
                }
                None if !c.spec.subs.is_empty() => {
                    slots.extend((0..c.spec.subs.len()).map(|i| c.stat + 1 + i));
                }
                None => slots.push(c.stat),
            }
        }
    }
    let mut out = Vec::new();
    for slot in slots {
        let Some(h) = stats.histogram(slot) else {
            continue;
        };
        let Some(name) = table.stat_names.get(slot) else {
            continue;
        };
        let buckets = h
            .log_buckets()
            .into_iter()
            .map(|(us, n)| {
                (
                    Frame::Integer(i64::try_from(us).unwrap_or(i64::MAX)),
                    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
                )
            })
            .collect();
        out.push((
            Frame::bulk(name.as_str()),
            Frame::Map(vec![
                (
                    Frame::bulk("calls"),
                    Frame::Integer(i64::try_from(h.total()).unwrap_or(i64::MAX)),
                ),
                (Frame::bulk("histogram_usec"), Frame::Map(buckets)),
            ]),
        ));
    }
    Frame::Map(out)
}

/// Redis' `analyzeLatencyForEvent`: (samples, avg, mean deviation,
/// period in seconds).
fn analyze(ts: &Series) -> (u64, u64, u64, i64) {
    let samples: Vec<_> = ts.history().collect();
    let n = samples.len() as u64;
    if n == 0 {
        return (0, 0, 0, 0);
    }
    let sum: u64 = samples.iter().map(|s| s.latency).sum();
    let avg = sum / n;
    let oldest = samples.iter().map(|s| s.time).min().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let period = (now - oldest).max(1);
    let mad = samples.iter().map(|s| s.latency.abs_diff(avg)).sum::<u64>() / n;
    (n, avg, mad, period)
}

/// Redis' `createLatencyReport`, for the events cairn records
/// (`command`, `fast-command`, `expire-cycle`).
fn doctor(ks: &Keyspace) -> String {
    let mon = &ks.inner.latency;
    let events = mon.events();
    let threshold = mon.threshold.load(Ordering::Relaxed);
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_owned();
    }
    let slower_than = ks.inner.slowlog.slower_than.load(Ordering::Relaxed);
    let (mut slowlog_enabled, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
    let (mut scheduler, mut hz, mut large_objects) = (false, false, false);
    let mut advices = 0;
    let mut report = String::new();
    for (i, (event, ts)) in events.iter().enumerate() {
        if i == 0 {
            report.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let (n, avg, mad, period) = analyze(ts);
        let _ = write!(
            report,
            "{}. {event}: {n} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
            i + 1,
            period as f64 / n.max(1) as f64,
            ts.max
        );
        match event.as_str() {
            "command" => {
                if slower_than == 0 {
                    slowlog_enabled = true;
                    advices += 1;
                } else if slower_than / 1000 > threshold {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "expire-cycle" => {
                hz = true;
                large_objects = true;
                advices += 2;
            }
            _ => {}
        }
        report.push('\n');
    }
    if events.is_empty() {
        report.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return report;
    }
    if advices == 0 {
        report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return report;
    }
    report.push_str("\nI have a few advices for you:\n\n");
    if slowlog_enabled {
        let _ = writeln!(
            report,
            "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.",
            threshold * 1000
        );
    }
    if slowlog_tuning {
        let _ = writeln!(
            report,
            "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.",
            threshold * 1000
        );
    }
    if slowlog_inspect {
        report.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        report.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    let hz_value = ks
        .config_param("hz")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(10);
    if hz && hz_value < 100 {
        report.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if large_objects {
        report.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slowlog::{Sample, TS_LEN};

    fn series(samples: &[(i64, u64)]) -> Series {
        let mut ts = Series {
            idx: 0,
            max: 0,
            samples: [Sample::default(); TS_LEN],
        };
        for &(time, latency) in samples {
            ts.samples[ts.idx] = Sample { time, latency };
            ts.idx = (ts.idx + 1) % TS_LEN;
            ts.max = ts.max.max(latency);
        }
        ts
    }

    #[test]
    fn latency_graph_draws_as_redis_sparkline() {
        let ts = series(&[(998, 10), (999, 20), (1000, 40)]);
        let want = format!(
            "ev - high 40 ms, low 10 ms (all time high 40 ms)\n{}\n  #\n  |\n o|\n_||\n   \n210\nsss\n",
            "-".repeat(80)
        );
        assert_eq!(latency_graph("ev", &ts, 1000), want);
        // One sample: no range, the lowest bar; labels in minutes, hours
        // and days past a minute.
        let ts = series(&[(1000 - 7200, 5)]);
        let want = format!(
            "ev - high 5 ms, low 5 ms (all time high 5 ms)\n{}\n \n \n \n_\n \n2\nh\n",
            "-".repeat(80)
        );
        assert_eq!(latency_graph("ev", &ts, 1000), want);
    }

    #[test]
    fn sparkline_wraps_at_the_column_count() {
        let mut seq = Sparkline::default();
        for v in [1.0, 2.0, 3.0] {
            seq.add(v, String::new());
        }
        let mut out = String::new();
        seq.render(&mut out, 2, 1);
        // No labels: no blank row; two blocks, an empty line between.
        assert_eq!(out, "_o\n\n#\n");
    }
}
