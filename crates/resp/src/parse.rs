//! Incremental decoding: requests (server side) and any frame (client side).
//!
//! Both decoders first check that a whole unit is buffered and only then
//! split it off and allocate (mini-redis' check-then-parse), so `Ok(None)`
//! never consumes a byte of an incomplete command and a lying length
//! (`*99999999999`, `$600000000`) is refused from its header alone.
//!
//! Requests follow Redis 7.0.15 (`processMultibulkBuffer`,
//! `processInlineBuffer`, `sdssplitargs`) including its leniencies: the two
//! bytes after a bulk payload are skipped without being checked, and `*0`,
//! `*-1` and empty inline lines are silently discarded.

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::Frame;

/// Size limits checked on headers, before anything is allocated.
///
/// Defaults are Redis 7.0's: `proto-max-bulk-len` (512 MiB), a multibulk
/// count of at most `INT_MAX` (Redis 7.0.15 accepts `*3000000`; older
/// versions capped it at 1024*1024), and `PROTO_INLINE_MAX_SIZE` (64 KiB)
/// for inline requests and length lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string accepted, in bytes. Default 512 MiB.
    pub max_bulk_len: usize,
    /// Largest element count of a request (or decoded aggregate).
    /// Default `i32::MAX`.
    pub max_multibulk_len: usize,
    /// Longest inline request line and longest `*`/`$` length line.
    /// Default 64 KiB.
    pub max_inline_len: usize,
    /// Deepest aggregate nesting [`parse_frame`] accepts (requests are flat).
    /// Default 128.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
            max_depth: 128,
        }
    }
}

/// Decodes one request from `buf`, as a list of arguments.
///
/// Accepts a multibulk of bulk strings (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`)
/// or an inline command (`ECHO hi\r\n`, with Redis' quoting). Returns
/// `Ok(None)` when more bytes are needed; arguments of multibulk requests
/// are zero-copy slices of `buf`.
///
/// Empty requests (`\r\n`, `*0\r\n`, `*-1\r\n`) are discarded from the
/// front of `buf` as Redis does, so `Ok(None)` may follow their removal;
/// no byte of an incomplete command is ever consumed.
///
/// This stateless form re-checks a partial command from its start on every
/// call; a connection should keep a [`CommandDecoder`] instead.
///
/// # Errors
///
/// A [`ProtocolError`] with Redis' text; the connection should be closed.
pub fn parse_command(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    CommandDecoder::new().decode(buf, limits)
}

/// An incremental request decoder that remembers how far it has checked a
/// partial multibulk, so a big command arriving in many reads is scanned
/// once, not once per read.
///
/// Between calls, bytes may only be appended to the buffer (or the buffer
/// may be emptied); anything else confuses the saved progress, which is
/// detected where cheap and otherwise only yields wrong splits, never a
/// panic.
#[derive(Debug)]
pub struct CommandDecoder {
    /// Whether the client has authenticated; until then Redis' tighter
    /// limits apply.
    authenticated: bool,
    /// Progress over a partial multibulk at the front of the buffer.
    progress: Option<Progress>,
    /// `(start, end)` of each checked argument; reused between commands so
    /// the hot path allocates nothing but the returned `Vec`.
    ranges: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Element count announced by the `*` header.
    argc: usize,
    /// Offset of the next unchecked element header.
    pos: usize,
}

impl Default for CommandDecoder {
    fn default() -> Self {
        CommandDecoder {
            authenticated: true,
            progress: None,
            ranges: Vec::new(),
        }
    }
}

/// Redis' caps on requests from clients that have not authenticated yet.
const UNAUTH_MAX_ARGS: i64 = 10;
const UNAUTH_MAX_BULK: usize = 16 * 1024;

impl CommandDecoder {
    /// A decoder with no progress, for an authenticated client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether the client has authenticated. Until it has, requests
    /// are held to Redis' limits for such clients: at most 10 arguments of
    /// at most 16384 bytes each, refused with
    /// [`ProtocolError::UnauthenticatedMultibulkLength`] and
    /// [`ProtocolError::UnauthenticatedBulkLength`].
    pub fn set_authenticated(&mut self, yes: bool) {
        self.authenticated = yes;
    }

