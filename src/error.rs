//! Errors of opening, creating and attaching to ring files.

use std::io;
use std::path::PathBuf;

/// Why the first 512 bytes of a file are not a ring header this library can
/// use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The file is shorter than the header or than the size the header states.
    #[error("file is truncated: {size} bytes, at least {need} needed")]
    Truncated {
        /// Actual size.
        size: u64,
        /// Size needed.
        need: u64,
    },
    /// Not a Profilis ring file.
    #[error("not a Profilis ring file (magic {found:#018x})")]
    BadMagic {
        /// The magic found.
        found: u64,
    },
    /// Written by a library version with another format.
    #[error(
        "ring format version {found} is not supported (this library reads version {supported})"
    )]
    UnsupportedVersion {
        /// Version found.
        found: u64,
        /// Version this library supports.
        supported: u64,
    },
    /// Slot size other than 128.
    #[error("slot size {found} is not supported (expected 128)")]
    BadSlotSize {
        /// Slot size found.
        found: u64,
    },
    /// Unknown full-ring policy.
    #[error("unknown full-ring policy {found}")]
    BadPolicy {
        /// Policy found.
        found: u64,
    },
    /// A size parameter out of range.
    #[error("invalid ring parameters: {0}")]
    BadParams(&'static str),
    /// The size recorded in the header does not match the layout.
    #[error("header states {stated} bytes but its parameters need {expected}")]
    SizeMismatch {
        /// Size recorded.
        stated: u64,
        /// Size the parameters imply.
        expected: u64,
    },
}

/// Why a ring file could not be created, opened or attached.
///
/// The message of a variant with a cause ([`OpenError::Io`],
/// [`OpenError::Header`]) does not repeat it: the cause is its
/// [`source`](std::error::Error::source), so a report that prints the chain
/// (`anyhow`'s `{:#}`, [`OpenError::report`]) shows each part once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An I/O operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("opening ring file", ...).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No ring file at the path.
    #[error("ring file {0} does not exist")]
    NotFound(PathBuf),
    /// The path is a symbolic link; ring files are never opened through one.
    #[error("ring file {0} is a symbolic link; refusing to follow it")]
    Symlink(PathBuf),
    /// Not a regular file.
    #[error("ring file {0} is not a regular file")]
    NotRegular(PathBuf),
    /// Owned by another user.
    #[error("ring file {path} is owned by uid {owner}, not by this user (uid {euid})")]
    NotOwner {
        /// The path.
        path: PathBuf,
        /// Owner uid.
        owner: u32,
        /// Our effective uid.
        euid: u32,
    },
    /// Readable or writable by group or others.
    #[error("ring file {path} has mode {mode:04o}; it must not be accessible to group or others (chmod 600)")]
    InsecureMode {
        /// The path.
        path: PathBuf,
        /// Permission bits found.
        mode: u32,
    },
    /// The header is invalid.
    #[error("ring file {path}")]
    Header {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: HeaderError,
    },
    /// Another consumer is attached.
    #[error("ring file {0} already has a consumer attached (only one reader per ring)")]
    Busy(PathBuf),
    /// The stored consumer state does not fit the ring.
    #[error("ring file {path}: consumer state is inconsistent: {what}")]
    InconsistentState {
        /// The path.
        path: PathBuf,
        /// What does not fit.
        what: String,
    },
    /// Options out of range.
    #[error("invalid ring options: {0}")]
    InvalidOptions(String),
}

impl OpenError {
    /// The message with its causes, `: `-separated (`opening ring file
    /// /dev/shm/x.ring: Is a directory (os error 21)`), for callers that
    /// print one line rather than walking [`source`](std::error::Error::source).
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_told_once() {
        let e = OpenError::Io {
            action: "opening ring file",
            path: "/dev/shm/x.ring".into(),
            source: io::Error::from_raw_os_error(libc::EISDIR),
        };
        assert_eq!(e.to_string(), "opening ring file /dev/shm/x.ring");
        assert_eq!(
            e.report(),
            "opening ring file /dev/shm/x.ring: Is a directory (os error 21)"
        );
        let e = OpenError::Header {
            path: "x.ring".into(),
            source: HeaderError::Truncated {
                size: 3000,
                need: 4096,
            },
        };
        assert_eq!(
            e.report(),
            "ring file x.ring: file is truncated: 3000 bytes, at least 4096 needed"
        );
        assert_eq!(e.report().matches("truncated").count(), 1);
    }
}
