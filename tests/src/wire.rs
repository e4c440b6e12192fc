//! A minimal raw RESP2/RESP3 client that keeps replies exactly as sent.
//!
//! The differential suite compares cairn with Redis byte for byte, so this
//! client deliberately does not reuse cairn's own parser (a bug shared by
//! both sides would hide itself) and keeps every reply in its wire form:
//! a double stays the text the server wrote (`,1.5` and `,1.50` differ), a
//! RESP2 null bulk differs from a null array, and a RESP3 set from an array.

use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One reply, as close to the wire as possible.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-CODE message`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` with data.
    Bulk(Vec<u8>),
    /// `$-1`, the RESP2 null bulk string.
    NilBulk,
    /// `*-1`, the RESP2 null array.
    NilArray,
    /// `_`, the RESP3 null.
    Null,
    /// `*n`
    Array(Vec<Reply>),
    /// `%n` (RESP3)
    Map(Vec<(Reply, Reply)>),
    /// `~n` (RESP3)
    Set(Vec<Reply>),
    /// `>n` (RESP3)
    Push(Vec<Reply>),
    /// `,text`: the double exactly as written.
    Double(String),
    /// `#t` / `#f`
    Boolean(bool),
    /// `(digits`
    BigNumber(String),
    /// `=n` with its three-byte format and text.
    Verbatim(String, Vec<u8>),
    /// `!n`
    BlobError(Vec<u8>),
}

impl Reply {
    /// Whether this is an error reply (`-` or `!`).
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::BlobError(_))
    }

    /// The elements of an aggregate (array, set or push), if it is one.
    pub fn elements(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a bulk, simple or verbatim string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) | Reply::Verbatim(_, b) => Some(b),
            Reply::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Integer(n) => Some(*n),
            _ => None,
        }
    }
}

/// Writes bytes the way `redis-cli` quotes them: printable ASCII as is.
fn write_quoted(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for &b in bytes {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("\"")
}

fn write_list(f: &mut fmt::Formatter<'_>, open: &str, items: &[Reply], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

/// A compact one-line rendering that shows the RESP type of every value.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Integer(n) => write!(f, ":{n}"),
            Reply::Bulk(b) => write_quoted(f, b),
            Reply::NilBulk => f.write_str("$-1"),
            Reply::NilArray => f.write_str("*-1"),
            Reply::Null => f.write_str("_"),
            Reply::Array(v) => write_list(f, "*[", v, "]"),
            Reply::Set(v) => write_list(f, "~{", v, "}"),
            Reply::Push(v) => write_list(f, ">[", v, "]"),
            Reply::Map(pairs) => {
                f.write_str("%{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_str("}")
            }
            Reply::Double(s) => write!(f, ",{s}"),
            Reply::Boolean(b) => f.write_str(if *b { "#t" } else { "#f" }),
            Reply::BigNumber(s) => write!(f, "({s}"),
            Reply::Verbatim(fmt, b) => {
                write!(f, "={fmt}:")?;
                write_quoted(f, b)
            }
            Reply::BlobError(b) => {
                f.write_str("!")?;
                write_quoted(f, b)
            }
        }
    }
}

/// Why a buffer does not hold a whole reply yet, or cannot.
enum ParseError {
    Incomplete,
    Invalid(String),
}

type Parsed<T> = Result<T, ParseError>;

fn invalid<T>(what: impl Into<String>) -> Parsed<T> {
    Err(ParseError::Invalid(what.into()))
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Parsed<&'a [u8]> {
    let rest = buf.get(*pos..).unwrap_or_default();
    let Some(cr) = rest.windows(2).position(|w| w == b"\r\n") else {
        return Err(ParseError::Incomplete);
    };
    *pos += cr + 2;
    Ok(rest.get(..cr).unwrap_or_default())
}

fn text(line: &[u8]) -> Parsed<String> {
    match std::str::from_utf8(line) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => invalid(format!("non-UTF-8 line {line:?}")),
    }
}

fn number(line: &[u8]) -> Parsed<i64> {
    let s = text(line)?;
    s.parse().or_else(|_| invalid(format!("bad number {s:?}")))
}

fn blob(buf: &[u8], pos: &mut usize, len: i64) -> Parsed<Vec<u8>> {
    let len = usize::try_from(len).or_else(|_| invalid(format!("bad length {len}")))?;
    let end = *pos + len;
    if buf.len() < end + 2 {
        return Err(ParseError::Incomplete);
    }
    if buf.get(end..end + 2) != Some(b"\r\n") {
        return invalid("blob not followed by CRLF");
    }
    let data = buf.get(*pos..end).unwrap_or_default().to_vec();
    *pos = end + 2;
    Ok(data)
}

fn items(buf: &[u8], pos: &mut usize, count: i64) -> Parsed<Vec<Reply>> {
    (0..count).map(|_| parse(buf, pos)).collect()
}

