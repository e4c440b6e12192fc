//! `resp_decode`: the request decoder on any bytes, fed whole and in
//! pieces, and the client-side frame parser on the same bytes.

use bytes::{Bytes, BytesMut};
use cairn_resp::{CommandDecoder, Limits, Protocol, encode, parse_frame};

/// What a connection decodes from bytes that arrive in `chunks`: the
/// requests, then the error that would close it, if any.
fn decode(chunks: impl Iterator<Item = Vec<u8>>, limits: &Limits) -> (Vec<Vec<Bytes>>, bool) {
    let mut decoder = CommandDecoder::new();
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(&chunk);
        loop {
            match decoder.decode(&mut buf, limits) {
                Ok(Some(args)) => requests.push(args),
                Ok(None) => break,
                Err(_) => return (requests, true),
            }
        }
    }
    (requests, false)
}

/// Panics when decoding `data` panics, or when the requests decoded from
/// it depend on how the bytes were split.
///
/// How they are split may change *where* an error closes the connection,
/// as in Redis: a line longer than the inline limit is refused when its
/// end has not arrived yet, but read when it comes in one piece. So the
/// requests decoded before an error must be a prefix of the other's, and
/// without an error on either side the two must be equal.
pub fn resp_decode(data: &[u8]) {
    let limits = Limits::default();
    let whole = decode(std::iter::once(data.to_vec()), &limits);
    let piece = usize::from(data.first().copied().unwrap_or(0) % 16) + 1;
    let split = decode(data.chunks(piece).map(<[u8]>::to_vec), &limits);
    let (short, long) = if whole.0.len() <= split.0.len() {
        (&whole.0, &split.0)
    } else {
        (&split.0, &whole.0)
    };
    assert!(
        long.starts_with(short),
        "split into {piece}-byte pieces, the requests differ: {:?} vs {:?}",
        whole.0,
        split.0
    );
    if !whole.1 && !split.1 {
        assert_eq!(whole.0, split.0, "split into {piece}-byte pieces");
    }

    // Tight limits reach the refusals with small inputs.
    let tight = Limits {
        max_bulk_len: 16,
        max_multibulk_len: 8,
        max_inline_len: 32,
        max_depth: 4,
    };
    let (requests, _) = decode(data.chunks(piece).map(<[u8]>::to_vec), &tight);
    for args in &requests {
        // Inline arguments are bounded by the line, bulk ones by the bulk
        // limit.
        assert!(
            args.iter().all(|a| a.len() <= tight.max_inline_len),
            "an argument above every limit: {args:?}"
        );
    }

    // The client-side parser: whatever it reads, re-encoded, reads back
    // the same (after one round, so number formats are normalized).
    for limits in [limits, tight] {
        let mut buf = BytesMut::from(data);
        if let Ok(Some(frame)) = parse_frame(&mut buf, &limits) {
            let mut once = BytesMut::new();
            encode(&frame, Protocol::Resp3, &mut once);
            let mut again = once.clone();
            let back = parse_frame(&mut again, &Limits::default());
            let Ok(Some(back)) = back else {
                panic!("{frame:?} encoded as {once:?} does not parse: {back:?}");
            };
            let mut twice = BytesMut::new();
            encode(&back, Protocol::Resp3, &mut twice);
            assert_eq!(once, twice, "{frame:?} re-encodes differently");
        }
    }
}
