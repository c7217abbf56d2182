//! [`ExportStore`] on S3 or any S3-compatible endpoint, through aws-sdk-s3:
//! streamed uploads (multipart above a threshold) and pre-signed GET links.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::{DownloadLink, ExportStore, StorageError, StoredObject, validate_key};

const MIB: u64 = 1024 * 1024;
/// S3 refuses parts below 5 MiB, except the last one.
const MIN_PART_SIZE: u64 = 5 * MIB;
/// And above 5 GiB.
const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// And more than 10,000 parts in one upload.
const MAX_PARTS: u64 = 10_000;
/// SigV4 pre-signed URLs live at most a week.
const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Region used when neither the settings nor the AWS chain name one; most
/// S3-compatible servers accept any.
const FALLBACK_REGION: &str = "us-east-1";

/// Error codes S3 uses for conditions that pass: throttling, its own
/// failures, a slow client connection.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
];

/// Where and how exports are stored in S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Put before every key, as a folder: `exports` and `exports/` both store
    /// `a.csv` as `exports/a.csv`. Empty for none.
    pub prefix: String,
    /// Endpoint of an S3-compatible server (`http://127.0.0.1:9000`); none
    /// for AWS itself (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// None: from the AWS chain (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`;
    /// most S3-compatible servers need it.
    pub force_path_style: bool,
    /// Default lifetime of download links (at most 7 days).
    pub presign_expiry: Duration,
    /// Files of at least this size go up as a multipart upload.
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload (5 MiB to 5 GiB); grown when a
    /// file would otherwise need more than 10,000 parts.
    pub part_size: u64,
}

impl S3Settings {
    /// Settings for `bucket` with the defaults: no prefix, AWS endpoint,
    /// 24-hour links, 8 MiB parts for files from 8 MiB up.
    pub fn new(bucket: impl Into<String>) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            force_path_style: false,
            presign_expiry: Duration::from_secs(24 * 3600),
            multipart_threshold: 8 * MIB,
            part_size: 8 * MIB,
        }
    }

    fn validate(&self) -> Result<(), StorageError> {
        if self.bucket.trim().is_empty() {
            return Err(StorageError::Config("the bucket name is empty".into()));
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(StorageError::Config(format!(
                "part size {} is outside S3's 5 MiB..5 GiB",
                self.part_size
            )));
        }
        check_expiry(self.presign_expiry)
    }

    /// The prefix as it is put before keys: empty or ending with `/`.
    fn normalized_prefix(&self) -> String {
        let prefix = self.prefix.trim_matches('/');
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        }
    }
}

fn check_expiry(expiry: Duration) -> Result<(), StorageError> {
    if expiry.is_zero() || expiry > MAX_PRESIGN_EXPIRY {
        return Err(StorageError::Config(format!(
            "link expiry {expiry:?} must be above zero and at most 7 days"
        )));
    }
    Ok(())
}