    /// Bytes the partial command at the front of the buffer is known to need
    /// in total, when a bulk header announced more than is buffered; a hint
    /// for sizing the next read.
    pub fn pending_hint(&self, buf: &[u8]) -> Option<usize> {
        let p = self.progress?;
        let mut pos = p.pos;
        let (len, start) = match bulk_header(buf, &mut pos, &Limits::default(), true) {
            Ok(Some(h)) => h,
            _ => return None,
        };
        Some(start + len + 2)
    }

    /// Like [`parse_command`], resuming the check where the previous call
    /// on the same buffer stopped.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] with Redis' text; the connection should be closed.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let Some(&first) = buf.first() else {
                self.reset();
                return Ok(None);
            };
            if first != b'*' {
                self.reset();
                match inline(buf, limits)? {
                    Inline::Incomplete => return Ok(None),
                    Inline::Empty => continue,
                    Inline::Args(args) => return Ok(Some(args)),
                }
            }
            match self.multibulk(buf, limits)? {
                Multibulk::Incomplete => return Ok(None),
                Multibulk::Empty => continue,
                Multibulk::Args(args) => return Ok(Some(args)),
            }
        }
    }

    fn reset(&mut self) {
        self.progress = None;
        self.ranges.clear();
    }

    fn multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Multibulk, ProtocolError> {
        let mut p = match self.progress {
            Some(p) if p.pos <= buf.len() => p,
            _ => {
                self.reset();
                let mut pos = 0;
                let Some(line) =
                    count_line(buf, &mut pos, limits, ProtocolError::TooBigMultibulkCount)?
                else {
                    return Ok(Multibulk::Incomplete);
                };
                let n = string2ll(line.get(1..).unwrap_or_default())
                    .ok_or(ProtocolError::InvalidMultibulkLength)?;
                if n > i64::try_from(limits.max_multibulk_len).unwrap_or(i64::MAX) {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if n > UNAUTH_MAX_ARGS && !self.authenticated {
                    return Err(ProtocolError::UnauthenticatedMultibulkLength);
                }
                if n <= 0 {
                    let _ = buf.split_to(pos);
                    return Ok(Multibulk::Empty);
                }
                // n is in 1..=max_multibulk_len, which fits usize.
                let argc = usize::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
                Progress { argc, pos }
            }
        };
        while self.ranges.len() < p.argc {
            let mut pos = p.pos;
            let Some((len, start)) = bulk_header(buf, &mut pos, limits, self.authenticated)? else {
                self.progress = Some(p);
                return Ok(Multibulk::Incomplete);
            };
            // Redis skips the two bytes after the payload unchecked.
            let end = start.saturating_add(len);
            if end.saturating_add(2) > buf.len() {
                self.progress = Some(p);
                return Ok(Multibulk::Incomplete);
            }
            self.ranges.push((start, end));
            p.pos = end + 2;
        }
        let whole = buf.split_to(p.pos).freeze();
        let args = self
            .ranges
            .iter()
            .map(|&(s, e)| whole.slice(s..e))
            .collect();
        self.reset();
        Ok(Multibulk::Args(args))
    }
}

enum Multibulk {
    Incomplete,
    Empty,
    Args(Vec<Bytes>),
}

enum Inline {
    Incomplete,
    Empty,
    Args(Vec<Bytes>),
}

/// Reads the `$len\r\n` header at `*pos`; on success the result is
/// `(len, payload_start)`.
///
/// As Redis, the whole line must be buffered before its first byte is
/// checked for `$`.
fn bulk_header(
    buf: &[u8],
    pos: &mut usize,
    limits: &Limits,
    authenticated: bool,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut p = *pos;
    let Some(line) = count_line(buf, &mut p, limits, ProtocolError::TooBigBulkCount)? else {
        return Ok(None);
    };
    let (&tag, digits) = line
        .split_first()
        .ok_or(ProtocolError::ExpectedBulk(b'\r'))?;
    if tag != b'$' {
        return Err(ProtocolError::ExpectedBulk(tag));
    }
    let n = string2ll(digits).ok_or(ProtocolError::InvalidBulkLength)?;
    let len = usize::try_from(n)
        .ok()
        .filter(|&l| l <= limits.max_bulk_len)
        .ok_or(ProtocolError::InvalidBulkLength)?;
    if len > UNAUTH_MAX_BULK && !authenticated {
        return Err(ProtocolError::UnauthenticatedBulkLength);
    }
    *pos = p;
    Ok(Some((len, p)))
}

