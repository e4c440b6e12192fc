//! Redis' geohash (`geohash.c`, `geohash_helper.c`), reproduced operation
//! for operation so that scores, positions, distances and the cells a
//! search visits are bit-identical to Redis 7.0's.
//!
//! A position is a 52-bit integer: 26 bits of latitude (in
//! ±[`LAT_MAX`], the Web Mercator limits, not ±90) interleaved with 26
//! bits of longitude, latitude in the even bits. Geo sets store it as the
//! sorted-set score. A search derives a cell size from the radius, takes
//! the cell holding the centre and its 8 neighbours, drops those the
//! bounding box of the search cannot reach, and scans each as a score
//! range; points are then filtered by exact distance (or box membership).

/// Bits per coordinate in a stored score.
pub(crate) const STEP_MAX: u8 = 26;
/// Latitude limit: Web Mercator (EPSG:3857) cannot represent the poles.
pub(crate) const LAT_MAX: f64 = 85.051_128_78;
/// Longitude limit.
pub(crate) const LONG_MAX: f64 = 180.0;
/// Earth's quadratic mean radius (WGS-84), as Redis uses it.
pub(crate) const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// A coordinate range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Range {
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// The ranges geo sets encode with.
pub(crate) const LONG_RANGE: Range = Range {
    min: -LONG_MAX,
    max: LONG_MAX,
};
/// See [`LONG_RANGE`].
pub(crate) const LAT_RANGE: Range = Range {
    min: -LAT_MAX,
    max: LAT_MAX,
};

/// A cell: `step` bits per coordinate, interleaved in the low bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Bits {
    pub(crate) bits: u64,
    pub(crate) step: u8,
}

