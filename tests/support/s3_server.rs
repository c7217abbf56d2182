//! A real S3 server inside the test process: s3s-fs serving a temporary
//! folder over HTTP on 127.0.0.1, with SigV4 authentication, so tests talk
//! the S3 protocol to something that checks signatures, without any service
//! installed on the machine.
//!
//! Include it from a test crate with
//! `#[allow(dead_code)] #[path = "support/s3_server.rs"] mod s3_server;` (from
//! `tests/x.rs`; `../support/s3_server.rs` from `tests/x/main.rs`). The
//! `allow` is there because no one test crate uses every helper.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

pub const ACCESS_KEY: &str = "test-access-key";
pub const SECRET_KEY: &str = "test-secret-key-0123456789";
pub const REGION: &str = "us-east-1";

/// A running server; stopped when dropped.
pub struct S3TestServer {
    /// `http://127.0.0.1:PORT`, for path-style requests.
    pub endpoint: String,
    pub addr: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// A bucket created at start.
    pub bucket: String,
    root: tempfile::TempDir,
    uploads: Arc<UploadGate>,
    task: Option<JoinHandle<()>>,
}

/// Requests that write object data: PutObject and UploadPart (a PUT on a
/// key, not on the bucket itself, and not a copy).
fn is_upload(request: &hyper::Request<Incoming>) -> bool {
    request.method() == hyper::Method::PUT
        && request.uri().path().trim_matches('/').contains('/')
        && !request.headers().contains_key("x-amz-copy-source")
}

/// Holds uploads until released, or refuses them with 503, to play a slow
/// or failing S3 at a chosen moment; uploads pass straight through
/// otherwise.
#[derive(Default)]
pub struct UploadGate {
    holding: AtomicBool,
    held: AtomicUsize,
    arrived: Notify,
    released: Notify,
    to_refuse: AtomicUsize,
}

impl UploadGate {
    /// Uploads from now on wait until [`UploadGate::release`].
    pub fn hold(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Lets the held uploads (and later ones) through.
    pub fn release(&self) {
        self.holding.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
    }

    /// Waits until an upload is being held, and gives how many are.
    pub async fn wait_for_held(&self) -> usize {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let arrived = self.arrived.notified();
            let held = self.held.load(Ordering::SeqCst);
            if held > 0 {
                return held;
            }
            tokio::time::timeout_at(deadline, arrived)
                .await
                .expect("no upload reached the S3 server within 30 s");
        }
    }

    /// The next `count` uploads are answered 503 Service Unavailable.
    pub fn refuse(&self, count: usize) {
        self.to_refuse.store(count, Ordering::SeqCst);
    }

    /// How many uploads are still to be refused.
    pub fn left_to_refuse(&self) -> usize {
        self.to_refuse.load(Ordering::SeqCst)
    }

    async fn admit(&self) -> Option<s3s::HttpResponse> {
        let refused = self
            .to_refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if refused {
            let mut answer = hyper::Response::new(s3s::Body::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>held down by the test</Message></Error>".to_owned(),
            ));
            *answer.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            return Some(answer);
        }
        if self.holding.load(Ordering::SeqCst) {
            self.held.fetch_add(1, Ordering::SeqCst);
            loop {
                let released = self.released.notified();
                self.arrived.notify_waiters();
                if !self.holding.load(Ordering::SeqCst) {
                    break;
                }
                released.await;
            }
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
        None
    }
}

impl S3TestServer {
    /// Starts a server with one empty bucket named `bucket`.
    pub async fn start(bucket: &str) -> S3TestServer {
        let root = tempfile::tempdir().expect("temporary folder for the S3 server");
        // s3s-fs keeps each bucket as a folder under its root.
        std::fs::create_dir(root.path().join(bucket)).expect("bucket folder");

        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs file system");
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let uploads = Arc::new(UploadGate::default());
        let gate = uploads.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let (service, gate) = (service.clone(), gate.clone());
            async move {
                if is_upload(&request)
                    && let Some(refusal) = gate.admit().await
                {
                    return Ok(refusal);
                }
                hyper::service::Service::call(&service, request).await
            }
        });
        let task = tokio::spawn(async move {
            // Connections live in this set: aborting the accept task drops
            // it, which aborts every open (keep-alive) connection too, so a
            // stopped server really is unreachable.
            let mut connections = JoinSet::new();
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    // Out of file descriptors, say: wait instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = connection.await;
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
        });

        S3TestServer {
            endpoint: format!("http://{addr}"),
            addr,
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            region: REGION.to_owned(),
            bucket: bucket.to_owned(),
            root,
            uploads,
            task: Some(task),
        }
    }

    /// What the server does with uploads (PutObject, UploadPart).
    pub fn uploads(&self) -> &UploadGate {
        &self.uploads
    }

    /// The ids of the multipart uploads started and neither completed nor
    /// aborted, as s3s-fs keeps them (one `.upload-<id>.json` per upload).
    pub fn unfinished_uploads(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root.path())
            .expect("the server's folder")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some(
                    name.strip_prefix(".upload-")?
                        .strip_suffix(".json")?
                        .to_owned(),
                )
            })
            .collect();
        ids.sort();
        ids
    }

    /// The folder holding the buckets.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Where the object `key` of `bucket` lies on disk.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        key.split('/')
            .fold(self.root.path().join(bucket), |path, segment| {
                path.join(segment)
            })
    }

    /// The bytes of an object of the default bucket, if it exists.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.object_path(&self.bucket, key)).ok()
    }

    /// Stops accepting and closes every open connection, to play S3 being
    /// down. The port is closed when this returns.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
