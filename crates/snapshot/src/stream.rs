//! The single-file stream form: header, framed records, footer.

use std::io::{ErrorKind, Read, Write};

use crate::codec::{FRAME_OVERHEAD, check_len, decode_payload, encode_record_with, frame_crc};
use crate::error::{Error, Result};
use crate::frame::{Digest, FOOTER_LEN, FOOTER_MARKER, Footer, HEADER_LEN, Header};
use crate::model::{Limits, Record};

/// Writes a snapshot stream: the header at creation, one framed record per
/// [`write_record`](Self::write_record), the footer at [`finish`](Self::finish).
///
/// Writes go straight to `W`; wrap a file in a [`std::io::BufWriter`].
#[derive(Debug)]
pub struct StreamWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    digest: Digest,
    limits: Limits,
}

impl<W: Write> StreamWriter<W> {
    /// Writes `header` and returns the writer.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub fn new(inner: W, header: Header) -> Result<Self> {
        Self::with_limits(inner, header, Limits::DEFAULT)
    }

    /// [`new`](Self::new) with explicit limits for the records.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub fn with_limits(mut inner: W, header: Header, limits: Limits) -> Result<Self> {
        inner.write_all(&header.encode())?;
        Ok(StreamWriter {
            inner,
            buf: Vec::new(),
            digest: Digest::new(),
            limits,
        })
    }

    /// Encodes and writes one record.
    ///
    /// # Errors
    ///
    /// As [`encode_record`](crate::encode_record) (nothing is written then),
    /// or [`Error::Io`].
    pub fn write_record(&mut self, record: &Record) -> Result<()> {
        self.buf.clear();
        encode_record_with(record, &self.limits, &mut self.buf)?;
        self.inner.write_all(&self.buf)?;
        self.digest.update(&self.buf);
        Ok(())
    }

    /// Writes one record that is already framed (from a store), after
    /// checking its length and CRC.
    ///
    /// # Errors
    ///
    /// As [`decode_record`](crate::decode_record) for the framing, or
    /// [`Error::Io`].
    pub fn write_framed(&mut self, framed: &[u8]) -> Result<()> {
        crate::codec::check_frame(framed, &self.limits)?;
        self.inner.write_all(framed)?;
        self.digest.update(framed);
        Ok(())
    }

    /// Records written so far.
    pub fn record_count(&self) -> u64 {
        self.digest.count()
    }

    /// Writes the footer, flushes, and returns the footer.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub fn finish(self) -> Result<Footer> {
        self.finish_into_inner().map(|(footer, _)| footer)
    }

    /// [`finish`](Self::finish), also handing back the writer.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub fn finish_into_inner(mut self) -> Result<(Footer, W)> {
        let footer = Footer {
            record_count: self.digest.count(),
            digest: self.digest.finish(),
        };
        self.inner.write_all(&footer.encode())?;
        self.inner.flush()?;
        Ok((footer, self.inner))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Records,
    Done,
    Failed,
}

/// Reads and verifies a snapshot stream, yielding its records in order.
///
/// Each record's CRC is checked before it is decoded; at the footer the
/// record count and digest are checked, and any byte after the footer is an
/// error. The iterator ends after the footer was verified (`None`), or after
/// the first error, except [skippable](Error::is_skippable) ones (a record of
/// an unknown value type), after which it goes on with the next record.
/// Records are only trustworthy once the iterator has returned `None`
/// without an error: a damaged footer or digest shows only at the end.
///
/// Reads go straight to `R`; wrap a file in a [`std::io::BufReader`].
///
/// A reader is [`Clone`] when `R` is: the clone continues from the same
/// point with the same running count and digest.
#[derive(Debug, Clone)]
pub struct StreamReader<R: Read> {
    inner: R,
    header: Header,
    limits: Limits,
    /// Offset of the next unread byte.
    offset: u64,
    digest: Digest,
    buf: Vec<u8>,
    footer: Option<Footer>,
    state: State,
}