/// Reads a header line (tag included) starting at `*pos` up to its `\r`,
/// and moves `*pos` past the `\r` and the byte after it, which Redis does
/// not check.
///
/// Redis reports a line longer than `PROTO_INLINE_MAX_SIZE` as `too_big`
/// when no `\r` has arrived yet; applying the bound to the line itself,
/// terminated or not, gives the same answer however the bytes are split.
fn count_line<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    limits: &Limits,
    too_big: ProtocolError,
) -> Result<Option<&'a [u8]>, ProtocolError> {
    let rest = buf.get(*pos..).unwrap_or_default();
    let window = &rest[..rest.len().min(limits.max_inline_len + 1)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if rest.len() > limits.max_inline_len {
            return Err(too_big);
        }
        return Ok(None);
    };
    if cr > limits.max_inline_len {
        return Err(too_big);
    }
    if cr + 2 > rest.len() {
        return Ok(None);
    }
    *pos += cr + 2;
    Ok(Some(&rest[..cr]))
}

/// Redis' `string2ll`: optional `-`, no `+`, no leading zeros, no spaces.
fn string2ll(s: &[u8]) -> Option<i64> {
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    if digits.len() > 19 {
        return None;
    }
    // Accumulate negatively so i64::MIN parses too.
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg { Some(v) } else { v.checked_neg() }
}

/// Splits one inline request line off the front of `buf`.
fn inline(buf: &mut BytesMut, limits: &Limits) -> Result<Inline, ProtocolError> {
    let max = limits.max_inline_len;
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        // Without a newline the line is at least this long; a trailing
        // `\r` may still become part of the terminator.
        let known = if buf.last() == Some(&b'\r') {
            buf.len() - 1
        } else {
            buf.len()
        };
        if known > max {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Inline::Incomplete);
    };
    let line_len = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    if line_len > max {
        return Err(ProtocolError::TooBigInline);
    }
    let line = buf.split_to(nl + 1).freeze().slice(..line_len);
    let args = split_args(&line)?;
    if args.is_empty() {
        Ok(Inline::Empty)
    } else {
        Ok(Inline::Args(args))
    }
}

/// Redis' `sdssplitargs`, over a line it sees as a C string.
///
/// Unquoted tokens stay zero-copy slices of `line`; quoted ones are
/// unescaped into new buffers.
pub(crate) fn split_args(line: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    // sdssplitargs stops at the first NUL, as C strings do.
    let end = line.iter().position(|&b| b == 0).unwrap_or(line.len());
    let s = &line[..end];
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let is_space = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return Ok(args);
        }
        let start = i;
        let mut plain = true;
        let mut cur: Vec<u8> = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = at(i);
            if inq {
                if c == b'\\'
                    && at(i + 1) == b'x'
                    && at(i + 2).is_ascii_hexdigit()
                    && at(i + 3).is_ascii_hexdigit()
                {
                    cur.push(hex(at(i + 2)) * 16 + hex(at(i + 3)));
                    i += 3;
                } else if c == b'\\' && at(i + 1) != 0 {
                    i += 1;
                    cur.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or the end.
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => {
                        inq = true;
                        plain = false;
                    }
                    b'\'' => {
                        insq = true;
                        plain = false;
                    }
                    _ => cur.push(c),
                }
            }
            i += 1;
        }
        if plain {
            args.push(line.slice(start..start + cur.len()));
        } else {
            args.push(Bytes::from(cur));
        }
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Decodes one RESP2 or RESP3 frame of any type from `buf` (client side).
///
/// Strict where the request parser is lenient: every line and payload must
/// end in CRLF. `$-1` decodes to [`Frame::Null`], `*-1` to
/// [`Frame::NullArray`], `_` to [`Frame::Null`]; RESP3 attributes (`|`) are
/// read and dropped. Returns `Ok(None)`, consuming nothing, until a whole
/// frame is buffered. Each call re-checks a partial frame from its start;
/// this decoder serves tests and tools, not the server's hot path.
///
/// # Errors
///
/// A [`ProtocolError`] when the bytes cannot be RESP or break `limits`.
pub fn parse_frame(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
    let Some(end) = check(buf, 0, limits, 0)? else {
        return Ok(None);
    };
    let whole = buf.split_to(end).freeze();
    let mut pos = 0;
    let frame = decode(&whole, &mut pos)?;
    Ok(Some(frame))
}

