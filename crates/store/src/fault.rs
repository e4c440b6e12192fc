//! Which read errors prove a generation damaged.
//!
//! The rule: an I/O error is never proof of damage. Quarantining a
//! generation moves the newest data aside and serves older data, so it is
//! kept for content that is *proven* wrong: a checksum, digest, count or
//! manifest mismatch, a seal that does not decode, an expected file that is
//! not there (`NotFound`), a file shorter than its own structure says
//! (`UnexpectedEof`), bytes that do not decode (`InvalidData`), and fjall's
//! own checksum and format errors. Every other error (EIO, ESTALE,
//! ETIMEDOUT, EAGAIN, ENOMEM, EACCES, EMFILE, ...) says something about the
//! machine: the load stops with that error and the generation stays where
//! it is, to be loaded once the fault is gone.
//!
//! `Interrupted`, `WouldBlock`, `TimedOut` and `StaleNetworkFileHandle` are
//! retried a few times with a short backoff (about 0.3 s in all) before
//! they stop the load: each can clear on its own (a signal, a busy or
//! slow network file system, an NFS handle that a fresh lookup by path
//! renews). Retries cover the reads of whole small files, directory
//! listings, file hashing and opening fjall; an error while fjall streams
//! records is not retried (the sink has already received part of the
//! generation) and stops the load.

use std::path::Path;
use std::time::Duration;

/// What a read error says about the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The content is proven wrong: quarantine (policy permitting).
    Damage,
    /// The environment failed in a way that may clear by itself: retry,
    /// then treat as [`Verdict::Fatal`].
    Transient,
    /// The environment failed: stop the load, touch nothing.
    Fatal,
}

/// Classifies an I/O error met while reading a generation.
pub(crate) fn io_verdict(e: &std::io::Error) -> Verdict {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound | K::UnexpectedEof | K::InvalidData => Verdict::Damage,
        K::Interrupted | K::WouldBlock | K::TimedOut | K::StaleNetworkFileHandle => {
            Verdict::Transient
        }
        _ => Verdict::Fatal,
    }
}

/// Classifies an error from fjall (fjall 3.1.13 / lsm-tree 3.1.10 enums).
pub(crate) fn fjall_verdict(e: &fjall::Error) -> Verdict {
    use fjall::Error as F;
    use fjall::LsmError as L;
    match e {
        F::Io(io) | F::Storage(L::Io(io)) => io_verdict(io),
        // Block and table checksums, undecodable or unrecoverable
        // structures: all come from bytes fjall read and rejected.
        F::Storage(
            L::ChecksumMismatch { .. }
            | L::Decompress(_)
            | L::InvalidVersion(_)
            | L::Unrecoverable
            | L::InvalidTag(_)
            | L::InvalidTrailer
            | L::InvalidHeader(_)
            | L::Utf8(_),
        )
        | F::JournalRecovery(_)
        | F::InvalidVersion(_)
        | F::Decompress(_)
        | F::InvalidTrailer
        | F::InvalidTag(_)
        | F::Unrecoverable => Verdict::Damage,
        // `Locked`: someone else has the database open; `Poisoned` and
        // `KeyspaceDeleted` describe the handle, not the bytes. Variants
        // added by a later fjall are not known to be about content either.
        _ => Verdict::Fatal,
    }
}

/// Pauses before each retry of a transient error.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(250),
];

/// Runs `op`, retrying it while it fails with a [`Verdict::Transient`]
/// error, at most `BACKOFF.len()` more times.
pub(crate) fn retry<T, E>(
    path: &Path,
    mut op: impl FnMut() -> Result<T, E>,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    E: std::fmt::Display,
{
    let mut pauses = BACKOFF.iter();
    loop {
        match op() {
            Err(e) if transient(&e) => {
                let Some(&pause) = pauses.next() else {
                    return Err(e);
                };
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    retry_in_ms = pause.as_millis() as u64,
                    "transient read error; retrying"
                );
                // A backoff between attempts, not synchronisation.
                std::thread::sleep(pause);
            }
            other => return other,
        }
    }
}

