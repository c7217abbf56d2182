//! The storage and mail adapters against real protocol servers running in
//! this process: S3 (s3s-fs, with signature checks) and an SMTP sink.

#[allow(dead_code)]
#[path = "support/s3_server.rs"]
mod s3_server;
#[allow(dead_code)]
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use contacts::mail::{FileMailer, MailError, Mailer, OutgoingMail, SmtpMailer};
use contacts::storage::{
    DownloadRefused, ExportStore, LocalStore, S3Settings, S3Store, StorageError,
};
use s3_server::S3TestServer;
use smtp_sink::{SinkOptions, SmtpSink};

const MIB: usize = 1024 * 1024;
const WAIT: Duration = Duration::from_secs(10);

fn settings(server: &S3TestServer) -> S3Settings {
    let mut settings = S3Settings::new(&server.bucket);
    settings.prefix = "exports".into();
    settings.endpoint = Some(server.endpoint.clone());
    settings.region = Some(server.region.clone());
    settings.force_path_style = true;
    settings
}

fn s3_store(server: &S3TestServer, settings: S3Settings) -> S3Store {
    S3Store::with_credentials(settings, &server.access_key, &server.secret_key).expect("store")
}

/// Bytes that differ from part to part, so a part out of place would show.
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write source file");
    path
}

#[tokio::test]
async fn s3_small_file_is_one_put_and_downloads_through_a_presigned_link() {
    let server = S3TestServer::start("contacts-exports").await;
    let store = s3_store(&server, settings(&server));
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = b"name,email\r\nAnn,ann@example.test\r\n=cmd,\"x\"\r\n".to_vec();
    let source = write_file(dir.path(), "small.csv", &bytes);

    let stored = store
        .put_file("p1/small.csv", &source, "text/csv; charset=utf-8")
        .await
        .expect("put");
    assert_eq!(stored.key, "p1/small.csv");
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(server.object("exports/p1/small.csv"), Some(bytes.clone()));
    assert!(source.exists(), "the source file is left to the caller");
    assert!(store.exists("p1/small.csv").await.expect("exists"));
    assert!(!store.exists("p1/other.csv").await.expect("exists"));

    let link = store
        .download_url("p1/small.csv", Duration::from_secs(600))
        .await
        .expect("presign");
    assert!(link.url.starts_with(&server.endpoint), "{}", link.url);
    assert!(link.expires_at > SystemTime::now() + Duration::from_secs(590));

    let http = reqwest::Client::new();
    let response = http.get(&link.url).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"small.csv\"")
    );
    assert_eq!(response.bytes().await.expect("body").as_ref(), bytes);

    // A signature changed by one character, and the link of another key.
    let tampered = tamper_signature(&link.url);
    let response = http.get(&tampered).send().await.expect("GET");
    assert_eq!(response.status(), 403);
    let other_key = link.url.replace("small.csv", "other.csv");
    let response = http.get(&other_key).send().await.expect("GET");
    assert_eq!(response.status(), 403);

    store.delete("p1/small.csv").await.expect("delete");
    store.delete("p1/small.csv").await.expect("delete again");
    assert!(!store.exists("p1/small.csv").await.expect("exists"));
}

fn tamper_signature(url: &str) -> String {
    let marker = "X-Amz-Signature=";
    let start = url.find(marker).expect("signed URL") + marker.len();
    let mut bytes = url.as_bytes().to_vec();
    bytes[start] = if bytes[start] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).expect("ascii")
}