/// Reads a line at `*pos` up to CRLF, bounded by `max`.
fn line<'a>(buf: &'a [u8], pos: &mut usize, max: usize) -> Result<Option<&'a [u8]>, ProtocolError> {
    let rest = buf.get(*pos..).unwrap_or_default();
    let window = &rest[..rest.len().min(max.saturating_add(1))];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if rest.len() > max {
            return Err(ProtocolError::ExpectedCrlf);
        }
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => {
            *pos += cr + 2;
            Ok(Some(&rest[..cr]))
        }
        Some(_) => Err(ProtocolError::ExpectedCrlf),
    }
}

/// A length header: `-1` is `None` (a RESP2 null), others must be within
/// `max`.
fn length(l: &[u8], max: usize, err: ProtocolError) -> Result<Option<usize>, ProtocolError> {
    if l == b"-1" {
        return Ok(None);
    }
    let n = string2ll(l).ok_or(err.clone())?;
    let n = usize::try_from(n).map_err(|_| err.clone())?;
    if n > max {
        return Err(err);
    }
    Ok(Some(n))
}

/// Checks that a whole frame starts at `pos`; returns where it ends.
fn check(
    buf: &[u8],
    mut pos: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<usize>, ProtocolError> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    pos += 1;
    let hdr = limits.max_inline_len;
    let Some(l) = line(
        buf,
        &mut pos,
        match tag {
            b'+' | b'-' | b'(' | b',' => limits.max_bulk_len,
            _ => hdr,
        },
    )?
    else {
        return Ok(None);
    };
    let elems = match tag {
        b'+' | b'-' => 0,
        b':' => {
            parse_int(l)?;
            0
        }
        b'(' => {
            check_bignum(l)?;
            0
        }
        b',' => {
            parse_double(l)?;
            0
        }
        b'#' => {
            parse_bool(l)?;
            0
        }
        b'_' => {
            if !l.is_empty() {
                return Err(ProtocolError::InvalidNull);
            }
            0
        }
        b'$' | b'=' | b'!' => {
            let Some(n) = length(l, limits.max_bulk_len, ProtocolError::InvalidBulkLength)? else {
                if tag == b'$' {
                    return Ok(Some(pos));
                }
                return Err(ProtocolError::InvalidBulkLength);
            };
            let end = pos.saturating_add(n);
            if end.saturating_add(2) > buf.len() {
                return Ok(None);
            }
            if buf.get(end..end + 2) != Some(b"\r\n") {
                return Err(ProtocolError::ExpectedCrlf);
            }
            if tag == b'=' && (n < 4 || buf.get(pos + 3) != Some(&b':')) {
                return Err(ProtocolError::InvalidVerbatim);
            }
            return Ok(Some(end + 2));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            if depth >= limits.max_depth {
                return Err(ProtocolError::TooDeep);
            }
            let Some(n) = length(
                l,
                limits.max_multibulk_len,
                ProtocolError::InvalidMultibulkLength,
            )?
            else {
                if tag == b'*' {
                    return Ok(Some(pos));
                }
                return Err(ProtocolError::InvalidMultibulkLength);
            };
            if matches!(tag, b'%' | b'|') {
                n.saturating_mul(2)
            } else {
                n
            }
        }
        other => return Err(ProtocolError::UnknownType(other)),
    };
    for _ in 0..elems {
        match check(buf, pos, limits, depth + 1)? {
            Some(next) => pos = next,
            None => return Ok(None),
        }
    }
    if tag == b'|' {
        // An attribute annotates the frame that follows it.
        return check(buf, pos, limits, depth);
    }
    Ok(Some(pos))
}

