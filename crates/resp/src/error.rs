//! Why a byte stream is not valid RESP.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::Frame;

/// A malformed request or frame.
///
/// `Display` gives the message Redis 7.0.15 sends after `-ERR ` (checked
/// against a real server with raw sockets); the server answers with
/// [`ProtocolError::to_frame`] and closes the connection, as Redis does.
/// Variants marked "decoder only" come from [`crate::parse_frame`], the
/// client-side decoder, and have no Redis counterpart.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// `*abc`, `*01`, or a count above [`crate::Limits::max_multibulk_len`].
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$abc`, `$-1` inside a request, or a length above
    /// [`crate::Limits::max_bulk_len`].
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A request element that is not a bulk string; holds the byte found.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// An inline request line longer than [`crate::Limits::max_inline_len`].
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    /// A `*` count line longer than [`crate::Limits::max_inline_len`].
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$` length line longer than [`crate::Limits::max_inline_len`].
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// An inline request with an unterminated quote, or a closing quote
    /// not followed by a space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// More than 10 arguments before the client authenticated (see
    /// [`crate::Session::authenticated`]).
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A bulk string over 16384 bytes before the client authenticated.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// Decoder only: a frame starting with an unknown type byte.
    #[error("Protocol error: unknown frame type '{}'", char::from(*.0))]
    UnknownType(u8),
    /// Decoder only: a line or bulk payload not followed by CRLF.
    #[error("Protocol error: expected CRLF")]
    ExpectedCrlf,
    /// Decoder only: a malformed `:` integer or `(` big number.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// Decoder only: a malformed `,` double.
    #[error("Protocol error: invalid double")]
    InvalidDouble,
    /// Decoder only: a `#` boolean other than `t` or `f`.
    #[error("Protocol error: invalid boolean")]
    InvalidBoolean,
    /// Decoder only: a `_` null with a payload.
    #[error("Protocol error: invalid null")]
    InvalidNull,
    /// Decoder only: a `=` verbatim string without its `fmt:` prefix.
    #[error("Protocol error: invalid verbatim string")]
    InvalidVerbatim,
    /// Decoder only: aggregates nested deeper than
    /// [`crate::Limits::max_depth`].
    #[error("Protocol error: nesting too deep")]
    TooDeep,
}

impl ProtocolError {
    /// The `-ERR Protocol error: ...` reply for this error.
    ///
    /// Unlike `to_string()`, this keeps the offending byte of
    /// [`ProtocolError::ExpectedBulk`] raw, as Redis' `%c` does, instead of
    /// re-encoding bytes above 0x7f as UTF-8. CR and LF are replaced by
    /// spaces so the reply cannot break framing.
    pub fn to_frame(&self) -> Frame {
        let mut msg = BytesMut::with_capacity(64);
        msg.put_slice(b"ERR ");
        match self {
            ProtocolError::ExpectedBulk(b) | ProtocolError::UnknownType(b) => {
                let text = self.to_string();
                // Both messages end in `'<byte>'`; rebuild that tail raw.
                let head = text.rsplit_once('\'').map_or("", |(h, _)| h);
                let head = head.rsplit_once('\'').map_or("", |(h, _)| h);
                msg.put_slice(head.as_bytes());
                msg.put_u8(b'\'');
                msg.put_u8(if matches!(b, b'\r' | b'\n') { b' ' } else { *b });
                msg.put_u8(b'\'');
            }
            _ => msg.put_slice(self.to_string().as_bytes()),
        }
        Frame::Error(Bytes::from(msg))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn to_frame_keeps_raw_byte() {
        let f = ProtocolError::ExpectedBulk(0xff).to_frame();
        assert_eq!(
            f,
            Frame::Error(Bytes::from_static(
                b"ERR Protocol error: expected '$', got '\xff'"
            ))
        );
        let f = ProtocolError::ExpectedBulk(b'f').to_frame();
        assert_eq!(
            f,
            Frame::Error(Bytes::from_static(
                b"ERR Protocol error: expected '$', got 'f'"
            ))
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_frame(),
            Frame::Error(Bytes::from_static(
                b"ERR Protocol error: invalid bulk length"
            ))
        );
    }
}