#[tokio::test]
async fn s3_large_file_goes_up_in_parts_with_exact_bytes() {
    let server = S3TestServer::start("contacts-exports").await;
    let mut settings = settings(&server);
    // The smallest parts S3 accepts, and a low threshold, so that a file of
    // a few MiB takes three parts.
    settings.multipart_threshold = MIB as u64;
    settings.part_size = 5 * MIB as u64;
    let store = s3_store(&server, settings);
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = pattern(11 * MIB + 4321);
    let source = write_file(dir.path(), "large.csv", &bytes);

    let stored = store
        .put_file("p1/large.csv", &source, "text/csv")
        .await
        .expect("multipart put");
    assert_eq!(stored.size, bytes.len() as u64);
    // S3 marks multipart objects with the part count in the ETag.
    let etag = stored.etag.expect("etag");
    assert!(etag.trim_matches('"').ends_with("-3"), "{etag}");
    assert!(server.object("exports/p1/large.csv") == Some(bytes.clone()));

    // A file under the threshold still goes as one PutObject.
    let small = write_file(dir.path(), "small.csv", b"a\n");
    let stored = store
        .put_file("p1/small.csv", &small, "text/csv")
        .await
        .expect("put");
    assert!(!stored.etag.unwrap_or_default().contains('-'));

    let link = store
        .download_url("p1/large.csv", Duration::from_secs(60))
        .await
        .expect("presign");
    let body = reqwest::get(&link.url)
        .await
        .expect("GET")
        .error_for_status()
        .expect("200")
        .bytes()
        .await
        .expect("body");
    assert!(body.as_ref() == bytes.as_slice(), "downloaded bytes differ");
}

#[tokio::test]
async fn s3_empty_file_is_stored() {
    let server = S3TestServer::start("contacts-exports").await;
    let mut settings = settings(&server);
    settings.multipart_threshold = 0;
    let store = s3_store(&server, settings);
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write_file(dir.path(), "empty.csv", b"");
    let stored = store
        .put_file("empty.csv", &source, "text/csv")
        .await
        .expect("put");
    assert_eq!(stored.size, 0);
    assert_eq!(server.object("exports/empty.csv"), Some(Vec::new()));
}

