/*!
RESP2/RESP3 wire protocol for cairn: frames, an incremental request parser,
a frame decoder, the encoder, size limits, and the tokio connection server.

# Brief overview

* [`Frame`] is a reply in its richest (RESP3) form; [`encode`] writes it in
  a connection's [`Protocol`], lowering RESP3-only types for RESP2 as Redis
  7.0 does.
* [`parse_command`] / [`CommandDecoder`] split requests (multibulk or
  inline) off a read buffer without copying arguments; [`parse_frame`]
  decodes any frame, for clients and tests. Both refuse lengths beyond
  [`Limits`] from the header alone and report [`ProtocolError`]s with
  Redis' texts.
* [`run`] serves a [`Service`] on a bound listener: pipelining, blocking
  commands, pushed events, `maxclients`, and graceful shutdown.

Arguments handed to [`Session::call`] are slices of the connection's read
buffer: a session that keeps one for long (a stored key or value) should
copy it (`Bytes::copy_from_slice`), or it pins the whole read chunk.

# Example

```
use bytes::BytesMut;
use cairn_resp::{Frame, Limits, Protocol, encode, parse_frame};

let reply = Frame::Map(vec![(Frame::bulk("score"), Frame::Double(1.5))]);
let mut wire = BytesMut::new();
encode(&reply, Protocol::Resp3, &mut wire);
assert_eq!(&wire[..], b"%1\r\n$5\r\nscore\r\n,1.5\r\n");

let back = parse_frame(&mut wire, &Limits::default())?;
assert_eq!(back, Some(reply));
assert!(wire.is_empty());
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod encode;
mod error;
mod frame;
mod parse;
mod server;
mod service;

pub use crate::{
    encode::{encode, format_double, format_double_human},
    error::ProtocolError,
    frame::{Frame, Protocol},
    parse::{CommandDecoder, Limits, parse_command, parse_frame},
    server::{Listener, ServerConfig, run, run_listeners},
    service::{Addr, ConnInfo, Event, Outcome, OutputLimit, Pending, Service, Session},
};