/// Export files in an S3 bucket.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    presign_expiry: Duration,
    multipart_threshold: u64,
    part_size: u64,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store whose credentials and, unless the settings name one, region
    /// come from the standard AWS chain (`AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`, profile, web identity, instance role...).
    pub async fn from_env(settings: S3Settings) -> Result<S3Store, StorageError> {
        settings.validate()?;
        let region = aws_config::meta::region::RegionProviderChain::first_try(
            settings.region.clone().map(Region::new),
        )
        .or_default_provider()
        .or_else(Region::from_static(FALLBACK_REGION));
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        let builder = aws_sdk_s3::config::Builder::from(&shared);
        Ok(S3Store::with_config(settings, builder))
    }

    /// A store with fixed credentials, for tests and for deployments that
    /// pass keys some other way than the AWS chain.
    pub fn with_credentials(
        settings: S3Settings,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<S3Store, StorageError> {
        settings.validate()?;
        let region = settings
            .region
            .clone()
            .unwrap_or_else(|| FALLBACK_REGION.to_owned());
        let builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "contacts-static",
            ));
        Ok(S3Store::with_config(settings, builder))
    }

    fn with_config(settings: S3Settings, builder: aws_sdk_s3::config::Builder) -> S3Store {
        // The SDK sets no overall deadline by default; without one a store
        // that accepts connections but never answers would hold a job for
        // ever. The attempt timeout covers one part (8 MiB by default) even
        // on a slow link.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(300))
            .build();
        let mut builder = builder
            .force_path_style(settings.force_path_style)
            .timeout_config(timeouts);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        S3Store {
            client: Client::from_conf(builder.build()),
            prefix: settings.normalized_prefix(),
            bucket: settings.bucket,
            presign_expiry: settings.presign_expiry,
            multipart_threshold: settings.multipart_threshold,
            part_size: settings.part_size,
        }
    }

    /// The key of `key` in the bucket, after the prefix.
    pub fn object_key(&self, key: &str) -> Result<String, StorageError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        journal: Option<&dyn super::UploadJournal>,
    ) -> Result<StoredObject, StorageError> {
        let object_key = self.object_key(key)?;
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?
            .len();
        // An empty file cannot be a multipart upload: there would be no part.
        if size > 0 && size >= self.multipart_threshold {
            self.put_multipart(key, &object_key, path, size, content_type, journal)
                .await
        } else {
            self.put_single(key, &object_key, path, size, content_type)
                .await
        }
    }

    async fn put_single(
        &self,
        key: &str,
        object_key: &str,
        path: &Path,
        size: u64,
        content_type: &str,
    ) -> Result<StoredObject, StorageError> {
        // A body read from the file as it is sent, re-opened on a retry.
        let body = file_body(path, 0, size).await?;
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object_key)
            .content_type(content_type)
            .content_disposition(attachment(key))
            .content_length(to_i64(size)?)
            .body(body)
            .send()
            .await
            .map_err(|e| classify("upload", key, e))?;
        Ok(StoredObject {
            key: key.to_owned(),
            size,
            etag: output.e_tag,
        })
    }

    async fn put_multipart(
        &self,
        key: &str,
        object_key: &str,
        path: &Path,
        size: u64,
        content_type: &str,
        journal: Option<&dyn super::UploadJournal>,
    ) -> Result<StoredObject, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .content_type(content_type)
            .content_disposition(attachment(key))
            .send()
            .await
            .map_err(|e| classify("start multipart upload", key, e))?;
        let Some(upload_id) = created.upload_id else {
            return Err(StorageError::Refused {
                operation: "start multipart upload",
                key: key.to_owned(),
                status: None,
                code: None,
                detail: "the answer had no upload id".into(),
                source: None,
            });
        };

        let recorded = match journal {
            Some(journal) => journal.multipart_started(&upload_id).await,
            None => Ok(()),
        };
        let uploaded = match recorded {
            Ok(()) => {
                self.upload_parts(key, object_key, &upload_id, path, size)
                    .await
            }
            Err(error) => Err(error),
        };
        match uploaded {
            Ok(etag) => Ok(StoredObject {
                key: key.to_owned(),
                size,
                etag,
            }),
            Err(error) => {
                // An unfinished upload keeps its parts (and costs storage)
                // until aborted; the original error is what the caller needs.
                if let Err(abort_error) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object_key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(
                        key,
                        upload_id,
                        error = %DisplayErrorContext(&abort_error),
                        "could not abort a failed multipart upload; a bucket lifecycle rule should clean it"
                    );
                }
                Err(error)
            }
        }
    }

    /// Sends the parts one after the other, each streamed from its range of
    /// the file, and completes the upload. One part at a time keeps memory
    /// flat and leaves bandwidth to the rest of the server.
    async fn upload_parts(
        &self,
        key: &str,
        object_key: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
    ) -> Result<Option<String>, StorageError> {
        let part_size = self.part_size.max(size.div_ceil(MAX_PARTS));
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut part_number = 1;
        while offset < size {
            let length = part_size.min(size - offset);
            let body = file_body(path, offset, length).await?;
            // The SDK adds a CRC32 of each part by default, which S3 checks;
            // the upload was created without a checksum algorithm, so the
            // completed parts carry none.
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(object_key)
                .upload_id(upload_id)
                .part_number(part_number)
                .content_length(to_i64(length)?)
                .body(body)
                .send()
                .await
                .map_err(|e| classify("upload part", key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(uploaded.e_tag)
                    .build(),
            );
            offset += length;
            part_number += 1;
        }
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("complete multipart upload", key, e))?;
        Ok(completed.e_tag)
    }
}

#[async_trait]
impl ExportStore for S3Store {
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<StoredObject, StorageError> {
        self.put(key, path, content_type, None).await
    }

    async fn put_file_journaled(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        journal: &dyn super::UploadJournal,
    ) -> Result<StoredObject, StorageError> {
        self.put(key, path, content_type, Some(journal)).await
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let object_key = self.object_key(key)?;
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Finished or aborted already: nothing is left to clean.
            Err(error) if error.code() == Some("NoSuchUpload") => Ok(()),
            Err(error) => Err(classify("abort multipart upload", key, error)),
        }
    }

    async fn download_url(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<DownloadLink, StorageError> {
        let object_key = self.object_key(key)?;
        check_expiry(expires_in)?;
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StorageError::Config(e.to_string()))?;
        let expires_at = SystemTime::now() + expires_in;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object_key)
            .presigned(config)
            .await
            .map_err(|e| classify("sign a download link", key, e))?;
        Ok(DownloadLink {
            url: presigned.uri().to_owned(),
            expires_at,
        })
    }

    async fn check_remote(&self) -> Option<Result<(), StorageError>> {
        let answered = self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("check the bucket", &self.bucket, e));
        Some(answered)
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let object_key = self.object_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(error) => Err(classify("look up", key, error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let object_key = self.object_key(key)?;
        // S3 answers 204 for a key that is not there, so this is idempotent.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
            .map_err(|e| classify("delete", key, e))?;
        Ok(())
    }

    fn link_ttl(&self) -> Duration {
        self.presign_expiry
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}

/// A body streamed from `length` bytes of the file at `offset`.
async fn file_body(path: &Path, offset: u64, length: u64) -> Result<ByteStream, StorageError> {
    ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(length))
        .build()
        .await
        .map_err(|e| {
            StorageError::io(
                format!("reading {}", path.display()),
                std::io::Error::other(e),
            )
        })
}

