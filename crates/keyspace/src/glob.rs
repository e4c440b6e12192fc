//! Redis' glob matching (`KEYS`, `SCAN MATCH`, `CONFIG GET`): `*`, `?`,
//! `[abc]`, `[^a-z]`, `\x`.

/// Whether `s` matches the glob `pat` (binary-safe, like `stringmatchlen`).
pub fn glob_match(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    // Iterative with single-star backtracking: linear-ish and never recurses,
    // so a hostile pattern cannot blow the stack.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while i < s.len() {
        let c = s[i];
        let step = match pat.get(p) {
            Some(b'*') => {
                while pat.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pat.len() {
                    return true;
                }
                star = Some((p, i));
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class(pat, p, c, nocase),
            Some(b'\\') if p + 1 < pat.len() => eq(pat[p + 1], c).then_some(2),
            Some(&pc) => eq(pc, c).then_some(1),
            None => None,
        };
        match step {
            Some(n) => {
                p += n;
                i += 1;
            }
            None => match star {
                Some((sp, si)) => {
                    p = sp;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    while pat.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pat.len()
}

/// Matches `c` against the class starting at `pat[p] == '['`; returns the
/// class length on a match.
fn class(pat: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let mut j = p + 1;
    let not = pat.get(j) == Some(&b'^');
    if not {
        j += 1;
    }
    let lc = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
    let c = lc(c);
    let mut matched = false;
    loop {
        match pat.get(j) {
            // An unterminated class ends at the pattern's end, as in Redis.
            None => {
                j = pat.len().saturating_sub(1);
                break;
            }
            Some(b']') => break,
            Some(b'\\') if j + 1 < pat.len() => {
                if lc(pat[j + 1]) == c {
                    matched = true;
                }
                j += 2;
            }
            Some(&a) if pat.get(j + 1) == Some(&b'-') && j + 2 < pat.len() => {
                let (mut lo, mut hi) = (lc(a), lc(pat[j + 2]));
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                if c >= lo && c <= hi {
                    matched = true;
                }
                j += 3;
            }
            Some(&a) => {
                if lc(a) == c {
                    matched = true;
                }
                j += 1;
            }
        }
    }
    (matched != not).then_some(j + 1 - p)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn patterns() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:?", "user:12"));
        assert!(glob_match(b"MAX*", b"maxmemory", true));
    }
}