/// Builds the frame at `*pos` of a buffer already passed through [`check`].
fn decode(buf: &Bytes, pos: &mut usize) -> Result<Frame, ProtocolError> {
    let tag = *buf.get(*pos).ok_or(ProtocolError::ExpectedCrlf)?;
    *pos += 1;
    let start = *pos;
    let l = line(buf, pos, usize::MAX)?.ok_or(ProtocolError::ExpectedCrlf)?;
    let l_range = start..start + l.len();
    let aggregate = |n: usize, pos: &mut usize| -> Result<Vec<Frame>, ProtocolError> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(decode(buf, pos)?);
        }
        Ok(v)
    };
    Ok(match tag {
        b'+' => Frame::Simple(buf.slice(l_range)),
        b'-' => Frame::Error(buf.slice(l_range)),
        b':' => Frame::Integer(parse_int(l)?),
        b'(' => Frame::BigNumber(buf.slice(l_range)),
        b',' => Frame::Double(parse_double(l)?),
        b'#' => Frame::Boolean(parse_bool(l)?),
        b'_' => Frame::Null,
        b'$' | b'=' | b'!' => {
            let Some(n) = length(l, usize::MAX, ProtocolError::InvalidBulkLength)? else {
                return Ok(Frame::Null);
            };
            let s = *pos;
            *pos = s + n + 2;
            match tag {
                b'$' => Frame::Bulk(buf.slice(s..s + n)),
                b'!' => Frame::BlobError(buf.slice(s..s + n)),
                _ => {
                    let f = buf.get(s..s + 3).ok_or(ProtocolError::InvalidVerbatim)?;
                    Frame::Verbatim {
                        format: [f[0], f[1], f[2]],
                        text: buf.slice(s + 4..s + n),
                    }
                }
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some(n) = length(l, usize::MAX, ProtocolError::InvalidMultibulkLength)? else {
                return Ok(Frame::NullArray);
            };
            match tag {
                b'*' => Frame::Array(aggregate(n, pos)?),
                b'~' => Frame::Set(aggregate(n, pos)?),
                b'>' => Frame::Push(aggregate(n, pos)?),
                b'%' => {
                    let mut m = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = decode(buf, pos)?;
                        let v = decode(buf, pos)?;
                        m.push((k, v));
                    }
                    Frame::Map(m)
                }
                _ => {
                    aggregate(n.saturating_mul(2), pos)?;
                    decode(buf, pos)?
                }
            }
        }
        other => return Err(ProtocolError::UnknownType(other)),
    })
}

fn parse_int(l: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ProtocolError::InvalidInteger)
}

fn check_bignum(l: &[u8]) -> Result<(), ProtocolError> {
    let digits = match l.split_first() {
        Some((b'-' | b'+', d)) => d,
        _ => l,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::InvalidInteger);
    }
    Ok(())
}

fn parse_double(l: &[u8]) -> Result<f64, ProtocolError> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ProtocolError::InvalidDouble)
}

