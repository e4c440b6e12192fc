//! Authentication of the default user: `requirepass`, `AUTH`, `HELLO AUTH`
//! and the password rules of `ACL SETUSER default`, with Redis 7.0's
//! semantics.
//!
//! Redis keeps the default user's passwords as SHA-256 digests and compares
//! a candidate's digest with each of them in time independent of where they
//! differ (`ACLCheckPasswordHash`): done the same here, so neither a
//! password's length nor its common prefix with a stored one shows in the
//! time `AUTH` takes.
//!
//! Whether a connection must authenticate follows Redis' `authRequired`:
//! a client is let in when it authenticated, or when the default user is
//! `nopass` *now*. A connection made while there was no password stays
//! authenticated after `requirepass` is set, as in Redis; one made while a
//! password was required is let in as soon as the password is removed.
//!
//! Only the default user exists: the other ACL users, with their command,
//! key and channel rules, are not implemented (docs/compatibility.md).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

/// Redis' `acllog-max-len` default.
const LOG_MAX_LEN: usize = 128;
/// Redis merges a failure into an entry of the last 60 s with the same
/// reason, context, object and user (`ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const LOG_GROUPING_MS: u128 = 60_000;

/// The state of the default user and the log of refused attempts.
pub(crate) struct Auth {
    /// Mirrors `!user.nopass` for the per-command check, which must not
    /// take a lock.
    required: AtomicBool,
    user: RwLock<DefaultUser>,
    log: Mutex<VecDeque<LogEntry>>,
    /// `acllog-max-len`: entries beyond it are dropped at the next failure.
    log_max_len: AtomicUsize,
}

#[derive(Clone, Default)]
struct DefaultUser {
    nopass: bool,
    /// SHA-256 digests, in the order they were added, without duplicates.
    hashes: Vec<[u8; 32]>,
}

/// One `ACL LOG` entry.
pub(crate) struct LogEntry {
    pub(crate) count: u64,
    pub(crate) reason: &'static str,
    pub(crate) context: &'static str,
    pub(crate) object: String,
    pub(crate) username: String,
    pub(crate) created: Instant,
    pub(crate) client_info: String,
}

impl Auth {
    /// The default user of a server started with `requirepass` (`None` or
    /// empty: `nopass`).
    pub(crate) fn new(requirepass: Option<&[u8]>) -> Auth {
        let auth = Auth {
            required: AtomicBool::new(false),
            user: RwLock::new(DefaultUser {
                nopass: true,
                hashes: Vec::new(),
            }),
            log: Mutex::new(VecDeque::new()),
            log_max_len: AtomicUsize::new(LOG_MAX_LEN),
        };
        auth.set_requirepass(requirepass.unwrap_or_default());
        auth
    }

    /// Whether a connection that has not authenticated is refused.
    pub(crate) fn required(&self) -> bool {
        self.required.load(Ordering::Acquire)
    }

    /// `CONFIG SET requirepass`: Redis' `resetpass` then `>pw`, or
    /// `nopass` for the empty string.
    pub(crate) fn set_requirepass(&self, pw: &[u8]) {
        let mut u = self.user.write();
        u.hashes.clear();
        u.nopass = pw.is_empty();
        if !pw.is_empty() {
            u.hashes.push(digest(pw));
        }
        self.required.store(!u.nopass, Ordering::Release);
    }

    /// Whether `pass` opens the default user (any password does when it is
    /// `nopass`). Every stored digest is compared, each in constant time.
    pub(crate) fn check(&self, pass: &[u8]) -> bool {
        let u = self.user.read();
        if u.nopass {
            return true;
        }
        let d = digest(pass);
        let mut found = false;
        for h in &u.hashes {
            found |= constant_time_eq(h, &d);
        }
        found
    }

    /// Whether the default user is `nopass` (the one-argument `AUTH` is an
    /// error then).
    pub(crate) fn nopass(&self) -> bool {
        self.user.read().nopass
    }