/// Makes browsers save the download under the key's last segment instead of
/// showing a CSV inline. Keys are plain ASCII (see `validate_key`), so the
/// name needs no escaping.
fn attachment(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    format!("attachment; filename=\"{name}\"")
}

fn to_i64(size: u64) -> Result<i64, StorageError> {
    i64::try_from(size).map_err(|_| StorageError::Config(format!("file size {size} is too large")))
}

/// Sorts an SDK error into transient and permanent.
fn classify<E>(operation: &'static str, key: &str, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&error).to_string();
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(str::to_owned);
    let transient = match &error {
        // The request could not even be built: a bug or bad settings.
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) => true,
        // Connection refused or reset, DNS, TLS handshake, timeouts; "user"
        // failures are ones the client caused (such as a bad endpoint URL).
        // Credentials are resolved in this phase too: none configured at all
        // will not change by waiting, while a credential service that timed
        // out or failed may answer next time.
        SdkError::DispatchFailure(failure) => !failure.is_user() && !credentials_missing(&error),
        // An answer that could not be read, such as one cut off half-way.
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| s >= 500 || s == 429 || s == 408)
                || code
                    .as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        // Variants added later: let the job's bounded retries decide.
        _ => true,
    };
    let source = Some(Box::new(error) as super::BoxError);
    if transient {
        StorageError::Unavailable {
            operation,
            key: key.to_owned(),
            detail,
            source,
        }
    } else {
        StorageError::Refused {
            operation,
            key: key.to_owned(),
            status,
            code,
            detail,
            source,
        }
    }
}

/// Whether the source chain holds a credentials error that retrying cannot
/// fix: no provider found any, or their configuration is invalid.
fn credentials_missing(error: &(dyn std::error::Error + 'static)) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    let mut source = Some(error);
    while let Some(current) = source {
        if let Some(credentials) = current.downcast_ref::<CredentialsError>() {
            return matches!(
                credentials,
                CredentialsError::CredentialsNotLoaded(_)
                    | CredentialsError::InvalidConfiguration(_)
            );
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_s3::error::ConnectorError;
    use aws_sdk_s3::operation::put_object::PutObjectError;

    fn dispatch_failure(source: CredentialsError) -> SdkError<PutObjectError, HttpResponse> {
        SdkError::dispatch_failure(ConnectorError::other(Box::new(source), None))
    }

    #[test]
    fn missing_credentials_are_permanent_and_provider_hiccups_transient() {
        let missing = dispatch_failure(CredentialsError::not_loaded("no provider"));
        assert!(!classify("upload", "k", missing).is_transient());
        let invalid = dispatch_failure(CredentialsError::invalid_configuration("bad profile"));
        assert!(!classify("upload", "k", invalid).is_transient());
        let timed_out =
            dispatch_failure(CredentialsError::provider_timed_out(Duration::from_secs(5)));
        assert!(classify("upload", "k", timed_out).is_transient());
        let io = SdkError::<PutObjectError, HttpResponse>::dispatch_failure(ConnectorError::io(
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ));
        assert!(classify("upload", "k", io).is_transient());
        let timeout = SdkError::<PutObjectError, HttpResponse>::timeout_error("slow");
        assert!(classify("upload", "k", timeout).is_transient());
        let construction = SdkError::<PutObjectError, HttpResponse>::construction_failure("bad");
        assert!(!classify("upload", "k", construction).is_transient());
    }

    #[test]
    fn prefix_is_a_folder() {
        let mut settings = S3Settings::new("b");
        assert_eq!(settings.normalized_prefix(), "");
        settings.prefix = "exports".into();
        assert_eq!(settings.normalized_prefix(), "exports/");
        settings.prefix = "/exports/".into();
        assert_eq!(settings.normalized_prefix(), "exports/");
    }

    #[test]
    fn settings_outside_s3_limits_are_refused() {
        let mut settings = S3Settings::new("b");
        settings.part_size = MIB;
        assert!(matches!(settings.validate(), Err(StorageError::Config(_))));
        let mut settings = S3Settings::new("b");
        settings.presign_expiry = Duration::from_secs(8 * 24 * 3600);
        assert!(settings.validate().is_err());
        assert!(S3Settings::new(" ").validate().is_err());
        assert!(S3Settings::new("b").validate().is_ok());
    }

    #[test]
    fn attachment_names_the_last_segment() {
        assert_eq!(
            attachment("p/export-1.csv"),
            "attachment; filename=\"export-1.csv\""
        );
    }
}
