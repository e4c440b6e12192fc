//! Roberto Ierusalimschy's `struct` library (0.2), as Redis bundles it:
//! `struct.pack`, `struct.unpack`, `struct.size`.

use mlua::{Lua, MultiValue, Table, Value};

use super::{check_bytes, check_number, fail, ok};

/// `MAXINTSIZE` and `MAXALIGN` of the C library.
const MAX_INT: usize = 32;
const MAX_ALIGN: usize = 8;

struct Fmt<'a> {
    f: &'a [u8],
    pos: usize,
    little: bool,
    align: usize,
    fname: &'static str,
}

enum Opt {
    Int { size: usize, signed: bool },
    Float,
    Double,
    Char(usize),
    Zstr,
    Pad,
    Nothing,
}

impl Fmt<'_> {
    fn num(&mut self, default: usize) -> usize {
        if !self.f.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return default;
        }
        let mut n = 0usize;
        while let Some(&c) = self.f.get(self.pos).filter(|c| c.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(usize::from(c - b'0'));
            self.pos += 1;
        }
        n
    }

    fn int_size(&mut self, default: usize) -> Result<usize, String> {
        let n = self.num(default);
        if n > MAX_INT {
            return Err(format!(
                "integral size {n} is larger than limit of {MAX_INT}"
            ));
        }
        Ok(n)
    }

    /// The next option and its size, or `None` at the end.
    fn next(&mut self) -> Result<Option<(Opt, usize)>, String> {
        let Some(&c) = self.f.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        let opt = match c {
            b'b' => (
                Opt::Int {
                    size: 1,
                    signed: true,
                },
                1,
            ),
            b'B' => (
                Opt::Int {
                    size: 1,
                    signed: false,
                },
                1,
            ),
            b'h' => (
                Opt::Int {
                    size: 2,
                    signed: true,
                },
                2,
            ),
            b'H' => (
                Opt::Int {
                    size: 2,
                    signed: false,
                },
                2,
            ),
            b'l' => (
                Opt::Int {
                    size: 8,
                    signed: true,
                },
                8,
            ),
            b'L' | b'T' => (
                Opt::Int {
                    size: 8,
                    signed: false,
                },
                8,
            ),
            b'i' | b'I' => {
                let n = self.int_size(4)?;
                (
                    Opt::Int {
                        size: n,
                        signed: c == b'i',
                    },
                    n,
                )
            }
            b'f' => (Opt::Float, 4),
            b'd' => (Opt::Double, 8),
            b'c' => {
                let n = self.num(1);
                (Opt::Char(n), n)
            }
            b's' => (Opt::Zstr, 0),
            b'x' => (Opt::Pad, 1),
            b' ' => (Opt::Nothing, 0),
            b'<' => {
                self.little = true;
                (Opt::Nothing, 0)
            }
            b'>' => {
                self.little = false;
                (Opt::Nothing, 0)
            }
            b'=' => {
                self.little = true;
                (Opt::Nothing, 0)
            }
            b'!' => {
                let a = self.num(MAX_ALIGN);
                if !a.is_power_of_two() {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                self.align = a;
                (Opt::Nothing, 0)
            }
            other => {
                return Err(format!(
                    "bad argument #1 to '{}' (invalid format option '{}')",
                    self.fname,
                    char::from(other)
                ));
            }
        };
        Ok(Some(opt))
    }

    /// Padding needed before an item of `size` at `len`.
    fn gap(&self, opt: &Opt, size: usize, len: usize) -> usize {
        let aligned = matches!(opt, Opt::Int { .. } | Opt::Float | Opt::Double);
        if !aligned || size <= 1 {
            return 0;
        }
        let a = size.min(self.align);
        if a <= 1 {
            return 0;
        }
        (a - (len & (a - 1))) & (a - 1)
    }
}

fn new_fmt<'a>(f: &'a [u8], fname: &'static str) -> Fmt<'a> {
    Fmt {
        f,
        pos: 0,
        little: true,
        align: 1,
        fname,
    }
}