/// Parses one reply starting at `*pos`.
fn parse(buf: &[u8], pos: &mut usize) -> Parsed<Reply> {
    let Some(&kind) = buf.get(*pos) else {
        return Err(ParseError::Incomplete);
    };
    *pos += 1;
    let line = read_line(buf, pos)?;
    Ok(match kind {
        b'+' => Reply::Simple(text(line)?),
        b'-' => Reply::Error(text(line)?),
        b':' => Reply::Integer(number(line)?),
        b',' => Reply::Double(text(line)?),
        b'(' => Reply::BigNumber(text(line)?),
        b'_' => Reply::Null,
        b'#' => match line {
            b"t" => Reply::Boolean(true),
            b"f" => Reply::Boolean(false),
            _ => return invalid("bad boolean"),
        },
        b'$' => match number(line)? {
            -1 => Reply::NilBulk,
            n => Reply::Bulk(blob(buf, pos, n)?),
        },
        b'!' => Reply::BlobError(blob(buf, pos, number(line)?)?),
        b'=' => {
            let data = blob(buf, pos, number(line)?)?;
            match (data.get(..3), data.get(3), data.get(4..)) {
                (Some(fmt), Some(b':'), Some(body)) => {
                    Reply::Verbatim(String::from_utf8_lossy(fmt).into_owned(), body.to_vec())
                }
                _ => return invalid("bad verbatim string"),
            }
        }
        b'*' => match number(line)? {
            -1 => Reply::NilArray,
            n => Reply::Array(items(buf, pos, n)?),
        },
        b'~' => Reply::Set(items(buf, pos, number(line)?)?),
        b'>' => Reply::Push(items(buf, pos, number(line)?)?),
        b'%' => {
            let n = number(line)?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let k = parse(buf, pos)?;
                let v = parse(buf, pos)?;
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        other => return invalid(format!("unknown reply type byte {:?}", other as char)),
    })
}

/// Encodes a command as a RESP multibulk request.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One client connection speaking raw RESP.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`; the connection speaks RESP2 until `HELLO 3`.
    ///
    /// # Errors
    /// The connection is refused.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Connects and switches to RESP3 with `HELLO 3`.
    ///
    /// # Errors
    /// The connection is refused or `HELLO 3` is answered with an error.
    pub async fn connect_resp3(addr: SocketAddr) -> anyhow::Result<Conn> {
        let mut conn = Conn::connect(addr).await?;
        let hello = conn.call(&["HELLO", "3"]).await?;
        if hello.is_error() {
            bail!("HELLO 3 to {addr} failed: {hello}");
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply.
    ///
    /// # Errors
    /// I/O errors, a closed connection or a reply that is not valid RESP.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> anyhow::Result<Reply> {
        self.send(args).await?;
        self.read_reply().await
    }

    /// Sends one command without reading its reply.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> anyhow::Result<()> {
        self.stream.write_all(&encode_command(args)).await?;
        Ok(())
    }

    /// Writes raw bytes (inline commands, malformed frames).
    ///
    /// # Errors
    /// I/O errors.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Whether the server closed the connection: reads until end of file or
    /// `within` passes, and fails if a reply arrives instead.
    ///
    /// # Errors
    /// Unexpected data or an I/O error other than a reset.
    pub async fn closed_within(&mut self, within: std::time::Duration) -> anyhow::Result<bool> {
        if !self.buf.is_empty() {
            bail!("unread data: {:?}", String::from_utf8_lossy(&self.buf));
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => Ok(true),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(true),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(n)) => bail!(
                "unexpected data: {:?}",
                String::from_utf8_lossy(chunk.get(..n).unwrap_or_default())
            ),
        }
    }

    /// Reads the next reply.
    ///
    /// # Errors
    /// I/O errors, a closed connection or a reply that is not valid RESP.
    pub async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        loop {
            let mut pos = 0;
            match parse(&self.buf, &mut pos) {
                Ok(reply) => {
                    self.buf.drain(..pos);
                    return Ok(reply);
                }
                Err(ParseError::Invalid(why)) => bail!("invalid reply: {why}"),
                Err(ParseError::Incomplete) => {}
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed by the server");
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(wire: &[u8]) -> Option<Reply> {
        let mut pos = 0;
        match parse(wire, &mut pos) {
            Ok(r) if pos == wire.len() => Some(r),
            _ => None,
        }
    }

    #[test]
    fn keeps_wire_distinctions() {
        assert_eq!(parse_all(b"$-1\r\n"), Some(Reply::NilBulk));
        assert_eq!(parse_all(b"*-1\r\n"), Some(Reply::NilArray));
        assert_eq!(parse_all(b",1.50\r\n"), Some(Reply::Double("1.50".into())));
        assert_ne!(parse_all(b",1.50\r\n"), parse_all(b",1.5\r\n"));
        assert_eq!(
            parse_all(b"%1\r\n+a\r\n~1\r\n:1\r\n"),
            Some(Reply::Map(vec![(
                Reply::Simple("a".into()),
                Reply::Set(vec![Reply::Integer(1)])
            )]))
        );
        assert_eq!(
            parse_all(b"=7\r\ntxt:a\r\n\r\n"),
            Some(Reply::Verbatim("txt".into(), b"a\r\n".to_vec()))
        );
    }

    #[test]
    fn waits_for_whole_replies() {
        let whole = b"*2\r\n$3\r\nfoo\r\n:1\r\n";
        for cut in 0..whole.len() {
            let mut pos = 0;
            assert!(
                matches!(parse(&whole[..cut], &mut pos), Err(ParseError::Incomplete)),
                "cut at {cut}"
            );
        }
        assert!(parse_all(whole).is_some());
    }
}
