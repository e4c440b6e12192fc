//! Client-side caching: `CLIENT TRACKING`, `CACHING`, `GETREDIR` and
//! `TRACKINGINFO`, with Redis 7.0.15's option checks and error texts. The
//! tables and the invalidation messages are in `notify.rs`.

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, ERR_SYNTAX, err, is, parse_int};
use crate::notify::TrackMode;

/// Redis' `stringCheckPrefix`: one is a prefix of the other.
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a.get(..n) == b.get(..n)
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]
pub(crate) fn client_tracking(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut redirect: Option<u64> = None;
    let mut mode = TrackMode::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while let Some(opt) = args.get(j) {
        let more = j + 1 < args.len();
        if is(opt, "redirect") && more {
            j += 1;
            if redirect.is_some() {
                return err("ERR A client can only redirect to a single other client");
            }
            let id = match parse_int(arg(args, j)) {
                Ok(n) => n,
                Err(e) => return e,
            };
            // Checked now, though the client may leave later (then the
            // redirect is reported broken).
            let exists = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.keyspace().inner.clients.get(id))
                .is_some();
            if !exists {
                return err("ERR The client ID you want redirect to does not exist");
            }
            redirect = u64::try_from(id).ok();
        } else if is(opt, "bcast") {
            mode.bcast = true;
        } else if is(opt, "optin") {
            mode.optin = true;
        } else if is(opt, "optout") {
            mode.optout = true;
        } else if is(opt, "noloop") {
            mode.noloop = true;
        } else if is(opt, "prefix") && more {
            j += 1;
            prefixes.push(args.get(j).cloned().unwrap_or_default());
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }
    let on = arg(args, 2);
    let notifier = &ctx.keyspace().engine().counters.notify;
    let id = ctx.session().id;
    if is(on, "off") {
        if ctx.session().tracking.take().is_some() {
            notifier.disable(id);
        }
        return Frame::ok();
    }
    if !is(on, "on") {
        return err(ERR_SYNTAX);
    }
    if !mode.bcast && !prefixes.is_empty() {
        return err("ERR PREFIX option requires BCAST mode to be enabled");
    }
    let current = ctx.session().tracking.clone();
    if let Some(cur) = &current
        && cur.bcast != mode.bcast
    {
        return err(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        );
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return err("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if mode.optin && mode.optout {
        return err("ERR You can't use both OPTIN and OPTOUT");
    }
    if let Some(cur) = &current
        && ((mode.optin && cur.optout) || (mode.optout && cur.optin))
    {
        return err(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        );
    }
    if mode.bcast {
        let existing = current.as_ref().map(|c| &c.prefixes);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(e) = existing.and_then(|e| e.iter().find(|e| overlaps(e, p))) {
                return Frame::error(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(e)
                ));
            }
            if let Some(q) = prefixes.iter().skip(i + 1).find(|q| overlaps(p, q)) {
                return Frame::error(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                ));
            }
        }
    }
    mode.redirect = redirect.unwrap_or(0);
    notifier.enable(id, mode, &prefixes);
    ctx.session().tracking = notifier.mode(id);
    Frame::ok()
}

/// CLIENT CACHING YES|NO: for the next command (OPTIN / OPTOUT).
pub(crate) fn client_caching(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let s = ctx.session();
    let Some(mode) = &s.tracking else {
        return err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    };
    let opt = arg(args, 2);
    if is(opt, "yes") {
        if !mode.optin {
            return err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if is(opt, "no") {
        if !mode.optout {
            return err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return err(ERR_SYNTAX);
    }
    s.caching = true;
    Frame::ok()
}

/// The live mode (the broken-redirect flag is set by the notifier).
fn live_mode(ctx: &mut Ctx<'_>) -> Option<TrackMode> {
    let id = ctx.session().id;
    ctx.session().tracking.as_ref()?;
    ctx.keyspace().engine().counters.notify.mode(id)
}

/// CLIENT GETREDIR: the redirect id, 0 without one, -1 when not tracking.
pub(crate) fn client_getredir(ctx: &mut Ctx<'_>) -> Frame {
    match live_mode(ctx) {
        Some(m) => Frame::Integer(i64::try_from(m.redirect).unwrap_or(i64::MAX)),
        None => Frame::Integer(-1),
    }
}

/// CLIENT TRACKINGINFO: flags (a set), redirect, prefixes.
pub(crate) fn client_trackinginfo(ctx: &mut Ctx<'_>) -> Frame {
    let caching = ctx.session().caching;
    let mode = live_mode(ctx);
    let mut flags = vec![Frame::bulk(if mode.is_some() { "on" } else { "off" })];
    let (redirect, prefixes) = match &mode {
        None => (-1, Vec::new()),
        Some(m) => {
            if m.bcast {
                flags.push(Frame::bulk("bcast"));
            }
            if m.optin {
                flags.push(Frame::bulk("optin"));
                if caching {
                    flags.push(Frame::bulk("caching-yes"));
                }
            }
            if m.optout {
                flags.push(Frame::bulk("optout"));
                if caching {
                    flags.push(Frame::bulk("caching-no"));
                }
            }
            if m.noloop {
                flags.push(Frame::bulk("noloop"));
            }
            if m.broken_redirect {
                flags.push(Frame::bulk("broken_redirect"));
            }
            (
                i64::try_from(m.redirect).unwrap_or(i64::MAX),
                m.prefixes.iter().cloned().map(Frame::Bulk).collect(),
            )
        }
    };
    Frame::Map(vec![
        (Frame::bulk("flags"), Frame::Set(flags)),
        (Frame::bulk("redirect"), Frame::Integer(redirect)),
        (Frame::bulk("prefixes"), Frame::Array(prefixes)),
    ])
}
