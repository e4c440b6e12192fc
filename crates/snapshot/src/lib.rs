/*!
The cairn snapshot record codec.

A snapshot is a sequence of [`Record`]s: one database entry each (db index,
binary key, absolute expiry, and a string, list, hash, set or sorted-set
value), or one chunk of a large entry. Each record is encoded as a protobuf
payload (schema in [`proto`]) framed as `u32` LE length + payload + `u32` LE
CRC32. A [`Header`] and a [`Footer`] (record count and [`Digest`]) bracket
the records. The crate is a pure codec: it does no file management (that is
`cairn-store`) and knows nothing of Redis commands.

Brief overview:

- [`encode_record`] / [`decode_record`]: one framed record at a time, as
  stored by `cairn-store` (one fjall value per record).
- [`StreamWriter`] / [`StreamReader`]: the single-file form (header, records,
  footer) used for export, backup and the offline checker.
- [`Chunker`] / [`split_entry`] / [`EntryChunker`] and [`Assembler`]:
  bounded-size chunk records for large entries (keys and single elements
  larger than a chunk included), and their reassembly with ordering checks.
- [`Limits`]: caps that keep hostile input from allocating without bound.

The byte-level format is specified in `docs/snapshot-format.md`.

# Example

```
use bytes::Bytes;
use cairn_snapshot::{decode_record, encode_record, Record, Value};

let record = Record::new(0, "user:1", Value::Hash(vec![(Bytes::from("name"), Bytes::from("ada"))]))
    .with_expiry(Some(1_900_000_000_000));
let mut framed = Vec::new();
encode_record(&record, &mut framed)?;
assert_eq!(decode_record(&framed)?, record);

framed[6] ^= 0x40; // any damage is caught by the CRC
assert!(matches!(decode_record(&framed), Err(cairn_snapshot::Error::ChecksumMismatch { .. })));
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use crate::{
    chunk::{
        Assembler, ChunkElement, Chunker, Chunks, DEFAULT_CHUNK_BYTES, DEFAULT_PREALLOC_LIMIT,
        EntryChunker, Part, split_entry,
    },
    codec::{
        FRAME_OVERHEAD, decode_record, decode_record_shared, decode_record_with, encode_record,
        encode_record_with, framed_len,
    },
    error::{ChunkError, Error, Result},
    frame::{
        Digest, FOOTER_LEN, FOOTER_MAGIC, FOOTER_MARKER, FORMAT_VERSION, Footer, HEADER_LEN,
        HEADER_MAGIC, Header, OLDEST_FORMAT_VERSION,
    },
    model::{Chunk, Limits, Record, Value, ValueKind},
    stream::{StreamReader, StreamWriter},
};

mod chunk;
mod codec;
mod error;
mod frame;
mod model;
pub mod proto;
mod stream;