/// [`retry`] for plain I/O.
pub(crate) fn retry_io<T>(
    path: &Path,
    op: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    retry(path, op, |e| io_verdict(e) == Verdict::Transient)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    /// Every errno a read of a file or directory can plausibly return on
    /// Linux, with the verdict it must get. Only ENOENT is about content;
    /// the rest are the machine's.
    #[cfg(target_os = "linux")]
    #[test]
    fn errnos() {
        let table: &[(&str, i32, Verdict)] = &[
            ("EPERM", 1, Verdict::Fatal),
            ("ENOENT", 2, Verdict::Damage),
            ("EINTR", 4, Verdict::Transient),
            ("EIO", 5, Verdict::Fatal),
            ("ENXIO", 6, Verdict::Fatal),
            ("EBADF", 9, Verdict::Fatal),
            ("EAGAIN", 11, Verdict::Transient),
            ("ENOMEM", 12, Verdict::Fatal),
            ("EACCES", 13, Verdict::Fatal),
            ("EFAULT", 14, Verdict::Fatal),
            ("EBUSY", 16, Verdict::Fatal),
            ("ENODEV", 19, Verdict::Fatal),
            ("ENOTDIR", 20, Verdict::Fatal),
            ("EISDIR", 21, Verdict::Fatal),
            ("EINVAL", 22, Verdict::Fatal),
            ("ENFILE", 23, Verdict::Fatal),
            ("EMFILE", 24, Verdict::Fatal),
            ("ETXTBSY", 26, Verdict::Fatal),
            ("EFBIG", 27, Verdict::Fatal),
            ("ENOSPC", 28, Verdict::Fatal),
            ("ESPIPE", 29, Verdict::Fatal),
            ("EROFS", 30, Verdict::Fatal),
            ("EDEADLK", 35, Verdict::Fatal),
            ("ENAMETOOLONG", 36, Verdict::Fatal),
            ("ENOLCK", 37, Verdict::Fatal),
            ("ENOSYS", 38, Verdict::Fatal),
            ("ELOOP", 40, Verdict::Fatal),
            ("ENODATA", 61, Verdict::Fatal),
            ("ENOLINK", 67, Verdict::Fatal),
            ("EBADMSG", 74, Verdict::Fatal),
            ("EOVERFLOW", 75, Verdict::Fatal),
            ("EILSEQ", 84, Verdict::Fatal),
            ("EOPNOTSUPP", 95, Verdict::Fatal),
            ("ENETDOWN", 100, Verdict::Fatal),
            ("ENETUNREACH", 101, Verdict::Fatal),
            ("ECONNRESET", 104, Verdict::Fatal),
            ("ENOBUFS", 105, Verdict::Fatal),
            ("ENOTCONN", 107, Verdict::Fatal),
            ("ETIMEDOUT", 110, Verdict::Transient),
            ("ECONNREFUSED", 111, Verdict::Fatal),
            ("EHOSTDOWN", 112, Verdict::Fatal),
            ("EHOSTUNREACH", 113, Verdict::Fatal),
            ("ESTALE", 116, Verdict::Transient),
            ("EUCLEAN", 117, Verdict::Fatal),
            ("EREMOTEIO", 121, Verdict::Fatal),
            ("EDQUOT", 122, Verdict::Fatal),
            ("ENOMEDIUM", 123, Verdict::Fatal),
            ("EMEDIUMTYPE", 124, Verdict::Fatal),
            ("ECANCELED", 125, Verdict::Fatal),
            ("EKEYEXPIRED", 127, Verdict::Fatal),
            ("EHWPOISON", 133, Verdict::Fatal),
        ];
        for &(name, errno, want) in table {
            let e = Error::from_raw_os_error(errno);
            assert_eq!(io_verdict(&e), want, "{name} ({errno}): {e}");
            // Wrapped by fjall, either layer: the same verdict.
            assert_eq!(
                fjall_verdict(&fjall::Error::Io(Error::from_raw_os_error(errno))),
                want,
                "{name} in fjall::Error::Io"
            );
            assert_eq!(
                fjall_verdict(&fjall::Error::Storage(fjall::LsmError::Io(
                    Error::from_raw_os_error(errno)
                ))),
                want,
                "{name} in lsm_tree::Error::Io"
            );
        }
    }

    #[test]
    fn error_kinds() {
        use ErrorKind as K;
        let damage = [K::NotFound, K::UnexpectedEof, K::InvalidData];
        let transient = [
            K::Interrupted,
            K::WouldBlock,
            K::TimedOut,
            K::StaleNetworkFileHandle,
        ];
        let fatal = [
            K::PermissionDenied,
            K::ReadOnlyFilesystem,
            K::StorageFull,
            K::QuotaExceeded,
            K::OutOfMemory,
            K::ResourceBusy,
            K::InvalidInput,
            K::NotADirectory,
            K::IsADirectory,
            K::FileTooLarge,
            K::Unsupported,
            K::ConnectionReset,
            K::ConnectionAborted,
            K::NotConnected,
            K::NetworkDown,
            K::HostUnreachable,
            K::BrokenPipe,
            K::Deadlock,
            K::Other,
        ];
        for k in damage {
            assert_eq!(io_verdict(&Error::from(k)), Verdict::Damage, "{k:?}");
        }
        for k in transient {
            assert_eq!(io_verdict(&Error::from(k)), Verdict::Transient, "{k:?}");
        }
        for k in fatal {
            assert_eq!(io_verdict(&Error::from(k)), Verdict::Fatal, "{k:?}");
        }
    }

    #[test]
    fn fjall_errors() {
        use fjall::Error as F;
        use fjall::LsmError as L;
        let not_utf8 = vec![0xff_u8];
        let damage = [
            // `ChecksumMismatch` cannot be built here (lsm-tree's
            // `Checksum` is not re-exported); it is matched with the rest.
            F::Storage(L::Decompress(fjall::CompressionType::None)),
            F::Storage(L::InvalidVersion(9)),
            F::Storage(L::Unrecoverable),
            F::Storage(L::InvalidTag(("tag", 7))),
            F::Storage(L::InvalidTrailer),
            F::Storage(L::InvalidHeader("Block")),
            F::Storage(L::Utf8(std::str::from_utf8(&not_utf8).unwrap_err())),
            F::JournalRecovery(fjall::JournalRecoveryError::ChecksumMismatch),
            F::JournalRecovery(fjall::JournalRecoveryError::InsufficientLength),
            F::JournalRecovery(fjall::JournalRecoveryError::TooManyItems),
            F::JournalRecovery(fjall::JournalRecoveryError::InvalidFileName),
            F::InvalidVersion(None),
            F::Decompress(fjall::CompressionType::None),
            F::InvalidTrailer,
            F::InvalidTag(("tag", 7)),
            F::Unrecoverable,
        ];
        for e in &damage {
            assert_eq!(fjall_verdict(e), Verdict::Damage, "{e}");
        }
        for e in [F::Poisoned, F::KeyspaceDeleted, F::Locked] {
            assert_eq!(fjall_verdict(&e), Verdict::Fatal, "{e}");
        }
    }

    #[test]
    fn transient_errors_are_retried_then_returned() {
        let path = Path::new("x");
        let mut calls = 0;
        let r: std::io::Result<()> = retry_io(path, || {
            calls += 1;
            Err(Error::from(ErrorKind::TimedOut))
        });
        assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
        assert_eq!(calls, 1 + BACKOFF.len());

        let mut calls = 0;
        let r = retry_io(path, || {
            calls += 1;
            if calls < 3 {
                Err(Error::from(ErrorKind::Interrupted))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 3);

        // Not transient: one attempt.
        let mut calls = 0;
        let r: std::io::Result<()> = retry_io(path, || {
            calls += 1;
            Err(Error::from_raw_os_error(5))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
