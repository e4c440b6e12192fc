//! LOLWUT: Redis 7.0 draws Georg Nees' Schotter for version 5
//! (`lolwut5.c`), a skyline of 8-bit skyscrapers for version 6
//! (`lolwut6.c`), and answers its version line for every other version.
//! Both drawings are random below their first rows, as in Redis.

use bytes::Bytes;
use cairn_resp::Frame;
use rand::Rng;

use super::Ctx;
use super::args::arg;
use super::is;

/// LOLWUT [VERSION v] [arg ...].
pub(crate) fn lolwut(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut rest = args.get(1..).unwrap_or_default();
    let mut version = None;
    if args.len() >= 3 && is(arg(args, 1), "version") {
        let Some(v) = crate::num::string2ll(arg(args, 2)) else {
            return Frame::error(NOT_AN_INTEGER);
        };
        // Redis prints it as an `unsigned int` ("%u.0.0") and picks the
        // drawing by the first characters of that text.
        version = Some(v as u32);
        rest = args.get(3..).unwrap_or_default();
    }
    let text = match version {
        Some(5) => match schotter_args(rest) {
            Ok((cols, per_row, per_col)) => {
                let mut t = render_braille(&draw_schotter(cols, per_row, per_col));
                t.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
                t.push_str(crate::REDIS_VERSION);
                t.push('\n');
                t
            }
            Err(e) => return e,
        },
        Some(6) => match skyline_args(rest) {
            Ok((cols, rows)) => {
                let mut t = render_grays(&draw_skyline(cols, rows));
                t.push_str(
                    "\nDedicated to the 8 bit game developers of past and present.\n\
                     Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
                );
                t.push_str(crate::REDIS_VERSION);
                t.push('\n');
                t
            }
            Err(e) => return e,
        },
        _ => format!("Redis ver. {}\n", crate::REDIS_VERSION),
    };
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// `lolwut5Command`'s arguments: terminal columns, squares per row and
/// per column (66, 8, 12 by default), each clamped to Redis' limits.
fn schotter_args(rest: &[Bytes]) -> Result<(i64, i64, i64), Frame> {
    let mut v = [66i64, 8, 12];
    for (slot, a) in v.iter_mut().zip(rest) {
        *slot = crate::num::string2ll(a).ok_or_else(|| Frame::error(NOT_AN_INTEGER))?;
    }
    let [cols, row, col] = v;
    Ok((cols.clamp(1, 1000), row.clamp(1, 200), col.clamp(1, 200)))
}

/// Redis' `lwCanvas`: one byte per pixel, the pixel's color (0 or 1 in
/// Schotter; four grays, 0 black to 3 white, in the skyline).
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// `lwCreateCanvas`: every pixel `background`.
    fn new(width: i32, height: i32, background: u8) -> Canvas {
        let n = usize::try_from(width.max(0)).unwrap_or(0)
            * usize::try_from(height.max(0)).unwrap_or(0);
        Canvas {
            width,
            height,
            pixels: vec![background; n],
        }
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return None;
        }
        usize::try_from(x + y * self.width).ok()
    }

    /// `lwDrawPixel`: pixels off the canvas are dropped.
    fn draw(&mut self, x: i32, y: i32, color: u8) {
        if let Some(p) = self.index(x, y).and_then(|i| self.pixels.get_mut(i)) {
            *p = color;
        }
    }

    fn set(&mut self, x: i32, y: i32) {
        self.draw(x, y, 1);
    }

    /// `lwGetPixel`: 0 off the canvas.
    fn color(&self, x: i32, y: i32) -> u8 {
        self.index(x, y)
            .and_then(|i| self.pixels.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn get(&self, x: i32, y: i32) -> bool {
        self.color(x, y) != 0
    }

    /// `lwDrawLine`: Bresenham.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// `lwDrawSquare`: a square of side `size` centred on (x, y), rotated
    /// by `angle`, in C's float arithmetic (the corners at `size / sqrt 2`
    /// rounded, times the unit circle's).
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32) {
        // Redis divides by this literal, not by the exact square root: the
        // rounded corners are Redis' only with its constant.
        #[allow(clippy::approx_constant)]
        let size = ((f64::from(size) / 1.414_213_562_3) as f32).round();
        let mut k = (std::f64::consts::FRAC_PI_4 + f64::from(angle)) as f32;
        let corners: [(i32, i32); 4] = std::array::from_fn(|_| {
            let px = (f64::from(k).sin() * f64::from(size) + f64::from(x)).round() as i32;
            let py = (f64::from(k).cos() * f64::from(size) + f64::from(y)).round() as i32;
            k = (f64::from(k) + std::f64::consts::FRAC_PI_2) as f32;
            (px, py)
        });
        for (a, b) in corners.iter().zip(corners.iter().cycle().skip(1)) {
            self.line(a.0, a.1, b.0, b.1);
        }
    }
}