impl Bits {
    /// Redis' `HASHISZERO`: a pruned neighbour.
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A cell's extent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Area {
    pub(crate) lon: Range,
    pub(crate) lat: Range,
}

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = u64::from(xlo);
    let mut y = u64::from(ylo);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
        0x0000_0000_FFFF_FFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode`: `None` outside the geo limits or the given ranges.
pub(crate) fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Bits> {
    if !(1..=32).contains(&step) {
        return None;
    }
    if !(-LONG_MAX..=LONG_MAX).contains(&lon) || !(-LAT_MAX..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_r.min) / (lat_r.max - lat_r.min) * scale;
    let lon_offset = (lon - lon_r.min) / (lon_r.max - lon_r.min) * scale;
    // C converts to uint32_t by truncation; the offsets are in 0..=2^32.
    Some(Bits {
        bits: interleave64(lat_offset as u32, lon_offset as u32),
        step,
    })
}

/// `geohashEncodeWGS84`.
pub(crate) fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Bits> {
    encode(LONG_RANGE, LAT_RANGE, lon, lat, step)
}

/// `geohashDecode`.
pub(crate) fn decode(lon_r: Range, lat_r: Range, hash: Bits) -> Area {
    let step = u32::from(hash.step);
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_r.max - lat_r.min;
    let lon_scale = lon_r.max - lon_r.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    Area {
        lat: Range {
            min: lat_r.min + (f64::from(ilato) / div) * lat_scale,
            max: lat_r.min + (f64::from(ilato.wrapping_add(1)) / div) * lat_scale,
        },
        lon: Range {
            min: lon_r.min + (f64::from(ilono) / div) * lon_scale,
            max: lon_r.min + (f64::from(ilono.wrapping_add(1)) / div) * lon_scale,
        },
    }
}

/// `geohashDecodeAreaToLongLat`: the cell's centre, clamped to the limits.
fn area_centre(a: &Area) -> (f64, f64) {
    let lon = ((a.lon.min + a.lon.max) / 2.0).clamp(-LONG_MAX, LONG_MAX);
    let lat = ((a.lat.min + a.lat.max) / 2.0).clamp(-LAT_MAX, LAT_MAX);
    (lon, lat)
}

/// C's `(uint64_t)score` on x86-64 as gcc compiles it: truncation below
/// 2^63 (negative values wrap through `cvttsd2si`), the 2^63.. range
/// shifted, and the "integer indefinite" result (2^63) for what does not
/// fit, which the 2^63.. path turns into 0.
fn score_to_u64(score: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let cvtt = |v: f64| -> u64 {
        if !(-TWO63..TWO63).contains(&v) {
            1 << 63
        } else {
            (v as i64) as u64
        }
    };
    if score >= TWO63 {
        cvtt(score - TWO63) ^ (1 << 63)
    } else {
        cvtt(score)
    }
}

/// Redis' `decodeGeohash`: the (longitude, latitude) a geo set score
/// stands for (the centre of its 52-bit cell).
pub(crate) fn decode_score(score: f64) -> (f64, f64) {
    let hash = Bits {
        bits: score_to_u64(score),
        step: STEP_MAX,
    };
    area_centre(&decode(LONG_RANGE, LAT_RANGE, hash))
}

/// `geohashAlign52Bits`.
pub(crate) fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

/// The score GEOADD stores for a valid position.
pub(crate) fn score_of(lon: f64, lat: f64) -> Option<f64> {
    encode_wgs84(lon, lat, STEP_MAX).map(|h| align52(h) as f64)
}

/// The standard 11-character geohash GEOHASH replies with: the decoded
/// position re-encoded over ±90 latitude, the 11th character always `0`.
pub(crate) fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let std_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode(LONG_RANGE, std_lat, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    out
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    hash.bits = x | y;
}

/// The 8 neighbours of a cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Neighbors {
    pub(crate) north: Bits,
    pub(crate) east: Bits,
    pub(crate) west: Bits,
    pub(crate) south: Bits,
    pub(crate) north_east: Bits,
    pub(crate) south_east: Bits,
    pub(crate) north_west: Bits,
    pub(crate) south_west: Bits,
}

/// `geohashNeighbors` (the grid wraps around at its edges).
pub(crate) fn neighbors(hash: Bits) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        north_east: at(1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

/// `geohashEstimateStepsByRadius`.
pub(crate) fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The area a search covers, centred on a position, in meters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    /// BYRADIUS (and GEORADIUS): the radius in the unit.
    Radius(f64),
    /// BYBOX: width and height in the unit.
    Box(f64, f64),
}

/// A search: its centre, shape and unit (meters per unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Search {
    pub(crate) lon: f64,
    pub(crate) lat: f64,
    pub(crate) shape: Shape,
    pub(crate) conversion: f64,
}

/// The cells a search scans: the centre first, then north, south, east,
/// west, north-east, north-west, south-east, south-west, pruned ones
/// left out (Redis' `membersOfAllNeighbors` order).
pub(crate) fn search_cells(s: &Search) -> Vec<Bits> {
    let (lon, lat) = (s.lon, s.lat);
    let (half_h, half_w, radius) = match s.shape {
        Shape::Radius(r) => (r, r, r),
        Shape::Box(w, h) => (
            h / 2.0,
            w / 2.0,
            ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        ),
    };
    // geohashBoundingBox
    let height = s.conversion * half_h;
    let width = s.conversion * half_w;
    let lat_delta = rad_deg(height / EARTH_RADIUS_M);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat + lat_delta).cos());
    let long_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat - lat_delta).cos());
    let southern = lat < 0.0;
    let min_lon = if southern {
        lon - long_delta_bottom
    } else {
        lon - long_delta_top
    };
    let max_lon = if southern {
        lon + long_delta_bottom
    } else {
        lon + long_delta_top
    };
    let min_lat = lat - lat_delta;
    let max_lat = lat + lat_delta;

    let radius_meters = radius * s.conversion;
    let mut steps = estimate_steps(radius_meters, lat);
    let at = |steps: u8| {
        let hash = encode_wgs84(lon, lat, steps).unwrap_or_default();
        (hash, neighbors(hash), decode(LONG_RANGE, LAT_RANGE, hash))
    };
    let (mut hash, mut nb, mut area) = at(steps);

    let north = decode(LONG_RANGE, LAT_RANGE, nb.north);
    let south = decode(LONG_RANGE, LAT_RANGE, nb.south);
    let east = decode(LONG_RANGE, LAT_RANGE, nb.east);
    let west = decode(LONG_RANGE, LAT_RANGE, nb.west);
    let decrease = north.lat.max < max_lat
        || south.lat.min > min_lat
        || east.lon.max < max_lon
        || west.lon.min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        (hash, nb, area) = at(steps);
    }
    if steps >= 2 {
        let zero = Bits::default();
        if area.lat.min < min_lat {
            nb.south = zero;
            nb.south_west = zero;
            nb.south_east = zero;
        }
        if area.lat.max > max_lat {
            nb.north = zero;
            nb.north_east = zero;
            nb.north_west = zero;
        }
        if area.lon.min < min_lon {
            nb.west = zero;
            nb.south_west = zero;
            nb.north_west = zero;
        }
        if area.lon.max > max_lon {
            nb.east = zero;
            nb.south_east = zero;
            nb.north_east = zero;
        }
    }
    let all = [
        hash,
        nb.north,
        nb.south,
        nb.east,
        nb.west,
        nb.north_east,
        nb.north_west,
        nb.south_east,
        nb.south_west,
    ];
    let mut out: Vec<Bits> = Vec::with_capacity(9);
    let mut last: Option<Bits> = None;
    for (i, c) in all.into_iter().enumerate() {
        if c.is_zero() {
            continue;
        }
        // A huge radius can make adjacent neighbours the same cell; Redis
        // skips one equal to the last processed (never the centre: its
        // `last_processed` index 0 reads as "none").
        if last.is_some_and(|l| l == c) {
            continue;
        }
        out.push(c);
        if i > 0 {
            last = Some(c);
        }
    }
    out
}

/// The score range `[min, max)` holding every point of a cell.
pub(crate) fn cell_scores(hash: Bits) -> (f64, f64) {
    let min = align52(hash);
    let max = align52(Bits {
        bits: hash.bits + 1,
        step: hash.step,
    });
    (min as f64, max as f64)
}

/// `geohashGetLatDistance`.
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// `geohashGetDistance`: haversine on a sphere of [`EARTH_RADIUS_M`].
pub(crate) fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// Redis' `geoWithinShape`: the point of `score` and its distance from
/// the centre (in meters) if it lies in the search area.
pub(crate) fn within(s: &Search, score: f64) -> Option<(f64, f64, f64)> {
    let (x, y) = decode_score(score);
    let d = match s.shape {
        Shape::Radius(r) => {
            let d = distance(s.lon, s.lat, x, y);
            if d > r * s.conversion {
                return None;
            }
            d
        }
        Shape::Box(w, h) => {
            let (w, h) = (w * s.conversion, h * s.conversion);
            if lat_distance(y, s.lat) > h / 2.0 {
                return None;
            }
            if distance(x, y, s.lon, y) > w / 2.0 {
                return None;
            }
            distance(s.lon, s.lat, x, y)
        }
    };
    Some((x, y, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values read from redis-server 7.0.15 (`GEOADD`, `ZSCORE`, `GEOPOS`,
    /// `GEOHASH`, `GEODIST`).
    #[test]
    fn matches_redis_values() {
        assert_eq!(
            score_of(13.361389, 38.115556),
            Some(3_479_099_956_230_698.0)
        );
        assert_eq!(
            score_of(15.087269, 37.502669),
            Some(3_479_447_370_796_909.0)
        );
        let (lon, lat) = decode_score(3_479_099_956_230_698.0);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        let (lon2, lat2) = decode_score(3_479_447_370_796_909.0);
        assert_eq!(
            format!("{:.4}", distance(lon, lat, lon2, lat2) / 1000.0),
            "166.2742"
        );
        assert_eq!(&geohash_string(3_479_099_956_230_698.0), b"sqc8b49rny0");
        assert_eq!(&geohash_string(3_479_447_370_796_909.0), b"sqdtr74hyu0");
    }

    #[test]
    fn encode_decode_round_trip_within_a_cell() {
        for &(lon, lat) in &[
            (0.0, 0.0),
            (-180.0, -85.05112878),
            (180.0, 85.05112878),
            (179.9999, -0.5),
        ] {
            let s = score_of(lon, lat);
            let Some(s) = s else {
                panic!("{lon},{lat} refused")
            };
            let (x, y) = decode_score(s);
            assert!(
                (x - lon).abs() < 1e-5 && (y - lat).abs() < 1e-5,
                "{lon},{lat} -> {x},{y}"
            );
        }
        assert_eq!(score_of(180.1, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
    }

    #[test]
    fn interleave_inverts() {
        for &(a, b) in &[
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            let d = deinterleave64(interleave64(a, b));
            assert_eq!((d as u32, (d >> 32) as u32), (a, b));
        }
    }

    #[test]
    fn neighbours_are_adjacent_and_wrap() {
        let h = Bits {
            bits: 0b1001,
            step: 2,
        };
        let n = neighbors(h);
        let a = decode(LONG_RANGE, LAT_RANGE, h);
        let north = decode(LONG_RANGE, LAT_RANGE, n.north);
        let east = decode(LONG_RANGE, LAT_RANGE, n.east);
        assert_eq!(north.lat.min, a.lat.max);
        assert_eq!(north.lon, a.lon);
        assert_eq!(east.lon.min, a.lon.max);
        assert_eq!(east.lat, a.lat);
        // The easternmost cell's east neighbour is the westernmost one.
        let edge = encode_wgs84(179.9, 0.0, 4).unwrap_or_default();
        let e = decode(LONG_RANGE, LAT_RANGE, neighbors(edge).east);
        assert_eq!(e.lon.min, -180.0);
    }

    #[test]
    fn steps_by_radius() {
        assert_eq!(estimate_steps(0.0, 0.0), 26);
        assert_eq!(estimate_steps(1000.0, 0.0), 14);
        assert_eq!(estimate_steps(1000.0, 70.0), 13);
        assert_eq!(estimate_steps(1000.0, -81.0), 12);
        assert_eq!(estimate_steps(1e9, 0.0), 1);
    }
}
