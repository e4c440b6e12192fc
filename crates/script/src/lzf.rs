//! LZF as Redis 7.0 uses it for RDB strings (`FUNCTION DUMP` payloads):
//! liblzf 3.6's `lzf_compress` built with Redis' settings (`HLOG` 16,
//! `VERY_FAST`, offsets in the hash table) so the output is byte for byte
//! Redis', and `lzf_decompress`.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// `lzf_compress(input, out_len)`: the compressed bytes, `None` when they
/// do not fit in `out_len` bytes (as liblzf's 0).
///
/// liblzf leaves its hash table uninitialised (`INIT_HTAB` 0) and guards
/// every candidate match by comparing bytes; a zeroed table (no
/// candidates) is what Redis' fresh stack holds in practice, and the
/// differential test compares the outputs.
pub(crate) fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len < 3 || out_len == 0 {
        // Redis never compresses strings under 21 bytes.
        return None;
    }
    let mut htab = vec![0u32; HSIZE];
    // Slack so the writes liblzf makes just past its checks stay in bounds.
    let mut out = vec![0u8; out_len + 8];
    let byte = |i: usize| u32::from(input[i]);
    let frst = |p: usize| (byte(p) << 8) | byte(p + 1);
    let next = |v: u32, p: usize| (v << 8) | byte(p + 2);
    let idx = |h: u32| ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1);

    let mut ip = 0usize;
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let mut hval = frst(ip);
    while ip + 2 < in_len {
        hval = next(hval, ip);
        let slot = idx(hval);
        let r = htab[slot] as usize;
        htab[slot] = ip as u32;
        let off = ip.wrapping_sub(r).wrapping_sub(1);
        if off < MAX_OFF
            && r > 0
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1]
        {
            let mut len = 2usize;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero
            'm: {
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            break 'm;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // len is now #octets - 1
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip + 2 >= in_len {
                break;
            }
            // VERY_FAST: hash the last two positions of the match.
            ip -= 2;
            hval = frst(ip);
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32;
            ip += 1;
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32;
            ip += 1;
        } else {
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// `lzf_decompress`: `None` on a malformed input or when the output is not
/// exactly `len` bytes.
pub(crate) fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if out.len() + n > len {
                return None;
            }
            out.extend_from_slice(input.get(ip..ip + n)?);
            ip += n;
        } else {
            let mut n = ctrl >> 5;
            let back = (ctrl & 0x1f) << 8;
            if n == 7 {
                n += usize::from(*input.get(ip)?);
                ip += 1;
            }
            let back = back + usize::from(*input.get(ip)?) + 1;
            ip += 1;
            n += 2;
            if out.len() + n > len || back > out.len() {
                return None;
            }
            let start = out.len() - back;
            for i in 0..n {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in [21usize, 40, 100, 1000, 20_000] {
            for alphabet in [2u64, 4, 26, 256] {
                let data: Vec<u8> = (0..n)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        b'a'.wrapping_add((seed % alphabet) as u8)
                    })
                    .collect();
                if let Some(c) = compress(&data, n - 4) {
                    assert!(c.len() <= n - 4);
                    assert_eq!(
                        decompress(&c, n).as_deref(),
                        Some(&data[..]),
                        "{n} {alphabet}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_redis_output() {
        // FUNCTION DUMP of this library from redis-server 7.0.15.
        let code = b"#!lua name=big\n-- aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nredis.register_function('f2', function(k, a) return 'hello hello hello hello hello' end)";
        let want: &[u8] = b"\x12#!lua name=big\n-- a\xe0Q\x00\x1e\nredis.register_function('f2', \xe0\x00\x0e\x13k, a) return 'hello \xe0\x0e\x05\x05' end)";
        assert_eq!(compress(code, code.len() - 4).as_deref(), Some(want));
    }
}
