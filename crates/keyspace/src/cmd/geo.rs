//! Geo commands (Redis 7.0's `geo` group): GEOADD, GEODIST, GEOHASH,
//! GEOPOS, GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH and
//! GEOSEARCHSTORE, following `geo.c`.
//!
//! A geo set is a sorted set scored by the 52-bit geohash of
//! [`crate::geohash`]; these commands read and write it through the
//! sorted-set family's code (GEOADD is ZADD with computed scores, stores
//! go through [`zset::store_result`], which wakes BZPOP clients).

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::zset::{self, AddFlags};
use super::{Ctx, ERR_NOT_FLOAT, ERR_SYNTAX, TableBuilder, err, is, parse_int};
use crate::geohash::{self, LAT_MAX, LONG_MAX, Search, Shape};
use crate::notify::Class;
use crate::num::parse_score;
use crate::pqsort::pqsort;
use crate::value::SortedSet;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("geoadd", geoadd);
    t.redis("geodist", geodist);
    t.redis("geohash", geohash_cmd);
    t.redis("geopos", geopos);
    t.redis("georadius", georadius);
    t.redis("georadius_ro", georadius);
    t.redis("georadiusbymember", georadius);
    t.redis("georadiusbymember_ro", georadius);
    t.redis("geosearch", georadius);
    t.redis("geosearchstore", georadius);
}

/// `getDoubleFromObjectOrReply` with Redis' message (or its default).
fn double(a: &[u8], msg: Option<&'static str>) -> Result<f64, Frame> {
    parse_score(a).ok_or_else(|| err(msg.unwrap_or(ERR_NOT_FLOAT)))
}

