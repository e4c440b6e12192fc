//! `maxclients` against the open-file limit, as Redis 7.0's
//! `adjustOpenFilesLimit`: at start the soft (and hard) `RLIMIT_NOFILE` is
//! raised to `maxclients` + 32 when possible, else `maxclients` is lowered
//! to fit, with Redis' warnings; `CONFIG SET maxclients` tries the same and
//! is refused with Redis' error when the system cannot follow.

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Frame, Keyspace};
use tracing::{info, warn};

/// Redis' `CONFIG_MIN_RESERVED_FDS`: descriptors kept for listeners,
/// files and logs on top of one per client.
pub(crate) const RESERVED_FDS: u64 = 32;

/// What [`adjust`] settled on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Adjusted {
    /// `maxclients` fits (the limit was raised if needed).
    Fits,
    /// The limit could not be raised enough: this many clients fit.
    Lowered(usize),
    /// Not even the reserved descriptors fit (Redis exits).
    TooLow {
        /// The soft limit found.
        have: u64,
        /// What `maxclients` needs.
        need: u64,
    },
}

/// Redis' `adjustOpenFilesLimit` for `maxclients`, logging as Redis does.
#[cfg(unix)]
pub(crate) fn adjust(maxclients: usize) -> Adjusted {
    use rlimit::Resource;
    // Redis adds in `unsigned int`, so a maxclients within 32 of UINT_MAX
    // wraps to a tiny need that any limit meets (CONFIG SET maxclients
    // 4294967295 is accepted): the same arithmetic here.
    let maxfiles = u64::from(
        u32::try_from(maxclients)
            .unwrap_or(u32::MAX)
            .wrapping_add(RESERVED_FDS as u32),
    );
    let (old, hard) = match rlimit::getrlimit(Resource::NOFILE) {
        Ok(l) => l,
        Err(e) => {
            warn!(
                "Unable to obtain the current NOFILE limit ({e}), assuming 1024 and setting the max clients configuration accordingly."
            );
            return Adjusted::Lowered(usize::try_from(1024 - RESERVED_FDS).unwrap_or(0));
        }
    };
    if old >= maxfiles {
        return Adjusted::Fits;
    }
    // The highest limit up to `maxfiles` the system grants, trying in
    // steps of 16 as Redis does. Redis sets the hard limit to the same
    // value, lowering it when it was higher; cairn may run inside another
    // program (the embedding API), so a higher hard limit is kept.
    let mut best = maxfiles;
    let mut error = None;
    while best > old {
        match rlimit::setrlimit(Resource::NOFILE, best, hard.max(best)) {
            Ok(()) => break,
            Err(e) => error = Some(e),
        }
        if best < 16 {
            best = old;
            break;
        }
        best -= 16;
    }
    let best = best.max(old);
    if best >= maxfiles {
        info!(
            "Increased maximum number of open files to {maxfiles} (it was originally set to {old})."
        );
        return Adjusted::Fits;
    }
    if best <= RESERVED_FDS {
        warn!(
            "Your current 'ulimit -n' of {old} is not enough for the server to start. Please increase your open file limit to at least {maxfiles}. Exiting."
        );
        return Adjusted::TooLow {
            have: old,
            need: maxfiles,
        };
    }
    let lowered = usize::try_from(best - RESERVED_FDS).unwrap_or(usize::MAX);
    let why = error.map_or_else(|| "unknown".to_owned(), |e| os_error_text(&e));
    warn!(
        "You requested maxclients of {maxclients} requiring at least {maxfiles} max file descriptors."
    );
    warn!("Server can't set maximum open files to {maxfiles} because of OS error: {why}.");
    warn!(
        "Current maximum open files is {best}. maxclients has been reduced to {lowered} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    Adjusted::Lowered(lowered)
}

/// Without Unix resource limits there is nothing to adjust.
#[cfg(not(unix))]
pub(crate) fn adjust(_maxclients: usize) -> Adjusted {
    Adjusted::Fits
}

/// `strerror`'s text, without Rust's ` (os error N)` suffix.
#[cfg(unix)]
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Checks `CONFIG SET maxclients` against the open-file limit (Redis'
/// `updateMaxclients`).
pub(crate) struct MaxClients;

impl Extension for MaxClients {
    fn commands(&self) -> Vec<CommandSpec> {
        Vec::new()
    }

    /// It registers no command, so the keyspace never calls this.
    fn call(&self, _ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        Frame::error("ERR no such command")
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        if name != "maxclients" {
            return None;
        }
        let n = std::str::from_utf8(value).ok()?.parse::<usize>().ok()?;
        match adjust(n) {
            Adjusted::Fits => Some(Ok(())),
            Adjusted::Lowered(fit) => Some(Err(format!(
                "The operating system is not able to handle the specified number of clients, try with {fit}"
            ))),
            Adjusted::TooLow { have, .. } => {
                let fit = have.saturating_sub(RESERVED_FDS);
                Some(Err(format!(
                    "The operating system is not able to handle the specified number of clients, try with {fit}"
                )))
            }
        }
    }
}
