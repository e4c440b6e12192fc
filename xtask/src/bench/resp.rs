//! A minimal blocking RESP2 client: enough to drive cairn and Redis the
//! same way (the redis crate would hide pipelining and the exact replies).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:...`
    Int(i64),
    /// `$...` (None for a null bulk)
    Bulk(Option<Vec<u8>>),
    /// `*...` (None for a null array)
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text, for simple strings and bulk strings.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Appends `args` as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply.
///
/// # Errors
/// The connection failed or the bytes were not RESP2.
pub fn read_reply(r: &mut impl BufRead) -> Result<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        bail!(
            "connection closed or malformed reply line {:?}",
            String::from_utf8_lossy(&line)
        );
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let num = |s: &str| {
        s.parse::<i64>()
            .with_context(|| format!("bad length {s:?}"))
    };
    Ok(match line[0] {
        b'+' => Reply::Simple(body),
        b'-' => Reply::Error(body),
        b':' => Reply::Int(num(&body)?),
        b'$' => {
            let n = num(&body)?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0; usize::try_from(n)? + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(buf.len() - 2);
                Reply::Bulk(Some(buf))
            }
        }
        b'*' => {
            let n = num(&body)?;
            if n < 0 {
                Reply::Array(None)
            } else {
                let mut items = Vec::with_capacity(usize::try_from(n)?.min(1024));
                for _ in 0..n {
                    items.push(read_reply(r)?);
                }
                Reply::Array(Some(items))
            }
        }
        other => bail!("unexpected reply type byte {other:#x}"),
    })
}

/// A blocking connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects (no timeout on reads: SAVE of a large keyspace takes long).
    ///
    /// # Errors
    /// The connection was refused.
    pub fn connect(addr: SocketAddr) -> Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::with_capacity(1 << 16, s.try_clone()?),
            writer: s,
        })
    }

    /// Sends one command and reads its reply.
    ///
    /// # Errors
    /// The connection failed.
    pub fn cmd(&mut self, args: &[&str]) -> Result<Reply> {
        let mut out = Vec::new();
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        encode(&mut out, &bytes);
        self.writer.write_all(&out)?;
        read_reply(&mut self.reader)
    }

    /// Sends one command of binary arguments and reads its reply.
    ///
    /// # Errors
    /// The connection failed.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut out = Vec::new();
        encode(&mut out, args);
        self.writer.write_all(&out)?;
        read_reply(&mut self.reader)
    }

    /// Sends one command and expects a non-error reply.
    ///
    /// # Errors
    /// The connection failed or the server answered with an error.
    pub fn ok(&mut self, args: &[&str]) -> Result<Reply> {
        match self.cmd(args)? {
            Reply::Error(e) => bail!("{} answered -{e}", args.join(" ")),
            r => Ok(r),
        }
    }

    /// `DBSIZE`.
    ///
    /// # Errors
    /// The connection failed or the reply was not an integer.
    pub fn dbsize(&mut self) -> Result<i64> {
        match self.ok(&["DBSIZE"])? {
            Reply::Int(n) => Ok(n),
            r => bail!("DBSIZE answered {r:?}"),
        }
    }

    /// The underlying stream, for pipelined loaders.
    pub fn split(self) -> (BufReader<TcpStream>, TcpStream) {
        (self.reader, self.writer)
    }
}

/// `field:value` in an INFO text.
pub fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

/// Connects and PINGs until the server answers PONG (Redis answers
/// `-LOADING` while it loads), or `timeout` passes. Returns when it did.
///
/// # Errors
/// No PONG in time.
pub fn wait_pong(addr: SocketAddr, timeout: Duration) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match Conn::connect(addr).and_then(|mut c| c.cmd(&["PING"])) {
            Ok(Reply::Simple(s)) if s == "PONG" => return Ok(Instant::now()),
            Ok(r) => last = format!("{r:?}"),
            Err(e) => last = e.to_string(),
        }
        // Polling a process we do not control: there is nothing to wait on.
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("{addr} did not answer PONG within {timeout:?} (last: {last})")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_replies() {
        let bytes = b"*3\r\n$3\r\nfoo\r\n:-7\r\n*-1\r\n-ERR x\r\n$-1\r\n";
        let mut r = &bytes[..];
        let a = read_reply(&mut r).unwrap();
        assert_eq!(
            a,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"foo".to_vec())),
                Reply::Int(-7),
                Reply::Array(None)
            ]))
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Error("ERR x".into()));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Bulk(None));
        assert!(read_reply(&mut r).is_err());
    }

    #[test]
    fn encodes_and_finds_info_fields() {
        let mut out = Vec::new();
        encode(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        let info = "# Persistence\r\nrdb_bgsave_in_progress:1\r\nrdb_saves:3\r\n";
        assert_eq!(info_field(info, "rdb_saves").as_deref(), Some("3"));
        assert_eq!(
            info_field(info, "rdb_bgsave_in_progress").as_deref(),
            Some("1")
        );
        assert_eq!(info_field(info, "rdb"), None);
    }
}
