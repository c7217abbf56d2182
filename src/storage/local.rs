//! [`ExportStore`] in a local folder (`DATA_DIR/exports/`), the embedded
//! default when no S3 is configured. Its links point at the server itself and
//! carry an expiry and an HMAC-SHA256 signature, which
//! [`LocalStore::verify_download`] checks before a file is served.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{DownloadLink, ExportStore, StorageError, StoredObject, validate_key};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted for signing links.
const MIN_SECRET_LEN: usize = 16;

/// Export files in a folder, downloaded through signed links to the server.
#[derive(Clone)]
pub struct LocalStore {
    root: PathBuf,
    public_url: String,
    /// Keyed with the server secret once; cloned for each signature.
    signer: HmacSha256,
    link_ttl: Duration,
}

impl fmt::Debug for LocalStore {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStore")
            .field("root", &self.root)
            .field("public_url", &self.public_url)
            .field("link_ttl", &self.link_ttl)
            .finish_non_exhaustive()
    }
}

/// Why a download link is not honoured. `status_code` gives the HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownloadRefused {
    #[error("invalid export key")]
    InvalidKey,
    #[error("invalid link signature")]
    BadSignature,
    #[error("the download link has expired")]
    Expired,
    #[error("no such export file")]
    NotFound,
}

impl DownloadRefused {
    /// 404 for a well-signed link to a file that is gone, 403 otherwise: a
    /// bad or stale link tells nothing about which files exist.
    pub fn status_code(&self) -> u16 {
        match self {
            DownloadRefused::NotFound => 404,
            DownloadRefused::InvalidKey
            | DownloadRefused::BadSignature
            | DownloadRefused::Expired => 403,
        }
    }
}

