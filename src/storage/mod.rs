//! Where finished export files go: an object store behind one small trait,
//! with S3 (any S3-compatible endpoint) and a local folder as implementations.
//!
//! The background export job only sees [`ExportStore`]; it knows nothing of
//! buckets or folders, and decides from [`StorageError::is_transient`] whether
//! a failed upload is worth another attempt.

mod local;
mod s3;

use std::error::Error as StdError;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use local::{DownloadRefused, LocalStore};
pub use s3::{S3Settings, S3Store};

/// Storage for finished export files, addressed by a key such as
/// `project-id/export-id.csv`.
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Copies the file at `path` into the store under `key`, replacing any
    /// object already there. The source file is left in place: removing it is
    /// the caller's job, whatever the outcome.
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<StoredObject, StorageError>;

    /// As [`ExportStore::put_file`], telling `journal` the id of a
    /// multipart upload as soon as it starts, so that the upload can be
    /// aborted by someone else if this process dies before finishing it.
    async fn put_file_journaled(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        journal: &dyn UploadJournal,
    ) -> Result<StoredObject, StorageError> {
        let _ = journal;
        self.put_file(key, path, content_type).await
    }

    /// Aborts an unfinished multipart upload of `key`, dropping its parts;
    /// aborting one that is gone (finished or aborted already) succeeds.
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let _ = (key, upload_id);
        Ok(())
    }

    /// A link that downloads the object without other credentials until it
    /// expires `expires_in` from now.
    async fn download_url(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<DownloadLink, StorageError>;

    /// Whether an object is stored under `key`.
    async fn exists(&self, key: &str) -> Result<bool, StorageError>;

    /// Removes the object; removing one that is not there succeeds, so that a
    /// retried clean-up does not fail.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// How long links last when the caller has no reason to choose (the
    /// configured expiry).
    fn link_ttl(&self) -> Duration;

    /// A short name for logs: `s3` or `local`.
    fn kind(&self) -> &'static str;

    /// Whether a store on another machine answers, for the readiness probe;
    /// `None` for a store on this machine, which has nothing to probe.
    async fn check_remote(&self) -> Option<Result<(), StorageError>> {
        None
    }
}

/// Where an upload in progress is written down (the export job's row).
#[async_trait]
pub trait UploadJournal: Send + Sync {
    /// A multipart upload with this id has started. An error stops the
    /// upload (which is then aborted): one that nobody recorded could not
    /// be cleaned up after a crash.
    async fn multipart_started(&self, upload_id: &str) -> Result<(), StorageError>;
}

/// What [`ExportStore::put_file`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    /// The store's entity tag, where it gives one.
    pub etag: Option<String>,
}

/// An expiring download link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadLink {
    pub url: String,
    pub expires_at: SystemTime,
}

pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a storage operation failed, sorted by whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store could not be reached, timed out, failed on its side (5xx) or
    /// asked to slow down: a later attempt may succeed.
    #[error("{operation} of {key:?}: object store unavailable: {detail}")]
    Unavailable {
        operation: &'static str,
        key: String,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The store refused the request (denied access, no such bucket, bad
    /// request): the same request will be refused again.
    #[error("{operation} of {key:?}: object store refused the request: {detail}")]
    Refused {
        operation: &'static str,
        key: String,
        /// HTTP status of the answer, where there was one.
        status: Option<u16>,
        /// The store's error code, such as `AccessDenied` or `NoSuchBucket`.
        code: Option<String>,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The key is not one this module stores (see [`validate_key`]).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// Reading the source file or writing the local store failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The store is configured in a way that cannot work.
    #[error("object storage configuration: {0}")]
    Config(String),
}

impl StorageError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Unavailable { .. } => true,
            StorageError::Io { source, .. } => io_error_is_transient(source),
            StorageError::Refused { .. }
            | StorageError::InvalidKey { .. }
            | StorageError::Config(_) => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> StorageError {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Local I/O failures that another attempt can get past: a full disk may be
/// cleaned, a timeout may not recur. A missing file or a denied permission
/// stays as it is.
pub(crate) fn io_error_is_transient(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        TimedOut
            | Interrupted
            | WouldBlock
            | StorageFull
            | ResourceBusy
            | ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | UnexpectedEof
    )
}

/// Longest key accepted; S3 allows 1024 bytes including the prefix.
const MAX_KEY_LEN: usize = 512;

/// Checks that `key` is a relative path of plain segments, so that it means
/// the same in a bucket, in a folder and in a URL path:
/// ASCII letters, digits, `-`, `_` and `.`, segments separated by `/`.
///
/// This rules out, by construction, keys that could leave the local store's
/// folder (`..`, absolute paths, backslashes, drive letters) and any need to
/// percent-encode a key in a link. Segments may not start with a dot, which
/// also keeps the local store's hidden temporary files from ever being served.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let invalid = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid("longer than 512 bytes");
    }
    if key.starts_with('/') {
        return invalid("absolute path");
    }
    if key.contains('\\') {
        return invalid("backslash");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("empty path segment");
        }
        if segment.starts_with('.') {
            return invalid("path segment starting with a dot");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return invalid("only ASCII letters, digits, '-', '_', '.' and '/' are allowed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_accepted() {
        for key in ["a.csv", "project-1/export_2.csv", "A/b/C-9.tar.gz"] {
            assert!(validate_key(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn keys_that_could_escape_or_need_encoding_are_refused() {
        for key in [
            "",
            "../secret",
            "a/../b",
            "/etc/passwd",
            "a\\b",
            "..\\x",
            "a//b",
            "a/",
            "./a",
            ".hidden",
            "a/.tmp.part",
            "C:/x",
            "a b",
            "a?b",
            "a%2e",
            "é",
        ] {
            assert!(
                matches!(validate_key(key), Err(StorageError::InvalidKey { .. })),
                "{key:?} should be refused"
            );
        }
        assert!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn transient_classification() {
        let unavailable = StorageError::Unavailable {
            operation: "upload",
            key: "k".into(),
            detail: "connection refused".into(),
            source: None,
        };
        assert!(unavailable.is_transient());
        let refused = StorageError::Refused {
            operation: "upload",
            key: "k".into(),
            status: Some(403),
            code: Some("AccessDenied".into()),
            detail: "denied".into(),
            source: None,
        };
        assert!(!refused.is_transient());
        let missing = StorageError::io("open", io::Error::from(io::ErrorKind::NotFound));
        assert!(!missing.is_transient());
        let full = StorageError::io("write", io::Error::from(io::ErrorKind::StorageFull));
        assert!(full.is_transient());
    }
}