    /// Applies `ACL SETUSER default` rules, all or none. Rules that describe
    /// the default user's permissions as they are (`on`, `~*`, `+@all`,
    /// ...) are accepted; any other permission rule is refused, because
    /// cairn has no per-user permissions to apply it to.
    pub(crate) fn apply_rules(&self, rules: &[Bytes]) -> Result<(), String> {
        let mut u = self.user.read().clone();
        for r in rules {
            apply_rule(&mut u, r).map_err(|why| {
                format!(
                    "ERR Error in ACL SETUSER modifier '{}': {why}",
                    String::from_utf8_lossy(r)
                )
            })?;
        }
        let mut live = self.user.write();
        self.required.store(!u.nopass, Ordering::Release);
        *live = u;
        Ok(())
    }

    /// The `passwords` of `ACL GETUSER`: lowercase hex digests.
    pub(crate) fn password_hexes(&self) -> Vec<String> {
        self.user.read().hashes.iter().map(|h| hex(h)).collect()
    }

    /// The rule line of `ACL LIST`.
    pub(crate) fn list_line(&self) -> String {
        let u = self.user.read();
        let mut line = String::from("user default on");
        if u.nopass {
            line.push_str(" nopass");
        }
        for h in &u.hashes {
            line.push_str(" #");
            line.push_str(&hex(h));
        }
        line.push_str(" ~* &* +@all");
        line
    }

    /// Records a refused authentication as Redis' `addACLLogEntry` does:
    /// merged into a recent entry with the same reason, context, object and
    /// user, else added at the front, the oldest dropped past the limit.
    pub(crate) fn log_denied_auth(&self, object: &str, username: &[u8], client_info: String) {
        let username = String::from_utf8_lossy(username).into_owned();
        let mut log = self.log.lock();
        let now = Instant::now();
        if let Some(e) = log.iter_mut().find(|e| {
            e.reason == "auth"
                && e.object == object
                && e.username == username
                && now.duration_since(e.created).as_millis() < LOG_GROUPING_MS
        }) {
            e.count += 1;
            e.created = now;
            e.client_info = client_info;
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason: "auth",
            context: "toplevel",
            object: object.to_string(),
            username,
            created: now,
            client_info,
        });
        log.truncate(self.log_max_len.load(Ordering::Relaxed));
    }

    /// `CONFIG SET acllog-max-len`.
    pub(crate) fn set_log_max_len(&self, n: usize) {
        self.log_max_len.store(n, Ordering::Relaxed);
    }

    /// Reads the newest `count` log entries with `f`.
    pub(crate) fn with_log<R>(&self, f: impl FnOnce(&VecDeque<LogEntry>) -> R) -> R {
        f(&self.log.lock())
    }

    /// `ACL LOG RESET`.
    pub(crate) fn reset_log(&self) {
        self.log.lock().clear();
    }
}

fn apply_rule(u: &mut DefaultUser, rule: &[u8]) -> Result<(), &'static str> {
    let lower = rule.to_ascii_lowercase();
    match lower.as_slice() {
        b"nopass" => {
            u.nopass = true;
            u.hashes.clear();
            return Ok(());
        }
        b"resetpass" => {
            u.nopass = false;
            u.hashes.clear();
            return Ok(());
        }
        // The default user's permissions as they are: nothing to change.
        b"on" | b"allkeys" | b"~*" | b"allchannels" | b"&*" | b"allcommands" | b"+@all"
        | b"%rw~*" => return Ok(()),
        _ => {}
    }
    match rule.split_first() {
        Some((b'>', pw)) => {
            add_hash(u, digest(pw));
            Ok(())
        }
        Some((b'<', pw)) => remove_hash(u, &digest(pw)),
        Some((b'#', h)) => {
            add_hash(u, parse_hash(h)?);
            Ok(())
        }
        Some((b'!', h)) => remove_hash(u, &parse_hash(h)?),
        Some((b'~' | b'%' | b'&' | b'+' | b'-' | b'(', _)) => Err(
            "cairn supports only the default user with all permissions (per-user command, key and channel rules are not implemented)",
        ),
        _ if matches!(
            lower.as_slice(),
            b"off"
                | b"reset"
                | b"resetkeys"
                | b"resetchannels"
                | b"nocommands"
                | b"clearselectors"
                | b"skip-sanitize-payload"
                | b"sanitize-payload"
        ) =>
        {
            Err(
                "cairn supports only the default user with all permissions (per-user command, key and channel rules are not implemented)",
            )
        }
        _ => Err("Syntax error"),
    }
}

