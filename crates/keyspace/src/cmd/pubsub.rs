//! Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
//! PUBSUB, and the sharded variants (a single shard here).
//!
//! A command that confirms several channels answers with several frames,
//! all pushed through the session's event channel while the registry is
//! locked for writing; the command itself has no reply
//! ([`Outcome::NoReply`]). PUBLISH sends under the same lock (for reading),
//! so a message on these channels is queued either before the command or
//! after its last confirmation, as in Redis where both are sequential. Being
//! pushes, confirmations are written even under `CLIENT REPLY OFF`, as in
//! Redis 7.0.

use bytes::Bytes;
use cairn_resp::{Event, Frame, Outcome};

use super::{Ctx, TableBuilder, int, subcommand};
use crate::pubsub::{Subscriber, Subscriptions};

const PUBSUB_SUBS: &[(&str, i32)] = &[
    ("channels", -2),
    ("numsub", -2),
    ("numpat", 2),
    ("shardchannels", -2),
    ("shardnumsub", -2),
    ("help", 2),
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("subscribe", subscribe);
    t.redis("unsubscribe", subscribe);
    t.redis("psubscribe", subscribe);
    t.redis("punsubscribe", subscribe);
    t.redis("ssubscribe", subscribe);
    t.redis("sunsubscribe", subscribe);
    t.redis("publish", publish);
    t.redis("spublish", publish);
    t.redis_with("pubsub", |s| s.subs(PUBSUB_SUBS), pubsub);
}

fn confirmation(kind: &'static str, name: Option<&Bytes>, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::bulk(kind),
        name.map_or(Frame::Null, |n| Frame::Bulk(n.clone())),
        int(count),
    ])
}

/// All four (un)subscribe commands. Shard channels are plain channels:
/// cairn is one shard.
fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let patterns = cmd.starts_with('p');
    let adding = !cmd.contains("unsub");
    let ks = ctx.ks;
    let st = &mut *ctx.session;
    let me = Subscriber {
        id: st.id,
        tx: st.events.clone(),
    };
    let mut reg = ks.inner.pubsub.write();
    let mut names: Vec<Bytes> = args.iter().skip(1).cloned().collect();
    if !adding && names.is_empty() {
        // Every current subscription, in subscription order.
        names = if patterns {
            st.patterns.clone()
        } else {
            st.channels.clone()
        };
    }
    let mut frames = Vec::with_capacity(names.len().max(1));
    if names.is_empty() {
        frames.push(confirmation(kind(cmd), None, st.subscriptions()));
    }
    for name in &names {
        let (mine, map) = if patterns {
            (&mut st.patterns, &mut reg.patterns)
        } else {
            (&mut st.channels, &mut reg.channels)
        };
        if adding {
            if Subscriptions::add(map, name, &me) {
                mine.push(name.clone());
            }
        } else if Subscriptions::remove(map, name, me.id) {
            mine.retain(|n| n != name);
        }
        frames.push(confirmation(kind(cmd), Some(name), st.subscriptions()));
    }
    // Inside EXEC the last confirmation is the command's element of the
    // EXEC reply (as in Redis, which writes it inline there); the earlier
    // ones go out before that reply.
    let last = if st.in_exec { frames.pop() } else { None };
    // Sent while the registry is still locked, so no message published to
    // these channels can overtake the confirmations.
    for f in frames {
        let _ = st.events.send(Event::Push(f));
    }
    drop(reg);
    match last {
        Some(f) => f,
        None => {
            ctx.special = Some(Outcome::NoReply);
            Frame::Null
        }
    }
}

fn kind(cmd: &'static str) -> &'static str {
    match cmd {
        "ssubscribe" => "ssubscribe",
        "sunsubscribe" => "sunsubscribe",
        other => other,
    }
}

fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(ch), Some(msg)) = (args.get(1), args.get(2)) else {
        return Frame::Integer(0);
    };
    int(ctx.ks.inner.pubsub.publish(ch, msg))
}

fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let ps = &ctx.ks.inner.pubsub;
    match subcommand("pubsub", args, PUBSUB_SUBS) {
        Err(e) => e,
        Ok("channels" | "shardchannels") if args.len() > 3 => Frame::error(format!(
            "ERR wrong number of arguments for 'pubsub|{}' command",
            String::from_utf8_lossy(args.get(1).map(|b| &b[..]).unwrap_or_default())
                .to_ascii_lowercase()
        )),
        Ok("channels" | "shardchannels") => {
            let pat = args.get(2).map(|b| &b[..]);
            Frame::Array(ps.channels(pat).into_iter().map(Frame::Bulk).collect())
        }
        Ok("numsub" | "shardnumsub") => {
            let mut out = Vec::new();
            for ch in args.iter().skip(2) {
                out.push(Frame::Bulk(ch.clone()));
                out.push(int(ps.numsub(ch)));
            }
            Frame::Array(out)
        }
        Ok("numpat") => int(ps.numpat()),
        Ok(_) => Frame::Array(
            [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        ),
    }
}