/// `extractLongLatOrReply`: both parsed first, then the range checked.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), Frame> {
    let x = double(lon, None)?;
    let y = double(lat, None)?;
    if !(-LONG_MAX..=LONG_MAX).contains(&x) || !(-LAT_MAX..=LAT_MAX).contains(&y) {
        return Err(Frame::error(format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok((x, y))
}

/// `extractUnitOrReply`: meters per unit.
fn unit(a: &[u8]) -> Result<f64, Frame> {
    if is(a, "m") {
        Ok(1.0)
    } else if is(a, "km") {
        Ok(1000.0)
    } else if is(a, "ft") {
        Ok(0.3048)
    } else if is(a, "mi") {
        Ok(1609.34)
    } else {
        Err(err(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// `addReplyDoubleDistance`: four decimals, as a bulk string.
fn distance_reply(d: f64) -> Frame {
    Frame::Bulk(Bytes::from(format!("{d:.4}")))
}

/// `addReplyHumanLongDouble` of a double: `%.17Lf` (the exact value of
/// the double to 17 decimals) with trailing zeros and dot removed.
fn coord_reply(v: f64) -> Frame {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".to_owned();
    }
    Frame::DoubleText(Bytes::from(s))
}

fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut f = AddFlags::default();
    let mut i = 2;
    while let Some(a) = args.get(i) {
        if is(a, "nx") {
            f.nx = true;
        } else if is(a, "xx") {
            f.xx = true;
        } else if is(a, "ch") {
            f.ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = args.get(i..).unwrap_or_default();
    if rest.len() % 3 != 0 || (f.xx && f.nx) {
        return err(ERR_SYNTAX);
    }
    // ZADD's own check, reached with no element (`GEOADD k nx ch ch`).
    if rest.is_empty() {
        return err(ERR_SYNTAX);
    }
    let mut elems = Vec::with_capacity(rest.len() / 3);
    for t in rest.chunks_exact(3) {
        let (Some(lon), Some(lat), Some(m)) = (t.first(), t.get(1), t.get(2)) else {
            continue;
        };
        let (x, y) = match lon_lat(lon, lat) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let Some(score) = geohash::score_of(x, y) else {
            return err(ERR_SYNTAX);
        };
        elems.push((score, &m[..]));
    }
    zset::add_elements(ctx, arg(args, 1), &elems, f)
}

fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let to_meter = match args.len() {
        5 => match unit(arg(args, 4)) {
            Ok(u) => u,
            Err(e) => return e,
        },
        n if n > 5 => return err(ERR_SYNTAX),
        _ => 1.0,
    };
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    match zset::read(&mut shard, key) {
        Err(e) => e,
        Ok(None) => Frame::Null,
        Ok(Some(z)) => match (z.score(arg(args, 2)), z.score(arg(args, 3))) {
            (Some(a), Some(b)) => {
                let (x1, y1) = geohash::decode_score(a);
                let (x2, y2) = geohash::decode_score(b);
                distance_reply(geohash::distance(x1, y1, x2, y2) / to_meter)
            }
            _ => Frame::Null,
        },
    }
}

fn geohash_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let z = match zset::read(&mut shard, key) {
        Err(e) => return e,
        Ok(z) => z,
    };
    Frame::Array(
        args.iter()
            .skip(2)
            .map(|m| match z.and_then(|z| z.score(m)) {
                None => Frame::Null,
                Some(s) => Frame::bulk(geohash::geohash_string(s)),
            })
            .collect(),
    )
}

fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let z = match zset::read(&mut shard, key) {
        Err(e) => return e,
        Ok(z) => z,
    };
    Frame::Array(
        args.iter()
            .skip(2)
            .map(|m| match z.and_then(|z| z.score(m)) {
                None => Frame::NullArray,
                Some(s) => {
                    let (x, y) = geohash::decode_score(s);
                    Frame::Array(vec![coord_reply(x), coord_reply(y)])
                }
            })
            .collect(),
    )
}

/// Which command of the search family runs (Redis' `flags`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GEORADIUS[_RO]: centre from arguments 2 and 3.
    Coords,
    /// GEORADIUSBYMEMBER[_RO]: centre from the member at argument 2.
    Member,
    /// GEOSEARCH / GEOSEARCHSTORE: FROM* and BY* options.
    Search,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A point found by a search.
struct Found {
    member: Bytes,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// Redis' `georadiusGeneric`.
fn georadius(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let (kind, nostore, searchstore) = match cmd {
        "georadius" => (Kind::Coords, false, false),
        "georadius_ro" => (Kind::Coords, true, false),
        "georadiusbymember" => (Kind::Member, false, false),
        "georadiusbymember_ro" => (Kind::Member, true, false),
        "geosearch" => (Kind::Search, false, false),
        _ => (Kind::Search, false, true),
    };
    let src = if searchstore {
        arg(args, 2)
    } else {
        arg(args, 1)
    };
    let mut store: Option<&[u8]> = if searchstore {
        Some(arg(args, 1))
    } else {
        None
    };
    // Every key the command may touch is named by its arguments; lock
    // them all up front (the STORE key is found while parsing, so lock
    // any argument that could be it: the option values).
    let db = ctx.db();
    let mut keys: Vec<&[u8]> = vec![src];
    if let Some(s) = store {
        keys.push(s);
    }
    if matches!(kind, Kind::Coords | Kind::Member) && !nostore {
        for w in args.windows(2) {
            if let [a, b] = w
                && (is(a, "store") || is(a, "storedist"))
            {
                keys.push(b);
            }
        }
    }
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, *k)));
    // The source is read with `lookupKeyRead`, by the storing forms too.
    let reading = crate::stats::reads(true);
    let zobj: Option<&SortedSet> = match zset::read(locked.shard(db, src), src) {
        Err(e) => return e,
        Ok(z) => z,
    };
    drop(reading);

    let mut centre: Option<(f64, f64)> = None;
    let mut shape: Option<(Shape, f64)> = None;
    let base = match kind {
        Kind::Coords => {
            match lon_lat(arg(args, 2), arg(args, 3)) {
                Ok(p) => centre = Some(p),
                Err(e) => return e,
            }
            match radius(arg(args, 4), arg(args, 5)) {
                Ok(s) => shape = Some(s),
                Err(e) => return e,
            }
            6
        }
        Kind::Member => {
            if let Some(z) = zobj {
                match z.score(arg(args, 2)) {
                    Some(s) => centre = Some(geohash::decode_score(s)),
                    None => return err("ERR could not decode requested zset member"),
                }
                match radius(arg(args, 3), arg(args, 4)) {
                    Ok(s) => shape = Some(s),
                    Err(e) => return e,
                }
            }
            5
        }
        Kind::Search => {
            if searchstore {
                3
            } else {
                2
            }
        }
    };

    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let mut storedist = false;
    let search = kind == Kind::Search;
    let opts = args.get(base..).unwrap_or_default();
    let mut i = 0;
    while let Some(a) = opts.get(i) {
        let remaining = opts.len();
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            sort = Sort::Asc;
        } else if is(a, "desc") {
            sort = Sort::Desc;
        } else if is(a, "count") && i + 1 < remaining {
            match parse_int(arg(opts, i + 1)) {
                Ok(c) => count = c,
                Err(e) => return e,
            }
            if count <= 0 {
                return err("ERR COUNT must be > 0");
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && i + 1 < remaining && !nostore && !search
        {
            store = Some(arg(opts, i + 1));
            storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && searchstore {
            storedist = true;
        } else if is(a, "frommember") && i + 1 < remaining && search && !fromloc {
            if let Some(z) = zobj {
                match z.score(arg(opts, i + 1)) {
                    Some(s) => centre = Some(geohash::decode_score(s)),
                    None => return err("ERR could not decode requested zset member"),
                }
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && i + 2 < remaining && search && !frommember {
            match lon_lat(arg(opts, i + 1), arg(opts, i + 2)) {
                Ok(p) => centre = Some(p),
                Err(e) => return e,
            }
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && i + 2 < remaining && search && !bybox {
            match radius(arg(opts, i + 1), arg(opts, i + 2)) {
                Ok(s) => shape = Some(s),
                Err(e) => return e,
            }
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && i + 3 < remaining && search && !byradius {
            match bbox(arg(opts, i + 1), arg(opts, i + 2), arg(opts, i + 3)) {
                Ok(s) => shape = Some(s),
                Err(e) => return e,
            }
            bybox = true;
            i += 3;
        } else {
            return err(ERR_SYNTAX);
        }
        i += 1;
    }

    if store.is_some() && (withdist || withhash || withcoord) {
        return Frame::error(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if searchstore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    if search && !(frommember || fromloc) {
        return Frame::error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            String::from_utf8_lossy(arg(args, 0))
        ));
    }
    if search && !(byradius || bybox) {
        return Frame::error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            String::from_utf8_lossy(arg(args, 0))
        ));
    }
    if any && count == 0 {
        return err("ERR the ANY argument requires COUNT argument");
    }

    let (Some(z), Some((lon, lat)), Some((shape, conversion))) = (zobj, centre, shape) else {
        // No source key.
        return match store {
            Some(dst) => {
                let shard = locked.shard(db, dst);
                if shard.remove(dst).is_some() {
                    shard.notify(Class::Generic, "del", dst);
                }
                Frame::Integer(0)
            }
            None => Frame::Array(Vec::new()),
        };
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let s = Search {
        lon,
        lat,
        shape,
        conversion,
    };
    let limit = if any {
        usize::try_from(count).unwrap_or(usize::MAX)
    } else {
        0
    };
    let mut found = scan(z, &s, limit);
    if found.is_empty() && store.is_none() {
        return Frame::Array(Vec::new());
    }
    let returned = if count == 0 {
        found.len()
    } else {
        found
            .len()
            .min(usize::try_from(count).unwrap_or(usize::MAX))
    };
    if sort != Sort::None {
        // Redis' comparator: by distance only, so points at the same
        // position tie and the algorithm decides their order.
        let desc = sort == Sort::Desc;
        let cmp = |a: &Found, b: &Found| {
            let o = a
                .dist
                .partial_cmp(&b.dist)
                .unwrap_or(std::cmp::Ordering::Equal);
            if desc { o.reverse() } else { o }
        };
        if returned == found.len() {
            // glibc's `qsort` merge-sorts: stable.
            found.sort_by(cmp);
        } else if returned > 0 {
            pqsort(&mut found, &cmp, 0, returned - 1);
        }
    }
    found.truncate(returned);
    let Some(dst) = store else {
        let options = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
        return Frame::Array(
            found
                .into_iter()
                .map(|p| {
                    let m = Frame::Bulk(p.member);
                    if options == 0 {
                        return m;
                    }
                    let mut item = Vec::with_capacity(options + 1);
                    item.push(m);
                    if withdist {
                        item.push(distance_reply(p.dist / conversion));
                    }
                    if withhash {
                        item.push(Frame::Integer(p.score as i64));
                    }
                    if withcoord {
                        item.push(Frame::Array(vec![coord_reply(p.lon), coord_reply(p.lat)]));
                    }
                    Frame::Array(item)
                })
                .collect(),
        );
    };
    let max_member = found.iter().map(|p| p.member.len()).max().unwrap_or(0);
    let mut out = SortedSet::with_size_hint(found.len(), max_member);
    for p in found {
        let score = if storedist {
            p.dist / conversion
        } else {
            p.score
        };
        out.insert(p.member, score);
    }
    let n = out.len();
    let shard = locked.shard(db, dst);
    let reply = zset::store_result(ctx, shard, dst, out);
    if n > 1 {
        shard.add_changes(n as u64 - 1);
    }
    reply
}

/// `extractDistanceOrReply`: the radius in its unit, and the unit.
fn radius(r: &[u8], u: &[u8]) -> Result<(Shape, f64), Frame> {
    let d = double(r, Some("ERR need numeric radius"))?;
    if d < 0.0 {
        return Err(err("ERR radius cannot be negative"));
    }
    Ok((Shape::Radius(d), unit(u)?))
}

/// `extractBoxOrReply`.
fn bbox(w: &[u8], h: &[u8], u: &[u8]) -> Result<(Shape, f64), Frame> {
    let w = double(w, Some("ERR need numeric width"))?;
    let h = double(h, Some("ERR need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(err("ERR height or width cannot be negative"));
    }
    Ok((Shape::Box(w, h), unit(u)?))
}

/// `membersOfAllNeighbors`: the points in the search area, cell by cell
/// in Redis' order, each cell in score order; with `limit` (ANY) it stops
/// once that many are found.
fn scan(z: &SortedSet, s: &Search, limit: usize) -> Vec<Found> {
    let mut out = Vec::new();
    for cell in geohash::search_cells(s) {
        if !out.is_empty() && limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::cell_scores(cell);
        let start = z.partition_point(|sc, _| sc < min);
        for (m, score) in z.range(start, z.len()) {
            if score >= max {
                break;
            }
            if let Some((lon, lat, dist)) = geohash::within(s, score) {
                out.push(Found {
                    member: m,
                    score,
                    lon,
                    lat,
                    dist,
                });
            }
            if !out.is_empty() && limit > 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

/// The key positions Redis' `georadiusGetKeys` reports for GEORADIUS and
/// GEORADIUSBYMEMBER (COMMAND GETKEYS): the source key and the last
/// STORE or STOREDIST destination, looked for from argument 5 on.
pub(crate) fn georadius_key_positions(args: &[Bytes]) -> Vec<usize> {
    let mut stored = None;
    let mut i = 5;
    while i < args.len() {
        let a = arg(args, i);
        if (is(a, "store") || is(a, "storedist")) && i + 1 < args.len() {
            stored = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    let mut keys = vec![1];
    keys.extend(stored);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn georadius_keys_as_redis_reports_them() {
        let a = args(&[
            "GEORADIUS",
            "k",
            "0",
            "0",
            "1",
            "km",
            "STORE",
            "a",
            "STOREDIST",
            "b",
        ]);
        assert_eq!(georadius_key_positions(&a), vec![1, 9]);
        let a = args(&["GEORADIUSBYMEMBER", "k", "m", "1", "km", "STORE"]);
        assert_eq!(georadius_key_positions(&a), vec![1]);
    }

    #[test]
    fn coordinates_print_as_redis_human_long_double() {
        let text = |v: f64| match coord_reply(v) {
            Frame::DoubleText(t) => String::from_utf8_lossy(&t).into_owned(),
            other => format!("{other:?}"),
        };
        assert_eq!(text(13.361_389_338_970_184), "13.36138933897018433");
        assert_eq!(text(180.0), "180");
        assert_eq!(text(-0.0), "0");
        assert_eq!(text(-85.051_127_512_639_43), "-85.05112751263942528");
    }
}