fn add_hash(u: &mut DefaultUser, h: [u8; 32]) {
    // Adding a password clears `nopass`, as in Redis.
    u.nopass = false;
    if !u.hashes.contains(&h) {
        u.hashes.push(h);
    }
}

fn remove_hash(u: &mut DefaultUser, h: &[u8; 32]) -> Result<(), &'static str> {
    let before = u.hashes.len();
    u.hashes.retain(|x| x != h);
    if u.hashes.len() == before {
        return Err("The password you are trying to remove from the user does not exist");
    }
    Ok(())
}

fn parse_hash(h: &[u8]) -> Result<[u8; 32], &'static str> {
    const BAD: &str = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
    if h.len() != 64 {
        return Err(BAD);
    }
    let mut out = [0u8; 32];
    for (i, pair) in h.chunks_exact(2).enumerate() {
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(BAD),
        };
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

fn digest(pw: &[u8]) -> [u8; 32] {
    Sha256::digest(pw).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules(a: &Auth, r: &[&str]) -> Result<(), String> {
        let r: Vec<Bytes> = r
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        a.apply_rules(&r)
    }

    #[test]
    fn requirepass_replaces_every_password_and_empty_means_nopass() {
        let a = Auth::new(None);
        assert!(!a.required() && a.check(b"anything"));
        rules(&a, &[">one", ">two"]).unwrap();
        assert!(a.required() && a.check(b"one") && a.check(b"two") && !a.check(b"three"));
        a.set_requirepass(b"three");
        assert!(!a.check(b"one") && a.check(b"three"));
        a.set_requirepass(b"");
        assert!(!a.required() && a.check(b"x"));
    }

    #[test]
    fn rules_apply_all_or_none_with_redis_texts() {
        let a = Auth::new(Some(b"pw"));
        let e = rules(&a, &[">new", "<absent"]).unwrap_err();
        assert!(
            e.contains("'<absent': The password you are trying to remove"),
            "{e}"
        );
        assert!(!a.check(b"new"), "a refused SETUSER changed nothing");
        assert!(
            rules(&a, &["#abc"])
                .unwrap_err()
                .contains("exactly 64 characters")
        );
        assert!(rules(&a, &["xyz"]).unwrap_err().ends_with("Syntax error"));
        assert!(
            rules(&a, &["-@all"])
                .unwrap_err()
                .contains("not implemented")
        );
        rules(&a, &["on", "~*", "&*", "+@all", "nopass", ">later"]).unwrap();
        assert!(a.required() && a.check(b"later") && !a.check(b"pw"));
        let h = hex(&digest(b"hashed"));
        rules(&a, &[&format!("#{h}")]).unwrap();
        assert!(a.check(b"hashed"));
        assert_eq!(a.password_hexes().last(), Some(&h));
        rules(&a, &["resetpass"]).unwrap();
        assert!(a.required() && !a.check(b"later") && !a.check(b""));
    }

    #[test]
    fn list_line_matches_redis() {
        let a = Auth::new(None);
        assert_eq!(a.list_line(), "user default on nopass ~* &* +@all");
        a.set_requirepass(b"xyz");
        assert_eq!(
            a.list_line(),
            "user default on #3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282 ~* &* +@all"
        );
    }

    #[test]
    fn the_log_groups_repeated_failures() {
        let a = Auth::new(Some(b"pw"));
        a.log_denied_auth("auth", b"default", "id=1".into());
        a.log_denied_auth("auth", b"default", "id=2".into());
        a.log_denied_auth("hello", b"bob", "id=3".into());
        a.with_log(|l| {
            assert_eq!(l.len(), 2);
            assert_eq!((l[0].object.as_str(), l[0].count), ("hello", 1));
            assert_eq!((l[1].count, l[1].client_info.as_str()), (2, "id=2"));
        });
        a.reset_log();
        assert_eq!(a.with_log(|l| l.len()), 0);
    }
}