fn put_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let mut bytes = vec![0u8; size];
    let mut x = v as u64;
    for b in bytes.iter_mut().take(8.min(size)) {
        *b = x as u8;
        x >>= 8;
    }
    if v < 0 {
        for b in bytes.iter_mut().skip(8) {
            *b = 0xff;
        }
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn pack(lua: &Lua, args: &MultiValue) -> Result<Vec<u8>, String> {
    let f = check_bytes(args, 0, "pack")?;
    let mut fmt = new_fmt(&f, "pack");
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some((opt, size)) = fmt.next()? {
        let gap = fmt.gap(&opt, size, out.len());
        out.resize(out.len() + gap, 0);
        match opt {
            Opt::Int { size, .. } => {
                let n = check_number(lua, args, arg, "pack")?;
                arg += 1;
                put_int(&mut out, crate::num::c_ll(n), size, fmt.little);
            }
            Opt::Float => {
                let n = check_number(lua, args, arg, "pack")? as f32;
                arg += 1;
                let b = if fmt.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            Opt::Double => {
                let n = check_number(lua, args, arg, "pack")?;
                arg += 1;
                let b = if fmt.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            Opt::Char(n) => {
                let s = check_bytes(args, arg, "pack")?;
                arg += 1;
                let n = if n == 0 { s.len() } else { n };
                if s.len() < n {
                    return Err(format!("bad argument #{arg} to 'pack' (string too short)"));
                }
                out.extend_from_slice(&s[..n]);
            }
            Opt::Zstr => {
                let s = check_bytes(args, arg, "pack")?;
                arg += 1;
                if s.contains(&0) {
                    return Err(format!(
                        "bad argument #{arg} to 'pack' (string contains zeros)"
                    ));
                }
                out.extend_from_slice(&s);
                out.push(0);
            }
            Opt::Pad => out.push(0),
            Opt::Nothing => {}
        }
    }
    Ok(out)
}

fn unpack(lua: &Lua, args: &MultiValue) -> Result<Vec<Value>, String> {
    let f = check_bytes(args, 0, "unpack")?;
    let data = check_bytes(args, 1, "unpack")?;
    let init = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        Some(_) => check_number(lua, args, 2, "unpack")?,
    };
    let mut pos = (init as i64 - 1).max(0) as usize;
    if init < 1.0 {
        return Err("bad argument #3 to 'unpack' (offset must be 1 or greater)".to_owned());
    }
    let mut fmt = new_fmt(&f, "unpack");
    let mut out = Vec::new();
    let too_short = || "bad argument #2 to 'unpack' (data string too short)".to_owned();
    let lstr = |b: &[u8]| -> Result<Value, String> {
        lua.create_string(b)
            .map(Value::String)
            .map_err(|e| e.to_string())
    };
    while let Some((opt, size)) = fmt.next()? {
        pos += fmt.gap(&opt, size, pos);
        match opt {
            Opt::Int { size, signed } => {
                let b = data.get(pos..pos + size).ok_or_else(too_short)?;
                let mut bytes = b.to_vec();
                if !fmt.little {
                    bytes.reverse();
                }
                let mut v: u64 = 0;
                for (i, byte) in bytes.iter().enumerate().take(8) {
                    v |= u64::from(*byte) << (8 * i);
                }
                let n = if signed && size < 8 && size > 0 {
                    let shift = 64 - 8 * size as u32;
                    ((v << shift) as i64 >> shift) as f64
                } else if signed {
                    v as i64 as f64
                } else {
                    v as f64
                };
                out.push(Value::Number(n));
                pos += size;
            }
            Opt::Float => {
                let b: [u8; 4] = data
                    .get(pos..pos + 4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(too_short)?;
                let v = if fmt.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f64::from(v)));
                pos += 4;
            }
            Opt::Double => {
                let b: [u8; 8] = data
                    .get(pos..pos + 8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(too_short)?;
                let v = if fmt.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(v));
                pos += 8;
            }
            Opt::Char(n) => {
                let n = if n == 0 {
                    // `c0`: the length is the number unpacked just before.
                    match out.pop() {
                        Some(Value::Number(k)) => k as usize,
                        _ => return Err("format 'c0' needs a previous size".to_owned()),
                    }
                } else {
                    n
                };
                let b = data.get(pos..pos + n).ok_or_else(too_short)?;
                out.push(lstr(b)?);
                pos += n;
            }
            Opt::Zstr => {
                let rest = data.get(pos..).unwrap_or_default();
                let end = rest
                    .iter()
                    .position(|&c| c == 0)
                    .ok_or_else(|| "unfinished string in data".to_owned())?;
                out.push(lstr(&rest[..end])?);
                pos += end + 1;
            }
            Opt::Pad => pos += 1,
            Opt::Nothing => {}
        }
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(out)
}

fn size(args: &MultiValue) -> Result<f64, String> {
    let f = check_bytes(args, 0, "size")?;
    let mut fmt = new_fmt(&f, "size");
    let mut pos = 0usize;
    while let Some((opt, size)) = fmt.next()? {
        if matches!(opt, Opt::Zstr) {
            return Err("bad argument #1 to 'size' (option 's' has no fixed size)".to_owned());
        }
        pos += fmt.gap(&opt, size, pos) + size;
    }
    Ok(pos as f64)
}

/// The `struct` table.
pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| match pack(lua, &args) {
            Ok(b) => Ok(ok([Value::String(lua.create_string(&b)?)])),
            Err(m) => fail(lua, &m),
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| match unpack(lua, &args) {
            Ok(v) => Ok(ok(v)),
            Err(m) => fail(lua, &m),
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|lua, args: MultiValue| match size(&args) {
            Ok(n) => Ok(ok([Value::Number(n)])),
            Err(m) => fail(lua, &m),
        })?,
    )?;
    Ok(t)
}