#[tokio::test]
async fn s3_down_is_a_transient_failure() {
    let mut server = S3TestServer::start("contacts-exports").await;
    let store = s3_store(&server, settings(&server));
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write_file(dir.path(), "a.csv", b"a\n");
    // One request first, so that a pooled connection exists when it stops.
    store
        .put_file("a.csv", &source, "text/csv")
        .await
        .expect("put");

    server.stop().await;

    let error = store
        .put_file("b.csv", &source, "text/csv")
        .await
        .expect_err("S3 is down");
    assert!(error.is_transient(), "{error}");
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );
    let error = store.exists("a.csv").await.expect_err("S3 is down");
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn s3_refusals_are_permanent() {
    let server = S3TestServer::start("contacts-exports").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write_file(dir.path(), "a.csv", b"a\n");

    // Wrong secret: the server refuses the signature. A request without a
    // body shows it: with one, the server may close the connection before
    // the body is sent, and the client then sees a broken pipe instead.
    let store =
        S3Store::with_credentials(settings(&server), &server.access_key, "wrong-secret-key")
            .expect("store");
    let error = store.delete("a.csv").await.expect_err("bad credentials");
    assert!(!error.is_transient(), "{error}");
    assert!(
        matches!(
            error,
            StorageError::Refused {
                status: Some(403),
                ..
            }
        ),
        "{error:?}"
    );

    // A bucket that does not exist. (s3s-fs creates buckets on PutObject,
    // which S3 does not, so DeleteObject shows the refusal here.)
    let mut missing = settings(&server);
    missing.bucket = "no-such-bucket".into();
    let error = s3_store(&server, missing)
        .delete("a.csv")
        .await
        .expect_err("no bucket");
    assert!(!error.is_transient(), "{error}");
    match &error {
        StorageError::Refused { code, status, .. } => {
            assert_eq!(code.as_deref(), Some("NoSuchBucket"), "{error:?}");
            assert_eq!(*status, Some(404), "{error:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A key that could escape, and a source file that is not there.
    let store = s3_store(&server, settings(&server));
    let error = store
        .put_file("../a.csv", &source, "text/csv")
        .await
        .expect_err("bad key");
    assert!(matches!(error, StorageError::InvalidKey { .. }));
    let error = store
        .put_file("a.csv", &dir.path().join("missing.csv"), "text/csv")
        .await
        .expect_err("no file");
    assert!(!error.is_transient(), "{error}");
}

#[tokio::test]
async fn local_store_serves_signed_links_only() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let local = LocalStore::new(
        data_dir.path(),
        "http://127.0.0.1:8080/",
        b"server secret for export links".to_vec(),
        Duration::from_secs(3600),
    )
    .expect("local store");
    // Used as the export job will, through the trait.
    let store: Arc<dyn ExportStore> = Arc::new(local.clone());
    let source = write_file(data_dir.path(), "tmp.csv", b"id\n1\n");

    let stored = store
        .put_file("p1/e1.csv", &source, "text/csv")
        .await
        .expect("put");
    assert_eq!(stored.size, 5);
    assert_eq!(
        std::fs::read(data_dir.path().join("exports/p1/e1.csv")).expect("stored file"),
        b"id\n1\n"
    );
    let link = store
        .download_url("p1/e1.csv", store.link_ttl())
        .await
        .expect("link");
    let url = reqwest::Url::parse(&link.url).expect("URL");
    assert_eq!(url.path(), "/exports/p1/e1.csv");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let expires: u64 = query["expires"].parse().expect("expires");
    let signature = &query["signature"];
    let key = url.path().trim_start_matches("/exports/");
    let now = SystemTime::now();

    let path = local
        .verify_download(key, expires, signature, now)
        .expect("valid");
    assert_eq!(std::fs::read(path).expect("read"), b"id\n1\n");

    let later = now + Duration::from_secs(3601);
    assert_eq!(
        local.verify_download(key, expires, signature, later),
        Err(DownloadRefused::Expired)
    );
    assert_eq!(
        local.verify_download(key, expires + 1, signature, now),
        Err(DownloadRefused::BadSignature)
    );
    assert_eq!(
        local.verify_download("p1/../tmp.csv", expires, signature, now),
        Err(DownloadRefused::InvalidKey)
    );
}

/// Decoded text of every non-multipart part of a raw message: enough MIME
/// for what lettre writes (7bit, quoted-printable, base64; nested multipart).
fn text_parts(raw: &str) -> Vec<(String, String)> {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let header = |name: &str| -> String {
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .split("\r\n")
            .find_map(|line| {
                let (field, value) = line.split_once(':')?;
                field
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let content_type = header("Content-Type");
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("boundary")
            .trim_matches('"')
            .to_owned();
        let delimiter = format!("--{boundary}");
        return body
            .split(delimiter.as_str())
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .flat_map(|part| text_parts(part.trim_start_matches("\r\n")))
            .collect();
    }
    let text = match header("Content-Transfer-Encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 body");
            String::from_utf8(bytes).expect("utf-8 body")
        }
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.to_owned(),
    };
    vec![(content_type, text)]
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
            if let Ok(value) = u8::from_str_radix(hex, 16) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 body")
}

/// A link as long as a real pre-signed one, so that lettre must encode it.
fn long_link() -> String {
    format!(
        "https://s3.example.test/exports/p1/e1.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Signature={}",
        "A".repeat(120),
        "0123456789abcdef".repeat(4)
    )
}

fn export_mail(to: &str) -> OutgoingMail {
    let link = long_link();
    OutgoingMail {
        to: to.into(),
        subject: "Your contacts export is ready".into(),
        text_body: format!("Hello,\n\nDownload your export: {link}\n.\n..leading dots survive\n"),
        html_body: Some(format!(
            "<p>Download <a href=\"{link}\">your export</a></p>"
        )),
    }
}

#[tokio::test]
async fn smtp_mail_reaches_exactly_its_recipient() {
    let sink = SmtpSink::start().await;
    let mailer =
        SmtpMailer::from_url(&sink.url(), "Contacts <contacts@example.test>").expect("mailer");

    assert!(mailer.test_connection().await.expect("NOOP"));
    mailer
        .send(export_mail("Ann Agent <ann@example.test>"))
        .await
        .expect("send");

    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, "contacts@example.test");
    assert_eq!(mail.recipients, vec!["ann@example.test".to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your contacts export is ready")
    );
    assert!(mail.header("To").expect("To").contains("ann@example.test"));
    assert!(mail.header("Message-ID").is_some());
    assert!(mail.header("Bcc").is_none());

    let parts = text_parts(&mail.data_text());
    let link = long_link();
    let plain = parts
        .iter()
        .find(|(ct, _)| ct.starts_with("text/plain"))
        .expect("plain part");
    assert!(plain.1.contains(&link), "{}", plain.1);
    // Dot-stuffed lines arrive as written.
    assert!(
        plain.1.contains("\r\n.\r\n..leading dots survive"),
        "{}",
        plain.1
    );
    let html = parts
        .iter()
        .find(|(ct, _)| ct.starts_with("text/html"))
        .expect("html part");
    assert!(html.1.contains(&format!("href=\"{link}\"")), "{}", html.1);
}

#[tokio::test]
async fn smtp_4xx_is_transient_and_the_retry_goes_through() {
    let sink = SmtpSink::start_with(SinkOptions { fail_first: 1 }).await;
    let mailer = SmtpMailer::from_url(&sink.url(), "contacts@example.test").expect("mailer");

    let error = mailer
        .send(export_mail("ann@example.test"))
        .await
        .expect_err("greylisted");
    assert!(error.is_transient(), "{error}");
    assert!(matches!(error, MailError::Smtp(_)), "{error:?}");
    assert_eq!(sink.refused(), 1);
    assert!(sink.messages().is_empty());

    mailer
        .send(export_mail("ann@example.test"))
        .await
        .expect("second attempt");
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received[0].recipients, vec!["ann@example.test".to_owned()]);
}

#[tokio::test]
async fn smtp_server_down_is_transient() {
    let mut sink = SmtpSink::start().await;
    let url = sink.url();
    sink.stop().await;
    let mailer = SmtpMailer::from_url(&url, "contacts@example.test").expect("mailer");
    let error = mailer
        .send(export_mail("ann@example.test"))
        .await
        .expect_err("nobody listening");
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn smtp_bad_recipient_is_permanent() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::from_url(&sink.url(), "contacts@example.test").expect("mailer");
    let error = mailer
        .send(export_mail("ann@example.test, bob@example.test"))
        .await
        .expect_err("two recipients");
    assert!(!error.is_transient(), "{error}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn file_mailer_writes_a_parseable_eml() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mailer =
        FileMailer::new(data_dir.path(), "Contacts <contacts@example.test>").expect("mailer");
    let path = mailer
        .write(&export_mail("ann@example.test"))
        .await
        .expect("write");
    assert_eq!(path.parent(), Some(data_dir.path().join("mail").as_path()));
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("eml"));

    let raw = std::fs::read_to_string(&path).expect("read eml");
    let (head, _) = raw.split_once("\r\n\r\n").expect("headers and body");
    for field in [
        "From:",
        "To:",
        "Subject:",
        "Date:",
        "Message-ID:",
        "MIME-Version:",
    ] {
        assert!(
            head.split("\r\n").any(|line| line.starts_with(field)),
            "{field} missing in\n{head}"
        );
    }
    let parts = text_parts(&raw);
    assert!(
        parts
            .iter()
            .any(|(ct, text)| ct.starts_with("text/plain") && text.contains(&long_link()))
    );

    // Through the trait too; one file per message, nothing half-written.
    let as_trait: Arc<dyn Mailer> = Arc::new(mailer.clone());
    as_trait
        .send(export_mail("bob@example.test"))
        .await
        .expect("send");
    let names: Vec<String> = std::fs::read_dir(mailer.dir())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".eml")), "{names:?}");
}