fn read_exact_or_truncated<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
    offset: u64,
    record: Option<u64>,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) => {
                return Err(Error::Truncated {
                    what,
                    needed: buf.len() as u64,
                    available: filled as u64,
                    offset,
                    record,
                });
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl<R: Read> StreamReader<R> {
    /// Reads and checks the header.
    ///
    /// # Errors
    ///
    /// As [`Header::decode`], or [`Error::Io`].
    pub fn new(inner: R) -> Result<Self> {
        Self::with_limits(inner, Limits::DEFAULT)
    }

    /// [`new`](Self::new) with explicit limits for the records.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_limits(mut inner: R, limits: Limits) -> Result<Self> {
        let mut head = [0u8; HEADER_LEN];
        read_exact_or_truncated(&mut inner, &mut head, "header", 0, None)?;
        let header = Header::decode(&head)?;
        Ok(StreamReader {
            inner,
            header,
            limits,
            offset: HEADER_LEN as u64,
            digest: Digest::new(),
            buf: Vec::new(),
            footer: None,
            state: State::Records,
        })
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader, mutably. Reading from it or replacing it
    /// makes the stream reader see whatever bytes it delivers next.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Offset in the stream of the next byte to be read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The stream's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The footer, once it has been read and verified.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.digest.count()
    }

    /// Reads the next framed record (length, payload, CRC), checking its
    /// CRC but not decoding it; `Ok(None)` after the verified footer.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], [`Error::TooLarge`],
    /// [`Error::ChecksumMismatch`], at the footer [`Error::BadMagic`],
    /// [`Error::CountMismatch`], [`Error::DigestMismatch`],
    /// [`Error::TrailingData`]; [`Error::Io`]. Every error is final.
    pub fn next_framed(&mut self) -> Result<Option<&[u8]>> {
        match self.state {
            State::Records => {}
            State::Done | State::Failed => return Ok(None),
        }
        match self.read_frame() {
            Ok(true) => Ok(Some(&self.buf)),
            Ok(false) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Reads one frame into `buf`; false at the (verified) footer.
    fn read_frame(&mut self) -> Result<bool> {
        let start = self.offset;
        let index = self.digest.count();
        let mut len_bytes = [0u8; 4];
        read_exact_or_truncated(
            &mut self.inner,
            &mut len_bytes,
            "record length or footer",
            start,
            Some(index),
        )?;
        let len = u32::from_le_bytes(len_bytes);
        if len == FOOTER_MARKER {
            return self.read_footer(len_bytes).map(|()| false);
        }
        check_len(len, &self.limits, start).map_err(|e| e.in_stream(0, index))?;
        let rest = len as u64 + 4;
        self.buf.clear();
        self.buf.extend_from_slice(&len_bytes);
        // `take` + `read_to_end` grows the buffer with the data actually
        // there, so a huge length on a short input allocates nothing big.
        let got = (&mut self.inner).take(rest).read_to_end(&mut self.buf)?;
        if (got as u64) < rest {
            return Err(Error::Truncated {
                what: "record",
                needed: rest + 4,
                available: got as u64 + 4,
                offset: start,
                record: Some(index),
            });
        }
        let (framed_body, crc) = self.buf.split_at(self.buf.len() - 4);
        let payload = framed_body.get(4..).unwrap_or_default();
        let expected = crc.first_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c));
        let actual = frame_crc(&len_bytes, payload);
        if expected != actual {
            return Err(Error::ChecksumMismatch {
                expected,
                actual,
                offset: start,
                record: Some(index),
            });
        }
        self.offset += (len as usize + FRAME_OVERHEAD) as u64;
        self.digest.update(&self.buf);
        Ok(true)
    }

    fn read_footer(&mut self, marker: [u8; 4]) -> Result<()> {
        let start = self.offset;
        let mut bytes = [0u8; FOOTER_LEN];
        bytes[..4].copy_from_slice(&marker);
        read_exact_or_truncated(&mut self.inner, &mut bytes[4..], "footer", start + 4, None)?;
        let footer = Footer::decode(&bytes).map_err(|e| match e {
            Error::ChecksumMismatch {
                expected, actual, ..
            } => Error::ChecksumMismatch {
                expected,
                actual,
                offset: start,
                record: None,
            },
            Error::BadMagic { what, .. } => Error::BadMagic {
                what,
                offset: start,
            },
            other => other,
        })?;
        footer.verify(&self.digest)?;
        self.offset = start + FOOTER_LEN as u64;
        let mut probe = [0u8; 64];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => break,
                Ok(n) => {
                    return Err(Error::TrailingData {
                        offset: self.offset,
                        len: n as u64,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.footer = Some(footer);
        Ok(())
    }

    /// Reads every remaining record and the footer, returning the footer:
    /// a full verification pass that decodes every record.
    ///
    /// # Errors
    ///
    /// The first error met.
    pub fn verify_to_end(mut self) -> Result<Footer> {
        for record in self.by_ref() {
            record?;
        }
        self.footer.ok_or(Error::Malformed {
            reason: "stream ended without a footer",
            offset: 0,
            record: None,
        })
    }
}

impl<R: Read> Iterator for StreamReader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let start = self.offset;
        match self.next_framed() {
            Ok(None) => None,
            Err(e) => Some(Err(e)),
            Ok(Some(_)) => {
                let index = self.digest.count() - 1;
                let payload = self.buf.get(4..self.buf.len() - 4).unwrap_or_default();
                let decoded = decode_payload(payload, None, &self.limits)
                    .map_err(|e| e.in_stream(start, index));
                if let Err(e) = &decoded
                    && !e.is_skippable()
                {
                    self.state = State::Failed;
                }
                Some(decoded)
            }
        }
    }
}