fn parse_bool(l: &[u8]) -> Result<bool, ProtocolError> {
    match l {
        b"t" => Ok(true),
        b"f" => Ok(false),
        _ => Err(ProtocolError::InvalidBoolean),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cmd(input: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        parse_command(&mut BytesMut::from(input), &Limits::default())
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// Inputs sent to redis-server 7.0.15 over raw sockets, with the error
    /// it answered before closing the connection.
    #[test]
    fn malformed_requests_match_redis() {
        use ProtocolError::*;
        let long_digits = format!("*{}", "1".repeat(70_000));
        let long_bulk = format!("*1\r\n${}", "1".repeat(70_000));
        let long_inline = "x".repeat(70_000);
        let table: Vec<(&[u8], ProtocolError)> = vec![
            (b"*abc\r\n", InvalidMultibulkLength),
            (b"*+1\r\n$4\r\nPING\r\n", InvalidMultibulkLength),
            (b"*01\r\n$04\r\nPING\r\n", InvalidMultibulkLength),
            (b"*1 \r\n", InvalidMultibulkLength),
            (b"*\r\n", InvalidMultibulkLength),
            (b"*99999999999\r\n", InvalidMultibulkLength),
            (b"*9223372036854775808\r\n", InvalidMultibulkLength),
            (b"*1\r\nfoo\r\n", ExpectedBulk(b'f')),
            (b"*1\r\n:4\r\n", ExpectedBulk(b':')),
            (b"*1\r\n$abc\r\n", InvalidBulkLength),
            (b"*1\r\n$-1\r\n", InvalidBulkLength),
            (b"*1\r\n$-5\r\n", InvalidBulkLength),
            (b"*1\r\n$600000000\r\n", InvalidBulkLength),
            (b"*1\r\n$536870913\r\n", InvalidBulkLength),
            (b"*1\r\n$99999999999\r\n", InvalidBulkLength),
            (b"*1\r\n$9223372036854775808\r\n", InvalidBulkLength),
            (b"*1\r\n$ 4\r\nPING\r\n", InvalidBulkLength),
            (b"*1\r\n$+4\r\nPING\r\n", InvalidBulkLength),
            (b"*1\r\n$\r\n", InvalidBulkLength),
            (b"*1\r\n$4\nPING\r\n", InvalidBulkLength),
            (b"SET a \"b\r\n", UnbalancedQuotes),
            (b"SET a 'b\r\n", UnbalancedQuotes),
            (b"SET a \"b\"c\r\n", UnbalancedQuotes),
            (b"ECHO \"a\"\"b\"\r\n", UnbalancedQuotes),
            (long_inline.as_bytes(), TooBigInline),
            (long_digits.as_bytes(), TooBigMultibulkCount),
            (long_bulk.as_bytes(), TooBigBulkCount),
        ];
        for (input, want) in table {
            let got = cmd(input);
            assert_eq!(
                got,
                Err(want.clone()),
                "{:?}",
                String::from_utf8_lossy(&input[..input.len().min(30)])
            );
        }
        assert_eq!(
            ExpectedBulk(b'f').to_string(),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            TooBigInline.to_string(),
            "Protocol error: too big inline request"
        );
    }

    /// Valid inputs and what Redis 7.0.15 executed for them.
    #[test]
    fn accepted_like_redis() {
        assert_eq!(cmd(b"*1\r\n$536870912\r\n"), Ok(None));
        assert_eq!(cmd(b"*3000000\r\n"), Ok(None));
        assert_eq!(cmd(b"*-5\r\n"), Ok(None));
        assert_eq!(cmd(b"*0\r\nPING\r\n"), Ok(Some(args(&["PING"]))));
        assert_eq!(cmd(b"*-1\r\nPING\r\n"), Ok(Some(args(&["PING"]))));
        // Redis skips the two bytes after a payload without looking.
        let mut b = BytesMut::from(&b"*1\r\n$4\r\nPINGxx\r\n"[..]);
        let l = Limits::default();
        assert_eq!(parse_command(&mut b, &l), Ok(Some(args(&["PING"]))));
        assert_eq!(parse_command(&mut b, &l), Ok(None));
        assert!(b.is_empty());
        assert_eq!(
            cmd(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
            Ok(Some(args(&["ECHO", ""])))
        );
    }

    /// Observed on redis-server 7.0.15 started with `--requirepass`.
    #[test]
    fn unauthenticated_limits() {
        let l = Limits::default();
        let run = |input: &[u8], auth: bool| {
            let mut d = CommandDecoder::new();
            d.set_authenticated(auth);
            d.decode(&mut BytesMut::from(input), &l)
        };
        assert_eq!(run(b"*10\r\n", false), Ok(None));
        assert_eq!(
            run(b"*11\r\n", false),
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        );
        assert_eq!(run(b"*11\r\n", true), Ok(None));
        assert_eq!(run(b"*1\r\n$16384\r\n", false), Ok(None));
        assert_eq!(
            run(b"*1\r\n$16385\r\n", false),
            Err(ProtocolError::UnauthenticatedBulkLength)
        );
        assert_eq!(run(b"*1\r\n$16385\r\n", true), Ok(None));
        assert_eq!(
            ProtocolError::UnauthenticatedBulkLength.to_string(),
            "Protocol error: unauthenticated bulk length"
        );
    }

    #[test]
    fn inline_quoting() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"PING\r\n", &[b"PING"]),
            (b"PING\n", &[b"PING"]),
            (b"  ECHO   x  \r\n", &[b"ECHO", b"x"]),
            (b"ECHO \"a\\x41\\n\"\r\n", &[b"ECHO", b"aA\n"]),
            (b"ECHO 'a\\'b'\r\n", &[b"ECHO", b"a'b"]),
            (b"ECHO \"\\xZZ\"\r\n", &[b"ECHO", b"xZZ"]),
            (b"ECHO \"\\q\"\r\n", &[b"ECHO", b"q"]),
            (b"ECHO \"\"\r\n", &[b"ECHO", b""]),
            (b"ECHO ''\r\n", &[b"ECHO", b""]),
            (b"ECHO \"a\" \"b\"\r\n", &[b"ECHO", b"a", b"b"]),
            (b"SET a\"b c\" d\r\n", &[b"SET", b"ab c", b"d"]),
            (
                b"ECHO \"\\t\\r\\b\\a\\\\\"\r\n",
                &[b"ECHO", b"\t\r\x08\x07\\"],
            ),
            (b"ECHO \"\\xfF\"\r\n", &[b"ECHO", b"\xff"]),
            (b"ECHO a\x00b c\r\n", &[b"ECHO", b"a"]),
        ];
        for (input, want) in cases {
            let want: Vec<Bytes> = want.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            assert_eq!(cmd(input), Ok(Some(want)), "{input:?}");
        }
        // Empty lines and a NUL-only line are skipped, as Redis does.
        let mut b = BytesMut::from(&b"\r\n\n  \r\n\x00\r\nECHO a\nPING\r\n"[..]);
        let l = Limits::default();
        assert_eq!(parse_command(&mut b, &l), Ok(Some(args(&["ECHO", "a"]))));
        assert_eq!(parse_command(&mut b, &l), Ok(Some(args(&["PING"]))));
        assert_eq!(parse_command(&mut b, &l), Ok(None));
        assert!(b.is_empty());
    }

    #[test]
    fn inline_limit_is_independent_of_splits() {
        let l = Limits {
            max_inline_len: 8,
            ..Limits::default()
        };
        let ok = b"ABCDEFGH\r\n";
        let bad = b"ABCDEFGHI\r\n";
        for cut in 0..=ok.len() {
            let mut b = BytesMut::from(&ok[..cut]);
            let first = parse_command(&mut b, &l).unwrap();
            if cut < ok.len() - 1 {
                assert_eq!(first, None, "cut {cut}");
                b.extend_from_slice(&ok[cut..]);
                assert_eq!(parse_command(&mut b, &l), Ok(Some(args(&["ABCDEFGH"]))));
            }
        }
        for cut in 9..=bad.len() {
            let mut b = BytesMut::from(&bad[..cut]);
            assert_eq!(
                parse_command(&mut b, &l),
                Err(ProtocolError::TooBigInline),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn pipeline_of_many_commands() {
        let mut wire = BytesMut::new();
        for i in 0..1000 {
            let v = i.to_string();
            if i % 3 == 0 {
                wire.extend_from_slice(format!("SET k{i} {v}\r\n").as_bytes());
            } else {
                wire.extend_from_slice(
                    format!(
                        "*3\r\n$3\r\nSET\r\n${}\r\nk{i}\r\n${}\r\n{v}\r\n",
                        v.len() + 1,
                        v.len()
                    )
                    .as_bytes(),
                );
            }
        }
        let l = Limits::default();
        let mut dec = CommandDecoder::new();
        for i in 0..1000 {
            let got = dec.decode(&mut wire, &l).unwrap().unwrap();
            assert_eq!(got, args(&["SET", &format!("k{i}"), &i.to_string()]));
        }
        assert_eq!(dec.decode(&mut wire, &l), Ok(None));
    }

    #[test]
    fn arguments_share_the_read_buffer() {
        let mut b = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let base = b.as_ptr() as usize;
        let got = parse_command(&mut b, &Limits::default()).unwrap().unwrap();
        assert_eq!(got[0].as_ptr() as usize, base + 8);
        assert_eq!(got[1].as_ptr() as usize, base + 17);
    }

    /// Feeding a command byte by byte through one decoder gives the same
    /// result, consumes nothing until complete, and resumes the check
    /// instead of restarting it.
    #[test]
    fn partial_reads_resume() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(b"*1000\r\n");
        for i in 0..1000 {
            let a = format!("a{i}");
            wire.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        wire.extend_from_slice(b"PING\r\n");
        let l = Limits::default();
        let mut dec = CommandDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for (i, &byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            match dec.decode(&mut buf, &l).unwrap() {
                None => assert_eq!(buf.len(), i + 1, "consumed early"),
                Some(a) => {
                    got = Some(a);
                    break;
                }
            }
        }
        let got = got.unwrap();
        assert_eq!(got.len(), 1000);
        assert_eq!(got[999], Bytes::from("a999"));
        assert!(dec.progress.is_none());

        // Halfway through, the decoder knows which elements are complete
        // and where the next header starts, so it resumes from there.
        let half = wire.len() / 2;
        let mut buf = BytesMut::from(&wire[..half]);
        assert_eq!(dec.decode(&mut buf, &l), Ok(None));
        let p = dec.progress.unwrap();
        assert_eq!(p.argc, 1000);
        assert!(dec.ranges.len() > 400, "{}", dec.ranges.len());
        let last = dec.ranges.last().unwrap().1;
        assert_eq!(p.pos, last + 2);
        assert_eq!(buf.get(p.pos), Some(&b'$'));
        buf.extend_from_slice(&wire[half..]);
        assert_eq!(dec.decode(&mut buf, &l).unwrap().unwrap().len(), 1000);
        assert_eq!(dec.decode(&mut buf, &l), Ok(Some(args(&["PING"]))));
    }

    #[test]
    fn limits_refuse_before_allocating() {
        let l = Limits::default();
        for input in [&b"*99999999999\r\n"[..], b"*1\r\n$600000000\r\n"] {
            let mut b = BytesMut::from(input);
            let cap = b.capacity();
            assert!(parse_command(&mut b, &l).is_err());
            assert_eq!(b.capacity(), cap);
        }
        let small = Limits {
            max_bulk_len: 3,
            max_multibulk_len: 2,
            ..l
        };
        assert_eq!(
            cmd_with(b"*3\r\n", &small),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            cmd_with(b"*1\r\n$4\r\n", &small),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            cmd_with(b"*2\r\n$3\r\nabc\r\n$3\r\nabc\r\n", &small),
            Ok(Some(args(&["abc", "abc"])))
        );
        let mut b = BytesMut::from(&b"*1\r\n$600\r\n"[..]);
        assert_eq!(
            parse_frame(
                &mut b,
                &Limits {
                    max_bulk_len: 599,
                    ..l
                }
            ),
            Err(ProtocolError::InvalidBulkLength)
        );
    }

    fn cmd_with(input: &[u8], l: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        parse_command(&mut BytesMut::from(input), l)
    }

    #[test]
    fn frame_decoder_rejects_garbage() {
        use ProtocolError::*;
        let l = Limits::default();
        let table: &[(&[u8], ProtocolError)] = &[
            (b"?x\r\n", UnknownType(b'?')),
            (b":12a\r\n", InvalidInteger),
            (b",x\r\n", InvalidDouble),
            (b"#x\r\n", InvalidBoolean),
            (b"_x\r\n", InvalidNull),
            (b"$3\r\nabcd\r\n", ExpectedCrlf),
            (b"+a\rb\r\n", ExpectedCrlf),
            (b"=2\r\nab\r\n", InvalidVerbatim),
            (b"(12x\r\n", InvalidInteger),
            (b"%-1\r\n", InvalidMultibulkLength),
            (b"$-2\r\n", InvalidBulkLength),
        ];
        for (input, want) in table {
            let mut b = BytesMut::from(*input);
            assert_eq!(parse_frame(&mut b, &l), Err(want.clone()), "{input:?}");
        }
        let deep = "*1\r\n".repeat(200);
        let mut b = BytesMut::from(deep.as_bytes());
        assert_eq!(parse_frame(&mut b, &l), Err(TooDeep));
    }

    #[test]
    fn frame_decoder_skips_attributes() {
        let mut b = BytesMut::from(&b"|1\r\n+ttl\r\n:3\r\n:42\r\n"[..]);
        assert_eq!(
            parse_frame(&mut b, &Limits::default()),
            Ok(Some(Frame::Integer(42)))
        );
        assert!(b.is_empty());
    }
}