impl LocalStore {
    /// A store in `data_dir/exports/` (created if missing) whose links start
    /// with `public_url` (the server's base URL) and are signed with `secret`
    /// (at least 16 bytes; keep it stable across restarts, or links already
    /// sent stop working).
    pub fn new(
        data_dir: &Path,
        public_url: &str,
        secret: impl Into<Vec<u8>>,
        link_ttl: Duration,
    ) -> Result<LocalStore, StorageError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(StorageError::Config(format!(
                "the link signing secret must have at least {MIN_SECRET_LEN} bytes"
            )));
        }
        if link_ttl.is_zero() {
            return Err(StorageError::Config(
                "link expiry must be above zero".into(),
            ));
        }
        let signer = <HmacSha256 as Mac>::new_from_slice(&secret)
            .map_err(|e| StorageError::Config(format!("link signing secret: {e}")))?;
        let root = data_dir.join("exports");
        std::fs::create_dir_all(&root)
            .map_err(|e| StorageError::io(format!("creating {}", root.display()), e))?;
        Ok(LocalStore {
            root,
            public_url: public_url.trim_end_matches('/').to_owned(),
            signer,
            link_ttl,
        })
    }

    /// The folder the files are kept in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks a download request for `key` with the link's `expires` (Unix
    /// seconds) and hex `signature`, at time `now`, and gives the file to
    /// serve. The signature is compared in constant time, and checked before
    /// the expiry so that a forged link learns nothing.
    pub fn verify_download(
        &self,
        key: &str,
        expires: u64,
        signature: &str,
        now: SystemTime,
    ) -> Result<PathBuf, DownloadRefused> {
        validate_key(key).map_err(|_| DownloadRefused::InvalidKey)?;
        let signature = hex::decode(signature).map_err(|_| DownloadRefused::BadSignature)?;
        self.mac(key, expires)
            .verify_slice(&signature)
            .map_err(|_| DownloadRefused::BadSignature)?;
        if unix_seconds(now) >= expires {
            return Err(DownloadRefused::Expired);
        }
        self.stored_file(key)
    }

    /// The file stored under `key`, for a request the caller has checked
    /// (an export link, whose own signature and access checks passed).
    pub fn stored_file(&self, key: &str) -> Result<PathBuf, DownloadRefused> {
        validate_key(key).map_err(|_| DownloadRefused::InvalidKey)?;
        let path = self.path_of(key);
        // Keys cannot contain `..`, but a symbolic link put in the folder by
        // someone else could still point outside it.
        let resolved = path.canonicalize().map_err(|_| DownloadRefused::NotFound)?;
        let root = self
            .root
            .canonicalize()
            .map_err(|_| DownloadRefused::NotFound)?;
        if !resolved.starts_with(&root) {
            return Err(DownloadRefused::InvalidKey);
        }
        if !resolved.is_file() {
            return Err(DownloadRefused::NotFound);
        }
        Ok(resolved)
    }

    /// The link for `key` valid until `expires` (Unix seconds).
    pub fn signed_url(&self, key: &str, expires: u64) -> Result<String, StorageError> {
        validate_key(key)?;
        let signature = hex::encode(self.mac(key, expires).finalize().into_bytes());
        Ok(format!(
            "{}/exports/{key}?expires={expires}&signature={signature}",
            self.public_url
        ))
    }

    fn mac(&self, key: &str, expires: u64) -> HmacSha256 {
        let mut mac = self.signer.clone();
        // The newline cannot occur in a key, so no two (key, expiry) pairs
        // sign the same bytes.
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn path_of(&self, key: &str) -> PathBuf {
        // Keys are validated to `/`-separated plain segments.
        key.split('/')
            .fold(self.root.clone(), |path, segment| path.join(segment))
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[async_trait]
impl ExportStore for LocalStore {
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        _content_type: &str,
    ) -> Result<StoredObject, StorageError> {
        validate_key(key)?;
        let target = self.path_of(key);
        let folder = target.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(|e| StorageError::io(format!("creating {}", folder.display()), e))?;
        // Copy under a hidden name, then rename: a link never serves a
        // half-written file, and a failed copy leaves no file under the key.
        // Hidden names are not valid keys, so they can never be served.
        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = folder.join(format!(".{file_name}.{}.part", uuid::Uuid::now_v7()));
        let size = match tokio::fs::copy(path, &partial).await {
            Ok(size) => size,
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(StorageError::io(
                    format!("copying {} into the export folder", path.display()),
                    error,
                ));
            }
        };
        if let Err(error) = tokio::fs::rename(&partial, &target).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(StorageError::io(
                format!("moving the export into {}", target.display()),
                error,
            ));
        }
        Ok(StoredObject {
            key: key.to_owned(),
            size,
            etag: None,
        })
    }

    async fn download_url(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<DownloadLink, StorageError> {
        // Rounded up to a whole second, so a link never lasts less than asked.
        let deadline = SystemTime::now()
            .checked_add(expires_in)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .ok_or_else(|| {
                StorageError::Config(format!("link expiry {expires_in:?} is out of range"))
            })?;
        let expires = deadline.as_secs() + u64::from(deadline.subsec_nanos() > 0);
        Ok(DownloadLink {
            url: self.signed_url(key, expires)?,
            expires_at: UNIX_EPOCH + Duration::from_secs(expires),
        })
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        validate_key(key)?;
        let path = self.path_of(key);
        tokio::fs::try_exists(&path)
            .await
            .map_err(|e| StorageError::io(format!("looking up {}", path.display()), e))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(StorageError::io(
                format!("removing {}", path.display()),
                error,
            )),
        }
    }

    fn link_ttl(&self) -> Duration {
        self.link_ttl
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn store(dir: &Path) -> LocalStore {
        LocalStore::new(
            dir,
            "http://example.test/",
            SECRET,
            Duration::from_secs(3600),
        )
        .expect("store")
    }

    /// Splits a link into its key, expiry and signature as a route would.
    fn parts(url: &str) -> (String, u64, String) {
        let rest = url
            .strip_prefix("http://example.test/exports/")
            .expect("link under /exports/");
        let (key, query) = rest.split_once('?').expect("query");
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.parse().expect("expires"),
                Some(("signature", v)) => signature = v.to_owned(),
                _ => panic!("unexpected query part {pair}"),
            }
        }
        (key.to_owned(), expires, signature)
    }

    async fn stored(store: &LocalStore, dir: &Path, key: &str, bytes: &[u8]) {
        let source = dir.join("source.csv");
        std::fs::write(&source, bytes).expect("write source");
        let object = store.put_file(key, &source, "text/csv").await.expect("put");
        assert_eq!(object.size, bytes.len() as u64);
        assert!(source.exists(), "the source file is left to the caller");
    }

    #[tokio::test]
    async fn signed_link_verifies_to_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        stored(&store, dir.path(), "p1/export.csv", b"a,b\n1,2\n").await;

        let link = store
            .download_url("p1/export.csv", Duration::from_secs(60))
            .await
            .expect("link");
        let (key, expires, signature) = parts(&link.url);
        assert_eq!(key, "p1/export.csv");
        assert_eq!(signature.len(), 64);

        let path = store
            .verify_download(&key, expires, &signature, SystemTime::now())
            .expect("valid link");
        assert_eq!(std::fs::read(path).expect("read"), b"a,b\n1,2\n");
    }

    #[tokio::test]
    async fn expired_link_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        stored(&store, dir.path(), "e.csv", b"x").await;
        let link = store
            .download_url("e.csv", Duration::from_secs(60))
            .await
            .expect("link");
        let (key, expires, signature) = parts(&link.url);
        let later = SystemTime::now() + Duration::from_secs(120);
        let refused = store.verify_download(&key, expires, &signature, later);
        assert_eq!(refused, Err(DownloadRefused::Expired));
        assert_eq!(DownloadRefused::Expired.status_code(), 403);
    }

    #[tokio::test]
    async fn tampered_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        stored(&store, dir.path(), "a.csv", b"a").await;
        stored(&store, dir.path(), "b.csv", b"b").await;
        let link = store
            .download_url("a.csv", Duration::from_secs(60))
            .await
            .expect("link");
        let (key, expires, signature) = parts(&link.url);
        let now = SystemTime::now();

        // Another key, a later expiry, a changed digit, junk, nothing.
        let bad = DownloadRefused::BadSignature;
        assert_eq!(
            store.verify_download("b.csv", expires, &signature, now),
            Err(bad.clone())
        );
        assert_eq!(
            store.verify_download(&key, expires + 3600, &signature, now),
            Err(bad.clone())
        );
        let mut flipped = signature.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            store.verify_download(&key, expires, &flipped, now),
            Err(bad.clone())
        );
        assert_eq!(
            store.verify_download(&key, expires, "zz", now),
            Err(bad.clone())
        );
        assert_eq!(
            store.verify_download(&key, expires, "", now),
            Err(bad.clone())
        );

        // A link signed with another secret.
        let other = LocalStore::new(
            dir.path(),
            "http://example.test",
            b"another secret of enough length".to_vec(),
            Duration::from_secs(60),
        )
        .expect("store");
        let foreign = other.signed_url("a.csv", expires).expect("url");
        let (_, _, foreign_signature) = parts(&foreign);
        assert_eq!(
            store.verify_download(&key, expires, &foreign_signature, now),
            Err(bad)
        );
    }

    #[tokio::test]
    async fn keys_escaping_the_folder_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        // A file just outside the exports folder.
        std::fs::write(dir.path().join("secret.txt"), b"secret").expect("write");
        let now = SystemTime::now();
        let expires = unix_seconds(now) + 60;
        for key in [
            "../secret.txt",
            "a/../../secret.txt",
            "/etc/passwd",
            "..\\secret.txt",
            "a\\..\\..\\secret.txt",
        ] {
            // Even a correct signature does not help: such keys are never
            // valid, whoever signed them.
            let signature = hex::encode(store.mac(key, expires).finalize().into_bytes());
            assert_eq!(
                store.verify_download(key, expires, &signature, now),
                Err(DownloadRefused::InvalidKey),
                "{key}"
            );
        }
        assert!(store.signed_url("../secret.txt", expires).is_err());
        let source = dir.path().join("secret.txt");
        assert!(matches!(
            store.put_file("../x.csv", &source, "text/csv").await,
            Err(StorageError::InvalidKey { .. })
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlink_out_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        std::fs::write(dir.path().join("secret.txt"), b"secret").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), store.root().join("s.csv"))
            .expect("symlink");
        let expires = unix_seconds(SystemTime::now()) + 60;
        let url = store.signed_url("s.csv", expires).expect("url");
        let (key, expires, signature) = parts(&url);
        assert_eq!(
            store.verify_download(&key, expires, &signature, SystemTime::now()),
            Err(DownloadRefused::InvalidKey)
        );
    }

    #[tokio::test]
    async fn missing_file_is_not_found_and_delete_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        stored(&store, dir.path(), "gone.csv", b"x").await;
        assert!(store.exists("gone.csv").await.expect("exists"));
        store.delete("gone.csv").await.expect("delete");
        store.delete("gone.csv").await.expect("delete again");
        assert!(!store.exists("gone.csv").await.expect("exists"));

        let link = store
            .download_url("gone.csv", Duration::from_secs(60))
            .await
            .expect("link");
        let (key, expires, signature) = parts(&link.url);
        let refused = store.verify_download(&key, expires, &signature, SystemTime::now());
        assert_eq!(refused, Err(DownloadRefused::NotFound));
        assert_eq!(DownloadRefused::NotFound.status_code(), 404);
    }

    #[tokio::test]
    async fn put_replaces_and_leaves_no_partial_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        stored(&store, dir.path(), "r.csv", b"first").await;
        stored(&store, dir.path(), "r.csv", b"second").await;
        assert_eq!(
            std::fs::read(store.root().join("r.csv")).expect("read"),
            b"second"
        );
        let names: Vec<_> = std::fs::read_dir(store.root())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("r.csv")]);

        let missing = dir.path().join("missing.csv");
        let error = store
            .put_file("m.csv", &missing, "text/csv")
            .await
            .expect_err("missing source");
        assert!(!error.is_transient());
        assert!(!store.root().join("m.csv").exists());
    }

    #[test]
    fn short_secret_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let result = LocalStore::new(
            dir.path(),
            "http://x",
            b"short".to_vec(),
            Duration::from_secs(1),
        );
        assert!(matches!(result, Err(StorageError::Config(_))));
    }
}
