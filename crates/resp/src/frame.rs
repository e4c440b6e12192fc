//! The RESP value type shared by the parser, the encoder and every command.

use bytes::Bytes;

/// The protocol version a connection speaks, chosen with `HELLO`.
///
/// Replies are built once as [`Frame`]s; the encoder lowers RESP3-only types
/// to their RESP2 forms exactly as Redis 7.0 does when the connection speaks
/// RESP2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2, the default for a new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// One RESP value, in the richest (RESP3) form.
///
/// Commands build replies as frames without caring about the connection's
/// protocol; [`crate::encode`] picks the wire form. RESP2 lowering, as Redis 7.0:
///
/// | frame | RESP3 | RESP2 |
/// |---|---|---|
/// | `Null` | `_` | `$-1` |
/// | `NullArray` | `_` | `*-1` |
/// | `Map` | `%` | flat `*` array of key, value, ... |
/// | `Set` | `~` | `*` |
/// | `Push` | `>` | `*` |
/// | `Double` | `,` | bulk string |
/// | `DoubleText` | `,` | bulk string |
/// | `Boolean` | `#` | integer 1 / 0 |
/// | `BigNumber` | `(` | bulk string |
/// | `Verbatim` | `=` | bulk string (text only) |
/// | `BlobError` | `!` | simple error `-` |
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a short status line without CR or LF.
    Simple(Bytes),
    /// `-ERR message`: the first word is the error code.
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`: binary-safe string.
    Bulk(Bytes),
    /// The null value: `$-1` in RESP2 (a missing bulk string), `_` in RESP3.
    Null,
    /// The null array: `*-1` in RESP2 (e.g. a BLPOP timeout), `_` in RESP3.
    NullArray,
    /// `*N` followed by N frames.
    Array(Vec<Frame>),
    /// RESP3 map `%N`; flattened to an array in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set `~N`; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 push `>N` (pub/sub messages, invalidations); an array in RESP2.
    Push(Vec<Frame>),
    /// RESP3 double `,1.5` (also `inf`, `-inf`, `nan`); a bulk string in RESP2.
    Double(f64),
    /// RESP3 double whose text is given rather than formatted from an
    /// `f64` (Redis' `addReplyHumanLongDouble`, `%.17Lf` trimmed, as
    /// GEOPOS sends coordinates); a bulk string in RESP2.
    DoubleText(Bytes),
    /// RESP3 boolean `#t` / `#f`; integer 1 / 0 in RESP2.
    Boolean(bool),
    /// RESP3 big number `(123...`: the decimal digits, optionally signed.
    BigNumber(Bytes),
    /// RESP3 verbatim string `=N\r\ntxt:...`: a three-byte format and the text.
    Verbatim {
        /// The three-byte format, e.g. `txt` or `mkd`.
        format: [u8; 3],
        /// The text, without the `fmt:` prefix.
        text: Bytes,
    },
    /// RESP3 blob error `!N\r\n...`: a binary-safe error.
    BlobError(Bytes),
}

impl Frame {
    /// `+OK`, the most common reply.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple status reply such as `QUEUED` or `PONG`.
    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    /// An error reply; `msg` must start with the error code (`ERR`, `WRONGTYPE`, ...).
    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(msg.into()))
    }

    /// A bulk string copied from `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// Whether this frame is an error reply (`-` or `!`).
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_) | Frame::BlobError(_))
    }
}