/// `lwDrawSchotter`: rows of squares, the ones below the second rotated
/// and shifted at random (so only up to two rows are reproducible).
fn draw_schotter(cols: i64, per_row: i64, per_col: i64) -> Canvas {
    let width = i32::try_from(cols * 2).unwrap_or(2000);
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(width, height, 0);
    let mut rng = rand::rng();
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0f32;
            if y > 1 {
                let mut r = || rng.random::<f32>() / per_col as f32 * y as f32;
                let (mut r1, mut r2, mut r3) = (r(), r(), r());
                if rng.random::<bool>() {
                    r1 = -r1;
                }
                if rng.random::<bool>() {
                    r2 = -r2;
                }
                if rng.random::<bool>() {
                    r3 = -r3;
                }
                angle = r1;
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    canvas
}

/// `renderCanvas`: 2x4 pixels per braille character, rows of characters
/// separated by newlines (and one after the last unless the height is a
/// multiple of 4 plus 1, as Redis' test is written).
fn render_braille(c: &Canvas) -> String {
    let mut out = String::new();
    let mut y = 0;
    while y < c.height {
        let mut x = 0;
        while x < c.width {
            let bits = [
                (0, 0, 0),
                (0, 1, 1),
                (0, 2, 2),
                (1, 0, 3),
                (1, 1, 4),
                (1, 2, 5),
                (0, 3, 6),
                (1, 3, 7),
            ];
            let byte = bits
                .iter()
                .filter(|(dx, dy, _)| c.get(x + dx, y + dy))
                .fold(0u32, |b, (_, _, bit)| b | (1 << bit));
            out.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
            x += 2;
        }
        if y != c.height - 1 {
            out.push('\n');
        }
        y += 4;
    }
    out
}

/// `lolwut6Command`'s arguments: columns and rows (80 and 20 by default),
/// each clamped to 1..=1000 as Redis does.
fn skyline_args(rest: &[Bytes]) -> Result<(i32, i32), Frame> {
    let mut v = [80i64, 20];
    for (slot, a) in v.iter_mut().zip(rest) {
        *slot = crate::num::string2ll(a).ok_or_else(|| Frame::error(NOT_AN_INTEGER))?;
    }
    let [cols, rows] = v.map(|n| i32::try_from(n.clamp(1, 1000)).unwrap_or(1));
    Ok((cols, rows))
}

/// A skyscraper of `generateSkyscraper`.
struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

/// `generateSkyscraper`: a block standing on the bottom row, its roof two
/// pixels narrower on each side, with two-pixel-wide windows of a random
/// gray other than the wall's when `windows` is set.
fn draw_skyscraper(canvas: &mut Canvas, s: &Skyscraper, rng: &mut impl Rng) {
    let start_y = canvas.height - 1;
    let end_y = start_y - s.height + 1;
    for y in (end_y..=start_y).rev() {
        for x in s.xoff..s.xoff + s.width {
            if y == end_y && (x <= s.xoff + 1 || x >= s.xoff + s.width - 2) {
                continue;
            }
            let mut color = s.color;
            if s.windows
                && x > s.xoff + 1
                && x < s.xoff + s.width - 2
                && y > end_y + 1
                && y < start_y - 1
            {
                let rel_x = x - (s.xoff + 1);
                let rel_y = y - (end_y + 1);
                // Windows are two pixels wide and one tall: terminal
                // "pixels" are not square.
                if (rel_x / 2) % 2 != 0 && rel_y % 2 != 0 {
                    color = loop {
                        let c = 1 + rng.random_range(0..2u8);
                        if c != s.color {
                            break c;
                        }
                    };
                    if rel_x % 2 != 0 {
                        color = canvas.color(x - 1, y);
                    }
                }
            }
            canvas.draw(x, y, color);
        }
    }
}

/// `generateSkyline`: two rows of window-less buildings in the two grays
/// (the lighter behind), then black ones with windows in front.
fn draw_skyline(cols: i32, rows: i32) -> Canvas {
    let mut canvas = Canvas::new(cols, rows, 3);
    let mut rng = rand::rng();
    let mut r = |n: i32| rng.random_range(0..n);
    let mut plan = Vec::new();
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < cols {
            offset += r(8);
            let width = 10 + r(9);
            // C's `rand()%h/2` is `(rand() % h) / 2`.
            let height = if color == 2 {
                rows / 2 + r(rows) / 2
            } else {
                rows / 2 + r(rows) / 3
            };
            plan.push(Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            });
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < cols {
        offset += r(8);
        let mut width = 5 + r(14);
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = rows / 3 + r(rows) / 2;
        plan.push(Skyscraper {
            xoff: offset,
            width,
            height,
            windows: true,
            color: 0,
        });
        offset += width + 5;
    }
    let mut rng = rand::rng();
    for s in &plan {
        draw_skyscraper(&mut canvas, s, &mut rng);
    }
    canvas
}

/// `renderCanvas` of lolwut6.c: each pixel a space with the foreground and
/// background set to one of the terminal's four grays, rows separated by
/// newlines.
fn render_grays(c: &Canvas) -> String {
    let mut out = String::new();
    for y in 0..c.height {
        for x in 0..c.width {
            let escape = match c.color(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            out.push_str("\x1b[");
            out.push_str(escape);
            out.push_str(" \x1b[0m");
        }
        if y != c.height - 1 {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skyline_has_redis_shape() {
        let c = draw_skyline(80, 20);
        let text = render_grays(&c);
        assert_eq!(text.lines().count(), 20);
        for line in text.lines() {
            assert_eq!(line.matches("\x1b[0m").count(), 80);
        }
        // No building reaches the top row (the tallest, a light one, is
        // 20/2 + 19/2 = 19 pixels), so it is all sky; the wall of a building
        // is never white.
        assert!((0..80).all(|x| c.color(x, 0) == 3), "top row is sky");
        assert!((0..80).any(|x| c.color(x, 19) != 3), "buildings stand");
        assert!(c.pixels.iter().all(|p| *p <= 3));
        // A one-pixel canvas holds buildings of height 0: one white pixel.
        let tiny = draw_skyline(1, 1);
        assert_eq!(render_grays(&tiny).matches("\x1b[0m").count(), 1);
    }
}
